"""Which actions offer Kimi the index tools: a free refactor and a fix do, presets do not."""

from __future__ import annotations

from pathlib import Path

from pytest_lsp import LanguageClient

from tests.e2e.test_actions_refactor import SHORT, client, make_doc, refactor, rng
from tests.fake_kimi import FakeKimi

__all__ = ["client"]  # the refactor tests' server fixture


async def test_a_free_instruction_offers_the_tools_and_a_preset_does_not(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    editor = make_doc(client, tmp_path, "a.py", SHORT)
    answer = "```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```"
    fake_kimi.script(answer, match="type hints")
    fake_kimi.script(answer, match="rename nothing")
    await refactor(client, {"uri": editor.uri, "range": rng(0, 2), "preset": "types"})
    preset_body = fake_kimi.chat_requests[-1].body
    assert "tools" not in preset_body
    editor = make_doc(client, tmp_path, "b.py", SHORT)
    free = {"uri": editor.uri, "range": rng(0, 2), "instruction": "rename nothing"}
    await refactor(client, free)
    free_body = fake_kimi.chat_requests[-1].body
    assert free_body["tools"][0]["function"]["name"] == "definition"
    assert free_body["tool_choice"] == "auto"

"""The tool loop over a real socket to the emulator, a real index and the SQLite cache."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kimi_lsp.actions.pipeline import Answer
from kimi_lsp.actions.stores import CacheStore
from kimi_lsp.actions.toolloop import Exchange, answer_with_tools
from kimi_lsp.actions.tools import IndexTools
from kimi_lsp.cache import open_cache
from kimi_lsp.index import WorkspaceIndex
from kimi_lsp.llm import KimiClient, RequestStart
from kimi_lsp.llm.tokens import estimate_text_tokens
from tests.fake_kimi import FakeKimi
from tests.fake_kimi.server import Reply

SECRET = "sk-live-0123456789abcdefghijklmnopqrstuv"
QUESTION = [
    {"role": "system", "content": "You explain code. " * 40},
    {"role": "user", "content": "Explain place(): it calls inv.reserve"},
]


class Sink:
    def __init__(self) -> None:
        self.progress_log: list[str] = []
        self.texts: list[str] = []
        self.reasonings: list[str] = []

    def progress(self, message: str) -> None:
        self.progress_log.append(message)

    def text(self, delta: str) -> None:
        self.texts.append(delta)

    def reasoning(self, delta: str) -> None:
        self.reasonings.append(delta)


@pytest.fixture
def workspace(tmp_path: Path) -> IndexTools:
    root = tmp_path / "ws"
    (root / "shop").mkdir(parents=True)
    (root / ".gitignore").write_text("private/\n")
    (root / "shop" / "inventory.py").write_text(
        "class Inventory:\n    def reserve(self, sku, n):\n        return n  # RESERVE-BODY\n"
    )
    (root / "shop" / "orders.py").write_text(
        f"KEY = '{SECRET}'\n\n\ndef place(inv):\n    return inv.reserve('a', 1)\n"
    )
    (root / "private").mkdir()
    (root / "private" / "notes.py").write_text("def hidden():\n    return 'PRIVATE-BODY'\n")
    index = WorkspaceIndex([root])
    index.update()
    return IndexTools(index, [root], estimate_text_tokens)


@pytest.fixture
async def client(fake_kimi: FakeKimi, tmp_path: Path) -> AsyncIterator[KimiClient]:
    async def no_sleep(_: float) -> None:
        return None

    # The loop's mechanics, not the budget: these rounds think briefly on purpose (the
    # thinking policy and its allowance are tested in test_actions_thinking.py).
    fake_kimi.default_reasoning = "Thinking it over step by step."
    async with KimiClient(
        fake_kimi.base_url, fake_kimi.key, model_table_path=tmp_path / "m.json", sleep=no_sleep
    ) as c:
        yield c


async def run(client: KimiClient, tools: IndexTools, **kw: Any) -> tuple[Answer, Sink, Exchange]:
    sink, ex = Sink(), Exchange()
    options: dict[str, Any] = {"model": "kimi-k2.6", "max_completion_tokens": 800}
    options.update(kw)
    result = await answer_with_tools(client, QUESTION, tools, sink=sink, exchange=ex, **options)
    return result, sink, ex


def looks_up_then_answers(messages: list[dict[str, Any]], body: dict[str, Any]) -> Any:
    if messages[-1]["role"] == "tool":
        return "reserve holds n units; see shop/inventory.py."
    return [("definition", {"name": "Inventory.reserve"})]


async def test_a_lookup_round_then_the_answer(
    fake_kimi: FakeKimi, client: KimiClient, workspace: IndexTools
) -> None:
    fake_kimi.responder = looks_up_then_answers
    result, sink, ex = await run(client, workspace)
    assert result.text == "reserve holds n units; see shop/inventory.py."
    assert result.finish_reason == "stop"
    assert ex.requests == 2
    assert "looked up `Inventory.reserve` in shop/inventory.py" in sink.progress_log
    assert result.sources == ["shop/inventory.py:2"]
    first, second = (r.body for r in fake_kimi.chat_requests)
    assert first["tool_choice"] == "auto"
    assert [t["function"]["name"] for t in first["tools"]] == [
        "definition",
        "references",
        "outline",
        "read",
        "search",
    ]
    # The prefix is byte-identical: round 2 is round 1's messages plus the new tail.
    n = len(first["messages"])
    assert json.dumps(second["messages"][:n]) == json.dumps(first["messages"])
    call_msg, tool_msg = second["messages"][n], second["messages"][n + 1]
    assert call_msg["tool_calls"][0]["id"] == "functions.definition:0"
    assert "reasoning_content" in call_msg  # thinking is on for kimi-k2.6
    assert call_msg["reasoning_content"] == fake_kimi.default_reasoning
    assert tool_msg["tool_call_id"] == "functions.definition:0"
    assert "RESERVE-BODY" in tool_msg["content"]
    assert fake_kimi.chat_requests[1].status == 200
    assert fake_kimi.chat_requests[1].cached_tokens > 0  # the prefix cache served round 2


async def test_each_round_is_admitted_like_any_request(
    fake_kimi: FakeKimi, client: KimiClient, workspace: IndexTools
) -> None:
    fake_kimi.responder = looks_up_then_answers
    admitted: list[RequestStart] = []
    settled: list[Any] = []

    class Ticket:
        async def answered(self) -> None:
            pass

        async def settle(self, usage: Any) -> None:
            settled.append(usage)

        async def refused(self) -> None:
            pass

    class Governor:
        async def admit(self, start: RequestStart, *, batch: bool, on_wait: Any) -> Ticket:
            admitted.append(start)
            return Ticket()

        async def rate_limited(self, retry_after: Any, limit: Any) -> None:
            pass

    await run(client, workspace, admission=Governor())
    assert len(admitted) == 2
    assert len(settled) == 2
    assert admitted[1].input_tokens > admitted[0].input_tokens  # the tool result is charged
    assert all(s is not None for s in settled)


async def test_ignored_files_and_secrets_never_reach_kimi(
    fake_kimi: FakeKimi, client: KimiClient, workspace: IndexTools
) -> None:
    def nosy(messages: list[dict[str, Any]], body: dict[str, Any]) -> Any:
        if messages[-1]["role"] == "tool":
            return "done"
        return [
            ("read", {"path": "private/notes.py", "start_line": 1, "end_line": 5}),
            ("definition", {"name": "hidden"}),
            ("read", {"path": "shop/orders.py", "start_line": 1, "end_line": 5}),
        ]

    fake_kimi.responder = nosy
    await run(client, workspace)
    sent = json.dumps([r.body for r in fake_kimi.chat_requests])
    assert "PRIVATE-BODY" not in sent
    assert SECRET not in sent
    assert "<redacted:" in sent  # the line was read, its secret hidden


async def test_a_model_that_keeps_calling_tools_stops_at_the_round_limit(
    fake_kimi: FakeKimi, client: KimiClient, workspace: IndexTools
) -> None:
    fake_kimi.responder = lambda m, b: [("search", {"text": "reserve"})]
    result, _, ex = await run(client, workspace, rounds=2)
    # 2 lookup rounds, then one with tool_choice "none" (the emulator then answers in text)
    assert ex.requests == 3
    assert [r.body["tool_choice"] for r in fake_kimi.chat_requests] == ["auto", "auto", "none"]
    assert result.finish_reason == "stop"


async def test_a_model_that_ignores_tool_choice_none_is_stopped_with_a_clear_message(
    fake_kimi: FakeKimi, client: KimiClient, workspace: IndexTools
) -> None:
    # The emulator honours "none", as the API does; this model answers with calls anyway.
    fake_kimi.responder = lambda m, b: Reply("", tool_calls=[("search", {"text": "x"})])
    real_chat = fake_kimi._chat

    async def chat_ignoring_none(body: Any, *args: Any) -> None:
        if isinstance(body, dict) and body.get("tool_choice") == "none":
            body = {**body, "tool_choice": "auto"}
        await real_chat(body, *args)

    fake_kimi._chat = chat_ignoring_none  # type: ignore[method-assign]
    result, sink, ex = await run(client, workspace, rounds=2)
    assert ex.requests == 3
    assert "still asked for lookups after 2 rounds" in result.text
    assert result.finish_reason != "stop"  # never cached as a complete answer
    assert any("tool_rounds" in p for p in sink.progress_log)
    assert "still asked for lookups" in "".join(sink.texts)  # the editor shows it too


async def test_a_refusal_of_tools_falls_back_to_the_packed_context(
    fake_kimi: FakeKimi, client: KimiClient, workspace: IndexTools
) -> None:
    fake_kimi.tools_supported = False
    fake_kimi.script("From the context alone.")
    result, sink, ex = await run(client, workspace)
    assert result.text == "From the context alone."
    assert ex.requests == 1
    assert any("refused" in p for p in sink.progress_log)
    assert result.note is not None
    assert "refused index tools" in result.note
    bodies = [r.body for r in fake_kimi.chat_requests]
    assert "tools" in bodies[0]
    assert "tools" not in bodies[1]


async def test_the_same_question_on_the_same_code_replays_without_a_round(
    fake_kimi: FakeKimi, client: KimiClient, workspace: IndexTools, tmp_path: Path
) -> None:
    fake_kimi.responder = looks_up_then_answers
    store = CacheStore(open_cache("on", tmp_path))
    try:
        first, _, _ = await run(client, workspace, store=store)
        assert len(fake_kimi.chat_requests) == 2
        again, sink, _ = await run(client, workspace, store=store)
        assert again.cached
        assert "cached answer" in sink.progress_log
        assert again.text == first.text
        assert again.sources == ["shop/inventory.py:2"]
        assert len(fake_kimi.chat_requests) == 2  # no round at all
        assert store.hits == 1

        # The looked-up code changed: the replayed lookup differs, so Kimi is asked again.
        path = workspace.roots[0] / "shop" / "inventory.py"
        path.write_text(path.read_text().replace("return n", "return n + 0"))
        workspace.index.file_changed_on_disk(path)
        changed, _, _ = await run(client, workspace, store=store)
        assert not changed.cached
        assert len(fake_kimi.chat_requests) == 4
    finally:
        await store.aclose()


async def test_cancel_mid_round_ends_cleanly(
    fake_kimi: FakeKimi, client: KimiClient, workspace: IndexTools
) -> None:
    fake_kimi.responder = looks_up_then_answers
    fake_kimi.chunk_delay = 0.05
    task = asyncio.create_task(run(client, workspace))
    assert await asyncio.to_thread(
        fake_kimi.wait_until, lambda: len(fake_kimi.chat_requests) == 2, 20
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(
        fake_kimi.wait_until, lambda: fake_kimi.chat_requests[-1].client_closed, 10
    )
    assert fake_kimi.in_flight() == 0 or await asyncio.to_thread(
        fake_kimi.wait_until, lambda: fake_kimi.in_flight() == 0, 10
    )


async def test_a_refusal_is_remembered_until_the_settings_change(
    fake_kimi: FakeKimi, workspace: IndexTools, tmp_path: Path
) -> None:
    from kimi_lsp.actions.services import Services
    from kimi_lsp.config import Settings

    settings = Settings(
        api_key=fake_kimi.key, base_url=fake_kimi.base_url, state_dir=tmp_path / "state"
    )
    services = Services(settings, workspace.roots, index=workspace.index)
    fake_kimi.tools_supported = False
    fake_kimi.default_reasoning = "Brief."  # the refusal, not the thinking budget, is tested
    try:
        for i in range(2):
            q = [{"role": "user", "content": f"question {i}"}]
            await services.answer(q, max_completion_tokens=100, sink=Sink(), tools=True)
        assert ["tools" in r.body for r in fake_kimi.chat_requests] == [True, False, False]
        old = services.answers.reconfigure(settings)
        if old is not None:
            await old.aclose()
        q = [{"role": "user", "content": "question 3"}]
        await services.answer(q, max_completion_tokens=100, sink=Sink(), tools=True)
        assert "tools" in fake_kimi.chat_requests[-2].body  # asked again after a change
    finally:
        await services.aclose()


async def test_the_token_allowance_makes_kimi_answer_at_once(
    fake_kimi: FakeKimi, client: KimiClient, workspace: IndexTools
) -> None:
    fake_kimi.responder = looks_up_then_answers
    # Room for one round but not for a second one after it: no lookups are offered.
    result, _, ex = await run(client, workspace, token_allowance=1_500)
    assert [r.body["tool_choice"] for r in fake_kimi.chat_requests] == ["none"]
    assert ex.requests == 1
    assert result.finish_reason == "stop"
    assert result.text.startswith("Fake Kimi answer to:")
    assert result.usage.total_tokens <= 1_500

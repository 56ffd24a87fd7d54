"""Thinking models end to end: every answer arrives whole, however long Kimi thinks.

A real server process, the emulator over HTTP, a model that reasons 2,500 tokens before it
answers (what a real K2.6 does on a moderate question): explain, refactor, generate tests, fix
and a workspace refactor of 10 files each deliver their whole answer in at most two requests
per target; with ``thinking=off`` on K2.6 in one; on kimi-k2.7-code (always thinks) in at most
two. A reply cut inside its reasoning is asked again once, and otherwise reported in words.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.e2e.conftest import SERVER
from tests.e2e.editor import _OPEN, EditorModel, _dispatch
from tests.e2e.test_lifecycle import wait_state
from tests.fake_kimi import FakeKimi

REASONING = 2_500
FILES = 10
CALC = "def add(a, b):\n    return a + b\n\n\ndef half(x):\n    return x / 2\n"
EXPLANATION = "`add` returns the sum of its two arguments. " * 12  # ~130 tokens


def user_module(i: int) -> str:
    return f"from pkg.core import total\n\n\ndef report_{i}(rows):\n    return total(rows) * {i}\n"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (root / "calc.py").write_text(CALC)
    (root / "tests" / "test_other.py").write_text("def test_one():\n    assert 1 == 1\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "core.py").write_text("def total(items):\n    return sum(items)\n")
    for i in range(FILES - 1):
        (root / "pkg" / f"user_{i}.py").write_text(user_module(i))
    # Edits of a document the test holds go to its EditorModel; the rest (a new test file,
    # the workspace refactor's one edit) are accepted as an editor's preview would.
    _OPEN[id(lsp_client)] = {}

    def apply(params: T.ApplyWorkspaceEditParams) -> Any:
        changes = params.edit.document_changes or []
        uris = {c.text_document.uri for c in changes if isinstance(c, T.TextDocumentEdit)}
        if len(changes) == 1 and uris <= set(_OPEN[id(lsp_client)]) and uris:
            return _dispatch(lsp_client, params)
        return T.ApplyWorkspaceEditResult(applied=True)

    lsp_client.feature(T.WORKSPACE_APPLY_EDIT)(apply)
    await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=T.ClientCapabilities(
                workspace=T.WorkspaceClientCapabilities(
                    apply_edit=True,
                    configuration=True,
                    did_change_configuration=T.DidChangeConfigurationClientCapabilities(),
                    workspace_edit=T.WorkspaceEditClientCapabilities(
                        document_changes=True,
                        resource_operations=[T.ResourceOperationKind.Create],
                    ),
                ),
                window=T.WindowClientCapabilities(work_done_progress=True),
            ),
            root_uri=root.as_uri(),
            workspace_folders=[T.WorkspaceFolder(uri=root.as_uri(), name="proj")],
            initialization_options={
                "apiKey": fake_kimi.key,
                "baseUrl": fake_kimi.base_url,
                "reviewMode": False,
            },
        )
    )
    for _ in range(200):
        if await lsp_client.workspace_symbol_async(T.WorkspaceSymbolParams(query="report_8")):
            break
        await asyncio.sleep(0.05)
    yield
    await lsp_client.shutdown_session()


async def configure(client: LanguageClient, **settings: Any) -> None:
    client.set_configuration(settings, section="kimi")
    client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings=None))
    for name, value in settings.items():
        await wait_state(client, lambda s, k=name, v=value: s["settings"][k]["value"] == v)


async def execute(client: LanguageClient, command: str, arg: dict[str, Any]) -> Any:
    return await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command=command, arguments=[arg])
    )


def whole(start: int, end: int) -> dict[str, Any]:
    return {"start": {"line": start, "character": 0}, "end": {"line": end, "character": 0}}


async def run_every_action(client: LanguageClient, fake: FakeKimi, root: Path) -> dict[str, float]:
    """Each action once; the number of chat requests each target took."""
    fake.reasoning_tokens = REASONING
    calc = root / "calc.py"
    doc = EditorModel(client, calc.as_uri(), calc.read_text())
    counts: dict[str, float] = {}

    def since(before: int) -> int:
        return len(fake.chat_requests) - before

    fake.script(EXPLANATION, match="Explain what `add`")
    n = len(fake.chat_requests)
    result = await execute(client, "kimi.explain", {"uri": doc.uri, "range": whole(0, 2)})
    assert result["text"].strip() == EXPLANATION.strip()
    counts["explain"] = since(n)

    typed = "def add(a: int, b: int) -> int:\n    return a + b\n"
    fake.script(f"```python\n{typed}```", match="make it return ints")
    n = len(fake.chat_requests)
    arg = {"uri": doc.uri, "range": whole(0, 2), "instruction": "make it return ints"}
    result = await execute(client, "kimi.refactor", arg)
    assert result["applied"] is True, result
    assert doc.text.startswith(typed)
    counts["refactor"] = since(n)

    fixed = "def half(x):\n    return x // 2\n"
    fake.script(f"```python\n{fixed}```", match="fix this problem")
    n = len(fake.chat_requests)
    instruction = "fix this problem reported by the editor: float division"
    lines = doc.text.splitlines(keepends=True)
    at = next(i for i, ln in enumerate(lines) if ln.startswith("def half"))
    arg = {"uri": doc.uri, "range": whole(at, at + 2), "instruction": instruction}
    result = await execute(client, "kimi.refactor", arg)
    assert result["applied"] is True, result
    assert doc.text.endswith(fixed)
    counts["fix"] = since(n)

    tests = "def test_add():\n    assert add(1, 2) == 3\n"
    fake.script(f"```python\n{tests}```", match="Write tests")
    n = len(fake.chat_requests)
    arg = {"uri": doc.uri, "position": {"line": 0, "character": 4}}
    result = await execute(client, "kimi.generateTests", arg)
    assert result["applied"] is True, result
    counts["tests"] = since(n)

    paths = [root / "pkg" / "core.py", *sorted((root / "pkg").glob("user_*.py"))]
    for path in paths:
        new = path.read_text().replace("total", "sum_all")
        fake.script(f"```python\n{new}```", match=f"File: pkg/{path.name} ")
    n = len(fake.chat_requests)
    arg = {
        "instruction": "rename total to sum_all",
        "symbol": {"uri": paths[0].as_uri(), "position": {"line": 0, "character": 6}},
    }
    result = await asyncio.wait_for(execute(client, "kimi.refactorWorkspace", arg), 60)
    assert result["applied"] is True, result
    assert sorted(result["changed"]) == sorted(str(p) for p in paths)
    counts["workspace"] = since(n) / FILES
    return counts


async def test_k26_auto_delivers_every_answer_whole_in_at_most_two_requests(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    counts = await run_every_action(client, fake_kimi, tmp_path / "proj")
    assert all(n <= 2 for n in counts.values()), counts

    # explain, the free-form refactor and the fix think within an allowance; the workspace
    # files and the test boilerplate do not think at all.
    def thinking_of(words: str) -> set[str]:
        return {
            r.body["thinking"]["type"]
            for r in fake_kimi.chat_requests
            if words in r.body["messages"][-1]["content"]
        }

    for words in ("Explain what `add`", "make it return ints", "fix this problem"):
        assert thinking_of(words) == {"enabled"}, words
    for words in ("Write tests", "Apply this change across the project"):
        assert thinking_of(words) == {"disabled"}, words
    explain = fake_kimi.chat_requests[0]
    assert explain.body["max_completion_tokens"] == 1500 + 4096  # answer + room to think
    assert explain.reasoning_tokens == REASONING
    assert all(r.finish_reason == "stop" for r in fake_kimi.chat_requests)


async def test_k26_thinking_off_answers_every_target_in_one_request(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    await configure(client, thinking="off")
    counts = await run_every_action(client, fake_kimi, tmp_path / "proj")
    assert all(n == 1 for n in counts.values()), counts
    assert all(r.body["thinking"] == {"type": "disabled"} for r in fake_kimi.chat_requests)
    assert all(r.reasoning_tokens == 0 for r in fake_kimi.chat_requests)


async def test_k27_code_always_thinks_and_still_answers_in_at_most_two_requests(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    await configure(client, model="kimi-k2.7-code", thinking="off")
    counts = await run_every_action(client, fake_kimi, tmp_path / "proj")
    assert all(n <= 2 for n in counts.values()), counts
    assert all(r.status == 200 for r in fake_kimi.chat_requests)  # never sent `disabled`
    assert all("thinking" not in r.body for r in fake_kimi.chat_requests)
    for r in fake_kimi.chat_requests:  # a continuation in partial mode does not think again
        partial = r.body["messages"][-1].get("partial")
        assert r.reasoning_tokens == (0 if partial else REASONING)


def messages_of(client: LanguageClient) -> str:
    texts = [getattr(r, "message", "") or "" for rs in client.progress_reports.values() for r in rs]
    return "\n".join(texts + [m.message for m in client.messages])


async def test_a_reply_cut_inside_its_reasoning_is_asked_again_with_thinking_off(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    doc = EditorModel(client, (tmp_path / "proj" / "calc.py").as_uri(), CALC)
    fake_kimi.script(EXPLANATION, match="Explain what `add`", reasoning_tokens=50_000)
    result = await execute(client, "kimi.explain", {"uri": doc.uri, "range": whole(0, 2)})
    assert result["text"].strip() == EXPLANATION.strip()
    first, second = fake_kimi.chat_requests
    assert first.finish_reason == "length"
    assert first.completion_tokens == first.reasoning_tokens == first.body["max_completion_tokens"]
    assert second.body["thinking"] == {"type": "disabled"}
    assert second.finish_reason == "stop"
    assert "asking again with thinking off" in messages_of(client)


async def test_a_reply_cut_inside_its_reasoning_twice_is_reported_in_words(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    await configure(client, model="kimi-k2.7-code")
    doc = EditorModel(client, (tmp_path / "proj" / "calc.py").as_uri(), CALC)
    fake_kimi.script(EXPLANATION, match="Explain what `add`", reasoning_tokens=50_000)
    with pytest.raises(Exception, match="whole output budget"):
        await execute(client, "kimi.explain", {"uri": doc.uri, "range": whole(0, 2)})
    first, second = fake_kimi.chat_requests
    assert second.body["max_completion_tokens"] > first.body["max_completion_tokens"]
    assert all(r.finish_reason == "length" for r in (first, second))
    said = messages_of(client)
    assert "twice the room to think" in said
    assert "thinkingAllowance" in said


async def test_a_workspace_file_that_only_thinks_fails_alone_and_says_why(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    await configure(client, model="kimi-k2.7-code")
    root = tmp_path / "proj"
    paths = [root / "pkg" / "core.py", *sorted((root / "pkg").glob("user_*.py"))]
    for path in paths:
        new = path.read_text().replace("total", "sum_all")
        endless = 50_000 if path.name == "user_3.py" else REASONING
        fake_kimi.script(
            f"```python\n{new}```", match=f"File: pkg/{path.name} ", reasoning_tokens=endless
        )
    arg = {
        "instruction": "rename total to sum_all",
        "symbol": {"uri": paths[0].as_uri(), "position": {"line": 0, "character": 6}},
    }
    result = await asyncio.wait_for(execute(client, "kimi.refactorWorkspace", arg), 60)
    stuck = str(root / "pkg" / "user_3.py")
    assert "whole output budget" in result["failed"][stuck]
    assert sorted(result["changed"]) == sorted(str(p) for p in paths if str(p) != stuck)

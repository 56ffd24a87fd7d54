"""kimi.refactor end to end: answers stream into the document; nothing of the user's is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.e2e.conftest import SERVER
from tests.e2e.editor import EditorModel
from tests.fake_kimi import FakeKimi

SHORT = "def add(a, b):\n    return a + b\n"
LONG = (
    "import os\n\n\n"
    "def total(items):\n"
    "    result = 0\n"
    "    for item in items:\n"
    "        result = result + item\n"
    "    return result\n"
)


def capabilities() -> T.ClientCapabilities:
    return T.ClientCapabilities(
        workspace=T.WorkspaceClientCapabilities(
            apply_edit=True,
            workspace_edit=T.WorkspaceEditClientCapabilities(document_changes=True),
        ),
        window=T.WindowClientCapabilities(work_done_progress=True),
    )


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "proj").mkdir()
    await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=capabilities(),
            root_uri=(tmp_path / "proj").as_uri(),
            initialization_options={"apiKey": fake_kimi.key, "baseUrl": fake_kimi.base_url},
        )
    )
    yield
    await lsp_client.shutdown_session()


def make_doc(client: LanguageClient, tmp_path: Path, name: str, text: str) -> EditorModel:
    path = tmp_path / "proj" / name
    path.write_text(text)
    return EditorModel(client, path.as_uri(), text)


def rng(start: int, end: int) -> dict[str, Any]:
    return {"start": {"line": start, "character": 0}, "end": {"line": end, "character": 0}}


async def refactor(client: LanguageClient, arg: dict[str, Any]) -> Any:
    return await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="kimi.refactor", arguments=[arg])
    )


async def test_a_short_refactor_streams_in_several_edits(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    editor = make_doc(client, tmp_path, "a.py", SHORT + "\nprint(add(1, 2))\n")
    fake_kimi.chunk_delay = 0.05
    new = "def add(a: int, b: int) -> int:\n    total = a + b\n    return total\n"
    fake_kimi.script(f"Here it is:\n```python\n{new}```\nDone.", match="type hints", chunk_tokens=3)
    result = await refactor(client, {"uri": editor.uri, "range": rng(0, 2), "preset": "types"})
    assert result["applied"] is True
    assert result["review"] is False
    assert editor.text == new + "\nprint(add(1, 2))\n"
    assert len(editor.applied) >= 2  # streamed, not one final replacement
    sent = fake_kimi.chat_requests[0].body["messages"][-1]["content"]
    assert "add type hints" in sent


async def test_a_long_refactor_is_a_review_block_that_reject_restores_byte_for_byte(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    editor = make_doc(client, tmp_path, "b.py", LONG)
    fake_kimi.script("```python\ndef total(items):\n    return sum(items)\n```", match="simplify")
    result = await refactor(client, {"uri": editor.uri, "range": rng(3, 8), "preset": "simplify"})
    assert result["review"] is True
    assert "<<<<<<< original" in editor.text
    assert "    return sum(items)\n" in editor.text
    actions = await client.text_document_code_action_async(
        T.CodeActionParams(
            text_document=T.TextDocumentIdentifier(editor.uri),
            range=T.Range(T.Position(5, 0), T.Position(5, 0)),
            context=T.CodeActionContext(diagnostics=[]),
        )
    )
    assert actions is not None
    by_title = {a.title: a for a in actions if isinstance(a, T.CodeAction)}
    reject = by_title["Kimi: Reject"]
    accept = by_title["Kimi: Accept"]
    assert reject.edit is not None
    assert reject.edit.changes is not None
    assert accept.edit is not None
    assert accept.edit.changes is not None
    from kimi_lsp.edits.stream import apply_edits

    assert apply_edits(editor.text, list(reject.edit.changes[editor.uri])) == LONG
    assert apply_edits(editor.text, list(accept.edit.changes[editor.uri])) == (
        "import os\n\n\ndef total(items):\n    return sum(items)\n"
    )


async def test_an_answer_that_breaks_the_syntax_is_not_applied_silently(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    editor = make_doc(client, tmp_path, "c.py", SHORT)
    fake_kimi.script("```python\ndef add(a, b:\n    return a +\n```", match="simplify")
    result = await refactor(client, {"uri": editor.uri, "range": rng(0, 2), "preset": "simplify"})
    assert result["review"] is True
    assert result["warnings"]
    assert "<<<<<<< original" in editor.text
    assert SHORT in editor.text  # the original is still there, whole
    assert any("does not parse" in m.message for m in client.messages)


async def test_the_user_typing_inside_the_target_stops_streaming_and_keeps_the_text(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    editor = make_doc(client, tmp_path, "d.py", SHORT)
    fake_kimi.chunk_delay = 0.05
    lines = "".join(f"    x{i} = {i}\n" for i in range(30))
    fake_kimi.script(
        f"```python\ndef add(a, b):\n{lines}    return a + b\n```", match="names", chunk_tokens=2
    )

    def user_types_once(ed: EditorModel) -> None:
        if len(ed.applied) == 1:
            ed.type(1, 4, "# mine ")

    editor.on_apply = user_types_once
    result = await refactor(client, {"uri": editor.uri, "range": rng(0, 2), "preset": "names"})
    assert result["applied"] is False
    assert result["preview"] is True
    assert "# mine " in editor.text
    written = len(editor.applied)
    await asyncio.sleep(0.3)
    assert len(editor.applied) == written  # nothing more was written after the user typed


async def test_the_user_typing_above_the_target_does_not_stop_it(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    editor = make_doc(client, tmp_path, "e.py", "X = 1\n\n" + SHORT)
    fake_kimi.chunk_delay = 0.05
    new = (
        "def add(a, b):\n" + "".join(f"    # step {i}\n" for i in range(10)) + "    return a + b\n"
    )
    fake_kimi.script(f"```python\n{new}```", match="docstring", chunk_tokens=2)

    def user_types_once(ed: EditorModel) -> None:
        if len(ed.applied) == 1:
            ed.type(0, 0, "# a comment of mine\n")

    editor.on_apply = user_types_once
    result = await refactor(client, {"uri": editor.uri, "range": rng(2, 4), "preset": "docstring"})
    assert result["applied"] is True, result
    assert editor.text == "# a comment of mine\nX = 1\n\n" + new


async def test_a_diagnostic_in_range_offers_a_kimi_fix_that_rewrites_the_code(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    editor = make_doc(client, tmp_path, "f.py", "def add(a, b):\n    return a + c\n")
    diagnostic = T.Diagnostic(
        range=T.Range(T.Position(1, 15), T.Position(1, 16)),
        message="undefined name 'c'",
        severity=T.DiagnosticSeverity.Error,
    )
    actions = await client.text_document_code_action_async(
        T.CodeActionParams(
            text_document=T.TextDocumentIdentifier(editor.uri),
            range=T.Range(T.Position(1, 15), T.Position(1, 16)),
            context=T.CodeActionContext(diagnostics=[diagnostic]),
        )
    )
    assert actions is not None
    fix = next(a for a in actions if a.title.startswith("Kimi: Fix"))
    assert "undefined name 'c'" in fix.title
    fake_kimi.script("```python\ndef add(a, b):\n    return a + b\n```", match="undefined name")
    result = await refactor(
        client,
        {
            "uri": editor.uri,
            "range": {"start": {"line": 1, "character": 15}, "end": {"line": 1, "character": 16}},
            "instruction": "fix this problem reported by the editor: undefined name 'c'",
        },
    )
    assert result["applied"] is True
    assert editor.text == "def add(a, b):\n    return a + b\n"


async def test_cancelling_a_refactor_stops_the_edits_cleanly(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    editor = make_doc(client, tmp_path, "g.py", SHORT)
    fake_kimi.chunk_delay = 0.1
    body = "".join(f"    y{i} = {i}\n" for i in range(60))
    fake_kimi.script(
        f"```python\ndef add(a, b):\n{body}    return a + b\n```", match="idiomatic", chunk_tokens=2
    )
    task = asyncio.ensure_future(
        refactor(client, {"uri": editor.uri, "range": rng(0, 2), "preset": "idiomatic"})
    )
    for _ in range(100):
        if editor.applied:
            break
        await asyncio.sleep(0.05)
    assert editor.applied
    await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="kimi.cancel", arguments=[{}])
    )
    with pytest.raises(Exception, match="cancel"):
        await asyncio.wait_for(task, 10)
    written = len(editor.applied)
    assert fake_kimi.wait_until(lambda: fake_kimi.in_flight() == 0, timeout=5)
    await asyncio.sleep(0.4)
    assert len(editor.applied) == written  # nothing is written after the cancel
    assert editor.text.startswith("def add(a, b):\n")  # whole lines only, never half a line


async def test_secrets_stay_home_and_come_back_into_the_rewritten_code(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    # The prompt carries placeholders, never the key; a model that rewrites the code keeps
    # them, and what is written back into the document has the user's key again.
    secret = "sk-live-9f8e7d6c5b4a39281716151413121110"
    code = f"def connect():\n    key = '{secret}'\n    return key\n"
    editor = make_doc(client, tmp_path, "keys.py", code)

    def echo_upper(question: str) -> str:  # returns the code it was shown, renamed
        shown = question.split("```python\n", 1)[1].split("```", 1)[0]
        return "```python\n" + shown.replace("def connect", "def open_connection") + "```"

    fake_kimi.default_reply = echo_upper
    result = await refactor(client, {"uri": editor.uri, "range": rng(0, 3), "instruction": "x"})
    assert result["applied"] is True
    body = str(fake_kimi.chat_requests[0].body)
    assert secret not in body
    assert "<redacted: API key" in body
    assert editor.text == code.replace("def connect", "def open_connection")


async def test_the_server_lists_the_refactor_presets_its_code_actions_offer(
    client: LanguageClient, tmp_path: Path
) -> None:
    from kimi_lsp.actions.code_actions import REFACTOR_PRESETS

    listed = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="kimi.refactorPresets", arguments=[{}])
    )
    assert [p["preset"] for p in listed["presets"]] == list(REFACTOR_PRESETS)
    editor = make_doc(client, tmp_path, "p.py", LONG)
    actions = await client.text_document_code_action_async(
        T.CodeActionParams(
            text_document=T.TextDocumentIdentifier(editor.uri),
            range=T.Range(T.Position(3, 0), T.Position(8, 0)),  # a selection: a target
            context=T.CodeActionContext(diagnostics=[]),
        )
    )
    assert actions is not None
    offered = {a.title for a in actions}
    assert {p["title"] for p in listed["presets"]} <= offered

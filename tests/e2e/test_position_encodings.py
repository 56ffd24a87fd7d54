"""Position encodings end to end: whichever of UTF-8, UTF-16 and UTF-32 a client negotiates,
every position the server reads (commands, hover, code actions, didChange) and sends (streamed
edits, review actions, symbols) counts characters in it. Neovim negotiates UTF-8; a column
counted in UTF-16 there cut "…" in two and corrupted the file (issue 17)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient

from kimi_lsp.edits.stream import MARK_ORIGINAL
from tests.e2e.conftest import SERVER, RawServer
from tests.e2e.editor import EditorModel
from tests.fake_kimi import FakeKimi
from tests.fixtures.wide import SUMMED, TOTAL

CALL = 'print("€€€€€€", total([1]), len)\n'  # six 3-byte characters before `total`
WIDE = 'PRICE = "9 €"  # “net” — 价格 🙂\n\n\nclass Größe:\n    pass\n\n\n' + TOTAL
TOTAL_LINE = WIDE.splitlines().index("def total(items):")
UNITS: dict[str, tuple[str, int]] = {
    "utf-8": ("utf-8", 1),
    "utf-16": ("utf-16-le", 2),
    "utf-32": ("utf-32-le", 4),
}


def units(text: str, enc: str) -> int:
    """How long ``text`` is in ``enc``'s units (computed with Python's codecs)."""
    codec, width = UNITS[enc]
    return len(text.encode(codec)) // width


@pytest.fixture(params=["utf-8", "utf-16", "utf-32"])
def encoding(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(  # type: ignore[no-untyped-def]
    lsp_client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path, encoding: str
):
    (tmp_path / "proj").mkdir()
    result = await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=T.ClientCapabilities(
                general=T.GeneralClientCapabilities(position_encodings=[encoding]),
                workspace=T.WorkspaceClientCapabilities(
                    apply_edit=True,
                    workspace_edit=T.WorkspaceEditClientCapabilities(document_changes=True),
                ),
                window=T.WindowClientCapabilities(work_done_progress=True),
            ),
            root_uri=(tmp_path / "proj").as_uri(),
            initialization_options={"apiKey": fake_kimi.key, "baseUrl": fake_kimi.base_url},
        )
    )
    assert result.capabilities.position_encoding == encoding
    yield
    await lsp_client.shutdown_session()


async def open_doc(client: LanguageClient, tmp_path: Path, text: str, enc: str) -> EditorModel:
    path = tmp_path / "proj" / "shop.py"
    path.write_text(text, encoding="utf-8")
    editor = EditorModel(client, path.as_uri(), text, encoding=enc)  # type: ignore[arg-type]
    for _ in range(200):  # the index is built in the background after `initialized`
        if await client.workspace_symbol_async(T.WorkspaceSymbolParams(query="total")):
            return editor
        await asyncio.sleep(0.05)
    raise AssertionError("never indexed")


async def review_action(client: LanguageClient, editor: EditorModel, title: str) -> None:
    """Apply the review block's Accept or Reject code action, as the editor would."""
    at = next(i for i, ln in enumerate(editor.text.splitlines()) if ln.startswith(MARK_ORIGINAL))
    actions = await client.text_document_code_action_async(
        T.CodeActionParams(
            text_document=T.TextDocumentIdentifier(editor.uri),
            range=T.Range(T.Position(at, 0), T.Position(at, 0)),
            context=T.CodeActionContext(diagnostics=[]),
        )
    )
    (action,) = [a for a in actions or [] if isinstance(a, T.CodeAction) and a.title == title]
    assert action.edit is not None
    assert action.edit.changes is not None
    editor._change(list(action.edit.changes[editor.uri]))


async def test_a_review_of_the_last_function_streams_and_resolves_exactly(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path, encoding: str
) -> None:
    editor = await open_doc(client, tmp_path, WIDE, encoding)
    fake_kimi.script(f"```python\n{SUMMED}```", match="use sum()", chunk_tokens=1)
    last = WIDE.splitlines()[-2]  # the selection ends inside `s += x  # “€”`, in client units
    end = {"line": TOTAL_LINE + 4, "character": units(last, encoding)}
    arg: dict[str, Any] = {
        "uri": editor.uri,
        "range": {"start": {"line": TOTAL_LINE, "character": 0}, "end": end},
        "instruction": "use sum()",
    }
    for title, want in (
        ("Kimi: Reject", WIDE),
        ("Kimi: Accept", WIDE[: WIDE.index("def total")] + SUMMED),
    ):
        result = await client.workspace_execute_command_async(
            T.ExecuteCommandParams(command="kimi.refactor", arguments=[arg])
        )
        assert result["review"] is True, result
        assert len(editor.applied) >= 2  # streamed in several edits
        assert "    return sum(items)  # … in €\n" in editor.text
        await review_action(client, editor, title)
        assert editor.text.encode() == want.encode()
        editor.applied.clear()
    # The server's copy followed every change: its outline is where the text has it.
    symbols = await client.text_document_document_symbol_async(
        T.DocumentSymbolParams(text_document=T.TextDocumentIdentifier(editor.uri))
    )
    assert symbols is not None
    names = {s.name: s.selection_range for s in symbols if isinstance(s, T.DocumentSymbol)}
    assert names["total"].start == T.Position(TOTAL_LINE, 4)


async def test_symbols_and_hover_count_in_the_negotiated_encoding(
    client: LanguageClient, tmp_path: Path, encoding: str
) -> None:
    editor = await open_doc(client, tmp_path, WIDE + "\n\n" + CALL, encoding)
    symbols = await client.text_document_document_symbol_async(
        T.DocumentSymbolParams(text_document=T.TextDocumentIdentifier(editor.uri))
    )
    assert symbols is not None
    by_name = {s.name: s for s in symbols if isinstance(s, T.DocumentSymbol)}
    line = WIDE.splitlines().index("class Größe:")
    assert by_name["Größe"].selection_range == T.Range(
        T.Position(line, 6), T.Position(line, 6 + units("Größe", encoding))
    )
    found = await client.workspace_symbol_async(T.WorkspaceSymbolParams(query="Größe"))
    assert found is not None
    (sym,) = [s for s in found if s.name == "Größe"]
    assert isinstance(sym.location, T.Location)
    assert sym.location.range.end.character == 6 + units("Größe", encoding)
    # A hover on `total` in the call after six "€": in UTF-8 its column is past the line's
    # end in UTF-16 units, where nothing is.
    call = (WIDE + "\n\n" + CALL).splitlines().index(CALL.rstrip("\n"))
    col = units(CALL[: CALL.index("total") + 2], encoding)
    hover = await client.text_document_hover_async(
        T.HoverParams(T.TextDocumentIdentifier(editor.uri), T.Position(call, col))
    )
    assert hover is not None
    assert isinstance(hover.contents, T.MarkupContent)
    assert "total(items)" in hover.contents.value


def test_a_change_that_is_not_utf8_is_kept_and_the_document_stays_current(
    tmp_path: Path,
) -> None:
    """A didChange whose text holds an invalid byte (what a corrupting edit once caused) is read
    with the byte kept, logged in one line, and later changes still land where they should."""
    root = tmp_path / "proj"
    root.mkdir()
    path = root / "shop.py"
    text = 'x = "€"\ndef f():\n    return 1\n'
    path.write_text(text)
    server = RawServer({"KIMI_LSP_STATE_DIR": str(tmp_path / "state")})
    try:
        caps = {"general": {"positionEncodings": ["utf-8"]}}
        reply = server.request(
            1, "initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": caps}
        )
        assert reply["result"]["capabilities"]["positionEncoding"] == "utf-8"
        server.send({"method": "initialized", "params": {}})
        uri = path.as_uri()
        item = {"uri": uri, "languageId": "python", "version": 1, "text": text}
        server.send({"method": "textDocument/didOpen", "params": {"textDocument": item}})
        deadline = time.monotonic() + 20
        while not server.request(9, "workspace/symbol", {"query": "f"}).get("result"):
            assert time.monotonic() < deadline, "never indexed"
            time.sleep(0.05)
        # "€" (bytes 5..8 of line 0) becomes one invalid byte, 0xa6: the rest is valid JSON.
        change = {
            "range": {"start": {"line": 0, "character": 5}, "end": {"line": 0, "character": 8}},
            "text": "@",
        }
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "textDocument/didChange",
                "params": {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [change]},
            }
        ).encode()
        server.send_bytes(body.replace(b'"text": "@"', b'"text": "\xa6"'))
        # Then a change after the invalid byte on its line, in UTF-8 columns, and new lines.
        after = {"start": {"line": 0, "character": 6}, "end": {"line": 0, "character": 7}}
        insert = {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}}
        changes = [
            {"range": after, "text": '"  # ok'},  # the closing quote, byte 6
            {"range": insert, "text": "def g():\n    pass\n"},
        ]
        server.send(
            {
                "method": "textDocument/didChange",
                "params": {"textDocument": {"uri": uri, "version": 3}, "contentChanges": changes},
            }
        )
        reply = server.request(2, "textDocument/documentSymbol", {"textDocument": {"uri": uri}})
        names = {s["name"]: s["selectionRange"]["start"]["line"] for s in reply["result"]}
        assert names == {"x": 0, "g": 1, "f": 3}
        reply = server.request(
            3,
            "workspace/executeCommand",
            {
                "command": "kimi.showContext",
                "arguments": [{"uri": uri, "position": {"line": 3, "character": 4}}],
            },
        )
        assert "error" not in reply, reply
        assert "def f():" in reply["result"]["text"]
        assert "\ufffd" in reply["result"]["text"]  # the invalid byte, as the prompt shows it
        shown = []
        while not server.inbox.empty():
            msg = server.inbox.get()
            if msg.get("method") == "window/showMessage":
                shown.append(msg["params"]["message"])
        assert not [m for m in shown if "internal error" in m], shown
    finally:
        server.close()
    log = (tmp_path / "state" / "kimi-lsp.log").read_text()
    assert "not valid UTF-8 (byte 0xa6 at" in log
    assert "Unable to handle message" not in log
    assert "Traceback" not in log

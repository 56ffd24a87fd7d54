"""The index through a real LSP client: cold indexing with $/progress, the file watcher
registration, and edits in an open buffer visible to workspace/symbol at once."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient

SERVER = [sys.executable, "-m", "kimi_lsp"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "billing.py").write_text(
        "class Invoice:\n    def total(self):\n        return 1\n\n\ndef issue_invoice():\n"
        "    return Invoice()\n"
    )
    (root / "web.ts").write_text("export function renderInvoice(id: string) { return id; }\n")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "dep.js").write_text("function hiddenDependency() {}\n")
    return root


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, project: Path):  # type: ignore[no-untyped-def]
    lsp_client.registrations: list[T.Registration] = []  # type: ignore[misc]

    @lsp_client.feature(T.CLIENT_REGISTER_CAPABILITY)
    def register(params: T.RegistrationParams) -> None:
        lsp_client.registrations.extend(params.registrations)  # type: ignore[attr-defined]

    await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=T.ClientCapabilities(
                workspace=T.WorkspaceClientCapabilities(
                    did_change_watched_files=T.DidChangeWatchedFilesClientCapabilities(
                        dynamic_registration=True
                    ),
                    symbol=T.WorkspaceSymbolClientCapabilities(),
                ),
                text_document=T.TextDocumentClientCapabilities(
                    document_symbol=T.DocumentSymbolClientCapabilities(
                        hierarchical_document_symbol_support=True
                    )
                ),
                window=T.WindowClientCapabilities(work_done_progress=True),
            ),
            root_uri=project.as_uri(),
            workspace_folders=[T.WorkspaceFolder(uri=project.as_uri(), name="proj")],
        )
    )
    yield
    await lsp_client.shutdown_session()


async def symbols(client: LanguageClient, query: str) -> list[Any]:
    result = await client.workspace_symbol_async(T.WorkspaceSymbolParams(query=query))
    return list(result or [])


async def wait_indexed(client: LanguageClient, query: str) -> list[Any]:
    """Cold indexing runs in the background; wait (bounded) until `query` is found."""
    for _ in range(300):
        found = await symbols(client, query)
        if found:
            return found
        await asyncio.sleep(0.05)
    pytest.fail(f"{query!r} never appeared in workspace/symbol")


async def test_cold_index_reports_progress_and_registers_a_watcher(
    client: LanguageClient, project: Path
) -> None:
    (invoice,) = [s for s in await wait_indexed(client, "Invoice") if s.name == "Invoice"]
    assert invoice.kind == T.SymbolKind.Class
    assert invoice.location.uri == (project / "pkg" / "billing.py").as_uri()
    assert invoice.location.range.start == T.Position(line=0, character=6)
    assert [s.name for s in await symbols(client, "renderInv")] == ["renderInvoice"]
    assert await symbols(client, "hiddenDependency") == []  # node_modules is not indexed

    for _ in range(200):  # the end report follows the last answer by a moment
        reports = [r for rs in client.progress_reports.values() for r in rs]
        if any(r.kind == "end" for r in reports):
            break
        await asyncio.sleep(0.05)
    kinds = [r.kind for rs in client.progress_reports.values() for r in rs]
    assert kinds[0] == "begin"
    assert kinds[-1] == "end"
    (registration,) = client.registrations  # type: ignore[attr-defined]
    assert registration.method == T.WORKSPACE_DID_CHANGE_WATCHED_FILES
    globs = [w["globPattern"] for w in registration.register_options["watchers"]]
    assert any("py" in g for g in globs)


async def test_open_buffer_edits_are_visible_to_workspace_symbol_at_once(
    client: LanguageClient, project: Path
) -> None:
    await wait_indexed(client, "issue_invoice")
    uri = (project / "pkg" / "billing.py").as_uri()
    text = (project / "pkg" / "billing.py").read_text()
    client.text_document_did_open(
        T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "python", 1, text))
    )
    # Rename `issue_invoice` (line 5, characters 4-17) in the buffer only.
    client.text_document_did_change(
        T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                T.TextDocumentContentChangePartial(
                    range=T.Range(T.Position(5, 4), T.Position(5, 17)), text="send_invoice"
                )
            ],
        )
    )
    assert [s.name for s in await symbols(client, "send_invoice")] == ["send_invoice"]
    assert await symbols(client, "issue_invoice") == []

    # A new, unsaved buffer is indexed too, and its outline is nested.
    new_uri = (project / "draft.py").as_uri()
    client.text_document_did_open(
        T.DidOpenTextDocumentParams(
            T.TextDocumentItem(
                new_uri, "python", 1, "class Draft:\n    def write(self):\n        pass\n"
            )
        )
    )
    assert [s.name for s in await symbols(client, "Draft")] == ["Draft"]
    outline = await client.text_document_document_symbol_async(
        T.DocumentSymbolParams(text_document=T.TextDocumentIdentifier(new_uri))
    )
    assert outline is not None
    (draft,) = outline
    assert isinstance(draft, T.DocumentSymbol)
    assert draft.name == "Draft"
    assert [c.name for c in draft.children or []] == ["write"]
    assert (draft.children or [])[0].kind == T.SymbolKind.Method

    # Closing the edited buffer goes back to the disk (re-read in a thread: wait for it).
    client.text_document_did_close(T.DidCloseTextDocumentParams(T.TextDocumentIdentifier(uri)))
    assert [s.name for s in await wait_indexed(client, "issue_invoice")] == ["issue_invoice"]
    assert await symbols(client, "send_invoice") == []


async def test_the_outline_keeps_a_method_being_typed_and_its_class(
    client: LanguageClient, project: Path
) -> None:
    """A TypeScript method typed at the end of its file, its `}` not written yet: the parse
    loses it and the class; the outline is still the class and its methods."""
    await wait_indexed(client, "Invoice")
    uri = (project / "page.ts").as_uri()
    typing = (
        "export class Page {\n  title(): string {\n    return '{';\n  }\n\n"
        "  screenshot(clip: number): number {\n    if (clip) {\n      \n"
    )
    client.text_document_did_open(
        T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "typescript", 1, typing))
    )

    async def outline() -> list[tuple[str, list[str]]]:
        found = await client.text_document_document_symbol_async(
            T.DocumentSymbolParams(text_document=T.TextDocumentIdentifier(uri))
        )
        out = []
        for s in found or []:
            assert isinstance(s, T.DocumentSymbol)
            out.append((s.name, [c.name for c in s.children or []]))
        return out

    assert await outline() == [("Page", ["title", "screenshot"])]
    # A bracket left open mid-file does not lose what follows it.
    mid = (
        "export class Page {\n  title(): string {\n    log(\n    return 'x';\n  }\n\n"
        "  close(): void {\n    this.x();\n  }\n}\n"
    )
    client.text_document_did_change(
        T.DidChangeTextDocumentParams(
            T.VersionedTextDocumentIdentifier(uri=uri, version=2),
            [T.TextDocumentContentChangeWholeDocument(text=mid)],
        )
    )
    assert "close" in [n for _, children in await outline() for n in children]


async def test_watched_file_changes_update_the_index(client: LanguageClient, project: Path) -> None:
    await wait_indexed(client, "Invoice")
    added = project / "pkg" / "refunds.py"
    added.write_text("def refund_invoice():\n    pass\n")
    client.workspace_did_change_watched_files(
        T.DidChangeWatchedFilesParams(
            changes=[T.FileEvent(uri=added.as_uri(), type=T.FileChangeType.Created)]
        )
    )
    await wait_indexed(client, "refund_invoice")

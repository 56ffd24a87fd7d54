"""kimi.refactor for a client with change annotations (VS Code): a long refactor is one
``needsConfirmation`` edit proposed at the end (VS Code's Refactor Preview); nothing reaches
the document while it streams, there are no conflict markers, and a discarded preview leaves
the document as it was."""

from __future__ import annotations

from pathlib import Path

import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.e2e.conftest import SERVER
from tests.e2e.editor import EditorModel
from tests.e2e.test_actions_refactor import LONG, make_doc, refactor, rng
from tests.fake_kimi import FakeKimi

SIMPLER = "def total(items):\n    return sum(items)\n"


def capabilities() -> T.ClientCapabilities:
    return T.ClientCapabilities(
        workspace=T.WorkspaceClientCapabilities(
            apply_edit=True,
            workspace_edit=T.WorkspaceEditClientCapabilities(
                document_changes=True,
                change_annotation_support=T.ChangeAnnotationsSupportOptions(groups_on_label=True),
            ),
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


def proposed(editor: EditorModel) -> tuple[T.TextDocumentEdit, dict[str, T.ChangeAnnotation]]:
    (params,) = editor.applied  # one edit, at the end: nothing streamed into the document
    changes = params.edit.document_changes or []
    assert len(changes) == 1
    change = changes[0]
    assert isinstance(change, T.TextDocumentEdit)
    return change, dict(params.edit.change_annotations or {})


async def test_a_long_refactor_is_one_edit_to_confirm_without_conflict_markers(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    editor = make_doc(client, tmp_path, "b.py", LONG)
    fake_kimi.chunk_delay = 0.02
    fake_kimi.script(f"```python\n{SIMPLER}```", match="simplify", chunk_tokens=2)
    result = await refactor(client, {"uri": editor.uri, "range": rng(3, 8), "preset": "simplify"})
    assert result["applied"] is True
    assert result["review"] is True
    change, notes = proposed(editor)
    assert all(isinstance(e, T.AnnotatedTextEdit) for e in change.edits)
    ids = {e.annotation_id for e in change.edits if isinstance(e, T.AnnotatedTextEdit)}
    assert ids == set(notes)
    assert all(n.needs_confirmation for n in notes.values())
    assert all("total" in (n.description or "") for n in notes.values())
    assert "<<<<<<<" not in "".join(e.new_text for e in change.edits)
    assert editor.text == "import os\n\n\n" + SIMPLER
    assert (tmp_path / "proj" / "b.py").read_text() == LONG  # the server wrote no file


async def test_a_discarded_preview_leaves_the_document_and_shows_nothing_else(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    editor = make_doc(client, tmp_path, "c.py", LONG)
    fake_kimi.script(f"```python\n{SIMPLER}```", match="simplify")
    seen: list[T.ApplyWorkspaceEditParams] = []

    def discard(params: T.ApplyWorkspaceEditParams) -> T.ApplyWorkspaceEditResult:
        seen.append(params)
        return T.ApplyWorkspaceEditResult(applied=False, failure_reason="discarded")

    editor._apply = discard  # type: ignore[method-assign]
    result = await refactor(client, {"uri": editor.uri, "range": rng(3, 8), "preset": "simplify"})
    assert len(seen) == 1
    assert seen[0].edit.change_annotations
    assert result["applied"] is False
    assert result["reason"] == "discarded in the preview"
    assert result["preview"] is False  # no Markdown preview on top of the one discarded
    assert editor.text == LONG

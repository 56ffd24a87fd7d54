"""A test client that behaves like an editor: it holds the document, applies the server's
``workspace/applyEdit`` (refusing a stale version, as real editors do) and reports every change
back with ``didChange`` — the server's own edits and the 'user's typing alike."""

from __future__ import annotations

from typing import Any

from lsprotocol import types as T
from pytest_lsp import LanguageClient

from kimi_lsp.edits.stream import apply_edits
from kimi_lsp.positions import Encoding

_OPEN: dict[int, dict[str, EditorModel]] = {}  # per client: the documents it holds


def _dispatch(client: LanguageClient, params: T.ApplyWorkspaceEditParams) -> Any:
    uris = {
        c.text_document.uri
        for c in params.edit.document_changes or []
        if isinstance(c, T.TextDocumentEdit)
    } | set(params.edit.changes or {})
    (uri,) = uris
    return _OPEN[id(client)][uri]._apply(params)


class EditorModel:
    def __init__(
        self, client: LanguageClient, uri: str, text: str, encoding: Encoding = "utf-16"
    ) -> None:
        """``encoding``: how this editor counts a position's characters (as negotiated)."""
        self.client, self.uri, self.text, self.version = client, uri, text, 1
        self.encoding = encoding
        self.applied: list[T.ApplyWorkspaceEditParams] = []
        self.on_apply: Any = None  # called after each applied server edit
        if id(client) not in _OPEN:
            _OPEN[id(client)] = {}
            client.feature(T.WORKSPACE_APPLY_EDIT)(lambda params: _dispatch(client, params))
        _OPEN[id(client)][uri] = self
        client.text_document_did_open(
            T.DidOpenTextDocumentParams(
                T.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
            )
        )

    def _change(self, edits: list[T.TextEdit]) -> None:
        before = self.text
        self.text = apply_edits(before, edits, self.encoding)
        self.version += 1
        self.client.text_document_did_change(
            T.DidChangeTextDocumentParams(
                text_document=T.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
                content_changes=[
                    T.TextDocumentContentChangePartial(range=e.range, text=e.new_text)
                    for e in sorted(
                        edits,
                        key=lambda e: (e.range.start.line, e.range.start.character),
                        reverse=True,
                    )
                ],
            )
        )

    def _apply(self, params: T.ApplyWorkspaceEditParams) -> T.ApplyWorkspaceEditResult:
        edit = params.edit
        edits: list[T.TextEdit] = []
        for change in edit.document_changes or []:
            assert isinstance(change, T.TextDocumentEdit)
            if change.text_document.version not in (None, self.version):
                return T.ApplyWorkspaceEditResult(applied=False, failure_reason="stale version")
            edits += [
                T.TextEdit(range=e.range, new_text=e.new_text)  # annotated ones too
                for e in change.edits
                if isinstance(e, T.TextEdit | T.AnnotatedTextEdit)
            ]
        for uri, more in (edit.changes or {}).items():
            assert uri == self.uri
            edits += list(more)
        self._change(edits)
        self.applied.append(params)
        if self.on_apply is not None:
            self.on_apply(self)
        return T.ApplyWorkspaceEditResult(applied=True)

    def type(self, line: int, character: int, text: str) -> None:
        """The user types ``text`` at a position."""
        pos = T.Position(line=line, character=character)
        self._change([T.TextEdit(range=T.Range(start=pos, end=pos), new_text=text)])

"""Open, change, close and save: each notification fans out to the index and to the
streaming edits in progress, each listener isolated (one failing never stops the other)."""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types as T

from kimi_lsp.index.errors import BadDocumentChange

from ..client_edits import forward_user_changes
from ..convert import fs_path
from ..isolation import guarded
from ..session import KimiLanguageServer

logger = logging.getLogger(__name__)


def register(server: KimiLanguageServer) -> None:
    @server.feature(T.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: KimiLanguageServer, params: T.DidOpenTextDocumentParams) -> None:
        path = fs_path(params.text_document.uri)
        if ls.index is not None and path is not None:
            guarded("index: open", ls.index.open_document, path, params.text_document.text)

    @server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: KimiLanguageServer, params: T.DidChangeTextDocumentParams) -> None:
        guarded("streaming edits: the user's change", forward_user_changes, ls, params)
        guarded("index: change", _index_change, ls, params)

    @server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: KimiLanguageServer, params: T.DidCloseTextDocumentParams) -> None:
        path = fs_path(params.text_document.uri)
        if ls.index is not None and path is not None:
            await asyncio.to_thread(ls.index.close_document, path)

    @server.feature(T.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: KimiLanguageServer, params: T.DidSaveTextDocumentParams) -> None:
        path = fs_path(params.text_document.uri)
        if ls.index is not None and path is not None:
            await asyncio.to_thread(ls.index.file_changed_on_disk, path)


def _index_change(ls: KimiLanguageServer, params: T.DidChangeTextDocumentParams) -> None:
    path = fs_path(params.text_document.uri)
    if ls.index is None or path is None:
        return
    try:
        ls.index.change_document(path, params.content_changes, ls.encoding)
    except BadDocumentChange as exc:  # resync from pygls's copy of the buffer
        logger.warning("index: %s", exc)
        doc = ls.workspace.get_text_document(params.text_document.uri)
        ls.index.open_document(path, doc.source)

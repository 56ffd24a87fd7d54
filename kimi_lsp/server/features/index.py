"""The workspace index (kimi_lsp.index) behind documentSymbol and workspace/symbol, kept
current from the editor's buffers (features/documents.py), saves and a dynamically registered
file watcher. Cold indexing runs in a thread (its parsing in processes) and reports
``$/progress`` while every handler keeps answering with what is indexed so far."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from lsprotocol import types as T

from kimi_lsp.actions.readiness import prepare_for_prompts
from kimi_lsp.index.discovery import IGNORE_FILES
from kimi_lsp.index.languages import LANGUAGES
from kimi_lsp.index.workspace import WorkspaceIndex
from kimi_lsp.positions import DEFAULT, lsp_lines

from ..convert import (
    document_symbols,
    fs_path,
    read_current,
    workspace_roots,
    workspace_symbol,
)
from ..session import KimiLanguageServer

logger = logging.getLogger(__name__)

INDEX_WATCHER_ID = "kimi-index-files"
WORKSPACE_SYMBOL_LIMIT = 200


def register(server: KimiLanguageServer) -> None:
    @server.feature(T.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def files_changed(ls: KimiLanguageServer, params: T.DidChangeWatchedFilesParams) -> None:
        index = ls.index
        if index is None:
            return
        paths = [p for c in params.changes if (p := fs_path(c.uri)) is not None]
        for path in paths:
            await asyncio.to_thread(index.file_changed_on_disk, path)
        if any(p.name in IGNORE_FILES for p in paths):  # the rules changed: re-walk
            await asyncio.to_thread(index.update)

    @server.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbol(
        ls: KimiLanguageServer, params: T.DocumentSymbolParams
    ) -> list[T.DocumentSymbol]:
        path = fs_path(params.text_document.uri)
        if ls.index is None or path is None:
            return []
        outline = ls.index.outline(path)
        # A function being typed, its `}` not written yet: the parse lost it, and often its
        # class; the text with its brackets closed has them, unless closing them at the end
        # swallowed what follows (a bracket left open mid-file): then the parse's own.
        closed = ls.index.closed_outline(path)
        kept = {(d.name, d.name_range.start_line) for d in closed}
        if all((d.name, d.name_range.start_line) in kept for d in outline):
            outline = closed
        return document_symbols(outline, read_current(ls.workspace, path), ls.encoding)

    @server.feature(T.WORKSPACE_SYMBOL)
    def symbols(ls: KimiLanguageServer, params: T.WorkspaceSymbolParams) -> list[T.WorkspaceSymbol]:
        if ls.index is None:
            return []
        found = ls.index.symbols(params.query, WORKSPACE_SYMBOL_LIMIT)
        if ls.encoding == DEFAULT:
            return [workspace_symbol(d) for d in found]
        files: dict[Path, list[str]] = {}  # each file read once, as the client has it
        for d in found:
            if d.path not in files:
                files[d.path] = lsp_lines(read_current(ls.workspace, d.path) or "")
        return [workspace_symbol(d, files[d.path], ls.encoding) for d in found]


async def _register_watcher(ls: KimiLanguageServer) -> None:
    caps = ls.client_capabilities.workspace
    watched = caps.did_change_watched_files if caps else None
    if not (watched and watched.dynamic_registration):
        return
    exts = sorted({e.lstrip(".") for spec in LANGUAGES.values() for e in spec.extensions})
    watchers = [
        T.FileSystemWatcher(glob_pattern="**/*.{" + ",".join(exts) + "}"),
        T.FileSystemWatcher(glob_pattern="**/{" + ",".join(IGNORE_FILES) + "}"),
    ]
    options = T.DidChangeWatchedFilesRegistrationOptions(watchers=watchers)
    registration = T.Registration(
        id=INDEX_WATCHER_ID, method=T.WORKSPACE_DID_CHANGE_WATCHED_FILES, register_options=options
    )
    try:
        await ls.client_register_capability_async(T.RegistrationParams([registration]))
    except Exception as exc:  # the index still follows saves and open buffers
        logger.warning("could not register the file watcher: %s", exc)


async def start_index(ls: KimiLanguageServer) -> None:
    """Build the index at `initialized`: open buffers first, then the disk, with progress."""
    roots = workspace_roots(ls.workspace)
    if not roots:
        logger.info("index: no workspace folder; nothing to index")
        return
    s = ls.settings
    index = WorkspaceIndex(roots, state_dir=s.state_dir, max_file_bytes=s.max_file_bytes)
    for uri, doc in list(ls.workspace.text_documents.items()):
        if (path := fs_path(uri)) is not None:
            index.open_document(path, doc.source)
    ls.index = index
    await _register_watcher(ls)
    progress = _IndexProgress(ls, f"kimi-index-{os.getpid()}-{id(index)}")
    await progress.begin()
    message = "failed (see the log)"
    try:
        stats = await asyncio.to_thread(index.update, progress.report_from_thread)
        # The first name query answers at once, and the first prompt builds.
        await asyncio.to_thread(prepare_for_prompts, index)
        message = f"{stats.files} files, {stats.definitions} symbols in {stats.seconds:.1f} s"
        ls.status.index_progress(stats.files, stats.files, indexing=False)
        logger.info("index: %s (%d parsed)", message, stats.parsed)
    finally:
        progress.end(message)


class _IndexProgress:
    """``$/progress`` for the cold scan, where the client supports it; kimi/status always."""

    def __init__(self, ls: KimiLanguageServer, token: str) -> None:
        self.ls, self.token = ls, token
        window = ls.client_capabilities.window
        self.enabled = bool(window and window.work_done_progress)
        self._last = -1
        self._loop = asyncio.get_running_loop()

    async def begin(self) -> None:
        if not self.enabled:
            return
        try:
            await self.ls.work_done_progress.create_async(self.token)
        except Exception as exc:
            logger.warning("index: no progress token: %s", exc)
            self.enabled = False
            return
        begin = T.WorkDoneProgressBegin(title="Kimi: indexing", percentage=0)
        self.ls.work_done_progress.begin(self.token, begin)

    def report_from_thread(self, done: int, total: int) -> None:
        self._loop.call_soon_threadsafe(self.ls.status.index_progress, done, total)
        percentage = 100 * done // total if total else 100
        if self.enabled and percentage != self._last:
            self._last = percentage
            report = T.WorkDoneProgressReport(
                message=f"{done}/{total} files", percentage=percentage
            )
            self._loop.call_soon_threadsafe(self.ls.work_done_progress.report, self.token, report)

    def end(self, message: str) -> None:
        if self.enabled:
            self.ls.work_done_progress.end(self.token, T.WorkDoneProgressEnd(message=message))

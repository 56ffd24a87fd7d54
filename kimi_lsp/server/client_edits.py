"""Changing what the user sees: edits through ``workspace/applyEdit`` (versioned where the
client supports it), new files, documents opened with ``window/showDocument``, and the user's
own changes forwarded to streaming edits."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types as T

from kimi_lsp.edits.confirm import confirmation_edit, supports_confirmation
from kimi_lsp.edits.stream import apply_edits
from kimi_lsp.positions import valid_text

from .convert import edits_out

if TYPE_CHECKING:
    from .session import KimiLanguageServer

logger = logging.getLogger(__name__)

CATCH_UP_S = 3.0  # the longest a client's didChange for our edit is waited for
UNREPORTED_WAIT_S = 0.05  # once a client showed it reports only later


class LspEditor:
    """A document as the client has it; edits go through ``workspace/applyEdit``."""

    def __init__(self, ls: KimiLanguageServer, uri: str) -> None:
        self.ls, self.uri = ls, uri
        # Some clients apply an edit but report it only after the command returns (eglot
        # 1.9 sends no didChange while it waits for one). Then the text is what our edits
        # made of the last text the client reported, until it reports again.
        self._unreported: tuple[int | None, str] | None = None  # (version then, text now)
        self._echo_wait = CATCH_UP_S

    def text(self) -> str:
        """The text actions read (``valid_text``: an invalid byte the client sent is U+FFFD,
        one character for one, so UTF-16 positions on it hold on ``sent_text`` too)."""
        return valid_text(self.sent_text())

    def sent_text(self) -> str:
        """The text as the client has it: what its positions count on."""
        doc = self.ls.workspace.get_text_document(self.uri)
        if self._unreported is not None:
            if doc.version == self._unreported[0]:
                return self._unreported[1]
            self._unreported = None  # the client reported again: its text is the truth
        return str(doc.source)

    def _workspace_edit(self, edits: list[T.TextEdit], version: int | None) -> T.WorkspaceEdit:
        caps = self.ls.client_capabilities.workspace
        versioned = bool(caps and caps.workspace_edit and caps.workspace_edit.document_changes)
        if not versioned or version is None:
            return T.WorkspaceEdit(changes={self.uri: list(edits)})
        # Unreported edits moved the client's version past what we know: send none.
        known = version if self._unreported is None else None
        identifier = T.OptionalVersionedTextDocumentIdentifier(uri=self.uri, version=known)
        return T.WorkspaceEdit(
            document_changes=[T.TextDocumentEdit(text_document=identifier, edits=list(edits))]
        )

    @property
    def confirms_edits(self) -> bool:  # refactor.ConfirmingEditor: VS Code's Refactor Preview
        return supports_confirmation(self.ls.client_capabilities)

    async def propose(self, edits: list[T.TextEdit], label: str, description: str) -> bool:
        return await self.apply(edits, label, confirm=description)

    async def apply(self, edits: list[T.TextEdit], label: str, confirm: str | None = None) -> bool:
        doc = self.ls.workspace.get_text_document(self.uri)
        current = self.sent_text()
        sent = edits_out(current, edits, self.ls.encoding)  # the library counts UTF-16
        if confirm is not None:
            change = confirmation_edit(self.uri, doc.version, sent, label, confirm)
        else:
            change = self._workspace_edit(sent, doc.version)
        before = doc.version
        expected = apply_edits(current, edits)
        self.ls.expected_text[self.uri] = expected
        try:
            result = await self.ls.workspace_apply_edit_async(
                T.ApplyWorkspaceEditParams(edit=change, label=label)
            )
        except Exception as exc:
            logger.warning("workspace/applyEdit failed: %s", exc)
            return False
        if not result.applied:
            logger.info("the client did not apply the edit: %s", result.failure_reason)
            return False
        if not await self._caught_up(before):
            self._unreported = (before, expected)
        return True

    async def _caught_up(self, before: int | None) -> bool:
        """Wait for the didChange that reports our edit: clients may answer applyEdit first
        and send (debounced) didChange later; the next edit must be computed on the new text.
        False when none came: the client reports later (then the next edits go unversioned
        onto the text our edits made, and later ones do not wait long)."""
        if before is None:
            return True
        for _ in range(max(1, int(self._echo_wait / 0.01))):
            if self.ls.workspace.get_text_document(self.uri).version != before:
                return True
            await asyncio.sleep(0.01)
        logger.info("no didChange for %s after an applied edit: the client reports later", self.uri)
        self._echo_wait = UNREPORTED_WAIT_S
        return False


class LspFileCreator:
    """Creates a file with its content: ``CreateFile`` plus an insert in one workspace edit
    where the client supports it, else on disk (the editor then sees a new file)."""

    def __init__(self, ls: KimiLanguageServer) -> None:
        self.ls = ls

    def _can_create(self) -> bool:
        caps = self.ls.client_capabilities.workspace
        edit_caps = caps.workspace_edit if caps else None
        ops = (edit_caps.resource_operations or []) if edit_caps else []
        return bool(
            edit_caps and edit_caps.document_changes and T.ResourceOperationKind.Create in ops
        )

    async def create(self, path: Path, text: str) -> bool:
        if self._can_create():
            uri = path.as_uri()
            start = T.Position(line=0, character=0)
            identifier = T.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None)
            insert = T.TextEdit(range=T.Range(start=start, end=start), new_text=text)
            change = T.WorkspaceEdit(
                document_changes=[
                    T.CreateFile(uri=uri, options=T.CreateFileOptions(ignore_if_exists=True)),
                    T.TextDocumentEdit(text_document=identifier, edits=[insert]),
                ]
            )
            result = await self.ls.workspace_apply_edit_async(
                T.ApplyWorkspaceEditParams(edit=change, label="Kimi: generate tests")
            )
            return bool(result.applied)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("x", encoding="utf-8") as f:  # never overwrite a file
                f.write(text)

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            logger.warning("cannot create %s: %s", path, exc)
            return False
        return True


async def show_markdown(ls: KimiLanguageServer, path: Path, text: str) -> str | None:
    """Open ``text`` as a document where the client can; else show it as a message."""

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    try:
        await asyncio.to_thread(write)
    except OSError as exc:
        logger.warning("cannot write %s: %s", path, exc)
    uri = path.as_uri()
    if await show_document(ls, uri):
        return uri
    ls.show(text)
    return None


async def show_document(ls: KimiLanguageServer, uri: str) -> bool:
    """``window/showDocument`` without taking focus, where the client supports it."""
    window = ls.client_capabilities.window
    if not (window and window.show_document and window.show_document.support):
        return False
    try:
        await ls.window_show_document_async(T.ShowDocumentParams(uri=uri, take_focus=False))
    except Exception as exc:
        logger.warning("window/showDocument failed: %s", exc)
        return False
    return True


def forward_user_changes(ls: KimiLanguageServer, params: T.DidChangeTextDocumentParams) -> None:
    """Tell streaming edits about the user's changes (a change that is our own edit coming back
    leaves the document exactly as that edit expected)."""
    uri = params.text_document.uri
    sessions = ls.edit_sessions.get(uri)
    if not sessions:
        return
    now = ls.workspace.get_text_document(uri).source
    if ls.expected_text.get(uri) == now:
        return
    for change in params.content_changes:
        rng = getattr(change, "range", None)
        for writer in sessions.values():
            writer.user_changed(rng, change.text)

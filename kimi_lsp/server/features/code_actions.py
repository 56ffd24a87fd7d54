"""Code actions: Kimi's offers at the cursor (instant, no model call; each runs as a command)
and, on a review block, ``Kimi: Accept`` / ``Kimi: Reject`` as plain edits every client can
apply."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lsprotocol import types as T

from kimi_lsp.actions.code_actions import KIND_REFACTOR, Offer, offers
from kimi_lsp.actions.errors import IgnoredFile, NothingToWorkOn
from kimi_lsp.actions.explain import has_cached_explanation
from kimi_lsp.actions.services import Services
from kimi_lsp.actions.target import find_target
from kimi_lsp.edits.stream import find_review_block, resolve_review
from kimi_lsp.positions import valid_text

from ..convert import fs_path, range_in
from ..session import KimiLanguageServer

KINDS = [
    T.CodeActionKind.QuickFix,
    T.CodeActionKind.RefactorRewrite,
    T.CodeActionKind.Refactor,  # explain, tests (actions/code_actions.py)
    T.CodeActionKind.Source,
]


def register(server: KimiLanguageServer) -> None:
    @server.feature(T.TEXT_DOCUMENT_CODE_ACTION, T.CodeActionOptions(code_action_kinds=KINDS))
    async def code_action(ls: KimiLanguageServer, params: T.CodeActionParams) -> list[T.CodeAction]:
        uri, rng = params.text_document.uri, params.range  # the client's units: the
        path = fs_path(uri)  # offers pass them on to their commands, which convert them
        services = ls.action_services()
        converter = ls.protocol._converter
        text = _text(ls, uri)
        at = range_in(text, rng, ls.encoding) if text is not None else rng  # UTF-16
        valid = text and valid_text(text)
        target = _has_target(services, path, valid, at)  # asked once: it may parse the buffer
        found = offers(
            uri,
            converter.unstructure(rng),
            diagnostics=[converter.unstructure(d) for d in params.context.diagnostics],
            available=set(ls.protocol.fm.commands),
            has_target=target,
            cached_explanation=target and await _cached(services, path, valid, at),
        )
        tags = _llm_tags(ls)
        wanted = params.context.only
        return _review_actions(ls, uri, rng.start.line, tags) + [
            _code_action(ls, o, params.context.diagnostics, tags)
            for o in found
            if not wanted or any(o.kind.startswith(str(k)) for k in wanted)
        ]


def _has_target(services: Services, path: Path | None, text: str | None, rng: T.Range) -> bool:
    """Whether an action at the cursor has something to work on: what the action itself
    will find (`find_target`), so a function being typed, whose parse lost it, is offered
    too."""
    if (rng.start.line, rng.start.character) != (rng.end.line, rng.end.character):
        return True  # a selection is a target
    index = services.index
    if path is None or index is None:
        return False
    line, col = rng.start.line, rng.start.character
    if text is None:
        return index.enclosing_definition(path, line, col) is not None
    try:
        find_target(index, path, text, line, col)
    except (NothingToWorkOn, IgnoredFile):
        return False
    return True


def _text(ls: KimiLanguageServer, uri: str) -> str | None:
    try:
        return str(ls.workspace.get_text_document(uri).source)
    except OSError:
        return None


async def _cached(services: Services, path: Path | None, text: str | None, rng: T.Range) -> bool:
    """Is an explanation stored for the target there is (the offer then says
    "Regenerate")?"""
    if path is None or text is None:
        return False
    return await has_cached_explanation(services, path, text, rng.start.line, rng.start.character)


def _llm_tags(ls: KimiLanguageServer) -> list[T.CodeActionTag] | None:
    """LSP 3.18's LLMGenerated tag, for clients that say they know it."""
    caps = ls.client_capabilities.text_document
    tag_support = caps.code_action.tag_support if caps and caps.code_action else None
    if tag_support and T.CodeActionTag.LlmGenerated in tag_support.value_set:
        return [T.CodeActionTag.LlmGenerated]
    return None


def _code_action(
    ls: KimiLanguageServer,
    offer: Offer,
    diagnostics: Sequence[T.Diagnostic],
    tags: list[T.CodeActionTag] | None,
) -> T.CodeAction:
    unstructure: Any = ls.protocol._converter.unstructure
    fixes = [
        d
        for d in diagnostics
        if offer.diagnostic is not None and unstructure(d) == offer.diagnostic
    ]
    return T.CodeAction(
        title=offer.title,
        kind=offer.kind,
        command=T.Command(title=offer.title, command=offer.command, arguments=[offer.argument]),
        diagnostics=fixes or None,
        tags=tags,
    )


def _review_actions(
    ls: KimiLanguageServer, uri: str, line: int, tags: list[T.CodeActionTag] | None
) -> list[T.CodeAction]:
    """Kimi: Accept / Kimi: Reject on a review block: plain edits, so every client can."""
    text = _text(ls, uri)
    if text is None:
        return []
    block = find_review_block(text, line)
    if block is None:
        return []
    return [
        T.CodeAction(
            title="Kimi: Accept" if accept else "Kimi: Reject",
            kind=KIND_REFACTOR,
            edit=T.WorkspaceEdit(
                changes={uri: [resolve_review(text, block, accept=accept, encoding=ls.encoding)]}
            ),
            is_preferred=accept,
            tags=tags,
        )
        for accept in (True, False)
    ]

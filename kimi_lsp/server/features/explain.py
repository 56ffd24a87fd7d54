"""``kimi.explain`` (one streamed Markdown answer, opened as a document) and hover (the
definition's signature and docstring, with Kimi's stored explanation when there is one)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lsprotocol import types as T

from kimi_lsp.actions.explain import explain, safe_file_name
from kimi_lsp.actions.hover import NO_EXPLANATION, explain_for_hover, hover_markdown
from kimi_lsp.positions import valid_text

from ..client_edits import show_markdown
from ..convert import position_in, where
from ..progress import LspSink, run_command
from ..session import KimiLanguageServer


def register(server: KimiLanguageServer) -> None:
    @server.command("kimi.explain")
    async def cmd_explain(ls: KimiLanguageServer, *args: Any) -> dict[str, Any]:
        async def work(params: dict[str, Any], sink: LspSink) -> dict[str, Any]:
            w = where(ls.workspace, params, ls.encoding)
            path, text, line, col, selection = w.path, w.text, w.line, w.col, w.selection
            regenerate = bool(params.get("regenerate"))
            result = await explain(
                ls.action_services(params), path, text, line, col, sink,
                selection=selection, regenerate=regenerate,
            )  # fmt: skip
            name = safe_file_name(result.target.name) + ".md"
            shown = await show_markdown(
                ls, ls.settings.state_dir / "explanations" / name, result.markdown
            )
            return {
                "text": result.answer.text,
                "cached": result.answer.cached,
                "document": shown,
                "symbol": result.target.name,
            }

        return await run_command(ls, "explain", "Kimi: Explain", args, work)

    @server.feature(T.TEXT_DOCUMENT_HOVER)
    async def hover(ls: KimiLanguageServer, params: T.HoverParams) -> T.Hover | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        try:
            text = doc.source
        except OSError:
            return None
        at = position_in(text, params.position, ls.encoding)
        md = await _hover_text(ls, Path(doc.path), valid_text(text), at)
        if md is None:
            return None
        return T.Hover(contents=T.MarkupContent(kind=T.MarkupKind.Markdown, value=md))


async def _hover_text(ls: KimiLanguageServer, path: Path, text: str, pos: T.Position) -> str | None:
    services = ls.action_services()
    md = await hover_markdown(services, path, text, pos.line, pos.character)
    wait_ms = ls.settings.hover_wait_ms
    if md is None or not (wait_ms and NO_EXPLANATION in md and ls.settings.has_api_key):
        return md
    # Opt-in: spend quota on a fresh explanation, shown if it arrives in time; the run goes
    # on either way, so the next hover has it.
    run = ls.runs.start(
        "hover-explain",
        f"{path}:{pos.line}",
        explain_for_hover(services, path, text, pos.line, pos.character),
    )
    done, _ = await asyncio.wait({run.task}, timeout=wait_ms / 1000)
    if done:
        md = await hover_markdown(services, path, text, pos.line, pos.character) or md
    return md

"""``kimi.refactor``: the answer streamed into the document as edits (a review block for
long targets); what cannot be written without overwriting the user's work is a preview."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsprotocol import types as T

from kimi_lsp.actions.explain import safe_file_name
from kimi_lsp.actions.refactor import RefactorResult, refactor

from ..client_edits import LspEditor, show_markdown
from ..convert import where
from ..progress import LspSink, run_command
from ..session import KimiLanguageServer


def register(server: KimiLanguageServer) -> None:
    @server.command("kimi.refactor")
    async def cmd_refactor(ls: KimiLanguageServer, *args: Any) -> dict[str, Any]:
        async def work(params: dict[str, Any], sink: LspSink) -> dict[str, Any]:
            w = where(ls.workspace, params, ls.encoding)
            uri, path, line, col, selection = w.uri, w.path, w.line, w.col, w.selection
            preset = params.get("preset")
            sessions = ls.edit_sessions.setdefault(uri, {})
            try:
                result = await refactor(
                    ls.action_services(params), LspEditor(ls, uri), path, line, col, sink,
                    selection=selection,
                    instruction=str(params.get("instruction") or ""),
                    preset=str(preset) if preset else None,
                    regenerate=bool(params.get("regenerate")),
                    sessions=sessions,
                    session_key=sink.run_id,
                )  # fmt: skip
            finally:
                if not sessions:
                    ls.edit_sessions.pop(uri, None)
            for warning in result.warnings:
                ls.show(f"Kimi: {warning}", T.MessageType.Warning)
            return await _reply(ls, path, result)

        return await run_command(ls, "refactor", "Kimi: Refactor", args, work)


async def _reply(ls: KimiLanguageServer, path: Path, result: RefactorResult) -> dict[str, Any]:
    document_uri = None
    if result.preview is not None:
        # Nothing of the user's is overwritten: the rest of the answer is a preview.
        note = f"Kimi stopped editing {path.name}: {result.reason}."
        doc = ls.settings.state_dir / "previews" / f"{safe_file_name(path.name)}.md"
        fence = path.suffix.lstrip(".")
        document_uri = await show_markdown(ls, doc, f"{note}\n\n```{fence}\n{result.preview}```\n")
    return {
        "applied": result.applied,
        "review": result.review,
        "preview": result.preview is not None,
        "document": document_uri,
        "reason": result.reason,
        "cached": result.cached,
        "warnings": result.warnings,
    }

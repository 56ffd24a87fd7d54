"""``kimi.showContext``: the exact messages an action would send, opened as a document; it
sends nothing to Kimi."""

from __future__ import annotations

from typing import Any

from pygls.exceptions import JsonRpcInvalidParams

from kimi_lsp.actions.context_report import render
from kimi_lsp.actions.explain import safe_file_name
from kimi_lsp.actions.prompts import INSTRUCTIONS
from kimi_lsp.actions.prompts import build as build_prompt
from kimi_lsp.actions.target import find_target

from ..client_edits import show_markdown
from ..convert import command_arg, where
from ..progress import USER_ERRORS
from ..protocol import RequestFailed
from ..session import KimiLanguageServer


def register(server: KimiLanguageServer) -> None:
    @server.command("kimi.showContext")
    async def cmd_show_context(ls: KimiLanguageServer, *args: Any) -> dict[str, Any]:
        params = command_arg(args)
        w = where(ls.workspace, params, ls.encoding)
        path, text, line, col, selection = w.path, w.text, w.line, w.col, w.selection
        action = str(params.get("action") or "explain")
        if action not in INSTRUCTIONS:
            raise JsonRpcInvalidParams(f"unknown action {action!r}; one of {sorted(INSTRUCTIONS)}")
        services = ls.action_services(params)
        try:
            target = find_target(services.index, path, text, line, col, selection)
            built = build_prompt(services, action, target, text)
        except USER_ERRORS as exc:
            raise RequestFailed(str(getattr(exc, "message", exc))) from exc
        shown = render(built)
        doc = ls.settings.state_dir / "context" / (safe_file_name(target.name) + ".md")
        return {
            "uri": await show_markdown(ls, doc, shown),
            "text": shown,
            "messages": built.messages,
            "leftOut": built.left_out,
            "tokens": built.tokens,
            "redactions": built.redactions,
        }

"""``kimi.refactorWorkspace``: one instruction over many files, planned, confirmed when it
costs more than the setting allows, answered in parallel within the quota, applied as one
workspace edit (or only reported, with ``dryRun``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsprotocol import types as T

from kimi_lsp.actions.workspace import (
    WorkspacePlan,
    plan_workspace,
    run_workspace,
    wait_for_whole_index,
)
from kimi_lsp.positions import valid_text

from ..convert import read_current, where
from ..progress import LspSink, run_command
from ..session import KimiLanguageServer


def register(server: KimiLanguageServer) -> None:
    @server.command("kimi.refactorWorkspace")
    async def cmd_refactor_workspace(ls: KimiLanguageServer, *args: Any) -> dict[str, Any]:
        async def work(params: dict[str, Any], sink: LspSink) -> dict[str, Any]:
            services = ls.action_services()
            scope = params.get("scope")
            await wait_for_whole_index(services, sink)
            plan = plan_workspace(
                services,
                str(params.get("instruction") or ""),
                lambda p: _read(ls, p),
                scope=[str(g) for g in scope] if isinstance(scope, list) else None,
                symbol=_symbol(ls, params.get("symbol")),
                max_files=int(params.get("maxFiles") or 50),
            )
            summary = plan.summary(ls.settings.model)
            if params.get("planOnly") or not plan.files:
                return {"plan": summary, "applied": False, "changed": [], "failed": {}}
            if not params.get("confirmed") and not await _confirmed(ls, plan):
                return {"plan": summary, "applied": False, "reason": "not confirmed"}
            result = await run_workspace(
                services,
                plan,
                sink,
                lambda p: _read(ls, p),
                _versions(ls, plan),
                encoding=ls.encoding,
            )
            applied = False
            if result.edit is not None and not params.get("dryRun"):
                label = "Kimi: " + plan.instruction
                reply = await ls.workspace_apply_edit_async(
                    T.ApplyWorkspaceEditParams(edit=result.edit, label=label)
                )
                applied = bool(reply.applied)
            return {"plan": summary, "applied": applied, "diff": result.diff, **result.report()}

        return await run_command(ls, "workspace", "Kimi: Refactor workspace", args, work)


def _symbol(ls: KimiLanguageServer, arg: Any) -> tuple[Path, int, int] | None:
    if not isinstance(arg, dict):
        return None
    w = where(ls.workspace, arg, ls.encoding)
    return w.path, w.line, w.col


def _read(ls: KimiLanguageServer, path: Path) -> str | None:
    text = read_current(ls.workspace, path)
    return None if text is None else valid_text(text)


async def _confirmed(ls: KimiLanguageServer, plan: WorkspacePlan) -> bool:
    question = plan.confirmation(ls.settings.model, ls.settings.workspace_confirm_usd)
    if question is None:
        return True
    answer = await ls.window_show_message_request_async(
        T.ShowMessageRequestParams(
            type=T.MessageType.Warning,
            message=question,
            actions=[T.MessageActionItem("Run"), T.MessageActionItem("Cancel")],
        )
    )
    return answer is not None and answer.title == "Run"


def _versions(ls: KimiLanguageServer, plan: WorkspacePlan) -> dict[Path, int | None]:
    """The versions of the plan's files open in the editor: a file edited meanwhile is stale."""
    docs = ls.workspace.text_documents
    return {f.path: docs[f.path.as_uri()].version for f in plan.files if f.path.as_uri() in docs}

"""The runs in progress and the quota they spend: ``kimi.cancel``, progress cancel buttons,
``kimi.quota``."""

from __future__ import annotations

from typing import Any

from lsprotocol import types as T

from kimi_lsp.actions.code_actions import preset_list

from ..convert import command_arg
from ..session import KimiLanguageServer


def register(server: KimiLanguageServer) -> None:
    @server.command("kimi.refactorPresets")
    def cmd_refactor_presets(ls: KimiLanguageServer, *args: Any) -> dict[str, Any]:
        """The refactor presets (``preset`` of kimi.refactor), for the clients' pickers."""
        return {"presets": preset_list()}

    @server.command("kimi.quota")
    def cmd_quota(ls: KimiLanguageServer, *args: Any) -> dict[str, Any]:
        """Limits, usage in the current windows, waiting requests, cool-down; cache savings."""
        quota, cache = ls.action_services().answers.status()
        return {**(quota or {}), "cache": cache}

    @server.command("kimi.cancel")
    def cmd_cancel(ls: KimiLanguageServer, *args: Any) -> dict[str, Any]:
        run_id = command_arg(args).get("runId")
        return {"cancelled": ls.runs.cancel(run_id if isinstance(run_id, str) else None)}

    @server.feature(T.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancel(ls: KimiLanguageServer, params: T.WorkDoneProgressCancelParams) -> None:
        run = ls.runs.by_token(str(params.token))
        if run is not None:
            run.task.cancel()

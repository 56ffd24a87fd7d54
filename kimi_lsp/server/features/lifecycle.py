"""initialize, initialized, settings, shutdown and exit, the editor process watch, and
``kimi/serverState`` (settings with their sources, problems, documents, background work)."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from lsprotocol import types as T

from kimi_lsp import __version__
from kimi_lsp.config import CONFIG_SECTION
from kimi_lsp.logs import attach_client_log, setup_logging

from ..session import KimiLanguageServer
from .index import start_index

logger = logging.getLogger(__name__)

PARENT_CHECK_INTERVAL_S = 3.0
DEBUG_HOOKS_ENV = "KIMI_LSP_DEBUG_HOOKS"
SERVER_STATE = "kimi/serverState"


def register(server: KimiLanguageServer) -> None:
    @server.feature(T.INITIALIZE)
    def initialize(ls: KimiLanguageServer, params: T.InitializeParams) -> None:
        ls.init_options = params.initialization_options
        ls.reload_settings()
        setup_logging(ls.settings.state_dir, ls.log_level_override or ls.settings.log_level)
        if params.process_id:
            ls.spawn(_watch_parent(ls, params.process_id), name="watch-parent")
        logger.info("initialize from %s (pid %s)", params.client_info, params.process_id)

    @server.feature(T.INITIALIZED)
    async def initialized(ls: KimiLanguageServer, params: T.InitializedParams) -> None:
        attach_client_log(
            lambda level, text: ls.window_log_message(
                T.LogMessageParams(type=T.MessageType(level), message=text)
            )
        )
        await ls.pull_workspace_settings()
        ls.spawn(start_index(ls), name="index")

    @server.feature(T.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: KimiLanguageServer, params: T.DidChangeConfigurationParams
    ) -> None:
        pushed = params.settings
        if isinstance(pushed, dict) and isinstance(pushed.get(CONFIG_SECTION), dict):
            ls.workspace_config = pushed[CONFIG_SECTION]
            ls.reload_settings()
        else:  # the client only told us something changed: ask for it
            await ls.pull_workspace_settings()

    @server.feature(T.SHUTDOWN)
    def shutdown(ls: KimiLanguageServer, *args: Any) -> None:
        logger.info("shutdown: cancelling %d background tasks", len(ls.background))
        ls.cancel_background()

    @server.feature(T.EXIT)
    def exit_(ls: KimiLanguageServer, *args: Any) -> None:
        # pygls's own exit raises SystemExit inside a future callback, which is swallowed and
        # the process ends 0 regardless; the spec wants 1 when no shutdown came first.
        code = 0 if ls.protocol._shutdown else 1
        ls.cancel_background()
        logger.info("exit (%d)", code)
        logging.shutdown()
        os._exit(code)

    @server.feature(SERVER_STATE)
    def server_state(ls: KimiLanguageServer, *args: Any) -> dict[str, Any]:
        """What the server holds: for troubleshooting and the tests."""
        docs = ls.workspace.text_documents
        return {
            "version": __version__,
            "settings": ls.loaded.report(),
            "problems": ls.loaded.problems,
            "openDocuments": [{"uri": uri, "version": doc.version} for uri, doc in docs.items()],
            "background": sorted(t.get_name() for t in ls.background),
        }

    if os.environ.get(DEBUG_HOOKS_ENV) == "1":  # for the end-to-end tests only
        _register_debug_hooks(server)


def _register_debug_hooks(server: KimiLanguageServer) -> None:
    @server.feature("kimi/_raise")
    def _raise(ls: KimiLanguageServer, *args: Any) -> None:
        raise RuntimeError("deliberate failure for the tests")

    @server.feature("kimi/_sleep")
    async def _sleep(ls: KimiLanguageServer, *args: Any) -> str:
        await asyncio.sleep(60)
        return "slept"


async def _watch_parent(ls: KimiLanguageServer, pid: int) -> None:
    """Exit when the editor that started us is gone (stdin may be held open by others)."""
    while True:
        await asyncio.sleep(PARENT_CHECK_INTERVAL_S)
        if not _process_alive(pid):
            logger.warning("Editor process %s is gone; exiting", pid)
            ls.cancel_background()
            logging.shutdown()
            os._exit(0)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

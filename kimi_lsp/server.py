"""The language server: pygls wiring only.

Each LSP method gets a few lines that convert parameters, call one piece of logic from the
packages below and convert the result back. This is the only module that imports pygls.

Lifecycle rules kept here (see docs/architecture.md):
- every request is answered exactly once; a request whose params do not validate gets
  ``InvalidParams`` (pygls 2.1 drops it silently; ``KimiProtocol`` fixes that);
- a handler that raises becomes an error response and a log line; out-of-band errors show at
  most one message a minute and never stop the server;
- ``shutdown`` cancels in-flight requests and background work; the server exits when the
  editor process named in ``initialize`` dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import cattrs
from lsprotocol import types as T
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from kimi_lsp import __version__
from kimi_lsp.config import CONFIG_SECTION, LoadedSettings, Settings, load_settings
from kimi_lsp.logs import attach_client_log, setup_logging

logger = logging.getLogger(__name__)

PARENT_CHECK_INTERVAL_S = 3.0
ERROR_MESSAGE_INTERVAL_S = 60.0
DEBUG_HOOKS_ENV = "KIMI_LSP_DEBUG_HOOKS"

# Custom methods (rich clients only; every core flow also works with standard LSP alone).
SERVER_STATE = "kimi/serverState"
STATUS_NOTIFICATION = "kimi/status"
STREAM_NOTIFICATION = "kimi/stream"

_T = TypeVar("_T")


@dataclass
class _UnreadableRequest:
    """A request whose params failed validation: answered with InvalidParams, never dropped."""

    id: int | str
    method: str
    reason: str
    jsonrpc: str = "2.0"


@dataclass
class _UnreadableNotification:
    method: str
    reason: str
    jsonrpc: str = "2.0"


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, cattrs.ClassValidationError | cattrs.IterableValidationError):
        return "; ".join(cattrs.transform_error(exc))
    return str(exc) if exc else "invalid params"


class KimiProtocol(LanguageServerProtocol):
    """pygls's protocol, with malformed requests answered instead of dropped."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            method = data.get("method") if isinstance(data, dict) else None
            if not isinstance(method, str):
                raise
            reason = _describe(exc.__cause__)
            if "id" in data and isinstance(data["id"], int | str):
                return _UnreadableRequest(id=data["id"], method=method, reason=reason)
            return _UnreadableNotification(method=method, reason=reason)

    def handle_message(self, message: Any) -> None:
        if isinstance(message, _UnreadableRequest):
            logger.warning(
                "Invalid params for %s (id %s): %s", message.method, message.id, message.reason
            )
            error = JsonRpcInvalidParams(f"Invalid params for {message.method}: {message.reason}")
            self._send_response(message.id, error=error.to_response_error())
            return
        if isinstance(message, _UnreadableNotification):
            logger.warning("Ignoring %s with invalid params: %s", message.method, message.reason)
            return
        super().handle_message(message)


class KimiLanguageServer(LanguageServer):
    """The server object handlers receive: settings, background work and error reporting."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__("kimi-lsp", __version__, protocol_cls=KimiProtocol)
        self.loaded: LoadedSettings = load_settings()
        self._init_options: Any = None
        self._workspace_config: Any = None
        self._reported: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._clock = clock
        self._last_error_message = float("-inf")
        self.settings_listeners: list[Callable[[Settings], None]] = []
        self.log_level_override: str | None = None

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    # -- settings -------------------------------------------------------------------------

    def reload_settings(self) -> None:
        self.loaded = load_settings(os.environ, self._init_options, self._workspace_config)
        for problem in self.loaded.problems:
            if problem not in self._reported:  # each problem is reported once per session
                self._reported.add(problem)
                logger.warning("Settings: %s", problem)
                self.window_show_message(
                    T.ShowMessageParams(type=T.MessageType.Warning, message=f"kimi-lsp: {problem}")
                )
        for listener in self.settings_listeners:
            try:
                listener(self.settings)
            except Exception:
                logger.exception("settings listener failed")

    async def pull_workspace_settings(self) -> None:
        caps = self.client_capabilities.workspace
        if not (caps and caps.configuration):
            return
        try:
            result = await self.workspace_configuration_async(
                T.ConfigurationParams(items=[T.ConfigurationItem(section=CONFIG_SECTION)])
            )
        except Exception as exc:  # the client may not answer; settings stay as they are
            logger.warning("workspace/configuration failed: %s", exc)
            return
        self._workspace_config = result[0] if result else None
        self.reload_settings()

    # -- background work ------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, _T], name: str | None = None) -> asyncio.Task[_T]:
        """Run work that outlives the request; cancelled on shutdown, errors logged."""
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._background.add(task)

        def _done(t: asyncio.Task[Any]) -> None:
            self._background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.error("background task %s failed", t.get_name(), exc_info=t.exception())

        task.add_done_callback(_done)
        return task

    def cancel_background(self) -> None:
        for task in list(self._background):
            task.cancel()

    def link_cancel(self) -> None:
        """Make $/cancelRequest reach the running command.

        pygls runs ``workspace/executeCommand`` handlers as an inner task; a cancel only cancels
        the outer request future. Propagate it to the current task. (Reads a private pygls
        attribute; pygls is pinned in pyproject.toml for this reason.)
        """
        msg_id = self.protocol.msg_id
        outer = self.protocol._request_futures.get(msg_id) if msg_id is not None else None
        task = asyncio.current_task()
        if outer is not None and task is not None:
            outer.add_done_callback(lambda f: f.cancelled() and task.cancel())

    # -- errors -----------------------------------------------------------------------------

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Log every error; show at most one message a minute; never stop the server."""
        if isinstance(error, json.JSONDecodeError):
            # A body that is not JSON: JSON-RPC says answer with a parse error and id null.
            # Sent as a plain dict: pygls's converter would drop the null id the spec requires.
            self.protocol._send_data(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
            )
            logger.warning("Unparseable message: %s", error)
            return
        logger.error("Server error (%s): %s", getattr(source, "__name__", source), error)
        from pygls.exceptions import FeatureRequestError

        if source is FeatureRequestError:
            return  # the response already carries the error
        now = self._clock()
        if now - self._last_error_message < ERROR_MESSAGE_INTERVAL_S:
            return
        self._last_error_message = now
        with contextlib.suppress(Exception):
            self.window_show_message(
                T.ShowMessageParams(
                    type=T.MessageType.Error,
                    message=f"kimi-lsp hit an internal error: {error} (details in the log file)",
                )
            )


def _watch_parent(ls: KimiLanguageServer, pid: int) -> Coroutine[Any, Any, None]:
    async def watch() -> None:
        while True:
            await asyncio.sleep(PARENT_CHECK_INTERVAL_S)
            if not _process_alive(pid):
                logger.warning("Editor process %s is gone; exiting", pid)
                ls.cancel_background()
                logging.shutdown()
                os._exit(0)  # stdin may be held open by someone else: do not wait for it

    return watch()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def create_server() -> KimiLanguageServer:
    """Build the server and register every handler."""
    server = KimiLanguageServer()

    @server.feature(T.INITIALIZE)
    def initialize(ls: KimiLanguageServer, params: T.InitializeParams) -> None:
        ls._init_options = params.initialization_options
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

    @server.feature(T.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: KimiLanguageServer, params: T.DidChangeConfigurationParams
    ) -> None:
        pushed = params.settings
        if isinstance(pushed, dict) and isinstance(pushed.get(CONFIG_SECTION), dict):
            ls._workspace_config = pushed[CONFIG_SECTION]
            ls.reload_settings()
        else:  # the client only told us something changed: ask for it
            await ls.pull_workspace_settings()

    @server.feature(T.SHUTDOWN)
    def shutdown(ls: KimiLanguageServer, *args: Any) -> None:
        logger.info("shutdown: cancelling %d background tasks", len(ls._background))
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
        """What the server holds: for `kimi.showContext`-style troubleshooting and the tests."""
        docs = ls.workspace.text_documents
        return {
            "version": __version__,
            "settings": ls.loaded.report(),
            "problems": ls.loaded.problems,
            "openDocuments": [{"uri": uri, "version": doc.version} for uri, doc in docs.items()],
            "background": sorted(t.get_name() for t in ls._background),
        }

    if os.environ.get(DEBUG_HOOKS_ENV) == "1":  # for the end-to-end tests only

        @server.feature("kimi/_raise")
        def _raise(ls: KimiLanguageServer, *args: Any) -> None:
            raise RuntimeError("deliberate failure for the tests")

        @server.feature("kimi/_sleep")
        async def _sleep(ls: KimiLanguageServer, *args: Any) -> str:
            await asyncio.sleep(60)
            return "slept"

    return server


def serve(*, tcp: str | None = None, log_level: str | None = None) -> int:
    """Run the server on stdio, or on ``HOST:PORT``; returns the exit code."""
    server = create_server()
    server.log_level_override = log_level
    setup_logging(server.settings.state_dir, log_level or server.settings.log_level)
    if tcp:
        host, _, port = tcp.rpartition(":")
        if not host or not port.isdigit():
            print(f"kimi-lsp: --tcp expects HOST:PORT, got {tcp!r}", file=sys.stderr)
            return 2
        server.start_tcp(host, int(port))
    else:
        server.start_io()
    return 0

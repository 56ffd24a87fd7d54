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
import contextvars
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

import cattrs
from lsprotocol import types as T
from pygls.exceptions import JsonRpcException, JsonRpcInternalError, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from kimi_lsp import __version__
from kimi_lsp.actions.code_actions import KIND_REFACTOR, offers
from kimi_lsp.actions.explain import explain, has_cached_explanation, safe_file_name
from kimi_lsp.actions.hover import NO_EXPLANATION, explain_for_hover, hover_markdown
from kimi_lsp.actions.prompts import INSTRUCTIONS
from kimi_lsp.actions.prompts import build as build_prompt
from kimi_lsp.actions.refactor import refactor
from kimi_lsp.actions.runs import RunRegistry
from kimi_lsp.actions.services import Services
from kimi_lsp.actions.stores import CacheStore
from kimi_lsp.actions.target import find_target
from kimi_lsp.actions.testgen import generate_tests
from kimi_lsp.actions.workspace import plan_workspace, run_workspace
from kimi_lsp.cache import DisabledCache, ResponseCache, open_cache
from kimi_lsp.config import CONFIG_SECTION, LoadedSettings, Settings, load_settings
from kimi_lsp.edits.stream import RegionWriter, apply_edits, find_review_block, resolve_review
from kimi_lsp.errors import KimiLspError
from kimi_lsp.index import Span
from kimi_lsp.index.discovery import IGNORE_FILES  # --- index ---
from kimi_lsp.index.errors import BadDocumentChange
from kimi_lsp.index.languages import LANGUAGES
from kimi_lsp.index.model import Definition, DefinitionKind
from kimi_lsp.index.model import Span as IndexSpan
from kimi_lsp.index.workspace import WorkspaceIndex
from kimi_lsp.llm import KimiClient, total_cost_usd
from kimi_lsp.logs import attach_client_log, setup_logging
from kimi_lsp.quota import QuotaGovernor, limits_for

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

    @lsp_method(T.WORKSPACE_EXECUTE_COMMAND)
    def lsp_workspace__execute_command(self, params: T.ExecuteCommandParams) -> Any:
        # The command handler runs in a copy of this context: it can read the client's token.
        _WORK_DONE_TOKEN.set(params.work_done_token)
        return (yield from super().lsp_workspace__execute_command(params))

    @lsp_method(T.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Any:
        """pygls's shutdown, iterating over a copy: cancelling a request removes it from the
        dict being walked ("dictionary changed size during iteration")."""
        if (user_handler := self.fm.features.get(T.SHUTDOWN)) is not None:
            yield user_handler, args, None
        current_id = self.msg_id
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current_id and not future.done():
                future.cancel()
        self._shutdown = True
        return None

    def _run_generator(self, future: Any, *, gen: Any, result_future: Any) -> None:
        """A cancelled inner handler (a command stopped by kimi.cancel) must still answer its
        request: pygls lets asyncio.CancelledError (a BaseException) escape and never replies."""
        if future is not None and future.cancelled():
            gen.close()
            if not result_future.done():
                result_future.cancel()
            return
        super()._run_generator(future, gen=gen, result_future=result_future)

    def _send_response(self, msg_id: Any, result: Any = None, error: Any = None) -> None:
        """Exactly one response per request, even when the result cannot be serialised."""
        if error is None:
            try:
                json.dumps(result, default=self._serialize_message)
            except Exception as exc:
                logger.exception("Cannot serialise the result of request %s", msg_id)
                error = JsonRpcInternalError(f"Cannot serialise the result: {exc}")
                error = error.to_response_error()
                result = None
        super()._send_response(msg_id, result=result, error=error)

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
        self.log_level_override: str | None = None
        self.index: WorkspaceIndex | None = None  # --- index ---: built at `initialized`
        self.status = StatusPublisher(self)
        self.runs = RunRegistry(on_change=self.status.changed)
        # Streaming edits in progress, by document; and the text each expects after its own
        # last edit, to tell its own didChange from the user's.
        self.edit_sessions: dict[str, dict[str, RegionWriter]] = {}
        self.expected_text: dict[str, str] = {}
        self._services: Services | None = None
        self._cache_setting: str | None = None
        self._quota_key: tuple[object, ...] | None = None
        self._quota_store_down = False  # what the user was last told about the quota store

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
        if self._services is not None and self._services.settings != self.settings:
            old = self._services.reconfigure(self.settings)
            if old is not None:
                self.spawn(_close_later(old), name="close-old-client")

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

    def say_quota_store(self, governor: QuotaGovernor) -> None:
        """Tell the user once when the team's quota store stops answering (a local share of
        the limits stands in), and once when it answers again."""
        down = bool(governor.fallback)
        if down == self._quota_store_down:
            return
        self._quota_store_down = down
        if down:
            logger.warning("quota: %s", governor.fallback)
            message, kind = f"kimi-lsp: {governor.fallback}", T.MessageType.Warning
        else:
            message = "kimi-lsp: the team's quota store answers again; its limits are shared again"
            kind = T.MessageType.Info
        self.window_show_message(T.ShowMessageParams(type=kind, message=message))

    def action_services(self) -> Services:
        """The services actions use, built on first use from the current settings."""
        if self._services is None:
            self._services = Services(self.settings, _index_roots(self))
            self._services.editor.open_documents = self.open_paths
        s = self.settings
        quota_key = (s.tier, s.limits, str(s.state_dir), s.quota_store, s.quota_reserve)
        if self._quota_key != quota_key:  # first use, or the limits changed
            governor = QuotaGovernor.from_setting(
                self.settings.quota_store,
                self.settings.state_dir,
                limits_for(self.settings.tier, self.settings.parsed_limits),
                reserve=self.settings.quota_reserve,
            )
            self._services.admission = governor
            self._quota_key = quota_key
            self._quota_store_down = False
            self.say_quota_store(governor)
        if self._cache_setting != self.settings.cache:  # first use, or the setting changed
            old = self._services.store
            self._services.store = _open_store(self.settings)
            self._cache_setting = self.settings.cache
            if isinstance(old, CacheStore):
                self.spawn(old.aclose(), name="close-cache")
        self._services.index = self.index
        return self._services

    def open_paths(self) -> list[Path]:
        """The files open in the editor (for ranking what a prompt carries)."""
        paths = (_fs_path(uri) for uri in list(self.workspace.text_documents))
        return [p for p in paths if p is not None]

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


async def _close_later(client: KimiClient, grace_s: float = 120.0) -> None:
    """Close a replaced client once the answers streaming through it had time to finish."""
    try:
        await asyncio.sleep(grace_s)
    finally:
        await client.aclose()


def _open_store(settings: Settings) -> CacheStore:
    """The response cache the setting names; a cache that cannot open is reported, not fatal."""
    try:
        cache: ResponseCache = open_cache(settings.cache, settings.state_dir)
    except Exception as exc:
        logger.warning("the response cache is off: %s", exc)
        cache = DisabledCache(problem=str(exc))
    return CacheStore(cache)


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
        ls.spawn(start_index(ls), name="index")  # --- index ---

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

    register_index(server)  # --- index ---
    register_actions(server)
    return server


# --- actions -------------------------------------------------------------------------------
# Commands take one object argument (docs/architecture.md, "Commands and notifications").

_WORK_DONE_TOKEN: contextvars.ContextVar[T.ProgressToken | None] = contextvars.ContextVar(
    "kimi_work_done_token", default=None
)
STREAM_THROTTLE_S = 0.1  # at most ~10 progress reports a second while text streams


STATUS_DELAY_S = 0.25  # kimi/status at most four times a second


class StatusPublisher:
    """``kimi/status`` for rich clients: index, runs, cache (and quota), sent when they change."""

    def __init__(self, ls: KimiLanguageServer) -> None:
        self.ls = ls
        self.index: dict[str, Any] = {"files": 0, "indexing": False, "done": 0, "total": 0}
        self._pending: asyncio.TimerHandle | None = None

    def index_progress(self, done: int, total: int, *, indexing: bool = True) -> None:
        self.index.update(done=done, total=total, indexing=indexing)
        if not indexing:
            self.index["files"] = total
        self.changed()

    def payload(self) -> dict[str, Any]:
        services = self.ls._services
        store = services.store if services is not None else None
        cache = store.stats() if isinstance(store, CacheStore) else None
        admission = services.admission if services is not None else None
        quota = admission.snapshot() if isinstance(admission, QuotaGovernor) else None
        if isinstance(admission, QuotaGovernor):
            self.ls.say_quota_store(admission)  # the store may have gone away, or come back
        if quota is not None:
            quota["todayUsd"] = round(total_cost_usd(quota.get("byModel", {})), 6)
        return {
            "quota": quota,
            "index": dict(self.index),
            "runs": len(self.ls.runs),
            "cache": cache,
        }

    def changed(self) -> None:
        if self._pending is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._pending = loop.call_later(STATUS_DELAY_S, self._send)

    def _send(self) -> None:
        self._pending = None
        with contextlib.suppress(Exception):  # the editor may be gone
            self.ls.protocol.notify(STATUS_NOTIFICATION, self.payload())


class RequestFailed(JsonRpcException):
    """LSP's RequestFailed (-32803): the request was valid but the action could not be done."""

    CODE = -32803
    MESSAGE = "Request failed"


class LspSink:
    """An action's progress and text, to every client: ``$/progress`` for all, ``kimi/stream``
    for rich clients."""

    def __init__(
        self, ls: KimiLanguageServer, run_id: str, action: str, token: T.ProgressToken | None
    ) -> None:
        self.ls, self.run_id, self.action, self.token = ls, run_id, action, token
        self.chars = 0
        self.summary = ""
        self._last_report = float("-inf")

    def _stream(self, kind: str, **fields: Any) -> None:
        payload = {"runId": self.run_id, "action": self.action, "kind": kind, **fields}
        self.ls.protocol.notify(STREAM_NOTIFICATION, payload)

    def _report(self, message: str, *, force: bool = False) -> None:
        if self.token is None:
            return
        now = time.monotonic()
        if not force and now - self._last_report < STREAM_THROTTLE_S:
            return
        self._last_report = now
        self.ls.work_done_progress.report(self.token, T.WorkDoneProgressReport(message=message))

    def begin(self, title: str, uri: str | None) -> None:
        if self.token is not None:
            self.ls.work_done_progress.begin(
                self.token, T.WorkDoneProgressBegin(title=title, cancellable=True)
            )
        self._stream("start", title=title, uri=uri)

    def progress(self, message: str) -> None:
        if message.startswith("done:"):
            self.summary = message  # becomes the end message
        elif message.startswith(("waiting", "sending")):
            self.ls.status.changed()  # the quota queue moved: kimi/status shows it
        self._report(message, force=True)

    def text(self, delta: str) -> None:
        self.chars += len(delta)
        self._stream("text", text=delta)
        self._report(f"streaming: {self.chars} characters")

    def reasoning(self, delta: str) -> None:
        self._stream("reasoning", text=delta)
        self._report("thinking")

    def end(self, message: str, *, cached: bool = False) -> None:
        self._stream("end", cached=cached, message=message)
        if self.token is not None:
            self.ls.work_done_progress.end(self.token, T.WorkDoneProgressEnd(message=message))
            self.ls.work_done_progress.tokens.pop(self.token, None)

    def fail(self, message: str) -> None:
        self._stream("error", message=message)
        if self.token is not None:
            self.ls.work_done_progress.end(self.token, T.WorkDoneProgressEnd(message=message))
            self.ls.work_done_progress.tokens.pop(self.token, None)


def _command_arg(args: tuple[Any, ...]) -> dict[str, Any]:
    if not args:
        return {}
    if len(args) == 1 and isinstance(args[0], dict):
        return args[0]
    if len(args) == 1 and args[0] in ([], None):  # Lua's {} is encoded as [] (or omitted)
        return {}
    raise JsonRpcInvalidParams("kimi commands take one argument: an object (see the docs)")


def _position(params: dict[str, Any]) -> tuple[int, int, Span | None]:
    """The cursor and the selection from a command's argument (LSP shapes)."""
    rng = params.get("range")
    pos = params.get("position")
    try:
        selection = None
        if isinstance(rng, dict):
            a, b = rng["start"], rng["end"]
            selection = Span(
                int(a["line"]), int(a["character"]), int(b["line"]), int(b["character"])
            )
            if pos is None:
                pos = a
        if not isinstance(pos, dict):
            raise KeyError("position")
        return int(pos["line"]), int(pos["character"]), selection
    except (KeyError, TypeError, ValueError) as exc:
        raise JsonRpcInvalidParams(
            f"expected {{uri, position}} or {{uri, range}} with LSP positions; missing {exc}"
        ) from exc


def _document(ls: KimiLanguageServer, params: dict[str, Any]) -> tuple[str, Path, str]:
    uri = params.get("uri")
    if not isinstance(uri, str):
        raise JsonRpcInvalidParams("missing 'uri'")
    doc = ls.workspace.get_text_document(uri)
    try:
        text = doc.source
    except OSError as exc:
        raise RequestFailed(f"Cannot read {uri}: {exc.strerror or exc}") from exc
    return uri, Path(doc.path), text


async def _progress_token(ls: KimiLanguageServer) -> T.ProgressToken | None:
    token = _WORK_DONE_TOKEN.get()
    if token is not None:
        return token
    window = ls.client_capabilities.window
    if not (window and window.work_done_progress):
        return None
    token = f"kimi-{uuid.uuid4()}"
    try:
        await ls.work_done_progress.create_async(token)
    except Exception as exc:
        logger.warning("window/workDoneProgress/create failed: %s", exc)
        return None
    return token


async def run_command(
    ls: KimiLanguageServer,
    action: str,
    title: str,
    args: tuple[Any, ...],
    work: Callable[[dict[str, Any], LspSink], Coroutine[Any, Any, dict[str, Any]]],
) -> dict[str, Any]:
    """The frame of every long command: a run, a progress bar, errors the user can read."""
    ls.link_cancel()
    params = _command_arg(args)
    target = f"{params.get('uri')}:{(params.get('range') or params.get('position') or {})}"
    token = await _progress_token(ls)
    run = ls.runs.adopt(action, target, token=str(token) if token is not None else None)
    sink = LspSink(ls, run.id, action, token)
    sink.begin(title, params.get("uri"))
    try:
        result = await work(params, sink)
    except asyncio.CancelledError:
        sink.end("cancelled")
        raise
    except KimiLspError as exc:  # every package's error: its message is for the user
        message = exc.message
        sink.fail(message)
        ls.window_show_message(
            T.ShowMessageParams(type=T.MessageType.Error, message=f"Kimi: {message}")
        )
        raise RequestFailed(message) from exc
    except JsonRpcException as exc:
        sink.fail(str(exc))
        raise
    except Exception as exc:
        logger.exception("%s failed", action)
        sink.fail(f"internal error: {exc}")
        raise
    cached = bool(result.get("cached"))
    sink.end("cached answer" if cached else (sink.summary or "done"), cached=cached)
    return {"runId": run.id, **result}


async def _show_markdown(ls: KimiLanguageServer, path: Path, text: str) -> str | None:
    """Open ``text`` as a document where the client can; else show it as a message."""

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    try:
        await asyncio.to_thread(write)
    except OSError as exc:
        logger.warning("cannot write %s: %s", path, exc)
    window = ls.client_capabilities.window
    if window and window.show_document and window.show_document.support:
        uri = path.as_uri()
        try:
            await ls.window_show_document_async(T.ShowDocumentParams(uri=uri, take_focus=False))
            return uri
        except Exception as exc:
            logger.warning("window/showDocument failed: %s", exc)
    ls.window_show_message(T.ShowMessageParams(type=T.MessageType.Info, message=text))
    return None


def _review_actions(
    ls: KimiLanguageServer, uri: str, line: int, tags: list[T.CodeActionTag] | None
) -> list[T.CodeAction]:
    """Kimi: Accept / Kimi: Reject on a review block: plain edits, so every client can."""
    try:
        text = ls.workspace.get_text_document(uri).source
    except OSError:
        return []
    block = find_review_block(text, line)
    if block is None:
        return []
    out = []
    for accept in (True, False):
        title = "Kimi: Accept" if accept else "Kimi: Reject"
        edit = resolve_review(text, block, accept=accept)
        out.append(
            T.CodeAction(
                title=title,
                kind=KIND_REFACTOR,
                edit=T.WorkspaceEdit(changes={uri: [edit]}),
                is_preferred=accept,
                tags=tags,
            )
        )
    return out


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
        doc = self.ls.workspace.get_text_document(self.uri)
        if self._unreported is not None:
            if doc.version == self._unreported[0]:
                return self._unreported[1]
            self._unreported = None  # the client reported again: its text is the truth
        return str(doc.source)

    async def apply(self, edits: list[T.TextEdit], label: str) -> bool:
        doc = self.ls.workspace.get_text_document(self.uri)
        current = self.text()
        caps = self.ls.client_capabilities.workspace
        versioned = bool(caps and caps.workspace_edit and caps.workspace_edit.document_changes)
        if versioned and doc.version is not None:
            # Unreported edits moved the client's version past what we know: send none.
            version = doc.version if self._unreported is None else None
            change = T.WorkspaceEdit(
                document_changes=[
                    T.TextDocumentEdit(
                        text_document=T.OptionalVersionedTextDocumentIdentifier(
                            uri=self.uri, version=version
                        ),
                        edits=list(edits),
                    )
                ]
            )
        else:
            change = T.WorkspaceEdit(changes={self.uri: list(edits)})
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

    async def create(self, path: Path, text: str) -> bool:
        caps = self.ls.client_capabilities.workspace
        edit_caps = caps.workspace_edit if caps else None
        ops = (edit_caps.resource_operations or []) if edit_caps else []
        if edit_caps and edit_caps.document_changes and T.ResourceOperationKind.Create in ops:
            uri = path.as_uri()
            start = T.Position(line=0, character=0)
            change = T.WorkspaceEdit(
                document_changes=[
                    T.CreateFile(uri=uri, options=T.CreateFileOptions(ignore_if_exists=True)),
                    T.TextDocumentEdit(
                        text_document=T.OptionalVersionedTextDocumentIdentifier(
                            uri=uri, version=None
                        ),
                        edits=[T.TextEdit(range=T.Range(start=start, end=start), new_text=text)],
                    ),
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


def _read_current(ls: KimiLanguageServer, path: Path) -> str | None:
    """A file as the editor has it: the open buffer, else the disk."""
    doc = ls.workspace.text_documents.get(path.as_uri())
    if doc is not None:
        return str(doc.source)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


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


def register_actions(server: KimiLanguageServer) -> None:
    @server.command("kimi.explain")
    async def cmd_explain(ls: KimiLanguageServer, *args: Any) -> dict[str, Any]:
        async def work(params: dict[str, Any], sink: LspSink) -> dict[str, Any]:
            _uri, path, text = _document(ls, params)
            line, col, selection = _position(params)
            services = ls.action_services()
            result = await explain(
                services,
                path,
                text,
                line,
                col,
                sink,
                selection=selection,
                regenerate=bool(params.get("regenerate")),
            )
            doc = (
                ls.settings.state_dir
                / "explanations"
                / (safe_file_name(result.target.name) + ".md")
            )
            shown = await _show_markdown(ls, doc, result.markdown)
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
        pos = params.position
        services = ls.action_services()
        path = Path(doc.path)
        md = await hover_markdown(services, path, text, pos.line, pos.character)
        if md is None:
            return None
        wait_ms = ls.settings.hover_wait_ms
        if wait_ms and NO_EXPLANATION in md and ls.settings.has_api_key:
            # Opt-in: spend quota on a fresh explanation, shown if it arrives in time; the run
            # goes on either way, so the next hover has it.
            run = ls.runs.start(
                "hover-explain",
                f"{path}:{pos.line}",
                explain_for_hover(services, path, text, pos.line, pos.character),
            )
            done, _ = await asyncio.wait({run.task}, timeout=wait_ms / 1000)
            if done:
                md = await hover_markdown(services, path, text, pos.line, pos.character) or md
        return T.Hover(contents=T.MarkupContent(kind=T.MarkupKind.Markdown, value=md))

    @server.feature(
        T.TEXT_DOCUMENT_CODE_ACTION,
        T.CodeActionOptions(
            code_action_kinds=[
                T.CodeActionKind.QuickFix,
                T.CodeActionKind.RefactorRewrite,
                T.CodeActionKind.Source,
            ]
        ),
    )
    async def code_action(ls: KimiLanguageServer, params: T.CodeActionParams) -> list[T.CodeAction]:
        uri = params.text_document.uri
        path = _fs_path(uri)
        rng = params.range
        services = ls.action_services()
        if path is not None:  # what the client shows there: ranks context for the actions
            services.editor.diagnostics[path] = [
                IndexSpan(d.range.start.line, d.range.start.character, d.range.end.line,
                          d.range.end.character)
                for d in params.context.diagnostics
            ]  # fmt: skip
        selected = (rng.start.line, rng.start.character) != (rng.end.line, rng.end.character)
        has_target = selected or (
            path is not None
            and services.index is not None
            and services.index.enclosing_definition(path, rng.start.line, rng.start.character)
            is not None
        )
        cached = False
        if has_target and path is not None:
            with contextlib.suppress(OSError):
                text = ls.workspace.get_text_document(uri).source
                cached = await has_cached_explanation(
                    services, path, text, rng.start.line, rng.start.character
                )
        converter = ls.protocol._converter
        found = offers(
            uri,
            converter.unstructure(rng),
            diagnostics=[converter.unstructure(d) for d in params.context.diagnostics],
            available=set(ls.protocol.fm.commands),
            has_target=has_target,
            cached_explanation=cached,
        )
        caps = ls.client_capabilities.text_document
        tag_support = caps.code_action.tag_support if caps and caps.code_action else None
        tags = (
            [T.CodeActionTag.LlmGenerated]
            if tag_support and T.CodeActionTag.LlmGenerated in tag_support.value_set
            else None
        )
        wanted = params.context.only
        review = _review_actions(ls, uri, rng.start.line, tags)
        return review + [
            T.CodeAction(
                title=o.title,
                kind=o.kind,
                command=T.Command(title=o.title, command=o.command, arguments=[o.argument]),
                diagnostics=[
                    d
                    for d in params.context.diagnostics
                    if o.diagnostic is not None and converter.unstructure(d) == o.diagnostic
                ]
                or None,
                tags=tags,
            )
            for o in found
            if not wanted or any(o.kind.startswith(str(k)) for k in wanted)
        ]

    @server.command("kimi.refactor")
    async def cmd_refactor(ls: KimiLanguageServer, *args: Any) -> dict[str, Any]:
        async def work(params: dict[str, Any], sink: LspSink) -> dict[str, Any]:
            uri, path, _text = _document(ls, params)
            line, col, selection = _position(params)
            preset = params.get("preset")
            sessions = ls.edit_sessions.setdefault(uri, {})
            try:
                result = await refactor(
                    ls.action_services(),
                    LspEditor(ls, uri),
                    path,
                    line,
                    col,
                    sink,
                    selection=selection,
                    instruction=str(params.get("instruction") or ""),
                    preset=str(preset) if preset else None,
                    regenerate=bool(params.get("regenerate")),
                    sessions=sessions,
                    session_key=sink.run_id,
                )
            finally:
                if not sessions:
                    ls.edit_sessions.pop(uri, None)
            document = None
            for warning in result.warnings:
                ls.window_show_message(
                    T.ShowMessageParams(type=T.MessageType.Warning, message=f"Kimi: {warning}")
                )
            if result.preview is not None:
                # Nothing of the user's is overwritten: the rest of the answer is a preview.
                note = f"Kimi stopped editing {path.name}: {result.reason}."
                doc = ls.settings.state_dir / "previews" / f"{safe_file_name(path.name)}.md"
                fence = path.suffix.lstrip(".")
                document = await _show_markdown(
                    ls, doc, f"{note}\n\n```{fence}\n{result.preview}```\n"
                )
            return {
                "applied": result.applied,
                "review": result.review,
                "preview": result.preview is not None,
                "document": document,
                "reason": result.reason,
                "cached": result.cached,
                "warnings": result.warnings,
            }

        return await run_command(ls, "refactor", "Kimi: Refactor", args, work)

    @server.command("kimi.generateTests")
    async def cmd_generate_tests(ls: KimiLanguageServer, *args: Any) -> dict[str, Any]:
        async def work(params: dict[str, Any], sink: LspSink) -> dict[str, Any]:
            _uri, path, text = _document(ls, params)
            line, col, selection = _position(params)
            result = await generate_tests(
                ls.action_services(),
                path,
                text,
                line,
                col,
                sink,
                open_test_file=lambda p: LspEditor(ls, p.as_uri()),
                creator=LspFileCreator(ls),
                selection=selection,
                regenerate=bool(params.get("regenerate")),
            )
            test_uri = result.test_file.as_uri()
            window = ls.client_capabilities.window
            if result.applied and window and window.show_document and window.show_document.support:
                with contextlib.suppress(Exception):
                    await ls.window_show_document_async(
                        T.ShowDocumentParams(uri=test_uri, take_focus=False)
                    )
            if not result.applied:
                ls.window_show_message(
                    T.ShowMessageParams(
                        type=T.MessageType.Warning,
                        message=f"Kimi: the tests were not written: {result.reason}",
                    )
                )
            return {
                "testUri": test_uri,
                "created": result.created,
                "applied": result.applied,
                "reason": result.reason,
                "cached": result.cached,
            }

        return await run_command(ls, "tests", "Kimi: Generate tests", args, work)

    @server.command("kimi.refactorWorkspace")
    async def cmd_refactor_workspace(ls: KimiLanguageServer, *args: Any) -> dict[str, Any]:
        async def work(params: dict[str, Any], sink: LspSink) -> dict[str, Any]:
            services = ls.action_services()
            symbol = None
            if isinstance(params.get("symbol"), dict):
                _uri, path, _text = _document(ls, params["symbol"])
                line, col, _sel = _position(params["symbol"])
                symbol = (path, line, col)
            scope = params.get("scope")
            plan = plan_workspace(
                services,
                str(params.get("instruction") or ""),
                lambda p: _read_current(ls, p),
                scope=[str(g) for g in scope] if isinstance(scope, list) else None,
                symbol=symbol,
                max_files=int(params.get("maxFiles") or 50),
            )
            summary = plan.summary(ls.settings.model)
            if params.get("planOnly") or not plan.files:
                return {"plan": summary, "applied": False, "changed": [], "failed": {}}
            cost = plan.cost_usd(ls.settings.model) or 0.0
            if cost > ls.settings.workspace_confirm_usd and not params.get("confirmed"):
                question = (
                    f"Kimi will rewrite up to {len(plan.files)} files for about "
                    f"{plan.tokens} tokens (~${cost:.2f}). Go ahead?"
                )
                answer_ = await ls.window_show_message_request_async(
                    T.ShowMessageRequestParams(
                        type=T.MessageType.Warning,
                        message=question,
                        actions=[T.MessageActionItem("Run"), T.MessageActionItem("Cancel")],
                    )
                )
                if answer_ is None or answer_.title != "Run":
                    return {"plan": summary, "applied": False, "reason": "not confirmed"}
            versions = {
                f.path: ls.workspace.text_documents[f.path.as_uri()].version
                for f in plan.files
                if f.path.as_uri() in ls.workspace.text_documents
            }
            result = await run_workspace(
                services, plan, sink, lambda p: _read_current(ls, p), versions
            )
            applied = False
            if result.edit is not None and not params.get("dryRun"):
                reply = await ls.workspace_apply_edit_async(
                    T.ApplyWorkspaceEditParams(edit=result.edit, label="Kimi: " + plan.instruction)
                )
                applied = bool(reply.applied)
            return {"plan": summary, "applied": applied, "diff": result.diff, **result.report()}

        return await run_command(ls, "workspace", "Kimi: Refactor workspace", args, work)

    @server.command("kimi.showContext")
    async def cmd_show_context(ls: KimiLanguageServer, *args: Any) -> dict[str, Any]:
        """The exact messages an action would send, opened as a document; sends nothing."""
        params = _command_arg(args)
        _uri, path, text = _document(ls, params)
        line, col, selection = _position(params)
        action = str(params.get("action") or "explain")
        if action not in INSTRUCTIONS:
            raise JsonRpcInvalidParams(f"unknown action {action!r}; one of {sorted(INSTRUCTIONS)}")
        services = ls.action_services()
        try:
            target = find_target(services.index, path, text, line, col, selection)
            built = build_prompt(services, action, target, text)
        except KimiLspError as exc:
            raise RequestFailed(exc.message) from exc
        messages = built.messages
        shown = "\n\n".join(f"## {m['role']}\n\n{m['content']}" for m in messages)
        table = "\n".join(f"| {s.name} | {s.tokens} |" for s in built.sections)
        shown += (
            f"\n\n## Sections\n\n| section | tokens (estimated) |\n|---|---|\n{table}\n\n"
            f"Total {built.tokens}; stable prefix {built.stable_prefix_tokens}; "
            f"{built.redactions} secrets redacted."
        )
        if built.left_out:
            shown += "\n\nLeft out: " + "; ".join(built.left_out)
        doc = ls.settings.state_dir / "context" / (safe_file_name(target.name) + ".md")
        uri = await _show_markdown(ls, doc, shown)
        return {
            "uri": uri,
            "text": shown,
            "messages": messages,
            "leftOut": built.left_out,
            "tokens": built.tokens,
            "redactions": built.redactions,
        }

    @server.command("kimi.quota")
    def cmd_quota(ls: KimiLanguageServer, *args: Any) -> dict[str, Any]:
        """Limits, usage in the current windows, waiting requests, cool-down; cache savings."""
        services = ls.action_services()
        assert isinstance(services.admission, QuotaGovernor)
        store = services.store
        return {
            **services.admission.snapshot(),
            "cache": store.stats() if isinstance(store, CacheStore) else None,
        }

    @server.command("kimi.cancel")
    def cmd_cancel(ls: KimiLanguageServer, *args: Any) -> dict[str, Any]:
        params = _command_arg(args)
        run_id = params.get("runId")
        return {"cancelled": ls.runs.cancel(run_id if isinstance(run_id, str) else None)}

    @server.feature(T.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancel(ls: KimiLanguageServer, params: T.WorkDoneProgressCancelParams) -> None:
        run = ls.runs.by_token(str(params.token))
        if run is not None:
            run.task.cancel()


# --- index ---------------------------------------------------------------------------------
# The workspace index (kimi_lsp.index) behind documentSymbol and workspace/symbol, kept
# current from the editor's buffers, saves and a dynamically registered file watcher. Cold
# indexing runs in a thread (its parsing in processes) and reports $/progress while every
# handler keeps answering with what is indexed so far.

_SYMBOL_KINDS = {
    DefinitionKind.CLASS: T.SymbolKind.Class,
    DefinitionKind.INTERFACE: T.SymbolKind.Interface,
    DefinitionKind.STRUCT: T.SymbolKind.Struct,
    DefinitionKind.ENUM: T.SymbolKind.Enum,
    DefinitionKind.TYPE: T.SymbolKind.TypeParameter,
    DefinitionKind.FUNCTION: T.SymbolKind.Function,
    DefinitionKind.METHOD: T.SymbolKind.Method,
    DefinitionKind.CONSTRUCTOR: T.SymbolKind.Constructor,
    DefinitionKind.FIELD: T.SymbolKind.Field,
    DefinitionKind.PROPERTY: T.SymbolKind.Property,
    DefinitionKind.CONSTANT: T.SymbolKind.Constant,
    DefinitionKind.VARIABLE: T.SymbolKind.Variable,
    DefinitionKind.MODULE: T.SymbolKind.Module,
    DefinitionKind.MACRO: T.SymbolKind.Function,
}
INDEX_WATCHER_ID = "kimi-index-files"
WORKSPACE_SYMBOL_LIMIT = 200


def _fs_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def _index_roots(ls: KimiLanguageServer) -> list[Path]:
    roots = [p for f in ls.workspace.folders.values() if (p := _fs_path(f.uri))]
    if not roots and ls.workspace.root_path:
        roots = [Path(ls.workspace.root_path)]
    return roots


def _lsp_range(span: IndexSpan) -> T.Range:
    return T.Range(
        start=T.Position(line=span.start_line, character=span.start_col),
        end=T.Position(line=span.end_line, character=span.end_col),
    )


def _document_symbols(defs: list[Definition]) -> list[T.DocumentSymbol]:
    """The outline (outer definitions first, in source order) nested by ranges."""
    out: list[T.DocumentSymbol] = []
    stack: list[tuple[Definition, list[T.DocumentSymbol]]] = []  # (definition, its children)
    for d in defs:
        children: list[T.DocumentSymbol] = []
        symbol = T.DocumentSymbol(
            name=d.name,
            kind=_SYMBOL_KINDS.get(d.kind, T.SymbolKind.Variable),
            range=_lsp_range(d.range),
            selection_range=_lsp_range(d.name_range),
            detail=d.signature,
            children=children,
        )
        while stack and not stack[-1][0].range.encloses(d.range):
            stack.pop()
        (stack[-1][1] if stack else out).append(symbol)
        stack.append((d, children))
    return out


async def _register_index_watcher(ls: KimiLanguageServer) -> None:
    caps = ls.client_capabilities.workspace
    watched = caps.did_change_watched_files if caps else None
    if not (watched and watched.dynamic_registration):
        return
    exts = sorted({e.lstrip(".") for spec in LANGUAGES.values() for e in spec.extensions})
    watchers = [
        T.FileSystemWatcher(glob_pattern="**/*.{" + ",".join(exts) + "}"),
        T.FileSystemWatcher(glob_pattern="**/{" + ",".join(IGNORE_FILES) + "}"),
    ]
    try:
        await ls.client_register_capability_async(
            T.RegistrationParams(
                registrations=[
                    T.Registration(
                        id=INDEX_WATCHER_ID,
                        method=T.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                        register_options=T.DidChangeWatchedFilesRegistrationOptions(
                            watchers=watchers
                        ),
                    )
                ]
            )
        )
    except Exception as exc:  # the index still follows saves and open buffers
        logger.warning("could not register the file watcher: %s", exc)


async def start_index(ls: KimiLanguageServer) -> None:
    """Build the index at `initialized`: open buffers first, then the disk, with progress."""
    roots = _index_roots(ls)
    if not roots:
        logger.info("index: no workspace folder; nothing to index")
        return
    settings = ls.settings
    index = WorkspaceIndex(
        roots, state_dir=settings.state_dir, max_file_bytes=settings.max_file_bytes
    )
    for uri, doc in list(ls.workspace.text_documents.items()):
        if (path := _fs_path(uri)) is not None:
            index.open_document(path, doc.source)
    ls.index = index
    await _register_index_watcher(ls)

    token = f"kimi-index-{os.getpid()}-{id(index)}"
    window = ls.client_capabilities.window
    progress = bool(window and window.work_done_progress)
    if progress:
        try:
            await ls.work_done_progress.create_async(token)
        except Exception as exc:
            logger.warning("index: no progress token: %s", exc)
            progress = False
    if progress:
        ls.work_done_progress.begin(
            token, T.WorkDoneProgressBegin(title="Kimi: indexing", percentage=0)
        )
    loop = asyncio.get_running_loop()
    last = [-1]

    def on_progress(done: int, total: int) -> None:  # called from the indexing thread
        loop.call_soon_threadsafe(ls.status.index_progress, done, total)
        percentage = 100 * done // total if total else 100
        if progress and percentage != last[0]:
            last[0] = percentage
            report = T.WorkDoneProgressReport(
                message=f"{done}/{total} files", percentage=percentage
            )
            loop.call_soon_threadsafe(ls.work_done_progress.report, token, report)

    message = "failed (see the log)"
    try:
        stats = await asyncio.to_thread(index.update, on_progress)
        await asyncio.to_thread(index.prepare_queries)  # the first query answers at once
        message = f"{stats.files} files, {stats.definitions} symbols in {stats.seconds:.1f} s"
        ls.status.index_progress(stats.files, stats.files, indexing=False)
        logger.info("index: %s (%d parsed)", message, stats.parsed)
    finally:
        if progress:
            ls.work_done_progress.end(token, T.WorkDoneProgressEnd(message=message))


def register_index(server: KimiLanguageServer) -> None:
    """documentSymbol, workspace/symbol and the hooks that keep the index current."""

    @server.feature(T.TEXT_DOCUMENT_DID_OPEN)
    def index_did_open(ls: KimiLanguageServer, params: T.DidOpenTextDocumentParams) -> None:
        path = _fs_path(params.text_document.uri)
        if ls.index is not None and path is not None:
            ls.index.open_document(path, params.text_document.text)

    @server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
    def index_did_change(ls: KimiLanguageServer, params: T.DidChangeTextDocumentParams) -> None:
        forward_user_changes(ls, params)  # --- actions: streaming edits follow the user ---
        path = _fs_path(params.text_document.uri)
        if ls.index is None or path is None:
            return
        try:
            ls.index.change_document(path, params.content_changes)
        except BadDocumentChange as exc:  # resync from pygls's copy of the buffer
            logger.warning("index: %s", exc)
            doc = ls.workspace.get_text_document(params.text_document.uri)
            ls.index.open_document(path, doc.source)

    @server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
    async def index_did_close(ls: KimiLanguageServer, params: T.DidCloseTextDocumentParams) -> None:
        path = _fs_path(params.text_document.uri)
        if path is not None and ls._services is not None:
            ls._services.editor.diagnostics.pop(path, None)
        if ls.index is not None and path is not None:
            await asyncio.to_thread(ls.index.close_document, path)

    @server.feature(T.TEXT_DOCUMENT_DID_SAVE)
    async def index_did_save(ls: KimiLanguageServer, params: T.DidSaveTextDocumentParams) -> None:
        path = _fs_path(params.text_document.uri)
        if ls.index is not None and path is not None:
            await asyncio.to_thread(ls.index.file_changed_on_disk, path)

    @server.feature(T.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def index_files_changed(
        ls: KimiLanguageServer, params: T.DidChangeWatchedFilesParams
    ) -> None:
        index = ls.index
        if index is None:
            return
        paths = [p for c in params.changes if (p := _fs_path(c.uri)) is not None]
        for path in paths:
            await asyncio.to_thread(index.file_changed_on_disk, path)
        if any(p.name in IGNORE_FILES for p in paths):  # the rules changed: re-walk
            await asyncio.to_thread(index.update)

    @server.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbol(
        ls: KimiLanguageServer, params: T.DocumentSymbolParams
    ) -> list[T.DocumentSymbol]:
        path = _fs_path(params.text_document.uri)
        if ls.index is None or path is None:
            return []
        return _document_symbols(ls.index.outline(path))

    @server.feature(T.WORKSPACE_SYMBOL)
    def workspace_symbol(
        ls: KimiLanguageServer, params: T.WorkspaceSymbolParams
    ) -> list[T.WorkspaceSymbol]:
        if ls.index is None:
            return []
        return [
            T.WorkspaceSymbol(
                name=d.name,
                kind=_SYMBOL_KINDS.get(d.kind, T.SymbolKind.Variable),
                location=T.Location(uri=d.path.as_uri(), range=_lsp_range(d.name_range)),
                container_name=d.scope,
            )
            for d in ls.index.symbols(params.query, WORKSPACE_SYMBOL_LIMIT)
        ]


# --- end index -----------------------------------------------------------------------------


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

"""The server object every handler receives: settings, the services actions use, background
work, and error reporting (every error logged; at most one message a minute; never fatal)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer

from kimi_lsp import __version__
from kimi_lsp.actions.factory import open_governor, open_store, quota_key
from kimi_lsp.actions.runs import RunRegistry
from kimi_lsp.actions.services import Answerer, EditorView, QuotaSource, Services
from kimi_lsp.config import CONFIG_SECTION, LoadedSettings, Settings, load_settings
from kimi_lsp.edits.stream import RegionWriter
from kimi_lsp.index.workspace import WorkspaceIndex
from kimi_lsp.llm import KimiClient
from kimi_lsp.positions import Encoding, encoding_of

from .convert import fs_path, workspace_roots
from .protocol import KimiProtocol
from .status import StatusPublisher

logger = logging.getLogger(__name__)

ERROR_MESSAGE_INTERVAL_S = 60.0

_T = TypeVar("_T")


class KimiLanguageServer(LanguageServer):
    """The server object handlers receive: settings, background work and error reporting."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__("kimi-lsp", __version__, protocol_cls=KimiProtocol)
        self.loaded: LoadedSettings = load_settings()
        self.init_options: Any = None
        self.workspace_config: Any = None
        self._reported: set[str] = set()
        self.background: set[asyncio.Task[Any]] = set()
        self._clock = clock
        self._last_error_message = float("-inf")
        self.log_level_override: str | None = None
        self.index: WorkspaceIndex | None = None  # built at `initialized`
        self.status = StatusPublisher(
            self.notify_status,
            self.answerer_snapshot,
            runs=lambda: len(self.runs),
            on_quota=self.say_quota_store,
        )
        self.runs = RunRegistry(on_change=self.status.changed)
        # Streaming edits in progress, by document; and the text each expects after its own
        # last edit, to tell its own didChange from the user's.
        self.edit_sessions: dict[str, dict[str, RegionWriter]] = {}
        self.expected_text: dict[str, str] = {}
        self._answerer: Answerer | None = None  # the long-lived half of every request's Services
        self._cache_setting: str | None = None
        self._quota_key: tuple[object, ...] | None = None
        self._quota_store_down = False  # what the user was last told about the quota store

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    # -- settings -------------------------------------------------------------------------

    def reload_settings(self) -> None:
        self.loaded = load_settings(os.environ, self.init_options, self.workspace_config)
        for problem in self.loaded.problems:
            if problem not in self._reported:  # each problem is reported once per session
                self._reported.add(problem)
                logger.warning("Settings: %s", problem)
                self.show(f"kimi-lsp: {problem}", T.MessageType.Warning)
        if self._answerer is not None and self._answerer.settings != self.settings:
            old = self._answerer.reconfigure(self.settings)
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
        self.workspace_config = result[0] if result else None
        self.reload_settings()

    # -- the services actions use -----------------------------------------------------------

    def say_quota_store(self, governor: QuotaSource) -> None:
        """Tell the user once when the team's quota store stops answering (a local share of
        the limits stands in), and once when it answers again."""
        down = bool(governor.fallback)
        if down == self._quota_store_down:
            return
        self._quota_store_down = down
        if down:
            logger.warning("quota: %s", governor.fallback)
            self.show(f"kimi-lsp: {governor.fallback}", T.MessageType.Warning)
        else:
            message = "kimi-lsp: the team's quota store answers again; its limits are shared again"
            self.show(message, T.MessageType.Info)

    def action_services(self, params: dict[str, Any] | None = None) -> Services:
        """One request's services: the current settings, index and editor view (with the
        diagnostics ``params`` carry), answered by the session's long-lived answerer, built
        on first use (``actions.factory``); its governor and store reopen when their
        settings change."""
        if self._answerer is None:
            self._answerer = Answerer(self.settings, workspace_roots(self.workspace))
        a, s = self._answerer, self.settings
        if self._quota_key != quota_key(s):  # first use, or the limits changed
            a.admission = open_governor(s)
            self._quota_key = quota_key(s)
            self._quota_store_down = False
            self.say_quota_store(a.admission)
        if self._cache_setting != s.cache:  # first use, or the setting changed
            old, a.store = a.store, open_store(s)
            self._cache_setting = s.cache
            if old is not None:
                self.spawn(old.aclose(), name="close-cache")
        p = params or {}
        view = EditorView.for_request(
            self.open_paths(), fs_path(str(p.get("uri", ""))), p.get("diagnostics") or []
        )
        return Services(s, a.roots, self.index, view, a)

    @property
    def encoding(self) -> Encoding:
        """How the client counts a position's ``character`` (negotiated at initialize; LSP's
        UTF-16 before that). The library counts UTF-16: ``convert`` translates at the edge."""
        return encoding_of(self.workspace.position_encoding)

    def answerer_snapshot(self) -> Answerer | None:
        """The answerer if any action built it (status reads it, never builds it)."""
        return self._answerer

    def open_paths(self) -> list[Path]:
        """The files open in the editor (for ranking what a prompt carries)."""
        paths = (fs_path(uri) for uri in list(self.workspace.text_documents))
        return [p for p in paths if p is not None]

    # -- talking to the user ----------------------------------------------------------------

    def show(self, message: str, kind: T.MessageType = T.MessageType.Info) -> None:
        self.window_show_message(T.ShowMessageParams(type=kind, message=message))

    def notify_status(self, method: str, payload: dict[str, Any]) -> None:
        self.protocol.notify(method, payload)

    # -- background work ------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, _T], name: str | None = None) -> asyncio.Task[_T]:
        """Run work that outlives the request; cancelled on shutdown, errors logged."""
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self.background.add(task)

        def _done(t: asyncio.Task[Any]) -> None:
            self.background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.error("background task %s failed", t.get_name(), exc_info=t.exception())

        task.add_done_callback(_done)
        return task

    def cancel_background(self) -> None:
        for task in list(self.background):
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
            self.show(
                f"kimi-lsp hit an internal error: {error} (details in the log file)",
                T.MessageType.Error,
            )


async def _close_later(client: KimiClient, grace_s: float = 120.0) -> None:
    """Close a replaced client once the answers streaming through it had time to finish."""
    try:
        await asyncio.sleep(grace_s)
    finally:
        await client.aclose()

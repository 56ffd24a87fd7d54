"""The frame of every long command: a run, ``$/progress`` for every client, ``kimi/stream`` for
rich ones, and errors the user can read (a package's error is a RequestFailed with its message;
anything else is logged with its traceback and answered as an internal error)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from lsprotocol import types as T
from pygls.exceptions import JsonRpcException

from kimi_lsp.actions.errors import user_errors

from .convert import command_arg
from .protocol import WORK_DONE_TOKEN, RequestFailed

if TYPE_CHECKING:
    from .session import KimiLanguageServer

logger = logging.getLogger(__name__)

STREAM_NOTIFICATION = "kimi/stream"
STREAM_THROTTLE_S = 0.1  # at most ~10 progress reports a second while text streams

# The errors whose message is meant for the user (every package's errors.py).
USER_ERRORS: tuple[type[Exception], ...] = user_errors()

Work = Callable[[dict[str, Any], "LspSink"], Coroutine[Any, Any, dict[str, Any]]]


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
        self._close(message)

    def fail(self, message: str) -> None:
        self._stream("error", message=message)
        self._close(message)

    def _close(self, message: str) -> None:
        if self.token is not None:
            self.ls.work_done_progress.end(self.token, T.WorkDoneProgressEnd(message=message))
            self.ls.work_done_progress.tokens.pop(self.token, None)


async def progress_token(ls: KimiLanguageServer) -> T.ProgressToken | None:
    """The client's workDoneToken, else one we create where the client supports it."""
    token = WORK_DONE_TOKEN.get()
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
    ls: KimiLanguageServer, action: str, title: str, args: tuple[Any, ...], work: Work
) -> dict[str, Any]:
    """Run ``work`` as the run of ``action`` on the command's target."""
    ls.link_cancel()
    params = command_arg(args)
    target = f"{params.get('uri')}:{(params.get('range') or params.get('position') or {})}"
    token = await progress_token(ls)
    run = ls.runs.adopt(action, target, token=str(token) if token is not None else None)
    sink = LspSink(ls, run.id, action, token)
    sink.begin(title, params.get("uri"))
    try:
        result = await work(params, sink)
    except asyncio.CancelledError:
        sink.end("cancelled")
        raise
    except USER_ERRORS as exc:
        message = str(getattr(exc, "message", exc))
        sink.fail(message)
        ls.show(f"Kimi: {message}", T.MessageType.Error)
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

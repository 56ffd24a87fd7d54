"""The JSON-RPC protocol as pygls 2.1 runs it, with the gaps that break "one answer per request"
closed: malformed params are answered (pygls drops them), a cancelled command still answers,
a result that cannot be serialised becomes an error, ``shutdown`` walks a copy of the requests.

(Reads private pygls attributes; pygls is pinned in pyproject.toml for this reason.)
"""

from __future__ import annotations

import contextvars
import json
import logging
from dataclasses import dataclass
from typing import Any

import cattrs
from lsprotocol import types as T
from pygls.exceptions import JsonRpcException, JsonRpcInternalError, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from kimi_lsp.pipe import ClientPipe

logger = logging.getLogger(__name__)

# The client's workDoneToken of the command being run (set before its handler starts).
WORK_DONE_TOKEN: contextvars.ContextVar[T.ProgressToken | None] = contextvars.ContextVar(
    "kimi_work_done_token", default=None
)


class RequestFailed(JsonRpcException):
    """LSP's RequestFailed (-32803): the request was valid but the action could not be done."""

    CODE = -32803
    MESSAGE = "Request failed"


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
        WORK_DONE_TOKEN.set(params.work_done_token)
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

    def set_writer(self, writer: Any, include_headers: bool = True) -> None:
        # An editor that quits closes the pipe: one INFO line, not a traceback per message.
        super().set_writer(ClientPipe(writer), include_headers)

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

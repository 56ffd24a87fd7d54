"""A Kimi API emulator: a small HTTP/1.1 server on asyncio streams, run in its own thread.

Why hand-written HTTP instead of Starlette/uvicorn: the emulator must drop a connection in the
middle of a chunked SSE body, notice at once when a client hangs up, and keep connections
alive like the real API; raw asyncio streams do all three in a few lines and add no
dependency. Everything the tests script lives in one object guarded by one lock, because
the test thread scripts it while the server thread serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tests.fake_kimi.models import FakeModel, default_models
from tests.fake_kimi.tokens import (
    CACHE_MIN_PROMPT_TOKENS,
    CHARS_PER_TOKEN,
    common_prefix_len,
    content_text,
    count_prompt_tokens,
    count_tokens,
    prompt_text,
)

DEFAULT_KEY = "sk-test"
DEFAULT_ACCOUNT = "org-test"
DEFAULT_MAX_COMPLETION = 1024  # what the API uses when max_completion_tokens is omitted
# How long a thinking model reasons when a test does not say: a length per prompt in this
# range (deterministic: a hash of the prompt), what real K2.6/K2.7/K3 spend on code questions.
REASONING_RANGE = (300, 3000)
REASONING_CHUNK_TOKENS = 256  # reasoning streams in big deltas: realistic totals, few chunks
# K3's reasoning_effort shortens the reasoning: low a quarter, high a half, max all of it.
EFFORT_SHARE = {"low": 0.25, "high": 0.5, "max": 1.0}
_THOUGHT = "Let me think about what the code does, which names it uses and what could break. "
TIERS: dict[int, tuple[int, int, int, int | None]] = {  # concurrency, rpm, tpm, tpd (§6)
    0: (1, 3, 500_000, 1_500_000),
    1: (50, 200, 2_000_000, None),
    2: (100, 500, 3_000_000, None),
    3: (200, 5_000, 3_000_000, None),
    4: (400, 5_000, 4_000_000, None),
    5: (1_000, 10_000, 5_000_000, None),
}
FIXED_SAMPLING = {"top_p": 0.95, "n": 1, "presence_penalty": 0, "frequency_penalty": 0}
FAULT_KINDS = (
    "rate_limit_concurrency",
    "rate_limit_rpm",
    "rate_limit_tpm",
    "rate_limit_tpd",
    "quota",
    "overloaded",
    "server_error",
    "unexpected_output",
    "gateway_timeout",
    "drop_before_response",
    "drop",
    "error_chunk",
    "stall",
)


class ManualClock:
    """A clock tests move by hand, so rate-limit windows never need a real sleep."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Reply:
    """One scripted answer. ``match`` is a substring of the last user message (None: queued)."""

    content: str
    reasoning: str | None = None
    match: str | None = None
    times: int | None = None  # None: forever when matched by substring, once when queued
    chunk_tokens: int | None = None
    # Tool calls to answer with: (name, arguments) pairs; arguments a dict or a JSON string.
    tool_calls: list[tuple[str, Any]] | None = None
    reasoning_tokens: int | None = None  # generated reasoning of this length (beats the default)


@dataclass
class Fault:
    """A fault for the next matching chat request(s)."""

    kind: str
    times: int = 1
    after_chunks: int = 0  # for drop / error_chunk / stall: content chunks sent before it
    status: int | None = None  # for quota: 429 (default) or 403
    retry_after: int = 1
    seconds: float = 30.0  # for stall
    message: str | None = None
    match: str | None = None


@dataclass
class Limits:
    concurrency: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    tpd: int | None = None


@dataclass
class RequestRecord:
    """What reached the emulator and what it did about it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    request_id: str
    at: float
    status: int = 0
    account: str | None = None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    finish_reason: str | None = None
    error_type: str | None = None
    chunks_sent: int = 0
    completed: bool = False
    client_closed: bool = False  # the client hung up before the answer ended
    dropped: bool = False  # the emulator dropped the connection on purpose
    connection: int = 0  # which TCP connection carried it (keep-alive reuse shows here)
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def is_chat(self) -> bool:
        return self.path.endswith("/chat/completions")


@dataclass
class _Account:
    limits: Limits = field(default_factory=Limits)
    in_flight: int = 0
    requests: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)
    prompts: deque[str] = field(default_factory=deque)


class _HTTPError(Exception):
    def __init__(self, status: int, etype: str, message: str) -> None:
        super().__init__(message)
        self.status, self.etype, self.message = status, etype, message


class _Dropped(Exception):
    """The emulator hung up on purpose."""


class _ClientGone(Exception):
    """The client hung up while the emulator was answering."""


@dataclass
class _Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


class FakeKimi:
    """The emulator. ``start()`` binds 127.0.0.1 and serves from a background thread.

    Script it from tests with :meth:`script`, :meth:`fail_next`, :meth:`set_limits`,
    :attr:`usage_placement` and friends; read :attr:`requests` to see what left the client.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        key: str = DEFAULT_KEY,
        clock: Callable[[], float] = time.monotonic,
        usage_placement: str = "both",
    ) -> None:
        self.host, self._port = host, port
        self.clock = clock
        self.usage_placement = usage_placement  # "choice" | "top" | "both"
        self.cached_spelling = "both"  # "top" (usage.cached_tokens) | "details" | "both"
        self.chunk_tokens = 4  # tokens per content delta
        self.chunk_delay = 0.0  # seconds between chunks (slow streams)
        self.keepalive_comments = False  # send ": keep-alive" comment lines between chunks
        self.default_reply: Callable[[str], str] = lambda q: f"Fake Kimi answer to: {q[:200]}"
        # A test's own model: sees the messages (and the request body), returns a Reply, a
        # text, a list of (name, arguments) tool calls, or None for the scripted replies.
        self.responder: Callable[[list[dict[str, Any]], dict[str, Any]], Any] | None = None
        self.tools_supported = True  # False: any request with `tools` is a 400
        # Reasoning of thinking models: an explicit text (a test that needs tiny reasoning says
        # so here or in script(reasoning=...)), else generated text of ``reasoning_tokens``
        # tokens, else a length per prompt in REASONING_RANGE.
        self.default_reasoning: str | None = None
        self.reasoning_tokens: int | None = None
        self.reasoning_range = REASONING_RANGE
        self.reasoning_chunk_tokens = REASONING_CHUNK_TOKENS
        self.balance = {"available_balance": 49.58894, "voucher_balance": 46.58893}
        self.balance["cash_balance"] = 3.00001
        self.models: dict[str, FakeModel] = {m.id: m for m in default_models()}
        self._keys: dict[str, str] = {key: DEFAULT_ACCOUNT}
        self._accounts: dict[str, _Account] = {DEFAULT_ACCOUNT: _Account()}
        self._replies: list[Reply] = []
        self._queue: deque[Reply] = deque()
        self._faults: list[Fault] = []
        self._by_conversation: dict[str, Reply] = {}
        self._log: list[RequestRecord] = []
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._conn_tasks: set[asyncio.Task[None]] = set()
        self._connections = 0
        self.key = key

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._port}/v1"

    def env(self) -> dict[str, str]:
        """Environment variables that point kimi-lsp at this emulator."""
        return {"MOONSHOT_API_KEY": self.key, "KIMI_LSP_BASE_URL": self.base_url}

    def start(self) -> FakeKimi:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._on_connection, self.host, self._port)
                )
                self._port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-kimi", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not loop.is_running():
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._conn_tasks):
                task.cancel()
            await asyncio.gather(*self._conn_tasks, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        thread.join(10)

    def __enter__(self) -> FakeKimi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting ---------------------------------------------------------------------

    def script(
        self,
        content: str,
        *,
        match: str | None = None,
        reasoning: str | None = None,
        times: int | None = None,
        chunk_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> Reply:
        """Answer with ``content``: whenever the last user message contains ``match``, or
        (without ``match``) once, for the next request, in FIFO order. ``reasoning`` (a text)
        or ``reasoning_tokens`` (a length) sets what a thinking model reasons first."""
        reply = Reply(
            content, reasoning, match, times, chunk_tokens, reasoning_tokens=reasoning_tokens
        )
        with self._lock:
            if match is None:
                self._queue.append(reply)
            else:
                self._replies.append(reply)
        return reply

    def script_tools(
        self,
        calls: list[tuple[str, Any]],
        *,
        content: str = "",
        match: str | None = None,
        reasoning: str | None = None,
        times: int | None = None,
    ) -> Reply:
        """Answer with tool calls (``finish_reason: "tool_calls"``), like :meth:`script`."""
        reply = Reply(content, reasoning, match, times, None, tool_calls=[(n, a) for n, a in calls])
        with self._lock:
            if match is None:
                self._queue.append(reply)
            else:
                self._replies.append(reply)
        return reply

    def fail_next(self, kind: str, **options: Any) -> Fault:
        """Inject a fault (see FAULT_KINDS) into the next matching chat request(s)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        fault = Fault(kind, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def set_limits(
        self,
        *,
        tier: int | None = None,
        account: str = DEFAULT_ACCOUNT,
        concurrency: int | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        tpd: int | None = None,
    ) -> None:
        """Per-account limits: a tier's four numbers, then explicit overrides."""
        limits = Limits(*TIERS[tier]) if tier is not None else Limits()
        for name, value in (("concurrency", concurrency), ("rpm", rpm), ("tpm", tpm)):
            if value is not None:
                setattr(limits, name, value)
        if tpd is not None:
            limits.tpd = tpd
        with self._lock:
            self._accounts.setdefault(account, _Account()).limits = limits

    def add_key(self, key: str, account: str = DEFAULT_ACCOUNT) -> None:
        """Another API key; keys of one account share its limits and its prefix cache."""
        with self._lock:
            self._keys[key] = account
            self._accounts.setdefault(account, _Account())

    def add_model(self, model: FakeModel) -> None:
        with self._lock:
            self.models[model.id] = model

    def reset(self) -> None:
        """Forget scripts, faults, the log, the caches and the rate-limit windows."""
        with self._lock:
            self._replies.clear()
            self._queue.clear()
            self._faults.clear()
            self._by_conversation.clear()
            self._log.clear()
            for acct in self._accounts.values():
                acct.requests.clear()
                acct.tokens.clear()
                acct.prompts.clear()

    # -- inspection --------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    @property
    def chat_requests(self) -> list[RequestRecord]:
        return [r for r in self.requests if r.is_chat]

    def in_flight(self, account: str = DEFAULT_ACCOUNT) -> int:
        with self._lock:
            return self._accounts[account].in_flight

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate()`` holds (re-checked whenever the emulator's state moves)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.05))
        return True

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- HTTP plumbing -----------------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conn_tasks.add(task)
        with self._lock:
            self._connections += 1
            conn_id = self._connections
        try:
            while True:
                req = await self._read_request(reader)
                if req is None:
                    break
                keep_alive = await self._dispatch(req, reader, writer, conn_id)
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        except asyncio.CancelledError:
            # Only stop() cancels: end quietly (asyncio logs a cancelled handler as an error).
            writer.transport.abort()
        finally:
            self._conn_tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
        line = await reader.readline()
        if not line:
            return None
        method, target, _version = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        body = await reader.readexactly(length) if length else b""
        return _Request(method.upper(), target, headers, body)

    @staticmethod
    def _head(status: int, headers: Mapping[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _ids(self, record: RequestRecord) -> dict[str, str]:
        return {
            "Msh-Request-Id": record.request_id,
            "X-Msh-Trace-Id": f"trace-{record.request_id}",
            "Msh-Gid": "enterprise-tier-3",
        }

    async def _send_json(
        self, writer: asyncio.StreamWriter, record: RequestRecord, status: int, body: Any
    ) -> None:
        data = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(len(data)),
            "Connection": "keep-alive",
            **self._ids(record),
        }
        writer.write(self._head(status, headers) + data)
        await writer.drain()
        record.status = status

    async def _dispatch(
        self,
        req: _Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn_id: int = 0,
    ) -> bool:
        path = urlsplit(req.target).path
        try:
            body: Any = json.loads(req.body) if req.body else None
        except ValueError:
            body = req.body.decode("utf-8", "replace")
        record = RequestRecord(
            req.method, path, dict(req.headers), body, f"req-{uuid.uuid4().hex[:16]}", self.clock()
        )
        record.connection = conn_id
        with self._lock:
            self._log.append(record)
        try:
            if path.startswith("/_fake/"):
                await self._control(req, path, body, writer, record)
            else:
                record.account = self._authenticate(req)
                await self._route(req, path, body, reader, writer, record)
            record.completed = not record.client_closed and not record.dropped
            return req.headers.get("connection", "").lower() != "close"
        except _HTTPError as err:
            record.error_type = err.etype
            await self._send_json(
                writer, record, err.status, {"error": {"type": err.etype, "message": err.message}}
            )
            record.completed = True
            return True
        except _Dropped:
            record.dropped = True
            writer.transport.abort()
            return False
        except _ClientGone:
            record.client_closed = True
            writer.transport.abort()
            return False
        finally:
            record.done.set()
            self._notify()

    def _authenticate(self, req: _Request) -> str:
        auth = req.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise _HTTPError(401, "invalid_authentication_error", "Invalid Authentication")
        with self._lock:
            account = self._keys.get(auth.removeprefix("Bearer ").strip())
        if account is None:
            raise _HTTPError(401, "incorrect_api_key_error", "Incorrect API key provided")
        return account

    async def _route(
        self,
        req: _Request,
        path: str,
        body: Any,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        record: RequestRecord,
    ) -> None:
        if req.method == "GET" and path == "/v1/models":
            with self._lock:
                data = [m.listing() for m in self.models.values()]
            await self._send_json(writer, record, 200, {"object": "list", "data": data})
        elif req.method == "GET" and path == "/v1/users/me/balance":
            with self._lock:
                balance = dict(self.balance)
            envelope = {"code": 0, "data": balance, "scode": "0x0", "status": True}
            await self._send_json(writer, record, 200, envelope)
        elif req.method == "POST" and path == "/v1/tokenizers/estimate-token-count":
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise _HTTPError(400, "invalid_request_error", "Invalid request: messages")
            self._model(body)
            total = count_prompt_tokens(body["messages"])
            await self._send_json(writer, record, 200, {"data": {"total_tokens": total}})
        elif req.method == "POST" and path == "/v1/chat/completions":
            await self._chat(body, reader, writer, record)
        else:
            raise _HTTPError(404, "resource_not_found_error", f"Not found: {req.method} {path}")

    async def _control(
        self,
        req: _Request,
        path: str,
        body: Any,
        writer: asyncio.StreamWriter,
        record: RequestRecord,
    ) -> None:
        """Scripting over HTTP, for an emulator running as a subprocess."""
        body = body if isinstance(body, dict) else {}
        if path == "/_fake/script":
            self.script(**body)
        elif path == "/_fake/script_tools":
            calls = [(str(c[0]), c[1]) for c in body.pop("calls", [])]
            self.script_tools(calls, **body)
        elif path == "/_fake/fault":
            self.fail_next(**body)
        elif path == "/_fake/limits":
            self.set_limits(**body)
        elif path == "/_fake/config":
            for name in (
                "usage_placement",
                "cached_spelling",
                "chunk_tokens",
                "chunk_delay",
                "reasoning_tokens",
                "default_reasoning",
            ):
                if name in body:
                    setattr(self, name, body[name])
        elif path == "/_fake/reset":
            self.reset()
        elif path == "/_fake/log":
            with self._lock:
                log = [
                    {
                        "method": r.method,
                        "path": r.path,
                        "status": r.status,
                        "body": r.body,
                        "prompt_tokens": r.prompt_tokens,
                        "cached_tokens": r.cached_tokens,
                        "completion_tokens": r.completion_tokens,
                        "finish_reason": r.finish_reason,
                        "error_type": r.error_type,
                    }
                    for r in self._log
                    if not r.path.startswith("/_fake/")
                ]
            await self._send_json(writer, record, 200, {"requests": log})
            return
        else:
            raise _HTTPError(404, "resource_not_found_error", f"no control endpoint {path}")
        await self._send_json(writer, record, 200, {"ok": True})

    # -- chat completions ----------------------------------------------------------------

    def _model(self, body: Mapping[str, Any]) -> FakeModel:
        name = body.get("model")
        with self._lock:
            model = self.models.get(str(name))
        if model is None:
            raise _HTTPError(
                404, "resource_not_found_error", f"Not found the model {name} or Permission denied"
            )
        return model

    @staticmethod
    def _validate(body: Mapping[str, Any], model: FakeModel) -> bool:
        """Raise the 400 the real API would; return whether this request thinks."""
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _HTTPError(400, "invalid_request_error", "Invalid request: messages is empty")
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in (
                "system",
                "user",
                "assistant",
                "tool",
            ):
                raise _HTTPError(400, "invalid_request_error", f"Invalid request: message {i}")
            if not content_text(m.get("content")) and not m.get("tool_calls"):
                raise _HTTPError(
                    400,
                    "invalid_request_error",
                    f"Invalid request: the message at position {i} with role "
                    f"'{m.get('role')}' must not be empty",
                )
        thinking, effort = body.get("thinking"), body.get("reasoning_effort")
        if thinking is not None and effort is not None:
            raise _HTTPError(
                400,
                "invalid_request_error",
                "Invalid request: cannot specify both thinking and reasoning_effort",
            )
        if thinking is not None and model.reasoning_control != "thinking":
            raise _HTTPError(400, "invalid_request_error", "invalid thinking: not supported")
        if effort is not None and (
            model.reasoning_control != "reasoning_effort" or effort not in ("low", "high", "max")
        ):
            raise _HTTPError(400, "invalid_request_error", f"invalid reasoning_effort: {effort}")
        thinks = model.thinks
        if isinstance(thinking, dict) and thinking.get("type") == "disabled":
            if not model.thinking_can_be_disabled:
                raise _HTTPError(
                    400,
                    "invalid_request_error",
                    "invalid thinking: only type=enabled is allowed for this model",
                )
            thinks = False
        if model.fixed_sampling:
            temp = 1.0 if thinks else 0.6
            if "temperature" in body and body["temperature"] != temp:
                shown = "1" if temp == 1.0 else "0.6"
                raise _HTTPError(
                    400,
                    "invalid_request_error",
                    f"invalid temperature: only {shown} is allowed for this model",
                )
            for name, value in FIXED_SAMPLING.items():
                if name in body and body[name] != value:
                    raise _HTTPError(
                        400,
                        "invalid_request_error",
                        f"invalid {name}: only {value} is allowed for this model",
                    )
        return thinks

    def _validate_tools(self, body: Mapping[str, Any], model: FakeModel, thinks: bool) -> None:
        """The 400s around tools (kimi-api.md §3.1, §3.5)."""
        tools = body.get("tools")
        if tools is not None:
            if not self.tools_supported:
                raise _HTTPError(
                    400, "invalid_request_error", "Invalid request: tools are not supported"
                )
            if not isinstance(tools, list) or len(tools) > 128:
                raise _HTTPError(400, "invalid_request_error", "Invalid request: tools")
            for t in tools:
                fn = t.get("function") if isinstance(t, dict) else None
                name = fn.get("name") if isinstance(fn, dict) else None
                if not isinstance(name, str) or not _TOOL_NAME.match(name):
                    raise _HTTPError(
                        400, "invalid_request_error", f"Invalid request: tool name {name!r}"
                    )
                params = fn.get("parameters") if isinstance(fn, dict) else None
                if params is not None and (
                    not isinstance(params, dict) or params.get("type") != "object"
                ):
                    raise _HTTPError(
                        400,
                        "invalid_request_error",
                        f"Invalid request: parameters of tool {name} must be an object",
                    )
        choice = body.get("tool_choice")
        if choice == "required" and thinks and model.reasoning_control == "thinking":
            raise _HTTPError(
                400,
                "invalid_request_error",
                "tool_choice 'required' is incompatible with thinking enabled",
            )
        if thinks:
            for i, m in enumerate(body.get("messages") or []):
                if (
                    isinstance(m, dict)
                    and m.get("role") == "assistant"
                    and m.get("tool_calls")
                    and "reasoning_content" not in m
                ):
                    raise _HTTPError(
                        400,
                        "invalid_request_error",
                        "thinking is enabled but reasoning_content is missing in assistant "
                        f"tool call message at index {i}",
                    )

    def _respond(self, messages: list[dict[str, Any]], body: dict[str, Any]) -> Reply | None:
        """The test's own responder, if any, turned into a Reply."""
        responder = self.responder
        if responder is None:
            return None
        out = responder(messages, body)
        if out is None or isinstance(out, Reply):
            return out
        if isinstance(out, str):
            return Reply(out)
        return Reply("", tool_calls=[(n, a) for n, a in out])

    @staticmethod
    def _tool_calls(reply: Reply, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The reply's tool calls with K2.x ids: ``functions.<name>:<idx>``, idx counting
        every tool call of the conversation so far (kimi-api.md §3.2)."""
        if not reply.tool_calls:
            return []
        idx = sum(
            len(m.get("tool_calls") or [])
            for m in messages
            if isinstance(m, dict) and m.get("role") == "assistant"
        )
        out = []
        for name, args in reply.tool_calls:
            text = args if isinstance(args, str) else json.dumps(args)
            out.append(
                {
                    "id": f"functions.{name}:{idx}",
                    "type": "function",
                    "function": {"name": name, "arguments": text},
                }
            )
            idx += 1
        return out

    def _take_fault(self, last_user: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.match is None or fault.match in last_user:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _pick_reply(self, messages: list[dict[str, Any]], partial: bool) -> Reply:
        conversation = json.dumps(messages[:-1] if partial else messages, sort_keys=True)
        last_user = next(
            (content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"),
            "",
        )
        with self._lock:
            if partial and conversation in self._by_conversation:
                return self._by_conversation[conversation]
            reply: Reply | None = None
            for candidate in self._replies:
                if candidate.match is not None and candidate.match in last_user:
                    reply = candidate
                    if candidate.times is not None:
                        candidate.times -= 1
                        if candidate.times <= 0:
                            self._replies.remove(candidate)
                    break
            if reply is None and self._queue:
                reply = self._queue.popleft()
            if reply is None:
                reply = Reply(self.default_reply(last_user))
            self._by_conversation[conversation] = reply
            while len(self._by_conversation) > 4096:  # long benchmarks: forget the oldest
                del self._by_conversation[next(iter(self._by_conversation))]
            return reply

    def _admit(self, account: str, charge: int) -> None:
        """Per-account admission: concurrency, RPM, TPM, TPD; the first that trips answers."""
        now = self.clock()
        ak = f"ak-{account[-4:]}"
        who = f"Your account {account}<{ak}>"
        with self._lock:
            acct = self._accounts.setdefault(account, _Account())
            lim = acct.limits
            while acct.requests and acct.requests[0] <= now - 60:
                acct.requests.popleft()
            while acct.tokens and acct.tokens[0][0] <= now - 86_400:
                acct.tokens.popleft()
            tpm_used = sum(n for t, n in acct.tokens if t > now - 60)
            tpd_used = sum(n for _, n in acct.tokens)
            if lim.concurrency is not None and acct.in_flight >= lim.concurrency:
                raise _HTTPError(
                    429,
                    "rate_limit_reached_error",
                    f"{who} request reached organization max concurrency: {lim.concurrency}, "
                    "please try again after 1 seconds",
                )
            if lim.rpm is not None and len(acct.requests) >= lim.rpm:
                wait = max(1, int(acct.requests[0] + 60 - now + 0.999))
                raise _HTTPError(
                    429,
                    "rate_limit_reached_error",
                    f"{who} request reached organization max RPM: {lim.rpm}, "
                    f"please try again after {wait} seconds",
                )
            if lim.tpm is not None and tpm_used + charge > lim.tpm:
                raise _HTTPError(
                    429,
                    "rate_limit_reached_error",
                    f"{who} request reached organization TPM rate limit, "
                    f"current:{tpm_used + charge}, limit:{lim.tpm}",
                )
            if lim.tpd is not None and tpd_used + charge > lim.tpd:
                raise _HTTPError(
                    429,
                    "rate_limit_reached_error",
                    f"{who} request reached organization TPD rate limit, "
                    f"current:{tpd_used + charge}, limit:{lim.tpd}",
                )
            acct.requests.append(now)
            acct.tokens.append((now, charge))
            acct.in_flight += 1

    def _release(self, account: str) -> None:
        with self._lock:
            self._accounts[account].in_flight -= 1

    def _cached_tokens(self, account: str, text: str, prompt_tokens: int) -> int:
        """Longest common prefix with an earlier prompt of this account longer than 256 tokens."""
        with self._lock:
            acct = self._accounts[account]
            best = 0
            for earlier in acct.prompts:
                if count_tokens(earlier) > CACHE_MIN_PROMPT_TOKENS:
                    best = max(best, common_prefix_len(earlier, text))
            acct.prompts.append(text)
            while len(acct.prompts) > 64:
                acct.prompts.popleft()
        return min(best // CHARS_PER_TOKEN, prompt_tokens)

    @staticmethod
    def _fault_error(fault: Fault, account: str) -> _HTTPError | None:
        who = f"Your account {account}<ak-{account[-4:]}>"
        k = fault.kind
        if k == "rate_limit_concurrency":
            msg = (
                f"{who} request reached organization max concurrency: 1, "
                f"please try again after {fault.retry_after} seconds"
            )
            return _HTTPError(429, "rate_limit_reached_error", fault.message or msg)
        if k == "rate_limit_rpm":
            msg = (
                f"{who} request reached organization max RPM: 3, "
                f"please try again after {fault.retry_after} seconds"
            )
            return _HTTPError(429, "rate_limit_reached_error", fault.message or msg)
        if k in ("rate_limit_tpm", "rate_limit_tpd"):
            unit = k[-3:].upper()
            msg = (
                f"{who} request reached organization {unit} rate limit, "
                "current:600000, limit:500000"
            )
            return _HTTPError(429, "rate_limit_reached_error", fault.message or msg)
        if k == "quota":
            msg = (
                f"{who} is suspended due to insufficient balance, please recharge your account "
                "or check your plan and billing details"
            )
            return _HTTPError(
                fault.status or 429, "exceeded_current_quota_error", fault.message or msg
            )
        if k == "overloaded":
            msg = "The engine is currently overloaded, please try again later"
            return _HTTPError(429, "engine_overloaded_error", fault.message or msg)
        if k == "server_error":
            return _HTTPError(500, "server_error", fault.message or "Internal server error")
        if k == "unexpected_output":
            return _HTTPError(500, "unexpected_output", fault.message or "invalid state transition")
        if k == "gateway_timeout":
            return _HTTPError(504, "", fault.message or "Gateway Timeout")
        return None

    async def _chat(
        self,
        body: Any,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        record: RequestRecord,
    ) -> None:
        if not isinstance(body, dict):
            raise _HTTPError(400, "invalid_request_error", "Invalid request: body is not JSON")
        account = record.account
        assert account is not None
        messages = body.get("messages") if isinstance(body.get("messages"), list) else []
        last_user = next(
            (
                content_text(m.get("content"))
                for m in reversed(messages)
                if isinstance(m, dict) and m.get("role") == "user"
            ),
            "",
        )
        fault = self._take_fault(last_user)
        if fault is not None and fault.kind == "drop_before_response":
            raise _Dropped
        if fault is not None and (err := self._fault_error(fault, account)) is not None:
            raise err
        model = self._model(body)
        thinks = self._validate(body, model)
        self._validate_tools(body, model, thinks)
        text = prompt_text(messages)
        if body.get("tools"):  # tool definitions are part of the prompt, ahead of the messages
            text = "<|tools|>" + json.dumps(body["tools"], sort_keys=True) + text
        prompt_tokens = count_tokens(text)
        max_ct = (
            body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_COMPLETION
        )
        if not isinstance(max_ct, int) or max_ct < 1:
            raise _HTTPError(400, "invalid_request_error", "Invalid request: max_completion_tokens")
        if prompt_tokens + max_ct > model.context_length:
            raise _HTTPError(
                400,
                "invalid_request_error",
                f"Your request exceeded model token limit: {model.context_length}",
            )
        with self._lock:
            broke = self.balance.get("available_balance", 1) <= 0
        if broke:
            raise _HTTPError(
                429,
                "exceeded_current_quota_error",
                f"Your account {account}<ak-{account[-4:]}> is suspended due to insufficient "
                "balance, please recharge your account or check your plan and billing details",
            )
        self._admit(account, prompt_tokens + max_ct)
        try:
            record.prompt_tokens = prompt_tokens
            record.cached_tokens = self._cached_tokens(account, text, prompt_tokens)
            last = messages[-1]
            partial = last.get("role") == "assistant" and bool(last.get("partial"))
            reply = self._respond(messages, body) or self._pick_reply(messages, partial)
            may_call = bool(body.get("tools")) and body.get("tool_choice") != "none"
            if reply.tool_calls and not may_call:  # it may not call tools: it answers in text
                content = reply.content or self.default_reply(last_user)
                reply = dataclasses.replace(reply, content=content, tool_calls=None)
            calls = self._tool_calls(reply, messages)
            content = reply.content
            # A continuation in partial mode goes on with the answer: it does not think again.
            reasoning = "" if not thinks or partial else self._reasoning(reply, body, text)
            if partial:
                prefix = content_text(last.get("content"))
                if content.startswith(prefix):
                    content = content[len(prefix) :]
            # Reasoning spends the output budget first, as on the real API.
            r_tokens = min(count_tokens(reasoning), max_ct)
            reasoning = reasoning[: r_tokens * CHARS_PER_TOKEN]
            c_budget = max_ct - r_tokens
            finish = "stop"
            if count_tokens(content) > c_budget:
                content, finish = content[: c_budget * CHARS_PER_TOKEN], "length"
            record.reasoning_tokens = r_tokens
            record.completion_tokens = r_tokens + count_tokens(content)
            if calls and finish == "stop":
                finish = "tool_calls"
                record.completion_tokens += sum(
                    count_tokens(c["function"]["name"] + c["function"]["arguments"]) for c in calls
                )
            else:
                calls = []
            record.finish_reason = finish
            usage = self._usage(record)
            step = (reply.chunk_tokens or self.chunk_tokens) * CHARS_PER_TOKEN
            # Generated reasoning streams in big deltas (fast); a reply scripted with its own
            # reasoning text and chunk size streams that text as finely (a test watching it).
            fine = reply.chunk_tokens is not None and reply.reasoning is not None
            r_step = step if fine else max(self.reasoning_chunk_tokens, 1) * CHARS_PER_TOKEN
            if body.get("stream"):
                include = bool((body.get("stream_options") or {}).get("include_usage"))
                await self._stream(
                    writer,
                    reader,
                    record,
                    body,
                    reasoning,
                    content,
                    finish,
                    usage,
                    include,
                    step,
                    fault,
                    calls,
                    r_step,
                )
            else:
                message: dict[str, Any] = {"role": "assistant", "content": content}
                if thinks:
                    message["reasoning_content"] = reasoning
                if calls:
                    message["tool_calls"] = calls
                resp = {
                    "id": f"chatcmpl-{uuid.uuid4()}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model.id,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": usage,
                }
                await self._send_json(writer, record, 200, resp)
        finally:
            self._release(account)

    def _reasoning(self, reply: Reply, body: Mapping[str, Any], prompt: str) -> str:
        """What a thinking model reasons before this answer (see ``default_reasoning``)."""
        explicit = reply.reasoning if reply.reasoning is not None else self.default_reasoning
        if reply.reasoning_tokens is None and explicit is not None:
            return explicit
        with self._lock:
            n = reply.reasoning_tokens
            if n is None:
                n = self.reasoning_tokens
            if n is None:
                lo, hi = self.reasoning_range
                digest = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest()
                n = lo + int.from_bytes(digest[:4], "big") % (hi - lo + 1)
        n = int(n * EFFORT_SHARE.get(str(body.get("reasoning_effort") or "max"), 1.0))
        chars = n * CHARS_PER_TOKEN
        return (_THOUGHT * (chars // len(_THOUGHT) + 1))[:chars]

    def _usage(self, record: RequestRecord) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": record.prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "total_tokens": record.prompt_tokens + record.completion_tokens,
        }
        if self.cached_spelling in ("top", "both"):
            usage["cached_tokens"] = record.cached_tokens
        if self.cached_spelling in ("details", "both"):
            usage["prompt_tokens_details"] = {"cached_tokens": record.cached_tokens}
        if record.reasoning_tokens:
            usage["completion_tokens_details"] = {"reasoning_tokens": record.reasoning_tokens}
        return usage

    async def _stream(
        self,
        writer: asyncio.StreamWriter,
        reader: asyncio.StreamReader,
        record: RequestRecord,
        body: Mapping[str, Any],
        reasoning: str,
        content: str,
        finish: str,
        usage: dict[str, Any],
        include_usage: bool,
        step: int,
        fault: Fault | None,
        tool_calls: list[dict[str, Any]] | None = None,
        r_step: int = 0,
    ) -> None:
        cid, created = f"chatcmpl-{uuid.uuid4()}", int(time.time())

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.get("model"),
                "choices": choices,
                **extra,
            }

        def delta(d: dict[str, Any], fin: str | None = None) -> dict[str, Any]:
            return chunk([{"index": 0, "delta": d, "finish_reason": fin}])

        events: list[dict[str, Any] | str] = [delta({"role": "assistant", "content": ""})]
        pieces = [
            ("reasoning_content", reasoning[i : i + (r_step or step)])
            for i in range(0, len(reasoning), r_step or step)
        ]
        if reasoning:
            pieces.append(("reasoning_content", ""))  # the boundary delta seen live
        pieces += [("content", content[i : i + step]) for i in range(0, len(content), step)]
        events += [delta({k: v}) for k, v in pieces]
        events += [delta({"tool_calls": [d]}) for d in _tool_call_deltas(tool_calls or [], step)]
        final = delta({}, finish)
        if self.usage_placement in ("choice", "both"):
            final["choices"][0]["usage"] = usage
        events.append(final)
        if self.usage_placement in ("top", "both") and include_usage:
            events.append(chunk([], usage=usage))
        events.append("[DONE]")

        head = {
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "Transfer-Encoding": "chunked",
            "Connection": "keep-alive",
            **self._ids(record),
        }
        writer.write(self._head(200, head))
        record.status = 200
        # A hang-up shows as EOF on the read side; watch for it while we write.
        hangup = asyncio.ensure_future(reader.read(1))
        try:
            await writer.drain()
            content_sent = 0
            for ev in events:
                is_content = isinstance(ev, dict) and bool(
                    ev["choices"] and ev["choices"][0]["delta"].get("content")
                )
                if fault is not None and is_content and content_sent == fault.after_chunks:
                    if fault.kind == "drop":
                        raise _Dropped
                    if fault.kind == "error_chunk":
                        message = fault.message or "stream interrupted"
                        err = {"error": {"type": "server_error", "message": message, "code": None}}
                        await self._write_chunk(writer, f"data: {json.dumps(err)}\n\n")
                        await self._write_chunk(writer, "")
                        record.finish_reason = None
                        return
                    if fault.kind == "stall":
                        await asyncio.wait({hangup}, timeout=fault.seconds)
                    fault = None
                if self.chunk_delay:
                    await asyncio.wait({hangup}, timeout=self.chunk_delay)
                if hangup.done():
                    raise _ClientGone
                if self.keepalive_comments:
                    await self._write_chunk(writer, ": keep-alive\n\n")
                data = ev if isinstance(ev, str) else json.dumps(ev)
                await self._write_chunk(writer, f"data: {data}\n\n")
                record.chunks_sent += 1
                if is_content:
                    content_sent += 1
            if hangup.done():
                raise _ClientGone
            hangup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hangup
            await self._write_chunk(writer, "")
        except (ConnectionError, RuntimeError):
            raise _ClientGone from None
        finally:
            if not hangup.done():
                hangup.cancel()

    @staticmethod
    async def _write_chunk(writer: asyncio.StreamWriter, text: str) -> None:
        data = text.encode()
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await writer.drain()


_TOOL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9-_]{2,63}$")


def _tool_call_deltas(calls: list[dict[str, Any]], step: int) -> list[dict[str, Any]]:
    """Streamed tool calls: id, type and name in the first fragment of each (with empty
    arguments), then the arguments in pieces, each fragment naming its ``index``."""
    out: list[dict[str, Any]] = []
    for i, call in enumerate(calls):
        fn = call["function"]
        out.append(
            {
                "index": i,
                "id": call["id"],
                "type": "function",
                "function": {"name": fn["name"], "arguments": ""},
            }
        )
        args = fn["arguments"]
        out += [
            {"index": i, "function": {"arguments": args[j : j + step]}}
            for j in range(0, len(args), max(1, step))
        ]
    return out


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    504: "Gateway Timeout",
}

"""``KimiClient``: the async HTTP client for the Kimi API.

One ``httpx.AsyncClient`` per ``KimiClient`` (HTTP/1.1 keep-alive, connections reused). The
read timeout bounds the silence between two chunks, not the whole answer. A chat is a
sequence of HTTP requests: retries of failed ones, and continuations in partial mode after
``finish_reason: "length"``; the caller sees one stream of events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from kimi_lsp import __version__
from kimi_lsp.llm.errors import (
    ConnectionFailed,
    ContextOverflow,
    InvalidRequest,
    KimiError,
    ModelNotFound,
    ProtocolError,
    RateLimited,
    StreamTimeout,
    error_from_response,
)
from kimi_lsp.llm.events import (
    Balance,
    ChatResult,
    ContentDelta,
    Finished,
    RequestStart,
    StreamEvent,
    ToolCall,
    ToolCalls,
    Usage,
    UsageReport,
)
from kimi_lsp.llm.models import ModelSpec, ModelTable, shape_request
from kimi_lsp.llm.sse import StreamState, assemble_tool_calls, read_stream
from kimi_lsp.llm.tokens import estimate_messages_tokens, estimate_text_tokens

log = logging.getLogger(__name__)

Message = Mapping[str, Any]
OnRequest = Callable[[RequestStart], Awaitable[None]]
OnRetry = Callable[[KimiError, float], Awaitable[None]]
OnResponse = Callable[[], Awaitable[None]]
REQUEST_ID_HEADERS = ("msh-request-id", "x-msh-trace-id", "x-request-id")
# Above this share of the context, a local estimate is replaced by an exact count (§8).
EXACT_COUNT_THRESHOLD = 0.85


def request_id_of(response: httpx.Response) -> str | None:
    for name in REQUEST_ID_HEADERS:
        if value := response.headers.get(name):
            return str(value)
    return None


def _network_error(exc: httpx.HTTPError, what: str) -> KimiError:
    if isinstance(exc, httpx.ReadTimeout):
        return StreamTimeout(
            f"Kimi sent nothing for too long while {what}; the connection was closed. "
            "Raise request_timeout_s if long pauses are expected."
        )
    if isinstance(exc, httpx.TimeoutException):
        return ConnectionFailed(f"Timed out {what}: {type(exc).__name__}. Check the network.")
    return ConnectionFailed(
        f"The connection to Kimi failed while {what}: {type(exc).__name__}: "
        f"{str(exc).rstrip('.')}. "
        "Check the network, a proxy (HTTPS_PROXY) or KIMI_LSP_BASE_URL."
    )


class ChatStream:
    """One streamed chat. Iterate it for events; ``async with`` closes the stream on exit.

    Besides the events it keeps what was delivered (``text``, ``reasoning``), the summed
    ``usage`` and the ``request_ids`` of every HTTP request it made.
    """

    def __init__(self, client: KimiClient, **params: Any) -> None:
        self._client = client
        self._params = params
        self.text = ""
        self.reasoning = ""
        self.usage = Usage()
        self.request_ids: list[str] = []
        self.finish_reason: str | None = None
        self.rounds = 0
        self.tool_calls: tuple[ToolCall, ...] = ()  # of the last request
        self._gen = self._run()

    @property
    def delivered(self) -> bool:
        """Whether any content or reasoning has reached the caller."""
        return bool(self.text or self.reasoning)

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> StreamEvent:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        await self._gen.aclose()

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _failed(
        self, err: KimiError, attempt: int, reasoning_this_request: bool, rid: str | None
    ) -> float | None:
        """Record what was delivered on ``err``; the delay before a retry, or None."""
        err.delivered_text, err.delivered_reasoning = self.text, self.reasoning
        if err.request_id is None:
            err.request_id = rid
        # Text already shown is never asked for again, only continued in partial mode;
        # reasoning shown without any text cannot be continued, so that fails.
        resumable = bool(self.text) or not reasoning_this_request
        delay = self._client._retry_delay(err, attempt) if resumable else None
        if delay is None:
            log.info("chat failed for good: %s", err)
        else:
            log.info("retrying in %.2fs after: %s", delay, err)
        return delay

    async def _run(self) -> AsyncGenerator[StreamEvent, None]:
        c, p = self._client, self._params
        model: str = p["model"]
        max_out: int = p["max_completion_tokens"]
        spec = c.models.get(model)
        base: list[dict[str, Any]] = [dict(m) for m in p["messages"]]
        base_tokens = (
            await c.check_context(base, model, max_out)
            if p["check"]
            else estimate_messages_tokens(base)
        )
        if p.get("tools"):  # the definitions are part of the prompt Kimi counts
            base_tokens += estimate_text_tokens(json.dumps(list(p["tools"])))
        round_no = attempt = 0
        on_request: OnRequest | None = p["on_request"]
        on_retry: OnRetry | None = p["on_retry"]
        on_response: OnResponse | None = p["on_response"]
        while True:
            messages = list(base)
            input_tokens = base_tokens
            if self.text:  # continue what the caller already has, in partial mode (§3.1)
                messages.append({"role": "assistant", "content": self.text, "partial": True})
                input_tokens += estimate_messages_tokens(messages[-1:])
            try:
                body = shape_request(
                    spec,
                    messages,
                    max_completion_tokens=max_out,
                    thinking=p["thinking"],
                    reasoning_effort=p["reasoning_effort"],
                    temperature=p["temperature"],
                    prompt_cache_key=p["prompt_cache_key"],
                    extra=_tool_fields(p.get("tools"), p.get("tool_choice")),
                )
            except ValueError as exc:
                raise InvalidRequest(f"Not sent: {exc}.") from None
            if on_request is not None:
                await on_request(RequestStart(model, input_tokens, max_out, round_no, attempt))
            state = StreamState()
            reasoning_this_request = False
            rid: str | None = None
            try:
                async with c._stream_request(body, model) as (response, rid):
                    if rid:
                        self.request_ids.append(rid)
                    if on_response is not None:
                        await on_response()
                    async for event in read_stream(response, state, request_id=rid, model=model):
                        if isinstance(event, ContentDelta):
                            self.text += event.text
                        else:
                            reasoning_this_request = True
                            self.reasoning += event.text
                        yield event
                if not state.done and state.finish_reason is None:
                    raise ConnectionFailed(
                        "Kimi's answer stopped before it was complete (no [DONE]).",
                        request_id=rid,
                    )
            except (ConnectionFailed, StreamTimeout) as err:
                if not state.done:  # an answer already complete is not lost to a late fault
                    if (delay := self._failed(err, attempt, reasoning_this_request, rid)) is None:
                        raise
                    attempt += 1
                    if on_retry is not None:
                        await on_retry(err, delay)
                    await c._sleep(delay)
                    continue
            except KimiError as err:
                if (delay := self._failed(err, attempt, reasoning_this_request, rid)) is None:
                    raise
                attempt += 1
                if on_retry is not None:
                    await on_retry(err, delay)
                await c._sleep(delay)
                continue
            if state.tool_parts:
                self.tool_calls = assemble_tool_calls(state.tool_parts)
                yield ToolCalls(self.tool_calls)
            if state.usage is not None:
                self.usage = self.usage + state.usage
                yield UsageReport(state.usage, rid, round_no)
            self.finish_reason = state.finish_reason
            self.rounds = round_no + 1
            if (
                state.finish_reason == "length"
                and self.text
                and round_no < p["continue_rounds"]
                and c.models.fits_context(
                    model,
                    base_tokens + estimate_messages_tokens([{"content": self.text}]),
                    max_out,
                )
            ):
                round_no += 1
                attempt = 0
                continue
            yield Finished(state.finish_reason, rid, self.rounds)
            return


class KimiClient:
    """The Kimi API client. Use as ``async with KimiClient(base_url, key) as client:``.

    ``timeout`` is the longest silence allowed between two chunks; ``connect_timeout`` bounds
    connecting. ``sleep`` and ``rng`` are injectable so retry tests never wait.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        model_table_path: Path | None = None,
        models: ModelTable | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        max_retries: int = 4,
        backoff_initial: float = 0.3,
        backoff_cap: float = 5.0,
        max_retry_wait: float = 60.0,
        prompt_cache_key: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.models = models if models is not None else ModelTable.load(model_table_path)
        if models is not None and model_table_path is not None:
            self.models.path = model_table_path
        self.max_retries = max_retries
        self.backoff_initial = backoff_initial
        self.backoff_cap = backoff_cap
        self.max_retry_wait = max_retry_wait
        self.prompt_cache_key = prompt_cache_key
        self._sleep = sleep
        self._rng = rng
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "User-Agent": f"kimi-lsp/{__version__}",
            },
            timeout=httpx.Timeout(timeout, connect=connect_timeout, pool=connect_timeout),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
            transport=transport,
        )

    async def __aenter__(self) -> KimiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- chat ----------------------------------------------------------------------------

    def stream_chat(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        max_completion_tokens: int,
        thinking: bool | None = None,
        reasoning_effort: str | None = None,
        temperature: float | None = None,
        continue_rounds: int = 3,
        prompt_cache_key: str | None = None,
        on_request: OnRequest | None = None,
        on_retry: OnRetry | None = None,
        on_response: OnResponse | None = None,
        check_context: bool = True,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
    ) -> ChatStream:
        """Stream an answer: ``ContentDelta`` and ``ReasoningDelta`` as they arrive, one
        ``UsageReport`` per HTTP request, then ``Finished``.

        ``max_completion_tokens`` is the output budget per request (what TPM admission
        charges); an answer cut at ``length`` is continued up to ``continue_rounds`` times.
        ``temperature`` is dropped for models that fix it. ``on_request`` is awaited before
        every HTTP request (retries and continuations included): the quota hook.
        ``on_retry(error, delay)`` is awaited before each retry's wait: the place to record a
        shared cool-down from ``RateLimited.retry_after`` (raise there to stop retrying).
        ``on_response()`` is awaited when a request's 200 response arrives, before its
        events: Kimi counted the request by then (the quota ledger keeps it from that time).
        Each ``on_request`` is followed by that request's ``UsageReport``, or by ``on_retry``,
        or by the exception that ends the stream.
        Raises ``ContextOverflow`` before sending when the prompt cannot fit.
        ``tools`` (function definitions) and ``tool_choice`` are sent as given; the calls of a
        request that ends in ``tool_calls`` arrive whole as one ``ToolCalls`` event.
        """
        if max_completion_tokens < 1:
            raise ValueError("max_completion_tokens must be at least 1")
        return ChatStream(
            self,
            messages=messages,
            model=model,
            max_completion_tokens=max_completion_tokens,
            thinking=thinking,
            reasoning_effort=reasoning_effort,
            temperature=temperature,
            continue_rounds=continue_rounds,
            prompt_cache_key=prompt_cache_key or self.prompt_cache_key,
            on_request=on_request,
            on_retry=on_retry,
            on_response=on_response,
            check=check_context,
            tools=tools,
            tool_choice=tool_choice,
        )

    async def chat(self, messages: Sequence[Message], **kwargs: Any) -> ChatResult:
        """The whole answer of :meth:`stream_chat` (same arguments)."""
        async with self.stream_chat(messages, **kwargs) as stream:
            async for _ in stream:
                pass
        return ChatResult(
            stream.text,
            stream.reasoning,
            stream.usage,
            stream.finish_reason,
            stream.request_ids,
            stream.rounds,
        )

    @contextlib.asynccontextmanager
    async def _stream_request(
        self, body: dict[str, Any], model: str
    ) -> AsyncIterator[tuple[httpx.Response, str | None]]:
        """POST a streamed chat; yield the 200 response, or raise the classified error."""
        try:
            async with self._http.stream("POST", "/chat/completions", json=body) as response:
                rid = request_id_of(response)
                log.debug("chat %s: HTTP %s, request id %s", model, response.status_code, rid)
                if response.status_code != 200:
                    await response.aread()
                    raise await self._error_for(response, rid, model)
                try:
                    yield response, rid
                except httpx.HTTPError as exc:
                    err = _network_error(exc, "streaming the answer")
                    err.request_id = rid
                    raise err from None
        except httpx.HTTPError as exc:
            raise _network_error(exc, "sending the request") from None

    async def _error_for(self, response: httpx.Response, rid: str | None, model: str) -> KimiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        err = error_from_response(response.status_code, body, request_id=rid, model=model)
        if isinstance(err, ModelNotFound):
            with contextlib.suppress(KimiError):
                err.available = [m.id for m in await self.list_models()]
            if err.available:
                err.message += f" Available models: {', '.join(err.available)}."
        return err

    def _retry_delay(self, err: KimiError, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when this error must not be retried."""
        if not err.retryable or attempt >= self.max_retries:
            return None
        if isinstance(err, RateLimited) and err.retry_after is not None:
            if err.retry_after > self.max_retry_wait:
                return None  # leave a long cool-down to the caller (the quota governor)
            return err.retry_after + self._rng() * 0.25
        base = min(self.backoff_cap, self.backoff_initial * 2.0**attempt)
        return base * (0.5 + 0.5 * self._rng())  # "equal jitter": never zero, never over cap

    # -- other endpoints -------------------------------------------------------------------

    async def _get_json(self, method: str, path: str, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            try:
                try:
                    response = await self._http.request(method, path, **kwargs)
                except httpx.HTTPError as exc:
                    raise _network_error(exc, f"calling {path}") from None
                rid = request_id_of(response)
                if response.status_code != 200:
                    raise error_from_response(
                        response.status_code, _json_or_none(response), request_id=rid
                    )
                try:
                    return response.json()
                except ValueError:
                    raise ProtocolError(
                        f"{path} answered with something that is not JSON", request_id=rid
                    ) from None
            except KimiError as err:
                delay = self._retry_delay(err, attempt)
                if delay is None:
                    raise
                attempt += 1
                await self._sleep(delay)

    async def list_models(self) -> list[ModelSpec]:
        """``GET /models``; refreshes the model table and saves it in the state dir."""
        raw = await self._get_json("GET", "/models")
        data = raw.get("data") if isinstance(raw, dict) else None
        if not isinstance(data, list):
            raise ProtocolError("/models answered, but not with a model list")
        self.models.update_from_listing(d for d in data if isinstance(d, dict))
        try:
            self.models.save()
        except OSError as exc:
            log.warning("could not cache the model table: %s", exc)
        return [self.models.get(mid) for mid in self.models.listed]

    async def balance(self) -> Balance:
        """``GET /users/me/balance`` (its own envelope; USD on .ai, CNY on .cn)."""
        raw = await self._get_json("GET", "/users/me/balance")
        data = raw.get("data") if isinstance(raw, dict) else None
        if not isinstance(data, dict):
            raise ProtocolError("/users/me/balance answered without a data object")
        currency = currency_for(self.base_url)

        def num(key: str) -> float:
            value = data.get(key)
            return float(value) if isinstance(value, int | float) else 0.0

        return Balance(
            num("available_balance"), num("voucher_balance"), num("cash_balance"), currency
        )

    async def count_tokens(self, messages: Sequence[Message], model: str) -> int:
        """The exact prompt size from ``POST /tokenizers/estimate-token-count`` (free)."""
        raw = await self._get_json(
            "POST",
            "/tokenizers/estimate-token-count",
            json={"model": model, "messages": [dict(m) for m in messages]},
        )
        data = raw.get("data") if isinstance(raw, dict) else None
        total = data.get("total_tokens") if isinstance(data, dict) else None
        if not isinstance(total, int):
            raise ProtocolError("the token estimate endpoint answered without total_tokens")
        return total

    def estimate_tokens(self, messages: Sequence[Message], model: str | None = None) -> int:
        """A fast, conservative local estimate of the prompt's size (no request)."""
        return estimate_messages_tokens(messages)

    async def check_context(
        self, messages: Sequence[Message], model: str, max_completion_tokens: int
    ) -> int:
        """The prompt's size in tokens, or ``ContextOverflow`` if it and the output budget
        cannot fit. Near the limit the local estimate is replaced by an exact count."""
        context = self.models.get(model).context_length
        tokens = estimate_messages_tokens(messages)
        if tokens + max_completion_tokens > context * EXACT_COUNT_THRESHOLD:
            try:
                tokens = await self.count_tokens(messages, model)
            except KimiError as exc:  # the local estimate is conservative: keep it
                log.info("exact token count unavailable (%s); using the estimate", exc)
        if tokens + max_completion_tokens > context:
            raise ContextOverflow(
                f"Not sent: the prompt (~{tokens} tokens) plus the output budget "
                f"({max_completion_tokens}) exceed {model}'s context of {context} tokens. "
                "Select less text or ask for a shorter answer.",
                input_tokens=tokens,
                max_completion_tokens=max_completion_tokens,
                context_length=context,
            )
        return tokens


def _tool_fields(
    tools: Sequence[Mapping[str, Any]] | None, tool_choice: str | Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The request fields for tools (kimi-api.md §3.1): only what the caller set."""
    out: dict[str, Any] = {}
    if tools:
        out["tools"] = [dict(t) for t in tools]
    if tool_choice is not None:
        out["tool_choice"] = tool_choice if isinstance(tool_choice, str) else dict(tool_choice)
    return out or None


def currency_for(base_url: str) -> str:
    """Balances are in RMB on the China platform (.cn hosts), USD elsewhere (§4)."""
    return "CNY" if httpx.URL(base_url).host.endswith(".cn") else "USD"


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None

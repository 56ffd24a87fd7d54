"""One answer from Kimi, the same way for every action: cache, quota, stream, settle.

``answer()`` is the single path every action's text takes to the editor:

1. the response cache: a hit is replayed through the same sink as a live answer (so editors
   behave the same) and spends no quota;
2. admission: before each HTTP request the quota governor reserves input + max output (what
   Kimi charges at admission) and may make the request wait, reported through the sink;
3. the stream: content and reasoning deltas go to the sink as they arrive; each request's
   usage settles its reservation; a rate-limit answer writes a shared cool-down;
4. a complete answer (``finish_reason`` stop) is stored in the cache;
5. never an empty answer: a reply cut (``length``) while still reasoning is asked again once
   with the thinking plan's fallback (thinking off, or twice the allowance), said through the
   sink; cut again, ``ThinkingBudgetSpent`` tells the user in words. While the model reasons,
   the sink hears "thinking… N tokens" (at most every ``THINKING_PROGRESS_STEP`` tokens).

Cancelling the task closes the HTTP stream (leaving ``async with`` does) and settles the
reservation to what Kimi would have counted.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kimi_lsp.actions.errors import ThinkingBudgetSpent
from kimi_lsp.actions.thinking import ThinkingPlan
from kimi_lsp.llm import (
    ContentDelta,
    Finished,
    KimiClient,
    KimiError,
    RateLimited,
    ReasoningDelta,
    RequestStart,
    ToolCall,
    ToolCalls,
    Usage,
    UsageReport,
    cost_usd,
)
from kimi_lsp.llm.tokens import estimate_text_tokens

log = logging.getLogger(__name__)

Message = Mapping[str, Any]


class Sink(Protocol):
    """Where an answer goes while it is made: progress text, answer deltas, reasoning deltas."""

    def progress(self, message: str) -> None: ...

    def text(self, delta: str) -> None: ...

    def reasoning(self, delta: str) -> None: ...


class QuietSink:
    """A sink for answers nobody watches live (hover's opt-in wait, workspace fan-out)."""

    def progress(self, message: str) -> None:
        pass

    def text(self, delta: str) -> None:
        pass

    def reasoning(self, delta: str) -> None:
        pass


@dataclass
class Answer:
    text: str
    reasoning: str
    usage: Usage
    finish_reason: str | None
    cached: bool
    model: str
    request_ids: list[str]
    # The input tokens Kimi counted for the first request, which sent exactly the messages
    # given (later rounds of a continued answer send more): what calibrates estimates.
    first_prompt_tokens: int = 0
    # With index tools (actions/toolloop.py): the calls of a round that ended in tool_calls,
    # the ``path:line`` sources the lookups drew on, and a note for the user.
    tool_calls: tuple[ToolCall, ...] = ()
    sources: list[str] = field(default_factory=list)
    note: str | None = None
    tools_refused: bool = False  # the model or endpoint answered the tools with a 400


@dataclass
class CachedAnswer:
    text: str
    reasoning: str
    usage: Usage
    model: str


class AnswerStore(Protocol):
    """The response cache, as the pipeline needs it."""

    def key(
        self,
        model: str,
        messages: Sequence[Message],
        max_completion_tokens: int,
        extra: Mapping[str, Any],
    ) -> str: ...

    async def get(self, key: str) -> CachedAnswer | None: ...

    async def put(self, key: str, answer: CachedAnswer) -> None: ...


class Ticket(Protocol):
    """One admitted request's reservation."""

    async def answered(self) -> None: ...

    async def settle(self, usage: Usage | None) -> None: ...

    async def refused(self) -> None: ...


class Admission(Protocol):
    """The quota governor, as the pipeline needs it."""

    async def admit(
        self, start: RequestStart, *, batch: bool, on_wait: Callable[[str, float], None]
    ) -> Ticket: ...

    async def rate_limited(
        self, retry_after: float | None, limit: str | None, stated: int | None = None
    ) -> None: ...


REPLAY_CHUNK = 64  # characters per replayed delta: small enough to look like a stream
THINKING_PROGRESS_STEP = 250  # "thinking… N tokens" changes at most this often (in tokens)


async def answer(
    client: KimiClient,
    messages: Sequence[Message],
    *,
    model: str,
    max_completion_tokens: int,
    sink: Sink,
    store: AnswerStore | None = None,
    admission: Admission | None = None,
    batch: bool = False,
    regenerate: bool = False,
    thinking: bool | None = None,
    continue_rounds: int = 3,
    on_cached: Callable[[CachedAnswer], Awaitable[None]] | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: str | None = None,
    plan: ThinkingPlan | None = None,
) -> Answer:
    """Stream one answer into ``sink`` and return it whole. A ``plan`` (actions/thinking.py)
    sets thinking, reasoning effort and ``max_completion_tokens`` (allowance + answer)."""
    reasoning_effort: str | None = None
    if plan is not None:
        thinking, reasoning_effort = plan.thinking, plan.reasoning_effort
        max_completion_tokens = plan.max_completion_tokens
    key = None
    if store is not None:
        extra: dict[str, Any] = {"thinking": thinking, "continue_rounds": continue_rounds}
        if reasoning_effort is not None:
            extra["reasoning_effort"] = reasoning_effort
        key = store.key(model, messages, max_completion_tokens, extra)
        hit = None if regenerate else await store.get(key)
        if hit is not None:
            sink.progress("cached answer")
            if hit.reasoning:
                sink.reasoning(hit.reasoning)
            for i in range(0, len(hit.text), REPLAY_CHUNK):
                sink.text(hit.text[i : i + REPLAY_CHUNK])
            if on_cached:
                await on_cached(hit)
            return Answer(hit.text, hit.reasoning, hit.usage, "stop", True, hit.model, [])

    pending: list[Ticket] = []

    async def on_request(start: RequestStart) -> None:
        await _settle_pending(None)  # an earlier request of this chat failed without usage
        if admission is None:
            sink.progress("sending")
            return

        said = ""

        def on_wait(reason: str, seconds: float) -> None:
            nonlocal said
            if reason == "concurrency":  # no time to tell: it ends when an answer does
                message = "waiting for an open request to finish (concurrency limit)"
            else:
                message = f"waiting {max(1, math.ceil(seconds))} s for {reason}"
            if message != said:  # re-checks repeat themselves; the editor hears it once
                sink.progress(message)
                said = message

        ticket = await admission.admit(start, batch=batch, on_wait=on_wait)
        pending.append(ticket)
        sink.progress("sending")

    async def on_response() -> None:
        if pending:  # Kimi counts the request from its arrival, not from our admission
            await pending[-1].answered()

    async def on_retry(error: KimiError, delay: float) -> None:
        if isinstance(error, RateLimited) and admission is not None:
            # what Kimi said first (a stated limit), then free the refused request's place
            await admission.rate_limited(error.retry_after, error.limit, _stated(error))
        if isinstance(error, RateLimited):
            await _refuse_pending()
        await _settle_pending(None)
        sink.progress(f"retrying in {delay:.0f} s: {error.message}")

    async def _settle_pending(usage: Usage | None) -> None:
        while pending:
            await pending.pop(0).settle(usage)

    async def _refuse_pending() -> None:  # a 429: Kimi turned the request away, counted nothing
        while pending:
            await pending.pop(0).refused()

    text: list[str] = []
    reasoning: list[str] = []
    usage = Usage()
    first_prompt_tokens = 0
    finish: str | None = None
    received = 0
    request_ids: list[str] = []
    calls: tuple[ToolCall, ...] = ()
    current, retried = plan, None
    try:
        while True:
            thought = shown = 0  # reasoning tokens of this attempt, and the last count shown
            async with client.stream_chat(
                messages,
                model=model,
                max_completion_tokens=max_completion_tokens,
                thinking=thinking,
                reasoning_effort=reasoning_effort,
                continue_rounds=continue_rounds,
                on_request=on_request,
                on_retry=on_retry,
                on_response=on_response,
                tools=tools,
                tool_choice=tool_choice,
            ) as stream:
                async for event in stream:
                    if isinstance(event, ContentDelta):
                        if thought > shown and not received:  # the reasoning's whole length
                            sink.progress(f"thought for {thought:,} tokens; answering")
                            shown = thought
                        text.append(event.text)
                        received += len(event.text)
                        sink.text(event.text)
                    elif isinstance(event, ReasoningDelta):
                        reasoning.append(event.text)
                        sink.reasoning(event.text)
                        thought += estimate_text_tokens(event.text) if event.text else 0
                        if thought - shown >= THINKING_PROGRESS_STEP and not received:
                            sink.progress(f"thinking… {thought:,} tokens")
                            shown = thought
                    elif isinstance(event, UsageReport):
                        if not usage.prompt_tokens:
                            first_prompt_tokens = event.usage.prompt_tokens
                        usage = usage + event.usage
                        if pending:
                            await pending.pop(0).settle(event.usage)
                    elif isinstance(event, Finished):
                        finish = event.finish_reason
                    elif isinstance(event, ToolCalls):
                        calls = event.calls
                request_ids += stream.request_ids
            if finish != "length" or received or not (thought or stream.reasoning):
                break
            # Cut inside the reasoning: no answer at all. Ask once more, differently.
            fallback = current.fallback() if current is not None and retried is None else None
            if fallback is None or current is None:
                raise ThinkingBudgetSpent(
                    model,
                    max_completion_tokens,
                    retried,
                    plan.action if plan is not None else "explain",
                    plan.can_disable if plan is not None else True,
                )
            sink.progress(
                f"Kimi spent all {max_completion_tokens:,} tokens thinking; {current.retry_words()}"
            )
            retried = "a retry " + current.retry_words().removeprefix("asking again ")
            current = fallback
            thinking, reasoning_effort = current.thinking, current.reasoning_effort
            max_completion_tokens = current.max_completion_tokens
    except RateLimited as exc:
        if admission is not None:
            await admission.rate_limited(exc.retry_after, exc.limit, _stated(exc))
        await _refuse_pending()
        raise
    finally:
        await _settle_pending(None)  # failed or cancelled: settle to what Kimi counted

    cost = cost_usd(model, usage)
    sink.progress(
        f"done: {usage.prompt_tokens} tokens in ({usage.cached_tokens} cached), "
        f"{usage.completion_tokens} out" + (f", ${cost:.4f}" if cost is not None else "")
    )
    result = Answer(
        text="".join(text),
        reasoning="".join(reasoning),
        usage=usage,
        finish_reason=finish,
        cached=False,
        model=model,
        request_ids=request_ids,
        first_prompt_tokens=first_prompt_tokens,
        tool_calls=calls,
    )
    if store is not None and key is not None and finish == "stop" and result.text:
        try:
            await store.put(key, CachedAnswer(result.text, result.reasoning, usage, model))
        except Exception:  # a cache write may be skipped; the answer is what matters
            log.warning("could not store the answer in the cache", exc_info=True)
    return result


def _stated(error: RateLimited) -> int | None:
    """The value of the limit a 429 states (the quota governor adopts it), if it states one."""
    return None if error.stated is None else error.stated.value

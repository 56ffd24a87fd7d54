"""Kimi asks the index: an answer in rounds, where Kimi may call the index tools.

``answer_with_tools()`` wraps the pipeline's ``answer()``: each round is one ``answer()``
(so admission by the quota governor, the batch/interactive class, retries, cancellation and
usage settle exactly as for any request), sent with the tool definitions and
``tool_choice: "auto"``. A round that ends in ``tool_calls`` has its calls run against the
index (``actions/tools.py``); the next round's conversation is the previous one, unchanged
byte for byte, plus the assistant's tool-call message (with its ``reasoning_content``: kimi-
api.md §3.5; ids echoed unchanged: §3.2) and one ``tool`` message per call. So Kimi's prefix
cache serves every round but the new tail.

Limits: at most ``rounds`` rounds that answer with lookups, then one last round with
``tool_choice: "none"``; and a token allowance for the whole action (a round whose input and
output budget would exceed it is the last one). A model or endpoint that refuses tools (a 400
on the first round) gets the packed context alone, with a note.

The cache: the exchange is stored as a plan (each round's tool calls and reasoning) under the
key of the first request, and the answer under the key of the whole conversation. The same
question on the same code replays the plan locally (the lookups are re-run against the
index, no request), finds the same conversation bytes and so the cached answer; changed code
changes a lookup's result, misses, and asks Kimi again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kimi_lsp.actions.pipeline import (
    REPLAY_CHUNK,
    Admission,
    Answer,
    AnswerStore,
    CachedAnswer,
    Sink,
    answer,
)
from kimi_lsp.actions.thinking import ThinkingPlan
from kimi_lsp.actions.tools import IndexTools, ToolResult, tool_specs
from kimi_lsp.llm import ContextOverflow, InvalidRequest, KimiClient, ToolCall, Usage
from kimi_lsp.llm.tokens import estimate_messages_tokens

log = logging.getLogger(__name__)

Message = Mapping[str, Any]
PLAN_VERSION = "tools-v1"
PLAN_PREFIX = "plan:"  # the response cache does not count these lookups as hits or misses


@dataclass
class Round:
    """One round that ended in tool calls: what the history needs to carry it again."""

    content: str
    reasoning: str
    calls: list[ToolCall]


@dataclass
class Exchange:
    """What the rounds did, for the caller (sources for the document, counts for a bench)."""

    rounds: list[Round] = field(default_factory=list)
    results: list[ToolResult] = field(default_factory=list)
    requests: int = 0
    usage: Usage = field(default_factory=Usage)

    @property
    def sources(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.results:
            for s in r.sources:
                seen.setdefault(s, None)
        return list(seen)


TOOL_ACTIONS = frozenset({"explain", "refactor", "tests"})  # fix is a refactor; not presets


def tools_offered(tools_setting: str, action: str, *, preset: str | None = None) -> list[Any]:
    """The function definitions an action offers Kimi (empty: the packed context alone)."""
    if tools_setting != "on" or action not in TOOL_ACTIONS or preset is not None:
        return []
    return tool_specs()


def assistant_message(content: str, reasoning: str, calls: Sequence[ToolCall]) -> dict[str, Any]:
    """The assistant's tool-call message as the next request must carry it: the ids verbatim,
    ``reasoning_content`` always (an empty one too: thinking models 400 without it), and no
    empty ``content`` (the Kimi-for-Coding layer rejects an empty text, §3.5)."""
    message: dict[str, Any] = {"role": "assistant"}
    if content:
        message["content"] = content
    message["reasoning_content"] = reasoning
    message["tool_calls"] = [c.message() for c in calls]
    return message


def tool_message(call: ToolCall, result: ToolResult) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": result.text}


def _plan_text(rounds: Sequence[Round]) -> str:
    return json.dumps(
        {
            "version": PLAN_VERSION,
            "rounds": [
                {
                    "content": r.content,
                    "reasoning": r.reasoning,
                    "calls": [[c.id, c.name, c.arguments] for c in r.calls],
                }
                for r in rounds
            ],
        },
        sort_keys=True,
    )


def _parse_plan(text: str) -> list[Round] | None:
    try:
        raw = json.loads(text)
        if raw.get("version") != PLAN_VERSION:
            return None
        return [
            Round(
                str(r["content"]),
                str(r["reasoning"]),
                [ToolCall(str(i), str(n), str(a)) for i, n, a in r["calls"]],
            )
            for r in raw["rounds"]
        ]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


async def answer_with_tools(
    client: KimiClient,
    messages: Sequence[Message],
    tools: IndexTools,
    *,
    model: str,
    max_completion_tokens: int,
    sink: Sink,
    store: AnswerStore | None = None,
    admission: Admission | None = None,
    batch: bool = False,
    regenerate: bool = False,
    thinking: bool | None = None,
    rounds: int = 3,
    token_allowance: int = 60_000,
    exchange: Exchange | None = None,
    on_cached: Callable[[CachedAnswer], Awaitable[None]] | None = None,
    plan: ThinkingPlan | None = None,
) -> Answer:
    """An answer to ``messages`` for which Kimi may call the index tools (see the module).
    A thinking ``plan`` (actions/thinking.py) shapes every round like a single answer."""
    ex = exchange if exchange is not None else Exchange()
    specs = tool_specs()
    base = [dict(m) for m in messages]
    if plan is not None:
        thinking = plan.thinking
    extra = {
        "thinking": thinking,
        "reasoning_effort": plan.reasoning_effort if plan is not None else None,
        "allowance": plan.max_completion_tokens if plan is not None else None,
        "tools": [s["function"]["name"] for s in specs],
        "tool_rounds": rounds,
        "exchange": PLAN_VERSION,
    }
    plan_key = None
    if store is not None:
        plan_key = PLAN_PREFIX + store.key(model, base, max_completion_tokens, extra)
        if not regenerate:
            hit = await _replay(store, plan_key, base, tools, model, max_completion_tokens, extra)
            if hit is not None:
                _, cached, results = hit
                ex.results.extend(results)
                sink.progress("cached answer")
                if cached.reasoning:
                    sink.reasoning(cached.reasoning)
                for i in range(0, len(cached.text), REPLAY_CHUNK):
                    sink.text(cached.text[i : i + REPLAY_CHUNK])
                if on_cached:
                    await on_cached(cached)
                return Answer(
                    cached.text,
                    cached.reasoning,
                    cached.usage,
                    "stop",
                    True,
                    cached.model,
                    [],
                    sources=ex.sources,
                )

    conversation: list[dict[str, Any]] = list(base)
    texts: list[str] = []
    reasonings: list[str] = []
    request_ids: list[str] = []
    note: str | None = None
    first_prompt_tokens = 0
    result: Answer | None = None
    offered = True
    while True:
        last = len(ex.rounds) >= rounds
        needed = estimate_messages_tokens(conversation) + max_completion_tokens
        if ex.requests and ex.usage.total_tokens + needed > token_allowance:
            note = (
                f"Stopped: another round would pass this action's allowance of "
                f"{token_allowance} tokens (setting tool_tokens)."
            )
            sink.progress(note)
            break
        if ex.usage.total_tokens + 2 * needed > token_allowance:
            last = True  # a round after this one would not fit: this one must answer
        try:
            result = await answer(
                client,
                conversation,
                model=model,
                max_completion_tokens=max_completion_tokens,
                sink=sink,
                admission=admission,
                batch=batch,
                thinking=thinking,
                tools=specs if offered else None,
                tool_choice=("none" if last else "auto") if offered else None,
                plan=plan,
            )
        except ContextOverflow:
            raise
        except InvalidRequest as exc:
            if not offered or ex.requests:
                raise
            # The model or the endpoint refuses tools: the packed context alone.
            log.info("tools refused (%s); answering from the packed context alone", exc)
            note = (
                f"This model or endpoint refused index tools ({exc.message}); "
                "answered from the packed context alone."
            )
            sink.progress("index tools refused: answering from the packed context alone")
            offered = False
            continue
        ex.requests += 1
        ex.usage = ex.usage + result.usage
        request_ids += result.request_ids
        if not first_prompt_tokens:
            first_prompt_tokens = result.first_prompt_tokens
        if result.text:
            texts.append(result.text)
        if result.reasoning:
            reasonings.append(result.reasoning)
        if result.finish_reason != "tool_calls" or not result.tool_calls:
            break
        if last:
            note = (
                f"Kimi still asked for lookups after {rounds} rounds (setting tool_rounds); "
                "it was stopped there."
            )
            sink.progress(note)
            break
        round_ = Round(result.text, result.reasoning, list(result.tool_calls))
        ex.rounds.append(round_)
        conversation.append(assistant_message(round_.content, round_.reasoning, round_.calls))
        for call in round_.calls:
            looked = tools.call(call.name, call.arguments)
            ex.results.append(looked)
            sink.progress(looked.summary)
            conversation.append(tool_message(call, looked))

    text = "".join(texts)  # what the sink showed, round after round
    if note is not None and (result is None or result.finish_reason != "stop" or not text):
        sink.text(("\n\n" if text else "") + f"_{note}_")
        text = (text + "\n\n" if text else "") + f"_{note}_"
    finish = result.finish_reason if result is not None else None
    if finish == "tool_calls":
        finish = "length"  # out of rounds: not a complete answer, never cached
    final = Answer(
        text=text,
        reasoning="".join(reasonings),
        usage=ex.usage,
        finish_reason=finish,
        cached=False,
        model=model,
        request_ids=request_ids,
        first_prompt_tokens=first_prompt_tokens,
        sources=ex.sources,
        note=note,
        tools_refused=not offered,
    )
    if store is not None and plan_key is not None and finish == "stop" and text and offered:
        try:
            answer_key = store.key(model, conversation, max_completion_tokens, extra)
            lookups = CachedAnswer(_plan_text(ex.rounds), "", Usage(), model)
            await store.put(answer_key, CachedAnswer(text, final.reasoning, ex.usage, model))
            await store.put(plan_key, lookups)
        except Exception:  # a cache write may be skipped; the answer is what matters
            log.warning("could not store the answer in the cache", exc_info=True)
    return final


async def _replay(
    store: AnswerStore,
    plan_key: str,
    base: list[dict[str, Any]],
    tools: IndexTools,
    model: str,
    max_completion_tokens: int,
    extra: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], CachedAnswer, list[ToolResult]] | None:
    """The cached answer, if the plan's lookups give today what they gave then."""
    planned = await store.get(plan_key)
    # No plan: the answer, if any, came without lookups (its conversation is the question).
    rounds = (_parse_plan(planned.text) if planned is not None else None) or []
    conversation = list(base)
    results: list[ToolResult] = []
    for r in rounds:
        conversation.append(assistant_message(r.content, r.reasoning, r.calls))
        for call in r.calls:
            looked = tools.call(call.name, call.arguments)
            results.append(looked)
            conversation.append(tool_message(call, looked))
    hit = await store.get(store.key(model, conversation, max_completion_tokens, extra))
    return (conversation, hit, results) if hit is not None else None

"""The SSE parsing rules, on canned bodies (httpx.MockTransport: no server needed)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kimi_lsp.llm import ContentDelta, ProtocolError, ReasoningDelta, ServerError, Usage
from kimi_lsp.llm.sse import StreamState, parse_chunk, read_stream

USAGE = {
    "prompt_tokens": 90,
    "completion_tokens": 50,
    "total_tokens": 140,
    "cached_tokens": 90,
    "prompt_tokens_details": {"cached_tokens": 90},
    "completion_tokens_details": {"reasoning_tokens": 33},
}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"object": "chat.completion.chunk", "choices": choices, **extra}


async def run(body: str, content_type: str = "text/event-stream") -> tuple[list[Any], StreamState]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": content_type}, content=body.encode())

    state = StreamState()
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as c,
        c.stream("POST", "http://x/chat/completions") as response,
    ):
        events = [e async for e in read_stream(response, state)]
    return events, state


def sse(*items: Any) -> str:
    return "".join(
        f"data: {item if isinstance(item, str) else json.dumps(item)}\n\n" for item in items
    )


def test_usage_parse_order_and_both_spellings() -> None:
    assert Usage.from_api(USAGE) == Usage(90, 50, 90, 33)
    only_details = {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 4}}
    assert Usage.from_api(only_details) == Usage(10, 0, 4, 0)
    assert Usage.from_api({"prompt_tokens": 10, "completion_tokens": 2}) == Usage(10, 2, 0, 0)
    assert Usage.from_api(None) is None
    assert Usage(90, 50, 90, 33).uncached_prompt_tokens == 0


def test_top_level_usage_wins_over_choice_usage() -> None:
    top = {**USAGE, "prompt_tokens": 1}
    c = chunk({}, "stop", usage=top)
    c["choices"][0]["usage"] = USAGE
    assert parse_chunk(c).usage == Usage(1, 50, 90, 33)
    assert parse_chunk(chunk({}, "stop") | {"usage": None}).usage is None


def test_empty_choices_chunk_is_not_indexed_blindly() -> None:
    parsed = parse_chunk(chunk(None, usage=USAGE))
    assert parsed.content is None
    assert parsed.usage == Usage(90, 50, 90, 33)


async def test_stream_with_reasoning_comments_and_both_usage_placements() -> None:
    final = chunk({}, "stop")
    final["choices"][0]["usage"] = USAGE
    body = ": keep-alive\n\n" + sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "hm"}),
        chunk({"reasoning_content": ""}),
        chunk({"content": "Hi"}),
        chunk({"content": " there"}),
        final,
        chunk(None, usage=USAGE),
        "[DONE]",
    )
    events, state = await run(body)
    assert events == [
        ReasoningDelta("hm"),
        ReasoningDelta(""),
        ContentDelta("Hi"),
        ContentDelta(" there"),
    ]
    assert state.done
    assert state.finish_reason == "stop"
    assert state.usage == Usage(90, 50, 90, 33)


async def test_error_chunk_mid_stream_raises_the_classified_error() -> None:
    err = {"error": {"type": "server_error", "message": "boom", "code": None}}
    body = sse(chunk({"content": "Hi"}), err)
    with pytest.raises(ServerError, match="boom"):
        await run(body)


async def test_events_after_done_are_ignored() -> None:
    events, state = await run(sse(chunk({"content": "a"}), "[DONE]", chunk({"content": "b"})))
    assert events == [ContentDelta("a")]
    assert state.done


@pytest.mark.parametrize(
    ("body", "content_type"),
    [("data: {not json}\n\n", "text/event-stream"), ('{"a": 1}', "application/json")],
)
async def test_garbage_is_a_protocol_error(body: str, content_type: str) -> None:
    with pytest.raises(ProtocolError):
        await run(body, content_type)


@given(
    pieces=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=12),
    placement=st.sampled_from(["choice", "top", "both"]),
    comments=st.booleans(),
)
@settings(max_examples=60, deadline=None)
async def test_any_split_reassembles_the_text_and_reports_usage_once(
    pieces: list[str], placement: str, comments: bool
) -> None:
    final = chunk({}, "stop")
    items: list[Any] = [chunk({"role": "assistant", "content": ""})]
    items += [chunk({"content": p}) for p in pieces]
    if placement in ("choice", "both"):
        final["choices"][0]["usage"] = USAGE
    items.append(final)
    if placement in ("top", "both"):
        items.append(chunk(None, usage=USAGE))
    items.append("[DONE]")
    body = "".join((": ping\n\n" if comments else "") + sse(item) for item in items)
    events, state = await run(body)
    assert "".join(e.text for e in events) == "".join(pieces)
    assert state.usage == Usage(90, 50, 90, 33)
    assert state.finish_reason == "stop"

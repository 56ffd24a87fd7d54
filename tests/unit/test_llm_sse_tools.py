"""Streamed tool-call fragments become whole calls (canned bodies, httpx.MockTransport)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from kimi_lsp.llm import ProtocolError, ToolCall
from kimi_lsp.llm.sse import (
    StreamState,
    ToolCallParts,
    add_tool_fragments,
    assemble_tool_calls,
    parse_chunk,
    read_stream,
)


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def first(index: int, cid: str, name: str) -> dict[str, Any]:
    fn = {"name": name, "arguments": ""}
    return {"tool_calls": [{"index": index, "id": cid, "type": "function", "function": fn}]}


def piece(index: int, text: str) -> dict[str, Any]:
    return {"tool_calls": [{"index": index, "function": {"arguments": text}}]}


async def run(items: list[Any]) -> StreamState:
    body = "".join(f"data: {json.dumps(i) if not isinstance(i, str) else i}\n\n" for i in items)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    state = StreamState()
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as c,
        c.stream("POST", "http://x/chat/completions") as response,
    ):
        async for _ in read_stream(response, state):
            pass
    return state


def test_parse_chunk_keeps_the_raw_fragments() -> None:
    c = parse_chunk(chunk(first(0, "functions.read:0", "read")))
    assert c.tool_calls[0]["id"] == "functions.read:0"
    assert parse_chunk(chunk({"content": "x"})).tool_calls == ()


async def test_two_interleaved_calls_are_assembled_in_index_order_with_ids_verbatim() -> None:
    state = await run(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"reasoning_content": "look it up"}),
            chunk(first(0, "functions.definition:3", "definition")),
            chunk(piece(0, '{"na')),
            chunk(first(1, "functions.read:4", "read")),
            chunk(piece(1, '{"path": "a.py"}')),
            chunk(piece(0, 'me": "Inventory.reserve"}')),
            chunk({}, "tool_calls"),
            "[DONE]",
        ]
    )
    assert state.finish_reason == "tool_calls"
    assert assemble_tool_calls(state.tool_parts) == (
        ToolCall("functions.definition:3", "definition", '{"name": "Inventory.reserve"}'),
        ToolCall("functions.read:4", "read", '{"path": "a.py"}'),
    )


def test_a_call_without_a_name_is_a_protocol_error() -> None:
    parts: dict[int, ToolCallParts] = {}
    add_tool_fragments(parts, ({"index": 0, "function": {"arguments": "{}"}},))
    with pytest.raises(ProtocolError):
        assemble_tool_calls(parts)


def test_tool_call_message_shape() -> None:
    call = ToolCall("functions.outline:0", "outline", '{"path": "x.py"}')
    assert call.message() == {
        "id": "functions.outline:0",
        "type": "function",
        "function": {"name": "outline", "arguments": '{"path": "x.py"}'},
    }

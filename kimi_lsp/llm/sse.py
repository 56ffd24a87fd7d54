"""Reading one streamed chat answer: SSE events (httpx-sse) → deltas, usage, finish reason.

Pure functions over parsed chunks plus one async generator over an httpx response, so the
parsing rules (usage top-level or in ``choices[0]`` or both, ``choices: []``, mid-stream
``{"error": ...}``, ``[DONE]``) are unit-testable without a server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import EventSource, SSEError

from kimi_lsp.llm.errors import ProtocolError, error_from_response
from kimi_lsp.llm.events import ContentDelta, ReasoningDelta, ToolCall, Usage


@dataclass(frozen=True)
class Chunk:
    """What one ``chat.completion.chunk`` carries that the client cares about."""

    content: str | None = None
    reasoning: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()  # the raw ``delta.tool_calls`` fragments


def parse_chunk(data: Any) -> Chunk:
    """One chunk. Usage: top-level ``usage`` wins, else ``choices[0].usage``."""
    if not isinstance(data, dict):
        raise ProtocolError(f"Kimi sent a stream chunk that is not an object: {data!r:.200}")
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    content = reasoning = finish = None
    choice_usage = None
    if isinstance(choice, dict):
        delta = choice.get("delta")
        if isinstance(delta, dict):
            c, r = delta.get("content"), delta.get("reasoning_content")
            content = c if isinstance(c, str) else None
            reasoning = r if isinstance(r, str) else None
        fr = choice.get("finish_reason")
        finish = fr if isinstance(fr, str) else None
        choice_usage = choice.get("usage")
    usage = Usage.from_api(data.get("usage")) or Usage.from_api(choice_usage)
    fragments: tuple[dict[str, Any], ...] = ()
    if isinstance(choice, dict) and isinstance(choice.get("delta"), dict):
        raw = choice["delta"].get("tool_calls")
        if isinstance(raw, list):
            fragments = tuple(f for f in raw if isinstance(f, dict))
    return Chunk(content, reasoning, finish, usage, fragments)


@dataclass
class ToolCallParts:
    """One tool call while its fragments arrive: id and name first, arguments in pieces."""

    id: str = ""
    name: str = ""
    arguments: str = ""


def add_tool_fragments(
    parts: dict[int, ToolCallParts], fragments: tuple[dict[str, Any], ...]
) -> None:
    """Fold streamed ``tool_calls`` fragments into ``parts`` by their ``index`` (§3.4)."""
    for frag in fragments:
        index = frag.get("index")
        key = index if isinstance(index, int) else len(parts)
        part = parts.setdefault(key, ToolCallParts())
        if isinstance(frag.get("id"), str) and frag["id"]:
            part.id = frag["id"]
        fn = frag.get("function")
        if isinstance(fn, dict):
            if isinstance(fn.get("name"), str) and fn["name"]:
                part.name = fn["name"]
            if isinstance(fn.get("arguments"), str):
                part.arguments += fn["arguments"]


def assemble_tool_calls(parts: dict[int, ToolCallParts]) -> tuple[ToolCall, ...]:
    """The whole calls, in index order. A call without a name is a broken stream."""
    calls = []
    for index in sorted(parts):
        p = parts[index]
        if not p.name:
            raise ProtocolError(f"Kimi sent a tool call without a name (index {index})")
        calls.append(ToolCall(p.id or f"{p.name}:{index}", p.name, p.arguments))
    return tuple(calls)


@dataclass
class StreamState:
    """What one request's stream has produced so far."""

    finish_reason: str | None = None
    usage: Usage | None = None
    done: bool = False  # saw ``[DONE]``
    tool_parts: dict[int, ToolCallParts] = field(default_factory=dict)


async def read_stream(
    response: httpx.Response,
    state: StreamState,
    *,
    request_id: str | None = None,
    model: str | None = None,
) -> AsyncIterator[ContentDelta | ReasoningDelta]:
    """Yield content and reasoning deltas as they arrive; record finish and usage in ``state``.

    When usage appears twice (in the finish chunk's choice and in a trailing ``choices: []``
    chunk) the last one is kept: one request is one usage report.
    """
    try:
        async for sse in EventSource(response).aiter_sse():
            data_text = sse.data
            if state.done:
                # Read on to the end of the body so the connection goes back to the pool.
                continue
            if data_text.strip() == "[DONE]":
                state.done = True
                continue
            if not data_text.strip():
                continue
            try:
                data = json.loads(data_text)
            except ValueError:
                raise ProtocolError(
                    f"Kimi sent a stream chunk that is not JSON: {data_text[:200]!r}",
                    request_id=request_id,
                ) from None
            if isinstance(data, dict) and data.get("error") is not None:
                raise error_from_response(None, data, request_id=request_id, model=model)
            chunk = parse_chunk(data)
            if chunk.usage is not None:
                state.usage = chunk.usage
            if chunk.finish_reason is not None:
                state.finish_reason = chunk.finish_reason
            if chunk.tool_calls:
                add_tool_fragments(state.tool_parts, chunk.tool_calls)
            # Empty reasoning deltas are kept: preserved thinking needs them (§3.4).
            if chunk.reasoning is not None:
                yield ReasoningDelta(chunk.reasoning)
            if chunk.content:
                yield ContentDelta(chunk.content)
    except SSEError as exc:
        raise ProtocolError(
            f"Kimi answered without an event stream: {exc}", request_id=request_id
        ) from None

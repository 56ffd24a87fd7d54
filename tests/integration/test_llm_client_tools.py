"""The client sends tools, assembles streamed tool calls and keeps ids verbatim (real socket)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kimi_lsp.llm import Finished, InvalidRequest, KimiClient, ToolCalls, UsageReport
from tests.fake_kimi import FakeKimi

USER = [{"role": "user", "content": "explain reserve"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "definition",
            "description": "Find a definition by name",
            "parameters": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
            },
        },
    }
]


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
async def client(fake_kimi: FakeKimi, tmp_path: Path) -> AsyncIterator[KimiClient]:
    async with KimiClient(
        fake_kimi.base_url,
        fake_kimi.key,
        model_table_path=tmp_path / "models.json",
        sleep=_no_sleep,
    ) as c:
        yield c


async def test_tool_calls_round_trip_with_reasoning_kept_for_history(
    fake_kimi: FakeKimi, client: KimiClient
) -> None:
    fake_kimi.script_tools([("definition", {"name": "Inventory.reserve"})], reasoning="hmm " * 50)
    fake_kimi.script("Reserve holds stock.")
    async with client.stream_chat(
        USER, model="kimi-k2.6", max_completion_tokens=2000, tools=TOOLS, tool_choice="auto"
    ) as stream:
        events: list[Any] = [e async for e in stream]
    calls = [e for e in events if isinstance(e, ToolCalls)]
    assert len(calls) == 1
    (call,) = calls[0].calls
    assert call.id == "functions.definition:0"
    assert json.loads(call.arguments) == {"name": "Inventory.reserve"}
    kinds = [type(e) for e in events]
    assert kinds.index(ToolCalls) < kinds.index(UsageReport) < kinds.index(Finished)
    assert events[-1].finish_reason == "tool_calls"
    sent = fake_kimi.chat_requests[-1].body
    assert sent["tools"] == TOOLS
    assert sent["tool_choice"] == "auto"

    history = [
        *USER,
        {
            "role": "assistant",
            "content": stream.text,
            "reasoning_content": stream.reasoning,
            "tool_calls": [c.message() for c in stream.tool_calls],
        },
        {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": "def reserve()"},
    ]
    result = await client.chat(
        history, model="kimi-k2.6", max_completion_tokens=2000, tools=TOOLS, tool_choice="auto"
    )
    assert result.text == "Reserve holds stock."
    assert result.finish_reason == "stop"
    echoed = fake_kimi.chat_requests[-1].body["messages"][1]
    assert echoed["tool_calls"][0]["id"] == "functions.definition:0"  # verbatim
    assert echoed["reasoning_content"] == "hmm " * 50


async def test_a_refused_tools_request_is_an_invalid_request(
    fake_kimi: FakeKimi, client: KimiClient
) -> None:
    fake_kimi.tools_supported = False
    with pytest.raises(InvalidRequest):
        await client.chat(USER, model="kimi-k2.6", max_completion_tokens=200, tools=TOOLS)
    assert len(fake_kimi.chat_requests) == 1  # a 400 is not retried


async def test_without_tools_nothing_about_tools_is_sent(
    fake_kimi: FakeKimi, client: KimiClient
) -> None:
    await client.chat(USER, model="kimi-k2.6", max_completion_tokens=200)
    body = fake_kimi.chat_requests[-1].body
    assert "tools" not in body
    assert "tool_choice" not in body

"""The emulator answers with tool calls the way kimi-api.md §3.1-3.5 says the real API does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fake_kimi import FakeKimi

USER = [{"role": "user", "content": "where is reserve defined?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "definition",
            "description": "Find a definition",
            "parameters": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
    }
]


@pytest.fixture
def fake() -> Iterator[FakeKimi]:
    with FakeKimi() as f:
        f.default_reasoning = "Thinking it over."  # the wire format, not the budget: brief
        yield f


@pytest.fixture
def http(fake: FakeKimi) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.key}"}, timeout=10
    ) as c:
        yield c


def chat(http: httpx.Client, **body: Any) -> httpx.Response:
    payload = {
        "model": "kimi-k2.6",
        "messages": USER,
        "max_completion_tokens": 400,
        "tools": TOOLS,
        **body,
    }
    return http.post("/chat/completions", json=payload)


def sse_chunks(text: str) -> list[Any]:
    return [
        json.loads(line[6:])
        for line in text.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


def test_streamed_tool_calls_arrive_in_fragments_with_k2_ids(
    http: httpx.Client, fake: FakeKimi
) -> None:
    args = {"name": "Inventory.reserve"}
    fake.script_tools([("definition", args), ("definition", {"name": "Order"})], reasoning="hm")
    resp = chat(http, stream=True)
    chunks = sse_chunks(resp.text)
    fragments = [
        tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls", [])
    ]
    firsts = [f for f in fragments if "id" in f]
    assert [(f["index"], f["id"], f["function"]["name"]) for f in firsts] == [
        (0, "functions.definition:0", "definition"),
        (1, "functions.definition:1", "definition"),
    ]
    pieces = [f["function"]["arguments"] for f in fragments if f["index"] == 0 and "id" not in f]
    assert len(pieces) > 1  # the arguments come in pieces
    assert json.loads("".join(pieces)) == args
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls" or any(
        c["choices"] and c["choices"][0]["finish_reason"] == "tool_calls" for c in chunks
    )
    assert fake.chat_requests[-1].finish_reason == "tool_calls"
    # reasoning comes first, then the calls
    kinds = [next(iter(c["choices"][0]["delta"]), None) for c in chunks if c["choices"]]
    assert kinds.index("reasoning_content") < kinds.index("tool_calls")


def test_non_streamed_tool_calls_and_the_conversation_global_counter(
    http: httpx.Client, fake: FakeKimi
) -> None:
    fake.script_tools([("definition", {"name": "x"})])
    earlier = [
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": "r",
            "tool_calls": [
                {
                    "id": "functions.definition:0",
                    "type": "function",
                    "function": {"name": "definition", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "functions.definition:0", "content": "found"},
    ]
    body = chat(http, messages=[*USER, *earlier]).json()
    message = body["choices"][0]["message"]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert message["content"] == ""
    assert message["tool_calls"][0]["id"] == "functions.definition:1"
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"name": "x"}


def test_missing_reasoning_content_on_an_earlier_tool_call_is_a_400(http: httpx.Client) -> None:
    call = {"id": "functions.definition:0", "type": "function"}
    call["function"] = {"name": "definition", "arguments": "{}"}  # type: ignore[assignment]
    history = [
        *USER,
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "functions.definition:0", "content": "found"},
    ]
    resp = chat(http, messages=history)
    assert resp.status_code == 400
    assert resp.json()["error"] == {
        "type": "invalid_request_error",
        "message": "thinking is enabled but reasoning_content is missing in assistant "
        "tool call message at index 1",
    }
    # thinking off: the same history is fine
    assert chat(http, messages=history, thinking={"type": "disabled"}).status_code == 200


def test_tool_choice_required_with_thinking_is_a_400_except_on_k3(http: httpx.Client) -> None:
    resp = chat(http, tool_choice="required")
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == (
        "tool_choice 'required' is incompatible with thinking enabled"
    )
    assert chat(http, tool_choice="required", thinking={"type": "disabled"}).status_code == 200
    assert chat(http, tool_choice="required", model="kimi-k3").status_code == 200


def test_a_responder_sees_the_messages_and_tool_choice_none_gets_text(
    http: httpx.Client, fake: FakeKimi
) -> None:
    seen: list[int] = []

    def responder(messages: list[dict[str, Any]], body: dict[str, Any]) -> Any:
        seen.append(len(messages))
        if messages[-1]["role"] == "tool":
            return "It is in shop/inventory.py."
        return [("definition", {"name": "Inventory.reserve"})]

    fake.responder = responder
    first = chat(http).json()["choices"][0]
    assert first["finish_reason"] == "tool_calls"
    call = first["message"]["tool_calls"][0]
    history = [
        *USER,
        first["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": "def reserve(): ..."},
    ]
    second = chat(http, messages=history).json()["choices"][0]
    assert second["finish_reason"] == "stop"
    assert second["message"]["content"] == "It is in shop/inventory.py."
    assert seen == [1, 3]
    assert chat(http, tool_choice="none").json()["choices"][0]["finish_reason"] == "stop"


def test_bad_tool_names_and_a_model_without_tools_are_400s(
    http: httpx.Client, fake: FakeKimi
) -> None:
    bad = [{"type": "function", "function": {"name": "x", "parameters": {"type": "object"}}}]
    assert chat(http, tools=bad).status_code == 400
    fake.tools_supported = False
    resp = chat(http)
    assert resp.status_code == 400
    assert "tools" in resp.json()["error"]["message"]


def test_tool_calls_are_scripted_over_http_in_a_subprocess(fake_kimi_process: str) -> None:
    control = fake_kimi_process.removesuffix("/v1")
    calls = [["outline", {"path": "a.py"}]]
    assert httpx.post(f"{control}/_fake/script_tools", json={"calls": calls}).json() == {"ok": True}
    with httpx.Client(
        base_url=fake_kimi_process, headers={"Authorization": "Bearer sk-test"}, timeout=10
    ) as c:
        choice = chat(c).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["id"] == "functions.outline:0"

"""KimiClient against the emulator over a real loopback socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kimi_lsp.llm import (
    AuthenticationError,
    ConnectionFailed,
    ContentDelta,
    ContextOverflow,
    EngineOverloaded,
    Finished,
    InvalidRequest,
    KimiClient,
    KimiError,
    ModelNotFound,
    ModelTable,
    QuotaExceeded,
    RateLimited,
    ReasoningDelta,
    RequestStart,
    ServerError,
    StreamTimeout,
    UsageReport,
)
from tests.fake_kimi import FakeKimi, FakeModel, count_prompt_tokens

USER = [{"role": "user", "content": "explain the function"}]
LONG = "The quick brown fox jumps over the lazy dog. " * 6  # 270 chars, 68 tokens


class Sleeps:
    """An injected sleep: records the delays, never waits."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def client(fake_kimi: FakeKimi, sleeps: Sleeps, tmp_path: Path) -> AsyncIterator[KimiClient]:
    async with KimiClient(
        fake_kimi.base_url,
        fake_kimi.key,
        model_table_path=tmp_path / "models.json",
        sleep=sleeps,
        rng=lambda: 0.5,
        prompt_cache_key="ws-1234",
    ) as c:
        yield c


async def collect(stream: Any) -> list[Any]:
    async with stream as s:
        return [ev async for ev in s]


# -- streaming -------------------------------------------------------------------------------


async def test_thinking_model_streams_reasoning_then_content_separately(
    fake_kimi: FakeKimi, client: KimiClient
) -> None:
    fake_kimi.script("It adds two numbers.", reasoning="The user wants an explanation.")
    events = await collect(client.stream_chat(USER, model="kimi-k2.6", max_completion_tokens=200))
    reasoning = [e.text for e in events if isinstance(e, ReasoningDelta)]
    content = [e.text for e in events if isinstance(e, ContentDelta)]
    assert "".join(reasoning) == "The user wants an explanation."
    assert reasoning[-1] == ""  # the boundary delta is kept
    assert "".join(content) == "It adds two numbers."
    assert len(content) > 1  # deltas arrive as they are streamed, not as one block
    last_reasoning = max(i for i, e in enumerate(events) if isinstance(e, ReasoningDelta))
    first_content = min(i for i, e in enumerate(events) if isinstance(e, ContentDelta))
    assert last_reasoning < first_content
    assert isinstance(events[-1], Finished)
    assert events[-1].finish_reason == "stop"


@pytest.mark.parametrize("placement", ["choice", "top", "both"])
@pytest.mark.parametrize("spelling", ["top", "details"])
async def test_usage_is_read_once_from_any_placement_and_spelling(
    fake_kimi: FakeKimi, client: KimiClient, placement: str, spelling: str
) -> None:
    fake_kimi.usage_placement, fake_kimi.cached_spelling = placement, spelling
    fake_kimi.script("Short answer.", reasoning="hmm")
    events = await collect(client.stream_chat(USER, model="kimi-k2.6", max_completion_tokens=100))
    reports = [e for e in events if isinstance(e, UsageReport)]
    assert len(reports) == 1
    record = fake_kimi.chat_requests[-1]
    usage = reports[0].usage
    assert usage.prompt_tokens == record.prompt_tokens == count_prompt_tokens(USER)
    assert usage.completion_tokens == record.completion_tokens
    assert usage.reasoning_tokens == record.reasoning_tokens == 1
    assert reports[0].request_id == record.request_id


async def test_keepalive_comment_lines_are_ignored(fake_kimi: FakeKimi, client: KimiClient) -> None:
    fake_kimi.keepalive_comments = True
    fake_kimi.script("Plain text here.")
    result = await client.chat(USER, model="moonshot-v1-8k", max_completion_tokens=50)
    assert result.text == "Plain text here."
    assert result.finish_reason == "stop"


async def test_cached_tokens_are_reported_for_a_repeated_long_prefix(
    fake_kimi: FakeKimi, client: KimiClient
) -> None:
    system = {"role": "system", "content": "repo map " * 200}  # 1800 chars: > 256 tokens
    first = await client.chat([system, *USER], model="kimi-k2.6", max_completion_tokens=50)
    second = await client.chat(
        [system, {"role": "user", "content": "another question"}],
        model="kimi-k2.6",
        max_completion_tokens=50,
    )
    assert first.usage.cached_tokens == 0
    assert second.usage.cached_tokens == fake_kimi.chat_requests[-1].cached_tokens > 400
    assert second.usage.uncached_prompt_tokens < second.usage.prompt_tokens


# -- request shaping -----------------------------------------------------------------------


async def test_requests_follow_the_model_table(fake_kimi: FakeKimi, client: KimiClient) -> None:
    await client.chat(USER, model="kimi-k2.6", max_completion_tokens=64, temperature=0.2)
    await client.chat(
        USER, model="kimi-k3", max_completion_tokens=64, reasoning_effort="low", temperature=0.2
    )
    await client.chat(USER, model="kimi-k2.6", max_completion_tokens=64, thinking=False)
    await client.chat(USER, model="moonshot-v1-8k", max_completion_tokens=64, temperature=0.2)
    k26, k3, k26_off, v1 = (r.body for r in fake_kimi.chat_requests)
    for body in (k26, k3, k26_off, v1):
        assert body["max_completion_tokens"] == 64
        assert "max_tokens" not in body
        assert body["stream"] is True
        assert body["stream_options"] == {"include_usage": True}
        assert body["prompt_cache_key"] == "ws-1234"
    for body in (k26, k3, k26_off):
        assert not {"temperature", "top_p", "n", "presence_penalty"} & set(body)
    assert v1["temperature"] == 0.2
    assert "thinking" not in k26
    assert "reasoning_effort" not in k26
    assert k3["reasoning_effort"] == "low"
    assert "thinking" not in k3
    assert k26_off["thinking"] == {"type": "disabled"}
    assert all(s == 200 for s in (r.status for r in fake_kimi.chat_requests))


async def test_bearer_key_and_connection_reuse(fake_kimi: FakeKimi, client: KimiClient) -> None:
    for _ in range(3):
        await client.chat(USER, model="kimi-k2.6", max_completion_tokens=32)
    records = fake_kimi.chat_requests
    assert {r.headers["authorization"] for r in records} == {"Bearer sk-test"}
    assert len({r.connection for r in records}) == 1  # HTTP/1.1 keep-alive


async def test_a_combination_the_model_rejects_is_refused_before_sending(
    fake_kimi: FakeKimi, client: KimiClient
) -> None:
    with pytest.raises(InvalidRequest, match="always thinks"):
        await client.chat(USER, model="kimi-k2.7-code", max_completion_tokens=32, thinking=False)
    with pytest.raises(InvalidRequest, match="reasoning_effort"):
        await client.chat(
            USER, model="kimi-k2.6", max_completion_tokens=32, reasoning_effort="high"
        )
    assert fake_kimi.chat_requests == []


# -- output budget and context -----------------------------------------------------------


async def test_prompt_that_cannot_fit_is_refused_locally(
    fake_kimi: FakeKimi, client: KimiClient
) -> None:
    messages = [{"role": "user", "content": "x" * 30_000}]  # ~7500 tokens
    with pytest.raises(ContextOverflow, match="8192") as info:
        await client.chat(messages, model="moonshot-v1-8k", max_completion_tokens=1024)
    assert info.value.context_length == 8192
    assert fake_kimi.chat_requests == []
    # Near the limit the client asked for an exact count first.
    assert [r.path for r in fake_kimi.requests] == ["/v1/tokenizers/estimate-token-count"]


async def test_near_the_limit_an_exact_count_lets_a_fitting_prompt_through(
    fake_kimi: FakeKimi, client: KimiClient
) -> None:
    # Non-ASCII: the local estimate (1 token per char) is far above the exact count.
    messages = [{"role": "user", "content": "é" * 12_000}]
    assert client.estimate_tokens(messages) + 1024 > 8192
    result = await client.chat(messages, model="moonshot-v1-8k", max_completion_tokens=1024)
    assert result.finish_reason == "stop"
    paths = [r.path for r in fake_kimi.requests]
    assert paths == ["/v1/tokenizers/estimate-token-count", "/v1/chat/completions"]


async def test_server_context_overflow_is_a_clear_error_and_not_retried(
    fake_kimi: FakeKimi, client: KimiClient, sleeps: Sleeps
) -> None:
    messages = [{"role": "user", "content": "y" * 30_000}]
    with pytest.raises(ContextOverflow, match="exceeded model token limit"):
        await client.chat(
            messages, model="moonshot-v1-8k", max_completion_tokens=1024, check_context=False
        )
    assert len(fake_kimi.chat_requests) == 1
    assert sleeps.delays == []


async def test_exact_count_matches_the_emulator(fake_kimi: FakeKimi, client: KimiClient) -> None:
    messages = [{"role": "system", "content": "sys"}, *USER]
    assert await client.count_tokens(messages, "kimi-k2.6") == count_prompt_tokens(messages)


# -- continuation after length --------------------------------------------------------------


async def test_answer_cut_at_length_is_continued_in_partial_mode(
    fake_kimi: FakeKimi, client: KimiClient
) -> None:
    fake_kimi.script(LONG, match="fox")
    ask = [{"role": "user", "content": "the fox please"}]
    result = await client.chat(ask, model="moonshot-v1-8k", max_completion_tokens=30)
    assert result.text == LONG
    assert result.finish_reason == "stop"
    assert result.rounds == 3
    bodies = [r.body for r in fake_kimi.chat_requests]
    assert [r.finish_reason for r in fake_kimi.chat_requests] == ["length", "length", "stop"]
    assert bodies[0]["messages"] == ask
    for body in bodies[1:]:
        partial = body["messages"][-1]
        assert partial["role"] == "assistant"
        assert partial["partial"] is True
        assert LONG.startswith(partial["content"])
        assert partial["content"]
        assert body["max_completion_tokens"] == 30
    assert result.usage.completion_tokens == sum(
        r.completion_tokens for r in fake_kimi.chat_requests
    )


async def test_continuation_stops_after_the_configured_rounds(
    fake_kimi: FakeKimi, client: KimiClient
) -> None:
    fake_kimi.script(LONG, match="fox")
    ask = [{"role": "user", "content": "fox"}]
    events = await collect(
        client.stream_chat(ask, model="moonshot-v1-8k", max_completion_tokens=30, continue_rounds=1)
    )
    assert isinstance(events[-1], Finished)
    assert events[-1].finish_reason == "length"
    assert events[-1].rounds == 2
    assert len([e for e in events if isinstance(e, UsageReport)]) == 2
    assert len(fake_kimi.chat_requests) == 2


async def test_on_request_hook_sees_every_request_with_its_charge(
    fake_kimi: FakeKimi, client: KimiClient
) -> None:
    fake_kimi.script(LONG, match="fox")
    fake_kimi.fail_next("overloaded")
    seen: list[RequestStart] = []

    async def hook(start: RequestStart) -> None:
        seen.append(start)

    await client.chat(
        [{"role": "user", "content": "fox"}],
        model="moonshot-v1-8k",
        max_completion_tokens=40,
        on_request=hook,
    )
    assert [(s.round, s.attempt) for s in seen] == [(0, 0), (0, 1), (1, 0)]
    assert all(s.max_completion_tokens == 40 and s.model == "moonshot-v1-8k" for s in seen)
    assert seen[2].input_tokens > seen[0].input_tokens  # the partial text is input too
    assert len(fake_kimi.chat_requests) == 3


# -- errors and retries -------------------------------------------------------------------


async def test_on_retry_hook_sees_the_rate_limit_and_can_stop_retrying(
    fake_kimi: FakeKimi, client: KimiClient, sleeps: Sleeps
) -> None:
    fake_kimi.fail_next("rate_limit_rpm", retry_after=9, times=2)
    seen: list[tuple[KimiError, float]] = []

    async def on_retry(err: KimiError, delay: float) -> None:
        seen.append((err, delay))
        if len(seen) == 2:
            raise err  # e.g. the quota governor takes over the cool-down

    with pytest.raises(RateLimited) as info:
        await client.chat(USER, model="kimi-k2.6", max_completion_tokens=50, on_retry=on_retry)
    assert [(type(e), d) for e, d in seen] == [(RateLimited, 9.125), (RateLimited, 9.125)]
    assert isinstance(seen[0][0], RateLimited)
    assert seen[0][0].retry_after == 9
    assert info.value is seen[1][0]
    assert sleeps.delays == [9.125]
    assert len(fake_kimi.chat_requests) == 2


@pytest.mark.parametrize(
    ("fault", "options", "error", "delays"),
    [
        ("rate_limit_concurrency", {"retry_after": 2}, RateLimited, [2.125]),
        ("rate_limit_rpm", {"retry_after": 20}, RateLimited, [20.125]),
        ("rate_limit_tpm", {}, RateLimited, [0.225]),
        ("overloaded", {}, EngineOverloaded, [0.225]),
        ("server_error", {}, ServerError, [0.225]),
        ("unexpected_output", {}, ServerError, [0.225]),
        ("gateway_timeout", {}, ServerError, [0.225]),
        ("drop_before_response", {}, ConnectionFailed, [0.225]),
    ],
)
async def test_retryable_errors_are_retried_with_the_right_delay(
    fake_kimi: FakeKimi,
    client: KimiClient,
    sleeps: Sleeps,
    fault: str,
    options: dict[str, Any],
    error: type[KimiError],
    delays: list[float],
) -> None:
    fake_kimi.fail_next(fault, **options)
    fake_kimi.script("Recovered.")
    # Room for the reasoning (300-3,000 tokens) before the answer, as on the real API.
    result = await client.chat(USER, model="kimi-k2.6", max_completion_tokens=4096)
    assert result.text == "Recovered."
    assert sleeps.delays == pytest.approx(delays)
    assert len(fake_kimi.chat_requests) == 2
    # The failed request and the retry are the same request.
    first, second = fake_kimi.chat_requests
    assert first.body == second.body
    # Without retries left, the same fault surfaces as its own, retryable, error.
    fake_kimi.fail_next(fault, **options)
    async with KimiClient(fake_kimi.base_url, fake_kimi.key, max_retries=0) as once:
        with pytest.raises(error) as info:
            await once.chat(USER, model="kimi-k2.6", max_completion_tokens=100)
    assert info.value.retryable
    if fault != "drop_before_response":  # no response, no request id
        assert info.value.request_id == fake_kimi.chat_requests[-1].request_id


@pytest.mark.parametrize(
    ("fault", "options", "error", "status"),
    [
        ("quota", {}, QuotaExceeded, 429),
        ("quota", {"status": 403}, QuotaExceeded, 403),
        ("rate_limit_tpd", {}, RateLimited, 429),
        ("rate_limit_rpm", {"retry_after": 3600}, RateLimited, 429),  # longer than we wait
    ],
)
async def test_errors_that_retrying_cannot_fix_fail_at_once(
    fake_kimi: FakeKimi,
    client: KimiClient,
    sleeps: Sleeps,
    fault: str,
    options: dict[str, Any],
    error: type[KimiError],
    status: int,
) -> None:
    fake_kimi.fail_next(fault, **options)
    with pytest.raises(error) as info:
        await client.chat(USER, model="kimi-k2.6", max_completion_tokens=100)
    assert sleeps.delays == []
    assert len(fake_kimi.chat_requests) == 1
    assert info.value.status == status
    assert info.value.request_id == fake_kimi.chat_requests[0].request_id
    assert not info.value.delivered


async def test_rate_limit_error_exposes_retry_after_and_limit(
    fake_kimi: FakeKimi, sleeps: Sleeps
) -> None:
    fake_kimi.fail_next("rate_limit_rpm", retry_after=7)
    async with KimiClient(fake_kimi.base_url, fake_kimi.key, max_retries=0, sleep=sleeps) as c:
        with pytest.raises(RateLimited) as info:
            await c.chat(USER, model="kimi-k2.6", max_completion_tokens=100)
    assert info.value.retry_after == 7
    assert info.value.limit == "rpm"
    assert "try again after 7 seconds" in str(info.value)


async def test_wrong_key_is_an_authentication_error_without_retry(
    fake_kimi: FakeKimi, sleeps: Sleeps
) -> None:
    async with KimiClient(fake_kimi.base_url, "sk-wrong", sleep=sleeps) as c:
        with pytest.raises(AuthenticationError, match="MOONSHOT_API_KEY"):
            await c.chat(USER, model="kimi-k2.6", max_completion_tokens=100)
    assert sleeps.delays == []
    assert len(fake_kimi.chat_requests) == 1


async def test_unknown_model_names_the_models_that_exist(
    fake_kimi: FakeKimi, client: KimiClient, sleeps: Sleeps
) -> None:
    with pytest.raises(ModelNotFound) as info:
        await client.chat(USER, model="kimi-k2-0905-preview", max_completion_tokens=100)
    assert "kimi-k2-0905-preview" in str(info.value)
    assert "kimi-k2.6" in info.value.available
    assert "Available models: kimi-k3" in str(info.value)
    assert sleeps.delays == []
    assert len(fake_kimi.chat_requests) == 1


async def test_retries_give_up_after_max_retries(fake_kimi: FakeKimi, sleeps: Sleeps) -> None:
    fake_kimi.fail_next("server_error", times=5)
    async with KimiClient(
        fake_kimi.base_url, fake_kimi.key, max_retries=2, sleep=sleeps, rng=lambda: 1.0
    ) as c:
        with pytest.raises(ServerError):
            await c.chat(USER, model="kimi-k2.6", max_completion_tokens=100)
    assert sleeps.delays == pytest.approx([0.3, 0.6])  # exponential backoff
    assert len(fake_kimi.chat_requests) == 3


async def test_dropped_connection_mid_stream_continues_in_partial_mode(
    fake_kimi: FakeKimi, client: KimiClient
) -> None:
    fake_kimi.script(LONG, match="fox")
    fake_kimi.fail_next("drop", after_chunks=2)
    ask = [{"role": "user", "content": "fox"}]
    events = await collect(
        client.stream_chat(ask, model="moonshot-v1-8k", max_completion_tokens=200)
    )
    text = "".join(e.text for e in events if isinstance(e, ContentDelta))
    assert text == LONG  # nothing repeated, nothing lost
    first, second = fake_kimi.chat_requests
    assert first.dropped
    delivered = LONG[:32]  # two chunks of 4 tokens
    assert second.body["messages"] == [
        *ask,
        {"role": "assistant", "content": delivered, "partial": True},
    ]


async def test_error_chunk_mid_stream_is_classified_and_reports_delivered_text(
    fake_kimi: FakeKimi, sleeps: Sleeps
) -> None:
    fake_kimi.script(LONG, match="fox")
    fake_kimi.fail_next("error_chunk", after_chunks=1, message="engine hiccup")
    async with KimiClient(fake_kimi.base_url, fake_kimi.key, max_retries=0, sleep=sleeps) as c:
        stream = c.stream_chat(
            [{"role": "user", "content": "fox"}], model="moonshot-v1-8k", max_completion_tokens=200
        )
        with pytest.raises(ServerError, match="engine hiccup") as info:
            await collect(stream)
    assert info.value.delivered
    assert info.value.delivered_text == LONG[:16] == stream.text
    assert info.value.request_id == fake_kimi.chat_requests[0].request_id


async def test_error_chunk_with_retries_left_continues_the_answer(
    fake_kimi: FakeKimi, client: KimiClient
) -> None:
    fake_kimi.script(LONG, match="fox")
    fake_kimi.fail_next("error_chunk", after_chunks=3)
    result = await client.chat(
        [{"role": "user", "content": "fox"}], model="moonshot-v1-8k", max_completion_tokens=200
    )
    assert result.text == LONG
    assert fake_kimi.chat_requests[1].body["messages"][-1]["partial"] is True


async def test_drop_while_only_reasoning_was_shown_is_not_retried(
    fake_kimi: FakeKimi, client: KimiClient, sleeps: Sleeps
) -> None:
    fake_kimi.script("Answer.", reasoning="a long chain of thought " * 4)
    fake_kimi.fail_next("drop", after_chunks=0)
    with pytest.raises(ConnectionFailed) as info:
        await client.chat(USER, model="kimi-k2.6", max_completion_tokens=500)
    assert info.value.delivered
    assert not info.value.delivered_text
    assert sleeps.delays == []
    assert len(fake_kimi.chat_requests) == 1


async def test_silence_longer_than_the_timeout_is_a_stream_timeout(fake_kimi: FakeKimi) -> None:
    fake_kimi.fail_next("stall", after_chunks=1, seconds=30)
    async with KimiClient(fake_kimi.base_url, fake_kimi.key, timeout=0.3, max_retries=0) as c:
        with pytest.raises(StreamTimeout) as info:
            await c.chat(USER, model="moonshot-v1-8k", max_completion_tokens=100)
    assert info.value.retryable
    assert info.value.delivered
    assert fake_kimi.wait_until(lambda: fake_kimi.chat_requests[0].client_closed)


async def test_slow_chunks_within_the_timeout_are_fine(fake_kimi: FakeKimi) -> None:
    fake_kimi.chunk_delay = 0.02
    fake_kimi.script("Slow but steady answer.")
    async with KimiClient(fake_kimi.base_url, fake_kimi.key, timeout=2.0) as c:
        result = await c.chat(USER, model="moonshot-v1-8k", max_completion_tokens=100)
    assert result.text == "Slow but steady answer."


# -- cancellation ------------------------------------------------------------------------


async def test_cancelling_the_caller_closes_the_http_stream(
    fake_kimi: FakeKimi, client: KimiClient
) -> None:
    fake_kimi.chunk_delay = 0.05
    fake_kimi.script(LONG * 10)
    first_delta = asyncio.Event()

    async def consume() -> None:
        async for ev in client.stream_chat(USER, model="moonshot-v1-8k", max_completion_tokens=900):
            if isinstance(ev, ContentDelta):
                first_delta.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_delta.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    record = fake_kimi.chat_requests[0]
    assert await asyncio.to_thread(fake_kimi.wait_until, lambda: record.client_closed, 10)
    assert not record.completed  # the emulator stopped mid-answer: the client hung up
    assert await asyncio.to_thread(fake_kimi.wait_until, lambda: fake_kimi.in_flight() == 0, 10)


async def test_leaving_the_stream_context_early_closes_it(
    fake_kimi: FakeKimi, client: KimiClient
) -> None:
    fake_kimi.chunk_delay = 0.05
    fake_kimi.script(LONG * 10)
    async with client.stream_chat(USER, model="moonshot-v1-8k", max_completion_tokens=900) as s:
        async for ev in s:
            if isinstance(ev, ContentDelta):
                break
    record = fake_kimi.chat_requests[0]
    assert await asyncio.to_thread(fake_kimi.wait_until, lambda: record.client_closed, 10)


# -- other endpoints ---------------------------------------------------------------------


async def test_models_refresh_the_table_and_are_cached_in_the_state_dir(
    fake_kimi: FakeKimi, client: KimiClient, tmp_path: Path
) -> None:
    fake_kimi.add_model(FakeModel("kimi-k2.8-preview", 524_288, True, True, "thinking"))
    specs = await client.list_models()
    new = next(s for s in specs if s.id == "kimi-k2.8-preview")
    assert new.context_length == 524_288
    assert new.reasoning_control == "thinking"
    cached = json.loads((tmp_path / "models.json").read_text())
    assert "kimi-k2.8-preview" in cached["listed"]
    reloaded = ModelTable.load(tmp_path / "models.json")
    assert reloaded.get("kimi-k2.8-preview").context_length == 524_288


async def test_balance_reads_its_own_envelope(fake_kimi: FakeKimi, client: KimiClient) -> None:
    fake_kimi.balance = {"available_balance": 12.5, "voucher_balance": 10, "cash_balance": 2.5}
    balance = await client.balance()
    assert (balance.available, balance.voucher, balance.cash) == (12.5, 10.0, 2.5)
    assert balance.currency == "USD"


async def test_an_empty_balance_makes_chat_fail_with_quota_exceeded(
    fake_kimi: FakeKimi, client: KimiClient, sleeps: Sleeps
) -> None:
    fake_kimi.balance = {"available_balance": 0, "voucher_balance": 0, "cash_balance": -1}
    with pytest.raises(QuotaExceeded, match="Recharge"):
        await client.chat(USER, model="kimi-k2.6", max_completion_tokens=100)
    assert sleeps.delays == []

"""The emulator itself behaves like kimi-api.md says the real API does (raw HTTP, real socket)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fake_kimi import FakeKimi, ManualClock, count_prompt_tokens, count_tokens

USER = [{"role": "user", "content": "hello"}]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeKimi]:
    with FakeKimi(clock=clock) as f:
        yield f


@pytest.fixture
def http(fake: FakeKimi) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.key}"}, timeout=10
    ) as c:
        yield c


def chat(http: httpx.Client, **body: Any) -> httpx.Response:
    payload = {"model": "kimi-k2.6", "messages": USER, "max_completion_tokens": 100, **body}
    return http.post("/chat/completions", json=payload)


def sse_chunks(text: str) -> list[Any]:
    out = []
    for line in text.splitlines():
        if line.startswith("data: "):
            data = line.removeprefix("data: ")
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


# -- auth and validation ---------------------------------------------------------------------


def test_bearer_auth(fake: FakeKimi) -> None:
    no_auth = httpx.get(f"{fake.base_url}/models")
    wrong = httpx.get(f"{fake.base_url}/models", headers={"Authorization": "Bearer sk-nope"})
    assert no_auth.status_code == wrong.status_code == 401
    assert no_auth.json()["error"]["type"] == "invalid_authentication_error"
    assert wrong.json() == {
        "error": {"type": "incorrect_api_key_error", "message": "Incorrect API key provided"}
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"temperature": 0.3}, "invalid temperature: only 1 is allowed for this model"),
        (
            {"temperature": 1.0, "thinking": {"type": "disabled"}},
            "invalid temperature: only 0.6 is allowed for this model",
        ),
        ({"top_p": 1.0}, "invalid top_p: only 0.95 is allowed for this model"),
        ({"n": 2}, "invalid n: only 1 is allowed for this model"),
        (
            {"model": "kimi-k3", "thinking": {"type": "enabled"}, "reasoning_effort": "low"},
            "cannot specify both thinking and reasoning_effort",
        ),
        (
            {"model": "kimi-k2.7-code", "thinking": {"type": "disabled"}},
            "invalid thinking: only type=enabled is allowed for this model",
        ),
        (
            {"model": "moonshot-v1-8k", "max_completion_tokens": 8190},
            "Your request exceeded model token limit: 8192",
        ),
        ({"messages": [{"role": "user", "content": ""}]}, "must not be empty"),
    ],
)
def test_validation_answers_400_like_the_api(
    http: httpx.Client, body: dict[str, Any], message: str
) -> None:
    resp = chat(http, **body)
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert message in resp.json()["error"]["message"]


def test_fixed_values_and_legacy_sampling_are_accepted(http: httpx.Client) -> None:
    assert chat(http, temperature=1.0, top_p=0.95, n=1).status_code == 200
    assert chat(http, model="moonshot-v1-8k", temperature=0.3).status_code == 200


def test_unknown_model_is_404(http: httpx.Client) -> None:
    resp = chat(http, model="kimi-k2-0711-preview")
    assert resp.status_code == 404
    assert resp.json()["error"] == {
        "type": "resource_not_found_error",
        "message": "Not found the model kimi-k2-0711-preview or Permission denied",
    }


def test_request_ids_come_back_in_headers(http: httpx.Client, fake: FakeKimi) -> None:
    resp = chat(http)
    assert resp.headers["Msh-Request-Id"] == fake.requests[-1].request_id
    assert resp.headers["X-Msh-Trace-Id"]


# -- responses ---------------------------------------------------------------------------


def test_non_streamed_answer_with_reasoning_and_usage(http: httpx.Client, fake: FakeKimi) -> None:
    fake.script("Answer text.", reasoning="why")
    body = chat(http).json()
    message = body["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "Answer text.", "reasoning_content": "why"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == count_tokens("Answer text.") + 1
    assert body["usage"]["completion_tokens_details"] == {"reasoning_tokens": 1}


@pytest.mark.parametrize(
    ("placement", "include_usage", "choice_usage", "top_chunk"),
    [
        ("choice", True, True, False),
        ("choice", False, True, False),
        ("top", True, False, True),
        ("top", False, False, False),
        ("both", True, True, True),
    ],
)
def test_sse_usage_placement(
    http: httpx.Client,
    fake: FakeKimi,
    placement: str,
    include_usage: bool,
    choice_usage: bool,
    top_chunk: bool,
) -> None:
    fake.usage_placement = placement
    resp = chat(http, stream=True, stream_options={"include_usage": include_usage})
    assert resp.headers["content-type"] == "text/event-stream"
    chunks = sse_chunks(resp.text)
    assert chunks[-1] == "[DONE]"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    finish = next(c for c in chunks[:-1] if c["choices"] and c["choices"][0]["finish_reason"])
    assert ("usage" in finish["choices"][0]) is choice_usage
    empty = [c for c in chunks[:-1] if c["choices"] == []]
    assert bool(empty) is top_chunk
    if top_chunk:
        assert empty[0]["usage"]["prompt_tokens"] == count_prompt_tokens(USER)


def test_truncation_and_partial_continuation(http: httpx.Client, fake: FakeKimi) -> None:
    fake.script("0123456789" * 10, match="digits")
    ask = [{"role": "user", "content": "digits"}]
    first = chat(http, model="moonshot-v1-8k", messages=ask, max_completion_tokens=5).json()
    assert first["choices"][0]["finish_reason"] == "length"
    got = first["choices"][0]["message"]["content"]
    assert got == ("0123456789" * 10)[:20]
    more = [*ask, {"role": "assistant", "content": got, "partial": True}]
    second = chat(http, model="moonshot-v1-8k", messages=more, max_completion_tokens=100).json()
    assert got + second["choices"][0]["message"]["content"] == "0123456789" * 10
    assert second["choices"][0]["finish_reason"] == "stop"


def test_scripted_replies_match_substrings_then_queue_then_default(
    http: httpx.Client, fake: FakeKimi
) -> None:
    fake.script("about foo", match="foo")
    fake.script("first queued")
    fake.script("second queued")

    def ask(text: str) -> str:
        resp = chat(http, model="moonshot-v1-8k", messages=[{"role": "user", "content": text}])
        return str(resp.json()["choices"][0]["message"]["content"])

    assert ask("what is foo") == "about foo"
    assert ask("anything") == "first queued"
    assert ask("what is foo again") == "about foo"
    assert ask("more") == "second queued"
    assert ask("more") == "Fake Kimi answer to: more"


# -- prefix cache ---------------------------------------------------------------------------


def test_prefix_cache_counts_the_common_prefix_with_long_earlier_prompts(
    http: httpx.Client, fake: FakeKimi
) -> None:
    short = [{"role": "system", "content": "s" * 400}, {"role": "user", "content": "a"}]
    chat(http, messages=short)
    chat(http, messages=[*short[:1], {"role": "user", "content": "b"}])
    assert fake.chat_requests[-1].cached_tokens == 0  # the earlier prompt had <= 256 tokens
    system = {"role": "system", "content": "p" * 2000}
    chat(http, messages=[system, {"role": "user", "content": "first"}])
    resp = chat(http, messages=[system, {"role": "user", "content": "second"}])
    prefix = len("<|system|>" + "p" * 2000 + "<|user|>")
    assert fake.chat_requests[-1].cached_tokens == prefix // 4
    assert resp.json()["usage"]["cached_tokens"] == prefix // 4
    assert resp.json()["usage"]["prompt_tokens_details"] == {"cached_tokens": prefix // 4}


def test_prefix_cache_is_per_account(http: httpx.Client, fake: FakeKimi) -> None:
    fake.add_key("sk-other", account="org-other")
    system = {"role": "system", "content": "q" * 2000}
    chat(http, messages=[system, {"role": "user", "content": "one"}])
    other = httpx.post(
        f"{fake.base_url}/chat/completions",
        headers={"Authorization": "Bearer sk-other"},
        json={"model": "kimi-k2.6", "messages": [system, {"role": "user", "content": "two"}]},
    )
    assert other.json()["usage"]["cached_tokens"] == 0


# -- rate limits ---------------------------------------------------------------------------


def _rate_error(resp: httpx.Response) -> str:
    assert resp.status_code == 429
    err = resp.json()["error"]
    assert err["type"] == "rate_limit_reached_error"
    return str(err["message"])


def test_rpm_limit_per_account_and_its_window(
    http: httpx.Client, fake: FakeKimi, clock: ManualClock
) -> None:
    fake.set_limits(tier=0)  # 3 RPM
    fake.add_key("sk-second", account="org-test")  # same account: shares the limits
    assert [chat(http).status_code for _ in range(3)] == [200, 200, 200]
    clock.advance(20)
    second_key = httpx.post(
        f"{fake.base_url}/chat/completions",
        headers={"Authorization": "Bearer sk-second"},
        json={"model": "kimi-k2.6", "messages": USER, "max_completion_tokens": 10},
    )
    assert _rate_error(second_key) == (
        "Your account org-test<ak-test> request reached organization max RPM: 3, "
        "please try again after 40 seconds"
    )
    clock.advance(40)
    assert chat(http).status_code == 200


def test_tpm_and_tpd_charge_input_plus_max_completion_tokens(
    http: httpx.Client, fake: FakeKimi, clock: ManualClock
) -> None:
    fake.set_limits(tpm=1_000, tpd=1_800)
    charge = count_prompt_tokens(USER) + 400
    assert chat(http, max_completion_tokens=400).status_code == 200  # generates far less
    assert chat(http, max_completion_tokens=400).status_code == 200
    msg = _rate_error(chat(http, max_completion_tokens=400))
    assert msg == (
        "Your account org-test<ak-test> request reached organization TPM rate limit, "
        f"current:{3 * charge}, limit:1000"
    )
    clock.advance(61)
    assert chat(http, max_completion_tokens=400).status_code == 200
    clock.advance(61)
    assert chat(http, max_completion_tokens=400).status_code == 200
    clock.advance(61)
    msg = _rate_error(chat(http, max_completion_tokens=400))
    assert "organization TPD rate limit, current:" in msg
    assert msg.endswith("limit:1800")


def test_concurrency_limit_counts_open_streams(fake: FakeKimi, http: httpx.Client) -> None:
    fake.set_limits(concurrency=1)
    fake.chunk_delay = 0.05
    fake.script("slow " * 40)
    started = threading.Event()

    def slow_stream() -> None:
        with (
            httpx.Client(timeout=10) as c,
            c.stream(
                "POST",
                f"{fake.base_url}/chat/completions",
                headers={"Authorization": f"Bearer {fake.key}"},
                json={"model": "moonshot-v1-8k", "messages": USER, "stream": True},
            ) as resp,
        ):
            for _ in resp.iter_lines():
                started.set()

    thread = threading.Thread(target=slow_stream)
    thread.start()
    try:
        assert started.wait(10)
        assert fake.in_flight() == 1
        msg = _rate_error(chat(http))
        assert msg == (
            "Your account org-test<ak-test> request reached organization max concurrency: 1, "
            "please try again after 1 seconds"
        )
    finally:
        thread.join(20)
    # The emulator frees the slot after its last write, which the client may read first.
    assert fake.wait_until(lambda: fake.in_flight() == 0, timeout=5)
    assert chat(http).status_code == 200


@pytest.mark.parametrize(
    ("kind", "status", "etype"),
    [
        ("quota", 429, "exceeded_current_quota_error"),
        ("overloaded", 429, "engine_overloaded_error"),
        ("server_error", 500, "server_error"),
        ("unexpected_output", 500, "unexpected_output"),
        ("gateway_timeout", 504, ""),
    ],
)
def test_injected_error_faults(
    http: httpx.Client, fake: FakeKimi, kind: str, status: int, etype: str
) -> None:
    fake.fail_next(kind)
    resp = chat(http)
    assert resp.status_code == status
    assert resp.json()["error"]["type"] == etype
    assert chat(http).status_code == 200  # one-shot


def test_drop_and_error_chunk_faults_mid_stream(http: httpx.Client, fake: FakeKimi) -> None:
    fake.script("abcdefghijklmnop" * 4)
    fake.fail_next("error_chunk", after_chunks=1, message="boom")
    chunks = sse_chunks(chat(http, model="moonshot-v1-8k", stream=True).text)
    assert chunks[-1] == {"error": {"type": "server_error", "message": "boom", "code": None}}
    fake.script("abcdefghijklmnop" * 4)
    fake.fail_next("drop", after_chunks=1)
    with pytest.raises(httpx.RemoteProtocolError):
        chat(http, model="moonshot-v1-8k", stream=True)
    assert fake.chat_requests[-1].dropped


# -- other endpoints and running as a process ------------------------------------------------


def test_models_balance_and_estimate(http: httpx.Client) -> None:
    models = http.get("/models").json()["data"]
    k3 = next(m for m in models if m["id"] == "kimi-k3")
    assert k3["context_length"] == 1_048_576
    assert k3["supports_reasoning"] is True
    balance = http.get("/users/me/balance").json()
    assert balance["code"] == 0
    assert balance["status"] is True
    assert balance["scode"] == "0x0"
    assert set(balance["data"]) == {"available_balance", "voucher_balance", "cash_balance"}
    estimate = http.post(
        "/tokenizers/estimate-token-count", json={"model": "kimi-k2.6", "messages": USER}
    )
    assert estimate.json() == {"data": {"total_tokens": count_prompt_tokens(USER)}}


def test_runs_as_a_subprocess_and_is_scripted_over_http(fake_kimi_process: str) -> None:
    headers = {"Authorization": "Bearer sk-test"}
    with httpx.Client(base_url=fake_kimi_process, headers=headers, timeout=10) as c:
        root = fake_kimi_process.removesuffix("/v1")
        c.post(f"{root}/_fake/script", json={"content": "scripted remotely", "match": "remote"})
        resp = c.post(
            "/chat/completions",
            json={
                "model": "kimi-k2.6",
                "messages": [{"role": "user", "content": "remote?"}],
                "max_completion_tokens": 4096,  # the default 1024 may all go to reasoning
            },
        )
        assert resp.json()["choices"][0]["message"]["content"] == "scripted remotely"
        log = c.get(f"{root}/_fake/log").json()["requests"]
        assert [r["path"] for r in log] == ["/v1/chat/completions"]

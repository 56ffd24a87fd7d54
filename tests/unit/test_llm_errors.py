"""Errors are classified by error.type, with the right retry decision and user message."""

from __future__ import annotations

import pytest

from kimi_lsp.llm import (
    AuthenticationError,
    ContentFiltered,
    ContextOverflow,
    EngineOverloaded,
    InvalidRequest,
    KimiError,
    ModelNotFound,
    PermissionDenied,
    ProtocolError,
    QuotaExceeded,
    RateLimited,
    ServerError,
)
from kimi_lsp.llm.errors import (
    StatedLimit,
    error_from_response,
    parse_retry_after,
    parse_stated_limit,
)


def body(etype: str, message: str = "m") -> dict[str, object]:
    return {"error": {"type": etype, "message": message}}


@pytest.mark.parametrize(
    ("status", "etype", "cls", "retryable"),
    [
        (429, "exceeded_current_quota_error", QuotaExceeded, False),
        (403, "exceeded_current_quota_error", QuotaExceeded, False),  # Jul-2025 accounts
        (429, "rate_limit_reached_error", RateLimited, True),
        (429, "engine_overloaded_error", EngineOverloaded, True),
        (401, "invalid_authentication_error", AuthenticationError, False),
        (401, "incorrect_api_key_error", AuthenticationError, False),
        (403, "permission_denied_error", PermissionDenied, False),
        (403, "access_terminated_error", PermissionDenied, False),
        (404, "resource_not_found_error", ModelNotFound, False),
        (400, "invalid_request_error", InvalidRequest, False),
        (400, "content_filter", ContentFiltered, False),
        (500, "server_error", ServerError, True),
        (500, "unexpected_output", ServerError, True),
        (504, "", ServerError, True),
        (502, "", ServerError, True),
        (418, "", ProtocolError, False),
        (None, "server_error", ServerError, True),  # a mid-stream error chunk
    ],
)
def test_classification_by_type(
    status: int | None, etype: str, cls: type[KimiError], retryable: bool
) -> None:
    err = error_from_response(status, body(etype), request_id="rid-1", model="kimi-x")
    assert type(err) is cls
    assert err.retryable is retryable
    assert err.request_id == "rid-1"
    assert "rid-1" in str(err)


def test_404_without_a_model_is_a_missing_endpoint() -> None:
    err = error_from_response(404, body("resource_not_found_error"))
    assert isinstance(err, ProtocolError)
    assert "KIMI_LSP_BASE_URL" in str(err)


def test_type_wins_over_status() -> None:
    # Quota exhaustion sent as 429 must never look like a retryable rate limit.
    assert isinstance(error_from_response(429, body("exceeded_current_quota_error")), QuotaExceeded)


@pytest.mark.parametrize(
    ("message", "seconds", "limit", "retryable"),
    [
        (
            "Your account o<a> request reached organization max concurrency: 1, "
            "please try again after 1 seconds",
            1.0,
            "concurrency",
            True,
        ),
        (
            "request reached organization max RPM: 3, please try again after 20 seconds",
            20,
            "rpm",
            True,
        ),
        ("request reached organization TPM rate limit, current:9, limit:5", None, "tpm", True),
        ("request reached project TPM rate limit, current:9, limit:5", None, "tpm", True),
        ("request reached organization TPD rate limit, current:9, limit:5", None, "tpd", False),
        ("request reached max request: 3, please try again after 1 seconds", 1, None, True),
    ],
)
def test_rate_limit_hint_and_kind(
    message: str, seconds: float | None, limit: str | None, retryable: bool
) -> None:
    err = error_from_response(429, body("rate_limit_reached_error", message))
    assert isinstance(err, RateLimited)
    assert err.retry_after == seconds
    assert err.limit == limit
    assert err.retryable is retryable


def test_context_overflow_from_the_server_message() -> None:
    err = error_from_response(
        400, body("invalid_request_error", "Your request exceeded model token limit: 8192")
    )
    assert isinstance(err, ContextOverflow)
    assert "shorter answer" in str(err)


def test_messages_say_what_to_do() -> None:
    assert "Recharge" in str(error_from_response(429, body("exceeded_current_quota_error")))
    assert "MOONSHOT_API_KEY" in str(error_from_response(401, body("incorrect_api_key_error")))
    assert "KIMI_LSP_MODEL" in str(
        error_from_response(404, body("resource_not_found_error"), model="kimi-old")
    )


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("please try again after 3 seconds") == 3
    assert parse_retry_after("try again after 1.5 s") == 1.5
    assert parse_retry_after("no hint here") is None


def test_delivered_flags() -> None:
    err = KimiError("x")
    assert not err.delivered
    err.delivered_reasoning = "thinking"
    assert err.delivered


WHO = "Your account org-1<ak-1>"  # as the emulator (tests/fake_kimi) words it


@pytest.mark.parametrize(
    ("message", "stated"),
    [
        (  # the four forms of kimi-api.md §5, as the emulator sends them, and the project form
            f"{WHO} request reached organization max concurrency: 2, "
            "please try again after 1 seconds",
            StatedLimit("concurrency", 2),
        ),
        (
            f"{WHO} request reached organization max RPM: 3, please try again after 20 seconds",
            StatedLimit("rpm", 3),
        ),
        (
            f"{WHO} request reached organization TPM rate limit, current:612000, limit:500000",
            StatedLimit("tpm", 500_000, "organization", 612_000),
        ),
        (
            f"{WHO} request reached organization TPD rate limit, current:1500100, limit:1500000",
            StatedLimit("tpd", 1_500_000, "organization", 1_500_100),
        ),
        (
            "request reached project TPM rate limit, current: 70000, limit: 64000",
            StatedLimit("tpm", 64_000, "project", 70_000),
        ),
        # what states no number: the factor-shrinking handles it
        ("request reached max request: 3, please try again after 1 seconds", None),
        ("rate limit reached, please try again after 2 seconds", None),
        ("The engine is currently overloaded, please try again later", None),
    ],
)
def test_the_limit_each_429_form_states(message: str, stated: StatedLimit | None) -> None:
    assert parse_stated_limit(message) == stated
    err = error_from_response(429, body("rate_limit_reached_error", message))
    assert isinstance(err, RateLimited)
    assert err.stated == stated
    if stated is not None:
        assert err.limit == stated.limit


@pytest.mark.parametrize(
    ("limits", "charges", "stated"),
    [
        ({"concurrency": 2}, [10, 10, 10], StatedLimit("concurrency", 2)),
        ({"rpm": 3}, [10, 10, 10, 10], StatedLimit("rpm", 3)),
        ({"tpm": 500}, [300, 300], StatedLimit("tpm", 500, current=600)),
        ({"tpd": 500, "tpm": 10_000}, [300, 300], StatedLimit("tpd", 500, current=600)),
    ],
)
def test_the_emulators_429s_state_the_limit_it_holds(
    limits: dict[str, int], charges: list[int], stated: StatedLimit
) -> None:
    """The exact texts tests/fake_kimi answers with when its account's limit trips."""
    from tests.fake_kimi.server import DEFAULT_ACCOUNT, FakeKimi, _HTTPError

    fake = FakeKimi()
    fake.set_limits(**limits)
    for charge in charges[:-1]:
        fake._admit(DEFAULT_ACCOUNT, charge)  # fits
    with pytest.raises(_HTTPError) as refused:
        fake._admit(DEFAULT_ACCOUNT, charges[-1])
    assert refused.value.status == 429
    message = refused.value.message
    assert parse_stated_limit(message) == stated, message

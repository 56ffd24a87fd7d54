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
from kimi_lsp.llm.errors import error_from_response, parse_retry_after


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

"""Errors from the Kimi API client, classified by ``error.type`` (not by HTTP status).

::

    KimiLspError (kimi_lsp.errors: carries the user-facing ``message``)
    KimiError                      retryable? request_id, status, error_type, delivered_text
    ├── AuthenticationError        no   401 invalid_authentication_error / incorrect_api_key_error
    ├── PermissionDenied           no   403 permission_denied_error / access_terminated_error
    ├── QuotaExceeded              no   exceeded_current_quota_error (429 or 403): recharge
    ├── RateLimited                yes  rate_limit_reached_error; retry_after (s), limit
    │                                   ("concurrency" | "rpm" | "tpm" | "tpd" | None) and the
    │                                   value the message states (``stated``); TPD: no
    ├── EngineOverloaded           yes  engine_overloaded_error
    ├── ServerError                yes  5xx, server_error, unexpected_output, 504 timeouts
    ├── ConnectionFailed           yes  connect errors, resets, a connection dropped mid-stream
    ├── StreamTimeout              yes  no chunk arrived within the read timeout
    ├── InvalidRequest             no   400 invalid_request_error (and local refusals)
    │   ├── ContextOverflow        no   input + max_completion_tokens > the model's context
    │   └── ContentFiltered        no   400 content_filter
    ├── ModelNotFound              no   404: unknown or retired model; names the models that exist
    └── ProtocolError              no   the server answered something that is not the API
                                        (incl. a 404 for an endpoint a relay does not forward)

Every error says what happened and what to do. ``delivered_text`` holds the content that had
already reached the caller when the error struck, so a caller knows whether anything was shown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kimi_lsp.errors import KimiLspError

_AFTER_RE = re.compile(r"after\s+(\d+(?:\.\d+)?)\s*s(?:ec(?:ond)?s?)?\b", re.IGNORECASE)
_LIMIT_RE = re.compile(r"\b(concurrency|RPM|TPM|TPD)\b")
# The limit a 429 states (kimi-api.md §5): "organization max concurrency: 2", "organization
# max RPM: 3", "organization TPM rate limit, current:x, limit:y" (also "project TPM"), and
# "organization TPD rate limit, current:x, limit:y". The older "max request: 3" does not say
# which limit it is, so it states nothing.
_STATED_RE = re.compile(
    r"(?:\b(?P<scope>organization|project)\s+)?(?:"
    r"max\s+(?P<kind>concurrency|RPM)\s*:\s*(?P<value>\d+)"
    r"|(?P<tkind>TPM|TPD)\s+rate\s+limit\s*,\s*current\s*:\s*(?P<current>\d+)\s*,"
    r"\s*limit\s*:\s*(?P<tvalue>\d+))",
    re.IGNORECASE,
)


class KimiError(KimiLspError):
    """Base of every client error."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        server_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.request_id = request_id
        self.server_message = server_message
        self.delivered_text = ""  # content already streamed to the caller
        self.delivered_reasoning = ""

    @property
    def delivered(self) -> bool:
        """Whether any content or reasoning reached the caller before the error."""
        return bool(self.delivered_text or self.delivered_reasoning)

    def __str__(self) -> str:
        if self.request_id:
            return f"{self.message} (request id {self.request_id})"
        return self.message


class AuthenticationError(KimiError):
    pass


class PermissionDenied(KimiError):
    pass


class QuotaExceeded(KimiError):
    """The account's balance or quota is exhausted: retrying cannot help."""


@dataclass(frozen=True)
class StatedLimit:
    """A limit as a 429's message states it: which one, its value, and whose it is."""

    limit: str  # "concurrency" | "rpm" | "tpm" | "tpd"
    value: int
    scope: str = "organization"  # or "project" (a project's own TPM limit)
    current: int | None = None  # what the request would have brought it to (TPM, TPD)


class RateLimited(KimiError):
    """A per-account limit was hit. ``retry_after`` is the server's hint in seconds, if any;
    ``limit`` names the limit and ``stated`` holds its value when the message says it."""

    retryable = True

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        hint = self.server_message or ""
        self.retry_after: float | None = parse_retry_after(hint)
        m = _LIMIT_RE.search(hint)
        self.limit: str | None = m.group(1).lower() if m else None
        self.stated: StatedLimit | None = parse_stated_limit(hint)
        if self.stated is not None:
            self.limit = self.stated.limit
        # A daily limit will not clear within one request's retries.
        self.retryable = self.limit != "tpd"


class EngineOverloaded(KimiError):
    retryable = True


class ServerError(KimiError):
    retryable = True


class ConnectionFailed(KimiError):
    retryable = True


class StreamTimeout(KimiError):
    retryable = True


class InvalidRequest(KimiError):
    pass


class ContextOverflow(InvalidRequest):
    def __init__(
        self,
        message: str,
        *,
        input_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        context_length: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.input_tokens = input_tokens
        self.max_completion_tokens = max_completion_tokens
        self.context_length = context_length


class ContentFiltered(InvalidRequest):
    pass


class ModelNotFound(KimiError):
    def __init__(self, message: str, *, model: str, available: Sequence[str] = (), **kw: Any):
        super().__init__(message, **kw)
        self.model = model
        self.available = list(available)


class ProtocolError(KimiError):
    pass


def parse_retry_after(message: str) -> float | None:
    """Seconds named by a message like "... please try again after 3 seconds"."""
    m = _AFTER_RE.search(message)
    return float(m.group(1)) if m else None


def parse_stated_limit(message: str) -> StatedLimit | None:
    """The limit a rate-limit message states, or None when it states none (kimi-api.md §5)."""
    m = _STATED_RE.search(message)
    if m is None:
        return None
    scope = (m.group("scope") or "organization").lower()
    if m.group("kind"):
        return StatedLimit(m.group("kind").lower(), int(m.group("value")), scope)
    return StatedLimit(
        m.group("tkind").lower(), int(m.group("tvalue")), scope, int(m.group("current"))
    )


def error_from_response(
    status: int | None,
    body: Any,
    *,
    request_id: str | None = None,
    model: str | None = None,
) -> KimiError:
    """Classify an error answer (HTTP body or a mid-stream ``{"error": ...}`` chunk)."""
    err = body.get("error") if isinstance(body, dict) else None
    etype = str(err.get("type") or "") if isinstance(err, dict) else ""
    text = str(err.get("message") or "") if isinstance(err, dict) else ""
    kw: dict[str, Any] = {
        "status": status,
        "error_type": etype or None,
        "request_id": request_id,
        "server_message": text or None,
    }
    said = f": {text}" if text else ""
    if etype == "exceeded_current_quota_error":
        return QuotaExceeded(
            f"The Kimi account is out of balance or quota{said}. Recharge it at platform.kimi.ai "
            "(platform.kimi.com for api.moonshot.cn); retrying will not help.",
            **kw,
        )
    if etype == "rate_limit_reached_error":
        return RateLimited(f"The Kimi account hit a rate limit{said}.", **kw)
    if etype == "engine_overloaded_error":
        return EngineOverloaded(f"Kimi is overloaded right now{said}. Try again shortly.", **kw)
    if etype in ("invalid_authentication_error", "incorrect_api_key_error") or status == 401:
        return AuthenticationError(
            f"Kimi refused the API key{said}. Check MOONSHOT_API_KEY; keys from platform.kimi.ai "
            "work only with api.moonshot.ai, keys from platform.kimi.com only with "
            "api.moonshot.cn.",
            **kw,
        )
    if etype in ("permission_denied_error", "access_terminated_error") or status == 403:
        return PermissionDenied(f"Kimi denied access{said}. Check the account's status.", **kw)
    if (etype == "resource_not_found_error" or status == 404) and model is None:
        return ProtocolError(
            f"Kimi has no such endpoint or resource (HTTP 404){said}. A relay in front of the "
            "API may not forward it; check KIMI_LSP_BASE_URL.",
            **kw,
        )
    if etype == "resource_not_found_error" or status == 404:
        name = model or "?"
        return ModelNotFound(
            f"Model {name!r} does not exist or is not available to this account "
            f"(it may be retired){said}. Set KIMI_LSP_MODEL to an available model.",
            model=name,
            **kw,
        )
    if etype == "content_filter":
        return ContentFiltered(
            f"Kimi's content filter rejected the request or the answer{said}.", **kw
        )
    if etype == "invalid_request_error" or status == 400:
        if "token limit" in text or "too long" in text:
            return ContextOverflow(
                f"The prompt plus the output budget exceed the model's context{said}. "
                "Select less text or ask for a shorter answer.",
                **kw,
            )
        return InvalidRequest(f"Kimi rejected the request as invalid{said}.", **kw)
    if etype in ("server_error", "unexpected_output") or (status is not None and status >= 500):
        what = f"HTTP {status}" if status else "an error"
        if status == 504:
            return ServerError(
                f"Kimi timed out (HTTP 504){said}; long answers may need a smaller budget.", **kw
            )
        return ServerError(f"Kimi answered with {what}{said}. Try again shortly.", **kw)
    return ProtocolError(
        f"Kimi answered with an unexpected error (HTTP {status}, type {etype or 'none'}){said}.",
        **kw,
    )


__all__ = [
    "AuthenticationError",
    "ConnectionFailed",
    "ContentFiltered",
    "ContextOverflow",
    "EngineOverloaded",
    "InvalidRequest",
    "KimiError",
    "ModelNotFound",
    "PermissionDenied",
    "ProtocolError",
    "QuotaExceeded",
    "RateLimited",
    "ServerError",
    "StatedLimit",
    "StreamTimeout",
    "error_from_response",
    "parse_retry_after",
    "parse_stated_limit",
]

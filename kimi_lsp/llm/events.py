"""What a streamed answer yields, and what a collected answer returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Usage:
    """Token usage of one request. ``prompt_tokens`` includes ``cached_tokens`` and
    ``completion_tokens`` includes ``reasoning_tokens`` (kimi-api.md §3.3)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def uncached_prompt_tokens(self) -> int:
        return max(0, self.prompt_tokens - self.cached_tokens)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    @classmethod
    def from_api(cls, raw: Any) -> Usage | None:
        """Parse a usage object: cached from ``cached_tokens``, else
        ``prompt_tokens_details.cached_tokens``; reasoning from ``completion_tokens_details``."""
        if not isinstance(raw, dict):
            return None

        def num(value: Any) -> int:
            return int(value) if isinstance(value, int | float) else 0

        cached = raw.get("cached_tokens")
        if cached is None:
            details = raw.get("prompt_tokens_details")
            cached = details.get("cached_tokens") if isinstance(details, dict) else None
        out_details = raw.get("completion_tokens_details")
        reasoning = out_details.get("reasoning_tokens") if isinstance(out_details, dict) else None
        return cls(
            num(raw.get("prompt_tokens")),
            num(raw.get("completion_tokens")),
            num(cached),
            num(reasoning),
        )


@dataclass(frozen=True)
class ContentDelta:
    """A piece of the answer's text, as it arrived."""

    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of the model's reasoning (``reasoning_content``); may be empty at the boundary."""

    text: str


@dataclass(frozen=True)
class UsageReport:
    """Usage of one HTTP request (an answer continued after ``length`` makes several)."""

    usage: Usage
    request_id: str | None = None
    round: int = 0


@dataclass(frozen=True)
class Finished:
    """The answer ended. ``finish_reason`` is ``stop``, ``length`` (out of rounds too) or
    ``tool_calls``; ``rounds`` counts the requests that made it."""

    finish_reason: str | None
    request_id: str | None = None
    rounds: int = 1


@dataclass(frozen=True)
class ToolCall:
    """One whole tool call the model asked for. ``id`` is kept verbatim (K2.x sends
    ``functions.<name>:<idx>``; echo it back unchanged, kimi-api.md §3.2); ``arguments`` is the
    JSON text as the model wrote it (it may not parse: the caller answers that in the tool
    message)."""

    id: str
    name: str
    arguments: str

    def message(self) -> dict[str, Any]:
        """The entry of an assistant message's ``tool_calls`` list."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True)
class ToolCalls:
    """The tool calls of one request, assembled from their streamed fragments; sent once,
    just before that request's ``UsageReport`` (its ``finish_reason`` is ``tool_calls``)."""

    calls: tuple[ToolCall, ...]


StreamEvent = ContentDelta | ReasoningDelta | UsageReport | Finished | ToolCalls


@dataclass
class ChatResult:
    """A whole answer, as :meth:`KimiClient.chat` collects it."""

    text: str
    reasoning: str
    usage: Usage
    finish_reason: str | None
    request_ids: list[str] = field(default_factory=list)
    rounds: int = 1


@dataclass(frozen=True)
class Balance:
    """``GET /users/me/balance``: amounts in ``currency`` (USD on .ai, CNY on .cn)."""

    available: float
    voucher: float
    cash: float
    currency: str


@dataclass(frozen=True)
class RequestStart:
    """Passed to the ``on_request`` hook before each HTTP request of a chat is sent: the
    place to take quota admission for exactly what this request will be charged."""

    model: str
    input_tokens: int  # the local estimate (or the exact count when one was fetched)
    max_completion_tokens: int
    round: int  # 0 for the first request, n for the n-th continuation after ``length``
    attempt: int  # 0 for the first try, n for the n-th retry

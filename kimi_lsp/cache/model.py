"""What the cache stores and reports: answers, token usage, prices and statistics."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TokenUsage:
    """Token counts as Kimi reports them: ``prompt_tokens`` includes ``cached_tokens``,
    ``completion_tokens`` includes ``reasoning_tokens`` (same names as ``llm.Usage``)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def uncached_prompt_tokens(self) -> int:
        return max(0, self.prompt_tokens - self.cached_tokens)

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TokenUsage:
        return cls(
            int(raw.get("prompt_tokens", 0)),
            int(raw.get("completion_tokens", 0)),
            int(raw.get("cached_tokens", 0)),
            int(raw.get("reasoning_tokens", 0)),
        )


@dataclass(frozen=True)
class CachedResponse:
    """One complete answer: the final text, the reasoning text, what it cost, which model
    wrote it and when (seconds since the epoch, from the store's clock)."""

    text: str
    reasoning: str
    usage: TokenUsage
    model: str
    created: float = 0.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "text": self.text,
                "reasoning": self.reasoning,
                "usage": self.usage.as_dict(),
                "model": self.model,
                "created": self.created,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, blob: str | bytes) -> CachedResponse:
        """Raises ``ValueError`` (or ``KeyError``/``TypeError``) on a damaged value."""
        raw = json.loads(blob)
        return cls(
            text=str(raw["text"]),
            reasoning=str(raw.get("reasoning", "")),
            usage=TokenUsage.from_dict(raw.get("usage") or {}),
            model=str(raw["model"]),
            created=float(raw.get("created", 0.0)),
        )


@dataclass(frozen=True)
class Prices:
    """A model's prices per million tokens (input on a prefix-cache miss, input on a hit,
    output), in whatever currency the caller uses."""

    input_per_mtok: float
    cached_input_per_mtok: float
    output_per_mtok: float

    def cost(self, usage: TokenUsage) -> float:
        return (
            usage.uncached_prompt_tokens * self.input_per_mtok
            + usage.cached_tokens * self.cached_input_per_mtok
            + usage.completion_tokens * self.output_per_mtok
        ) / 1_000_000


@dataclass(frozen=True)
class CacheStats:
    """Hits, misses and what the hits saved, per model (the usage the answers cost when
    they were first made)."""

    hits: int = 0
    misses: int = 0
    saved: Mapping[str, TokenUsage] = field(default_factory=dict)
    entries: int = 0
    size_bytes: int = 0
    skipped_writes: int = 0

    @property
    def tokens_saved(self) -> int:
        return sum(u.total_tokens for u in self.saved.values())

    def money_saved(self, prices: Prices | Mapping[str, Prices]) -> float:
        """What the hits would have cost; models without a price count as free."""
        total = 0.0
        for model, usage in self.saved.items():
            price = prices if isinstance(prices, Prices) else prices.get(model)
            if price is not None:
                total += price.cost(usage)
        return total

    def as_dict(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "tokensSaved": self.tokens_saved,
            "entries": self.entries,
            "sizeBytes": self.size_bytes,
            "skippedWrites": self.skipped_writes,
            "savedByModel": {m: u.as_dict() for m, u in sorted(self.saved.items())},
        }

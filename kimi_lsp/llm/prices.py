"""What an answer costs: list prices in USD per million tokens (kimi-api.md §7, Aug 2026).

``prompt_tokens`` includes the cached ones, which are billed at the cache-hit price.
Unknown models cost nothing here (shown as unknown, not guessed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kimi_lsp.llm.events import Usage


@dataclass(frozen=True)
class Price:
    cached_input: float  # per million input tokens served from Kimi's prefix cache
    input: float  # per million other input tokens
    output: float  # per million output tokens (reasoning included)


PRICES: dict[str, Price] = {
    "kimi-k3": Price(0.30, 3.00, 15.00),
    "kimi-k2.7-code": Price(0.19, 0.95, 4.00),
    "kimi-k2.7-code-highspeed": Price(0.38, 1.90, 8.00),
    "kimi-k2.6": Price(0.16, 0.95, 4.00),
    "kimi-k2.5": Price(0.10, 0.60, 3.00),
}


def cost_usd(model: str, usage: Usage) -> float | None:
    """The list price of ``usage`` on ``model``, or None for a model without a known price."""
    price = PRICES.get(model)
    if price is None:
        return None
    return (
        usage.cached_tokens * price.cached_input
        + usage.uncached_prompt_tokens * price.input
        + usage.completion_tokens * price.output
    ) / 1_000_000


def total_cost_usd(by_model: Mapping[str, Mapping[str, int]]) -> float:
    """The cost of per-model totals ``{model: {input, cached, output}}`` (unknown models: 0)."""
    total = 0.0
    for model, used in by_model.items():
        usage = Usage(used.get("input", 0), used.get("output", 0), used.get("cached", 0))
        total += cost_usd(model, usage) or 0.0
    return total

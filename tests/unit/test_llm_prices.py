"""List prices: cached input at the hit price, the rest at the miss price, output apart."""

import pytest

from kimi_lsp.llm import Usage, cost_usd


def test_cost_splits_cached_and_uncached_input() -> None:
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=500_000, cached_tokens=600_000)
    # kimi-k2.6: 0.16 hit, 0.95 miss, 4.00 output per million.
    assert cost_usd("kimi-k2.6", usage) == pytest.approx(0.6 * 0.16 + 0.4 * 0.95 + 0.5 * 4.00)


def test_unknown_models_have_no_price() -> None:
    assert cost_usd("kimi-k9", Usage(prompt_tokens=10)) is None

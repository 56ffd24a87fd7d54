"""The token estimator: defaults, calibration against the emulator's counts, persistence."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

from kimi_lsp.context import TokenEstimator
from kimi_lsp.context.tokens import CALIBRATION_FILE
from tests.fake_kimi import count_prompt_tokens

ASCII = "def area(w, h):\n    return w * h  # width times height\n"
CJK = "计算矩形的面积并返回结果。"


def sample(rng: random.Random) -> list[dict[str, Any]]:
    parts = [rng.choice([ASCII, CJK, "x = 1\n", "注释"]) for _ in range(rng.randint(5, 80))]
    return [
        {"role": "system", "content": "You are Kimi." * rng.randint(1, 5)},
        {"role": "user", "content": "".join(parts)},
    ]


def error(est: TokenEstimator, messages: list[dict[str, Any]]) -> float:
    truth = count_prompt_tokens(messages)
    return abs(est.estimate_messages(messages) - truth) / truth


def test_uncalibrated_estimate_counts_four_ascii_characters_a_token() -> None:
    est = TokenEstimator()
    assert est("a" * 400) == 100
    assert est(CJK) == len(CJK)  # one token per other character until calibrated


def test_calibrated_estimate_is_within_ten_percent_of_the_emulator() -> None:
    rng = random.Random(7)
    est = TokenEstimator()
    held_out = [sample(rng) for _ in range(30)]
    # Before: CJK-heavy prompts are overestimated (the emulator counts 4 characters a token).
    assert max(error(est, m) for m in held_out) > 0.10
    for _ in range(40):
        m = sample(rng)
        est.observe(m, count_prompt_tokens(m), "python")
    assert max(error(est, m) for m in held_out) <= 0.10
    assert max(abs(est.estimate_messages(m, "python") - count_prompt_tokens(m)) /
               count_prompt_tokens(m) for m in held_out) <= 0.10  # fmt: skip


def test_calibration_persists_and_a_corrupt_file_falls_back_to_the_defaults(
    tmp_path: Path,
) -> None:
    rng = random.Random(1)
    est = TokenEstimator.in_state_dir(tmp_path)
    for _ in range(10):
        m = sample(rng)
        est.observe(m, count_prompt_tokens(m), "go")
    est.save()
    again = TokenEstimator.in_state_dir(tmp_path)
    assert again.weights("go") == est.weights("go")
    assert again(CJK) < len(CJK)  # learned that CJK is cheaper
    (tmp_path / CALIBRATION_FILE).write_text("{not json")
    fresh = TokenEstimator.in_state_dir(tmp_path)
    assert fresh(CJK) == len(CJK)


def test_a_language_seen_rarely_uses_the_weights_of_all_observations() -> None:
    rng = random.Random(3)
    est = TokenEstimator()
    for _ in range(10):
        m = sample(rng)
        est.observe(m, count_prompt_tokens(m), "python")
    assert est.weights("rust") == est.weights(None)


def test_the_exact_counter_is_asked_only_within_ten_percent_of_the_limit() -> None:
    asked: list[int] = []

    async def exact(messages: list[dict[str, Any]]) -> int:
        asked.append(1)
        return count_prompt_tokens(messages)

    est = TokenEstimator(exact=exact)
    messages = [{"role": "user", "content": "a" * 4_000}]  # ~1,000 tokens
    tokens, was_exact = asyncio.run(est.count(messages, limit=100_000))
    assert (was_exact, asked) == (False, [])
    tokens, was_exact = asyncio.run(est.count(messages, limit=1_050))
    assert was_exact
    assert tokens == count_prompt_tokens(messages)
    assert asked == [1]

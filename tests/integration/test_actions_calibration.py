"""Answers calibrate the token estimates: over a real socket to the emulator, persisted for
the next start, never changing the prompts of the session that learned them."""

from __future__ import annotations

from pathlib import Path

from kimi_lsp.actions.pipeline import QuietSink
from kimi_lsp.actions.services import Services
from kimi_lsp.config import Settings
from tests.fake_kimi import FakeKimi, count_prompt_tokens

CJK = "计算购物车的总价并加上增值税。" * 40  # the uncalibrated estimate is 4x too high here


async def test_live_answers_calibrate_the_next_start_not_this_session(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    settings = Settings(api_key=fake_kimi.key, base_url=fake_kimi.base_url, state_dir=tmp_path)
    services = Services(settings, [tmp_path])
    probe = [{"role": "user", "content": CJK + " (probe)"}]
    before = services.estimator().estimate_messages(probe, "python")
    try:
        for i in range(4):
            messages = [{"role": "user", "content": f"{CJK} ({i})"}]
            await services.answer(
                messages,
                max_completion_tokens=50,
                sink=QuietSink(),
                language="python",
                action="explain",  # the thinking policy adds room for K2.6's reasoning
            )
    finally:
        await services.aclose()
    exact = count_prompt_tokens(probe)
    assert abs(before - exact) / exact > 0.5  # the defaults are far off for CJK
    # This session builds the same bytes as before: its estimator did not move.
    assert services.estimator().estimate_messages(probe, "python") == before
    # The next start reads what the answers taught: within 10% of the emulator's count.
    later = Services(settings, [tmp_path]).estimator().estimate_messages(probe, "python")
    assert abs(later - exact) / exact <= 0.10

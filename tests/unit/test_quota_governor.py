"""The governor with an injected clock: it waits (and says why) instead of failing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest

from kimi_lsp.quota import Limits, NeverFits, QuotaGovernor


@dataclass
class Req:
    model: str = "kimi-k2.6"
    input_tokens: int = 100
    max_completion_tokens: int = 100


@dataclass
class Used:
    prompt_tokens: int = 100
    cached_tokens: int = 40
    completion_tokens: int = 20


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def governor(tmp_path: Path, limits: Limits) -> tuple[QuotaGovernor, Clock]:
    clock = Clock()
    return QuotaGovernor.in_state_dir(tmp_path, limits, clock=clock, sleep=clock.sleep), clock


async def test_a_request_over_rpm_waits_for_the_window_and_reports_it(tmp_path: Path) -> None:
    gov, clock = governor(tmp_path, Limits(None, 2, None, None))
    for _ in range(2):
        await (await gov.admit(Req())).settle(Used())
    waits: list[tuple[str, float]] = []
    start = clock.now
    ticket = await gov.admit(Req(), on_wait=lambda limit, s: waits.append((limit, s)))
    await ticket.settle(None)
    assert waits[0] == ("requests-per-minute", 60.0)
    assert clock.now - start >= 60.0
    snap = gov.snapshot()
    assert snap["requestsLastMinute"] == 1
    assert snap["byModel"]["kimi-k2.6"]["cached"] == 80  # two settled with actual usage


async def test_what_can_never_fit_fails_at_once(tmp_path: Path) -> None:
    gov, _ = governor(tmp_path, Limits(None, None, 150, None))
    with pytest.raises(NeverFits, match="tokens-per-minute"):
        await gov.admit(Req())


async def test_a_rate_limit_answer_makes_everyone_cool_down(tmp_path: Path) -> None:
    gov, clock = governor(tmp_path, Limits(None, None, None, None))
    await gov.rate_limited(7.0, "rpm")
    other, _ = (
        QuotaGovernor.in_state_dir(tmp_path, gov.configured, clock=clock, sleep=clock.sleep),
        None,
    )
    waits: list[str] = []
    start = clock.now
    await (await other.admit(Req(), on_wait=lambda limit, s: waits.append(limit))).settle(None)
    assert waits[0] == "cool-down"
    assert clock.now - start >= 7.0


async def test_repeated_429s_shrink_the_assumed_limits(tmp_path: Path) -> None:
    gov, _ = governor(tmp_path, Limits(10, 100, 10_000, None))
    for _ in range(3):
        await gov.rate_limited(0.0, "tpm")
    snap = gov.snapshot()
    assert snap["shrunk"] is True
    assert snap["limits"]["rpm"] == 80


async def test_settling_frees_the_concurrency_lease(tmp_path: Path) -> None:
    gov, _ = governor(tmp_path, Limits(1, None, None, None))
    first = await gov.admit(Req())
    assert gov.snapshot()["openRequests"] == 1
    await first.settle(Used())
    assert gov.snapshot()["openRequests"] == 0
    await (await gov.admit(Req())).settle(None)


async def test_a_ticket_as_context_manager_frees_its_lease_when_the_body_fails(
    tmp_path: Path,
) -> None:
    gov, _ = governor(tmp_path, Limits(1, None, None, None))
    ticket = await gov.admit(Req())

    async def broken_stream() -> None:
        async with ticket:
            assert gov.snapshot()["openRequests"] == 1
            raise RuntimeError("the stream broke")

    with pytest.raises(RuntimeError):
        await broken_stream()
    assert ticket.settled
    snap = gov.snapshot()
    assert snap["openRequests"] == 0
    assert snap["tokensLastMinute"] == 200  # Kimi counted the admission charge
    async with await gov.admit(Req()) as ticket:
        await ticket.settle(Used())  # settled in the body: the exit does nothing more
    assert gov.snapshot()["byModel"]["kimi-k2.6"]["output"] == 20


def test_the_reserve_setting_is_a_share_up_to_half() -> None:
    from kimi_lsp.config import load_settings

    assert load_settings(environ={"KIMI_LSP_QUOTA_RESERVE": "0.25"}).settings.quota_reserve == 0.25
    loaded = load_settings(environ={}, workspace={"quotaReserve": 0.7})
    assert loaded.settings.quota_reserve == 0.1
    assert any("quota_reserve" in p for p in loaded.problems)


async def test_the_governor_keeps_the_reserve_it_is_given(tmp_path: Path) -> None:
    clock = Clock()
    limits = Limits(concurrency=4, rpm=None, tpm=None, tpd=None)
    gov = QuotaGovernor.in_state_dir(tmp_path, limits, reserve=0.5, clock=clock, sleep=clock.sleep)
    held = [await gov.admit(Req(), batch=True) for _ in range(2)]  # 4 - ceil(4 x 0.5)
    waits: list[str] = []
    admitting = asyncio.ensure_future(
        gov.admit(Req(), batch=True, on_wait=lambda why, _: waits.append(why))
    )
    for _ in range(1_000):
        if waits:
            break
        await asyncio.sleep(0.001)
    assert waits[0] == "concurrency"
    assert gov.snapshot()["reserve"] == 0.5
    await held[0].settle(None)
    await (await admitting).settle(None)

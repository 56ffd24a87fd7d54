"""A limit one teammate's process hears from Kimi, every teammate plans with (a real Redis)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis

from kimi_lsp.quota import QuotaGovernor, limits_for
from tests.unit.test_quota_governor import Req, Used


async def test_a_stated_limit_and_the_concurrency_proven_are_shared_through_redis(
    redis_url: str, tmp_path: Path
) -> None:
    redis.Redis.from_url(redis_url).flushdb()  # the session's server: start from nothing
    limits = limits_for(1, assumed=True)
    one = QuotaGovernor.from_setting(redis_url, tmp_path / "a", limits)
    two = QuotaGovernor.from_setting(redis_url, tmp_path / "b", limits)
    assert one.fallback == ""
    assert two.fallback == ""

    first = await one.admit(Req())
    assert first.admitted.opened == 1
    blocked = asyncio.ensure_future(two.admit(Req()))  # nothing proven yet: one at a time
    await asyncio.sleep(0.3)
    assert not blocked.done()
    await first.answered()
    assert two.snapshot()["concurrencyProven"] == 1
    second = await asyncio.wait_for(blocked, 10)
    assert second.admitted.opened == 2

    await two.rate_limited(0.0, "concurrency", 2)
    await two.rate_limited(0.0, "rpm", 3)
    snap = one.snapshot()
    assert snap["limits"]["concurrency"] == 2
    assert snap["limits"]["rpm"] == 3
    assert snap["sources"]["rpm"].startswith("learned from Kimi at ")
    assert snap["concurrencyProven"] is None
    assert snap["store"].startswith("redis:")
    for t in (first, second):
        await t.settle(Used())


async def test_a_probe_waits_while_a_teammates_request_is_still_on_its_way_to_kimi(
    redis_url: str, tmp_path: Path
) -> None:
    """The probe past what was proven waits for every process's requests to be answered,
    and its answer proves the requests Kimi had answered, in every process."""
    redis.Redis.from_url(redis_url).flushdb()
    limits = limits_for(1, assumed=True)
    one = QuotaGovernor.from_setting(redis_url, tmp_path / "a", limits)
    two = QuotaGovernor.from_setting(redis_url, tmp_path / "b", limits)
    one.proved(2, one.clock())  # two were seen answered together
    open_at_kimi = await one.admit(Req())
    await open_at_kimi.answered()
    on_its_way = await two.admit(Req())  # the teammate's: not at Kimi yet
    probe = asyncio.ensure_future(one.admit(Req()))
    await asyncio.sleep(0.6)  # two re-checks
    assert not probe.done()
    await on_its_way.answered()
    assert one.snapshot()["concurrencyProven"] == 2
    third = await asyncio.wait_for(probe, 10)
    assert third.admitted.opened == 3
    await third.answered()
    assert two.snapshot()["concurrencyProven"] == 3
    await on_its_way.settle(Used())  # a settled request leaves the answered ones
    late = await two.admit(Req())
    await late.answered()
    assert two.snapshot()["concurrencyProven"] == 3  # three at Kimi, not four: one settled
    for t in (open_at_kimi, third, late):
        await t.settle(Used())

"""The governor learns the limits Kimi states, and ramps up to a concurrency it only assumes."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from kimi_lsp.quota import QuotaGovernor, limits_for
from kimi_lsp.quota.learned import FORGET_AFTER_S
from kimi_lsp.quota.sqlite import DB_FILE, SCHEMA_VERSION, Admitted, SqliteLedger
from tests.unit.test_quota_governor import Clock, Req, Used


class SlowClock(Clock):
    """A waiter's re-checks take real time too, so a test can look at it while it waits."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0.01)
        self.now += seconds


def assumed_tier_1(tmp_path: Path, **kw: object) -> tuple[QuotaGovernor, Clock]:
    clock = SlowClock()
    limits = limits_for(1, assumed=True)
    gov = QuotaGovernor.in_state_dir(tmp_path, limits, clock=clock, sleep=clock.sleep, **kw)
    return gov, clock


async def test_an_assumed_concurrency_ramps_one_request_past_what_was_answered(
    tmp_path: Path,
) -> None:
    gov, _ = assumed_tier_1(tmp_path)
    first = await gov.admit(Req())
    assert gov.snapshot()["concurrencyProven"] == 0
    waits: list[str] = []
    # a second one must wait: nothing has shown yet that two fit
    second = gov.admit(Req(), on_wait=lambda limit, _s: waits.append(limit))
    task = asyncio.ensure_future(second)
    await asyncio.sleep(0.05)
    assert not task.done()
    assert set(waits) == {"concurrency"}
    await first.answered()  # Kimi took it with one open
    assert gov.snapshot()["concurrencyProven"] == 1
    ticket = await asyncio.wait_for(task, 5)
    await ticket.answered()  # with two open
    assert gov.snapshot()["concurrencyProven"] == 2
    for t in (first, ticket):
        await t.settle(Used())


async def test_a_probe_past_what_was_proven_waits_until_kimi_has_answered_every_open_request(
    tmp_path: Path,
) -> None:
    """Kimi counts a request from its arrival, and admission comes before it. A request that
    would open more than Kimi was seen to take (the probe) waits while another is still on
    its way, so it is the only one Kimi can turn away before its 429 teaches the limit; and
    what its answer proves is the requests Kimi had answered, each open at Kimi."""
    gov, clock = assumed_tier_1(tmp_path)
    gov.proved(2, clock.now)  # two were seen answered together
    open_at_kimi = await gov.admit(Req())
    await open_at_kimi.answered()
    on_its_way = await gov.admit(Req())  # within what was proven: admitted at once
    waits: list[str] = []
    probe = asyncio.ensure_future(gov.admit(Req(), on_wait=lambda limit, _s: waits.append(limit)))
    await asyncio.sleep(0.05)
    assert not probe.done()  # the third would pass the two proven: not while one is on its way
    assert set(waits) == {"concurrency"}
    await on_its_way.answered()  # at Kimi now, with the first: two, as proven already
    assert gov.snapshot()["concurrencyProven"] == 2
    third = await asyncio.wait_for(probe, 5)
    assert third.admitted.opened == 3
    await third.answered()
    assert gov.snapshot()["concurrencyProven"] == 3
    for t in (open_at_kimi, on_its_way, third):
        await t.settle(Used())


async def test_a_stated_concurrency_ends_the_ramp_and_is_shown_with_its_time(
    tmp_path: Path,
) -> None:
    gov, clock = assumed_tier_1(tmp_path)
    await gov.rate_limited(1.0, "concurrency", 2)
    snap = gov.snapshot()
    assert snap["limits"]["concurrency"] == 2
    assert snap["concurrencyProven"] is None  # learned: nothing to probe
    assert snap["sources"]["concurrency"].startswith("learned from Kimi at ")
    assert snap["sources"]["rpm"] == "tier 1 table (assumed)"
    assert snap["learned"]["concurrency"]["value"] == 2
    clock.now += 2  # past the cool-down
    tickets = [await gov.admit(Req()), await gov.admit(Req())]  # two at once, as stated
    assert gov.snapshot()["openRequests"] == 2
    for t in tickets:
        await t.settle(Used())


async def test_a_429_that_states_more_raises_the_learned_limit_and_a_day_forgets_it(
    tmp_path: Path,
) -> None:
    gov, clock = assumed_tier_1(tmp_path)
    await gov.rate_limited(20.0, "rpm", 3)
    assert gov.limits.rpm == 3
    assert gov.snapshot()["matchingTiers"] == [0]
    clock.now += 3600
    await gov.rate_limited(1.0, "rpm", 200)  # recharged: Kimi now says more
    assert gov.limits.rpm == 200
    assert gov.snapshot()["matchingTiers"] == [1]
    clock.now += FORGET_AFTER_S
    assert gov.limits.rpm == 200  # the tier table again
    assert gov.snapshot()["learned"] == {}
    assert gov.snapshot()["sources"]["rpm"].startswith("tier 1 table")


async def test_a_statement_never_raises_what_the_user_set(tmp_path: Path) -> None:
    clock = Clock()
    limits = limits_for(1, {"rpm": 10})
    gov = QuotaGovernor.in_state_dir(tmp_path, limits, clock=clock, sleep=clock.sleep)
    await gov.rate_limited(1.0, "rpm", 500)
    assert gov.limits.rpm == 10
    assert gov.snapshot()["sources"]["rpm"] == "your setting (KIMI_LSP_LIMITS)"
    await gov.rate_limited(1.0, "rpm", 6)
    assert gov.limits.rpm == 6
    assert gov.snapshot()["sources"]["rpm"].startswith("learned from Kimi at ")


async def test_a_set_tier_is_trusted_without_a_ramp(tmp_path: Path) -> None:
    clock = Clock()
    gov = QuotaGovernor.in_state_dir(tmp_path, limits_for(1), clock=clock, sleep=clock.sleep)
    tickets = [await gov.admit(Req()) for _ in range(5)]  # none waits
    assert gov.snapshot()["concurrencyProven"] is None
    assert gov.snapshot()["sources"]["concurrency"] == "tier 1 table"
    for t in tickets:
        await t.settle(Used())


def test_a_quota_file_of_the_version_before_learns_which_requests_kimi_answered(
    tmp_path: Path,
) -> None:
    """Schema 3 had no mark for an answered lease: opening it adds one, and keeps the leases."""
    path = tmp_path / DB_FILE
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE leases (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "charge_id INTEGER NOT NULL, pid INTEGER NOT NULL, expires REAL NOT NULL)"
        )
        db.execute("INSERT INTO leases (charge_id, pid, expires) VALUES (1, 1, 2000000.0)")
        db.execute("PRAGMA user_version = 3")
    db.close()
    ledger = SqliteLedger(path)
    assert ledger.usage(1_000_000.0)["openRequests"] == 1  # the held lease is kept
    assert ledger.answered(Admitted(1, 1), 1_000_000.0) == 1
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()

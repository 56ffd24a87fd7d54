"""The Redis ledger against a real Redis server: the same rule, atomic across processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from kimi_lsp.quota import Limits, Never, Wait
from kimi_lsp.quota.redis import RedisLedger
from kimi_lsp.quota.sqlite import Admitted


def _hammer(url: str, prefix: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    ledger = RedisLedger(url, prefix=prefix)
    limits = Limits(concurrency=None, rpm=25, tpm=None, tpd=None)
    admitted = 0
    for _ in range(20):
        outcome = ledger.try_admit(0.0, limits, 10, model="m", batch=False, reserve=0.2)
        if isinstance(outcome, Admitted):
            admitted += 1
            ledger.settle(outcome, (10, 2, 5))
    queue.put(admitted)


def test_eight_processes_admit_exactly_the_limit(redis_url: str) -> None:
    prefix = "test:hammer"
    RedisLedger(redis_url, prefix=prefix).client.flushdb()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_hammer, args=(redis_url, prefix, queue)) for _ in range(8)]
    for w in workers:
        w.start()
    total = sum(queue.get(timeout=60) for _ in workers)
    for w in workers:
        w.join(30)
    assert total == 25
    usage = RedisLedger(redis_url, prefix=prefix).usage(0.0)
    assert usage["requestsLastMinute"] == 25
    assert usage["byModel"]["m"]["cached"] == 50


def test_limits_waits_and_never(redis_url: str) -> None:
    ledger = RedisLedger(redis_url, prefix="test:rules")
    ledger.client.flushdb()
    one = Limits(concurrency=1, rpm=None, tpm=1_000, tpd=None)
    first = ledger.try_admit(0.0, one, 100, model="m", batch=False, reserve=0.2)
    assert isinstance(first, Admitted)
    assert ledger.try_admit(0.0, one, 100, model="m", batch=False, reserve=0.2) == Wait(
        0.25, "concurrency"
    )
    ledger.settle(first, None)
    second = ledger.try_admit(0.0, one, 950, model="m", batch=False, reserve=0.2)
    assert isinstance(second, Wait)  # the lease is back, but 100 + 950 > 1,000 a minute
    assert second.limit == "tokens-per-minute"
    assert 55 < second.seconds <= 60
    never = ledger.try_admit(0.0, one, 5_000, model="m", batch=False, reserve=0.2)
    assert isinstance(never, Never)
    assert "tokens-per-minute" in never.reason
    ledger.cool_down(30, 0.0)
    cooled = ledger.try_admit(
        0.0, Limits(None, None, None, None), 1, model="m", batch=False, reserve=0.2
    )
    assert isinstance(cooled, Wait)
    assert cooled.limit == "cool-down"


def test_an_unreachable_redis_raises_at_once() -> None:
    import redis

    with pytest.raises(redis.RedisError):
        RedisLedger("redis://127.0.0.1:9/0")


def test_the_governor_uses_redis_or_falls_back_to_a_local_share(
    redis_url: str, tmp_path: Path
) -> None:
    from kimi_lsp.quota import QuotaGovernor

    limits = Limits(concurrency=10, rpm=100, tpm=10_000, tpd=None)
    team = QuotaGovernor.from_setting(redis_url, tmp_path, limits)
    snap = team.snapshot()
    assert snap["store"].startswith("redis:")
    assert snap["fallback"] == ""
    alone = QuotaGovernor.from_setting("redis://127.0.0.1:9/0", tmp_path, limits)
    snap = alone.snapshot()
    assert snap["store"].startswith("sqlite:")
    assert "unreachable" in snap["fallback"]
    assert snap["limits"]["rpm"] == 50


HOLDER = """
import sys, time
from kimi_lsp.quota import Limits
from kimi_lsp.quota.redis import RedisLedger
ledger = RedisLedger(sys.argv[1], prefix="test:killed", lease_ttl=0.5)
out = ledger.try_admit(0.0, Limits(1, None, None, None), 1, model="m", batch=False, reserve=0.1)
print(type(out).__name__, flush=True)
while True:  # a live holder renews its lease
    time.sleep(0.1)
    ledger.renew(out.lease_id, 0.0)
"""


def test_a_killed_holder_frees_its_lease_after_the_ttl(redis_url: str) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    ledger = RedisLedger(redis_url, prefix="test:killed", lease_ttl=0.5)
    ledger.client.flushdb()
    one = Limits(concurrency=1, rpm=None, tpm=None, tpd=None)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, redis_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "Admitted"
        time.sleep(1.0)  # past the TTL: only the heartbeat keeps the lease
        assert isinstance(ledger.try_admit(0.0, one, 1, model="m", batch=False, reserve=0.1), Wait)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 10  # the server's clock decides: poll, do not assume
        while True:
            outcome = ledger.try_admit(0.0, one, 1, model="m", batch=False, reserve=0.1)
            if isinstance(outcome, Admitted) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert isinstance(outcome, Admitted)
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout:
            holder.stdout.close()


def test_an_answered_request_counts_from_its_answer(redis_url: str) -> None:
    """Kimi counts from arrival: the charge moves to the server's time of the answer."""
    ledger = RedisLedger(redis_url, prefix="test:answered")
    ledger.client.flushdb()
    one = Limits(concurrency=None, rpm=1, tpm=None, tpd=None)
    first = ledger.try_admit(0.0, one, 10, model="m", batch=False, reserve=0.0)
    assert isinstance(first, Admitted)
    (admitted_at,) = [at for _, at in ledger.client.zrange(ledger.keys[0], 0, -1, withscores=True)]
    ledger.answered(first, 0.0)
    (answered_at,) = [at for _, at in ledger.client.zrange(ledger.keys[0], 0, -1, withscores=True)]
    after = ledger.try_admit(0.0, one, 10, model="m", batch=False, reserve=0.0)
    sec, usec = ledger.client.time()
    assert answered_at > admitted_at
    assert isinstance(after, Wait)
    assert after.limit == "requests-per-minute"
    assert answered_at + 60 - (sec + usec / 1e6) <= after.seconds <= 60  # from the answer


def test_a_refused_request_leaves_no_charge(redis_url: str) -> None:
    ledger = RedisLedger(redis_url, prefix="test:refund")
    ledger.client.flushdb()
    one = Limits(concurrency=1, rpm=1, tpm=None, tpd=None)
    first = ledger.try_admit(0.0, one, 10, model="m", batch=False, reserve=0.0)
    assert isinstance(first, Admitted)
    ledger.refund(first)
    usage = ledger.usage(0.0)
    assert usage["requestsLastMinute"] == 0
    assert usage["openRequests"] == 0
    assert isinstance(ledger.try_admit(0.0, one, 10, model="m", batch=False, reserve=0.0), Admitted)


async def test_a_redis_that_goes_away_and_comes_back(tmp_path: Path) -> None:
    """Redis stops mid-session: requests go on through a local share, a request admitted by
    Redis still settles, the status says why; Redis answers again: it is used again. Started
    while Redis is down, the same."""
    from kimi_lsp.quota import QuotaGovernor
    from tests.conftest import free_port, start_redis, stop_redis

    class Start:
        model, input_tokens, max_completion_tokens = "m", 10, 10

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    limits = Limits(concurrency=10, rpm=100, tpm=10_000, tpd=None)
    proc = start_redis(port, tmp_path)
    try:
        gov = QuotaGovernor.from_setting(url, tmp_path / "state", limits, retry_s=0.0)
        held = await gov.admit(Start())
        assert gov.snapshot()["fallback"] == ""
        assert gov.snapshot()["store"].startswith("redis:")
        stop_redis(proc)

        ticket = await gov.admit(Start())  # no error: the local share takes it
        snap = gov.snapshot()
        assert "unreachable" in snap["fallback"]
        assert snap["store"].startswith("sqlite:")
        assert snap["limits"]["rpm"] == 50
        await held.settle(None)  # admitted by Redis, which is gone: nothing raises
        await ticket.settle(None)

        proc = start_redis(port, tmp_path)
        again = await gov.admit(Start())  # tried again (retry_s=0): Redis answers
        snap = gov.snapshot()
        assert snap["fallback"] == ""
        assert snap["store"].startswith("redis:")
        assert snap["limits"]["rpm"] == 100
        await again.settle(None)
    finally:
        stop_redis(proc)

    late = QuotaGovernor.from_setting(url, tmp_path / "late", limits, retry_s=0.0)
    assert "unreachable" in late.snapshot()["fallback"]
    proc = start_redis(port, tmp_path)
    try:
        await (await late.admit(Start())).settle(None)
        assert late.snapshot()["fallback"] == ""
    finally:
        stop_redis(proc)


async def test_a_request_waiting_when_redis_goes_keeps_one_place_in_the_local_queue(
    tmp_path: Path,
) -> None:
    """Its place in Redis is lost with Redis; it takes one in the local queue and keeps it
    at every re-check (a new place each time would put it behind its own old ones)."""
    import asyncio
    import time

    from kimi_lsp.quota import QuotaGovernor, SqliteLedger
    from tests.conftest import free_port, start_redis, stop_redis

    class Start:
        model, input_tokens, max_completion_tokens = "m", 10, 10

    port = free_port()
    proc = start_redis(port, tmp_path)
    state = tmp_path / "state"
    two = Limits(concurrency=2, rpm=None, tpm=None, tpd=None)
    gov = QuotaGovernor.from_setting(f"redis://127.0.0.1:{port}/0", state, two, retry_s=1e9)
    try:
        held = [await gov.admit(Start()), await gov.admit(Start())]
        waiter = asyncio.ensure_future(gov.admit(Start()))
        for _ in range(100):
            if gov.waiting:
                break
            await asyncio.sleep(0.05)
        assert gov.waiting == 1
        local = SqliteLedger(state / "quota.sqlite3")
        other = local.try_admit(
            time.time(), two.scaled(0.5), 1, model="m", batch=False, reserve=0.1
        )
        assert isinstance(other, Admitted)  # another process holds the local share's one slot
    finally:
        stop_redis(proc)
    await asyncio.sleep(3.5)  # three re-checks against the local ledger
    assert "unreachable" in gov.fallback
    assert not waiter.done()
    assert local.usage(time.time())["queue"]["interactive"] == 1
    local.settle(other, None)
    ticket = await asyncio.wait_for(waiter, 10)
    for t in [*held, ticket]:
        await t.settle(None)


@pytest.mark.parametrize("store", ["redis", "sqlite"])
def test_the_limits_meta_is_read_in_one_call(redis_url: str, tmp_path: Path, store: str) -> None:
    """The governor plans every admission from a handful of meta values: one read each time
    (a single HMGET on Redis), the absent ones left out."""
    from kimi_lsp.quota.sqlite import SqliteLedger

    ledger: RedisLedger | SqliteLedger
    if store == "redis":
        ledger = RedisLedger(redis_url, prefix="test:metas")
        ledger.client.flushdb()
    else:
        ledger = SqliteLedger(tmp_path / "quota.sqlite3")
    ledger.set_meta("learned_rpm", 3.0)
    ledger.set_meta("learned_rpm_at", 1_700_000_000.5)
    assert ledger.metas(["learned_rpm", "learned_rpm_at", "shrink_factor"]) == {
        "learned_rpm": 3.0,
        "learned_rpm_at": 1_700_000_000.5,
    }
    assert ledger.metas([]) == {}

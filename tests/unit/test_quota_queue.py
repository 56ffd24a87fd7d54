"""The queue in the store: interactive before batch, first come first served within each, the
head never passed, nothing left behind by what never fits, a cancelled or vanished waiter.

The store is a real SQLite file; time comes from an injected clock, nothing sleeps.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kimi_lsp.quota import Limits, Never, NeverFits, QuotaGovernor, SqliteLedger, Wait
from kimi_lsp.quota.ledger import QUEUE_TTL_S
from kimi_lsp.quota.sqlite import Admitted

NOW = 1_000_000.0
ONE = Limits(concurrency=1, rpm=None, tpm=1_000, tpd=None)


def ask(ledger: SqliteLedger, *, batch: bool = False, tokens: int = 10, **kw: Any) -> object:
    return ledger.try_admit(
        kw.pop("now", NOW), kw.pop("limits", ONE), tokens, model="m", batch=batch, reserve=0.1, **kw
    )


def join(ledger: SqliteLedger, *, batch: bool = False, **kw: Any) -> int:
    outcome = ask(ledger, batch=batch, join=True, **kw)
    assert isinstance(outcome, Wait), outcome
    assert outcome.entry > 0
    return outcome.entry


@pytest.fixture
def ledger(tmp_path: Path) -> SqliteLedger:
    return SqliteLedger(tmp_path / "quota.sqlite3")


@pytest.fixture
def held(ledger: SqliteLedger) -> Admitted:
    """The one concurrency slot, taken: whoever comes next has to queue."""
    first = ask(ledger)
    assert isinstance(first, Admitted)
    return first


def test_within_a_class_the_earlier_waiter_goes_first(ledger: SqliteLedger, held: Admitted) -> None:
    first, second = join(ledger, batch=True), join(ledger, batch=True)
    assert second > first
    ledger.settle(held, None)
    behind = ask(ledger, batch=True, entry=second)
    assert isinstance(behind, Wait)
    assert (behind.ahead, behind.limit) == (1, "1 request ahead in the queue")
    assert isinstance(ask(ledger, batch=True, entry=first), Admitted)


def test_an_interactive_waiter_goes_before_batch_work_that_came_earlier(
    ledger: SqliteLedger, held: Admitted
) -> None:
    batch = join(ledger, batch=True)
    interactive = join(ledger)
    ledger.settle(held, None)
    assert isinstance(ask(ledger, batch=True, entry=batch), Wait)
    assert isinstance(ask(ledger, entry=interactive), Admitted)


def test_a_newcomer_waits_behind_the_queue_even_when_there_is_room(
    ledger: SqliteLedger, held: Admitted
) -> None:
    waiter = join(ledger, batch=True)
    ledger.settle(held, None)  # room for one, and the waiter has not re-checked yet
    newcomer = ask(ledger, batch=True)
    assert isinstance(newcomer, Wait)
    assert (newcomer.ahead, newcomer.entry) == (1, 0)  # it did not ask to join
    assert isinstance(ask(ledger), Admitted)  # interactive work is ahead of the batch waiter
    assert isinstance(ask(ledger, batch=True, entry=waiter), Wait)  # and now holds the slot


def test_the_head_waits_for_its_limit_and_the_others_for_the_head(
    ledger: SqliteLedger, held: Admitted
) -> None:
    head = ask(ledger, join=True)
    assert isinstance(head, Wait)
    assert (head.limit, head.ahead) == ("concurrency", 0)
    behind = ask(ledger, join=True)
    assert isinstance(behind, Wait)
    assert behind.ahead == 1
    queue = ledger.usage(NOW + 0.1)["queue"]
    assert queue["interactive"] == 2
    assert queue["batch"] == 0
    assert queue["head"]["batch"] is False
    assert queue["head"]["waitingFor"] == "concurrency"
    assert queue["head"]["waitedSeconds"] == pytest.approx(0.1)


def test_what_can_never_fit_fails_at_once_and_takes_no_place(
    ledger: SqliteLedger, held: Admitted
) -> None:
    join(ledger)
    too_big = ask(ledger, tokens=1_001, join=True)
    assert isinstance(too_big, Never)
    assert "tokens-per-minute" in too_big.reason
    # batch work may not use the reserve: bigger than its share of TPM never fits either
    over_share = ask(ledger, batch=True, tokens=950, join=True)
    assert isinstance(over_share, Never)
    assert "kept for interactive work" in over_share.reason
    assert "KIMI_LSP_QUOTA_RESERVE" in over_share.reason
    queue = ledger.usage(NOW)["queue"]
    assert (queue["interactive"], queue["batch"]) == (1, 0)


def test_a_waiter_whose_request_stops_fitting_leaves_the_queue(ledger: SqliteLedger) -> None:
    day = Limits(concurrency=1, rpm=None, tpm=None, tpd=100)  # batch work's share: 90
    held = ask(ledger, limits=day, tokens=50)
    assert isinstance(held, Admitted)
    head = join(ledger, limits=day, batch=True, tokens=30)
    behind = join(ledger, limits=day, batch=True, tokens=5)
    ledger.settle(held, None)
    assert isinstance(ask(ledger, limits=day, tokens=15), Admitted)  # interactive goes first
    refused = ask(ledger, limits=day, batch=True, tokens=30, entry=head)  # 65 + 30 > 90
    assert isinstance(refused, Never)
    assert "tokens-per-day" in refused.reason
    still = ask(ledger, limits=day, batch=True, tokens=5, entry=behind)
    assert isinstance(still, Wait)
    assert (still.ahead, still.limit) == (0, "concurrency")  # the refused one is gone


def test_a_cancelled_waiter_leaves_and_the_next_moves_up(
    ledger: SqliteLedger, held: Admitted
) -> None:
    first, second = join(ledger), join(ledger)
    ledger.settle(held, None)
    ledger.leave(first)
    assert isinstance(ask(ledger, entry=second), Admitted)


def test_a_waiter_that_stops_rechecking_lapses_and_keeps_its_place_if_it_returns(
    ledger: SqliteLedger, held: Admitted
) -> None:
    first = join(ledger)
    second = join(ledger, now=NOW + QUEUE_TTL_S - 1)
    later = NOW + QUEUE_TTL_S + 1  # `first` has not re-checked since NOW: it lapsed
    assert ledger.usage(later)["queue"]["interactive"] == 1
    ledger.settle(held, None)
    assert isinstance(ask(ledger, entry=second, now=later), Admitted)
    third = join(ledger, now=later)  # behind `first` when it comes back, ahead of nobody else
    returned = ask(ledger, entry=first, now=later)
    assert isinstance(returned, Wait)  # the slot is `second`'s now
    assert returned.ahead == 0
    assert ask(ledger, entry=third, now=later).ahead == 1  # type: ignore[union-attr]


def test_the_batch_reserve_still_holds(ledger: SqliteLedger) -> None:
    ten = Limits(concurrency=10, rpm=None, tpm=None, tpd=None)
    for _ in range(9):  # batch work's share: 10 - max(1, ceil(10 x 0.1))
        assert isinstance(ask(ledger, limits=ten, batch=True), Admitted)
    waiting = ask(ledger, limits=ten, batch=True, join=True)
    assert isinstance(waiting, Wait)
    assert waiting.limit == "concurrency"
    assert isinstance(ask(ledger, limits=ten), Admitted)  # the last slot is interactive work's


# -- the governor: several of them on one store, as several processes would be -----------


@dataclass
class Req:
    model: str = "m"
    input_tokens: int = 5
    max_completion_tokens: int = 5


class Clock:
    """Shared time that stands still; sleeping only lets the others run. These tests wait for
    concurrency alone; a clock every waiter's sleep moved would run fast enough to lapse the
    holder's lease or a waiter's entry while a test sets up, and then order proves nothing."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


def governors(tmp_path: Path, n: int, limits: Limits = ONE) -> tuple[list[QuotaGovernor], Clock]:
    clock = Clock()
    return [
        QuotaGovernor.in_state_dir(tmp_path, limits, clock=clock, sleep=clock.sleep)
        for _ in range(n)
    ], clock


async def until(predicate: Any) -> None:
    """Let the waiters run until ``predicate()`` holds (bounded, so a bug fails, not hangs)."""
    for _ in range(20_000):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("never happened")


async def test_batch_waiting_in_one_governor_lets_interactive_work_of_another_go_first(
    tmp_path: Path,
) -> None:
    (a, b), _ = governors(tmp_path, 2)
    holder = await a.admit(Req())
    order: list[str] = []
    # Once the slot is free, A re-checks first: only the store's queue can hold it back.
    # No attempt is in the store while the slot is freed (``gate``), so each one saw the
    # slot either held or free, and knows which.
    released = False
    gate = threading.Lock()
    a_rechecked = threading.Event()
    a_try, b_try = a.ledger.try_admit, b.ledger.try_admit

    def a_first(*args: Any, **kw: Any) -> object:
        with gate:
            after = released
            outcome = a_try(*args, **kw)
        if after:
            a_rechecked.set()
        return outcome

    def b_second(*args: Any, **kw: Any) -> object:
        while True:
            with gate:
                if not released or a_rechecked.is_set():
                    return b_try(*args, **kw)
            a_rechecked.wait(10)

    a.ledger.try_admit = a_first  # type: ignore[method-assign]
    b.ledger.try_admit = b_second  # type: ignore[method-assign]

    async def request(gov: QuotaGovernor, name: str, batch: bool) -> None:
        ticket = await gov.admit(Req(), batch=batch)
        order.append(name)
        await ticket.settle(None)

    batch = asyncio.ensure_future(request(a, "batch in A", True))
    await until(lambda: a.snapshot()["queue"]["batch"] == 1)
    interactive = asyncio.ensure_future(request(b, "interactive in B", False))
    await until(lambda: b.snapshot()["queue"]["interactive"] == 1)
    snap = a.snapshot()  # A sees B's waiter: the queue is the store's, not the process's
    assert (snap["waiting"], snap["queue"]["interactive"], snap["queue"]["batch"]) == (1, 1, 1)
    assert snap["queue"]["head"]["batch"] is False
    with gate:  # the settle runs in a worker thread; attempts wait for the gate meanwhile
        await holder.settle(None)
        released = True
    await asyncio.gather(batch, interactive)
    assert a_rechecked.is_set()
    assert order == ["interactive in B", "batch in A"]


async def test_only_the_first_waiter_of_a_process_rechecks_the_store(tmp_path: Path) -> None:
    (gov,), _ = governors(tmp_path, 1)
    calls: list[int | None] = []
    real = gov.ledger.try_admit

    def counting(*args: Any, **kw: Any) -> object:
        calls.append(kw.get("entry"))
        return real(*args, **kw)

    gov.ledger.try_admit = counting  # type: ignore[method-assign]
    holder = await gov.admit(Req())

    async def request() -> None:  # one slot: each admitted request ends, the next goes
        await (await gov.admit(Req(), batch=True)).settle(None)

    waiters = [asyncio.ensure_future(request()) for _ in range(4)]
    await until(lambda: gov.snapshot()["queue"]["batch"] == 4)
    mark = len(calls)
    await until(lambda: len(calls) >= mark + 10)
    # Only the first in line re-checks (keeping the others' entries alive); the other three
    # wait their turn here.
    assert set(calls[mark:]) == {min(e for e in calls if e is not None)}
    await holder.settle(None)
    await asyncio.gather(*waiters)
    assert gov.snapshot()["queue"] == {"interactive": 0, "batch": 0, "head": None}


async def test_a_cancelled_waiter_leaves_the_queue(tmp_path: Path) -> None:
    (a, b), _ = governors(tmp_path, 2)
    holder = await a.admit(Req())
    first = asyncio.ensure_future(a.admit(Req()))
    await until(lambda: a.snapshot()["queue"]["interactive"] == 1)
    second = asyncio.ensure_future(b.admit(Req()))
    await until(lambda: b.snapshot()["queue"]["interactive"] == 2)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert a.snapshot()["queue"]["interactive"] == 1
    await holder.settle(None)
    await (await second).settle(None)
    assert a.snapshot()["queue"]["head"] is None


async def test_a_waiter_cancelled_while_the_store_admits_it_gives_the_slot_back(
    tmp_path: Path,
) -> None:
    (gov,), _ = governors(tmp_path, 1)
    entered, release = threading.Event(), threading.Event()
    real = gov.ledger.try_admit

    def slow(*args: Any, **kw: Any) -> object:
        entered.set()
        release.wait(10)
        return real(*args, **kw)

    gov.ledger.try_admit = slow  # type: ignore[method-assign]
    task = asyncio.ensure_future(gov.admit(Req()))
    await asyncio.to_thread(entered.wait, 10)
    task.cancel()
    release.set()  # the store admits it, but nobody is left to send the request
    with pytest.raises(asyncio.CancelledError):
        await task
    snap = gov.snapshot()
    assert snap["openRequests"] == 0
    assert snap["queue"]["head"] is None


async def test_what_never_fits_fails_at_once_while_others_wait(tmp_path: Path) -> None:
    (a, b), _ = governors(tmp_path, 2)
    holder = await a.admit(Req())
    waiter = asyncio.ensure_future(a.admit(Req()))
    await until(lambda: a.snapshot()["queue"]["interactive"] == 1)
    with pytest.raises(NeverFits, match="tokens-per-minute"):
        await b.admit(Req(input_tokens=2_000))
    assert b.snapshot()["queue"]["interactive"] == 1
    await holder.settle(None)
    await (await waiter).settle(None)

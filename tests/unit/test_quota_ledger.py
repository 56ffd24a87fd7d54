"""The admission rule: each limit, the batch reserve, cool-downs, and what can never fit; the
reserve in the SQLite store (the Redis store's twin is in tests/integration/test_quota_redis.py).
"""

import sqlite3
from pathlib import Path

import pytest

from kimi_lsp.quota import (
    Admit,
    Charge,
    Limits,
    Never,
    SqliteLedger,
    Wait,
    Window,
    decide,
    limits_for,
)
from kimi_lsp.quota.ledger import ARRIVAL_MARGIN_S as M
from kimi_lsp.quota.sqlite import SCHEMA_VERSION, Admitted

L = Limits(concurrency=2, rpm=3, tpm=1_000, tpd=5_000)
RPM3 = Limits(concurrency=None, rpm=3, tpm=None, tpd=None)  # a reserve of 0.1 sets 1 aside


def test_tiers_and_overrides() -> None:
    assert limits_for(0) == Limits(1, 3, 500_000, 1_500_000)
    assert limits_for(1, {"rpm": 20, "tpd": None}) == Limits(50, 20, 2_000_000, None)


def test_admits_when_everything_fits() -> None:
    assert decide(100.0, L, Window(0, []), 100) == Admit()


def test_concurrency_waits() -> None:
    assert decide(100.0, L, Window(2, []), 10) == Wait(0.25, "concurrency")


def test_rpm_waits_until_the_oldest_request_of_the_minute_ages_out() -> None:
    # A charge holds its place a minute plus the margin: Kimi counts from its arrival.
    charges = [Charge(50.0, 1), Charge(60.0, 1), Charge(70.0, 1)]
    assert decide(100.0, L, Window(0, charges), 1) == Wait(10.0 + M, "requests-per-minute")
    assert decide(110.0 + M / 2, L, Window(0, charges), 1) == Wait(M / 2, "requests-per-minute")


def test_tpm_waits_exactly_until_enough_tokens_age_out() -> None:
    charges = [Charge(45.0, 400), Charge(50.0, 400)]
    assert decide(100.0, L, Window(0, charges), 300) == Wait(5.0 + M, "tokens-per-minute")
    assert decide(105.0 + M, L, Window(0, charges), 300) == Admit()


def test_more_than_tpm_never_fits_and_says_what_to_do() -> None:
    outcome = decide(0.0, L, Window(0, []), 1_001)
    assert isinstance(outcome, Never)
    assert "tokens-per-minute" in outcome.reason
    assert "KIMI_LSP_TIER" in outcome.reason


def test_a_spent_day_never_fits() -> None:
    charges = [Charge(float(i * 1000), 1_000) for i in range(5)]
    outcome = decide(10_000.0, L, Window(0, charges), 1)
    assert isinstance(outcome, Never)
    assert "tokens-per-day" in outcome.reason


def test_batch_leaves_the_reserve_to_interactive_work() -> None:
    limits = Limits(concurrency=10, rpm=10, tpm=10_000, tpd=None)
    busy = Window(8, [], batch_leases=8)  # 2 set aside
    assert decide(0.0, limits, busy, 1, batch=True, reserve=0.2) == Wait(0.25, "concurrency")
    assert decide(0.0, limits, busy, 1, batch=False) == Admit()
    charges = [Charge(float(i), 1, batch=True) for i in range(8)]
    assert isinstance(decide(10.0, limits, Window(0, charges), 1, batch=True, reserve=0.2), Wait)
    assert decide(10.0, limits, Window(0, charges), 1) == Admit()


def test_batch_may_use_what_interactive_work_already_took_of_the_reserve() -> None:
    interactive_first = [Charge(0.0, 1), Charge(1.0, 1, batch=True)]
    assert decide(2.0, RPM3, Window(0, interactive_first), 1, batch=True) == Admit()
    leases = Window(3, [], batch_leases=2)  # one interactive lease holds the set-aside
    four = Limits(concurrency=4, rpm=None, tpm=None, tpd=None)
    assert decide(0.0, four, leases, 1, batch=True, reserve=0.25) == Admit()
    tokens = Window(0, [Charge(0.0, 150)])  # more than the 100 set aside of 1,000
    thousand = Limits(concurrency=None, rpm=None, tpm=1_000, tpd=None)
    assert decide(1.0, thousand, tokens, 850, batch=True) == Admit()
    assert decide(1.0, thousand, tokens, 851, batch=True) == Wait(59.0 + M, "tokens-per-minute")


def test_without_interactive_work_batch_gets_only_what_is_not_set_aside() -> None:
    two_batch = [Charge(0.0, 1, batch=True), Charge(1.0, 1, batch=True)]
    assert decide(2.0, RPM3, Window(0, two_batch), 1, batch=True) == Wait(
        58.0 + M, "requests-per-minute"
    )
    assert decide(2.0, RPM3, Window(0, two_batch), 1) == Admit()  # the set-aside is there


def test_a_batch_wait_lasts_until_room_for_batch_work_ages_out() -> None:
    # The interactive request ages out first (at 60 s and the margin), but the set-aside still
    # counts then: batch work fits once its own first request ages out, 10 s later.
    charges = [Charge(0.0, 1), Charge(10.0, 1, batch=True), Charge(20.0, 1, batch=True)]
    assert decide(30.0, RPM3, Window(0, charges), 1, batch=True) == Wait(
        40.0 + M, "requests-per-minute"
    )
    assert decide(30.0, RPM3, Window(0, charges), 1) == Wait(30.0 + M, "requests-per-minute")
    # Interactive work beyond the set-aside: its first request ageing out makes room.
    over = [Charge(0.0, 1), Charge(10.0, 1), Charge(20.0, 1, batch=True)]
    assert decide(30.0, RPM3, Window(0, over), 1, batch=True) == Wait(
        30.0 + M, "requests-per-minute"
    )


def test_cool_down_holds_everything() -> None:
    assert decide(0.0, L, Window(0, []), 1, cooldown_until=7.5) == Wait(7.5, "cool-down")


def test_a_reserve_of_zero_keeps_nothing_back() -> None:
    limits = Limits(concurrency=10, rpm=None, tpm=1_000, tpd=None)
    nine = Window(9, [], batch_leases=9)
    assert decide(0.0, limits, nine, 1_000, batch=True, reserve=0.0) == Admit()
    assert isinstance(decide(0.0, limits, nine, 1, batch=True, reserve=0.1), Wait)


def test_batch_work_bigger_than_its_share_never_fits() -> None:
    limits = Limits(concurrency=None, rpm=None, tpm=1_000, tpd=10_000)
    too_big = decide(0.0, limits, Window(0, []), 950, batch=True, reserve=0.1)
    assert isinstance(too_big, Never)
    assert "kept for interactive work" in too_big.reason
    assert decide(0.0, limits, Window(0, []), 950, batch=False, reserve=0.1) == Admit()
    spent = Window(0, [Charge(-3_600.0, 8_900, batch=True)])  # batch work may use 9,000
    refused = decide(0.0, limits, spent, 200, batch=True, reserve=0.1)
    assert isinstance(refused, Never)
    assert "may use 9000 of the account's tokens-per-day limit (10000)" in refused.reason
    assert decide(0.0, limits, spent, 200, batch=False, reserve=0.1) == Admit()
    # What interactive work used of the day beyond its 1,000 set aside is not batch work's ...
    mixed = Window(0, [Charge(-7_200.0, 7_500, batch=True), Charge(-3_600.0, 1_500)])
    assert decide(0.0, limits, mixed, 900, batch=True, reserve=0.1) == Admit()
    # ... and below it, the set-aside is kept whole.
    low = Window(0, [Charge(-7_200.0, 8_200, batch=True), Charge(-3_600.0, 500)])
    refused = decide(0.0, limits, low, 900, batch=True, reserve=0.1)
    assert isinstance(refused, Never)
    assert "may use 9000" in refused.reason
    assert "it used 8200" in refused.reason


# -- the reserve in the SQLite store (injected time) --------------------------------------

NOW = 1_000_000.0


@pytest.fixture
def ledger(tmp_path: Path) -> SqliteLedger:
    return SqliteLedger(tmp_path / "quota.sqlite3")


def ask(ledger: SqliteLedger, limits: Limits, at: float, *, batch: bool) -> object:
    return ledger.try_admit(NOW + at, limits, 1, model="m", batch=batch, reserve=0.1)


def test_the_store_lets_batch_use_the_reserve_interactive_work_took(ledger: SqliteLedger) -> None:
    assert isinstance(ask(ledger, RPM3, 0, batch=False), Admitted)
    assert isinstance(ask(ledger, RPM3, 1, batch=True), Admitted)
    assert isinstance(ask(ledger, RPM3, 2, batch=True), Admitted)  # 3 in the minute: the limit
    assert ask(ledger, RPM3, 3, batch=True) == Wait(58.0 + M, "requests-per-minute")
    assert ask(ledger, RPM3, 3, batch=False) == Wait(57.0 + M, "requests-per-minute")


def test_the_store_without_interactive_work_gives_batch_only_two(ledger: SqliteLedger) -> None:
    assert isinstance(ask(ledger, RPM3, 0, batch=True), Admitted)
    assert isinstance(ask(ledger, RPM3, 1, batch=True), Admitted)
    assert ask(ledger, RPM3, 2, batch=True) == Wait(58.0 + M, "requests-per-minute")
    assert isinstance(ask(ledger, RPM3, 2, batch=False), Admitted)


def test_the_store_counts_open_requests_by_class(ledger: SqliteLedger) -> None:
    three = Limits(concurrency=3, rpm=None, tpm=None, tpd=None)  # 1 set aside
    batch = [ask(ledger, three, 0, batch=True) for _ in range(2)]
    assert ask(ledger, three, 0, batch=True) == Wait(0.25, "concurrency")
    interactive = ask(ledger, three, 0, batch=False)
    assert isinstance(interactive, Admitted)
    first = batch[0]
    assert isinstance(first, Admitted)
    ledger.settle(first, None)  # a batch lease back; the interactive one holds the set-aside
    assert isinstance(ask(ledger, three, 0, batch=True), Admitted)
    ledger.settle(interactive, None)
    assert ask(ledger, three, 0, batch=True) == Wait(0.25, "concurrency")


def test_a_version_3_store_gains_tagged_leases_and_keeps_its_usage(tmp_path: Path) -> None:
    path = tmp_path / "quota.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(
        """CREATE TABLE charges (
            id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, tokens INTEGER NOT NULL,
            model TEXT NOT NULL DEFAULT '', batch INTEGER NOT NULL DEFAULT 0,
            actual_in INTEGER, actual_cached INTEGER, actual_out INTEGER);
        CREATE TABLE leases (
            id INTEGER PRIMARY KEY AUTOINCREMENT, charge_id INTEGER NOT NULL,
            pid INTEGER NOT NULL, expires REAL NOT NULL);
        PRAGMA user_version = 3;"""
    )
    db.execute("INSERT INTO charges (at, tokens, batch) VALUES (?, 1, 1)", (NOW,))
    db.close()
    ledger = SqliteLedger(path)
    assert isinstance(ask(ledger, RPM3, 1, batch=True), Admitted)
    assert ask(ledger, RPM3, 2, batch=True) == Wait(58.0 + M, "requests-per-minute")
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT batch FROM leases").fetchall() == [(1,)]
    db.close()

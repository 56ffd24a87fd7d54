"""The admission rule: each limit, the batch reserve, cool-downs, and what can never fit."""

from kimi_lsp.quota import Admit, Charge, Limits, Never, Wait, Window, decide, limits_for

L = Limits(concurrency=2, rpm=3, tpm=1_000, tpd=5_000)


def test_tiers_and_overrides() -> None:
    assert limits_for(0) == Limits(1, 3, 500_000, 1_500_000)
    assert limits_for(1, {"rpm": 20, "tpd": None}) == Limits(50, 20, 2_000_000, None)


def test_admits_when_everything_fits() -> None:
    assert decide(100.0, L, Window(0, []), 100) == Admit()


def test_concurrency_waits() -> None:
    assert decide(100.0, L, Window(2, []), 10) == Wait(0.25, "concurrency")


def test_a_probe_past_the_proven_concurrency_waits_for_every_open_request_to_be_answered() -> None:
    wide = Limits(concurrency=5, rpm=None, tpm=None, tpd=None)
    on_its_way = Window(2, [], unanswered=1)
    assert decide(100.0, wide, on_its_way, 10, probe_above=2) == Wait(0.25, "concurrency")
    assert decide(100.0, wide, Window(2, [], unanswered=0), 10, probe_above=2) == Admit()
    assert decide(100.0, wide, Window(1, [], unanswered=1), 10, probe_above=2) == Admit()
    assert decide(100.0, wide, on_its_way, 10) == Admit()  # not probing: the limit alone


def test_rpm_waits_until_the_oldest_request_of_the_minute_ages_out() -> None:
    charges = [Charge(50.0, 1), Charge(60.0, 1), Charge(70.0, 1)]
    assert decide(100.0, L, Window(0, charges), 1) == Wait(10.0, "requests-per-minute")


def test_tpm_waits_exactly_until_enough_tokens_age_out() -> None:
    charges = [Charge(45.0, 400), Charge(50.0, 400)]
    assert decide(100.0, L, Window(0, charges), 300) == Wait(5.0, "tokens-per-minute")
    assert decide(105.0, L, Window(0, charges), 300) == Admit()


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
    busy = Window(8, [])
    assert decide(0.0, limits, busy, 1, batch=True, reserve=0.2) == Wait(0.25, "concurrency")
    assert decide(0.0, limits, busy, 1, batch=False) == Admit()
    charges = [Charge(float(i), 1) for i in range(8)]
    assert isinstance(decide(10.0, limits, Window(0, charges), 1, batch=True, reserve=0.2), Wait)
    assert decide(10.0, limits, Window(0, charges), 1) == Admit()


def test_cool_down_holds_everything() -> None:
    assert decide(0.0, L, Window(0, []), 1, cooldown_until=7.5) == Wait(7.5, "cool-down")


def test_a_reserve_of_zero_keeps_nothing_back() -> None:
    limits = Limits(concurrency=10, rpm=None, tpm=1_000, tpd=None)
    assert decide(0.0, limits, Window(9, []), 1_000, batch=True, reserve=0.0) == Admit()
    assert isinstance(decide(0.0, limits, Window(9, []), 1, batch=True, reserve=0.1), Wait)


def test_batch_work_bigger_than_its_share_never_fits() -> None:
    limits = Limits(concurrency=None, rpm=None, tpm=1_000, tpd=10_000)
    too_big = decide(0.0, limits, Window(0, []), 950, batch=True, reserve=0.1)
    assert isinstance(too_big, Never)
    assert "kept for interactive work" in too_big.reason
    assert decide(0.0, limits, Window(0, []), 950, batch=False, reserve=0.1) == Admit()
    spent = Window(0, [Charge(-3_600.0, 8_900)])  # batch work may use 9,000 of the day
    assert isinstance(decide(0.0, limits, spent, 200, batch=True, reserve=0.1), Never)
    assert decide(0.0, limits, spent, 200, batch=False, reserve=0.1) == Admit()

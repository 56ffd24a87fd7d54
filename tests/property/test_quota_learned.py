"""The learned-limit arithmetic, on an injected clock: a stated limit is adopted at once, never
raises what the user set, is forgotten after a day, a later statement replaces it (so one that
states more raises it again), the shrinking after 429s touches only limits nothing was stated
about, and the concurrency ramp leaves room for exactly one request more than proven."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kimi_lsp.quota import TIERS, QuotaGovernor, limits_for
from kimi_lsp.quota.learned import (
    FORGET_AFTER_S,
    Learned,
    adopt,
    matching_tiers,
    probing,
    ramp,
    source,
)
from kimi_lsp.quota.ledger import cap
from kimi_lsp.quota.limits import NAMES

NOW = 1_000_000.0
value_st = st.integers(1, 20_000) | st.none()
overrides_st = st.dictionaries(st.sampled_from(NAMES), value_st, max_size=4)
learned_st = st.dictionaries(
    st.sampled_from(NAMES),
    st.builds(Learned, st.integers(1, 20_000), st.floats(NOW - 2 * FORGET_AFTER_S, NOW)),
    max_size=4,
)


@settings(max_examples=400, deadline=None)
@given(
    tier=st.integers(0, 5),
    overrides=overrides_st,
    learned=learned_st,
    shrink=st.floats(0.3, 1.0),
)
def test_a_fresh_statement_replaces_the_assumed_value_but_never_raises_the_users(
    tier: int, overrides: dict[str, int | None], learned: dict[str, Learned], shrink: float
) -> None:
    limits = limits_for(tier, overrides)
    got = adopt(limits, learned, NOW, shrink=shrink)
    for name in NAMES:
        said = learned.get(name)
        mine, now = limits.get(name), got.get(name)
        where = source(limits, learned, NOW, name, str)
        users = name in overrides and mine is not None
        if users:
            assert now is not None
            assert now <= mine
        if said is not None and NOW - said.at < FORGET_AFTER_S:
            if users:
                assert mine is not None
                assert now == min(mine, said.value)
                assert where.startswith("learned" if said.value < mine else "your setting")
            else:
                assert now == said.value  # adopted as stated, and not shrunk
                assert where.startswith("learned from Kimi at ")
        else:  # nothing stated, or forgotten after a day: the configured value, shrunk
            expected = mine if mine is None or shrink >= 1 else max(1, int(mine * shrink))
            assert now == expected
            assert not where.startswith("learned")
            assert where.startswith("your setting" if name in overrides else f"tier {tier} ")


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(1, 2_000) | st.none(),
    proven=st.integers(0, 3_000),
    reserve=st.floats(0, 0.5),
)
def test_the_ramp_leaves_room_for_one_more_than_proven(
    limit: int | None, proven: int, reserve: float
) -> None:
    target = max(1, proven + 1) if limit is None else min(limit, max(1, proven + 1))
    assert ramp(limit, proven, batch=False, reserve=reserve) == target
    batch = ramp(limit, proven, batch=True, reserve=reserve)
    assert batch is not None
    assert limit is None or batch <= limit
    if limit is None or batch < limit:  # batch work ramps too: room for the target, no more
        share = cap(batch, True, reserve)
        assert share is not None
        assert share >= target
        below = cap(batch - 1, True, reserve) if batch > 1 else 0
        assert batch == target or (below is not None and below < target)


@settings(max_examples=100, deadline=None)
@given(said=st.dictionaries(st.sampled_from(NAMES), st.integers(1, 10_000_000), min_size=1))
def test_a_suggested_tier_holds_every_learned_value(said: dict[str, int]) -> None:
    learned = {n: Learned(v, NOW) for n, v in said.items()}
    for tier in matching_tiers(learned, NOW):
        assert all(TIERS[tier].get(n) == v for n, v in said.items())
    old = {n: Learned(v, NOW - FORGET_AFTER_S) for n, v in said.items()}
    assert matching_tiers(old, NOW) == []  # forgotten


def test_each_tiers_own_numbers_suggest_it() -> None:
    for tier, lim in TIERS.items():
        table = {n: Learned(v, NOW) for n in NAMES if (v := lim.get(n)) is not None}
        assert tier in matching_tiers(table, NOW)
    assert matching_tiers({"rpm": Learned(3, NOW)}, NOW) == [0]
    assert matching_tiers({"concurrency": Learned(2, NOW)}, NOW) == []


@settings(max_examples=40, deadline=None)
@given(
    statements=st.lists(
        st.tuples(st.sampled_from(NAMES), st.integers(1, 5_000), st.floats(0, 30_000)),
        min_size=1,
        max_size=6,
    ),
    overrides=overrides_st,
)
def test_every_process_plans_with_the_latest_statement_until_a_day_passes(
    statements: list[tuple[str, int, float]], overrides: dict[str, int | None]
) -> None:
    """Two governors on one SQLite ledger: what one hears, the other plans with; the latest
    statement of a limit wins (higher or lower); a day later it is forgotten."""
    clock = [NOW]
    with tempfile.TemporaryDirectory() as tmp:
        limits = limits_for(1, overrides, assumed=True)
        one = QuotaGovernor.in_state_dir(Path(tmp), limits, clock=lambda: clock[0])
        two = QuotaGovernor.in_state_dir(Path(tmp), limits, clock=lambda: clock[0])
        latest: dict[str, tuple[int, float]] = {}
        for name, value, gap in statements:
            clock[0] += gap
            asyncio.run(one.rate_limited(0.0, name, value))
            latest[name] = (value, clock[0])
            for other in NAMES:
                mine = limits.get(other)
                want = mine
                if other in latest and clock[0] - latest[other][1] < FORGET_AFTER_S:
                    want = latest[other][0]
                    if other in overrides and mine is not None:
                        want = min(mine, want)
                assert two.limits.get(other) == want
            assert two.ledger.get_meta("shrink_factor", 1.0) == 1.0  # stated: no shrinking
        assert probing(limits, two.learned(), clock[0]) == (
            "concurrency" not in overrides
            and (
                "concurrency" not in latest or clock[0] - latest["concurrency"][1] >= FORGET_AFTER_S
            )
        )
        clock[0] += FORGET_AFTER_S + 1
        assert two.limits == limits


@settings(max_examples=30, deadline=None)
@given(unstated=st.integers(0, 7), stated=st.integers(0, 7))
def test_only_429s_that_state_nothing_shrink_the_other_limits(unstated: int, stated: int) -> None:
    clock = [NOW]
    with tempfile.TemporaryDirectory() as tmp:
        gov = QuotaGovernor.in_state_dir(Path(tmp), limits_for(1), clock=lambda: clock[0])
        for _ in range(stated):
            clock[0] += 1
            asyncio.run(gov.rate_limited(1.0, "concurrency", 2))
        for _ in range(unstated):
            clock[0] += 1
            asyncio.run(gov.rate_limited(1.0, None))
        shrinks = unstated // 3  # SHRINK_AFTER 429s within the window shrink once
        factor = max(0.3, 0.8**shrinks) if shrinks else 1.0
        assert abs(gov.ledger.get_meta("shrink_factor", 1.0) - factor) < 1e-9
        got = gov.limits
        assert got.concurrency == (2 if stated else max(1, int(50 * factor)))
        assert got.rpm == (200 if factor >= 1 else max(1, int(200 * factor)))

"""Against a shadow model: whatever arrives when, admitted never exceeds a limit in any window,
batch work leaves interactive work its set-aside, and the wait the rule names is exact: the
limit it named still binds just before it, and no longer just after."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kimi_lsp.quota import Admit, Charge, Limits, Wait, Window, decide
from kimi_lsp.quota.ledger import set_aside

RESERVE = 0.25
limits_st = st.builds(
    Limits,
    concurrency=st.none(),
    rpm=st.integers(1, 8) | st.none(),
    tpm=st.integers(50, 2_000) | st.none(),
    tpd=st.none(),
)
arrivals = st.lists(
    st.tuples(st.floats(0, 30, allow_nan=False), st.integers(1, 400), st.booleans()),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(limits=limits_st, events=arrivals)
def test_no_window_ever_exceeds_a_limit(limits: Limits, events: list[tuple[float, int, bool]]):
    now = 0.0
    admitted: list[Charge] = []
    for gap, tokens, batch in events:
        now += gap
        window = Window(0, [c for c in admitted if c.at > now - 86_400])
        outcome = decide(now, limits, window, tokens, batch=batch, reserve=RESERVE)
        if isinstance(outcome, Admit):
            admitted.append(Charge(now, tokens, batch))
        elif isinstance(outcome, Wait) and outcome.limit in (
            "requests-per-minute",
            "tokens-per-minute",
        ):
            # Waiting the named time clears that limit (another one may bind next) ...
            later = now + outcome.seconds + 1e-6
            again = decide(later, limits, Window(0, admitted), tokens, batch=batch, reserve=RESERVE)
            assert not (isinstance(again, Wait) and again.limit == outcome.limit)
            # ... and no shorter wait would have.
            if outcome.seconds > 1e-5:
                sooner = now + outcome.seconds - 1e-6
                still = decide(
                    sooner, limits, Window(0, admitted), tokens, batch=batch, reserve=RESERVE
                )
                assert isinstance(still, Wait)
                assert still.limit == outcome.limit
    for c in admitted:  # every 60-second window ending at an admission
        in_window = [d for d in admitted if c.at - 60 < d.at <= c.at]
        for limit, used in (
            (limits.rpm, [(1, d.batch) for d in in_window]),
            (limits.tpm, [(d.tokens, d.batch) for d in in_window]),
        ):
            if limit is None:
                continue
            b = sum(n for n, is_batch in used if is_batch)
            i = sum(n for n, is_batch in used if not is_batch)
            assert b + i <= limit
            if i < set_aside(limit, RESERVE):  # interactive work finds what is set aside
                assert b <= limit - set_aside(limit, RESERVE)

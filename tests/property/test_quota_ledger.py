"""Against a shadow model: whatever arrives when, admitted never exceeds a limit in any window,
and waiting the time the rule names clears the limit it named."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kimi_lsp.quota import Admit, Charge, Limits, Wait, Window, decide

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
        outcome = decide(now, limits, window, tokens, batch=batch)
        if isinstance(outcome, Admit):
            admitted.append(Charge(now, tokens))
        elif isinstance(outcome, Wait) and outcome.limit in (
            "requests-per-minute",
            "tokens-per-minute",
        ):
            # Waiting the named time clears that limit (another one may bind next).
            later = now + outcome.seconds + 1e-6
            again = decide(later, limits, Window(0, admitted), tokens, batch=False)
            assert not (isinstance(again, Wait) and again.limit == outcome.limit)
    for c in admitted:  # every 60-second window ending at an admission
        in_window = [d for d in admitted if c.at - 60 < d.at <= c.at]
        if limits.rpm is not None:
            assert len(in_window) <= limits.rpm
        if limits.tpm is not None:
            assert sum(d.tokens for d in in_window) <= limits.tpm

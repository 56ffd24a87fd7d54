"""The SQLite ledger as a state machine against a simple model of the account.

Requests arrive (interactive or batch), settle with their real usage, fail, or lose their
holder (no more heartbeats); time moves by an injected clock. After every step: the ledger
admitted exactly what the model says fits (never over a limit in any window, never a
needless refusal; batch work refused at once when it needs more than its share of TPM or
TPD), it keeps every admission charge (settling moves no tokens), its usage
equals the model's, and every lease comes back (settled at once, abandoned after the TTL).

The model's reserve: each limit sets a part aside for interactive work, which interactive
usage fills first; batch work fits while ``batch + max(interactive, set-aside) + request``
stays within the limit. So in every window, while interactive work uses less than the
set-aside, batch work uses at most ``limit - set-aside``: the rest is there for interactive
requests.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from kimi_lsp.quota import Limits, Never, SqliteLedger, Wait
from kimi_lsp.quota.ledger import ARRIVAL_MARGIN_S
from kimi_lsp.quota.sqlite import LEASE_TTL_S, Admitted

CONC, RPM, TPM, TPD = 3, 6, 1_000, 4_000
LIMITS = Limits(CONC, RPM, TPM, TPD)
RESERVE = 0.25


@dataclass
class Lease:
    admitted: Admitted
    expires: float
    charge: int  # index into the model's charges
    batch: bool


def aside(limit: int) -> int:
    """The part of a limit set aside for interactive work (none of a limit of 1)."""
    return 0 if limit <= 1 else min(limit - 1, max(1, math.ceil(limit * RESERVE)))


def room(limit: int, batch: bool, used: list[tuple[int, bool]], request: int) -> bool:
    """Interactive: the total fits. Batch: interactive usage counts as at least the
    set-aside."""
    b = sum(n for n, is_batch in used if is_batch)
    i = sum(n for n, is_batch in used if not is_batch)
    return b + (max(i, aside(limit)) if batch else i) + request <= limit


class LedgerMachine(RuleBasedStateMachine):
    leases = Bundle("leases")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="quota-machine-"))
        self.ledger = SqliteLedger(self.dir / "quota.sqlite3")
        self.now = 1_000_000.0
        self.charges: list[tuple[float, int, bool]] = []  # the model: every admission charge
        self.actual: dict[int, tuple[int, int, int]] = {}  # charge -> settled real usage
        self.open: dict[int, Lease] = {}

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _live(self) -> int:
        return len(self._leases())

    def _leases(self) -> list[tuple[int, bool]]:
        return [(1, lease.batch) for lease in self.open.values() if lease.expires >= self.now]

    def _tagged(self, seconds: float) -> list[tuple[int, bool]]:
        return [(t, b) for at, t, b in self.charges if at > self.now - seconds]

    def _in(self, seconds: float) -> list[int]:
        return [t for t, _ in self._tagged(seconds)]

    @rule(target=leases, tokens=st.integers(1, 1_200), batch=st.booleans())
    def admit(self, tokens: int, batch: bool) -> object:
        outcome = self.ledger.try_admit(
            self.now, LIMITS, tokens, model="kimi-k2.6", batch=batch, reserve=RESERVE
        )
        # Kimi counts from a request's arrival: a charge holds its place a little longer here.
        minute, day = self._tagged(60 + ARRIVAL_MARGIN_S), self._tagged(86_400)
        # Batch work never gets TPM's set-aside; the day's tokens only free up as they age out.
        never = (
            tokens > TPM
            or (batch and tokens > TPM - aside(TPM))
            or not room(TPD, batch, day, tokens)
        )
        fits = (
            not never
            and room(CONC, batch, self._leases(), 1)
            and room(RPM, batch, [(1, b) for _, b in minute], 1)
            and room(TPM, batch, minute, tokens)
        )
        if never:
            assert isinstance(outcome, Never), outcome
        elif fits:
            assert isinstance(outcome, Admitted), outcome
        else:
            assert isinstance(outcome, Wait), outcome
            assert outcome.seconds > 0
        if not isinstance(outcome, Admitted):
            return None
        self.charges.append((self.now, tokens, batch))
        lease = Lease(outcome, self.now + LEASE_TTL_S, len(self.charges) - 1, batch)
        self.open[outcome.lease_id] = lease
        return lease

    @rule(
        lease=consumes(leases),
        used=st.tuples(st.integers(0, 500), st.integers(0, 500), st.integers(0, 300)),
    )
    def settle(self, lease: Lease | None, used: tuple[int, int, int]) -> None:
        if lease is None:
            return
        actual = (used[0] + used[1], used[1], used[2])  # prompt tokens include cached ones
        self.ledger.settle(lease.admitted, actual)
        self.open.pop(lease.admitted.lease_id, None)
        self.actual[lease.charge] = actual

    @rule(lease=consumes(leases))
    def fail(self, lease: Lease | None) -> None:
        """Cancelled or failed: the lease is freed, the admission charge stays."""
        if lease is not None:
            self.ledger.settle(lease.admitted, None)
            self.open.pop(lease.admitted.lease_id, None)

    @rule(lease=leases)
    def heartbeat(self, lease: Lease | None) -> None:
        if lease is None or lease.admitted.lease_id not in self.open:
            return
        if lease.expires < self.now:
            return  # already lapsed: the ledger dropped it, a renewal cannot bring it back
        self.ledger.renew(lease.admitted.lease_id, self.now)
        lease.expires = self.now + LEASE_TTL_S

    @rule(seconds=st.sampled_from([0.5, 1.5, 5.0, 20.0, 31.0, 61.0, 3_600.0, 86_400.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @invariant()
    def usage_matches_the_model(self) -> None:
        usage = self.ledger.usage(self.now)
        assert usage["openRequests"] == self._live()
        assert usage["requestsLastMinute"] == len(self._in(60))
        assert usage["tokensLastMinute"] == sum(self._in(60))
        assert usage["tokensLastDay"] == sum(self._in(86_400))
        by_model = usage["byModel"]
        assert isinstance(by_model, dict)
        got = by_model.get("kimi-k2.6", {"input": 0, "cached": 0, "output": 0})
        day = [i for i, (at, _, _) in enumerate(self.charges) if at > self.now - 86_400]
        want = [sum(self.actual.get(i, (0, 0, 0))[k] for i in day) for k in range(3)]
        assert [got["input"], got["cached"], got["output"]] == want
        self.open = {k: v for k, v in self.open.items() if v.expires >= self.now}

    @invariant()
    def no_window_exceeds_a_limit(self) -> None:
        """Not even a minute stretched by the margin: each request may reach Kimi up to that
        much after its admission, and Kimi's minute still holds no more than the limit."""
        for at, _, _ in self.charges:
            minute = [(t, b) for a, t, b in self.charges if at - 60 - ARRIVAL_MARGIN_S < a <= at]
            day = [(t, b) for a, t, b in self.charges if at - 86_400 < a <= at]
            assert len(minute) <= RPM
            assert sum(t for t, _ in minute) <= TPM
            assert sum(t for t, _ in day) <= TPD
        assert self._live() <= CONC

    @invariant()
    def interactive_work_always_finds_its_set_aside(self) -> None:
        """While interactive work uses less than the set-aside, batch work leaves it free."""

        def holds(limit: int, used: list[tuple[int, bool]]) -> None:
            b = sum(n for n, is_batch in used if is_batch)
            i = sum(n for n, is_batch in used if not is_batch)
            if i < aside(limit):
                assert b <= limit - aside(limit), (limit, b, i)

        for at, _, _ in self.charges:
            minute = [(t, b) for a, t, b in self.charges if at - 60 < a <= at]
            holds(RPM, [(1, b) for _, b in minute])
            holds(TPM, minute)
            holds(TPD, [(t, b) for a, t, b in self.charges if at - 86_400 < a <= at])
        holds(CONC, self._leases())


LedgerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestLedgerMachine = LedgerMachine.TestCase

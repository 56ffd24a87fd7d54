"""The SQLite ledger as a state machine against a simple model of the account.

Requests arrive (interactive or batch), are answered (their charge then counts from the
answer, and they count among the requests open at Kimi) or turned away with a 429 (it
counts for nothing), settle with their real usage, fail, or lose their holder (no more
heartbeats); time moves by an injected clock. After
every step: the ledger admitted exactly what the model says fits (never over a limit in any
window, never a needless refusal; batch work refused at once when it needs more than its
share of TPM or TPD), it keeps every admission charge (settling moves no tokens), its usage
equals the model's, and every lease comes back (settled at once, abandoned after the TTL).
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
from kimi_lsp.quota.sqlite import LEASE_TTL_S, Admitted

CONC, RPM, TPM, TPD = 3, 6, 1_000, 4_000
LIMITS = Limits(CONC, RPM, TPM, TPD)
RESERVE = 0.25


@dataclass
class Lease:
    admitted: Admitted
    expires: float
    charge: int  # index into the model's charges
    answered: bool = False  # Kimi's response began: it is open at Kimi


def cap(limit: int, batch: bool) -> int:
    """What a request may use of a limit: batch leaves the reserve to interactive work."""
    if not batch or limit <= 1:
        return limit
    return max(1, limit - max(1, math.ceil(limit * RESERVE)))


class LedgerMachine(RuleBasedStateMachine):
    leases = Bundle("leases")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="quota-machine-"))
        self.ledger = SqliteLedger(self.dir / "quota.sqlite3")
        self.now = 1_000_000.0
        self.charges: list[tuple[float, int]] = []  # the model: every admission charge
        self.actual: dict[int, tuple[int, int, int]] = {}  # charge -> settled real usage
        self.open: dict[int, Lease] = {}

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _live_leases(self) -> list[Lease]:
        return [lease for lease in self.open.values() if lease.expires >= self.now]

    def _live(self) -> int:
        return len(self._live_leases())

    def _in(self, seconds: float) -> list[int]:
        return [t for at, t in self.charges if at > self.now - seconds]

    @rule(
        target=leases,
        tokens=st.integers(1, 1_200),
        batch=st.booleans(),
        probe_above=st.none() | st.integers(0, CONC),
    )
    def admit(self, tokens: int, batch: bool, probe_above: int | None) -> object:
        outcome = self.ledger.try_admit(
            self.now,
            LIMITS,
            tokens,
            model="kimi-k2.6",
            batch=batch,
            reserve=RESERVE,
            probe_above=probe_above,
        )
        live = self._live_leases()
        # a probe past the proven concurrency waits while a request is on its way to Kimi
        probe_waits = (
            probe_above is not None
            and len(live) >= probe_above
            and any(not x.answered for x in live)
        )
        minute, day = self._in(60), self._in(86_400)
        # Batch work's share of TPM and TPD leaves the reserve: more than that never fits.
        never = tokens > cap(TPM, batch) or sum(day) + tokens > cap(TPD, batch)
        fits = (
            not never
            and self._live() < cap(CONC, batch)
            and not probe_waits
            and len(minute) < cap(RPM, batch)
            and sum(minute) + tokens <= cap(TPM, batch)
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
        self.charges.append((self.now, tokens))
        lease = Lease(outcome, self.now + LEASE_TTL_S, len(self.charges) - 1)
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

    @rule(lease=consumes(leases))
    def refused(self, lease: Lease | None) -> None:
        """Kimi answered 429: it counted nothing, so the charge goes with the lease."""
        if lease is None or lease.admitted.lease_id not in self.open:
            return
        self.ledger.refund(lease.admitted)
        self.open.pop(lease.admitted.lease_id)
        self.charges[lease.charge] = (-math.inf, 0)

    @rule(lease=leases)
    def answered(self, lease: Lease | None) -> None:
        """Kimi's response began: the charge counts from now (Kimi counted it on arrival)."""
        if lease is None or lease.admitted.lease_id not in self.open:
            return
        at_kimi = self.ledger.answered(lease.admitted, self.now)
        lease.answered = True
        # what a ramped request proves: the open requests Kimi has answered, not the admitted
        assert at_kimi == sum(1 for x in self._live_leases() if x.answered)
        at, tokens = self.charges[lease.charge]
        self.charges[lease.charge] = (max(at, self.now), tokens)

    @rule(lease=leases)
    def heartbeat(self, lease: Lease | None) -> None:
        if lease is None or lease.admitted.lease_id not in self.open:
            return
        if lease.expires < self.now:
            return  # already lapsed: the ledger dropped it, a renewal cannot bring it back
        self.ledger.renew(lease.admitted.lease_id, self.now)
        lease.expires = self.now + LEASE_TTL_S

    @rule(seconds=st.sampled_from([0.5, 5.0, 20.0, 31.0, 61.0, 3_600.0, 86_400.0]))
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
        day = [i for i, (at, _) in enumerate(self.charges) if at > self.now - 86_400]
        want = [sum(self.actual.get(i, (0, 0, 0))[k] for i in day) for k in range(3)]
        assert [got["input"], got["cached"], got["output"]] == want
        self.open = {k: v for k, v in self.open.items() if v.expires >= self.now}

    @invariant()
    def no_window_exceeds_a_limit(self) -> None:
        for at, _ in self.charges:
            window = [t for a, t in self.charges if at - 60 < a <= at]
            assert len(window) <= RPM
            assert sum(window) <= TPM
        assert self._live() <= CONC


LedgerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestLedgerMachine = LedgerMachine.TestCase

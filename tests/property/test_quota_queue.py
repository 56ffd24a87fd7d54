"""The store's queue as a state machine against a simple model, on SQLite and on a real Redis.

Requests arrive (interactive or batch, some too big to ever fit), waiters re-check in any
order, give up, or stop re-checking (their entry lapses and comes back, in its place, when
they re-check again); admitted requests settle; time moves by an injected clock (SQLite;
Redis keeps the server's time, so its machine does not move time). The one concurrency
limit that binds is 3 (batch work: 1, the rest is the reserve).

After every step the store agrees with the model: a request is admitted exactly when no
live waiter is ahead of it (every interactive one before any batch one, the earlier one
first within a class) and it fits, so admissions follow FIFO order within a priority and
interactive before batch, and the head is admitted as soon as there is room (it cannot
starve); what never fits is refused at once and takes no place; the store's report of the
queue (counts, the head's class) is the model's.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from kimi_lsp.quota import Limits, Never, SqliteLedger, Wait
from kimi_lsp.quota.ledger import QUEUE_TTL_S
from kimi_lsp.quota.sqlite import LEASE_TTL_S, Admitted

CONC, TPM = 3, 1_000
LIMITS = Limits(concurrency=CONC, rpm=None, tpm=TPM, tpd=None)
RESERVE = 0.34
# Tokens per request: small ones never make TPM bind (at most 40 steps x 5 a minute); 700 is
# more than batch work's share of TPM (660), 1001 more than anyone's.
SIZES = st.sampled_from([1, 2, 5]) | st.sampled_from([700, 1_001])


def cap(limit: int, batch: bool) -> int:
    if not batch or limit <= 1:
        return limit
    return max(1, limit - max(1, math.ceil(limit * RESERVE)))


@dataclass
class Waiting:
    entry: int
    batch: bool
    tokens: int
    expires: float
    gone: bool = False  # admitted or cancelled

    @property
    def order(self) -> tuple[bool, int]:
        return (self.batch, self.entry)


@dataclass
class Lease:
    admitted: Admitted
    expires: float


class QueueMachine(RuleBasedStateMachine):
    waiters = Bundle("waiters")
    leases = Bundle("leases")
    moves_time = True

    def __init__(self) -> None:
        super().__init__()
        self.now = 1_000_000.0
        self.ledger = self.open_ledger()
        self.queue: list[Waiting] = []
        self.open: list[Lease] = []
        self.last_entry = 0

    def open_ledger(self) -> SqliteLedger:
        self.dir = Path(tempfile.mkdtemp(prefix="quota-queue-"))
        return SqliteLedger(self.dir / "quota.sqlite3")

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- the model ------------------------------------------------------------------------

    def live(self) -> list[Waiting]:
        return [w for w in self.queue if not w.gone and w.expires >= self.now]

    def holding(self) -> int:
        return sum(1 for lease in self.open if lease.expires >= self.now)

    def never(self, tokens: int, batch: bool) -> bool:
        return tokens > cap(TPM, batch)

    def ask(self, tokens: int, batch: bool, entry: int | None) -> object:
        return self.ledger.try_admit(
            self.now,
            LIMITS,
            tokens,
            model="m",
            batch=batch,
            reserve=RESERVE,
            entry=entry,
            join=entry is None,
        )

    def admitted(self, outcome: object, order: tuple[bool, float]) -> Lease:
        assert isinstance(outcome, Admitted), outcome
        # FIFO within a priority, interactive before batch: nobody live was ahead of it.
        assert not [w.order for w in self.live() if w.order < order]
        lease = Lease(outcome, self.now + LEASE_TTL_S)
        self.open.append(lease)
        return lease

    # -- rules -----------------------------------------------------------------------------

    @rule(target=waiters, batch=st.booleans(), tokens=SIZES)
    def arrive(self, batch: bool, tokens: int) -> object:
        if tokens == 700 and not batch:
            tokens = 1_001  # an interactive 700 would make TPM bind: not this model's concern
        outcome = self.ask(tokens, batch, None)
        if self.never(tokens, batch):
            assert isinstance(outcome, Never), outcome  # at once, whoever is waiting
            return None
        ahead = [w for w in self.live() if w.order < (batch, math.inf)]
        if not ahead and self.holding() < cap(CONC, batch):
            self.admitted(outcome, (batch, math.inf))
            return None
        assert isinstance(outcome, Wait), outcome
        assert outcome.ahead == len(ahead)
        if not ahead:
            assert outcome.limit == "concurrency"
        assert outcome.entry > self.last_entry  # places are handed out in arrival order
        self.last_entry = outcome.entry
        waiting = Waiting(outcome.entry, batch, tokens, self.now + QUEUE_TTL_S)
        self.queue.append(waiting)
        return waiting

    @rule(target=leases, waiting=waiters)
    def recheck(self, waiting: Waiting | None) -> object:
        if waiting is None or waiting.gone:
            return None
        outcome = self.ask(waiting.tokens, waiting.batch, waiting.entry)
        waiting.expires = self.now + QUEUE_TTL_S  # a re-check keeps (or brings back) its place
        ahead = [w for w in self.live() if w.order < waiting.order]
        if ahead:
            assert isinstance(outcome, Wait), outcome
            assert outcome.ahead == len(ahead)
            return None
        if self.holding() < cap(CONC, waiting.batch):  # the head, with room: admitted now
            waiting.gone = True
            return self.admitted(outcome, waiting.order)
        assert isinstance(outcome, Wait), outcome
        assert (outcome.ahead, outcome.limit) == (0, "concurrency")
        return None

    @rule(waiting=consumes(waiters))
    def give_up(self, waiting: Waiting | None) -> None:
        if waiting is None or waiting.gone:
            return
        self.ledger.leave(waiting.entry)
        waiting.gone = True

    @rule(lease=consumes(leases))
    def settle(self, lease: Lease | None) -> None:
        if lease is None:
            return
        self.ledger.settle(lease.admitted, (1, 0, 1))
        if lease in self.open:  # a lease that lapsed (advance) is gone from the model already
            self.open.remove(lease)

    @precondition(lambda self: self.moves_time)
    @rule(seconds=st.sampled_from([0.5, 2.0, QUEUE_TTL_S + 0.5, LEASE_TTL_S + 1]))
    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.open = [lease for lease in self.open if lease.expires >= self.now]

    # -- what must hold ----------------------------------------------------------------------

    @invariant()
    def the_store_reports_the_models_queue(self) -> None:
        queue = self.ledger.usage(self.now)["queue"]
        live = self.live()
        assert queue["interactive"] == sum(1 for w in live if not w.batch)
        assert queue["batch"] == sum(1 for w in live if w.batch)
        head = min(live, key=lambda w: w.order, default=None)
        assert (queue["head"] is None) == (head is None)
        if head is not None:
            assert queue["head"]["batch"] == head.batch

    @invariant()
    def open_requests_stay_within_the_limit(self) -> None:
        assert self.holding() <= CONC
        assert self.ledger.usage(self.now)["openRequests"] == self.holding()


QueueMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestSqliteQueue = QueueMachine.TestCase


class RedisQueueMachine(QueueMachine):
    moves_time = False  # the server's clock: entries and leases stay live for the test
    url = ""

    def open_ledger(self) -> SqliteLedger:
        from kimi_lsp.quota.redis import RedisLedger

        self.dir = Path(tempfile.mkdtemp(prefix="quota-queue-"))
        ledger = RedisLedger(self.url, prefix="test:queue-machine", lease_ttl=600, queue_ttl=600)
        ledger.client.flushdb()
        return ledger  # type: ignore[return-value]


def test_the_redis_queue_follows_the_model(redis_url: str) -> None:
    RedisQueueMachine.url = redis_url
    run_state_machine_as_test(
        RedisQueueMachine,
        settings=settings(max_examples=40, stateful_step_count=40, deadline=None),
    )

"""``QuotaGovernor``: admission before every request, waiting instead of failing.

``await governor.admit(start, batch=..., on_wait=...)`` returns a ``Ticket`` once the request
fits all four limits (``on_wait(limit, seconds)`` tells the user what it waits for), or raises
``NeverFits`` at once when it never will. ``await ticket.settle(usage)`` ends it (usage None:
failed or cancelled; the admission charge stays, as Kimi counted it). While a ticket is held,
its lease is renewed, so a killed process's lease is freed after a short time.

A request that must wait takes a place in the queue kept in the store, shared by every
process and teammate: interactive requests go before batch ones, first come first served
within each, and no request passes one ahead of it (see ``ledger.ahead_of``). Only this
process's first waiter re-checks the store (its re-check keeps every local entry alive); the
others wait for their turn here, and a cancelled waiter leaves the queue at once. Batch work
never takes the ``reserve`` share of any limit. ``rate_limited(retry_after, limit, stated)``
records a cool-down every process honours; a 429 that states its limit teaches it to every
process at once (``learned.py``), and repeated 429s that state nothing shrink the limits this
account is assumed to have (the configured tier may be wrong). While the concurrency is only
assumed, admission ramps up to it (``learned.ramp``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kimi_lsp.quota.errors import NeverFits
from kimi_lsp.quota.failover import RETRY_S, FailoverLedger
from kimi_lsp.quota.learned import (
    Learned,
    adopt,
    fresh,
    matching_tiers,
    probing,
    ramp,
    shows,
    source,
)
from kimi_lsp.quota.ledger import Never, Wait
from kimi_lsp.quota.limits import NAMES, Limits
from kimi_lsp.quota.sqlite import DB_FILE, SqliteLedger
from kimi_lsp.quota.types import LEASE_TTL_S, Admitted, Ledger, RequestLike, UsageLike

__all__ = ["Admitted", "Ledger", "QuotaGovernor", "RequestLike", "Ticket", "UsageLike"]

MAX_POLL_S = 1.0  # the first waiter re-checks at least this often: others free room, and
# a re-check is the heartbeat that keeps the process's queue entries (QUEUE_TTL_S) alive
SHRINK_AFTER = 3  # 429s within SHRINK_WINDOW_S before the assumed limits shrink
SHRINK_WINDOW_S = 600.0
SHRINK_FACTOR = 0.8
MIN_FACTOR = 0.3


# The ledger's meta keys the limits are planned from (``QuotaGovernor._meta``).
_STATE_KEYS = (
    *(k for n in NAMES for k in (f"learned_{n}", f"learned_{n}_at")),
    "concurrency_proven",
    "concurrency_proven_at",
    "shrink_factor",
)


def _learned(meta: dict[str, float]) -> dict[str, Learned]:
    """The limits Kimi stated, from the ledger's meta (stale ones included)."""
    return {
        name: Learned(int(meta[f"learned_{name}"]), meta.get(f"learned_{name}_at", 0.0))
        for name in NAMES
        if meta.get(f"learned_{name}", 0.0) >= 1
    }


@dataclass
class Ticket:
    """One admitted request. ``settle(usage)`` ends it; as an async context manager it is
    settled on exit if the body did not (a failure or cancellation: Kimi's charge stays)."""

    governor: QuotaGovernor
    admitted: Admitted
    _renew: asyncio.Task[None] | None = None
    settled: bool = False
    probe: bool = False  # admitted on a ramped concurrency: its answer proves what fits

    async def answered(self) -> None:
        """Kimi's answer began: it counted the request at its arrival, some time after our
        admission, so the ledger keeps the charge from now (else a request admitted as this
        one ages out here could reach Kimi before it ages out there, and get a 429)."""
        if not self.settled:
            now = self.governor.clock()
            at_kimi = await asyncio.to_thread(self.governor.ledger.answered, self.admitted, now)
            if self.probe and at_kimi is not None:  # Kimi took it with these open: they fit
                await asyncio.to_thread(self.governor.proved, at_kimi, now)

    def _end(self) -> bool:
        """Stop the heartbeat; False if the ticket had already ended."""
        if self.settled:
            return False
        self.settled = True
        if self._renew is not None:
            self._renew.cancel()
        return True

    async def settle(self, usage: UsageLike | None) -> None:
        if not self._end():
            return
        actual = (
            None
            if usage is None
            else (usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens)
        )
        await asyncio.to_thread(self.governor.ledger.settle, self.admitted, actual)

    async def refused(self) -> None:
        """Kimi turned the request away (a 429): it counted nothing, so neither does the ledger."""
        if self._end():
            await asyncio.to_thread(self.governor.ledger.refund, self.admitted)

    async def __aenter__(self) -> Ticket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.shield(self.settle(None))  # a cancelled body still frees its lease


@dataclass(eq=False)
class _Waiter:
    """One of this process's waiting requests, at its place in the store's queue."""

    batch: bool
    entry: int
    turn: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def order(self) -> tuple[bool, int]:
        return (self.batch, self.entry)


class QuotaGovernor:
    def __init__(
        self,
        ledger: Ledger,
        limits: Limits,
        *,
        reserve: float = 0.1,
        fallback: str = "",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        renew_every: float = LEASE_TTL_S / 3,
    ) -> None:
        self.ledger, self.configured, self.reserve = ledger, limits, reserve
        self._fallback = fallback
        self.clock, self.sleep = clock, sleep
        # Real seconds between lease heartbeats (a time-scaled clock needs them more often).
        self.renew_every = renew_every
        self._queue: list[_Waiter] = []  # this process's waiters
        self.waiting = 0
        self.last_wait: str = ""

    @classmethod
    def in_state_dir(cls, state_dir: Path, limits: Limits, **kw: Any) -> QuotaGovernor:
        return cls(SqliteLedger(Path(state_dir) / DB_FILE), limits, **kw)

    @classmethod
    def from_setting(
        cls, store: str, state_dir: Path, limits: Limits, *, retry_s: float = RETRY_S, **kw: Any
    ) -> QuotaGovernor:
        """``sqlite``, or a ``redis://`` URL. While Redis cannot be reached (at start or
        later) the local ledger stands in with a share of the limits, the snapshot says so,
        and Redis is tried again every ``retry_s`` seconds (``failover.py``)."""
        if store == "sqlite":
            return cls.in_state_dir(state_dir, limits, **kw)
        from kimi_lsp.quota.redis import STORE_ERRORS, RedisLedger

        ledger = FailoverLedger(
            lambda: RedisLedger(store),
            lambda: SqliteLedger(Path(state_dir) / DB_FILE),
            name=f"Redis at {store}",
            errors=STORE_ERRORS,
            retry_s=retry_s,
        )
        return cls(ledger, limits, **kw)

    @property
    def fallback(self) -> str:
        """Why a local ledger stands in for the configured one ("" when it does not)."""
        return getattr(self.ledger, "fallback", "") or self._fallback

    @property
    def limits(self) -> Limits:
        """The limits to plan with: the configured ones, with what Kimi stated in place of
        the assumed values, shrunk after 429s that stated nothing (``learned.adopt``)."""
        meta = self._meta()
        return self._adopted(meta, _learned(meta), self.clock())

    def _meta(self) -> dict[str, float]:
        """What the shared ledger holds about the limits, in one read (one round trip to a
        team's Redis, on every admission attempt)."""
        return self.ledger.metas(_STATE_KEYS)

    def _adopted(self, meta: dict[str, float], learned: dict[str, Learned], now: float) -> Limits:
        return adopt(
            self.configured,
            learned,
            now,
            shrink=meta.get("shrink_factor", 1.0),
            share=getattr(self.ledger, "share", 1.0),
        )

    def learned(self) -> dict[str, Learned]:
        """The limits Kimi stated, from the shared ledger (stale ones included)."""
        return _learned(self._meta())

    def proven(self, now: float, meta: dict[str, float] | None = None) -> int:
        """The most requests seen open together when one of them was answered (for a day)."""
        meta = self._meta() if meta is None else meta
        said = Learned(
            int(meta.get("concurrency_proven", 0.0)), meta.get("concurrency_proven_at", 0.0)
        )
        found = fresh(said, now)
        return 0 if found is None else found.value

    def proved(self, open_requests: int, now: float) -> None:
        """Kimi answered a request with ``open_requests`` it had answered open: that many fit
        (a worker thread)."""
        if open_requests >= max(1, self.proven(now)):  # the same again keeps it for a day
            self.ledger.set_meta("concurrency_proven_at", now)
            self.ledger.set_meta("concurrency_proven", float(open_requests))

    def _attempt_limits(self, now: float, batch: bool) -> tuple[Limits, int | None]:
        """The limits one admission is decided against, and, when the concurrency in them is
        ramped (it is only assumed, and not yet proven up to the assumed value), how many
        requests are proven to fit: one more is a probe (``ledger.decide``'s ``probe_above``)."""
        meta = self._meta()
        learned = _learned(meta)
        limits = self._adopted(meta, learned, now)
        if not probing(self.configured, learned, now):
            return limits, None
        proven = self.proven(now, meta)
        if limits.concurrency is not None and proven >= limits.concurrency:
            return limits, None
        conc = ramp(limits.concurrency, proven, batch=batch, reserve=self.reserve)
        return replace(limits, concurrency=conc), proven

    async def admit(
        self,
        start: RequestLike,
        *,
        batch: bool = False,
        on_wait: Callable[[str, float], None] | None = None,
    ) -> Ticket:
        tokens = start.input_tokens + start.max_completion_tokens
        me: _Waiter | None = None
        queued = False  # in the store's queue (admission and refusal take it out)
        self.waiting += 1
        try:
            outcome, probed = await self._try(tokens, start.model, batch, None)
            while True:
                if isinstance(outcome, Admitted):
                    queued = False
                    ticket = Ticket(self, outcome, probe=probed)
                    ticket._renew = asyncio.ensure_future(self._keep_alive(outcome))
                    return ticket
                if isinstance(outcome, Never):
                    queued = False
                    raise NeverFits(outcome.reason)
                assert isinstance(outcome, Wait)
                if me is None:
                    me, queued = _Waiter(batch, outcome.entry), True
                    self._queue.append(me)
                self.last_wait = outcome.limit
                if on_wait is not None:
                    on_wait(outcome.limit, outcome.seconds)
                if self._front() is me:
                    await self.sleep(min(max(outcome.seconds, 0.01), MAX_POLL_S))
                while self._front() is not me:  # only the first local waiter re-checks
                    me.turn.clear()
                    await me.turn.wait()
                outcome, probed = await self._try(tokens, start.model, batch, me)
        finally:
            self.waiting -= 1
            if me is not None:
                self._queue.remove(me)
                try:
                    if queued:  # cancelled: the ones behind move up
                        await asyncio.shield(asyncio.to_thread(self.ledger.leave, me.entry))
                finally:
                    front = self._front()
                    if front is not None:
                        front.turn.set()

    def _front(self) -> _Waiter | None:
        return min(self._queue, key=lambda w: w.order, default=None)

    async def _try(
        self, tokens: int, model: str, batch: bool, me: _Waiter | None
    ) -> tuple[object, bool]:
        """One admission attempt in the store; its re-check keeps the local entries alive.
        Also whether it was decided on a ramped concurrency (``learned.ramp``)."""
        keep = [w.entry for w in self._queue if w is not me]
        probed = False

        def attempt() -> object:
            nonlocal probed
            now = self.clock()
            limits, proven = self._attempt_limits(now, batch)
            probed = proven is not None
            return self.ledger.try_admit(
                now,
                limits,
                tokens,
                model=model,
                batch=batch,
                reserve=self.reserve,
                entry=None if me is None else me.entry,
                join=True,
                keep=keep,
                probe_above=proven,
            )

        job = asyncio.ensure_future(asyncio.to_thread(attempt))
        try:
            return await asyncio.shield(job), probed
        except asyncio.CancelledError:
            outcome = await job  # the store may have admitted it (or queued it) meanwhile
            if isinstance(outcome, Admitted):
                await asyncio.to_thread(self.ledger.settle, outcome, None)
            elif isinstance(outcome, Wait) and outcome.entry and me is None:
                await asyncio.to_thread(self.ledger.leave, outcome.entry)
            raise

    async def _keep_alive(self, admitted: Admitted) -> None:
        while True:
            await asyncio.sleep(self.renew_every)
            await asyncio.to_thread(self.ledger.renew, admitted.lease_id, self.clock())

    async def rate_limited(
        self, retry_after: float | None, limit: str | None, stated: int | None = None
    ) -> None:
        """Kimi said 429: every process backs off. A 429 that states its limit (``limit`` one
        of concurrency/rpm/tpm/tpd, ``stated`` its value) teaches it to every process;
        repeated ones that state nothing shrink the assumed limits."""
        now = self.clock()
        seconds = retry_after if retry_after is not None else 5.0
        await asyncio.to_thread(self.ledger.cool_down, seconds, now)
        if stated is not None and stated >= 1 and limit in NAMES:
            await asyncio.to_thread(self.learn, limit, stated, now)
            return
        recent = [
            t
            for t in (self.ledger.get_meta(f"429_{i}") for i in range(SHRINK_AFTER))
            if t > now - SHRINK_WINDOW_S
        ]
        await asyncio.to_thread(self.ledger.set_meta, f"429_{len(recent) % SHRINK_AFTER}", now)
        if len(recent) + 1 >= SHRINK_AFTER:
            factor = max(MIN_FACTOR, self.ledger.get_meta("shrink_factor", 1.0) * SHRINK_FACTOR)
            await asyncio.to_thread(self.ledger.set_meta, "shrink_factor", factor)
            for i in range(SHRINK_AFTER):
                await asyncio.to_thread(self.ledger.set_meta, f"429_{i}", 0.0)

    def learn(self, name: str, value: int, now: float) -> None:
        """Kimi stated ``name``'s value: the shared ledger keeps it, with when (a later
        statement replaces it, higher or lower). A worker thread."""
        self.ledger.set_meta(f"learned_{name}_at", now)
        self.ledger.set_meta(f"learned_{name}", float(value))

    def snapshot(self) -> dict[str, Any]:
        meta = self._meta()
        factor = meta.get("shrink_factor", 1.0)
        now = self.clock()
        learned = _learned(meta)
        limits = self._adopted(meta, learned, now)
        current = {n: v for n, v in learned.items() if fresh(v, now) is not None}
        return {
            "limits": {
                "concurrency": limits.concurrency,
                "rpm": limits.rpm,
                "tpm": limits.tpm,
                "tpd": limits.tpd,
            },
            # where each limit comes from: the tier table, the user's setting, or Kimi's 429
            "sources": {n: source(self.configured, learned, now, n, shows) for n in NAMES},
            "learned": {
                n: {"value": v.value, "at": v.at, "atText": shows(v.at)} for n, v in current.items()
            },
            "matchingTiers": matching_tiers(learned, now),
            "tier": self.configured.tier,
            "tierAssumed": self.configured.assumed,
            "concurrencyProven": self.proven(now, meta)
            if probing(self.configured, learned, now)
            else None,
            "shrunk": factor < 1.0,
            "fallback": self.fallback,
            "shrinkFactor": round(factor, 3),
            "reserve": self.reserve,  # the share of each limit batch work leaves to interactive
            "waiting": self.waiting,  # this process's; "queue" has every process's
            "waitingFor": self.last_wait if self.waiting else "",
            **self.ledger.usage(self.clock()),
        }

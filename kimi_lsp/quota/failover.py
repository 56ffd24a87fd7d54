"""A team's store while it answers, this machine's while it does not, and back again.

``FailoverLedger`` stands where ``QuotaGovernor`` expects a ledger. It uses the configured
store (Redis) while it answers; when it cannot be reached — at start, or in the middle of a
session — it says why in ``fallback``, admits through a local ledger with a conservative
``share`` of the limits, and tries the configured store again every ``retry_s`` seconds. A
request goes on with the store that admitted it: settling one whose store went away loses
nothing that matters (its lease expires there by itself), and a queue place in the store that
went away is taken anew in the other.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from kimi_lsp.quota.ledger import Wait
from kimi_lsp.quota.limits import Limits
from kimi_lsp.quota.types import Admitted, Ledger

log = logging.getLogger(__name__)

LOCAL_SHARE = 0.5  # of each limit, while the team's store cannot say what teammates use
RETRY_S = 30.0


class FailoverLedger:
    def __init__(
        self,
        connect: Callable[[], Ledger],
        local: Callable[[], Ledger],
        *,
        name: str,
        errors: tuple[type[BaseException], ...],
        retry_s: float = RETRY_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect, self._make_local = connect, local
        self.name, self.errors, self.retry_s = name, errors, retry_s
        self._monotonic = monotonic
        self._lock = threading.RLock()  # admissions run in worker threads
        self.primary: Ledger | None = None
        self._local: Ledger | None = None
        self.fallback = ""  # why the local ledger stands in; "" while the store answers
        self._retry_at = 0.0
        # Queue places, named by this wrapper (stores number theirs alike): ours -> (the
        # store's generation, its entry). A place in a store that went away is taken anew.
        self._places: dict[int, tuple[int, int]] = {}
        self._generation = 0
        self._owner: dict[Admitted, Ledger] = {}  # the store that admitted each open request
        self._reconnect()

    @property
    def share(self) -> float:
        """The part of the account's limits this process may plan with now."""
        return LOCAL_SHARE if self.fallback else 1.0

    def _local_ledger(self) -> Ledger:
        with self._lock:
            if self._local is None:
                self._local = self._make_local()
            return self._local

    def _reconnect(self) -> None:
        try:
            primary = self._connect()  # no lock held: connecting may take seconds
        except self.errors as exc:
            self._down(exc, None)
            return
        with self._lock:
            if self.fallback:
                log.warning("quota: %s answers again; using it", self.name)
            self.primary, self.fallback = primary, ""
            self._generation += 1

    def _down(self, exc: BaseException, ledger: Ledger | None) -> None:
        """The store (``ledger``, or the one a reconnection tried) does not answer."""
        with self._lock:
            if ledger is not self.primary:
                return  # another thread saw it first, or it was already replaced
            if not self.fallback:
                log.warning("quota: %s is unreachable (%s); using a local share", self.name, exc)
            self.primary = None
            self.fallback = f"{self.name} is unreachable ({exc}); using a local share of the limits"
            self._retry_at = self._monotonic() + self.retry_s
            self._generation += 1

    def _current(self, reconnect: bool = False) -> tuple[Ledger, bool]:
        """The store to use, and whether it is the configured one. Only admission tries the
        configured store again (a worker thread; status reads run on the event loop)."""
        if reconnect and self.fallback and self._monotonic() >= self._retry_at:
            with self._lock:
                self._retry_at = self._monotonic() + self.retry_s  # one try a period
            self._reconnect()
        primary = self.primary
        return (primary, True) if primary is not None else (self._local_ledger(), False)

    def _on_current(self, call: Callable[[Ledger, bool], Any], reconnect: bool = False) -> Any:
        """``call(ledger, switched)`` on the current store; if that is the configured one and
        it fails, on the local one (``switched``: the limits the caller sized are too big).
        No lock is held while a store works: a store that does not answer takes seconds."""
        ledger, configured = self._current(reconnect)
        if not configured:
            return call(ledger, False)
        try:
            return call(ledger, False)
        except self.errors as exc:
            self._down(exc, ledger)
            return call(self._local_ledger(), True)

    def _quietly(self, ledger: Ledger | None, call: Callable[[Ledger], None]) -> None:
        """Bookkeeping for a request already admitted: its store may be gone; that is fine."""
        if ledger is None:
            return
        try:
            call(ledger)
        except self.errors as exc:
            self._down(exc, ledger)

    def try_admit(
        self,
        now: float,
        limits: Limits,
        tokens: int,
        *,
        model: str,
        batch: bool,
        reserve: float,
        entry: int | None = None,
        join: bool = False,
        keep: Sequence[int] = (),
        probe_above: int | None = None,
    ) -> object:
        def attempt(ledger: Ledger, switched: bool) -> object:
            with self._lock:
                generation = self._generation  # of the store ``ledger`` is
                mine = self._in_store(entry)
                others = [e for e in map(self._in_store, keep) if e is not None]
            outcome = ledger.try_admit(
                now,
                limits.scaled(LOCAL_SHARE) if switched else limits,
                tokens,
                model=model,
                batch=batch,
                reserve=reserve,
                entry=mine,
                join=join,
                keep=others,
                probe_above=probe_above,
            )
            with self._lock:
                if isinstance(outcome, Wait) and outcome.entry:
                    # A new place is numbered after the store's entry, so this process's
                    # waiters keep the store's order. Numbered by arrival here instead, two
                    # admissions racing in worker threads could swap places, and the local
                    # first waiter (the only one that re-checks) would stand for ever behind
                    # one that never re-checks. (Unique: a store's entries are, and each
                    # generation of the store has its own high bits.)
                    place = entry if entry is not None else (generation << 32) + outcome.entry
                    self._places[place] = (generation, outcome.entry)
                    return dataclasses.replace(outcome, entry=place)
                if isinstance(outcome, Admitted):
                    if entry is not None:
                        self._places.pop(entry, None)
                    self._owner[outcome] = ledger
            return outcome

        return self._on_current(attempt, reconnect=True)

    def _in_store(self, place: int | None) -> int | None:
        """The current store's entry for one of our queue places (None: it has none)."""
        found = self._places.get(place) if place is not None else None
        if found is None or found[0] != self._generation:
            return None
        return found[1]

    def leave(self, entry: int) -> None:
        with self._lock:
            held = self._in_store(entry)
            self._places.pop(entry, None)
        if held is None:
            return  # a place in a store that went away
        ledger, _ = self._current()
        self._quietly(ledger, lambda led: led.leave(held))

    def renew(self, lease_id: int, now: float) -> None:
        with self._lock:  # two stores may both have given this number to a request of ours
            owners = [led for held, led in self._owner.items() if held.lease_id == lease_id]
        for ledger in owners:
            self._quietly(ledger, lambda led: led.renew(lease_id, now))

    def answered(self, admitted: Admitted, now: float) -> int | None:
        ledger = self._owner.get(admitted)
        if ledger is None:
            return None
        try:
            return ledger.answered(admitted, now)
        except self.errors as exc:
            self._down(exc, ledger)
            return None

    def settle(self, admitted: Admitted, actual: tuple[int, int, int] | None) -> None:
        with self._lock:
            ledger = self._owner.pop(admitted, None)
        self._quietly(ledger, lambda led: led.settle(admitted, actual))

    def refund(self, admitted: Admitted) -> None:
        with self._lock:
            ledger = self._owner.pop(admitted, None)
        self._quietly(ledger, lambda led: led.refund(admitted))

    def cool_down(self, seconds: float, now: float) -> None:
        self._on_current(lambda led, _: led.cool_down(seconds, now))

    def set_meta(self, key: str, value: float) -> None:
        self._on_current(lambda led, _: led.set_meta(key, value))

    def get_meta(self, key: str, default: float = 0.0) -> float:
        return float(self._on_current(lambda led, _: led.get_meta(key, default)))

    def metas(self, keys: Sequence[str]) -> dict[str, float]:
        return dict(self._on_current(lambda led, _: led.metas(keys)))

    def usage(self, now: float) -> dict[str, Any]:
        return dict(self._on_current(lambda led, _: led.usage(now)))

"""The admission rule, as pure arithmetic over what was admitted recently.

Kimi admits a request when all four account limits hold: open requests < concurrency,
requests in the last minute < RPM, and the tokens *charged at admission* (input + the
requested ``max_completion_tokens``, kimi-api.md §6) in the last minute and the last day stay
within TPM and TPD. The ledger keeps exactly those charges (a sliding log, not an estimate),
so "admitted never exceeds a limit in any window" holds by construction and the wait until a
request fits can be computed exactly. A charge counts against RPM and TPM for a minute plus
``ARRIVAL_MARGIN_S``: Kimi starts its minute when the request arrives, a little after the
ledger admitted it.

Each limit keeps a reserve for interactive work (``set_aside``: the ``reserve`` share, at
least one unit; nothing of a limit of 1), and interactive usage draws from it first. So an
interactive request fits when ``used + request <= limit``, and a batch request when
``batch_used + max(interactive_used, set_aside) + request <= limit`` (``*_used``: what the
window holds of each class). While interactive work uses less than the reserve, batch work
stays within ``limit - set_aside`` and interactive requests find room; what interactive work
already uses of the reserve, batch work may use besides. A request that can never fit (more
tokens than TPM, or than batch work's share of it; the day's tokens spent) is refused at once
rather than queued.

Requests that must wait stand in one queue kept in the store itself, shared by every process:
a request is admitted only when no live waiter is ahead of it (every interactive waiter is
ahead of all batch work; within a class, the earlier entry goes first), so the head of the
queue is never passed and cannot starve. ``ahead_of`` and ``queue_wait`` are that rule;
the stores apply it in the same transaction (or Lua script) as the admission.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from kimi_lsp.quota.limits import Limits

MINUTE = 60.0
# Kimi counts a request in its minute from when the request arrives, which is after the ledger
# admitted it (the write, the connection, the upload): a charge holds its place this much
# longer, or a request admitted as the oldest ages out here can reach Kimi before it has there.
ARRIVAL_MARGIN_S = 2.0
HELD = MINUTE + ARRIVAL_MARGIN_S  # how long a charge counts against RPM and TPM here
DAY = 86_400.0
CONCURRENCY_RECHECK_S = 0.25  # a lease ends when an answer does: poll, nothing to compute
QUEUE_RECHECK_S = 0.25  # a waiter behind the head re-checks at least this often
QUEUE_TTL_S = 5.0  # a waiter's entry lapses unless it re-checks (a killed process's vanishes)


@dataclass(frozen=True)
class Charge:
    at: float
    tokens: int
    batch: bool = False


@dataclass(frozen=True)
class Window:
    """What the ledger holds at ``now``: open leases and the charges of the last day."""

    open_leases: int  # all of them; ``batch_leases`` of these are batch work's
    charges: Sequence[Charge]  # sorted by time, oldest first, all within the last day
    batch_leases: int = 0


@dataclass(frozen=True)
class Admit:
    pass


@dataclass(frozen=True)
class Wait:
    seconds: float
    limit: str  # "concurrency" | "requests-per-minute" | "tokens-per-minute" | "cool-down"
    # | "N requests ahead in the queue"
    entry: int = 0  # the request's place in the store's queue (0: it did not join)
    ahead: int = 0  # live waiters that go first


@dataclass(frozen=True)
class Never:
    reason: str


Decision = Admit | Wait | Never


@dataclass(frozen=True)
class Waiter:
    """One live entry of the store's queue."""

    entry: int  # ids only grow, so they are the order of arrival across every process
    batch: bool
    enqueued: float
    waiting_for: str = ""  # what it waited for when it last re-checked at the head
    until: float = 0.0  # and until when

    @property
    def order(self) -> tuple[bool, int]:
        return (self.batch, self.entry)


def ahead_of(queue: Sequence[Waiter], batch: bool, entry: int | None) -> list[Waiter]:
    """The live waiters that go before this request: every interactive one before batch
    work, and within its class every earlier one (a newcomer, ``entry`` None: all of them)."""
    me = (batch, entry if entry is not None else math.inf)
    return [w for w in queue if w.entry != entry and w.order < me]


def queue_wait(now: float, ahead: Sequence[Waiter]) -> Wait:
    """Waiting behind others: for at least as long as the head says it waits."""
    head = min(ahead, key=lambda w: w.order)
    n = len(ahead)
    what = f"{n} request{'' if n == 1 else 's'} ahead in the queue"
    return Wait(max(QUEUE_RECHECK_S, head.until - now), what, ahead=n)


def queue_report(now: float, queue: Sequence[Waiter]) -> dict[str, object]:
    """The queue as ``kimi-lsp quota`` and ``kimi/status`` show it (every process's waiters)."""
    head = min(queue, key=lambda w: w.order) if queue else None
    return {
        "interactive": sum(1 for w in queue if not w.batch),
        "batch": sum(1 for w in queue if w.batch),
        "head": None
        if head is None
        else {
            "batch": head.batch,
            "waitingFor": head.waiting_for,
            "seconds": round(max(0.0, head.until - now), 3),
            "waitedSeconds": round(max(0.0, now - head.enqueued), 3),
        },
    }


def never_tpm(tokens: int, tpm: int) -> Never:
    return Never(
        f"this request needs {tokens} tokens at admission (input + max output), more "
        f"than the account's tokens-per-minute limit ({tpm}). Select less code, "
        "or raise KIMI_LSP_TIER / KIMI_LSP_LIMITS if your tier is higher."
    )


def never_tpd(tpd: int, spent: int) -> Never:
    return Never(
        f"the account's tokens-per-day limit ({tpd}) is spent ({spent} used in "
        "the last 24 hours). It frees up as the day's requests age out; a higher "
        "tier has no daily limit."
    )


def never_batch_tpm(tokens: int, tpm: int, share: int) -> Never:
    return Never(
        f"this batch request needs {tokens} tokens at admission (input + max output), more "
        f"than batch work may use of the account's tokens-per-minute limit ({share} of "
        f"{tpm}; the rest is kept for interactive work). Refactor fewer or smaller files "
        "at a time, or lower KIMI_LSP_QUOTA_RESERVE."
    )


def never_batch_tpd(tpd: int, share: int, spent: int) -> Never:
    return Never(
        f"batch work may use {share} of the account's tokens-per-day limit ({tpd}) now, and "
        f"it used {spent} in the last 24 hours; the rest is kept for (or used by) interactive "
        "work. It frees up as the day's requests age out; a higher tier has no daily limit."
    )


def set_aside(limit: int | None, reserve: float) -> int:
    """The part of a limit kept for interactive work: the ``reserve`` share, at least one
    unit, leaving batch work at least one; nothing of a limit of 1 (or no limit)."""
    if limit is None or limit <= 1 or reserve <= 0:
        return 0
    return min(limit - 1, max(1, math.ceil(limit * reserve)))


def cap(limit: int | None, batch: bool, reserve: float) -> int | None:
    """The most a request's class may ever use of a limit: batch work never gets the part
    set aside for interactive work."""
    if limit is None or not batch:
        return limit
    return limit - set_aside(limit, reserve)


def fits(limit: int, aside: int, batch_used: int, interactive_used: int, request: int) -> bool:
    """Interactive usage draws from the set-aside first; batch work gets what is beyond
    both (``aside`` 0: the request is interactive, and only the total counts)."""
    return batch_used + max(interactive_used, aside) + request <= limit


def until_fits(
    now: float, limit: int, aside: int, held: Sequence[tuple[float, bool, int]], request: int
) -> float | None:
    """None if the request fits the window's ``held`` (time, batch, amount; oldest first);
    else how long until enough has aged out (nothing new arriving): exact, since usage only
    falls as charges age out and ``fits`` only grows as it does."""
    b = sum(n for _, batch, n in held if batch)
    i = sum(n for _, batch, n in held if not batch)
    if fits(limit, aside, b, i, request):
        return None
    for at, batch, n in held:
        if batch:
            b -= n
        else:
            i -= n
        if fits(limit, aside, b, i, request):
            return at + HELD - now
    return HELD  # cannot happen: ``never`` refused what does not fit an empty window


def never(
    now: float, limits: Limits, window: Window, tokens: int, *, batch: bool, reserve: float
) -> Never | None:
    """Why this request can never be admitted, or None: it is too big for TPM (for batch
    work, for its share of TPM), or the day's tokens (batch work: its share) are spent."""
    if limits.tpm is not None:
        if tokens > limits.tpm:
            return never_tpm(tokens, limits.tpm)
        tpm = limits.tpm - set_aside(limits.tpm, reserve)
        if batch and tokens > tpm:
            return never_batch_tpm(tokens, limits.tpm, tpm)
    if limits.tpd is not None:
        day = [c for c in window.charges if c.at > now - DAY]
        spent = sum(c.tokens for c in day)
        if spent + tokens > limits.tpd:
            return never_tpd(limits.tpd, spent)
        if batch:
            b = sum(c.tokens for c in day if c.batch)
            aside = set_aside(limits.tpd, reserve)
            if not fits(limits.tpd, aside, b, spent - b, tokens):
                return never_batch_tpd(limits.tpd, limits.tpd - max(spent - b, aside), b)
    return None


def decide(
    now: float,
    limits: Limits,
    window: Window,
    tokens: int,
    *,
    batch: bool = False,
    reserve: float = 0.1,
    cooldown_until: float = 0.0,
) -> Decision:
    refused = never(now, limits, window, tokens, batch=batch, reserve=reserve)
    if refused is not None:
        return refused
    if cooldown_until > now:
        return Wait(cooldown_until - now, "cool-down")

    def aside(limit: int) -> int:  # an interactive request only needs the total to fit
        return set_aside(limit, reserve) if batch else 0

    if limits.concurrency is not None:
        b = window.batch_leases
        if not fits(limits.concurrency, aside(limits.concurrency), b, window.open_leases - b, 1):
            return Wait(CONCURRENCY_RECHECK_S, "concurrency")
    minute = [c for c in window.charges if c.at > now - HELD]
    if limits.rpm is not None:
        held = [(c.at, c.batch, 1) for c in minute]
        seconds = until_fits(now, limits.rpm, aside(limits.rpm), held, 1)
        if seconds is not None:
            return Wait(seconds, "requests-per-minute")
    if limits.tpm is not None:
        held = [(c.at, c.batch, c.tokens) for c in minute]
        seconds = until_fits(now, limits.tpm, aside(limits.tpm), held, tokens)
        if seconds is not None:
            return Wait(seconds, "tokens-per-minute")
    return Admit()

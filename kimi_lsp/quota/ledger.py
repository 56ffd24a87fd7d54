"""The admission rule, as pure arithmetic over what was admitted recently.

Kimi admits a request when all four account limits hold: open requests < concurrency,
requests in the last minute < RPM, and the tokens *charged at admission* (input + the
requested ``max_completion_tokens``, kimi-api.md §6) in the last minute and the last day stay
within TPM and TPD. The ledger keeps exactly those charges (a sliding log, not an estimate),
so "admitted never exceeds a limit in any window" holds by construction and the wait until a
request fits can be computed exactly.

Batch work keeps a reserve: it may not use the last ``reserve`` share of any limit, so
interactive requests always find room (with a concurrency of 1 there is nothing to share).
A request that can never fit (more tokens than its share of TPM, or the day's share spent)
is refused at once rather than queued.

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
DAY = 86_400.0
CONCURRENCY_RECHECK_S = 0.25  # a lease ends when an answer does: poll, nothing to compute
QUEUE_RECHECK_S = 0.25  # a waiter behind the head re-checks at least this often
QUEUE_TTL_S = 5.0  # a waiter's entry lapses unless it re-checks (a killed process's vanishes)


@dataclass(frozen=True)
class Charge:
    at: float
    tokens: int


@dataclass(frozen=True)
class Window:
    """What the ledger holds at ``now``: open leases and the charges of the last day."""

    open_leases: int
    charges: Sequence[Charge]  # sorted by time, oldest first, all within the last day
    unanswered: int = 0  # open leases Kimi has not begun to answer: still on their way


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
        f"batch work may use {share} of the account's tokens-per-day limit ({tpd}), and "
        f"{spent} were used in the last 24 hours; the rest is kept for interactive work. "
        "It frees up as the day's requests age out; a higher tier has no daily limit."
    )


def cap(limit: int | None, batch: bool, reserve: float) -> int | None:
    """What a request may use of a limit: batch work leaves the last ``reserve`` share (at
    least one unit) to interactive work, except of a limit of 1."""
    if limit is None:
        return None
    if not batch or limit <= 1 or reserve <= 0:
        return limit
    return max(1, limit - max(1, math.ceil(limit * reserve)))


def never(
    now: float, limits: Limits, window: Window, tokens: int, *, batch: bool, reserve: float
) -> Never | None:
    """Why this request can never be admitted, or None: it is too big for TPM (for batch
    work, for its share of TPM), or the day's tokens (batch work: its share) are spent."""
    if limits.tpm is not None and tokens > limits.tpm:
        return never_tpm(tokens, limits.tpm)
    tpm = cap(limits.tpm, batch, reserve)
    if limits.tpm is not None and tpm is not None and tokens > tpm:
        return never_batch_tpm(tokens, limits.tpm, tpm)
    if limits.tpd is not None:
        spent = sum(c.tokens for c in window.charges if c.at > now - DAY)
        if spent + tokens > limits.tpd:
            return never_tpd(limits.tpd, spent)
        tpd = cap(limits.tpd, batch, reserve)
        if tpd is not None and spent + tokens > tpd:
            return never_batch_tpd(limits.tpd, tpd, spent)
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
    probe_above: int | None = None,
) -> Decision:
    """Whether the request fits now. ``probe_above``: while the concurrency is only assumed,
    the most requests Kimi was seen to take at once (``learned``); one that would open more
    is a probe, sent only when every open request has been answered, so that it is the only
    one Kimi can turn away before its 429 teaches the limit."""
    refused = never(now, limits, window, tokens, batch=batch, reserve=reserve)
    if refused is not None:
        return refused
    day = [c for c in window.charges if c.at > now - DAY]
    if cooldown_until > now:
        return Wait(cooldown_until - now, "cool-down")
    concurrency = cap(limits.concurrency, batch, reserve)
    if concurrency is not None and window.open_leases >= concurrency:
        return Wait(CONCURRENCY_RECHECK_S, "concurrency")
    if probe_above is not None and window.open_leases >= probe_above and window.unanswered:
        return Wait(CONCURRENCY_RECHECK_S, "concurrency")
    minute = [c for c in day if c.at > now - MINUTE]
    rpm = cap(limits.rpm, batch, reserve)
    if rpm is not None and len(minute) >= rpm:
        oldest = minute[len(minute) - rpm]
        return Wait(oldest.at + MINUTE - now, "requests-per-minute")
    tpm = cap(limits.tpm, batch, reserve)
    if tpm is not None:
        used = sum(c.tokens for c in minute)
        if used + tokens > tpm:
            for c in minute:  # oldest first: once enough have aged out, it fits
                used -= c.tokens
                if used + tokens <= tpm:
                    return Wait(c.at + MINUTE - now, "tokens-per-minute")
    return Admit()

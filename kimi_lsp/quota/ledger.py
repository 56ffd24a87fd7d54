"""The admission rule, as pure arithmetic over what was admitted recently.

Kimi admits a request when all four account limits hold: open requests < concurrency,
requests in the last minute < RPM, and the tokens *charged at admission* (input + the
requested ``max_completion_tokens``, kimi-api.md §6) in the last minute and the last day stay
within TPM and TPD. The ledger keeps exactly those charges (a sliding log, not an estimate),
so "admitted never exceeds a limit in any window" holds by construction and the wait until a
request fits can be computed exactly.

Batch work keeps a reserve: it may not use the last ``reserve`` share of any limit, so
interactive requests always find room (with a concurrency of 1 there is nothing to share).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from kimi_lsp.quota.limits import Limits

MINUTE = 60.0
DAY = 86_400.0
CONCURRENCY_RECHECK_S = 0.25  # a lease ends when an answer does: poll, nothing to compute


@dataclass(frozen=True)
class Charge:
    at: float
    tokens: int


@dataclass(frozen=True)
class Window:
    """What the ledger holds at ``now``: open leases and the charges of the last day."""

    open_leases: int
    charges: Sequence[Charge]  # sorted by time, oldest first, all within the last day


@dataclass(frozen=True)
class Admit:
    pass


@dataclass(frozen=True)
class Wait:
    seconds: float
    limit: str  # "concurrency" | "requests-per-minute" | "tokens-per-minute" | "cool-down"


@dataclass(frozen=True)
class Never:
    reason: str


Decision = Admit | Wait | Never


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


def _cap(limit: int | None, batch: bool, reserve: float) -> int | None:
    if limit is None:
        return None
    if not batch or limit <= 1:
        return limit
    return max(1, limit - max(1, math.ceil(limit * reserve)))


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
    if limits.tpm is not None and tokens > limits.tpm:
        return never_tpm(tokens, limits.tpm)
    day = [c for c in window.charges if c.at > now - DAY]
    if limits.tpd is not None:
        spent = sum(c.tokens for c in day)
        if spent + tokens > limits.tpd:
            return never_tpd(limits.tpd, spent)
    if cooldown_until > now:
        return Wait(cooldown_until - now, "cool-down")
    concurrency = _cap(limits.concurrency, batch, reserve)
    if concurrency is not None and window.open_leases >= concurrency:
        return Wait(CONCURRENCY_RECHECK_S, "concurrency")
    minute = [c for c in day if c.at > now - MINUTE]
    rpm = _cap(limits.rpm, batch, reserve)
    if rpm is not None and len(minute) >= rpm:
        oldest = minute[len(minute) - rpm]
        return Wait(oldest.at + MINUTE - now, "requests-per-minute")
    tpm = _cap(limits.tpm, batch, reserve)
    if tpm is not None:
        used = sum(c.tokens for c in minute)
        if used + tokens > tpm:
            if tokens > tpm:  # bigger than batch's share: only interactive work may send it
                return Wait(MINUTE, "tokens-per-minute (the rest is kept for interactive work)")
            for c in minute:  # oldest first: once enough have aged out, it fits
                used -= c.tokens
                if used + tokens <= tpm:
                    return Wait(c.at + MINUTE - now, "tokens-per-minute")
    return Admit()

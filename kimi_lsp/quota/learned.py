"""The limits Kimi states in its 429s, adopted as the account's own: pure arithmetic.

Most users never say their tier, so the assumed limits (Tier 1) can be far above the
account's. Kimi's 429 names the limit it hit and its value ("max concurrency: 2", "max RPM:
3", "TPM rate limit, current: x, limit: y", kimi-api.md §5). The governor keeps such a
statement in the shared ledger with when it was heard (``Learned``), and ``adopt`` puts it in
place of the assumed value for every process at once. A limit the user set in
``KIMI_LSP_LIMITS`` is never raised by a statement (only lowered); a statement is forgotten
after ``FORGET_AFTER_S`` (tiers go up when an account recharges); a later statement replaces
an earlier one, so a 429 that states more raises the learned limit again. The shrinking after
repeated 429s that state nothing applies only to limits nothing was stated about.

Concurrency cannot be learned without exceeding it once, and a fan-out that trusts an assumed
concurrency of 50 sends many requests at once: all but the account's few get a 429. So while
the concurrency is only assumed (``probing``), admission ramps up to it (``ramp``): one
request more than the most that were seen open together when one of them was answered
(``proven``, shared too). Only requests Kimi has answered count: one admitted but still on its
way (in any process) is not open at Kimi yet, and counting it would prove one too many. And the
request that would open more than ``proven`` (the probe) waits until every open request has
been answered (``ledger.decide``'s ``probe_above``): however the count errs, no second request
is on its way while the probe is. The first request over the account's limit is then the only
one refused, and its 429 teaches the limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from kimi_lsp.quota.ledger import DAY, cap
from kimi_lsp.quota.limits import NAMES, TIERS, Limits

FORGET_AFTER_S = DAY


@dataclass(frozen=True)
class Learned:
    value: int  # what Kimi stated
    at: float  # when (the clock of the process that heard it)


def fresh(learned: Learned | None, now: float) -> Learned | None:
    """The statement if it still holds at ``now`` (None once a day has passed)."""
    if learned is None or learned.value < 1 or now - learned.at >= FORGET_AFTER_S:
        return None
    return learned


def _part(value: int | None, factor: float) -> int | None:
    if value is None or factor >= 1.0:
        return value
    return max(1, int(value * factor))


def adopt(
    configured: Limits,
    learned: Mapping[str, Learned],
    now: float,
    *,
    shrink: float = 1.0,
    share: float = 1.0,
) -> Limits:
    """The limits to plan with: each fresh statement in place of the configured value (but
    never above what the user set explicitly), the others shrunk by ``shrink``; all of them
    scaled by ``share`` (a local stand-in for a team's store plans with part of the account)."""
    values: dict[str, int | None] = {}
    for name in NAMES:
        said = fresh(learned.get(name), now)
        mine = configured.get(name)
        if said is None:
            values[name] = _part(mine, shrink * share)
        elif name in configured.explicit and mine is not None:
            values[name] = _part(min(mine, said.value), share)
        else:
            values[name] = _part(said.value, share)
    return replace(
        configured,
        concurrency=values["concurrency"],
        rpm=values["rpm"],
        tpm=values["tpm"],
        tpd=values["tpd"],
    )


def source(
    configured: Limits,
    learned: Mapping[str, Learned],
    now: float,
    name: str,
    when: Callable[[float], str],
) -> str:
    """Where the value ``adopt`` uses for ``name`` comes from, in words."""
    said = fresh(learned.get(name), now)
    mine = configured.get(name)
    explicit = name in configured.explicit
    if said is not None and not (explicit and mine is not None and mine <= said.value):
        return f"learned from Kimi at {when(said.at)}"
    if explicit:
        return "your setting (KIMI_LSP_LIMITS)"
    if configured.tier is None:
        return "configured"
    if configured.assumed:
        return f"tier {configured.tier} table (assumed)"
    return f"tier {configured.tier} table"


def matching_tiers(learned: Mapping[str, Learned], now: float) -> list[int]:
    """The tiers whose table holds every fresh learned value ([] if none does, or nothing was
    learned): what ``KIMI_LSP_TIER`` could be set to."""
    said = {n: s.value for n in NAMES if (s := fresh(learned.get(n), now)) is not None}
    if not said:
        return []
    return [t for t, lim in sorted(TIERS.items()) if all(lim.get(n) == v for n, v in said.items())]


def probing(configured: Limits, learned: Mapping[str, Learned], now: float) -> bool:
    """Whether the concurrency is only assumed: from the table of a tier the user never set,
    not set in ``KIMI_LSP_LIMITS`` and not stated by Kimi within the day."""
    if not configured.assumed or "concurrency" in configured.explicit:
        return False
    return configured.concurrency is not None and fresh(learned.get("concurrency"), now) is None


def ramp(limit: int | None, proven: int, *, batch: bool, reserve: float) -> int | None:
    """The concurrency to admit a request against while the limit is only assumed: room for
    one request more than ``proven`` (at least one), never above ``limit``. It is the limit
    the store applies the batch reserve to, so batch work ramps as well."""
    target = max(1, proven + 1)
    if limit is not None and target >= limit:
        return limit
    x = target
    while (c := cap(x, batch, reserve)) is not None and c < target:
        if limit is not None and x >= limit:
            return limit
        x += 1
    return x if limit is None else min(x, limit)


def shows(at: float) -> str:
    """A time of day as the status shows it (``14:02``, local time)."""
    return time.strftime("%H:%M", time.localtime(at))


__all__ = [
    "FORGET_AFTER_S",
    "Learned",
    "adopt",
    "fresh",
    "matching_tiers",
    "probing",
    "ramp",
    "shows",
    "source",
]

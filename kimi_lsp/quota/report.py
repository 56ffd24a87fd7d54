"""The governor's snapshot in words: each limit with where it comes from, and advice.

``kimi-lsp quota`` and ``kimi-lsp doctor`` print these; ``kimi/status`` carries the snapshot
itself (``sources``, ``learned``, ``matchingTiers``) for a rich client to show.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kimi_lsp.quota.ledger import cap
from kimi_lsp.quota.limits import NAMES, TIERS

WORDS = {"concurrency": "concurrency", "rpm": "RPM", "tpm": "TPM", "tpd": "TPD"}


def shown(value: object) -> str:
    return "unlimited" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def limits_with_sources(snap: Mapping[str, Any]) -> list[str]:
    """``concurrency 2 (learned from Kimi at 14:02)``, one per limit."""
    sources = snap.get("sources", {})
    return [
        f"{WORDS[n]} {shown(snap['limits'][n])} ({sources.get(n, 'configured')})" for n in NAMES
    ]


def tier_advice(snap: Mapping[str, Any]) -> str:
    """What to set so the next session starts from the account's real limits ("" when the
    settings already say them, or nothing was learned)."""
    learned: Mapping[str, Mapping[str, Any]] = snap.get("learned", {})
    if not learned:
        return ""
    tiers: list[int] = list(snap.get("matchingTiers", []))
    tier = snap.get("tier")
    said = ", ".join(f"{WORDS[n]} {shown(v['value'])}" for n, v in learned.items())
    if tiers:
        if tier in tiers and not snap.get("tierAssumed"):
            return ""
        pick = tier if tier in tiers else tiers[0]
        others = "" if len(tiers) == 1 else f" (tiers {', '.join(map(str, tiers))} have them)"
        return f"Kimi stated {said}: the limits of tier {pick}; set KIMI_LSP_TIER={pick}{others}"
    sources = snap.get("sources", {})
    below = {n: v for n, v in learned.items() if str(sources.get(n, "")).startswith("learned")}
    if not below:  # the user's own setting is lower still
        return ""
    said = ", ".join(f"{WORDS[n]} {shown(v['value'])}" for n, v in below.items())
    limits = ",".join(f"{n}={v['value']}" for n, v in below.items())
    return f"Kimi stated {said}, which no tier has; set KIMI_LSP_LIMITS={limits}"


def reserve_tradeoff(snap: Mapping[str, Any]) -> str:
    """At Tier 0's few requests a minute, what the interactive reserve costs and gives, in one
    line ("" above that: from Tier 1 on, batch work and quick interactive answers both fit).
    No scheduler can both use nearly all of 3 RPM and keep interactive waits short (the quota
    bench measures both ends; docs/quota-and-caching.md)."""
    rpm = snap["limits"].get("rpm")
    small = TIERS[0].rpm
    if rpm is None or rpm > small:
        return ""
    batch = cap(rpm, True, float(snap.get("reserve", 0.0))) or rpm
    if batch < rpm:
        kept = rpm - batch
        return (
            f"the reserve keeps {kept} of {rpm} requests a minute for interactive work: explain "
            "and hover mostly go out at once while batch work runs, but what is kept goes unused "
            f"when nobody asks; KIMI_LSP_QUOTA_RESERVE=0 lets batch work use all {rpm}, and "
            "interactive requests then wait their turn (tens of seconds)"
        )
    return (
        f"no reserve: batch work may use all {rpm} requests a minute, and interactive requests "
        "wait their turn behind it (tens of seconds); KIMI_LSP_QUOTA_RESERVE=0.1 keeps one a "
        "minute for them, at the cost of that request when nobody asks"
    )


__all__ = ["limits_with_sources", "reserve_tradeoff", "shown", "tier_advice"]

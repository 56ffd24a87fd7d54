"""The governor's snapshot in words: each limit with where it comes from, and advice.

``kimi-lsp quota`` and ``kimi-lsp doctor`` print these; ``kimi/status`` carries the snapshot
itself (``sources``, ``learned``, ``matchingTiers``) for a rich client to show.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kimi_lsp.quota.limits import NAMES

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


__all__ = ["limits_with_sources", "shown", "tier_advice"]

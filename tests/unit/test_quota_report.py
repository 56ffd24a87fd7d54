"""The advice `kimi-lsp quota` and `doctor` give from what Kimi stated."""

from __future__ import annotations

from typing import Any

from kimi_lsp.quota.report import limits_with_sources, reserve_tradeoff, tier_advice


def snap(learned: dict[str, int], tiers: list[int], **kw: Any) -> dict[str, Any]:
    sources = {n: "tier 1 table (assumed)" for n in ("concurrency", "rpm", "tpm", "tpd")}
    sources.update({n: "learned from Kimi at 14:02" for n in learned})
    sources.update(kw.pop("sources", {}))
    return {
        "limits": {"concurrency": 50, "rpm": 200, "tpm": 2_000_000, "tpd": None, **learned},
        "sources": sources,
        "learned": {n: {"value": v, "at": 0.0, "atText": "14:02"} for n, v in learned.items()},
        "matchingTiers": tiers,
        "tier": 1,
        "tierAssumed": True,
        **kw,
    }


def test_nothing_learned_nothing_advised() -> None:
    assert tier_advice(snap({}, [])) == ""


def test_limits_that_fit_a_tier_name_it() -> None:
    assert tier_advice(snap({"rpm": 3}, [0])).endswith("the limits of tier 0; set KIMI_LSP_TIER=0")
    both = tier_advice(snap({"rpm": 5_000}, [3, 4]))
    assert both.endswith("set KIMI_LSP_TIER=3 (tiers 3, 4 have them)")
    assert tier_advice(snap({"concurrency": 50}, [1], tierAssumed=False)) == ""
    assert tier_advice(snap({"concurrency": 50}, [1])).endswith("set KIMI_LSP_TIER=1")


def test_limits_no_tier_has_are_offered_as_explicit_limits() -> None:
    advice = tier_advice(snap({"concurrency": 2}, []))
    assert (
        advice == "Kimi stated concurrency 2, which no tier has; set KIMI_LSP_LIMITS=concurrency=2"
    )
    lower = snap({"concurrency": 2}, [], sources={"concurrency": "your setting (KIMI_LSP_LIMITS)"})
    assert tier_advice(lower) == ""  # the user's own setting is lower still


def test_each_limit_is_shown_with_its_source() -> None:
    assert limits_with_sources(snap({"concurrency": 2}, [])) == [
        "concurrency 2 (learned from Kimi at 14:02)",
        "RPM 200 (tier 1 table (assumed))",
        "TPM 2,000,000 (tier 1 table (assumed))",
        "TPD unlimited (tier 1 table (assumed))",
    ]


def test_at_tier_0_the_reserve_says_what_it_costs_and_gives() -> None:
    tier_0 = {"limits": {"rpm": 3}, "tier": 0}
    kept = reserve_tradeoff({**tier_0, "reserve": 0.1})
    assert kept.startswith("the reserve keeps 1 of 3 requests a minute for interactive work")
    assert "goes unused when nobody asks" in kept
    assert "KIMI_LSP_QUOTA_RESERVE=0 lets batch work use all 3" in kept
    none = reserve_tradeoff({**tier_0, "reserve": 0.0})
    assert none.startswith("no reserve: batch work may use all 3 requests a minute")
    assert "KIMI_LSP_QUOTA_RESERVE=0.1" in none
    assert "\n" not in kept + none  # one line each
    assert reserve_tradeoff({"limits": {"rpm": 200}, "tier": 1, "reserve": 0.1}) == ""
    learned = {"limits": {"rpm": 3}, "tier": 1, "reserve": 0.1}  # Kimi said 3: Tier 0 it is
    assert reserve_tradeoff(learned).startswith("the reserve keeps 1 of 3")

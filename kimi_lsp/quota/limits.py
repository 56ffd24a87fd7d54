"""The account's four limits, from the documented tiers (kimi-api.md §6) and overrides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Limits:
    """None means unlimited."""

    concurrency: int | None
    rpm: int | None
    tpm: int | None
    tpd: int | None

    def scaled(self, factor: float) -> Limits:
        """A conservative share (the local fallback, or a limit shrunk after 429s)."""

        def part(v: int | None) -> int | None:
            return None if v is None else max(1, int(v * factor))

        return Limits(part(self.concurrency), part(self.rpm), part(self.tpm), part(self.tpd))


TIERS: dict[int, Limits] = {
    0: Limits(1, 3, 500_000, 1_500_000),
    1: Limits(50, 200, 2_000_000, None),
    2: Limits(100, 500, 3_000_000, None),
    3: Limits(200, 5_000, 3_000_000, None),
    4: Limits(400, 5_000, 4_000_000, None),
    5: Limits(1_000, 10_000, 5_000_000, None),
}


def limits_for(tier: int, overrides: Mapping[str, int | None] | None = None) -> Limits:
    """The tier's limits with explicit overrides (``KIMI_LSP_LIMITS``) applied."""
    limits = TIERS[tier]
    return replace(limits, **dict(overrides or {}))

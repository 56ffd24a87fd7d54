"""The account's four limits, from the documented tiers (kimi-api.md §6) and overrides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

NAMES = ("concurrency", "rpm", "tpm", "tpd")


@dataclass(frozen=True)
class Limits:
    """None means unlimited. ``tier``, ``explicit`` and ``assumed`` say where the numbers
    came from: the tier table (``assumed``: the default tier, which the user never set) and
    which of them the user set in ``KIMI_LSP_LIMITS``. They take no part in comparisons."""

    concurrency: int | None
    rpm: int | None
    tpm: int | None
    tpd: int | None
    tier: int | None = field(default=None, compare=False)
    explicit: frozenset[str] = field(default=frozenset(), compare=False)
    assumed: bool = field(default=False, compare=False)

    def get(self, name: str) -> int | None:
        value: int | None = getattr(self, name)
        return value

    def scaled(self, factor: float) -> Limits:
        """A conservative share (the local fallback, or a limit shrunk after 429s)."""

        def part(v: int | None) -> int | None:
            return None if v is None else max(1, int(v * factor))

        return replace(
            self,
            concurrency=part(self.concurrency),
            rpm=part(self.rpm),
            tpm=part(self.tpm),
            tpd=part(self.tpd),
        )


TIERS: dict[int, Limits] = {
    0: Limits(1, 3, 500_000, 1_500_000),
    1: Limits(50, 200, 2_000_000, None),
    2: Limits(100, 500, 3_000_000, None),
    3: Limits(200, 5_000, 3_000_000, None),
    4: Limits(400, 5_000, 4_000_000, None),
    5: Limits(1_000, 10_000, 5_000_000, None),
}


def limits_for(
    tier: int, overrides: Mapping[str, int | None] | None = None, *, assumed: bool = False
) -> Limits:
    """The tier's limits with explicit overrides (``KIMI_LSP_LIMITS``) applied; ``assumed``:
    the user did not say the tier (``KIMI_LSP_TIER``), so its limits are a guess."""
    given = dict(overrides or {})
    return replace(TIERS[tier], **given, tier=tier, explicit=frozenset(given), assumed=assumed)

"""The quota package's protocol types, imported by every ledger and the governor (no cycle).

``Admitted`` names one admitted request in its store; ``Ledger`` is what a store of admissions
offers (``SqliteLedger``, ``RedisLedger``, ``FailoverLedger``); ``RequestLike`` and
``UsageLike`` are what admission and settling read from ``llm``'s request and usage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kimi_lsp.quota.limits import Limits

LEASE_TTL_S = 30.0  # a live holder renews every LEASE_TTL_S / 3


@dataclass(frozen=True)
class Admitted:
    charge_id: int
    lease_id: int
    key: str = ""  # the store's own name for the charge (Redis: ``id:tokens:model``)
    opened: int = field(default=0, compare=False)  # requests open once it was admitted


class RequestLike(Protocol):
    """What admission needs to know about a request (``llm.RequestStart`` has it)."""

    @property
    def model(self) -> str: ...

    @property
    def input_tokens(self) -> int: ...

    @property
    def max_completion_tokens(self) -> int: ...


class Ledger(Protocol):
    """Where admissions are recorded: ``SqliteLedger`` (this user) or ``RedisLedger`` (a team)."""

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
    ) -> object: ...

    def leave(self, entry: int) -> None: ...

    def renew(self, lease_id: int, now: float) -> None: ...

    def answered(self, admitted: Admitted, now: float) -> int | None: ...

    def settle(self, admitted: Admitted, actual: tuple[int, int, int] | None) -> None: ...

    def refund(self, admitted: Admitted) -> None: ...

    def cool_down(self, seconds: float, now: float) -> None: ...

    def set_meta(self, key: str, value: float) -> None: ...

    def get_meta(self, key: str, default: float = 0.0) -> float: ...

    def metas(self, keys: Sequence[str]) -> dict[str, float]:
        """The values set for ``keys`` (absent ones left out), read at once."""
        ...

    def usage(self, now: float) -> dict[str, Any]: ...


class UsageLike(Protocol):
    @property
    def prompt_tokens(self) -> int: ...

    @property
    def cached_tokens(self) -> int: ...

    @property
    def completion_tokens(self) -> int: ...

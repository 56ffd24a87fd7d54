"""The failover wrapper keeps the store's queue order for this process's waiters."""

from __future__ import annotations

from typing import Any

from kimi_lsp.quota import Limits, Wait
from kimi_lsp.quota.failover import FailoverLedger


class Store:
    """A store that hands out the queue entries it is told to, in that order."""

    def __init__(self, entries: list[int]) -> None:
        self.entries = entries

    def try_admit(self, *args: Any, **kw: Any) -> Wait:
        return Wait(1.0, "concurrency", entry=self.entries.pop(0))

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"not used here: {name}")


def test_places_keep_the_stores_order_when_answers_come_back_out_of_it() -> None:
    # Two admissions raced in worker threads: the store queued the first at entry 5 and the
    # second at entry 6, but entry 6's answer came back here first.
    store = Store([6, 5])
    ledger = FailoverLedger(lambda: store, lambda: store, name="test", errors=(OSError,))
    one = Limits(1, None, None, None)
    late = ledger.try_admit(0.0, one, 1, model="m", batch=True, reserve=0.1, join=True)
    early = ledger.try_admit(0.0, one, 1, model="m", batch=True, reserve=0.1, join=True)
    assert isinstance(late, Wait)
    assert isinstance(early, Wait)
    # The governor lets only its first place re-check: it must be the store's first.
    assert early.entry < late.entry

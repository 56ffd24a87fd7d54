"""Shared-quota admission: one budget for every editor, process and teammate on the account.

- ``limits_for(tier, overrides) -> Limits`` (kimi-api.md §6 tiers).
- ``QuotaGovernor.in_state_dir(state_dir, limits, reserve=)``: ``await admit(start, batch=,
  on_wait=)`` → ``Ticket`` (``await ticket.settle(usage)``), or ``NeverFits``;
  ``await rate_limited(retry_after, limit, stated)`` (a stated limit is learned for every
  process, ``learned.py``); ``snapshot()`` for ``kimi-lsp quota`` and
  ``kimi/status`` (with the store's queue: every process's waiters).
- ``decide(...)``: the pure admission rule; ``ahead_of(...)``: the queue's order, interactive
  before batch and first come first served within each (``ledger.py``).

A leaf: it imports nothing else from kimi_lsp. Ledgers: ``SqliteLedger`` (one file in the
state dir, shared by all processes of the user) and ``RedisLedger`` (a team; Lua scripts on
the server's clock), each holding the queue of waiters too; ``QuotaGovernor.from_setting``
picks one; for Redis a ``FailoverLedger`` stands in for this machine's ledger while Redis
cannot be reached, and goes back to Redis when it answers.
"""

from kimi_lsp.quota.errors import NeverFits, QuotaError
from kimi_lsp.quota.governor import QuotaGovernor, Ticket
from kimi_lsp.quota.ledger import Admit, Charge, Never, Wait, Waiter, Window, ahead_of, decide
from kimi_lsp.quota.limits import TIERS, Limits, limits_for
from kimi_lsp.quota.sqlite import DB_FILE, SqliteLedger

__all__ = [
    "DB_FILE",
    "TIERS",
    "Admit",
    "Charge",
    "Limits",
    "Never",
    "NeverFits",
    "QuotaError",
    "QuotaGovernor",
    "SqliteLedger",
    "Ticket",
    "Wait",
    "Waiter",
    "Window",
    "ahead_of",
    "decide",
    "limits_for",
]

"""The one base of every error kimi-lsp reports to a user (a leaf: it imports nothing).

::

    KimiLspError                  ``message``: what went wrong and what to do, for the user
    ├── actions.ActionError       an action cannot run (no key, nothing to work on, …)
    ├── cache.CacheError          the response cache cannot be used
    ├── context.ContextError      a prompt cannot be built (the budget is too small, …)
    ├── index.IndexError_         the index cannot do what was asked
    ├── llm.KimiError             the Kimi API refused or failed
    └── quota.QuotaError          a request never fits the account's limits

Each package keeps its own tree in its ``errors.py``; handlers in the server and the CLI catch
``KimiLspError`` and show ``message``, so no package's error reaches a user as a traceback.
"""

from __future__ import annotations


class KimiLspError(Exception):
    """Base of every error with a message meant for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


__all__ = ["KimiLspError"]

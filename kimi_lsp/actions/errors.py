"""Errors the actions raise for the user to read.

::

    KimiLspError (kimi_lsp.errors: carries the user-facing ``message``)
    ActionError                 something the user asked for cannot be done; says what to do
    ├── MissingApiKey           no key configured
    ├── NothingToWorkOn         no symbol or selection at the position
    ├── UnsupportedFile         the file's language is not indexed, or the file is ignored
    │   └── IgnoredFile         an ignore rule keeps the file out of every prompt; names it
    └── ThinkingBudgetSpent     Kimi spent the whole output budget thinking, even on a retry

Errors of the Kimi client (``kimi_lsp.llm.errors``) pass through unchanged: their messages
already say what happened and what to do.
"""

from __future__ import annotations

from pathlib import Path

from kimi_lsp.errors import KimiLspError


class ActionError(KimiLspError):
    pass


class MissingApiKey(ActionError):
    def __init__(self) -> None:
        super().__init__(
            "No Kimi API key is set. Set MOONSHOT_API_KEY in the environment the editor "
            "starts from (or pass apiKey in the editor's kimi settings), then try again. "
            "`kimi-lsp doctor` checks the whole set-up."
        )


class NothingToWorkOn(ActionError):
    pass


class UnsupportedFile(ActionError):
    pass


class ThinkingBudgetSpent(ActionError):
    """The reply ended (``length``) inside its reasoning, and so did the one retry."""

    def __init__(
        self,
        model: str,
        max_completion_tokens: int,
        retried: str | None,
        action: str = "explain",
        can_disable: bool = True,
    ) -> None:
        again = f", and again after {retried}" if retried else ""
        off = (
            f", or turn thinking off for it with the `thinking` setting (e.g. `auto,{action}=off`)"
            if can_disable
            else ""
        )
        super().__init__(
            f"{model} used its whole output budget ({max_completion_tokens:,} tokens) thinking "
            f"and gave no answer{again}. Raise the reasoning allowance with the "
            f"`thinkingAllowance` setting (KIMI_LSP_THINKING_ALLOWANCE, e.g. 16384){off}, "
            "or select less code."
        )
        self.model = model
        self.max_completion_tokens = max_completion_tokens


class IgnoredFile(UnsupportedFile):
    def __init__(self, path: Path, rule: str | None) -> None:
        by = f"by {rule}" if rule else "by the ignore rules (.gitignore/.kimiignore)"
        super().__init__(
            f"{path.name} is ignored {by}, so it never leaves this machine: kimi-lsp sends "
            "nothing of it. Remove that rule to work on it with Kimi."
        )
        self.path = path
        self.rule = rule


def user_errors() -> tuple[type[Exception], ...]:
    """Every error whose ``.message`` is written for the user: every package's errors derive
    from ``KimiLspError``; what a command or a handler catches to show a readable message
    instead of a traceback."""
    return (KimiLspError,)

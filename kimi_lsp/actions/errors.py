"""Errors the actions raise for the user to read.

::

    KimiLspError (kimi_lsp.errors: carries the user-facing ``message``)
    ActionError                 something the user asked for cannot be done; says what to do
    ├── MissingApiKey           no key configured
    ├── NothingToWorkOn         no symbol or selection at the position
    └── UnsupportedFile         the file's language is not indexed, or the file is ignored

Errors of the Kimi client (``kimi_lsp.llm.errors``) pass through unchanged: their messages
already say what happened and what to do.
"""

from __future__ import annotations

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

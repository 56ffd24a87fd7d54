"""What the context engine raises.

::

    KimiLspError (kimi_lsp.errors: carries the user-facing ``message``)
    ContextError                  base: a prompt could not be built
    └── UnknownAction             an action name no recipe exists for

Ignored files are not errors: they are left out and listed in ``BuiltContext.left_out``.
"""

from __future__ import annotations

from kimi_lsp.errors import KimiLspError


class ContextError(KimiLspError):
    """A prompt could not be built; ``message`` says why and what to do."""


class UnknownAction(ContextError):
    def __init__(self, action: str, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown action {action!r}: use one of {', '.join(known)}")
        self.action = action

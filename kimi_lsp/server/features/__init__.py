"""The server's features, one module each, every one with a ``register(server)`` of short
handlers (get the snapshot, call ``actions``, convert). A feature that fails to register is
logged and the others still work; a listener that raises does not stop the next one
(``isolation.guarded``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..isolation import guarded

if TYPE_CHECKING:
    from ..session import KimiLanguageServer


def register_all(server: KimiLanguageServer) -> None:
    from . import (
        code_actions,
        context,
        documents,
        explain,
        index,
        lifecycle,
        refactor,
        runs,
        tests,
        workspace,
    )

    for feature in (
        lifecycle,
        documents,
        index,
        explain,
        refactor,
        tests,
        workspace,
        code_actions,
        context,
        runs,
    ):
        guarded(f"the {feature.__name__} feature", feature.register, server)

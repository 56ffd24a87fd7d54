"""The server's features, one module each, every one with a ``register(server)`` of short
handlers (get the snapshot, call ``actions``, convert). A feature that fails to register is
logged and the others still work; a listener that raises does not stop the next one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..session import KimiLanguageServer

logger = logging.getLogger(__name__)


def guarded(what: str, fn: Callable[..., Any], *args: Any) -> None:
    """Run one listener of a notification; its failure is logged, never passed on."""
    try:
        fn(*args)
    except Exception:
        logger.exception("%s failed", what)


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
        try:
            feature.register(server)
        except Exception:  # the others keep working
            logger.exception("the %s feature could not start", feature.__name__)

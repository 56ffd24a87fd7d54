"""One feature's failure stays its own: logged, never passed on to the next listener."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


def guarded(what: str, fn: Callable[..., Any], *args: Any) -> bool:
    """Run one listener of a notification (or one feature's registration); False if it raised."""
    try:
        fn(*args)
    except Exception:
        logger.exception("%s failed", what)
        return False
    return True

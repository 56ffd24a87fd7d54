"""Errors of the response cache.

::

    KimiLspError (kimi_lsp.errors: carries the user-facing ``message``)
    CacheError                 base; the cache never breaks an answer, so callers rarely see these
    ├── CacheSettingError      the `cache` setting is not `on`, `off` or a redis:// URL
    └── CacheUnavailable       the store cannot be used at all (state dir not writable,
                               Redis unreachable); answers still work, uncached

Everyday trouble is absorbed, not raised: a write that meets a busy database is skipped, a
corrupt database is moved aside and rebuilt, an unreachable Redis reads as a miss. The store
keeps the last such problem in ``problem`` so `kimi-lsp doctor` and `kimi/status` can show it.
"""

from __future__ import annotations

from kimi_lsp.errors import KimiLspError


class CacheError(KimiLspError):
    """Base of every response-cache error."""


class CacheSettingError(CacheError, ValueError):
    def __init__(self, value: str) -> None:
        super().__init__(
            f"The cache setting {value!r} is not understood. Set KIMI_LSP_CACHE to 'on' "
            "(SQLite in the state dir), 'off', or a redis:// URL shared by your team."
        )
        self.value = value


class CacheUnavailable(CacheError):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(
            f"The response cache at {where} cannot be used ({reason}). Answers still work but "
            "are not cached: check that the place exists and is writable (KIMI_LSP_STATE_DIR), "
            "or that the Redis server in KIMI_LSP_CACHE is reachable, or set KIMI_LSP_CACHE=off."
        )
        self.where = where
        self.reason = reason


__all__ = ["CacheError", "CacheSettingError", "CacheUnavailable"]

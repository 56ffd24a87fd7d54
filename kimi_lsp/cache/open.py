"""Choosing the store from the ``cache`` setting."""

from __future__ import annotations

import time
from pathlib import Path

from kimi_lsp.cache.base import Clock, DisabledCache, ResponseCache
from kimi_lsp.cache.errors import CacheSettingError
from kimi_lsp.cache.redis import DEFAULT_MAX_BYTES as REDIS_MAX_BYTES
from kimi_lsp.cache.redis import DEFAULT_MAX_ENTRIES as REDIS_MAX_ENTRIES
from kimi_lsp.cache.redis import RedisCache
from kimi_lsp.cache.sqlite import DB_FILE, SqliteCache
from kimi_lsp.cache.sqlite import DEFAULT_MAX_BYTES as SQLITE_MAX_BYTES
from kimi_lsp.cache.sqlite import DEFAULT_MAX_ENTRIES as SQLITE_MAX_ENTRIES

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def open_cache(
    setting: str,
    state_dir: Path,
    *,
    max_entries: int | None = None,
    max_bytes: int | None = None,
    ttl: float | None = None,
    clock: Clock = time.time,
) -> ResponseCache:
    """``on`` → SQLite in ``state_dir``; ``off`` → a cache that never hits; a ``redis://``
    URL → the team's Redis. Raises ``CacheSettingError`` for anything else."""
    value = setting.strip()
    if value.lower() in ("off", "false", "0"):
        return DisabledCache()
    if value.lower() in ("on", "true", "1", "sqlite"):
        return SqliteCache(
            Path(state_dir) / DB_FILE,
            max_entries=max_entries or SQLITE_MAX_ENTRIES,
            max_bytes=max_bytes or SQLITE_MAX_BYTES,
            ttl=ttl,
            clock=clock,
        )
    if value.startswith(REDIS_SCHEMES):
        return RedisCache(
            value,
            max_entries=max_entries or REDIS_MAX_ENTRIES,
            max_bytes=max_bytes or REDIS_MAX_BYTES,
            ttl=ttl,
            clock=clock,
        )
    raise CacheSettingError(setting)

"""The response cache: a complete answer is kept so an identical request costs nothing.

- ``request_key(model, messages, max_completion_tokens, extra)`` → the hex key: a hash of
  every byte that shapes the answer.
- ``open_cache(setting, state_dir, *, max_entries, max_bytes, ttl, clock)`` → a
  ``ResponseCache``: ``SqliteCache`` (``on``), ``DisabledCache`` (``off``) or ``RedisCache``
  (a ``redis://`` URL). ``await get(key, record=True)`` → ``CachedResponse | None``;
  ``await put(key, response)`` → stored?; ``await stats()`` → ``CacheStats`` (hits, misses,
  ``tokens_saved``, ``money_saved(prices)``); ``await aclose()``.
- ``replay(text)`` → an async iterator of pieces, to feed a hit down the live answer's path.

A library leaf: it imports no other part of kimi_lsp.
"""

from kimi_lsp.cache.base import DisabledCache, ResponseCache
from kimi_lsp.cache.errors import CacheError, CacheSettingError, CacheUnavailable
from kimi_lsp.cache.key import KEY_VERSION, request_key
from kimi_lsp.cache.model import CachedResponse, CacheStats, Prices, TokenUsage
from kimi_lsp.cache.open import open_cache
from kimi_lsp.cache.redis import RedisCache
from kimi_lsp.cache.replay import REPLAY_CHUNK_CHARS, replay
from kimi_lsp.cache.sqlite import DB_FILE, SqliteCache

__all__ = [
    "DB_FILE",
    "KEY_VERSION",
    "REPLAY_CHUNK_CHARS",
    "CacheError",
    "CacheSettingError",
    "CacheStats",
    "CacheUnavailable",
    "CachedResponse",
    "DisabledCache",
    "Prices",
    "RedisCache",
    "ResponseCache",
    "SqliteCache",
    "TokenUsage",
    "open_cache",
    "replay",
    "request_key",
]

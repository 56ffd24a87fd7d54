"""The team store: answers shared through Redis when ``cache`` is a ``redis://`` URL.

Layout under one prefix: ``e:<key>`` holds an entry's JSON; the sorted set ``lru`` orders keys
by their last use (scores from the ``tick`` counter); the hash ``sizes`` and the counter
``bytes`` bound the total size; the hashes ``counts`` and ``saved`` hold the statistics. A
put and its evictions run in one Lua script, so several writers never exceed the bounds.
(The script names entry keys it builds itself, which a standalone Redis allows; Redis Cluster
would not.)

An unreachable server never fails an action: a lookup reads as a miss, a put is skipped, and
``problem`` says what is wrong.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from kimi_lsp.cache.base import Clock, PendingCounts, _KeyMixin
from kimi_lsp.cache.errors import CacheUnavailable
from kimi_lsp.cache.model import CachedResponse, CacheStats, TokenUsage

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "kimi-lsp:cache:v1:"
DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
TIMEOUT_S = 0.5  # a team cache that does not answer in half a second is not worth waiting for
RETRY_AFTER_S = 30.0  # after a failure, how long lookups skip the server

# KEYS: entry, lru, tick, sizes, bytes. ARGV: key, value, size, max_entries, max_bytes,
# ttl_ms, entry prefix.
_PUT = """
local old = redis.call('HGET', KEYS[4], ARGV[1])
if old then redis.call('DECRBY', KEYS[5], old) end
if tonumber(ARGV[6]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[6])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
local total = tonumber(redis.call('INCRBY', KEYS[5], ARGV[3]))
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
local n = tonumber(redis.call('ZCARD', KEYS[2]))
local evicted = 0
while n > 1 and (n > tonumber(ARGV[4]) or total > tonumber(ARGV[5])) do
  local oldest = redis.call('ZPOPMIN', KEYS[2])
  local k = oldest[1]
  redis.call('DEL', ARGV[7] .. k)
  local s = redis.call('HGET', KEYS[4], k)
  if s then
    total = tonumber(redis.call('DECRBY', KEYS[5], s))
    redis.call('HDEL', KEYS[4], k)
  end
  n = n - 1
  evicted = evicted + 1
end
return evicted
"""

# KEYS: entry, lru, tick. ARGV: key. The value, with the key moved to the LRU's young end.
_GET = """
local v = redis.call('GET', KEYS[1])
if v and redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
end
return v
"""

# KEYS: entry, lru, sizes, bytes. ARGV: key, the exact value seen (only that one goes).
_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  local s = redis.call('HGET', KEYS[3], ARGV[1])
  if s then
    redis.call('DECRBY', KEYS[4], s)
    redis.call('HDEL', KEYS[3], ARGV[1])
  end
  return 1
end
return 0
"""

_USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")


def redacted(url: str) -> str:
    """The URL without its password, for status lines and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class RedisCache(_KeyMixin):
    def __init__(
        self,
        url: str,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        ttl: float | None = None,
        clock: Clock = time.time,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = TIMEOUT_S,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be at least 1")
        try:
            from redis.asyncio import Redis
        except ImportError as exc:  # pragma: no cover - redis is a dependency
            raise CacheUnavailable(redacted(url), "the redis package is not installed") from exc
        self.url = url
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.clock = clock
        self.prefix = prefix
        self._redis: Redis = Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=False
        )
        self._put = self._redis.register_script(_PUT)
        self._get = self._redis.register_script(_GET)
        self._drop = self._redis.register_script(_DROP)
        self._pending = PendingCounts()  # counts that could not be sent yet
        self._problem: str | None = None
        self._retry_at = 0.0

    @property
    def where(self) -> str:
        return redacted(self.url)

    @property
    def problem(self) -> str | None:
        return self._problem

    def _k(self, name: str) -> str:
        return self.prefix + name

    def _entry(self, key: str) -> str:
        return self._k("e:") + key

    def _reachable(self) -> bool:
        """False for a while after the server failed: an action should not pay a timeout on
        every lookup while the team's Redis is down."""
        return time.monotonic() >= self._retry_at

    def _trouble(self, exc: Exception) -> None:
        self._retry_at = time.monotonic() + RETRY_AFTER_S
        problem = (
            f"the team cache at {self.where} did not answer ({type(exc).__name__}: {exc}); "
            "answers are not cached meanwhile"
        )
        if problem != self._problem:
            log.warning("%s", problem)
        self._problem = problem

    async def get(self, key: str, *, record: bool = True) -> CachedResponse | None:
        from redis.exceptions import RedisError

        raw = None
        if self._reachable():
            try:
                raw = await self._get(
                    keys=[self._entry(key), self._k("lru"), self._k("tick")], args=[key]
                )
            except (RedisError, OSError) as exc:
                self._trouble(exc)
        found: CachedResponse | None = None
        if raw is not None:
            try:
                found = CachedResponse.from_json(raw)
            except (ValueError, KeyError, TypeError):
                found = None
            if found is None or (self.ttl is not None and self.clock() - found.created >= self.ttl):
                found = None
                await self._drop_quietly(key, raw)
        if record:
            if found is not None:
                self._pending.hit(found)
            else:
                self._pending.misses += 1
            await self._send_counts()
        return found

    async def _drop_quietly(self, key: str, raw: Any) -> None:
        from redis.exceptions import RedisError

        try:
            await self._drop(
                keys=[self._entry(key), self._k("lru"), self._k("sizes"), self._k("bytes")],
                args=[key, raw],
            )
        except (RedisError, OSError) as exc:
            self._trouble(exc)

    async def _send_counts(self) -> None:
        from redis.exceptions import RedisError

        if not self._pending or not self._reachable():
            return
        counts = self._pending.take()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for name in ("hits", "misses", "skipped_writes"):
                    value = getattr(counts, name)
                    if value:
                        pipe.hincrby(self._k("counts"), name, value)
                for model, usage in counts.saved.items():
                    for f in _USAGE_FIELDS:
                        if getattr(usage, f):
                            pipe.hincrby(self._k("saved"), f"{model}|{f}", getattr(usage, f))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._pending.give_back(counts)
            self._trouble(exc)

    async def put(self, key: str, response: CachedResponse) -> bool:
        from redis.exceptions import RedisError

        stamped = replace(response, created=self.clock())
        value = stamped.to_json().encode("utf-8", "surrogatepass")
        size = len(value) + len(key)
        if size > self.max_bytes:
            return False
        ttl_ms = 0 if self.ttl is None else max(1, int(self.ttl * 1000))
        if not self._reachable():
            self._pending.skipped_writes += 1
            return False
        try:
            await self._put(
                keys=[
                    self._entry(key),
                    self._k("lru"),
                    self._k("tick"),
                    self._k("sizes"),
                    self._k("bytes"),
                ],
                args=[key, value, size, self.max_entries, self.max_bytes, ttl_ms, self._k("e:")],
            )
        except (RedisError, OSError) as exc:
            self._pending.skipped_writes += 1
            self._trouble(exc)
            return False
        self._problem = None
        await self._send_counts()
        return True

    async def stats(self) -> CacheStats:
        from redis.exceptions import RedisError

        if not self._reachable():
            return self._pending.added_to(CacheStats())
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self._k("counts"))
                pipe.hgetall(self._k("saved"))
                pipe.zcard(self._k("lru"))
                pipe.get(self._k("bytes"))
                counts, saved_raw, entries, size = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._trouble(exc)
            return self._pending.added_to(CacheStats())
        per_model: dict[str, dict[str, int]] = {}
        for field, value in saved_raw.items():
            model, _, name = field.decode().rpartition("|")
            per_model.setdefault(model, {})[name] = int(value)
        counts = {k.decode(): int(v) for k, v in counts.items()}
        stats = CacheStats(
            hits=counts.get("hits", 0),
            misses=counts.get("misses", 0),
            saved={m: TokenUsage.from_dict(u) for m, u in per_model.items()},
            entries=int(entries),
            size_bytes=int(size or 0),
            skipped_writes=counts.get("skipped_writes", 0),
        )
        return self._pending.added_to(stats)

    async def clear(self) -> None:
        """Drop every entry under this prefix (statistics stay)."""
        from redis.exceptions import RedisError

        try:
            doomed = [k async for k in self._redis.scan_iter(match=self._k("e:*"), count=500)]
            doomed += [self._k(n) for n in ("lru", "sizes", "bytes")]
            for i in range(0, len(doomed), 500):
                await self._redis.delete(*doomed[i : i + 500])
        except (RedisError, OSError) as exc:
            self._trouble(exc)

    async def aclose(self) -> None:
        await self._send_counts()
        await self._redis.aclose()

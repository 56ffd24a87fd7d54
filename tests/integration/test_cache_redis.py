"""The team cache against a real redis-server on a loopback port."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from kimi_lsp.cache import CachedResponse, Prices, RedisCache, TokenUsage, request_key
from tests.conftest import free_port

pytestmark = pytest.mark.redis


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def answer(text: str = "It adds one.", tokens: int = 100) -> CachedResponse:
    return CachedResponse(text, "why", TokenUsage(tokens, 10, tokens // 2), "kimi-k2.6")


@pytest.fixture
async def make(redis_url: str) -> AsyncIterator:  # type: ignore[type-arg]
    made: list[RedisCache] = []

    def build(**options: object) -> RedisCache:
        # A fresh prefix per test: tests share one server.
        options.setdefault("prefix", f"test:{uuid.uuid4().hex}:")
        cache = RedisCache(redis_url, **options)  # type: ignore[arg-type]
        made.append(cache)
        return cache

    yield build
    for cache in made:
        await cache.aclose()


async def test_hit_and_miss_on_byte_changes(make) -> None:  # type: ignore[no-untyped-def]
    cache = make()
    messages = [{"role": "user", "content": "def foo():\n    return 1\n"}]
    key = request_key("kimi-k2.6", messages, 100, {})
    assert await cache.get(key) is None
    assert await cache.put(key, answer())
    hit = await cache.get(key)
    assert hit is not None
    assert (hit.text, hit.reasoning, hit.usage) == ("It adds one.", "why", answer().usage)
    other = [{"role": "user", "content": "def foo():\n    return 1 \n"}]
    assert await cache.get(request_key("kimi-k2.6", other, 100, {})) is None


async def test_two_clients_share_answers(make) -> None:  # type: ignore[no-untyped-def]
    prefix = f"test:{uuid.uuid4().hex}:"
    alice, bob = make(prefix=prefix), make(prefix=prefix)
    await alice.put("k", answer("from alice"))
    hit = await bob.get("k")
    assert hit is not None
    assert hit.text == "from alice"


async def test_least_recently_used_is_evicted_first(make) -> None:  # type: ignore[no-untyped-def]
    cache = make(max_entries=4)
    for k in "abcd":
        await cache.put(k, answer(k))
    for k in "cadb":
        await cache.get(k)
    raw = cache._redis
    evicted = []
    for new in "wxyz":
        before = {k for k in "abcdwxyz" if await raw.exists(cache._entry(k))}
        await cache.put(new, answer(new))
        after = {k for k in "abcdwxyz" if await raw.exists(cache._entry(k))}
        evicted.extend(sorted(before - after))
    assert evicted == ["c", "a", "d", "b"]
    assert (await cache.stats()).entries == 4


async def test_size_bound_holds_under_concurrent_writers(make) -> None:  # type: ignore[no-untyped-def]
    prefix = f"test:{uuid.uuid4().hex}:"
    writers = [make(prefix=prefix, max_bytes=5_000) for _ in range(4)]
    await asyncio.gather(
        *(w.put(f"{n}-{i}", answer("x" * 200)) for n, w in enumerate(writers) for i in range(25))
    )
    stats = await writers[0].stats()
    assert 0 < stats.size_bytes <= 5_000
    assert stats.entries == await writers[0]._redis.zcard(writers[0]._k("lru"))
    keys = [k async for k in writers[0]._redis.scan_iter(match=writers[0]._k("e:*"))]
    assert len(keys) == stats.entries


async def test_ttl_by_the_injected_clock(make) -> None:  # type: ignore[no-untyped-def]
    clock = Clock(0.0)
    cache = make(ttl=3600.0, clock=clock)
    await cache.put("k", answer())
    clock.now = 3599.0
    assert await cache.get("k") is not None
    clock.now = 3600.0
    assert await cache.get("k") is None
    assert not await cache._redis.exists(cache._entry("k"))  # dropped, not just hidden
    await cache.put("k2", answer())
    assert 0 < await cache._redis.pttl(cache._entry("k2")) <= 3_600_000  # Redis expires it too


async def test_stats_are_shared_and_count_savings(make) -> None:  # type: ignore[no-untyped-def]
    prefix = f"test:{uuid.uuid4().hex}:"
    a, b = make(prefix=prefix), make(prefix=prefix)
    await a.put("k", answer(tokens=1_000_000))
    await a.get("k")
    await b.get("k")
    await b.get("missing")
    await b.get("k", record=False)
    stats = await make(prefix=prefix).stats()
    assert (stats.hits, stats.misses) == (2, 1)
    assert stats.tokens_saved == 2 * 1_000_010
    price = Prices(1.0, 0.1, 0.0)
    assert stats.money_saved(price) == pytest.approx(2 * (0.5 + 0.05))


async def test_an_unreachable_server_reads_as_a_miss() -> None:
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
    assert await cache.get("k") is None
    assert not await cache.put("k", answer())
    assert cache.problem is not None
    assert "did not answer" in cache.problem
    stats = await cache.stats()
    assert stats.misses == 1  # kept locally until the server is back
    assert stats.skipped_writes == 1
    assert await cache.get("k") is None  # answered at once while the server is down
    assert (await cache.stats()).misses == 2
    await cache._redis.aclose()


async def test_clear_drops_entries_only(make) -> None:  # type: ignore[no-untyped-def]
    cache = make()
    await cache.put("k", answer())
    await cache.get("k")
    await cache.clear()
    assert await cache.get("k") is None
    stats = await cache.stats()
    assert (stats.entries, stats.hits) == (0, 1)

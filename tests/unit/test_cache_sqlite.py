"""The SQLite response cache on real files: hits, bounds, TTL, stats and damage recovery."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kimi_lsp.cache import (
    DB_FILE,
    CachedResponse,
    CacheSettingError,
    DisabledCache,
    Prices,
    RedisCache,
    SqliteCache,
    TokenUsage,
    open_cache,
    replay,
    request_key,
)


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def answer(
    text: str = "It adds one.", model: str = "kimi-k2.6", tokens: int = 100
) -> CachedResponse:
    return CachedResponse(
        text=text,
        reasoning="thinking…",
        usage=TokenUsage(prompt_tokens=tokens, completion_tokens=10, cached_tokens=tokens // 2),
        model=model,
    )


@pytest.fixture
def cache(tmp_path: Path) -> SqliteCache:
    c = SqliteCache(tmp_path / DB_FILE, clock=Clock())
    yield c
    c.close()


async def test_miss_then_hit_returns_what_was_stored(cache: SqliteCache) -> None:
    messages = [{"role": "user", "content": "explain foo"}]
    key = cache.key("kimi-k2.6", messages, 1500, {"thinking": None})
    assert await cache.get(key) is None
    assert await cache.put(key, answer())
    hit = await cache.get(key)
    assert hit is not None
    assert (hit.text, hit.reasoning, hit.model) == ("It adds one.", "thinking…", "kimi-k2.6")
    assert hit.usage == answer().usage
    assert hit.created == 1_000.0  # stamped with the store's clock


async def test_a_changed_byte_in_the_code_misses(cache: SqliteCache) -> None:
    base = [{"role": "user", "content": "def foo():\n    return 1\n"}]
    await cache.put(request_key("m", base, 100, {}), answer())
    changed = [{"role": "user", "content": "def foo():\n    return 2\n"}]
    assert await cache.get(request_key("m", changed, 100, {})) is None
    assert await cache.get(request_key("m", base, 100, {})) is not None


async def test_entries_survive_reopening(tmp_path: Path) -> None:
    first = SqliteCache(tmp_path / DB_FILE)
    await first.put("k", answer("kept"))
    await first.aclose()
    second = SqliteCache(tmp_path / DB_FILE)
    hit = await second.get("k")
    await second.aclose()
    assert hit is not None
    assert hit.text == "kept"


async def test_least_recently_used_is_evicted_first(tmp_path: Path) -> None:
    cache = SqliteCache(tmp_path / DB_FILE, max_entries=3)
    for k in "abc":
        await cache.put(k, answer(k))
    assert await cache.get("a") is not None  # a is now the most recently used
    await cache.put("d", answer("d"))  # evicts b, the oldest unused
    assert [k for k in "abcd" if await cache.get(k, record=False)] == ["a", "c", "d"]
    cache.close()


async def test_eviction_order_follows_reads_exactly(tmp_path: Path) -> None:
    cache = SqliteCache(tmp_path / DB_FILE, max_entries=4)
    for k in "abcd":
        await cache.put(k, answer(k))
    for k in "cadb":  # use order, oldest first: c a d b
        await cache.get(k)
    evicted = []
    for new in "wxyz":
        before = {k for k in "abcdwxyz" if await _peek(cache, k)}
        await cache.put(new, answer(new))
        after = {k for k in "abcdwxyz" if await _peek(cache, k)}
        evicted.extend(sorted(before - after))
    cache.close()
    assert evicted == ["c", "a", "d", "b"]


async def _peek(cache: SqliteCache, key: str) -> bool:
    # A peek that does not touch: read the row directly.
    with sqlite3.connect(cache.path) as conn:
        return conn.execute("SELECT 1 FROM entries WHERE key = ?", (key,)).fetchone() is not None


async def test_total_size_is_bounded(tmp_path: Path) -> None:
    cache = SqliteCache(tmp_path / DB_FILE, max_bytes=2_000)
    for i in range(20):
        assert await cache.put(f"k{i}", answer("x" * 300))
    stats = await cache.stats()
    assert stats.size_bytes <= 2_000
    assert 0 < stats.entries < 20
    assert await cache.get("k19") is not None  # the newest stays
    assert await cache.get("k0") is None
    assert not await cache.put("huge", answer("x" * 5_000))  # larger than the whole cache
    cache.close()


async def test_ttl_expires_entries_by_the_injected_clock(tmp_path: Path) -> None:
    clock = Clock(0.0)
    cache = SqliteCache(tmp_path / DB_FILE, ttl=60.0, clock=clock)
    await cache.put("k", answer())
    clock.now = 59.9
    assert await cache.get("k") is not None
    clock.now = 60.0
    assert await cache.get("k") is None
    await cache.put("other", answer())  # the write carries the expired entry's deletion
    assert (await cache.stats()).entries == 1
    clock.now = 61.0
    await cache.put("k", answer("fresh"))  # stored again: valid from now
    clock.now = 120.0
    hit = await cache.get("k")
    cache.close()
    assert hit is not None
    assert hit.text == "fresh"


async def test_stats_count_hits_misses_tokens_and_money(tmp_path: Path) -> None:
    cache = SqliteCache(tmp_path / DB_FILE)
    await cache.put("a", answer(tokens=1_000_000))
    await cache.put("b", answer(model="kimi-k2.5", tokens=2_000_000))
    await cache.get("a")
    await cache.get("a")
    await cache.get("b")
    await cache.get("nope")
    await cache.get("a", record=False)  # a hover peeking is not a saving
    await cache.aclose()

    stats = await SqliteCache(tmp_path / DB_FILE).stats()  # persisted, seen by another process
    assert (stats.hits, stats.misses, stats.entries) == (3, 1, 2)
    assert stats.saved["kimi-k2.6"] == TokenUsage(2_000_000, 20, 1_000_000, 0)
    assert stats.tokens_saved == 2 * 1_000_010 + 2_000_010
    one = Prices(input_per_mtok=1.0, cached_input_per_mtok=0.1, output_per_mtok=4.0)
    # k2.6: 1M uncached + 1M cached + 20 output; k2.5 unpriced.
    assert stats.money_saved({"kimi-k2.6": one}) == pytest.approx(1.0 + 0.1 + 20 * 4 / 1e6)
    assert stats.money_saved(one) == pytest.approx(1.1 + 80e-6 + 1.0 + 0.1 + 40e-6)
    assert stats.as_dict()["tokensSaved"] == stats.tokens_saved


async def test_a_busy_database_skips_the_write_and_never_blocks_reads(tmp_path: Path) -> None:
    cache = SqliteCache(tmp_path / DB_FILE, write_timeout=0.05)
    await cache.put("k", answer())
    other = sqlite3.connect(cache.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    other.execute("UPDATE counters SET value = value")
    try:
        assert not await cache.put("new", answer())  # skipped, not raised
        assert await cache.get("k") is not None  # a read goes through the writer
        assert await cache.get("missing") is None
        assert (await cache.stats()).skipped_writes == 1
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await cache.put("new", answer())  # and the deferred counts are written now
    cache.close()
    stats = SqliteCache(tmp_path / DB_FILE).stats_sync()
    assert (stats.hits, stats.misses, stats.skipped_writes) == (1, 1, 1)


async def test_a_corrupt_file_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / DB_FILE
    path.write_bytes(b"this is not a database at all" * 100)
    cache = SqliteCache(path)
    assert await cache.get("k") is None  # no crash
    assert await cache.put("k", answer())
    assert await cache.get("k") is not None
    assert cache.problem is not None
    assert "moved" in cache.problem
    assert (tmp_path / (DB_FILE + ".corrupt")).read_bytes().startswith(b"this is not")
    cache.close()


async def test_damage_found_while_running_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / DB_FILE
    cache = SqliteCache(path)
    for i in range(200):
        await cache.put(f"k{i}", answer("x" * 2_000))
    cache.close()
    # Scribble over the pages after the header: the file opens, its tables do not read.
    data = bytearray(path.read_bytes())
    for i in range(4096, len(data), 7):
        data[i] = 0xA5
    path.write_bytes(bytes(data))
    cache = SqliteCache(path)
    results = [await cache.get(f"k{i}") for i in range(5)]
    assert await cache.put("after", answer("after"))
    hit = await cache.get("after")
    cache.close()
    assert hit is not None
    assert hit.text == "after"
    assert all(r is None or r.text == "x" * 2_000 for r in results)
    assert cache.moved_aside


async def test_an_unusable_state_dir_turns_the_cache_off_with_a_reason(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = SqliteCache(blocker / "sub" / DB_FILE)  # a directory cannot live under a file
    assert await cache.get("k") is None
    assert not await cache.put("k", answer())
    assert cache.problem is not None
    assert "KIMI_LSP_STATE_DIR" in cache.problem
    assert (await cache.stats()).entries == 0


async def test_clear_drops_entries(cache: SqliteCache) -> None:
    await cache.put("k", answer())
    await cache.clear()
    assert await cache.get("k") is None


def test_open_cache_follows_the_setting(tmp_path: Path) -> None:
    on = open_cache("on", tmp_path)
    assert isinstance(on, SqliteCache)
    assert on.where == str(tmp_path / DB_FILE)
    assert isinstance(open_cache("off", tmp_path), DisabledCache)
    red = open_cache("redis://user:secret@127.0.0.1:1/0", tmp_path)
    assert isinstance(red, RedisCache)
    assert "secret" not in red.where
    with pytest.raises(CacheSettingError, match="KIMI_LSP_CACHE"):
        open_cache("memcached://x", tmp_path)


async def test_the_off_cache_never_hits() -> None:
    off = DisabledCache()
    assert not await off.put("k", answer())
    assert await off.get("k") is None
    assert (await off.stats()).hits == 0


async def test_a_hit_replays_as_a_stream_of_pieces() -> None:
    text = "line one\n" * 20 + "tail"
    pieces = [p async for p in replay(text)]
    assert len(pieces) > 1
    assert "".join(pieces) == text
    assert all(p.endswith("\n") for p in pieces[:-1])

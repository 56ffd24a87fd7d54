"""Several processes reading and writing one SQLite cache file at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from kimi_lsp.cache import DB_FILE, CachedResponse, SqliteCache, TokenUsage

WORKERS = 4
ROUNDS = 60


def _worker(path: str, me: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    # Each process writes its own keys and reads everybody's; it reports what it stored,
    # what it read, and anything that went wrong.
    cache = SqliteCache(Path(path), write_timeout=0.05)
    stored: list[str] = []
    hits = misses = 0
    wrong: list[str] = []
    try:
        for i in range(ROUNDS):
            key = f"w{me}-{i}"
            response = CachedResponse(f"answer {key}", "", TokenUsage(10, 5), "kimi-k2.6")
            if cache.put_sync(key, response):
                stored.append(key)
            for other in range(WORKERS):
                probe = f"w{other}-{i // 2}"
                got = cache.get_sync(probe)
                if got is None:
                    misses += 1
                else:
                    hits += 1
                    if got.text != f"answer {probe}":
                        wrong.append(probe)
        cache.close()
    except Exception as exc:  # reported, so the parent fails with the cause
        wrong.append(repr(exc))
    queue.put((me, stored, hits, misses, wrong))


def test_processes_share_one_file_without_losing_or_mixing_answers(tmp_path: Path) -> None:
    path = tmp_path / DB_FILE
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(path), me, queue)) for me in range(WORKERS)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=90) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0

    assert all(not wrong for *_, wrong in results), [w for *_, w in results if w]
    stored = {k for _, keys, *_ in results for k in keys}
    assert len(stored) >= WORKERS * ROUNDS // 2  # contention may skip some writes, not most
    check = SqliteCache(path)
    for key in stored:
        got = check.get_sync(key, record=False)
        assert got is not None, key
        assert got.text == f"answer {key}"
    stats = check.stats_sync()
    check.close()
    # Counts are written late but never lost: each process flushes what it deferred on close.
    assert stats.hits == sum(r[2] for r in results)
    assert stats.misses == sum(r[3] for r in results)
    assert stats.entries == len(stored)


def _corrupt_reader(path: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    cache = SqliteCache(Path(path))
    ok = cache.put_sync("mine", CachedResponse("mine", "", TokenUsage(), "m"))
    got = cache.get_sync("mine")
    cache.close()
    queue.put((ok, None if got is None else got.text))


def test_processes_meeting_a_corrupt_file_all_recover(tmp_path: Path) -> None:
    path = tmp_path / DB_FILE
    path.write_bytes(b"garbage" * 1000)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_corrupt_reader, args=(str(path), queue)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=90) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert any(ok for ok, _ in results)
    assert all(text in ("mine", None) for _, text in results)
    check = SqliteCache(path)
    assert check.get_sync("mine") is not None  # the rebuilt file is a working database
    check.close()

"""The default store: one SQLite file in the state dir, shared by every process of the user.

What diskcache taught: WAL mode so readers never wait for a writer, ``synchronous=NORMAL``,
writes in ``BEGIN IMMEDIATE`` transactions with a short busy timeout (a cache write that meets
contention is skipped, nothing depends on it), one connection per thread, reopened after a fork.

Reads only read. What a read wants to write (the entry's place in the LRU order, hit and miss
counts, the deletion of an expired entry) is kept in memory and written by the next write, or
right away if the database is free at that instant: a read never waits for a lock.

A damaged or unreadable file is moved aside (``cache.sqlite3.corrupt``) and rebuilt; if even
that fails the store turns itself off and says why in ``problem``. It never raises into an
action.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from kimi_lsp.cache.base import Clock, PendingCounts, _KeyMixin
from kimi_lsp.cache.model import CachedResponse, CacheStats, TokenUsage
from kimi_lsp.dbfiles import is_busy, use_wal

log = logging.getLogger(__name__)

DB_FILE = "cache.sqlite3"
SCHEMA_VERSION = "1"
DEFAULT_MAX_ENTRIES = 20_000
DEFAULT_MAX_BYTES = 128 * 1024 * 1024
WRITE_TIMEOUT_S = 0.1  # how long a put waits for the write lock before it is skipped
SETUP_TIMEOUT_S = 5.0  # creating the schema must happen, so it may wait longer

# SQLite's primary result codes that mean "this file is not a usable database".
_DAMAGED = {
    3,  # SQLITE_PERM
    8,  # SQLITE_READONLY
    11,  # SQLITE_CORRUPT
    14,  # SQLITE_CANTOPEN
    23,  # SQLITE_AUTH
    26,  # SQLITE_NOTADB
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries(
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    tick INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_tick ON entries(tick);
CREATE INDEX IF NOT EXISTS entries_by_created ON entries(created);
CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS saved(
    model TEXT PRIMARY KEY,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL
);
"""

_NEXT_TICK = "(SELECT COALESCE(MAX(tick), 0) + 1 FROM entries)"

T = TypeVar("T")


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def _is_damaged(exc: sqlite3.Error) -> bool:
    code = _code(exc)
    if code is not None:
        return code in _DAMAGED
    text = str(exc)
    return "not a database" in text or "malformed" in text or "unable to open" in text


class _Busy(Exception):
    """The write lock was not free in time."""


class _ThreadState(threading.local):
    conn: sqlite3.Connection | None = None
    generation: int = -1
    pid: int = -1
    inode: int | None = None


class SqliteCache(_KeyMixin):
    def __init__(
        self,
        path: Path,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        ttl: float | None = None,
        clock: Clock = time.time,
        write_timeout: float = WRITE_TIMEOUT_S,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be at least 1")
        self.path = Path(path)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.clock = clock
        self.write_timeout = write_timeout
        self._local = _ThreadState()
        self._lock = threading.Lock()  # guards the pending state and recovery
        self._generation = 0  # bumped when the file is rebuilt: every thread reopens
        self._pending = PendingCounts()
        self._touches: dict[str, None] = {}  # keys read since the last write, oldest first
        self._stale: dict[str, float] = {}  # expired/unreadable keys → the `created` seen
        self._problem: str | None = None
        self._disabled = False
        self._conns: list[tuple[int, sqlite3.Connection]] = []
        self.moved_aside: list[Path] = []

    # -- the public, async surface ---------------------------------------------------------

    @property
    def where(self) -> str:
        return str(self.path)

    @property
    def problem(self) -> str | None:
        return self._problem

    async def get(self, key: str, *, record: bool = True) -> CachedResponse | None:
        return await asyncio.to_thread(self.get_sync, key, record=record)

    async def put(self, key: str, response: CachedResponse) -> bool:
        return await asyncio.to_thread(self.put_sync, key, response)

    async def stats(self) -> CacheStats:
        return await asyncio.to_thread(self.stats_sync)

    async def clear(self) -> None:
        await asyncio.to_thread(self.clear_sync)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    # -- the same, blocking (for threads, processes and the CLI) -----------------------------

    def get_sync(self, key: str, *, record: bool = True) -> CachedResponse | None:
        def op(conn: sqlite3.Connection) -> CachedResponse | None:
            row = conn.execute(
                "SELECT value, created FROM entries WHERE key = ?", (key,)
            ).fetchone()
            found: CachedResponse | None = None
            with self._lock:
                if row is not None:
                    try:
                        found = CachedResponse.from_json(row[0])
                    except (ValueError, KeyError, TypeError):
                        self._stale[key] = float(row[1])
                    if found is not None and self._expired(float(row[1])):
                        self._stale[key] = float(row[1])
                        found = None
                if found is not None:
                    self._touches.pop(key, None)
                    self._touches[key] = None
                    if record:
                        self._pending.hit(found)
                elif record:
                    self._pending.misses += 1
            self._flush(conn, wait=False)
            return found

        return self._guard(op, None)

    def put_sync(self, key: str, response: CachedResponse) -> bool:
        stamped = replace(response, created=self.clock())
        value = stamped.to_json()
        size = len(value.encode("utf-8", "surrogatepass")) + len(key)
        if size > self.max_bytes:
            return False  # larger than the whole cache: not worth evicting everything for

        def op(conn: sqlite3.Connection) -> bool:
            def write(cur: sqlite3.Connection) -> None:
                cur.execute(
                    "INSERT INTO entries(key, value, size, created, tick) "
                    f"VALUES (?, ?, ?, ?, {_NEXT_TICK}) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                    "size = excluded.size, created = excluded.created, tick = excluded.tick",
                    (key, value, size, stamped.created),
                )
                self._evict(cur)

            try:
                self._write(conn, write, timeout=self.write_timeout)
            except _Busy:
                with self._lock:
                    self._pending.skipped_writes += 1
                return False
            return True

        return self._guard(op, False)

    def stats_sync(self) -> CacheStats:
        def op(conn: sqlite3.Connection) -> CacheStats:
            counters = dict(conn.execute("SELECT name, value FROM counters").fetchall())
            saved = {
                row[0]: TokenUsage(*row[1:])
                for row in conn.execute(
                    "SELECT model, prompt_tokens, completion_tokens, cached_tokens, "
                    "reasoning_tokens FROM saved"
                )
            }
            entries, size = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries"
            ).fetchone()
            stats = CacheStats(
                hits=int(counters.get("hits", 0)),
                misses=int(counters.get("misses", 0)),
                saved=saved,
                entries=int(entries),
                size_bytes=int(size),
                skipped_writes=int(counters.get("skipped_writes", 0)),
            )
            with self._lock:
                return self._pending.added_to(stats)

        return self._guard(op, CacheStats())

    def clear_sync(self) -> None:
        def op(conn: sqlite3.Connection) -> None:
            with self._lock:
                self._touches.clear()
                self._stale.clear()
            self._write(conn, lambda c: c.execute("DELETE FROM entries"), timeout=SETUP_TIMEOUT_S)

        self._guard(op, None)

    def flush(self) -> bool:
        """Write the counts and LRU touches reads left behind; waits for the write lock."""
        return bool(self._guard(lambda conn: self._flush(conn, wait=True), False))

    def close(self) -> None:
        """Write what reads left behind (if the database is free soon) and close."""
        if not self._disabled:
            self.flush()
        with self._lock:
            conns, self._conns = self._conns, []
        for pid, conn in conns:
            if pid == os.getpid():
                conn.close()
        self._local.conn = None

    # -- internals -------------------------------------------------------------------------

    def _expired(self, created: float) -> bool:
        return self.ttl is not None and self.clock() - created >= self.ttl

    def _connect(self) -> sqlite3.Connection:
        st = self._local
        pid = os.getpid()
        if st.conn is not None and st.generation == self._generation and st.pid == pid:
            return st.conn
        if st.conn is not None and st.pid == pid:
            st.conn.close()  # the file was rebuilt: this connection points at the old one
        st.conn = None
        generation = self._generation
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            st.inode = self.path.stat().st_ino
        except FileNotFoundError:
            st.inode = None
        conn = sqlite3.connect(
            self.path, timeout=SETUP_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            use_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            self._ensure_schema(conn)
            conn.execute(f"PRAGMA busy_timeout = {int(self.write_timeout * 1000)}")
        except BaseException:
            conn.close()
            raise
        st.inode = self.path.stat().st_ino
        st.conn, st.generation, st.pid = conn, generation, pid
        with self._lock:
            self._conns.append((pid, conn))
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        def version() -> str | None:
            try:
                row = conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return None
                raise
            return None if row is None else str(row[0])

        if version() == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = version()
            if found != SCHEMA_VERSION:
                if found is not None:  # an older layout: its entries are not worth migrating
                    for table in ("entries", "counters", "saved", "meta"):
                        conn.execute(f"DROP TABLE IF EXISTS {table}")
                # Not executescript: it would COMMIT the transaction we hold first.
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)
                conn.execute(
                    "INSERT OR REPLACE INTO meta(name, value) VALUES ('schema', ?)",
                    (SCHEMA_VERSION,),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _guard(self, op: Callable[[sqlite3.Connection], T], default: T) -> T:
        """Run ``op`` on this thread's connection; a damaged file is moved aside and rebuilt
        once, and anything else the store cannot handle turns into ``default``."""
        if self._disabled:
            return default
        for attempt in range(2):
            try:
                return op(self._connect())
            except sqlite3.Error as exc:
                if is_busy(exc):
                    return default  # only setup can get here: retry next time
                if not _is_damaged(exc) or attempt:
                    self._give_up(exc)
                    return default
                try:
                    self._recover(exc)
                except OSError as move_exc:
                    self._give_up(move_exc)
                    return default
            except OSError as exc:  # the state dir cannot be created or read
                self._give_up(exc)
                return default
        return default

    def _give_up(self, exc: BaseException) -> None:
        self._disabled = True
        self._problem = (
            f"the response cache at {self.path} cannot be used ({exc}); answers are not cached. "
            "Check that the state dir (KIMI_LSP_STATE_DIR) is writable, or set KIMI_LSP_CACHE=off."
        )
        log.warning("%s", self._problem)

    def _recover(self, exc: sqlite3.Error) -> None:
        st = self._local
        with self._lock:
            if st.conn is not None and st.generation != self._generation:
                return  # another thread of this process already rebuilt it
            try:
                current = self.path.stat().st_ino
            except FileNotFoundError:
                current = None
            if current is None or (st.inode is not None and current != st.inode):
                self._generation += 1  # another process already moved it aside
                return
            aside = self.path.with_name(self.path.name + ".corrupt")
            for suffix in ("", "-wal", "-shm"):
                src = Path(str(self.path) + suffix)
                dst = Path(str(aside) + suffix)
                if src.exists():
                    os.replace(src, dst)  # one old copy is kept for a bug report, no more
                elif dst.exists():
                    dst.unlink()
            self.moved_aside.append(aside)
            self._generation += 1
            self._touches.clear()
            self._stale.clear()
            self._problem = (
                f"the response cache {self.path} could not be read ({exc}); it was moved to "
                f"{aside} and a new one was started"
            )
        log.warning("%s", self._problem)

    def _write(
        self,
        conn: sqlite3.Connection,
        body: Callable[[sqlite3.Connection], object],
        *,
        timeout: float,
    ) -> None:
        """One ``BEGIN IMMEDIATE`` transaction carrying what reads left behind, then ``body``.
        Raises ``_Busy`` when the lock was not free within ``timeout``."""
        with self._lock:
            counts = self._pending.take()
            touches, self._touches = self._touches, {}
            stale, self._stale = self._stale, {}

        def give_back() -> None:
            with self._lock:
                self._pending.give_back(counts)
                self._touches = {**touches, **self._touches}
                self._stale = {**stale, **self._stale}

        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            give_back()
            if is_busy(exc):
                raise _Busy from exc
            raise
        finally:
            if timeout != self.write_timeout:
                conn.execute(f"PRAGMA busy_timeout = {int(self.write_timeout * 1000)}")
        try:
            self._apply(conn, counts, touches, stale)
            body(conn)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            give_back()
            if isinstance(exc, sqlite3.OperationalError) and is_busy(exc):
                raise _Busy from exc
            raise

    def _flush(self, conn: sqlite3.Connection, *, wait: bool) -> bool:
        with self._lock:
            if not (self._pending or self._touches or self._stale):
                return True
        try:
            self._write(conn, lambda c: None, timeout=SETUP_TIMEOUT_S if wait else 0.0)
        except _Busy:
            return False
        return True

    def _apply(
        self,
        conn: sqlite3.Connection,
        counts: PendingCounts,
        touches: dict[str, None],
        stale: dict[str, float],
    ) -> None:
        for key, created in stale.items():
            # Only the entry we saw: another process may have stored a fresh one since.
            conn.execute("DELETE FROM entries WHERE key = ? AND created <= ?", (key, created))
        for key in touches:
            conn.execute(f"UPDATE entries SET tick = {_NEXT_TICK} WHERE key = ?", (key,))
        for name, value in (
            ("hits", counts.hits),
            ("misses", counts.misses),
            ("skipped_writes", counts.skipped_writes),
        ):
            if value:
                conn.execute(
                    "INSERT INTO counters(name, value) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                    (name, value),
                )
        for model, u in counts.saved.items():
            conn.execute(
                "INSERT INTO saved(model, prompt_tokens, completion_tokens, cached_tokens, "
                "reasoning_tokens) VALUES (?, ?, ?, ?, ?) ON CONFLICT(model) DO UPDATE SET "
                "prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
                "completion_tokens = completion_tokens + excluded.completion_tokens, "
                "cached_tokens = cached_tokens + excluded.cached_tokens, "
                "reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens",
                (model, u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.reasoning_tokens),
            )

    def _evict(self, conn: sqlite3.Connection) -> None:
        """Expired entries first, then the least recently used until within both bounds."""
        if self.ttl is not None:
            conn.execute("DELETE FROM entries WHERE created <= ?", (self.clock() - self.ttl,))
        count, total = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries"
        ).fetchone()
        if count <= self.max_entries and total <= self.max_bytes:
            return
        doomed: list[tuple[str]] = []
        for key, size in conn.execute("SELECT key, size FROM entries ORDER BY tick"):
            if count <= self.max_entries and total <= self.max_bytes:
                break
            doomed.append((key,))
            count -= 1
            total -= size
        conn.executemany("DELETE FROM entries WHERE key = ?", doomed)

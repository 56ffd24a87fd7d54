"""The shared ledger in one SQLite file: every process of the user admits against it.

WAL mode; each admission is one ``BEGIN IMMEDIATE`` transaction (read the window and the
queue, decide, record), so N processes never admit more than the limit between them and
never pass a waiter that is ahead. "database is locked" is retried, never raised: a quota
write may not be skipped. Leases and queue entries record their process id; one whose
process is gone (killed) or whose time ran out (no heartbeat, no re-check) is dropped.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from kimi_lsp.dbfiles import is_busy, use_wal
from kimi_lsp.quota.ledger import (
    DAY,
    QUEUE_TTL_S,
    Admit,
    Charge,
    Decision,
    Wait,
    Waiter,
    Window,
    ahead_of,
    decide,
    never,
    queue_report,
    queue_wait,
)
from kimi_lsp.quota.limits import Limits
from kimi_lsp.quota.types import LEASE_TTL_S, Admitted

__all__ = ["DB_FILE", "LEASE_TTL_S", "Admitted", "SqliteLedger"]

DB_FILE = "quota.sqlite3"
SCHEMA_VERSION = 4  # 2: ids never reused (a stale holder must not settle a newer lease)
# 3: the queue of waiters; 4: which leases Kimi has answered
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS charges (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, tokens INTEGER NOT NULL,
        model TEXT NOT NULL DEFAULT '', batch INTEGER NOT NULL DEFAULT 0,
        actual_in INTEGER, actual_cached INTEGER, actual_out INTEGER)""",
    "CREATE INDEX IF NOT EXISTS charges_at ON charges(at)",
    """CREATE TABLE IF NOT EXISTS leases (
        id INTEGER PRIMARY KEY AUTOINCREMENT, charge_id INTEGER NOT NULL,
        pid INTEGER NOT NULL, expires REAL NOT NULL, answered INTEGER NOT NULL DEFAULT 0)""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL)",
    """CREATE TABLE IF NOT EXISTS queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT, batch INTEGER NOT NULL, enqueued REAL NOT NULL,
        pid INTEGER NOT NULL, expires REAL NOT NULL,
        waiting_for TEXT NOT NULL DEFAULT '', until REAL NOT NULL DEFAULT 0)""",
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SqliteLedger:
    def __init__(self, path: Path, *, queue_ttl: float = QUEUE_TTL_S) -> None:
        self.path = Path(path)
        self.queue_ttl = queue_ttl
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._tx() as db:  # one process creates or upgrades; the others wait for it
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                if version < 2:
                    # The ledger only holds the last day's charges: an old one is dropped, not
                    # migrated (at worst this forgets a day of usage once).
                    db.execute("DROP TABLE IF EXISTS charges")
                    db.execute("DROP TABLE IF EXISTS leases")
                for statement in SCHEMA:  # 2 -> 3 only adds the queue
                    db.execute(statement)
                columns = {row[1] for row in db.execute("PRAGMA table_info(leases)")}
                if "answered" not in columns:  # 3 -> 4
                    db.execute("ALTER TABLE leases ADD COLUMN answered INTEGER NOT NULL DEFAULT 0")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != os.getpid():
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            use_wal(db)
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db, self._local.pid = db, os.getpid()
        return db

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            while True:
                try:
                    self.db.execute("BEGIN IMMEDIATE")
                    return self.db
                except sqlite3.OperationalError as exc:  # locked past the busy timeout
                    if not is_busy(exc):
                        raise
                    time.sleep(0.01)

        def __exit__(self, kind: object, exc: object, tb: object) -> None:
            self.db.execute("COMMIT" if kind is None else "ROLLBACK")

    def _tx(self) -> SqliteLedger._Tx:
        return SqliteLedger._Tx(self._db())

    def _window(self, db: sqlite3.Connection, now: float) -> tuple[Window, float]:
        db.execute("DELETE FROM charges WHERE at <= ?", (now - DAY,))
        for lease_id, pid, expires in db.execute("SELECT id, pid, expires FROM leases").fetchall():
            if expires < now or not _alive(pid):
                db.execute("DELETE FROM leases WHERE id = ?", (lease_id,))
        open_leases, unanswered = db.execute(
            "SELECT COUNT(*), COUNT(*) - COALESCE(SUM(answered), 0) FROM leases"
        ).fetchone()
        charges = [
            Charge(at, tokens)
            for at, tokens in db.execute("SELECT at, tokens FROM charges ORDER BY at, id")
        ]
        row = db.execute("SELECT value FROM meta WHERE key = 'cooldown_until'").fetchone()
        return Window(open_leases, charges, unanswered), (row[0] if row else 0.0)

    def _queue(self, db: sqlite3.Connection, now: float) -> list[Waiter]:
        rows = db.execute(
            "SELECT id, batch, enqueued, pid, expires, waiting_for, until FROM queue"
        ).fetchall()
        live = []
        for entry, batch, enqueued, pid, expires, waiting_for, until in rows:
            if expires < now or not _alive(pid):
                db.execute("DELETE FROM queue WHERE id = ?", (entry,))
            else:
                live.append(Waiter(entry, bool(batch), enqueued, waiting_for, until))
        return live

    def try_admit(
        self,
        now: float,
        limits: Limits,
        tokens: int,
        *,
        model: str,
        batch: bool,
        reserve: float,
        entry: int | None = None,
        join: bool = False,
        keep: Sequence[int] = (),
        probe_above: int | None = None,
    ) -> Decision | Admitted:
        """Admit the request if it fits and no live waiter is ahead of it; else say how long
        to wait (``Wait.entry``: its place in the queue, taken if ``join``, kept if given as
        ``entry``; ``keep``: the caller's other entries, kept alive), or why it never fits
        (its entry, if any, is dropped). ``probe_above``: as ``ledger.decide``."""
        with self._tx() as db:
            window, cooldown = self._window(db, now)
            if entry is not None:  # a re-check is the heartbeat (a lapsed entry keeps its place)
                db.execute(
                    "INSERT INTO queue (id, batch, enqueued, pid, expires) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET expires = excluded.expires",
                    (entry, int(batch), now, os.getpid(), now + self.queue_ttl),
                )
            for other in keep:
                db.execute(
                    "UPDATE queue SET expires = ? WHERE id = ?", (now + self.queue_ttl, other)
                )
            queue = self._queue(db, now)
            refused = never(now, limits, window, tokens, batch=batch, reserve=reserve)
            if refused is not None:
                if entry is not None:
                    db.execute("DELETE FROM queue WHERE id = ?", (entry,))
                return refused
            ahead = ahead_of(queue, batch, entry)
            if ahead:
                waiting = queue_wait(now, ahead)
                mine = self._place(db, now, batch, entry, join, "", 0.0)
                return replace(waiting, entry=mine)
            decision = decide(
                now,
                limits,
                window,
                tokens,
                batch=batch,
                reserve=reserve,
                cooldown_until=cooldown,
                probe_above=probe_above,
            )
            if isinstance(decision, Wait):
                until = now + decision.seconds
                mine = self._place(db, now, batch, entry, join, decision.limit, until)
                return replace(decision, entry=mine)
            if not isinstance(decision, Admit):
                return decision
            if entry is not None:
                db.execute("DELETE FROM queue WHERE id = ?", (entry,))
            charge = db.execute(
                "INSERT INTO charges (at, tokens, model, batch) VALUES (?, ?, ?, ?)",
                (now, tokens, model, int(batch)),
            ).lastrowid
            lease = db.execute(
                "INSERT INTO leases (charge_id, pid, expires) VALUES (?, ?, ?)",
                (charge, os.getpid(), now + LEASE_TTL_S),
            ).lastrowid
            assert charge is not None
            assert lease is not None
            return Admitted(charge, lease, opened=window.open_leases + 1)

    def _place(
        self,
        db: sqlite3.Connection,
        now: float,
        batch: bool,
        entry: int | None,
        join: bool,
        waiting_for: str,
        until: float,
    ) -> int:
        """The waiter's entry (a newcomer that joins gets the next one), with what it waits
        for; 0 if it neither has nor takes one."""
        if entry is None:
            if not join:
                return 0
            entry = db.execute(
                "INSERT INTO queue (batch, enqueued, pid, expires) VALUES (?, ?, ?, ?)",
                (int(batch), now, os.getpid(), now + self.queue_ttl),
            ).lastrowid
            assert entry is not None
        db.execute(
            "UPDATE queue SET waiting_for = ?, until = ? WHERE id = ?", (waiting_for, until, entry)
        )
        return entry

    def leave(self, entry: int) -> None:
        """The waiter gave up (cancelled): the ones behind it move up."""
        with self._tx() as db:
            db.execute("DELETE FROM queue WHERE id = ?", (entry,))

    def renew(self, lease_id: int, now: float) -> None:
        with self._tx() as db:
            db.execute("UPDATE leases SET expires = ? WHERE id = ?", (now + LEASE_TTL_S, lease_id))

    def answered(self, admitted: Admitted, now: float) -> int:
        """Kimi counted the request from some time before ``now``: keep its charge from then.
        Returns the requests open now that Kimi has answered, this one included: they are
        open at Kimi together (one admitted but still on its way is not there yet)."""
        with self._tx() as db:
            db.execute("UPDATE charges SET at = MAX(at, ?) WHERE id = ?", (now, admitted.charge_id))
            db.execute("UPDATE leases SET answered = 1 WHERE id = ?", (admitted.lease_id,))
            row = db.execute(
                "SELECT COUNT(*) FROM leases WHERE answered = 1 AND expires >= ?", (now,)
            ).fetchone()
            return int(row[0])

    def settle(self, admitted: Admitted, actual: tuple[int, int, int] | None) -> None:
        """Release the lease; record what the request really used (for cost reporting).
        The window keeps the admission charge: that is what Kimi counted."""
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE id = ?", (admitted.lease_id,))
            if actual is not None:
                db.execute(
                    "UPDATE charges SET actual_in = ?, actual_cached = ?, actual_out = ? "
                    "WHERE id = ?",
                    (*actual, admitted.charge_id),
                )

    def refund(self, admitted: Admitted) -> None:
        """Kimi refused the request (a 429) and counted nothing: drop its charge and lease."""
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE id = ?", (admitted.lease_id,))
            db.execute("DELETE FROM charges WHERE id = ?", (admitted.charge_id,))

    def cool_down(self, seconds: float, now: float) -> None:
        """Every process waits until ``now + seconds`` (a later cool-down is kept)."""
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'cooldown_until'").fetchone()
            if row is None or row[0] < now + seconds:
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    ("cooldown_until", now + seconds),
                )

    def set_meta(self, key: str, value: float) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def get_meta(self, key: str, default: float = 0.0) -> float:
        row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return float(row[0]) if row else default

    def metas(self, keys: Sequence[str]) -> dict[str, float]:
        marks = ", ".join("?" * len(keys))
        rows = self._db().execute(f"SELECT key, value FROM meta WHERE key IN ({marks})", keys)
        return {k: float(v) for k, v in rows}

    def usage(self, now: float) -> dict[str, object]:
        with self._tx() as db:
            window, cooldown = self._window(db, now)
            queue = self._queue(db, now)
            minute = [c for c in window.charges if c.at > now - 60]
            by_model = db.execute(
                "SELECT model, SUM(COALESCE(actual_in, 0)), SUM(COALESCE(actual_cached, 0)), "
                "SUM(COALESCE(actual_out, 0)), COUNT(*) FROM charges GROUP BY model"
            ).fetchall()
        return {
            "store": f"sqlite: {self.path}",
            "openRequests": window.open_leases,
            "requestsLastMinute": len(minute),
            "tokensLastMinute": sum(c.tokens for c in minute),
            "tokensLastDay": sum(c.tokens for c in window.charges),
            "cooldownSeconds": max(0.0, cooldown - now),
            "queue": queue_report(now, queue),
            "byModel": {
                m: {"input": i, "cached": c, "output": o, "requests": n}
                for m, i, c, o, n in by_model
            },
        }

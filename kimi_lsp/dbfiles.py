"""What every SQLite file kimi-lsp shares between processes needs on opening.

``PRAGMA journal_mode=WAL`` needs the file to itself for a moment: when another process is
creating or upgrading the same file (two editors, or an editor and the CLI, starting at
once), SQLite answers "database is locked" at once instead of waiting out the busy timeout.
``use_wal`` waits for it instead, as a transaction would; ``is_busy`` is what every wait on
another connection's lock (the quota ledger's transactions, the cache's writes) retries on."""

from __future__ import annotations

import sqlite3
import time

WAL_WAIT_S = 30.0
_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED


def is_busy(exc: sqlite3.Error) -> bool:
    """Another connection holds the lock: worth waiting and trying again."""
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc)
    return (code is not None and (int(code) & 0xFF) in _BUSY) or "locked" in text or "busy" in text


def use_wal(conn: sqlite3.Connection, *, wait: float = WAL_WAIT_S) -> None:
    """Put ``conn``'s file in WAL mode (a no-op once it is), retrying while another
    connection holds the lock, for at most ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)

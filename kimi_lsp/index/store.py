"""The on-disk index: one SQLite file per workspace in the state dir.

Tags are stored once per (language, content hash) as a marshal blob, so a restart re-parses
only files whose content changed, and two copies of a file share one entry. The schema is
versioned together with a fingerprint of the tag queries: when either changes, or the file is
not a readable database, it is deleted and rebuilt (logged, never an error for the user).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kimi_lsp.dbfiles import use_wal
from kimi_lsp.index.languages import LANGUAGES, query_source

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: each tags row also holds its name counts (``defs``, ``refs``)
EXTRACTOR_VERSION = 3  # bump when extract.py changes what it produces

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    path TEXT PRIMARY KEY,
    language TEXT NOT NULL,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    definitions INTEGER NOT NULL,
    refs INTEGER NOT NULL
);
CREATE TABLE tags (key TEXT PRIMARY KEY, data BLOB NOT NULL, defs BLOB NOT NULL,
                   refs BLOB NOT NULL);
"""


def tags_fingerprint() -> str:
    """Changes whenever a query or the extractor changes, invalidating stored tags."""
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{SCHEMA_VERSION}/{EXTRACTOR_VERSION}".encode())
    for name in sorted(LANGUAGES):
        h.update(name.encode())
        h.update(query_source(name).encode())
    return h.hexdigest()


def database_path(state_dir: Path, roots: Iterable[Path]) -> Path:
    """One database per set of workspace folders."""
    key = "\n".join(sorted(str(r) for r in roots))
    digest = hashlib.blake2b(key.encode(), digest_size=6).hexdigest()
    return state_dir / "index" / f"index-{digest}.sqlite3"


@dataclass(frozen=True, slots=True)
class StoredFile:
    path: Path
    language: str
    content_hash: str
    size: int
    mtime_ns: int
    blob: bytes
    lines: int
    definitions: int
    references: int
    def_names: bytes  # marshal of {name: count} over the definitions: a name query decodes
    ref_names: bytes  # these, not every file's tags (the same for references)


def tags_key(language: str, chash: str) -> str:
    return f"{language}:{chash}"


class IndexStore:
    """The SQLite side of the index. One connection, taken by one thread at a time: the scan
    saves its batches while the file watcher saves a changed file (two transactions begun
    at once on one connection fail with "cannot start a transaction within a transaction")."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rebuilt = False  # True when an unreadable or outdated database was replaced
        self._fingerprint = tags_fingerprint()
        self._lock = threading.RLock()
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = self._connect()
            if self._valid(conn):
                return conn
            conn.close()
            log.info("index: %s was made by another version; rebuilding it", self.path)
        except sqlite3.DatabaseError as exc:
            log.warning("index: %s is unreadable (%s); rebuilding it", self.path, exc)
        self.rebuilt = True
        self._delete_files()
        conn = self._connect()
        with conn:
            conn.executescript(_SCHEMA)
            conn.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("schema", str(SCHEMA_VERSION)), ("fingerprint", self._fingerprint)],
            )
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        # Pages of 16 KiB, not 4: a file's tags (a blob of ~6 KiB on average) span fewer
        # overflow pages; writing the cold index and reading it back at a warm start both
        # cost less. (Only a new database takes it; an existing one keeps its page size.)
        conn.execute("PRAGMA page_size=16384")
        use_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _valid(self, conn: sqlite3.Connection) -> bool:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            with conn:
                conn.executescript(_SCHEMA)
                conn.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [("schema", str(SCHEMA_VERSION)), ("fingerprint", self._fingerprint)],
                )
            return True
        if not {"meta", "files", "tags"} <= tables:
            return False
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        return meta.get("schema") == str(SCHEMA_VERSION) and (
            meta.get("fingerprint") == self._fingerprint
        )

    def _delete_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def load(self) -> Iterator[StoredFile]:
        """Every stored file with its tags blob."""
        with self._lock:
            rows = self._rows()
        for path, language, chash, size, mtime_ns, blob, lines, ndefs, nrefs, dn, rn in rows:
            yield StoredFile(
                Path(path), language, chash, size, mtime_ns, blob, lines, ndefs, nrefs, dn, rn
            )

    def _rows(self) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(
                "SELECT f.path, f.language, f.hash, f.size, f.mtime_ns, t.data, f.lines, "
                "f.definitions, f.refs, t.defs, t.refs FROM files f "
                "JOIN tags t ON t.key = f.language || ':' || f.hash"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            log.warning("index: reading %s failed (%s); rebuilding it", self.path, exc)
            self._reset()
            return []

    def save(self, files: Iterable[StoredFile], removed: Iterable[Path] = ()) -> None:
        """Write changed files (and their tags) and forget removed ones, in one transaction."""
        changed = list(files)
        gone = [str(p) for p in removed]
        if not changed and not gone:
            return
        with self._lock:
            try:
                self._save(changed, gone)
            except sqlite3.DatabaseError as exc:
                log.warning("index: writing %s failed (%s); rebuilding it", self.path, exc)
                self._reset()
                self._save(changed, gone)

    def _save(self, files: list[StoredFile], removed: list[str]) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        str(f.path),
                        f.language,
                        f.content_hash,
                        f.size,
                        f.mtime_ns,
                        f.lines,
                        f.definitions,
                        f.references,
                    )
                    for f in files
                ],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO tags VALUES (?, ?, ?, ?)",
                [
                    (tags_key(f.language, f.content_hash), f.blob, f.def_names, f.ref_names)
                    for f in files
                ],
            )
            conn.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in removed])
            if removed:
                # Tags no file points at any more.
                conn.execute(
                    "DELETE FROM tags WHERE key NOT IN (SELECT language || ':' || hash FROM files)"
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _reset(self) -> None:
        with closing(self._conn):
            pass
        self._delete_files()
        self._conn = self._open()
        self.rebuilt = True

    def close(self) -> None:
        with self._lock:
            self._conn.close()

"""Processes opening one new SQLite file at once (two editors and the CLI starting together):
none of them fails on "database is locked" while another switches the file to WAL."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from multiprocessing.synchronize import Barrier
from pathlib import Path
from queue import Queue

from kimi_lsp.dbfiles import use_wal

PROCESSES = 3
ROUNDS = 40  # without use_wal about one process in ten fails here


def _open(path: Path, start: Barrier, results: Queue[str]) -> None:
    start.wait()
    try:
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        use_wal(db)
        db.execute("BEGIN IMMEDIATE")
        db.execute("CREATE TABLE IF NOT EXISTS t (x)")
        db.execute("COMMIT")
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        results.put(f"ok {mode}")
    except sqlite3.Error as exc:
        results.put(f"error {exc}")


def test_processes_opening_one_new_file_at_once_all_get_it_in_wal_mode(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    outcomes: list[str] = []
    for i in range(ROUNDS):
        start, results = ctx.Barrier(PROCESSES), ctx.Queue()
        procs = [
            ctx.Process(target=_open, args=(tmp_path / f"{i}.db", start, results))
            for _ in range(PROCESSES)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
        outcomes += [results.get(timeout=10) for _ in procs]
    assert outcomes == ["ok wal"] * (PROCESSES * ROUNDS), sorted(set(outcomes))

"""One SQLite ledger, many processes: exactly the limit is admitted; a killed holder's lease
comes back."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kimi_lsp.quota import Limits, SqliteLedger, Wait
from kimi_lsp.quota.sqlite import Admitted

NOW = 1_000_000.0  # one instant for everyone: the window cannot move during the test


def _hammer(path: str, attempts: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    ledger = SqliteLedger(Path(path))
    limits = Limits(concurrency=None, rpm=25, tpm=None, tpd=None)
    admitted = errors = 0
    for _ in range(attempts):
        try:
            outcome = ledger.try_admit(NOW, limits, 10, model="m", batch=False, reserve=0.2)
        except Exception:  # "database is locked" must never escape
            errors += 1
            continue
        if isinstance(outcome, Admitted):
            admitted += 1
            ledger.settle(outcome, (10, 0, 5))
    queue.put((admitted, errors))


def test_eight_processes_admit_exactly_the_limit(tmp_path: Path) -> None:
    path = str(tmp_path / "quota.sqlite3")
    SqliteLedger(Path(path))  # create the schema once
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_hammer, args=(path, 20, queue)) for _ in range(8)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(30)
    assert sum(a for a, _ in results) == 25
    assert sum(e for _, e in results) == 0


HOLDER = """
import sys, time
from pathlib import Path
from kimi_lsp.quota import Limits, SqliteLedger
ledger = SqliteLedger(Path(sys.argv[1]))
out = ledger.try_admit(time.time(), Limits(1, None, None, None), 1, model="m", batch=False,
                       reserve=0.2)
print(type(out).__name__, flush=True)
time.sleep(60)
"""


def test_a_killed_holder_frees_its_lease(tmp_path: Path) -> None:
    path = tmp_path / "quota.sqlite3"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "Admitted"
        ledger = SqliteLedger(path)
        limits = Limits(concurrency=1, rpm=None, tpm=None, tpd=None)
        blocked = ledger.try_admit(time.time(), limits, 1, model="m", batch=False, reserve=0.2)
        assert blocked == Wait(0.25, "concurrency")
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        freed = ledger.try_admit(time.time(), limits, 1, model="m", batch=False, reserve=0.2)
        assert isinstance(freed, Admitted)
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout:
            holder.stdout.close()


def test_a_lease_without_heartbeat_expires(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "quota.sqlite3")
    limits = Limits(concurrency=1, rpm=None, tpm=None, tpd=None)
    first = ledger.try_admit(NOW, limits, 1, model="m", batch=False, reserve=0.2)
    assert isinstance(first, Admitted)
    assert isinstance(
        ledger.try_admit(NOW + 5, limits, 1, model="m", batch=False, reserve=0.2), Wait
    )
    later = ledger.try_admit(NOW + 31, limits, 1, model="m", batch=False, reserve=0.2)
    assert isinstance(later, Admitted)

"""`kimi-lsp quota`: what every process of this user sees of the shared budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from kimi_lsp.quota import Limits, SqliteLedger
from kimi_lsp.quota.sqlite import Admitted


def quota(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kimi_lsp", "quota", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_quota_reports_limits_usage_and_cost() -> None:
    state = Path(os.environ["KIMI_LSP_STATE_DIR"])
    ledger = SqliteLedger(state / "quota.sqlite3")
    admitted = ledger.try_admit(
        time.time(),
        Limits(None, None, None, None),
        3_000,
        model="kimi-k2.6",
        batch=False,
        reserve=0.2,
    )
    assert isinstance(admitted, Admitted)
    ledger.settle(admitted, (1_000_000, 500_000, 100_000))
    result = quota("--json", env={"KIMI_LSP_TIER": "0", "KIMI_LSP_LIMITS": "rpm=5"})
    assert result.returncode == 0, result.stderr
    snap = json.loads(result.stdout)
    assert snap["limits"] == {"concurrency": 1, "rpm": 5, "tpm": 500_000, "tpd": 1_500_000}
    assert snap["requestsLastMinute"] == 1
    assert snap["tokensLastMinute"] == 3_000
    # kimi-k2.6: 0.5 M cached at 0.16, 0.5 M at 0.95, 0.1 M out at 4.00 per million
    assert abs(snap["costUsdLastDay"] - (0.08 + 0.475 + 0.4)) < 1e-6
    assert snap["cache"]["hits"] == 0
    assert snap["cache"]["usdSaved"] == 0
    text = quota()
    assert "tier 1" in text.stdout
    assert "requests     1 in the last minute of 200" in text.stdout


def test_quota_shows_every_process_waiting_and_the_reserve() -> None:
    state = Path(os.environ["KIMI_LSP_STATE_DIR"])
    ledger = SqliteLedger(state / "quota.sqlite3", queue_ttl=120)
    one = Limits(1, None, None, None)
    held = ledger.try_admit(time.time(), one, 1, model="m", batch=False, reserve=0.1)
    assert isinstance(held, Admitted)
    for batch in (True, True, False):  # this test's process waits, as an editor would
        ledger.try_admit(time.time(), one, 1, model="m", batch=batch, reserve=0.1, join=True)
    snap = json.loads(quota("--json", env={"KIMI_LSP_QUOTA_RESERVE": "0.25"}).stdout)
    assert snap["reserve"] == 0.25
    assert snap["queue"]["interactive"] == 1
    assert snap["queue"]["batch"] == 2
    assert snap["queue"]["head"]["batch"] is False  # interactive first, though it came last
    assert snap["queue"]["head"]["waitingFor"] == "concurrency"
    text = quota().stdout
    assert "reserve      10% of each limit kept for interactive work" in text
    assert "queue        1 interactive, 2 batch waiting; the first (interactive)" in text

"""`kimi-lsp quota`: what every process of this user sees of the shared budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from kimi_lsp.config import API_KEY_ENV
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


def learn(state: Path, limit: str, value: int) -> None:
    """What a process of this user heard from Kimi in a 429, in the shared ledger."""
    import asyncio

    from kimi_lsp.quota import QuotaGovernor, limits_for

    gov = QuotaGovernor.in_state_dir(state, limits_for(1, assumed=True))
    asyncio.run(gov.rate_limited(0.0, limit, value))


def test_quota_shows_each_limit_with_its_source_and_the_tier_kimis_limits_fit() -> None:
    state = Path(os.environ["KIMI_LSP_STATE_DIR"])
    text = quota().stdout
    assert "tier 1 (assumed: KIMI_LSP_TIER is not set)" in text
    assert "requests     0 in the last minute of 200  [tier 1 table (assumed)]" in text
    assert "advice" not in text
    before = time.strftime("%H:%M")
    learn(state, "rpm", 3)
    hhmm = time.strftime("%H:%M")
    text = quota(env={"KIMI_LSP_LIMITS": "tpm=100000"}).stdout
    assert any(
        f"requests     0 in the last minute of 3  [learned from Kimi at {t}]" in text
        for t in (before, hhmm)
    ), text
    assert "tokens/min   0 of 100000  [your setting (KIMI_LSP_LIMITS)]" in text
    assert "concurrency  0 open of 50  [tier 1 table (assumed)]" in text
    assert "set KIMI_LSP_TIER=0" in text
    snap = json.loads(quota("--json").stdout)
    assert snap["learned"]["rpm"]["value"] == 3
    assert snap["learned"]["rpm"]["atText"] in (before, hhmm)
    # a tier set that Kimi's statements fit: nothing to advise
    assert "advice" not in quota(env={"KIMI_LSP_TIER": "0"}).stdout


def test_doctor_suggests_the_tier_kimis_stated_limits_fit() -> None:
    state = Path(os.environ["KIMI_LSP_STATE_DIR"])
    learn(state, "concurrency", 1)
    learn(state, "rpm", 3)
    result = subprocess.run(
        [sys.executable, "-m", "kimi_lsp", "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **dict.fromkeys(API_KEY_ENV, "")},  # the quota check needs no key
    )
    lines = result.stdout.splitlines()
    check = next(i for i, line in enumerate(lines) if "] quota:" in line)
    assert lines[check].startswith("  [warn] quota: concurrency 1 (learned from Kimi at ")
    assert "RPM 3 (learned from Kimi at " in lines[check]
    assert "TPM 2,000,000 (tier 1 table (assumed))" in lines[check]
    assert "set KIMI_LSP_TIER=0" in lines[check + 1]
    assert lines[check + 1].strip().startswith("fix: Kimi stated concurrency 1, RPM 3")


def test_quota_at_tier_0_says_what_the_reserve_costs_and_gives() -> None:
    text = quota(env={"KIMI_LSP_TIER": "0"}).stdout
    lines = [line for line in text.splitlines() if line.startswith("  trade-off ")]
    assert len(lines) == 1, text
    assert "keeps 1 of 3 requests a minute for interactive work" in lines[0]
    assert "KIMI_LSP_QUOTA_RESERVE=0 lets batch work use all 3" in lines[0]
    assert "trade-off" not in quota(env={"KIMI_LSP_TIER": "2"}).stdout

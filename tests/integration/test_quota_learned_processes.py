"""Two `kimi-lsp refactor` processes share the quota store and refactor 10 files each
against an account whose real limits (concurrency 2, 600 RPM) are not the Tier 1 kimi-lsp
assumes (KIMI_LSP_TIER unset): the concurrency ramp sends no more than Kimi was seen to take
plus one, the one 429 that this costs states the limit, and both processes adopt it at once.
So the whole refactor meets at most one 429. Once with the SQLite store, once with Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from tests.fake_kimi import FakeKimi

FILES = 10  # per process: each runs a 10-file workspace refactor


def refactor_in_two_processes(fake: FakeKimi, tmp_path: Path, store: str) -> dict[str, object]:
    fake.set_limits(concurrency=2, rpm=600)
    fake.chunk_delay = 0.02  # answers stream for a while, so the fan-outs overlap
    roots = [tmp_path / "one", tmp_path / "two"]
    for n, root in enumerate(roots):
        (root / "src").mkdir(parents=True)
        for i in range(FILES):
            name = f"m{n}{i}.py"
            (root / "src" / name).write_text(f"def old_{n}{i}():\n    return {i}\n")
            fake.script(
                f"```python\ndef new_{n}{i}():\n    return {i}\n```",
                match=f"File: src/{name} ",
            )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KIMI_LSP_")},
        **fake.env(),
        "KIMI_LSP_STATE_DIR": str(tmp_path / "state"),  # one quota store for both (SQLite)
        "KIMI_LSP_QUOTA_STORE": store,
        "KIMI_LSP_CACHE": "off",
    }  # no KIMI_LSP_TIER, KIMI_LSP_LIMITS or KIMI_LSP_QUOTA_RESERVE: the defaults
    command = [sys.executable, "-m", "kimi_lsp", "refactor", "rename old_ to new_"]
    procs = [
        subprocess.Popen(
            [*command, "--scope", "src/*.py"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for root in roots
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    for n, root in enumerate(roots):
        for i in range(FILES):
            assert (root / "src" / f"m{n}{i}.py").read_text().startswith(f"def new_{n}{i}():")
    quota = subprocess.run(
        [sys.executable, "-m", "kimi_lsp", "quota", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    snap: dict[str, object] = json.loads(quota.stdout)
    return snap


def check(fake: FakeKimi, snap: dict[str, object]) -> None:
    statuses = [r.status for r in fake.chat_requests]
    assert statuses.count(429) <= 1, statuses
    assert statuses.count(200) == 2 * FILES, statuses
    if 429 in statuses:  # it taught the account's concurrency to the shared store
        limits, sources = snap["limits"], snap["sources"]
        assert isinstance(limits, dict)
        assert isinstance(sources, dict)
        assert limits["concurrency"] == 2
        assert sources["concurrency"].startswith("learned from Kimi at ")
        assert sources["rpm"] == "tier 1 table (assumed)"


def test_two_processes_on_sqlite_meet_at_most_one_429(fake_kimi: FakeKimi, tmp_path: Path) -> None:
    snap = refactor_in_two_processes(fake_kimi, tmp_path, "sqlite")
    check(fake_kimi, snap)


def test_two_processes_on_redis_meet_at_most_one_429(
    fake_kimi: FakeKimi, tmp_path: Path, redis_url: str
) -> None:
    redis.Redis.from_url(redis_url).flushdb()  # the session's server: start from nothing
    snap = refactor_in_two_processes(fake_kimi, tmp_path, redis_url)
    assert str(snap["store"]).startswith("redis:")
    check(fake_kimi, snap)

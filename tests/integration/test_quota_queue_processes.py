"""The queue across real processes, on one SQLite file and on a real Redis server.

Four processes wait for the one concurrency slot: a batch waiter in one process is not
admitted ahead of an interactive waiter that joined later in another, and within a class the
earlier waiter goes first; ``kimi-lsp quota --json`` (yet another process) reports every
process's waiters. A waiter killed with SIGKILL leaves the queue (SQLite: at once, its
process is gone; Redis: once its entry's time runs out), so the ones behind it move up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kimi_lsp.quota import Limits, SqliteLedger
from kimi_lsp.quota.sqlite import Admitted

REDIS_PREFIX = "kimi-lsp:quota"  # the default: `kimi-lsp quota` reads the same keys

# One process, one request, steered step by step from stdin: `join batch|interactive`,
# `recheck`; each answer is one JSON line. An admitted request is settled at once.
STEERED = """
import json, sys, time
from pathlib import Path
from kimi_lsp.quota import Limits, SqliteLedger, Wait
from kimi_lsp.quota.sqlite import Admitted
store, where = sys.argv[1], sys.argv[2]
if store == "sqlite":
    ledger = SqliteLedger(Path(where), queue_ttl=120)
else:
    from kimi_lsp.quota.redis import RedisLedger
    ledger = RedisLedger(where, queue_ttl=120)
one = Limits(1, None, None, None)
entry, batch = None, False
for line in sys.stdin:
    words = line.split()
    if words[0] == "join":
        batch = words[1] == "batch"
    out = ledger.try_admit(time.time(), one, 1, model="m", batch=batch, reserve=0.1,
                           entry=entry, join=entry is None)
    if isinstance(out, Wait):
        entry = out.entry
        print(json.dumps({"wait": out.limit, "ahead": out.ahead, "entry": out.entry}), flush=True)
    else:
        assert isinstance(out, Admitted), out
        ledger.settle(out, None)
        print(json.dumps({"admitted": out.charge_id}), flush=True)
"""

# One process, one request through the governor, as an editor would send it.
GOVERNED = """
import asyncio, sys
from pathlib import Path
from kimi_lsp.quota import Limits, QuotaGovernor, SqliteLedger
store, where, role, ttl = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
if store == "sqlite":
    ledger = SqliteLedger(Path(where), queue_ttl=ttl)
else:
    from kimi_lsp.quota.redis import RedisLedger
    ledger = RedisLedger(where, queue_ttl=ttl)

class Req:
    model, input_tokens, max_completion_tokens = "m", 1, 1

async def main():
    gov = QuotaGovernor(ledger, Limits(1, None, None, None))
    said = []
    def on_wait(limit, seconds):
        if not said:
            said.append(limit)
            print("waiting", flush=True)
    ticket = await gov.admit(Req(), batch=role == "batch", on_wait=on_wait)
    print("admitted", ticket.admitted.charge_id, flush=True)
    await ticket.settle(None)

asyncio.run(main())
"""


@dataclass
class Store:
    kind: str  # "sqlite" | "redis"
    where: str  # the SQLite file, or the Redis URL
    env: dict[str, str]  # for `kimi-lsp quota`

    def ledger(self) -> Any:
        if self.kind == "sqlite":
            return SqliteLedger(Path(self.where))
        from kimi_lsp.quota.redis import RedisLedger

        return RedisLedger(self.where, prefix=REDIS_PREFIX)


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        state = tmp_path / "state"
        state.mkdir()
        return Store("sqlite", str(state / "quota.sqlite3"), {"KIMI_LSP_STATE_DIR": str(state)})
    url = request.getfixturevalue("redis_url")
    from kimi_lsp.quota.redis import RedisLedger

    RedisLedger(url).client.flushdb()
    return Store("redis", url, {"KIMI_LSP_QUOTA_STORE": url})


@pytest.fixture
def spawn() -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []

    def start(script: str, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(10)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


def hold_the_slot(store: Store) -> tuple[Any, Admitted]:
    ledger = store.ledger()
    held = ledger.try_admit(
        time.time(), Limits(1, None, None, None), 1, model="m", batch=False, reserve=0.1
    )
    assert isinstance(held, Admitted)
    return ledger, held


def quota_json(store: Store) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "kimi_lsp", "quota", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, **store.env, "KIMI_LSP_LIMITS": "concurrency=1"},
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_four_processes_are_admitted_interactive_first_then_in_arrival_order(
    store: Store, spawn: Any
) -> None:
    ledger, held = hold_the_slot(store)
    roles = {"A": "batch", "B": "interactive", "C": "batch", "D": "interactive"}
    procs = {name: spawn(STEERED, store.kind, store.where) for name in roles}

    def step(name: str, command: str = "recheck") -> dict[str, Any]:
        proc = procs[name]
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(command + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())  # type: ignore[no-any-return]

    joined = {name: step(name, f"join {role}") for name, role in roles.items()}
    assert [joined[n]["ahead"] for n in "ABCD"] == [0, 0, 2, 1]
    assert joined["A"]["entry"] < joined["B"]["entry"] < joined["C"]["entry"]
    # Every process's waiters, as another process reports them.
    queue = quota_json(store)["queue"]
    assert (queue["interactive"], queue["batch"]) == (2, 2)
    assert queue["head"]["batch"] is False
    assert queue["head"]["waitingFor"] == "concurrency"

    ledger.settle(held, None)  # one slot free: the earliest batch waiter asks first
    admitted: list[str] = []
    for name in "ACDBDCAC":
        answer = step(name)
        if "admitted" in answer:
            admitted.append(name)
        elif name == "A" and not admitted:
            assert answer["ahead"] == 2  # both interactive waiters, though they came later
    assert admitted == ["B", "D", "A", "C"]
    queue = quota_json(store)["queue"]
    assert (queue["interactive"], queue["batch"], queue["head"]) == (0, 0, None)


def test_governors_in_four_processes_follow_the_queue(store: Store, spawn: Any) -> None:
    ledger, held = hold_the_slot(store)
    order = [("A", "batch"), ("B", "interactive"), ("C", "batch"), ("D", "interactive")]
    procs = {}
    for name, role in order:  # each is in the queue before the next one starts
        procs[name] = spawn(GOVERNED, store.kind, store.where, role, "10")
        assert procs[name].stdout.readline().strip() == "waiting"
    queue = ledger.usage(time.time())["queue"]
    assert (queue["interactive"], queue["batch"]) == (2, 2)
    ledger.settle(held, None)
    charge = {name: int(proc.stdout.readline().split()[1]) for name, proc in procs.items()}
    assert sorted(charge, key=charge.__getitem__) == ["B", "D", "A", "C"]


def test_a_killed_waiter_leaves_the_queue(store: Store, spawn: Any) -> None:
    ledger, held = hold_the_slot(store)
    ttl = "1" if store.kind == "redis" else "60"  # SQLite sees at once that the process is gone
    killed = spawn(GOVERNED, store.kind, store.where, "interactive", ttl)
    assert killed.stdout.readline().strip() == "waiting"
    behind = spawn(GOVERNED, store.kind, store.where, "batch", ttl)
    assert behind.stdout.readline().strip() == "waiting"
    assert ledger.usage(time.time())["queue"]["interactive"] == 1
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(10)
    # SQLite: at once. Redis: once the entry's time runs out on the server's clock, so poll
    # (a bound, not a timing assert).
    deadline = time.monotonic() + 30
    while ledger.usage(time.time())["queue"]["interactive"] and time.monotonic() < deadline:
        assert store.kind == "redis"
        time.sleep(0.1)
    assert ledger.usage(time.time())["queue"]["interactive"] == 0
    ledger.settle(held, None)
    assert behind.stdout.readline().split()[0] == "admitted"

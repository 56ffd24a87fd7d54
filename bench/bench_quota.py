"""Four client processes share one account on the emulator: the governor against retry-on-429.

Two processes are interactive users (explain-like requests, a pause between them), two are
batch work (refactor-like, larger, back to back, as fast as they are let). Limits are
Tier-0-like (concurrency 1, RPM 3, TPM 500k) and then Tier-1-like (concurrency 50, RPM 200,
TPM 2M). The account's time runs SCALE times faster than the wall clock (the emulator and
the governors read the same scaled clock) so a few "minutes" of an account pass in seconds.
Nothing is sent before the period starts, and what still waits or streams when it ends is
cancelled.

The naive client has no governor: it sends and, on a 429, retries with exponential backoff.
Rows: requests completed, 429s the emulator sent, share of the binding limit used (RPM here:
the requests the emulator admitted with an arrival inside the period / (RPM x account
minutes), from its own log), and p50/p95 queueing delay of interactive requests (asking to
sending the request that got through), in account seconds — what a user on that tier would
wait.

At Tier 0 the two targets pull against each other, for any scheduler that cannot see the
future. Three requests a minute means a slot frees up every 20 s on average, so an
interactive request waits under 2 s only if a slot already stands free when it comes; users
ask when they like, so about as many of their requests find a free slot as the share of time
one stands free. 95% of them under 2 s thus needs a slot free nearly all the time, one of
three idle whenever interactive work is not using it (that is the reserve: share ~0.8 here),
and 90% of RPM used leaves a slot free at most 30% of the time. The table shows both ends:
the default reserve and reserve 0; the ``quota_reserve`` setting chooses. At Tier 1 a slot
frees every 0.3 s and both hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bench.table import Row

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Tier:
    name: str
    concurrency: int
    rpm: int
    tpm: int
    scale: float  # account seconds per wall second
    wall_s: float  # how long each mode runs
    ask_every: float  # account seconds between one interactive user's requests

    @property
    def minutes(self) -> float:
        return self.wall_s * self.scale / 60.0


TIERS = (
    Tier("tier-0-like", 1, 3, 500_000, scale=30.0, wall_s=16.0, ask_every=100.0),
    Tier("tier-1-like", 50, 200, 2_000_000, scale=4.0, wall_s=15.0, ask_every=4.0),
)


def _clock(t0: float, scale: float) -> float:
    return 1_000_000.0 + (time.monotonic() - t0) * scale


# -- one client process ------------------------------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.sent = 0.0

    def progress(self, message: str) -> None:
        if message == "sending":
            self.sent = time.monotonic()

    def text(self, delta: str) -> None:
        pass

    def reasoning(self, delta: str) -> None:
        pass


async def _client(argv: list[str]) -> dict[str, object]:
    from kimi_lsp.actions.pipeline import answer
    from kimi_lsp.llm import KimiClient, KimiError, RateLimited
    from kimi_lsp.quota import Limits, QuotaGovernor
    from kimi_lsp.quota.sqlite import LEASE_TTL_S

    base, key, mode, role, ledger = argv[:5]
    t0, scale, wall_s, ask_every, reserve = map(float, argv[5:10])
    conc, rpm, tpm = map(int, argv[10:13])
    batch = role == "batch"
    rng = random.Random(f"{role}{argv[13]}")

    async def sleep(account_s: float) -> None:
        await asyncio.sleep(account_s / scale)

    gov = None
    if mode == "governor":
        gov = QuotaGovernor.in_state_dir(
            Path(ledger),
            Limits(conc, rpm, tpm, None),
            reserve=reserve,
            clock=lambda: _clock(t0, scale),
            sleep=sleep,
            renew_every=LEASE_TTL_S / 3 / scale,
        )
    done, waits = 0, []

    async def work(client: KimiClient) -> None:
        nonlocal done
        while True:
            if not batch:  # a user reads the last answer before asking again
                await sleep(ask_every * rng.uniform(0.5, 1.5))
            asked, backoff = time.monotonic(), 0.2
            size = 1200 if batch else 200  # words
            msgs = [{"role": "user", "content": f"{role} {argv[13]} {done} " + "code " * size}]
            sink = _Sink()
            while True:
                try:
                    await answer(
                        client,
                        msgs,  # type: ignore[arg-type]
                        model="kimi-k2.6",
                        max_completion_tokens=512 if batch else 128,
                        sink=sink,
                        admission=gov,
                        batch=batch,
                    )
                except RateLimited:
                    if gov is None:  # naive: exponential backoff (wall seconds)
                        await asyncio.sleep(backoff * rng.uniform(0.5, 1.0))
                        backoff = min(backoff * 2, 4.0)
                    continue  # the governor recorded the cool-down; it waits in admission
                except KimiError:
                    continue
                done += 1
                if not batch:
                    waits.append((sink.sent - asked) * scale)
                break

    # The account's period is [t0, t0 + wall_s): nothing is sent before it starts, and what
    # is still waiting or streaming when it ends is cancelled and not counted.
    await asyncio.sleep(max(0.0, t0 - time.monotonic()))
    async with KimiClient(base, key, max_retries=0) as client:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(work(client), timeout=t0 + wall_s - time.monotonic())
    return {"done": done, "waits": waits}


# -- the benchmark -----------------------------------------------------------------------


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def _round(
    fake: object, mode: str, tier: Tier, work: Path, *, reserve: float = 0.1
) -> dict[str, float]:
    from tests.fake_kimi import FakeKimi

    assert isinstance(fake, FakeKimi)
    fake.reset()
    fake.set_limits(concurrency=tier.concurrency, rpm=tier.rpm, tpm=tier.tpm)
    t0 = time.monotonic() + 1.5  # every process is up before the account's time starts
    fake.clock = lambda: _clock(t0, tier.scale)
    ledger = Path(tempfile.mkdtemp(dir=work))
    args = [fake.base_url, fake.key, mode]
    rest = [str(ledger), str(t0), str(tier.scale), str(tier.wall_s), str(tier.ask_every)]
    rest += [str(reserve), str(tier.concurrency), str(tier.rpm), str(tier.tpm)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.bench_quota", *args, role, *rest, str(i)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for i, role in enumerate(("interactive", "interactive", "batch", "batch"))
    ]
    outs = [json.loads(p.communicate(timeout=tier.wall_s + 60)[0]) for p in procs]
    sent = fake.chat_requests
    start = _clock(t0, tier.scale) - (time.monotonic() - t0) * tier.scale  # account time at t0
    # What the account admitted within the period (the emulator's own log, by arrival time).
    admitted = sum(1 for r in sent if r.status == 200 and start <= r.at < start + tier.minutes * 60)
    waits = [w for o in outs for w in o["waits"]]
    return {
        "done": sum(o["done"] for o in outs),
        "429s": sum(1 for r in sent if r.status == 429),
        "share": admitted / (tier.rpm * tier.minutes),
        "p50": _pct(waits, 0.5),
        "p95": _pct(waits, 0.95),
        "interactive": len(waits),
    }


def _row(
    tier: Tier,
    gov: dict[str, float],
    naive: dict[str, float],
    what: str,
    key: str,
    unit: str = "",
    *,
    target: str = "",
    ok: bool | None = None,
) -> Row:
    return Row(
        "quota",
        f"{tier.name}: {what}",
        round(gov[key], 2),
        unit,
        reference=round(naive[key], 2),
        reference_name="naive",
        target=target,
        ok=ok,
    )


def run(work: Path) -> list[Row]:
    from tests.fake_kimi import FakeKimi

    rows: list[Row] = []
    fake = FakeKimi().start()
    fake.chunk_delay = 0.005
    try:
        for tier in TIERS:
            gov = _round(fake, "governor", tier, work)
            naive = _round(fake, "naive", tier, work)

            rows += [
                _row(tier, gov, naive, "requests completed", "done"),
                _row(tier, gov, naive, "429s received", "429s", target="0", ok=gov["429s"] == 0),
                _row(
                    tier,
                    gov,
                    naive,
                    "share of RPM used",
                    "share",
                    target=">= 0.9",
                    ok=gov["share"] >= 0.9,
                ),
                _row(tier, gov, naive, "interactive requests", "interactive"),
                _row(tier, gov, naive, "interactive wait p50", "p50", "account s"),
                _row(
                    tier,
                    gov,
                    naive,
                    "interactive wait p95",
                    "p95",
                    "account s",
                    target="< 2",
                    ok=gov["p95"] < 2,
                ),
            ]
            if tier.rpm <= 3:  # the other end of the trade-off (see the module's text)
                spent = _round(fake, "governor", tier, work, reserve=0.0)
                name = replace(tier, name=f"{tier.name}, reserve 0")
                rows += [
                    _row(name, spent, naive, "429s received", "429s"),
                    _row(name, spent, naive, "share of RPM used", "share"),
                    _row(name, spent, naive, "interactive wait p95", "p95", "account s"),
                ]
    finally:
        fake.stop()
    return rows


if __name__ == "__main__":  # one client process: python -m bench.bench_quota BASE KEY MODE ...
    print(json.dumps(asyncio.run(_client(sys.argv[1:]))))

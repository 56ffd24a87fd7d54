"""Four client processes share one account on the emulator: the governor against retry-on-429.

Two processes are interactive users (explain-like requests, a pause between them), two are
batch work (refactor-like, larger, four at a time each as a workspace fan-out sends them, as
fast as they are let). Limits are
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

At Tier 0 the two targets exclude each other, for any scheduler that cannot see the future.
Concurrency 1 cannot be shared: an interactive request that comes while a batch answer
streams waits for it to end (seconds here, tens of seconds with real answers), so p95 < 2 s
needs batch work idle nearly all the time. And three requests a minute means a slot frees
up only every 20 s on average: an interactive request goes out at once only if a slot
already stands free, and users ask when they like, so about as many of their requests find
one as the share of time one stands free; using 90% of RPM leaves a slot free at most 30% of
the time. The table shows three points of the trade-off (``quota_reserve`` 0, the default
0.1, and 0.5): none reaches both. Tier 0 runs 24 account minutes so its p95 is not just the
largest of a handful of waits. At Tier 1 a slot frees every 0.3 s and both targets hold.

"tier unknown": the same four processes with the default settings (``KIMI_LSP_TIER`` not set,
so Tier 1 is assumed; reserve 0.1) on an account with Tier 0's limits. The governor learns
the limits Kimi states in its 429s ("max concurrency: 1", "max RPM: 3") and, while the
concurrency is only assumed, ramps up to it; the reference is the shrink-only governor it
replaces (no ramp, 429s only counted: three within ten minutes shrink every limit by 20%).
Rows: 429s seen and the share of RPM used.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.table import Row

REPO = Path(__file__).resolve().parent.parent
BATCH_WORKERS = 4  # requests one batch process keeps going at once (a workspace fan-out)


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
    # 24 account minutes: enough interactive requests (~30) for a p95 that is not their maximum
    Tier("tier-0-like", 1, 3, 500_000, scale=60.0, wall_s=24.0, ask_every=100.0),
    Tier("tier-1-like", 50, 200, 2_000_000, scale=12.0, wall_s=15.0, ask_every=4.0),
)
# The account has Tier 0's limits; the processes assume Tier 1 (the default, never set).
UNKNOWN = Tier("tier unknown", 1, 3, 500_000, scale=60.0, wall_s=24.0, ask_every=100.0)


def _clock(t0: float, scale: float) -> float:
    return 1_000_000.0 + (time.monotonic() - t0) * scale


# -- one client process ------------------------------------------------------------------


class _ShrinkOnly:
    """The governor as it was before it learned stated limits: a 429 is only counted."""

    def __init__(self, governor: Any) -> None:
        self.governor = governor

    async def admit(self, start: Any, **kw: Any) -> Any:
        return await self.governor.admit(start, **kw)

    async def rate_limited(
        self, retry_after: float | None, limit: str | None, stated: int | None = None
    ) -> None:
        await self.governor.rate_limited(retry_after, limit)


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
    from kimi_lsp.quota import Limits, QuotaGovernor, limits_for
    from kimi_lsp.quota.sqlite import LEASE_TTL_S

    base, key, mode, role, ledger = argv[:5]
    t0, scale, wall_s, ask_every, reserve = map(float, argv[5:10])
    conc, rpm, tpm = map(int, argv[10:13])
    batch = role == "batch"
    rng = random.Random(f"{role}{argv[13]}")

    async def sleep(account_s: float) -> None:
        await asyncio.sleep(account_s / scale)

    gov: Any = None
    if mode in ("governor", "learning", "shrink-only"):
        limits = {
            "governor": Limits(conc, rpm, tpm, None),  # the account's, as the user set them
            "learning": limits_for(1, assumed=True),  # the defaults: Tier 1, never set
            "shrink-only": limits_for(1),  # the same, set: no ramp (and 429s only counted)
        }[mode]
        gov = QuotaGovernor.in_state_dir(
            Path(ledger),
            limits,
            reserve=reserve,
            clock=lambda: _clock(t0, scale),
            sleep=sleep,
            renew_every=LEASE_TTL_S / 3 / scale,
        )
        if mode == "shrink-only":
            gov = _ShrinkOnly(gov)
    done, waits = 0, []

    async def work(client: KimiClient, worker: int) -> None:
        nonlocal done
        for n in itertools.count():
            if not batch:  # a user reads the last answer before asking again
                await sleep(ask_every * rng.uniform(0.5, 1.5))
            asked, backoff = time.monotonic(), 0.2
            size = 1200 if batch else 200  # words
            head = f"{role} {argv[13]}.{worker} {n} "
            msgs = [{"role": "user", "content": head + "code " * size}]
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
                        thinking=False,  # the quota is measured here, not the reasoning
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
            # A workspace refactor sends several files at once; a user asks one thing at a time.
            workers = [work(client, k) for k in range(BATCH_WORKERS if batch else 1)]
            await asyncio.wait_for(asyncio.gather(*workers), timeout=t0 + wall_s - time.monotonic())
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
            if tier.rpm <= 3:  # the rest of the trade-off (see the module's text)
                for reserve in (0.0, 0.5):
                    other = _round(fake, "governor", tier, work, reserve=reserve)
                    name = replace(tier, name=f"{tier.name}, reserve {reserve:g}")
                    rows += [
                        _row(name, other, naive, "429s received", "429s"),
                        _row(name, other, naive, "share of RPM used", "share"),
                        _row(name, other, naive, "interactive wait p95", "p95", "account s"),
                    ]
        rows += unknown_tier(fake, work)
    finally:
        fake.stop()
    return rows


def unknown_tier(fake: object, work: Path) -> list[Row]:
    """Default settings on a Tier 0 account: learning the stated limits against shrink-only."""
    learning = _round(fake, "learning", UNKNOWN, work)
    shrinking = _round(fake, "shrink-only", UNKNOWN, work)

    def row(what: str, key: str, target: str = "", ok: bool | None = None) -> Row:
        return Row(
            "quota",
            f"{UNKNOWN.name}: {what}",
            round(learning[key], 2),
            reference=round(shrinking[key], 2),
            reference_name="shrink-only",
            target=target,
            ok=ok,
        )

    return [
        row("429s received", "429s", target="<= 2", ok=learning["429s"] <= 2),
        row("share of RPM used", "share"),
        row("requests completed", "done"),
    ]


if __name__ == "__main__":  # one client process: python -m bench.bench_quota BASE KEY MODE ...
    print(json.dumps(asyncio.run(_client(sys.argv[1:]))))

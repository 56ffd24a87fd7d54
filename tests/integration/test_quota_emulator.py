"""The governor and the emulator on one clock: the ledger never lets a request age out
before Kimi does.

Kimi counts a request in its windows from the request's arrival, which comes after our
admission (the request still has to travel). Here the first request takes two seconds to
arrive and the next ones half a second: were the ledger to keep the charge from admission,
the next request would be admitted as the first ages out in the ledger, reach the emulator
while the first is still in Kimi's minute, and get a 429.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kimi_lsp.actions.pipeline import QuietSink, Ticket, answer
from kimi_lsp.llm import KimiClient, RequestStart
from kimi_lsp.quota import Limits, QuotaGovernor
from kimi_lsp.quota.sqlite import DB_FILE
from tests.fake_kimi import FakeKimi
from tests.fake_kimi.server import ManualClock

TRAVEL_S = [2.0, 0.5, 0.5]  # from admission to Kimi's arrival stamp, request by request


@dataclass
class SlowNetwork:
    """The governor's admission, then the trip to Kimi (the shared clock moves on)."""

    governor: QuotaGovernor
    clock: ManualClock
    sent: int = 0

    async def admit(
        self, start: RequestStart, *, batch: bool, on_wait: Callable[[str, float], None]
    ) -> Ticket:
        ticket = await self.governor.admit(start, batch=batch, on_wait=on_wait)
        self.clock.advance(TRAVEL_S[self.sent])
        self.sent += 1
        return ticket

    async def rate_limited(
        self, retry_after: float | None, limit: str | None, stated: int | None = None
    ) -> None:
        await self.governor.rate_limited(retry_after, limit, stated)


async def test_the_next_request_waits_until_kimi_has_aged_out_the_last(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    clock = ManualClock(1_000_000.0)
    fake_kimi.clock = clock
    fake_kimi.set_limits(rpm=1)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    limits = Limits(None, 1, None, None)
    gov = QuotaGovernor.in_state_dir(tmp_path, limits, clock=clock, sleep=sleep)
    admission = SlowNetwork(gov, clock)
    async with KimiClient(
        fake_kimi.base_url, fake_kimi.key, model_table_path=tmp_path / "models.json", max_retries=0
    ) as client:
        for n in range(3):
            await answer(
                client,
                [{"role": "user", "content": f"question {n}"}],
                model="kimi-k2.6",
                max_completion_tokens=64,
                thinking=False,  # 64 tokens of answer, no room to think: as the policy sends it
                sink=QuietSink(),
                admission=admission,
            )
            clock.advance(1.0)  # the user reads; the next question comes before the minute ends

    sent = fake_kimi.chat_requests
    assert [r.status for r in sent] == [200, 200, 200]  # no 429: each waited long enough
    arrivals = [r.at for r in sent]
    assert all(b - a >= 60.0 for a, b in itertools.pairwise(arrivals))
    # The ledger's charges are kept from no earlier than Kimi's arrival stamps.
    with sqlite3.connect(tmp_path / DB_FILE) as db:
        kept = [at for (at,) in db.execute("SELECT at FROM charges ORDER BY id")]
    assert all(k >= a for k, a in zip(kept, arrivals, strict=True))


async def test_a_request_kimi_turned_away_counts_for_nothing(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    """A 429 is not admitted by Kimi: the ledger drops its charge, the retry takes its own."""
    clock = ManualClock(1_000_000.0)
    fake_kimi.clock = clock
    fake_kimi.fail_next("rate_limit_rpm", retry_after=3)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    gov = QuotaGovernor.in_state_dir(
        tmp_path, Limits(None, 2, None, None), clock=clock, sleep=sleep
    )
    async with KimiClient(
        fake_kimi.base_url,
        fake_kimi.key,
        model_table_path=tmp_path / "models.json",
        max_retries=1,
        sleep=sleep,
    ) as client:
        await answer(
            client,
            [{"role": "user", "content": "question"}],
            model="kimi-k2.6",
            max_completion_tokens=64,
            thinking=False,  # 64 tokens of answer, no room to think: as the policy sends it
            sink=QuietSink(),
            admission=gov,
        )
        # One request in Kimi's minute, one in the ledger's: a second still fits (RPM 2).
        snap = gov.snapshot()
        assert [r.status for r in fake_kimi.chat_requests] == [429, 200]
        assert snap["requestsLastMinute"] == 1
        assert snap["openRequests"] == 0
        assert snap["byModel"]["kimi-k2.6"]["requests"] == 1


async def test_a_place_is_free_only_once_kimi_has_closed_the_stream(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    """Kimi counts a request open until its stream ends, and the usage comes a chunk or two
    before that ([DONE]). A ticket settled at the usage frees a place Kimi still counts: the
    request waiting for it (re-checking every 0.25 s) is sent into a 0.4 s gap, and meets a 429."""
    fake_kimi.set_limits(concurrency=1)
    fake_kimi.chunk_delay = 0.2  # before each chunk: the usage's, the top-level usage's, [DONE]
    for n in range(2):
        fake_kimi.script(f"answer {n}", match=f"question {n}", chunk_tokens=64)
    gov = QuotaGovernor.in_state_dir(tmp_path, Limits(1, None, None, None))
    async with KimiClient(
        fake_kimi.base_url, fake_kimi.key, model_table_path=tmp_path / "models.json", max_retries=0
    ) as client:

        async def ask(n: int) -> str:
            answered = await answer(
                client,
                [{"role": "user", "content": f"question {n}"}],
                model="kimi-k2.6",
                max_completion_tokens=64,
                thinking=False,
                sink=QuietSink(),
                admission=gov,
            )
            return answered.text

        texts = await asyncio.gather(ask(0), ask(1))

    assert sorted(texts) == ["answer 0", "answer 1"]
    assert [r.status for r in fake_kimi.chat_requests] == [200, 200]
    assert gov.snapshot()["openRequests"] == 0

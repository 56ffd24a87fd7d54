"""Workspace-wide refactor: a 50-file fan-out against a strictly sequential run.

Both run the same plan through `kimi_lsp.actions.workspace` against the Kimi emulator with
Tier-1-like limits and a fixed streaming pace, so wall time reflects the concurrency; the
table also shows the tokens sent (the quota the run used) and the 429s received.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.table import Row
from kimi_lsp.actions import workspace
from kimi_lsp.actions.pipeline import QuietSink
from kimi_lsp.actions.services import Services
from kimi_lsp.config import Settings
from kimi_lsp.index import WorkspaceIndex
from tests.fake_kimi import FakeKimi

FILES = 50


def _read(path: Path) -> str | None:
    return path.read_text()


async def _run(root: Path, fake: FakeKimi, fan_out: int) -> tuple[float, int, int]:
    settings = Settings(
        api_key=fake.key, base_url=fake.base_url, state_dir=root / ".state", cache="off"
    )
    index = WorkspaceIndex([root], state_dir=None)
    index.update()
    services = Services(settings, [root], index=index)
    workspace.FAN_OUT = fan_out
    before = len(fake.chat_requests)
    start = time.perf_counter()
    try:
        plan = workspace.plan_workspace(
            services, "rename total to amount", _read, scope=["*.py"], max_files=FILES
        )
        result = await workspace.run_workspace(services, plan, QuietSink(), _read)
    finally:
        await services.aclose()
    elapsed = time.perf_counter() - start
    sent = fake.chat_requests[before:]
    assert not [r for r in result.results if r.error], [r.error for r in result.results]
    return (
        elapsed,
        sum(r.prompt_tokens + r.completion_tokens for r in sent),
        sum(1 for r in sent if r.status == 429),
    )


def run(work: Path) -> list[Row]:
    root = Path(tempfile.mkdtemp(dir=work))
    fake = FakeKimi().start()
    try:
        fake.set_limits(tier=1)
        fake.chunk_delay = 0.01
        for i in range(FILES):
            text = f"def total_{i}(xs):\n    total = sum(xs)\n    return total\n"
            (root / f"m{i}.py").write_text(text)
            new = text.replace("total", "amount")
            fake.script(f"```python\n{new}```", match=f"File: m{i}.py ")
        original = workspace.FAN_OUT
        try:
            seq, seq_tokens, seq_429 = asyncio.run(_run(root, fake, 1))
            par, par_tokens, par_429 = asyncio.run(_run(root, fake, original))
        finally:
            workspace.FAN_OUT = original
    finally:
        fake.stop()
    return [
        Row(
            "workspace",
            f"{FILES}-file fan-out, wall",
            par,
            "s",
            reference=seq,
            reference_name="sequential",
            target="faster than sequential",
            ok=par < seq,
        ),
        Row(
            "workspace",
            "tokens used (fan-out / sequential)",
            par_tokens,
            "tokens",
            reference=seq_tokens,
            reference_name="sequential",
        ),
        Row(
            "workspace",
            "429s received (fan-out / sequential)",
            par_429 + seq_429,
            "",
            target="0",
            ok=par_429 + seq_429 == 0,
        ),
    ]

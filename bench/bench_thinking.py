"""The thinking policy's trade-off: a session of mixed actions under `auto`, `on` and `off`.

Every request goes through the real pipeline (``kimi_lsp.actions.pipeline.answer`` with the
policy's plan) to the emulator over loopback, whose kimi-k2.6 reasons 300-3,000 tokens per
prompt as real models do. Per mode: requests per action (a reply cut inside its reasoning is
asked again, so it costs two), the TPM admitted (input + ``max_completion_tokens``, what Kimi
charges at admission, kimi-api.md §6) and the tokens used (what is billed). Goal: every
answer whole in at most two requests per target under every mode, and `auto` admitting less
than `on`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from bench.table import Row
from kimi_lsp.actions.pipeline import QuietSink, answer
from kimi_lsp.actions.thinking import plan_thinking
from kimi_lsp.llm import KimiClient
from kimi_lsp.llm.models import REASONING_ALLOWANCE, infer_spec
from tests.fake_kimi import FakeKimi

MODEL = "kimi-k2.6"
# (action, how many in a session, the answer's output budget, the answer's real length)
SESSION = [
    ("explain", 6, 1500, 500),
    ("refactor", 3, 2048, 400),
    ("fix", 3, 2048, 300),
    ("names", 2, 2048, 300),
    ("types", 2, 2048, 300),
    ("docstring", 2, 2048, 300),
    ("tests", 2, 3000, 800),
    ("workspace", 20, 260, 180),  # two workspace refactors of 10 files
]
MODES = ("auto", "on", "off")
# For reference, sized for the answer alone with the model's default thinking (how every
# request was sized before the policy): answers lost to reasoning show up here.
UNPLANNED = "answer-only sizing"


def _code(action: str, i: int) -> str:
    body = "\n".join(f"    total_{j} = item_{j} * {i} + {j}" for j in range(20))
    return f"def {action}_{i}(items):\n{body}\n    return total_0\n"


async def _session(fake: FakeKimi, mode: str) -> tuple[Counter[str], int, int, int]:
    spec = infer_spec(MODEL)
    per_action: Counter[str] = Counter()
    failed = 0
    async with KimiClient(fake.base_url, fake.key) as client:
        for action, count, budget, length in SESSION:
            for i in range(count):
                code = _code(action, i)
                fake.script("```python\n" + "x = 1\n" * (length * 4 // 6) + "```", match=code)
                messages = [
                    {"role": "system", "content": "You are Kimi, inside the editor."},
                    {"role": "user", "content": f"{action} this:\n```python\n{code}```"},
                ]
                plan = (
                    None
                    if mode == UNPLANNED
                    else plan_thinking(action, spec, mode, REASONING_ALLOWANCE, budget)
                )
                before = len(fake.chat_requests)
                try:
                    await answer(
                        client,
                        messages,
                        model=MODEL,
                        max_completion_tokens=budget,
                        sink=QuietSink(),
                        plan=plan,
                    )
                except Exception:
                    failed += 1
                per_action[action] += len(fake.chat_requests) - before
    records = fake.chat_requests
    admitted = sum(r.prompt_tokens + int(r.body["max_completion_tokens"]) for r in records)
    used = sum(r.prompt_tokens + r.completion_tokens for r in records)
    return per_action, admitted, used, failed


def run(work: Path) -> list[Row]:
    rows: list[Row] = []
    admitted_by_mode: dict[str, int] = {}
    for mode in (*MODES, UNPLANNED):
        with FakeKimi() as fake:
            per_action, admitted, used, failed = asyncio.run(_session(fake, mode))
        admitted_by_mode[mode] = admitted
        targets = {action: count for action, count, _, _ in SESSION}
        for action, count in targets.items():
            rows.append(
                Row(
                    "thinking",
                    f"{mode}: requests per {action}",
                    round(per_action[action] / count, 2),
                    "req",
                    target="" if mode == UNPLANNED else "<= 2",
                    ok=None if mode == UNPLANNED else per_action[action] <= 2 * count,
                )
            )
        rows.append(Row("thinking", f"{mode}: TPM admitted (session)", admitted, "tokens"))
        rows.append(Row("thinking", f"{mode}: tokens used (session)", used, "tokens"))
        rows.append(
            Row(
                "thinking",
                f"{mode}: answers lost",
                failed,
                "",
                target="" if mode == UNPLANNED else "0",
                ok=None if mode == UNPLANNED else failed == 0,
            )
        )
    rows.append(
        Row(
            "thinking",
            "auto admits less than on",
            admitted_by_mode["auto"],
            "tokens",
            reference=admitted_by_mode["on"],
            reference_name="on",
            target="auto < on",
            ok=admitted_by_mode["auto"] < admitted_by_mode["on"],
        )
    )
    return rows

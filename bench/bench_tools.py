"""Index tools: how much recall the lookups of a model add to the packed context (issue 20).

On Django 5.2's cut cases (``bench_context``: a function's buffer cut inside its body; the
truth is the cross-file definitions the rest of the function uses), at a 4k-token context:

- the packed context alone: recall as ``bench_context`` measures it;
- the packed context plus the lookups of an emulated model that calls ``definition`` on
  every name of the target that the context does not define (one round of parallel calls,
  then the answer): recall over the context and the tool results. "The target" is the whole
  function as saved, as the issue's emulation has it: the model is an oracle for *what* to
  look up, and the bench measures whether the tools deliver it, and at what cost;
- as a lower bound, the same model limited to the names of the visible code (the cut
  buffer). The packed context already carries what visible code uses, so it gains ~0.

The exchange runs for real: ``actions.toolloop.answer_with_tools`` over a ``KimiClient`` to
the emulator on loopback, the tools over the live index. Reported per case on average:
rounds, extra requests and extra input tokens. Goal: +10 points of recall@4k at under one
extra request per case.

``python -m bench.bench_tools [CUTS]`` runs it alone.
"""

from __future__ import annotations

import asyncio
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.bench_context import (
    Cut,
    _cuts,
    _django,
    _recall,
    cut_saved,
    explain_at_cut,
    services_over,
    working_copy,
)
from bench.table import Row
from kimi_lsp.actions.pipeline import QuietSink
from kimi_lsp.actions.services import Services
from kimi_lsp.actions.toolloop import Exchange, answer_with_tools
from kimi_lsp.actions.tools import IndexTools
from kimi_lsp.index import WorkspaceIndex
from kimi_lsp.llm import KimiClient
from tests.fake_kimi import FakeKimi

NAME = "tools"
BUDGET = 4_000
CUTS = 200
_CALLS_PER_ROUND = 12  # the emulated model's restraint: at most this many lookups at once


def _target_names(index: WorkspaceIndex, cut: Cut) -> list[str]:
    """The names the target's code refers to: with the cut buffer open, its visible part;
    before it is opened, the whole function as saved."""
    target = index.enclosing_definition(cut.path, cut.line - 1, cut.col)
    tags = index.file_tags(cut.path)
    if target is None or tags is None:
        return []
    names: dict[str, None] = {}
    for r in tags.references:
        if target.range.encloses(r.range) and not r.name.startswith("__"):
            names.setdefault(r.name, None)
    return list(names)


def _undefined(index: WorkspaceIndex, names: list[str], context: str, here: Path) -> list[str]:
    """Names whose definitions elsewhere do not appear (by signature) in the context."""
    out = []
    for name in names:
        defs = [d for d in index.definitions(name) if d.path != here]
        if not defs or any(d.path == here for d in index.definitions(name)):
            continue
        if not any(d.signature.strip() in context for d in defs):
            out.append(name)
    return out


async def _case(
    client: KimiClient,
    fake: FakeKimi,
    services: Services,
    tools: IndexTools,
    cut: Cut,
    names: list[str],
) -> tuple[tuple[int, int], tuple[int, int], Exchange]:
    index = services.index
    assert index is not None
    built = _built_messages(services, cut)
    context = "\n".join(str(m["content"]) for m in built)
    wanted = _undefined(index, names, context, cut.path)[:_CALLS_PER_ROUND]

    def model(messages: list[dict[str, Any]], body: dict[str, Any]) -> Any:
        if messages[-1]["role"] == "tool" or not wanted:
            return "An explanation."
        return [("definition", {"name": n}) for n in wanted]

    fake.responder = model
    ex = Exchange()
    await answer_with_tools(
        client,
        built,
        tools,
        model="moonshot-v1-128k",  # no reasoning: the bench counts lookups, not thinking
        max_completion_tokens=200,
        sink=QuietSink(),
        rounds=3,
        exchange=ex,
    )
    looked = "\n".join(r.text for r in ex.results)
    return _recall(cut, context), _recall(cut, context + "\n" + looked), ex


def _built_messages(services: Services, cut: Cut) -> list[dict[str, Any]]:
    """The explain a user's request sends at the cut, with ``contextBudget`` = BUDGET."""
    return [dict(m) for m in explain_at_cut(services, cut).messages]


Variant = tuple[list[tuple[int, int]], list[tuple[int, int]], list[Exchange]]


async def _run_cases(index: WorkspaceIndex, root: Path, cuts: list[Cut]) -> dict[str, Variant]:
    """Per cut, two emulated models: one looks up the undefined names of the target's
    visible code, one those of the whole target (as the issue's emulation has it)."""
    services = services_over(index, root.parent / "ctx" / "tools-services")
    services = replace(
        services, settings=services.settings.model_copy(update={"context_budget": BUDGET})
    )
    tools = IndexTools(index, [root], services.estimator())
    out: dict[str, Variant] = {"visible": ([], [], []), "target": ([], [], [])}
    with FakeKimi() as fake:
        async with KimiClient(fake.base_url, fake.key, max_retries=0) as client:
            for cut in cuts:
                whole = _target_names(index, cut)  # before the cut buffer is opened
                with cut_saved(index, cut):
                    visible = _target_names(index, cut)
                    for variant, names in (("visible", visible), ("target", whole)):
                        a, h, ex = await _case(client, fake, services, tools, cut, names)
                        out[variant][0].append(a)
                        out[variant][1].append(h)
                        out[variant][2].append(ex)
    return out


def run(work: Path, n: int = CUTS) -> list[Row]:
    source = _django(work)
    root = working_copy(work, source)  # the cuts go on disk (`cut_saved`)
    index = WorkspaceIndex([root], state_dir=work / "ctx" / f"{root.name}-state")
    index.update()
    index.prepare_queries()
    try:
        cuts = _cuts(index, root / "django", n)
        variants = asyncio.run(_run_cases(index, root, cuts))
    finally:
        index.close()

    def score(pairs: list[tuple[int, int]]) -> float:
        return sum(h for h, _ in pairs) / max(1, sum(t for _, t in pairs))

    cases = max(1, len(cuts))
    label = re.sub(r"\.tar\.gz$", "", source.name)
    rows = [Row(NAME, f"{label} cut cases", f"{len(cuts)} cuts")]
    for variant, (alone, helped, exchanges) in variants.items():
        who = {"visible": "names of the visible code", "target": "names of the whole target"}
        r_alone, r_helped = score(alone), score(helped)
        extra = sum(max(0, ex.requests - 1) for ex in exchanges) / cases
        rounds = sum(len(ex.rounds) for ex in exchanges) / cases
        tokens = sum(sum(r.tokens for r in ex.results) for ex in exchanges) / cases
        goal = variant == "target"  # the emulation; the other is a lower bound
        rows += [
            Row(
                NAME,
                f"recall @{BUDGET // 1000}k + definition of the {who[variant]}",
                round(r_helped, 3),
                "",
                round(r_alone, 3),
                "packed context alone",
                "+0.10 over the packed context" if goal else "",
                ok=r_helped >= r_alone + 0.10 if goal else None,
            ),
            Row(
                NAME,
                f"extra requests per case ({variant})",
                round(extra, 3),
                "",
                target="< 1" if goal else "",
                ok=extra < 1 if goal else None,
            ),
            Row(NAME, f"lookup rounds per case ({variant})", round(rounds, 3)),
            Row(NAME, f"extra input tokens per case ({variant})", round(tokens, 1), "tokens"),
        ]
    return rows


if __name__ == "__main__":
    from bench.table import render

    here = Path(__file__).resolve().parent / ".work"
    here.mkdir(exist_ok=True)
    print(render(run(here, int(sys.argv[1]) if len(sys.argv) > 1 else CUTS)))

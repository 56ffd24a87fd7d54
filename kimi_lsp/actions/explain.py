"""Explain the code at the cursor (or the selection): one streamed Markdown answer."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kimi_lsp.actions.errors import ActionError
from kimi_lsp.actions.pipeline import Answer, Sink
from kimi_lsp.actions.prompts import OUTPUT_TOKENS, build_messages
from kimi_lsp.actions.readiness import wait_for_index
from kimi_lsp.actions.services import Services
from kimi_lsp.actions.target import Target, find_target
from kimi_lsp.index import Span

EXPLAIN_MAX_TOKENS = OUTPUT_TOKENS["explain"]  # short: TPM admission charges every token asked for


@dataclass
class Explanation:
    target: Target
    answer: Answer
    messages: Sequence[Mapping[str, Any]]

    @property
    def markdown(self) -> str:
        rel = self.target.path.name
        head = f"# {self.target.name}\n\n_{rel}:{self.target.span.start_line + 1}_"
        if self.answer.cached:
            head += " · _cached answer_"
        body = f"{head}\n\n{self.answer.text.strip()}\n"
        note = self.answer.note if self.answer.note and self.answer.note not in body else None
        return body + sources_section(self.answer.sources, note)


async def explain(
    services: Services,
    path: Path,
    text: str,
    line: int,
    col: int,
    sink: Sink,
    *,
    selection: Span | None = None,
    regenerate: bool = False,
) -> Explanation:
    await wait_for_index(services, sink)  # the prompt sees the whole workspace
    target = find_target(services.index, path, text, line, col, selection)
    messages = build_messages(services, "explain", target, text)
    result = await services.answer(
        messages,
        max_completion_tokens=EXPLAIN_MAX_TOKENS,
        sink=sink,
        regenerate=regenerate,
        language=target.language,
        tools=True,
        action="explain",
    )
    if services.store is not None and result.text:
        await remember_for_hover(services, target, result)
    return Explanation(target, result, messages)


def sources_section(sources: Sequence[str], note: str | None = None) -> str:
    """The end of an explain document: what the index lookups drew on (and any note)."""
    out = ""
    if note:
        out += f"\n_{note}_\n"
    if sources:
        out += "\n## Sources\n\n" + "".join(f"- `{s}`\n" for s in sources)
    return out


def hover_key(services: Services, target: Target) -> str:
    """Hover finds an explanation by the symbol's code, not by the whole prompt: it stays
    valid while the symbol's code is unchanged, whatever else changed around it."""
    return f"hover:{services.settings.model}:{target.path}:{target.name}:{target.code_hash}"


async def remember_for_hover(services: Services, target: Target, result: Answer) -> None:
    from kimi_lsp.actions.pipeline import CachedAnswer

    assert services.store is not None
    await services.store.put(
        hover_key(services, target),
        CachedAnswer(result.text, result.reasoning, result.usage, result.model),
    )


def safe_file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80] or "explanation"


async def has_cached_explanation(
    services: Services, path: Path, text: str, line: int, col: int
) -> bool:
    """Is there a stored explanation of the definition at the position (for "Regenerate")?"""
    if services.store is None or services.index is None:
        return False
    try:
        target = find_target(services.index, path, text, line, col)
    except ActionError:  # nothing there, or an ignored file
        return False
    return await services.store.get(hover_key(services, target)) is not None

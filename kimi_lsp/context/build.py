"""The prompt for one action: stable parts first, then what this request needs, in budget.

Layout (for Kimi's automatic prefix cache): the system message holds the instructions and
the repository map, the same bytes for every request on an unchanged repository; the user
message holds the per-request parts — the definitions the target uses (their code when
short, else their signatures), where the target is called from, the file's outline, the
target itself and the instruction. Parts are added in that order of value until the token
budget is spent; what did not fit is listed. Ignored files contribute nothing, and every part
is passed through secret redaction before it is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kimi_lsp.context.redact import redact
from kimi_lsp.context.repomap import RepoMap
from kimi_lsp.index import Definition, Span, WorkspaceIndex

MAP_SHARE = 0.35  # of the budget, at most, for the repository map
MAP_MAX = 4_000
SHORT_BODY_LINES = 40  # a used definition this short goes in whole
CALLERS = 5


@dataclass(frozen=True)
class Section:
    name: str
    text: str
    tokens: int


@dataclass
class BuiltContext:
    messages: list[dict[str, Any]]
    sections: list[Section]
    left_out: list[str]
    stable_prefix_tokens: int
    redactions: int
    tokens: int = 0
    notes: list[str] = field(default_factory=list)


def _contains(outer: Span, inner: Span) -> bool:
    return (outer.start_line, outer.start_col) <= (inner.start_line, inner.start_col) and (
        inner.end_line,
        inner.end_col,
    ) <= (outer.end_line, outer.end_col)


def used_definitions(index: WorkspaceIndex, path: Path, span: Span) -> list[Definition]:
    """Definitions (elsewhere) of the names the code in ``span`` uses, in order of first use."""
    tags = index.file_tags(path)
    if tags is None:
        return []
    seen: set[str] = set()
    found: list[Definition] = []
    for ref in sorted(tags.references, key=lambda r: (r.range.start_line, r.range.start_col)):
        if ref.name in seen or not _contains(span, ref.range):
            continue
        seen.add(ref.name)
        defs = [
            d
            for d in index.definitions(ref.name)
            if not index.is_ignored(d.path) and not (d.path == path and _contains(span, d.range))
        ]
        defs.sort(key=lambda d: (d.path != path, str(d.path), d.range.start_line))
        found.extend(defs[:2])
    return found


def _source(index: WorkspaceIndex, path: Path) -> str:
    text = index.document_text(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
    return text


def _definition_text(index: WorkspaceIndex, d: Definition) -> str:
    lines = _source(index, d.path).splitlines()
    body = lines[d.range.start_line : d.range.end_line + 1]
    if len(body) <= SHORT_BODY_LINES:
        return "\n".join(body)
    return d.signature.strip() + "  # … body elided"


def _relative(path: Path, roots: list[Path]) -> str:
    for root in roots:
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.name


def build_context(
    index: WorkspaceIndex,
    roots: list[Path],
    repo_map: RepoMap,
    estimate: Callable[[str], int],
    *,
    system: str,
    path: Path,
    language: str,
    target_span: Span,
    target_code: str,
    target_definition: Definition | None,
    instruction: str,
    budget: int,
    extra: str = "",
) -> BuiltContext:
    redactions = 0
    left_out: list[str] = []

    def clean(text: str, origin: Path | None = None) -> str:
        nonlocal redactions
        text, n = redact(text, origin)
        redactions += n
        return text

    map_text = clean(repo_map.render(int(min(MAP_SHARE * budget, MAP_MAX))))
    stable = system
    if map_text:
        stable += (
            "\n\nRepository map (the most used files' definitions; bodies elided):\n" + map_text
        )
    sections = [Section("system + repository map", stable, estimate(stable))]
    rel = _relative(path, roots)
    target = clean(
        f"The code ({rel}, line {target_span.start_line + 1}):\n```{language}\n"
        f"{target_code.rstrip()}\n```",
        path,
    )
    required = [Section("target", target, estimate(target))]
    if extra:
        extra = clean(extra)
        required.append(Section("examples", extra, estimate(extra)))
    required.append(Section("instruction", instruction, estimate(instruction)))
    used = sum(s.tokens for s in sections + required)

    optional: list[Section] = []
    for d in used_definitions(index, path, target_span):
        text = clean(
            f"{_relative(d.path, roots)}:{d.range.start_line + 1}:\n```{d.language}\n"
            f"{_definition_text(index, d)}\n```",
            d.path,
        )
        optional.append(Section(f"uses {d.name}", text, estimate(text)))
    if target_definition is not None:
        calls = [r for r in index.references_to(target_definition) if not index.is_ignored(r.path)][
            :CALLERS
        ]
        if calls:
            lines = []
            for r in calls:
                src = _source(index, r.path).splitlines()
                line = src[r.range.start_line].strip() if r.range.start_line < len(src) else ""
                lines.append(f"{_relative(r.path, roots)}:{r.range.start_line + 1}: {line}")
            text = clean(f"`{target_definition.name}` is used at:\n" + "\n".join(lines))
            optional.append(Section("callers", text, estimate(text)))
    outline = [
        f"{'  ' * (d.scope.count('.') + 1 if d.scope else 0)}{d.signature.strip()}"
        for d in index.outline(path)
    ]
    if outline:
        text = clean(f"Outline of {rel}:\n```\n" + "\n".join(outline) + "\n```", path)
        optional.append(Section("file outline", text, estimate(text)))

    chosen: list[Section] = []
    for section in optional:
        if used + section.tokens <= budget:
            chosen.append(section)
            used += section.tokens
        else:
            left_out.append(f"{section.name} ({section.tokens} tokens)")
    if used > budget:
        left_out.append(f"over budget by {used - budget} tokens: the target alone is that big")
    volatile = chosen + required
    user = "\n\n".join(s.text for s in volatile)
    messages = [{"role": "system", "content": stable}, {"role": "user", "content": user}]
    return BuiltContext(
        messages=messages,
        sections=sections + volatile,
        left_out=left_out,
        stable_prefix_tokens=sections[0].tokens,
        redactions=redactions,
        tokens=used,
    )

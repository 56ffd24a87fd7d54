"""Hover: what the index knows about a symbol, instantly, plus Kimi's explanation when one is
cached. Hover never spends quota."""

from __future__ import annotations

from pathlib import Path

from kimi_lsp.actions.explain import hover_key
from kimi_lsp.actions.pipeline import QuietSink
from kimi_lsp.actions.services import Services
from kimi_lsp.actions.target import Target, slice_span
from kimi_lsp.index import Definition
from kimi_lsp.positions import read_text

DOC_LINES = 12
NO_EXPLANATION = "No Kimi explanation yet"


def _docstring(defn: Definition, text: str) -> str:
    if defn.doc_range is None:
        return ""
    raw = slice_span(text, defn.doc_range).strip()
    for quote in ('"""', "'''"):
        raw = raw.removeprefix(quote).removesuffix(quote)
    lines = [ln.strip().lstrip("/*#").strip() for ln in raw.strip().splitlines()]
    return "\n".join(lines[:DOC_LINES]).strip()


def _where(defn: Definition, roots: list[Path]) -> str:
    for root in roots:
        if defn.path.is_relative_to(root):
            return f"{defn.path.relative_to(root)}:{defn.range.start_line + 1}"
    return f"{defn.path.name}:{defn.range.start_line + 1}"


def definition_at(services: Services, path: Path, line: int, col: int) -> Definition | None:
    """The definition whose name is under the cursor, or whose name a reference there uses."""
    index = services.index
    if index is None:
        return None
    tags = index.file_tags(path)
    if tags is None:
        return None
    here = (line, col)
    for d in tags.definitions:
        r = d.name_range
        if (r.start_line, r.start_col) <= here <= (r.end_line, r.end_col):
            return d
    for ref in tags.references:
        r = ref.range
        if (r.start_line, r.start_col) <= here <= (r.end_line, r.end_col):
            found = index.definitions(ref.name)
            best = [d for d in found if d.path == path] or found
            return best[0] if best else None
    return None


def _source_of(services: Services, defn: Definition, path: Path, text: str) -> str:
    assert services.index is not None
    buffer = services.index.document_text(defn.path) if defn.path != path else text
    return read_text(defn.path, buffer) or ""


async def explain_for_hover(services: Services, path: Path, text: str, line: int, col: int) -> None:
    """Hover's opt-in wait: explain the symbol under the cursor (this spends quota)."""
    from kimi_lsp.actions.explain import explain

    defn = definition_at(services, path, line, col)
    if defn is None or services.index is None:
        return
    source = _source_of(services, defn, path, text)
    start = defn.name_range
    await explain(services, defn.path, source, start.start_line, start.start_col, QuietSink())


async def hover_markdown(
    services: Services, path: Path, text: str, line: int, col: int
) -> str | None:
    defn = definition_at(services, path, line, col)
    if defn is None or services.index is None:
        return None
    defn_text = _source_of(services, defn, path, text)
    refs = len(services.index.references_to(defn))
    parts = [
        f"```{defn.language}\n{defn.signature.strip()}\n```",
        f"*{defn.kind.value}* `{defn.name}` · defined at `{_where(defn, services.roots)}` · "
        f"{refs} reference{'s' if refs != 1 else ''}",
    ]
    doc = _docstring(defn, defn_text)
    if doc:
        parts.append(doc)
    cached = None
    if services.store is not None:
        from kimi_lsp.index import Span

        span = Span(defn.range.start_line, 0, defn.range.end_line, defn.range.end_col)
        target = Target(
            defn.path, defn.language, span, slice_span(defn_text, span), defn.name, defn
        )
        cached = await services.store.get(hover_key(services, target))
    if cached is not None:
        parts.append("---\n**Kimi** (cached):\n\n" + cached.text.strip())
    else:
        parts.append(f"---\n_{NO_EXPLANATION}: run the code action “Kimi: Explain”._")
    return "\n\n".join(parts)

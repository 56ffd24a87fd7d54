"""The repository map: ranked definitions as a skeleton (signatures and scopes, no bodies).

Two renderings share one format (Aider's map, without the bodies)::

    pkg/geometry.py:
      class Shape:
        def area(self) -> float:

- ``RepoMap.render(budget)``: the whole repository by global PageRank — the same bytes for
  the same repository whatever the request, so it sits in the stable prefix of every
  prompt where Kimi's automatic prefix cache serves it cheaply; cached per index state.
- ``render_skeleton(definitions, ...)`` with ``fit_skeleton``: the per-request rest, ranked
  for the cursor, fitted to what is left of the budget by binary search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from kimi_lsp.context.ranking import (
    _KIND_WEIGHT,
    FileRanker,
    OutlineTable,
    outline_table,
    pagerank,
)
from kimi_lsp.index import Definition, WorkspaceIndex
from kimi_lsp.positions import relative

MAP_FILES = 300  # candidates for the global map: the best-ranked files

__all__ = ["RepoMap", "fit_skeleton", "pagerank", "render_skeleton"]


def render_skeleton(
    index: WorkspaceIndex,
    definitions: Sequence[Definition],
    roots: Sequence[Path],
    outlines: dict[Path, tuple[str, list[Definition], dict[str, Definition]]] | None = None,
) -> str:
    """Files in order of their first chosen definition; in each, the chosen definitions in
    source order under their parent scopes' signature lines (included even when the parent
    itself was not chosen, so a method always shows its class). ``outlines`` memoises the
    files' outlines across calls (the binary search renders the same files many times)."""
    memo = outlines if outlines is not None else {}
    by_file: dict[Path, list[Definition]] = {}
    for d in definitions:
        by_file.setdefault(d.path, []).append(d)
    blocks: list[str] = []
    for path, chosen in by_file.items():
        if path not in memo:
            outline = index.outline(path)
            memo[path] = (relative(path, roots), outline, {d.qualified_name: d for d in outline})
        rel, outline, by_qualified = memo[path]
        # Within one file a definition is its (name range, name): cheaper than hashing paths.
        keep = {(d.name_range, d.name) for d in chosen}
        for d in chosen:
            scope = d.scope
            while scope:
                parent = by_qualified.get(scope)
                if parent is not None:
                    keep.add((parent.name_range, parent.name))
                scope = scope.rpartition(".")[0]
        lines = [f"{rel}:"]
        for d in outline:  # outline is source order
            if (d.name_range, d.name) in keep:
                depth = d.scope.count(".") + 1 if d.scope else 0
                lines.append(f"{'  ' * (depth + 1)}{d.signature.strip()}")
        blocks.append("\n".join(lines) + "\n")
    return "".join(blocks)


def fit_skeleton(
    index: WorkspaceIndex,
    ranked: Sequence[Definition],
    roots: Sequence[Path],
    estimate: Callable[[str], int],
    budget: int,
    clean: Callable[[str], tuple[str, int]] | None = None,
) -> tuple[str, int, int]:
    """The rendering of the longest prefix of ``ranked`` that fits ``budget`` tokens, that
    prefix's length, and how many secrets ``clean`` (applied to each line, redaction) hid in
    it. The text is `render_skeleton`'s of the prefix, its lines cleaned.

    Binary search over the prefix length, the estimate growing with it; each definition's
    lines (its own, and its scopes' not yet shown) are worked out once, in rank order, so a
    prefix's rendering is a sort of the lines it brings, not a walk of its files' outlines."""
    if budget <= 0 or not ranked:
        return "", 0, 0
    # Every chosen definition costs at least its own signature line, so the prefix cannot
    # be longer than where those alone pass the budget: search below that bound.
    hi, spent = 0, 0
    while hi < len(ranked) and spent <= budget:
        spent += estimate(ranked[hi].signature.strip())
        hi += 1

    def cleaned(text: str) -> tuple[str, int]:
        return clean(text) if clean is not None else (text, 0)

    files: dict[Path, int] = {}
    heads: list[tuple[str, int]] = []  # per file, in order of its first definition
    tables: list[OutlineTable] = []
    first: list[int] = []  # the rank of each file's first definition
    entries: list[tuple[int, int]] = []  # (file, position in its outline), as brought in
    texts: list[tuple[str, int]] = []
    ends = [0]  # ends[k]: how many entries the first k definitions bring
    seen: set[tuple[int, int]] = set()
    for rank, d in enumerate(ranked[:hi]):
        f = files.get(d.path)
        if f is None:
            f = files[d.path] = len(heads)
            heads.append(cleaned(f"{relative(d.path, roots)}:"))
            first.append(rank)
            tables.append(outline_table(index, d.path))
        table = tables[f]
        pos = table.position.get((d.name_range, d.name))
        if pos is not None:
            for p in (pos, *table.ancestors[pos]):
                if (f, p) not in seen:
                    seen.add((f, p))
                    entries.append((f, p))
                    texts.append(cleaned(table.skeleton_lines[p]))
        ends.append(len(entries))

    def render(k: int) -> tuple[str, int]:
        per_file: list[list[tuple[int, int]]] = [[] for _ in heads]
        for e in range(ends[k]):
            f, p = entries[e]
            per_file[f].append((p, e))
        blocks, hidden = [], 0
        for f, head in enumerate(heads):
            if first[f] >= k:
                break
            lines = [head[0]]
            hidden += head[1]
            for _, e in sorted(per_file[f]):
                lines.append(texts[e][0])
                hidden += texts[e][1]
            blocks.append("\n".join(lines) + "\n")
        return "".join(blocks), hidden

    lo, best = 0, ("", 0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        text, hidden = render(mid)
        if estimate(text) <= budget:
            lo, best = mid, (text, hidden)
        else:
            hi = mid - 1
    return best[0], lo, best[1]


class RepoMap:
    """Renders the global map and remembers it until the index changes.

    ``ranker`` is the resident file graph that per-request ranking reuses too.
    """

    def __init__(
        self, index: WorkspaceIndex, roots: Sequence[Path], estimate: Callable[[str], int]
    ) -> None:
        self.index, self.roots, self.estimate = index, list(roots), estimate
        self.ranker = FileRanker(index)
        self._state: tuple[tuple[Path, str], ...] | None = None
        self._cache: dict[int, str] = {}

    def render(self, budget: int) -> str:
        if budget <= 0:
            return ""
        key = self.ranker.key
        if key != self._state:  # one repository state at a time, any number of budgets
            self._state, self._cache = key, {}
        if budget not in self._cache:
            self._cache[budget] = self._render(budget)
        return self._cache[budget]

    def _render(self, budget: int) -> str:
        """The best-ranked definitions of the best-ranked files, as a skeleton: a file's
        rank times the definition's kind and depth (top-level first), ties by path/line."""
        ranks = self.ranker.ranks()
        files = sorted(
            (p for p, _ in self.ranker.key if self.ranker.allowed(p)),
            key=lambda p: (-round(ranks.get(p, 0.0), 12), str(p)),
        )[:MAP_FILES]
        scored = []
        for p in files:
            r = round(ranks.get(p, 0.0), 12)
            for d in self.index.outline(p):
                depth = d.scope.count(".") + 1 if d.scope else 0
                private = d.name.startswith("_") and not d.name.startswith("__")
                w = r * _KIND_WEIGHT.get(d.kind, 0.5) * (0.3 if private else 1.0) / (1 + 2 * depth)
                scored.append((-round(w, 15), str(p), d.range.start_line, d))
        scored.sort(key=lambda t: t[:3])
        text, _, _ = fit_skeleton(
            self.index, [t[3] for t in scored], self.roots, self.estimate, budget
        )
        return text

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

from kimi_lsp.context.ranking import FileRanker, pagerank
from kimi_lsp.index import Definition, WorkspaceIndex

__all__ = ["RepoMap", "fit_skeleton", "pagerank", "relative", "render_skeleton"]


def relative(path: Path, roots: Sequence[Path]) -> str:
    for root in roots:
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.as_posix()


def render_skeleton(
    index: WorkspaceIndex, definitions: Sequence[Definition], roots: Sequence[Path]
) -> str:
    """Files in order of their first chosen definition; in each, the chosen definitions in
    source order under their parent scopes' signature lines (included even when the parent
    itself was not chosen, so a method always shows its class)."""
    by_file: dict[Path, set[Definition]] = {}
    for d in definitions:
        by_file.setdefault(d.path, set()).add(d)
    blocks: list[str] = []
    for path, chosen in by_file.items():
        outline = index.outline(path)
        by_qualified = {d.qualified_name: d for d in outline}
        keep = set(chosen)
        for d in chosen:
            scope = d.scope
            while scope:
                parent = by_qualified.get(scope)
                if parent is not None:
                    keep.add(parent)
                scope = scope.rpartition(".")[0]
        lines = [f"{relative(path, roots)}:"]
        for d in outline:  # outline is source order
            if d in keep:
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
) -> tuple[str, int]:
    """The rendering of the longest prefix of ``ranked`` that fits ``budget`` tokens (binary
    search: the estimate grows with the prefix), and that prefix's length."""
    if budget <= 0 or not ranked:
        return "", 0
    lo, hi = 0, len(ranked)
    best = ""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        text = render_skeleton(index, ranked[:mid], roots)
        if estimate(text) <= budget:
            lo, best = mid, text
        else:
            hi = mid - 1
    return best, lo


class RepoMap:
    """Renders the global map and remembers it until the index changes.

    ``ranker`` is the resident file graph that per-request ranking reuses too.
    """

    def __init__(
        self, index: WorkspaceIndex, roots: Sequence[Path], estimate: Callable[[str], int]
    ) -> None:
        self.index, self.roots, self.estimate = index, list(roots), estimate
        self.ranker = FileRanker(index)
        self._cache: dict[tuple[tuple[tuple[Path, str], ...], int], str] = {}

    def render(self, budget: int) -> str:
        self.ranker.refresh()
        key = (self.ranker._state or (), budget)
        if key not in self._cache:
            self._cache = {key: self._render(budget)}  # one state at a time
        return self._cache[key]

    def _render(self, budget: int) -> str:
        ranks = self.ranker.ranks()
        files = sorted(
            (p for p in self.index.files() if not self.index.is_ignored(p)),
            key=lambda p: (-round(ranks.get(p, 0.0), 12), str(p)),
        )
        blocks = [render_skeleton(self.index, self.index.outline(p), self.roots) for p in files]
        blocks = [b for b in blocks if b.count("\n") > 1]  # files with definitions only
        lo, hi = 0, len(blocks)
        while lo < hi:  # the most files whose rendering fits the budget
            mid = (lo + hi + 1) // 2
            if self.estimate("".join(blocks[:mid])) <= budget:
                lo = mid
            else:
                hi = mid - 1
        return "".join(blocks[:lo])

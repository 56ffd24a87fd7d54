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


class _Skeleton:
    """The skeleton's lines for a sequence of definitions, worked out once, in order: each
    definition brings its own line and its scopes' not yet shown (a method always shows its
    class), so the rendering of any prefix is a sort of the lines it brings, not a walk of
    its files' outlines. ``clean`` (redaction) is applied to each line once."""

    def __init__(
        self,
        index: WorkspaceIndex,
        definitions: Sequence[Definition],
        roots: Sequence[Path],
        clean: Callable[[str], tuple[str, int]] | None = None,
    ) -> None:
        def cleaned(text: str) -> tuple[str, int]:
            return clean(text) if clean is not None else (text, 0)

        files: dict[Path, int] = {}
        tables: list[OutlineTable] = []
        self.heads: list[tuple[str, int]] = []  # per file, in order of its first definition
        self.first: list[int] = []  # the rank of each file's first definition
        self.entries: list[tuple[int, int]] = []  # (file, position in its outline), brought in
        self.texts: list[tuple[str, int]] = []
        self.ends = [0]  # ends[k]: how many entries the first k definitions bring
        seen: set[tuple[int, int]] = set()
        for rank, d in enumerate(definitions):
            f = files.get(d.path)
            if f is None:
                f = files[d.path] = len(self.heads)
                self.heads.append(cleaned(f"{relative(d.path, roots)}:"))
                self.first.append(rank)
                tables.append(outline_table(index, d.path))
            table = tables[f]
            pos = table.position.get((d.name_range, d.name))
            if pos is not None:
                for p in (pos, *table.ancestors[pos]):
                    if (f, p) not in seen:
                        seen.add((f, p))
                        self.entries.append((f, p))
                        self.texts.append(cleaned(table.skeleton_lines[p]))
            self.ends.append(len(self.entries))

    def render(self, k: int) -> tuple[str, int]:
        """The first ``k`` definitions' skeleton, and the secrets ``clean`` hid in it."""
        per_file: list[list[tuple[int, int]]] = [[] for _ in self.heads]
        for e in range(self.ends[k]):
            f, p = self.entries[e]
            per_file[f].append((p, e))
        blocks, hidden = [], 0
        for f, (head, head_hidden) in enumerate(self.heads):
            if self.first[f] >= k:
                break
            lines = [head]
            hidden += head_hidden
            for _, e in sorted(per_file[f]):
                lines.append(self.texts[e][0])
                hidden += self.texts[e][1]
            blocks.append("\n".join(lines) + "\n")
        return "".join(blocks), hidden


def render_skeleton(
    index: WorkspaceIndex, definitions: Sequence[Definition], roots: Sequence[Path]
) -> str:
    """Files in order of their first chosen definition; in each, the chosen definitions in
    source order under their parent scopes' signature lines (included even when the parent
    itself was not chosen, so a method always shows its class)."""
    return _Skeleton(index, definitions, roots).render(len(definitions))[0]


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
    it. The text is `render_skeleton`'s of the prefix, its lines cleaned; binary search over
    the prefix length, the estimate growing with it."""
    if budget <= 0 or not ranked:
        return "", 0, 0
    # Every chosen definition costs at least its own signature line, so the prefix cannot
    # be longer than where those alone pass the budget: search below that bound.
    hi, spent = 0, 0
    while hi < len(ranked) and spent <= budget:
        spent += estimate(ranked[hi].signature.strip())
        hi += 1
    skeleton = _Skeleton(index, ranked[:hi], roots, clean)
    lo, best = 0, ("", 0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        text, hidden = skeleton.render(mid)
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

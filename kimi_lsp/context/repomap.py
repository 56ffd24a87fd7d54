"""The repository map: the most referenced files' definitions, signatures only.

Files are ranked by PageRank over the index's file graph (a file that many others use ranks
high), then rendered as their definitions' signatures, indented by scope, bodies elided, as
many files as fit the token budget (binary search). The map is the same bytes for the same
repository whatever the request, so it can sit in the stable prefix of every prompt, where
Kimi's automatic prefix cache serves it cheaply; it is computed once per index state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path

from kimi_lsp.index import WorkspaceIndex

DAMPING = 0.85
ITERATIONS = 30


def pagerank(
    graph: Mapping[Path, Mapping[Path, float]],
    personalization: Mapping[Path, float] | None = None,
) -> dict[Path, float]:
    """Weighted PageRank by power iteration over the sparse graph (dangling mass is spread
    by the personalization, or uniformly)."""
    nodes = sorted({*graph, *(t for edges in graph.values() for t in edges)})
    if not nodes:
        return {}
    pers = {n: personalization.get(n, 0.0) for n in nodes} if personalization else {}
    total = sum(pers.values())
    base = (
        {n: v / total for n, v in pers.items()}
        if total > 0
        else dict.fromkeys(nodes, 1 / len(nodes))
    )
    out_weight = {n: sum(graph.get(n, {}).values()) for n in nodes}
    rank = dict(base)
    for _ in range(ITERATIONS):
        nxt = {n: (1 - DAMPING) * base[n] for n in nodes}
        dangling = sum(rank[n] for n in nodes if out_weight[n] == 0)
        for n in nodes:
            w = out_weight[n]
            if w == 0:
                continue
            share = DAMPING * rank[n] / w
            for target, weight in graph[n].items():
                nxt[target] += share * weight
        for n in nodes:
            nxt[n] += DAMPING * dangling * base[n]
        rank = nxt
    return rank


def _relative(path: Path, roots: list[Path]) -> str:
    for root in roots:
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.as_posix()


def render_file(index: WorkspaceIndex, path: Path, roots: list[Path]) -> str:
    lines = [f"{_relative(path, roots)}:"]
    for d in index.outline(path):
        depth = d.scope.count(".") + 1 if d.scope else 0
        lines.append(f"{'  ' * (depth + 1)}{d.signature.strip()}")
    return "\n".join(lines) + "\n"


class RepoMap:
    """Renders the map and remembers it until the index changes."""

    def __init__(
        self, index: WorkspaceIndex, roots: list[Path], estimate: Callable[[str], int]
    ) -> None:
        self.index, self.roots, self.estimate = index, roots, estimate
        self._cache: dict[tuple[str, int], str] = {}

    def _state(self) -> str:
        h = hashlib.sha256()
        for path in sorted(self.index.files()):
            info = self.index.file_info(path)
            h.update(f"{path}\0{info.content_hash if info else ''}\n".encode())
        return h.hexdigest()

    def render(self, budget: int) -> str:
        key = (self._state(), budget)
        if key not in self._cache:
            self._cache = {key: self._render(budget)}  # one state at a time
        return self._cache[key]

    def _render(self, budget: int) -> str:
        files = [p for p in self.index.files() if not self.index.is_ignored(p)]
        ranks = pagerank(self.index.file_graph())
        ordered = sorted(files, key=lambda p: (-ranks.get(p, 0.0), str(p)))
        blocks = [render_file(self.index, p, self.roots) for p in ordered]
        blocks = [b for b in blocks if b.count("\n") > 1]  # files with definitions only
        lo, hi = 0, len(blocks)
        while lo < hi:  # the most files whose rendering fits the budget
            mid = (lo + hi + 1) // 2
            if self.estimate("".join(blocks[:mid])) <= budget:
                lo = mid
            else:
                hi = mid - 1
        return "".join(blocks[:lo])

"""Ranking: personalised PageRank over the index's file graph, resident and incremental.

The graph is the index's ``file_graph()``: an edge from each file to the files whose names
it uses, plus one per import. Imports carry the signal that matters most for a cursor
(measured: following imports beats Aider's name-only map by ~40 points of recall), so the
walk runs on them rather than replacing them. Personalisation puts the restart mass on the
target's file, the selection, the open documents and the files with diagnostics in range.

``ResidentGraph`` keeps node ids stable and replaces only the rows that changed when the index
moves on; the power iteration is a sparse matrix-vector product (``numpy.bincount`` over an
edge list), about a millisecond per iteration on Django's 2,900 files.

Definitions are then scored from their file's rank and what the target's file says about
them (`score_definitions`): a name the file uses or imports is worth far more than a
neighbour it never mentions.
"""

from __future__ import annotations

import heapq
import math
import re
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from kimi_lsp.index import Definition, DefinitionKind, Span, WorkspaceIndex, language_for

DAMPING = 0.85
TOLERANCE = 1e-7  # L1 change per iteration: ranks are compared, not printed
MAX_ITERATIONS = 50
# Languages whose files name what they import from other files (Rust's `use` names its
# items; not Go's packages, C's headers or Java's same-package classes, which are used
# without naming them first).
NAMED_IMPORTS = frozenset({"python", "javascript", "typescript", "tsx", "rust"})
MAX_AMBIGUITY = 3  # a name defined in more files is weak evidence for any one of them

K = TypeVar("K", bound=Hashable)
Vector = npt.NDArray[np.float64]
Indices = npt.NDArray[np.int64]


class ResidentGraph(Generic[K]):
    """A weighted directed graph with stable node ids, rows replaceable one at a time."""

    def __init__(self) -> None:
        self.nodes: list[K] = []
        self.ids: dict[K, int] = {}
        self.rows: dict[int, dict[int, float]] = {}
        self._arrays: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], Vector, Vector] | None = (
            None
        )

    def _id(self, node: K) -> int:
        i = self.ids.get(node)
        if i is None:
            i = self.ids[node] = len(self.nodes)
            self.nodes.append(node)
            self._arrays = None
        return i

    def set_row(self, node: K, edges: Mapping[K, float]) -> bool:
        """Replace ``node``'s out-edges; True when that changed anything."""
        src = self._id(node)
        row = {self._id(t): float(w) for t, w in edges.items() if w > 0 and t != node}
        if self.rows.get(src, {}) == row:
            return False
        if row:
            self.rows[src] = row
        else:
            self.rows.pop(src, None)
        self._arrays = None
        return True

    def sync(self, graph: Mapping[K, Mapping[K, float]]) -> int:
        """Make the rows equal ``graph``'s; returns how many rows changed (nodes that vanished
        keep their id with no edges, so ids never shift)."""
        changed = sum(self.set_row(node, edges) for node, edges in graph.items())
        for node in [self.nodes[i] for i in list(self.rows) if self.nodes[i] not in graph]:
            changed += self.set_row(node, {})
        return changed

    def _edge_arrays(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], Vector, Vector]:
        if self._arrays is None:
            n = len(self.nodes)
            src: list[int] = []
            dst: list[int] = []
            weight: list[float] = []
            for s, row in self.rows.items():
                for t, w in row.items():
                    src.append(s)
                    dst.append(t)
                    weight.append(w)
            s_arr = np.array(src, dtype=np.int64)
            d_arr = np.array(dst, dtype=np.int64)
            w_arr = np.array(weight, dtype=np.float64)
            out: Vector = np.bincount(s_arr, weights=w_arr, minlength=n).astype(np.float64)
            norm = w_arr / out[s_arr] if len(w_arr) else w_arr
            arrays = (s_arr, d_arr, norm, out)
            self._arrays = arrays
            return arrays
        return self._arrays

    def pagerank(
        self, personalization: Mapping[K, float] | None = None, *, damping: float = DAMPING
    ) -> dict[K, float]:
        """Personalised PageRank; dangling mass returns to the personalisation (or spreads
        uniformly without one). Unknown personalisation keys are ignored."""
        n = len(self.nodes)
        if n == 0:
            return {}
        src, dst, norm, out = self._edge_arrays()
        base = np.zeros(n)
        for node, v in (personalization or {}).items():
            i = self.ids.get(node)
            if i is not None and v > 0:
                base[i] += v
        base = base / base.sum() if base.sum() > 0 else np.full(n, 1.0 / n)
        dangling = out == 0
        rank = base.copy()
        for _ in range(MAX_ITERATIONS):
            flow = np.bincount(dst, weights=norm * rank[src], minlength=n)
            nxt = damping * flow + (damping * rank[dangling].sum() + 1 - damping) * base
            delta = float(np.abs(nxt - rank).sum())
            rank = nxt
            if delta < TOLERANCE:
                break
        return {node: float(rank[i]) for i, node in enumerate(self.nodes)}


def pagerank(
    graph: Mapping[K, Mapping[K, float]], personalization: Mapping[K, float] | None = None
) -> dict[K, float]:
    """Weighted (personalised) PageRank of a graph given as ``{node: {target: weight}}``."""
    g: ResidentGraph[K] = ResidentGraph()
    for node in sorted(graph, key=str):  # stable ids: the same graph ranks the same
        g._id(node)
    for targets in graph.values():
        for t in sorted(targets, key=str):
            g._id(t)
    g.sync(graph)
    return g.pagerank(personalization)


# Words too common in names to say what a definition is about (shorter ones never count).
_COMMON = (
    "get set has for and the with from new self cls init make add all value values name names "
    "data args kwargs obj object item items list dict"
)
_COMMON_WORDS = frozenset(_COMMON.split())
NAME_WORD_WEIGHT = 3.0
NAME_WORD_TIER = 1.0


@lru_cache(maxsize=1 << 16)  # a build asks for every definition of ~80 files
def name_words(name: str) -> frozenset[str]:
    """The distinctive words of a name (snake_case and camelCase split, lowercased)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return frozenset(w for w in spaced.lower().split("_") if len(w) > 2 and w not in _COMMON_WORDS)


@dataclass(frozen=True)
class Focus:
    """What a request is about: restart weights of the personalised walk, and the names the
    target itself uses (``near``: they outrank names used elsewhere in its file)."""

    path: Path
    selection_paths: tuple[Path, ...] = ()
    open_documents: tuple[Path, ...] = ()
    diagnostic_paths: tuple[Path, ...] = ()
    near: frozenset[str] = frozenset()
    words: frozenset[str] = frozenset()  # of the target's name (`name_words`)

    def personalization(self) -> dict[Path, float]:
        weights: dict[Path, float] = {}
        for paths, w in (
            (self.open_documents, 0.3),
            (self.diagnostic_paths, 1.0),
            (self.selection_paths, 2.0),
            ((self.path,), 4.0),
        ):
            for p in paths:
                weights[p] = weights.get(p, 0.0) + w
        return weights


class FileRanker:
    """The index's file graph kept resident; re-synced when saved content or the set of
    files changed.

    Open editor buffers do not move the graph (or the repository map built on it): typing
    would otherwise re-rank and re-render on every keystroke and change the stable prefix
    each time. The focus file's own references are read fresh per request anyway.
    """

    def __init__(self, index: WorkspaceIndex) -> None:
        self.index = index
        self.graph: ResidentGraph[Path] = ResidentGraph()
        self._state: tuple[tuple[Path, str], ...] | None = None
        self._hashes: dict[Path, str] = {}
        self._generation: object = None
        self._global: dict[Path, float] | None = None
        self._allowed: frozenset[Path] = frozenset()
        self._lock = threading.RLock()
        self.rows_changed = 0  # by the last sync (for tests and the benchmark)

    def _index_generation(self) -> object:
        # The index's counter of saved changes makes "nothing changed" free, also while a
        # buffer is edited. Without it every call would compare the files' hashes (~25 ms
        # on Django).
        return self.index.saved_generation

    def state(self) -> tuple[tuple[Path, str], ...]:
        """(path, saved content hash) for every file; a file open in the editor keeps the
        hash it had when it was last read from disk."""
        out = []
        for path in self.index.files():
            info = self.index.file_info(path)
            if info is None:
                continue
            digest = info.content_hash if info.source == "disk" else None
            out.append((path, digest or self._hashes.get(path, "")))
        return tuple(out)

    def _same(self, state: tuple[tuple[Path, str], ...]) -> bool:
        """True when only unknown hashes got known: a file open in the editor since before
        the first sync shows its saved hash once it is closed; nothing changed for us."""
        if self._state is None or len(state) != len(self._state):
            return False
        learned = False
        for (path, digest), (old_path, old_digest) in zip(state, self._state, strict=True):
            if path != old_path or (digest != old_digest and old_digest and digest):
                return False
            learned |= digest != old_digest
        if learned:
            self._state = tuple((p, d or self._hashes.get(p, "")) for p, d in state)
            self._hashes = dict(self._state)
        return True

    @property
    def key(self) -> tuple[tuple[Path, str], ...]:
        """What the graph was built from: the repository map caches its rendering by it."""
        self.refresh()
        return self._state or ()

    def allowed(self, path: Path) -> bool:
        """Not ignored (cached per sync: the ignore rules are costly per call)."""
        self.refresh()
        return path in self._allowed

    def refresh(self) -> bool:
        """Sync with the index when saved content changed; True when it did."""
        with self._lock:
            generation = self._index_generation()
            if generation is not None and generation == self._generation:
                return False
            state = self.state()
            self._generation = generation
            if self._same(state):
                return False
            if self._state is None:  # first build: ids in path order, so ranks are stable
                for path, _ in state:
                    self.graph._id(path)
            self.rows_changed = self.graph.sync(self.index.file_graph())
            self._state = state
            self._hashes = dict(state)
            self._allowed = frozenset(p for p, _ in state if not self.index.is_ignored(p))
            self._global = None
            return True

    def ranks(self, focus: Focus | None = None) -> dict[Path, float]:
        self.refresh()
        with self._lock:
            if focus is None:
                if self._global is None:
                    self._global = self.graph.pagerank()
                return self._global
            return self.graph.pagerank(focus.personalization())


_KIND_WEIGHT = {
    DefinitionKind.CLASS: 1.0,
    DefinitionKind.INTERFACE: 1.0,
    DefinitionKind.STRUCT: 1.0,
    DefinitionKind.ENUM: 0.8,
    DefinitionKind.TYPE: 0.8,
    DefinitionKind.FUNCTION: 1.0,
    DefinitionKind.METHOD: 0.7,
    DefinitionKind.CONSTRUCTOR: 0.7,
    DefinitionKind.FIELD: 0.1,
    DefinitionKind.PROPERTY: 0.4,
    DefinitionKind.CONSTANT: 0.4,
    DefinitionKind.VARIABLE: 0.15,
    DefinitionKind.MODULE: 0.3,
    DefinitionKind.MACRO: 0.6,
}


@lru_cache(maxsize=1 << 16)  # asked again for the same imports on every build
def _names_module(path: Path, module: str, importer: Path) -> bool:
    """Whether ``module`` as written in ``importer`` (``.errors``, ``django.db.models``) can
    name the file ``path`` (``errors.py``, ``django/db/models/__init__.py``)."""
    key = path.parent if path.stem == "__init__" else path.with_suffix("")
    if module.startswith("."):
        rest = module.lstrip(".")
        base = importer.parent
        for _ in range(len(module) - len(rest) - 1):
            base = base.parent
        return key == (base.joinpath(*rest.split(".")) if rest else base)
    return key.as_posix().endswith("/" + module.replace(".", "/"))


@lru_cache(maxsize=1 << 16)
def _names_package(folder: Path, module: str) -> bool:
    """Whether a Go import path (``github.com/x/db/table``) can name the package in
    ``folder``: its last parts, two at least (the module's own path prefix may differ from
    the checkout's folders), end the folder's path."""
    parts = module.strip("/").split("/")
    at = folder.as_posix()
    return any(at.endswith("/" + "/".join(parts[i:])) for i in range(max(1, len(parts) - 1)))


@dataclass(frozen=True, eq=False)
class OutlineTable:
    """One file's definitions with what scoring and rendering ask of each, worked out once
    per content (``outline_table``): a build scores ~80 files' definitions, and the factors
    that depend on the definition alone need not be recomputed per request."""

    definitions: tuple[Definition, ...]
    by_name: Mapping[str, Indices]
    by_word: Mapping[str, Indices]  # `name_words` of each name
    by_owner: Mapping[str, Indices]  # a class's direct members (``__init__``, no dunder)
    members: Mapping[str, int]  # every definition under a top-level name
    top_names: frozenset[str]
    top_count: int
    module_level: Indices  # top-level, not a dunder: what `module.` reaches
    exported: npt.NDArray[np.bool_]  # per definition: its name is capitalised (Go's `pkg.X`)
    lines: Indices
    kind_weight: Vector
    # The factors of a definition its file does not name: the branch (0.2 for a local or a
    # dunder; 0.25 for a top-level one where files name what they import), the depth, the
    # private prefix.
    plain_factor: Vector
    named_factor: Vector
    depth_factor: Vector
    private_factor: Vector
    # For the skeleton (`repomap.fit_skeleton`): where a definition is, the definitions of
    # its enclosing scopes (nearest first), and its line, indented under them.
    position: Mapping[tuple[Span, str], int]
    ancestors: tuple[tuple[int, ...], ...]
    skeleton_lines: tuple[str, ...]


_TABLES: dict[tuple[Path, str], OutlineTable] = {}
_TABLES_MAX = 2_048
_TABLES_LOCK = threading.Lock()


def outline_table(index: WorkspaceIndex, path: Path) -> OutlineTable:
    """``path``'s `OutlineTable`, cached by its content hash (the outline is a function of
    the content)."""
    info = index.file_info(path)
    key = (path, info.content_hash if info is not None else "")
    with _TABLES_LOCK:
        table = _TABLES.get(key)
    if table is not None and info is not None:
        return table
    table = _make_table(tuple(index.outline(path)))
    if info is not None:
        with _TABLES_LOCK:
            if len(_TABLES) >= _TABLES_MAX:  # oldest first (dicts keep insertion order)
                for old in list(_TABLES)[: _TABLES_MAX // 4]:
                    del _TABLES[old]
            _TABLES[key] = table
    return table


def _make_table(definitions: tuple[Definition, ...]) -> OutlineTable:
    by_name: dict[str, list[int]] = {}
    by_word: dict[str, list[int]] = {}
    by_owner: dict[str, list[int]] = {}
    members: dict[str, int] = {}
    top: list[int] = []
    module_level: list[int] = []
    n = len(definitions)
    kind_weight = np.empty(n)
    plain, named, depth_f, private_f = np.ones(n), np.ones(n), np.ones(n), np.ones(n)
    lines = np.empty(n, dtype=np.int64)
    qualified = {d.qualified_name: i for i, d in enumerate(definitions)}
    ancestors: list[tuple[int, ...]] = []
    skeleton_lines: list[str] = []
    for i, d in enumerate(definitions):
        up: list[int] = []
        scope = d.scope
        while scope:
            parent = qualified.get(scope)
            if parent is not None:
                up.append(parent)
            scope = scope.rpartition(".")[0]
        ancestors.append(tuple(up))
        by_name.setdefault(d.name, []).append(i)
        for word in name_words(d.name):
            by_word.setdefault(word, []).append(i)
        depth = d.scope.count(".") + 1 if d.scope else 0
        skeleton_lines.append(f"{'  ' * (depth + 1)}{d.signature.strip()}")
        dunder = d.name.startswith("__") and d.name.endswith("__")
        kind_weight[i] = _KIND_WEIGHT.get(d.kind, 0.5)
        lines[i] = d.range.start_line
        if depth > 1 or (dunder and d.name != "__init__"):
            plain[i] = named[i] = 0.2  # a local function, or a dunder: not named from outside
        elif d.scope is None:
            named[i] = 0.25
            module_level.append(i)
        elif depth == 1:
            by_owner.setdefault(d.scope, []).append(i)
        if d.scope is None:
            top.append(i)
        else:
            owner = d.scope.split(".")[0]
            members[owner] = members.get(owner, 0) + 1
        if depth > 1:
            depth_f[i] = 0.2
        if d.name.startswith("_") and not d.name.startswith("__"):
            private_f[i] = 0.3
    return OutlineTable(
        definitions,
        {k: np.array(v, dtype=np.int64) for k, v in by_name.items()},
        {k: np.array(v, dtype=np.int64) for k, v in by_word.items()},
        {k: np.array(v, dtype=np.int64) for k, v in by_owner.items()},
        members,
        frozenset(definitions[i].name for i in top),
        len(top),
        np.array(module_level, dtype=np.int64),
        np.array([d.name[:1].isupper() for d in definitions], dtype=np.bool_),
        lines,
        kind_weight,
        plain,
        named,
        depth_f,
        private_f,
        {(d.name_range, d.name): i for i, d in enumerate(definitions)},
        tuple(ancestors),
        tuple(skeleton_lines),
    )


def score_definitions(
    index: WorkspaceIndex,
    file_ranks: Mapping[Path, float],
    focus: Focus,
    *,
    candidate_files: int = 80,
    exclude: Iterable[Definition] = (),
    allowed: Callable[[Path], bool] | None = None,
    limit: int = 1_000,
) -> list[tuple[float, Definition]]:
    """Definitions outside the focus file, best first (ties by path and line, so the order
    is deterministic), in tiers: names the target uses, names its file uses or imports
    (unambiguous ones), members of classes the target uses, members of classes its file
    uses (and ambiguous names), then the rest; a definition the file does not name but whose
    name shares a distinctive word with the target's (``focus.words``: a wrapper calls what
    its name echoes) goes up one tier. Within a tier by the file's rank (tripled for a file
    it imports) times the kind's weight. Mentions dominate because the code naming a
    definition is the strongest evidence there is; the walk orders the rest.

    The factors that depend on a definition alone come from its file's `OutlineTable`; what
    this request changes is applied to the few definitions it concerns, then a file's scores
    are one vector expression."""
    tags = index.file_tags(focus.path)
    used: dict[str, float] = {}
    modules: set[str] = set()  # names imported by `from . import errors` / `import errors`
    for ref in tags.references if tags else ():
        used[ref.name] = used.get(ref.name, 0.0) + (3.0 if ref.kind == "import" else 1.0)
        if ref.kind == "import":
            modules.add(ref.name)
    found: dict[str, frozenset[Path]] = {}

    def defined_in(name: str) -> frozenset[Path]:
        if name not in found:
            found[name] = (
                index.files_defining(name)
                if "." not in name
                else frozenset(d.path for d in index.definitions(name))
            )
        return found[name]

    def ambiguous(name: str) -> bool:  # overloads in one file are one thing
        return len(defined_in(name)) > MAX_AMBIGUITY

    # The files the focus file imports names from. Not ``imports_of``: right after an edit
    # the index rebuilds graph rows for it (~50 ms on Django), and the import references
    # in the file's own tags say the same for names imported by name.
    imported = {
        p
        for ref in (tags.references if tags else ())
        if ref.kind == "import" and not ambiguous(ref.name)
        for p in defined_in(ref.name)
    }
    # The module strings the file imports, from its own tags: ``imports_of`` would resolve
    # them through the index's graph, which an edit makes rebuild (~50 ms on Django).
    import_strings = [i.module for i in tags.imports] if tags else []

    named_imports = language_for(focus.path) in NAMED_IMPORTS
    # Go names packages, not what it takes from them, and a package's files share one scope:
    # a bare name may be any file's of the focus file's own package, `pkg.` any exported
    # name of a package it imports (every import is used: the compiler says so).
    go = language_for(focus.path) == "go"
    skip = set(exclude)
    skip_names = {d.name for d in skip}
    used_names = frozenset(n for n in used if not (n.startswith("__") and n.endswith("__")))
    # The best-ranked files (ties by path): none ranked below the (n+1)-th best can be one.
    floor = min(heapq.nlargest(candidate_files + 1, file_ranks.values()), default=0.0)
    files = sorted(
        (p for p, r in file_ranks.items() if r >= floor and r > 0 and p != focus.path),
        key=lambda p: (-file_ranks[p], str(p)),
    )[:candidate_files]
    top = max((file_ranks[p] for p in files), default=1.0) * 3.0 or 1.0
    order = {p: i for i, p in enumerate(sorted(files, key=str))}  # str(path) once per file
    tables: list[OutlineTable] = []
    scores: list[Vector] = []
    for path in files:
        if not (allowed(path) if allowed is not None else not index.is_ignored(path)):
            continue
        t = outline_table(index, path)
        if not t.definitions:
            continue
        base = file_ranks[path] * (3.0 if path in imported else 1.0) / top
        branch = (t.named_factor if named_imports else t.plain_factor).copy()
        private = t.private_factor.copy()
        tier = np.zeros(len(t.definitions))
        echo = np.ones(len(t.definitions))  # NAME_WORD_WEIGHT where the name echoes the target's
        mentioned = np.zeros(len(t.definitions), dtype=bool)
        # A module the file imports by name (`from . import errors`, used as `errors.X`):
        # its top-level definitions are what `errors.` may be followed by.
        stem = path.parent.name if path.stem == "__init__" else path.stem
        module_share = 0.0
        reached = t.module_level
        same_package = False
        if stem in modules and any(_names_module(path, m, focus.path) for m in import_strings):
            module_share = 1.0 / math.sqrt(max(1, t.top_count))
        elif go and path.suffix == ".go":
            if path.parent == focus.path.parent:
                module_share = 1.0 / math.sqrt(max(1, t.top_count))
                base = file_ranks[path] * 3.0 / top
                same_package = True
            elif any(_names_package(path.parent, m) for m in import_strings):
                reached = reached[t.exported[reached]]
                module_share = 1.0 / math.sqrt(max(1, len(reached)))
                base = file_ranks[path] * 3.0 / top
        # A member of a class the file uses: likelier the more the file names the class and
        # the fewer members it has to choose from.
        for owner in t.top_names & used.keys():
            idx = t.by_owner.get(owner)
            if idx is not None:
                branch[idx] = min(used[owner], 6.0) / math.sqrt(t.members[owner])
                tier[idx] = 2.0 if owner in focus.near else 1.0
        for name in used_names & t.by_name.keys():
            idx = t.by_name[name]
            mentioned[idx] = True
            branch[idx] = min(used[name], 3.0) / 3.0
            private[idx] = 1.0
            tier[idx] = 0.0
            if not ambiguous(name):  # else: weak evidence, ranked as the rest
                tier[idx] = 4.0 if name in focus.near else 3.0
        w = base * t.kind_weight
        if module_share:
            rest = reached[~mentioned[reached]]
            branch[rest] = 1.0
            if not same_package:  # a Go package's own names: by weight alone (measured)
                tier[rest] = 1.0
            w[rest] = base * module_share
        for word in focus.words & t.by_word.keys():
            idx = t.by_word[word]
            echo[idx[~mentioned[idx]]] = NAME_WORD_WEIGHT  # a wrapper calls what its name echoes
        echoed = echo != 1.0
        tier[echoed] += NAME_WORD_TIER
        w *= branch
        w *= t.depth_factor
        w *= private
        w *= echo
        score = tier + 0.999 * np.minimum(w, 1.0)
        if skip_names:  # names first: hashing a Definition costs
            for name in skip_names & t.by_name.keys():
                for i in t.by_name[name].tolist():
                    if t.definitions[i] in skip:
                        score[i] = -np.inf
        tables.append(t)
        scores.append(score)
    if not scores:
        return []
    all_scores = np.concatenate(scores)
    file_no = np.repeat(np.arange(len(tables)), [len(t.definitions) for t in tables])
    local = np.concatenate([np.arange(len(t.definitions)) for t in tables])
    keep = np.flatnonzero(all_scores > -np.inf)
    # The best ``limit`` (ties: the earlier file in rank order, then source order) ...
    best = keep[np.lexsort((keep, -all_scores[keep]))][:limit]
    # ... then by score, path and line (full ties keep that order).
    paths = np.array([order[t.definitions[0].path] for t in tables], dtype=np.int64)
    lines = np.concatenate([t.lines for t in tables])
    best = best[np.lexsort((best, lines[best], paths[file_no[best]], -all_scores[best]))]
    return [(float(all_scores[i]), tables[file_no[i]].definitions[local[i]]) for i in best.tolist()]

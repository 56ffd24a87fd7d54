"""Context engine: retrieval recall at a cut, build latency, and the prefix-cache share.

Recall (issue 5): on real projects from PyPI sdists (rich 13.9.4, and Django 5.2), for a few
hundred functions, cut the file at a line inside the function body (the editor's buffer
ends there), ask for an explain context at the cut with budgets of 2k/4k/8k tokens (the
room for repository context, the cut file's window on top, as the baseline gets it), and
count the cross-file definitions the removed rest of the function uses whose signature line
appears in the context. Names defined in more than 3 files, names the cut file defines
itself, and dunders are left out of the truth (matching them by name is a coin toss). So are
the uses Python's own scoping resolves outside the project, read from the file's ``ast``: a
builtin (``list(...)``, ``type(x)``), a name imported from a module outside the project
(``re.match``, ``json.loads``, ``OrderedDict.fromkeys``), and a method of a literal or of a
local only ever bound to a literal or a builtin's result (``"-".join``, ``flat = []`` then
``flat.extend``): the project defining a method of the same name does not make it used.
References on the same cuts and budgets: the import-following baseline (the signature lines
of every definition in the modules the cut file imports, in import order, cut to the
budget) and Aider's RepoMap (the cut file as its chat file; from a throw-away venv in
bench/.work, on a subset of the cuts since it re-ranks the whole repository per call).
The cut is on disk as well as in the buffer, as just after a save (in a copy of the corpus,
as for Aider): the file graph and the member uses follow saved files, and must not learn the
rest of the function from the file. Every prompt is then built again after the cut is undone
and made again (the index's generation moves on, every per-request cache starts anew): same
input, same bytes.

TypeScript and JavaScript (puppeteer-core's and three's source folders from npm), Rust
(pydantic-core's crate, its `src/` from the PyPI sdist) and Java (React Native's Android
sources, from npm) and Go (goleveldb, from Debian's `golang-github-syndtr-goleveldb-dev`):
the same cuts of functions and methods, the truth following the language's scoping as the
tags see it (`_brace_cuts`).

Latency: build p50/p95 on a warm index of Django, the cut buffer opened in the index before
each build, as an editor would have it.

Prefix cache: 20 mixed actions (explain, refactor, tests) on different symbols of one
workspace sent to the Kimi emulator; the share of input tokens it reports as cached.

``python -m bench.bench_context [rich|django|sqlalchemy|puppeteer|three|pydantic-core|
react-native|goleveldb|latency|cache]`` runs parts; ``BENCH_AIDER=0`` skips the Aider reference.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from bench.table import Row
from kimi_lsp.actions.errors import NothingToWorkOn
from kimi_lsp.actions.prompts import prompt_at
from kimi_lsp.actions.services import Services
from kimi_lsp.config import Settings
from kimi_lsp.context import BuiltContext, TokenEstimator
from kimi_lsp.index import Definition, DefinitionKind, Span, WorkspaceIndex
from kimi_lsp.index.resolve import go_package_names
from kimi_lsp.positions import to_index
from kimi_lsp.runtime import tune_collector

NAME = "context"
CORPUS = ("rich", "13.9.4")
BUDGETS = (2_000, 4_000, 8_000)
CUTS = 300
AIDER_CUTS = 120  # Aider re-ranks the whole repo per call: a subset keeps the bench short
DJANGO_CUTS = 200
DJANGO_AIDER_CUTS = 20  # ~2.5 s per Aider map on Django
SQLALCHEMY = ("sqlalchemy", "2.0.58")  # deep class hierarchies and mixins
SQLALCHEMY_CUTS = 200
SQLALCHEMY_AIDER_CUTS = 20
# From npm, each with the package's folder of source: TypeScript with class hierarchies
# across files (`CdpPage extends Page`), and JavaScript's deep ones (`Mesh extends Object3D`).
PUPPETEER = ("puppeteer-core", "23.11.1", "src")
THREE = ("three", "0.170.0", "src")
# Rust from a PyPI sdist (the Rust core of a Python package, its `src/` as the crate has it):
# structs, traits and their impls across files (`impl Validator for ModelValidator`).
PYDANTIC_CORE = ("pydantic-core", "2.27.2", "src")
# Java from npm: React Native's Android sources (views, view managers, the bridge), deep
# hierarchies across packages (`ReactTextView extends AppCompatTextView`, view managers).
REACT_ANDROID = ("react-native", "0.74.5", "ReactAndroid/src/main/java")
# Go (the module proxy is out of reach; Debian's `golang-*-dev` packages ship the sources):
# goleveldb's packages (the DB, its tables, journal, memdb, iterators) under leveldb/.
GOLEVELDB = (
    "golang-github-syndtr-goleveldb-dev",
    "0.0~git20200815.5c35d60-1",
    "usr/share/gocode/src/github.com/syndtr/goleveldb",
)
NPM_CUTS = 200
NPM_AIDER_CUTS = 20
TOTAL_CAP = 200_000  # the whole prompt's cap: far above the file window plus the budget
KINDS = ("method", "class", "function", "constant")
# BENCH_AIDER=0 skips the Aider reference (it installs aider-chat into a throw-away venv).
AIDER = os.environ.get("BENCH_AIDER", "1") != "0"
LATENCY_CUTS = 120
MAX_NAME_DEFS = 3
TOP_LEVEL_ONLY = False


_BUILTINS = frozenset(dir(builtins))
_LITERALS = (
    ast.Constant, ast.JoinedStr, ast.List, ast.Dict, ast.Set, ast.Tuple, ast.ListComp,
    ast.DictComp, ast.SetComp,
)  # fmt: skip
# Builtins whose result is a builtin type whatever they are given (not ``getattr``, ``next``,
# ``min``, ``type``, ``super``: those can hand back the project's own objects).
_BUILTIN_RESULT_NAMES = (
    "str repr ascii format int float complex bool bytes bytearray memoryview list dict set "
    "frozenset tuple sorted reversed enumerate zip range map filter open len abs round sum "
    "divmod hash id hex oct bin chr ord dir vars isinstance issubclass callable input"
)
_BUILTIN_RESULTS = frozenset(_BUILTIN_RESULT_NAMES.split())
# Calls that can hand back what they are given, or an element of it: their result may be the
# project's own object even when the callee is foreign (``cast``, ``copy.copy``, ``d.get``).
_PASS_THROUGH_NAMES = (
    "cast copy deepcopy replace proxy reduce get pop popitem popleft setdefault result run "
    "run_until_complete wait_for send throw choice call apply value"
)
_PASS_THROUGH = frozenset(_PASS_THROUGH_NAMES.split())


class _Outside:
    """The uses in one file that Python resolves outside the project, as (line, name): every
    occurrence of the name on that line is a builtin, a function's own local or parameter, an
    attribute of a module (or a name) imported from outside the project, or an attribute of
    a value from outside it: a literal, a builtin's result (``str(e).lower``), what a foreign
    call returns (``re.match(...)``, ``logging.getLogger(...)``), or a local or module global
    only ever bound to such values."""

    def __init__(self, source: str, project: frozenset[str]) -> None:
        tree = ast.parse(source)
        bound: dict[str, set[str]] = {}  # name -> how the module binds it: "foreign" / "own"

        def bind(name: str, how: str) -> None:
            bound.setdefault(name, set()).add(how)

        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    top = a.name.split(".")[0]
                    bind(a.asname or top, "foreign" if top not in project else "own")
            elif isinstance(node, ast.ImportFrom):
                top = (node.module or "").split(".")[0]
                foreign = node.level == 0 and top not in project
                for a in node.names:
                    bind(a.asname or a.name, "foreign" if foreign else "own")
        imported = {n for n, how in bound.items() if how == {"foreign"}}
        self.builtin = _BUILTINS - set(bound)
        self.foreign = imported
        # A module global bound only to values from outside (``log = logging.getLogger()``)
        # is as foreign as an import; any other binding makes a name the project's own.
        globals_from_outside: set[int] = set()
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign):
                single = len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                if single and self._from_outside(stmt.value, set(), 0):
                    globals_from_outside.add(id(stmt.targets[0]))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                bind(node.id, "foreign" if id(node) in globals_from_outside else "own")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                bind(node.name, "own")
            elif isinstance(node, ast.arg):
                bind(node.arg, "own")
        self.foreign = {n for n, how in bound.items() if how == {"foreign"}}
        self.builtin = _BUILTINS - set(bound)
        plain, local = self._locals(tree)
        verdict: dict[tuple[int, str], bool] = {}

        def note(line: int, name: str, outside: bool) -> None:
            key = (line - 1, name)
            verdict[key] = verdict.get(key, True) and outside

        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                own = (node.id, node.lineno) in local
                elsewhere = node.id in self.builtin or node.id in self.foreign
                note(node.lineno, node.id, own or elsewhere)
            elif isinstance(node, ast.Attribute) and node.end_lineno is not None:
                note(node.end_lineno, node.attr, self._from_outside(node.value, plain, 0))
        self.uses = frozenset(key for key, outside in verdict.items() if outside)

    def _from_outside(self, value: ast.expr, plain: set[tuple[str, int]], depth: int) -> bool:
        """Whether ``value`` is an object from outside the project (``plain``: the uses of
        locals only bound to such objects, as (name, line))."""
        if depth > 8:
            return False
        if isinstance(value, _LITERALS):
            return True
        if isinstance(value, ast.Name):
            return (
                value.id in self.foreign
                or value.id in self.builtin
                or (value.id, value.lineno) in plain
            )
        if isinstance(value, ast.Attribute):  # ``os.path``, ``mock.patch.object``
            return self._from_outside(value.value, plain, depth + 1)
        if isinstance(value, ast.Call):
            func = value.func
            if isinstance(func, ast.Name):
                if func.id in self.builtin:
                    return func.id in _BUILTIN_RESULTS
                return func.id in self.foreign and func.id not in _PASS_THROUGH
            if isinstance(func, ast.Attribute) and func.attr not in _PASS_THROUGH:
                return self._from_outside(func.value, plain, depth + 1)
        return False

    def _locals(self, tree: ast.Module) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
        """(name, line) for the uses of a function's locals that every binding in that
        function sets to a value from outside the project (``[]``, ``list(x)``,
        ``re.match(...)``), and for the uses of any of its locals and parameters."""
        found: set[tuple[str, int]] = set()
        local: set[tuple[str, int]] = set()
        functions = (ast.FunctionDef, ast.AsyncFunctionDef)
        for fn in (n for n in ast.walk(tree) if isinstance(n, functions)):
            literal: dict[str, bool] = {
                a.arg: False for a in ast.walk(fn.args) if isinstance(a, ast.arg)
            }
            assigned: set[int] = set()
            for node in ast.walk(fn):
                if isinstance(node, ast.Assign) and all(
                    isinstance(t, ast.Name) for t in node.targets
                ):
                    plain = self._from_outside(node.value, set(), 0)
                    for t in node.targets:
                        assert isinstance(t, ast.Name)
                        assigned.add(id(t))
                        literal[t.id] = literal.get(t.id, True) and plain
            for node in ast.walk(fn):
                stored = isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
                if stored and id(node) not in assigned:
                    literal[node.id] = False  # a loop target, a with's, an unpacking
            for node in ast.walk(fn):
                if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)):
                    continue
                if node.id in literal:
                    local.add((node.id, node.lineno))
                if literal.get(node.id):
                    found.add((node.id, node.lineno))
        return found, local


@dataclass
class Cut:
    path: Path
    line: int  # 0-based: the buffer keeps lines [0, line)
    col: int
    text: str  # the cut buffer
    truth: dict[str, list[str]]  # used name -> its definitions' signature lines elsewhere
    kinds: dict[str, str]  # used name -> method / class / function / constant
    named: frozenset[str]  # the used names the visible buffer already names


def _kind_of(defs: list[Definition]) -> str:
    """What a used name is, for the split: the kind most of its definitions have."""
    votes: dict[str, int] = {}
    for d in defs:
        if d.kind in (DefinitionKind.CLASS, DefinitionKind.INTERFACE, DefinitionKind.STRUCT):
            k = "class"
        elif d.scope is not None:
            k = "method"
        elif d.kind == DefinitionKind.FUNCTION:
            k = "function"
        else:
            k = "constant"
        votes[k] = votes.get(k, 0) + 1
    return max(KINDS, key=lambda k: votes.get(k, 0))


def _download(work: Path, name: str, version: str) -> Path:
    where = work / "ctx"
    root = (where / f"{name}-{version}").resolve()
    if root.is_dir():
        return root
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
         f"{name}=={version}", "-d", str(where)],
        check=True,
    )  # fmt: skip
    archive = next(where.glob(f"{name}-{version}.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(where, filter="data")
    return root


def _in_tests(path: Path) -> bool:
    return (
        bool({"test", "tests"} & set(path.parts))
        or path.name.startswith("test_")
        or path.name.endswith("_test.go")
    )


def _cuts(index: WorkspaceIndex, package: Path, n: int, seed: int = 0) -> list[Cut]:
    found: list[Cut] = []
    # The project's top-level module names: the roots' folders and modules, and the package.
    project = frozenset(
        p.name if p.is_dir() else p.stem
        for root in index.roots
        for p in root.iterdir()
        if p.is_dir() or p.suffix == ".py"
    ) | {package.name}
    for path in index.files():
        if not path.is_relative_to(package) or path.suffix != ".py" or "test" in path.name:
            continue
        tags = index.file_tags(path)
        if tags is None:
            continue
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines(keepends=True)
        try:
            outside = _Outside(source, project).uses
        except SyntaxError:
            continue
        for d, cut in _cut_points(tags.definitions):
            truth: dict[str, list[str]] = {}
            kinds: dict[str, str] = {}
            for r in tags.references:
                if not (cut <= r.range.start_line <= d.range.end_line) or r.name.startswith("__"):
                    continue
                if (r.range.start_line, r.name) in outside:
                    continue  # Python resolves it outside the project (a builtin, ``re.match``)
                # The library never imports the project's tests: a name only they define
                # (``BadModelWithSplit.split``) is a builtin's method at this use.
                defs = [
                    x for x in index.definitions(r.name) if x.path != path and not _in_tests(x.path)
                ]
                if TOP_LEVEL_ONLY:
                    defs = [x for x in defs if x.scope is None]
                if not defs or len({x.path for x in index.definitions(r.name)}) > MAX_NAME_DEFS:
                    continue
                if any(x.path == path for x in index.definitions(r.name)):
                    continue  # defined in the cut file itself: not a cross-file need
                truth[r.name] = sorted({x.signature.strip() for x in defs})
                kinds[r.name] = _kind_of(defs)
            if truth:
                found.append(_cut(path, lines, cut, truth, kinds))
    return _sample(found, package, n, seed)


def _cut_points(defs: Iterable[Definition]) -> Iterator[tuple[Definition, int]]:
    """The functions long enough to cut, each with its cut line: a third into its body (the
    buffer keeps the lines above)."""
    for d in defs:
        body = d.range.end_line - d.range.start_line
        if d.kind in (DefinitionKind.FUNCTION, DefinitionKind.METHOD) and body >= 6:
            yield d, d.range.start_line + max(2, body // 3)


def _cut(
    path: Path, lines: list[str], cut: int, truth: dict[str, list[str]], kinds: dict[str, str]
) -> Cut:
    text = "".join(lines[:cut])
    # The cursor at the indentation of the last line with code (where an editor's
    # auto-indent leaves it on a blank line).
    last = next((x for x in reversed(lines[:cut]) if x.strip()), "")
    col = len(last) - len(last.lstrip())
    named = frozenset(n for n in truth if re.search(rf"\b{re.escape(n)}\b", text))
    return Cut(path, cut, col, text, truth, kinds, named)


def _sample(found: list[Cut], package: Path, n: int, seed: int) -> list[Cut]:
    """A sample keyed by a hash of each cut's place, not a shuffle of the list: a change to
    what counts as a need moves only the cuts it empties or fills, not the whole sample."""

    def key(c: Cut) -> str:
        return hashlib.sha256(f"{seed}:{c.path.relative_to(package)}:{c.line}".encode()).hexdigest()

    return sorted(sorted(found, key=key)[:n], key=lambda c: (str(c.path), c.line))


# What Rust's prelude puts in every module's scope, as Python's builtins: its types and
# variants, and its traits' methods (callable on any value implementing them, the trait
# never imported). A project defining `clone` or `Err` does not make `x.clone()` its own.
_RUST_PRELUDE_NAMES = (
    "Box Option Some None Result Ok Err String Vec drop clone clone_from to_owned to_string "
    "into from try_into try_from as_ref as_mut default eq ne partial_cmp lt le gt ge cmp max "
    "min clamp extend into_iter from_iter next next_back len map filter filter_map flat_map "
    "collect enumerate zip chain rev fold any all find position count sum take skip for_each "
    "peekable cloned copied last nth"
)
_RUST_PRELUDE = frozenset(_RUST_PRELUDE_NAMES.split())
_BRACE_CUT_LANGUAGES = ("typescript", "tsx", "javascript", "rust", "java", "go")
# What every Java file has without an import: `java.lang`'s common classes, `Object`'s methods.
_JAVA_LANG_NAMES = (
    "Object String Integer Long Double Float Boolean Character Byte Short Math System Class "
    "Exception RuntimeException Throwable Error Thread Runnable Iterable Comparable Override "
    "Deprecated SuppressWarnings StringBuilder Number Void Enum Record equals hashCode toString "
    "getClass clone notify notifyAll wait finalize"
)
_JAVA_LANG = frozenset(_JAVA_LANG_NAMES.split())
_TYPE_PATH = re.compile(r"\b[A-Z]\w*(?:<[^<>]*>)?::$")  # Rust's `Type::` / `Vec<u8>::`
# Go's predeclared names, and the two methods every value may have (`error`, `fmt.Stringer`).
_GO_PREDECLARED_NAMES = (
    "append cap clear close complex copy delete imag len make max min new panic print println "
    "real recover any bool byte comparable complex64 complex128 error float32 float64 int int8 "
    "int16 int32 int64 rune string uint uint8 uint16 uint32 uint64 uintptr true false iota nil "
    "Error String"
)
_GO_PREDECLARED = frozenset(_GO_PREDECLARED_NAMES.split())
_QUALIFIER = re.compile(r"([A-Za-z_]\w*)\.$")


def _brace_cuts(index: WorkspaceIndex, package: Path, n: int, seed: int = 0) -> list[Cut]:
    """Cuts of a TypeScript/JavaScript/Rust/Java project, as `_cuts` makes them of Python.
    The truth follows the language's scoping, as the tags give it (calls, `new`, types,
    bases): `x.name(...)` calls a member (a method, property or field of some class), a bare
    `name(...)` or `Name` something defined at module level (a function has no implicit
    `this`), so a project's `map` operator is no truth for `array.map(...)`. Rust's
    `Type::name(...)` (a capitalised path) is a member too, `module::name(...)` a module's,
    and what its prelude names (`Err`, `x.clone()`) is the prelude's; in Java, a bare
    `name()` is a method (there are no functions), and `java.lang`'s names are its own.
    In Go, `pkg.Name` is the imported package's (the project's when the package is), a bare
    `Name` its own package's, `x.Name()` a method, and the predeclared names are Go's.
    What stays is names, not types: `subscriber.next` counts whichever class defines `next`
    (in at most three files)."""
    found: list[Cut] = []
    for path in index.files():
        if not path.is_relative_to(package) or _in_tests(path) or ".spec." in path.name:
            continue
        tags = index.file_tags(path)
        if tags is None or tags.language not in _BRACE_CUT_LANGUAGES:
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines(keepends=True)
        own = {d.name for d in tags.definitions}
        go = tags.language == "go"
        packages = go_package_names(text) if go else {}
        for d, cut in _cut_points(tags.definitions):
            truth: dict[str, list[str]] = {}
            kinds: dict[str, str] = {}
            for r in tags.references:
                line = r.range.start_line
                if not (cut <= line <= d.range.end_line) or r.name in own:
                    continue
                if tags.language == "rust" and r.name in _RUST_PRELUDE:
                    continue
                if tags.language == "java" and r.name in _JAVA_LANG:
                    continue
                if go and r.name in _GO_PREDECLARED:
                    continue
                everywhere = index.definitions(r.name)
                if len({x.path for x in everywhere}) > MAX_NAME_DEFS:
                    continue
                text_line = lines[line]  # columns count UTF-16 units, as LSP does
                before = text_line[: to_index(text_line, r.range.start_col)].rstrip()
                member = before.endswith(".") or bool(_TYPE_PATH.search(before))
                # Java has no functions outside classes: a bare `name()` is an inherited method.
                either = tags.language == "java" and not member
                # Go: where a package-level name may be (`util.Range`: util's; `Range`: here).
                folder: str | None = None
                if go:
                    qualifier = _QUALIFIER.search(before)
                    if qualifier is not None and qualifier.group(1) in packages:
                        member, folder = False, packages[qualifier.group(1)]
                    elif not member:
                        folder = path.parent.name
                defs = [
                    x
                    for x in everywhere
                    if x.path != path
                    and not _in_tests(x.path)
                    and (either or (x.scope is not None) == member)
                    and (folder is None or x.path.parent.name == folder)
                ]
                if defs:
                    truth[r.name] = sorted({x.signature.strip() for x in defs})
                    kinds[r.name] = _kind_of(defs)
            if truth:
                found.append(_cut(path, lines, cut, truth, kinds))
    return _sample(found, package, n, seed)


def _recall(cut: Cut, context: str) -> tuple[int, int]:
    hits = sum(any(sig in context for sig in sigs) for sigs in cut.truth.values())
    return hits, len(cut.truth)


def _hits(cut: Cut, context: str) -> list[tuple[str, bool, bool]]:
    """(kind, named by the visible code, found) per used name."""
    return [
        (cut.kinds[n], n in cut.named, any(sig in context for sig in sigs))
        for n, sigs in cut.truth.items()
    ]


def _import_baseline(
    index: WorkspaceIndex, path: Path, budget: int, estimate: TokenEstimator
) -> str:
    lines: list[str] = []
    for module in index.imports_of(path):
        lines.extend(d.signature.strip() for d in index.outline(module))
    lo, hi = 0, len(lines)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if estimate("\n".join(lines[:mid])) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return "\n".join(lines[:lo])


def services_over(index: WorkspaceIndex, state: Path) -> Services:
    """The services a user's request gets over ``index`` (one answerer: one resident
    repository map for the whole run); the bench builds what users send."""
    return Services(Settings(state_dir=state), list(index.roots), index=index)


def _build(services: Services, cut: Cut, budget: int) -> BuiltContext:
    """An explain at the cut, as a user's request builds it (``actions.prompts``): the
    target is the definition there, ``budget`` the room for repository context
    (``contextRepositoryBudget``; the cut file's window on top)."""
    settings = services.settings.model_copy(
        update={"context_budget": TOTAL_CAP, "context_repository_budget": budget}
    )
    return explain_at_cut(replace(services, settings=settings), cut)


def explain_at_cut(services: Services, cut: Cut) -> BuiltContext:
    """What a user's explain sends at the cut: the definition there; where the cut buffer
    has none (cut inside an open bracket, the function parses as an error), the last lines
    up to the cursor, selected, as a user would select them."""
    line = cut.line - 1
    try:
        return prompt_at(services, "explain", cut.path, line, cut.col)
    except NothingToWorkOn:
        lines = Span(max(0, line - 2), 0, line + 1, 0)
        return prompt_at(services, "explain", cut.path, line, 0, selection=lines)


def _ours(services: Services, cut: Cut, budget: int) -> tuple[str, float]:
    text, elapsed, _ = _ours_split(services, cut, budget)
    return text, elapsed


def _ours_split(services: Services, cut: Cut, budget: int) -> tuple[str, float, tuple[int, int]]:
    """The context's text, build seconds, and (file window, repository context) tokens."""
    started = time.perf_counter()
    built = _build(services, cut, budget)
    elapsed = time.perf_counter() - started
    split = (built.file_window_tokens, built.repository_tokens)
    return "\n".join(m["content"] for m in built.messages), elapsed, split


_AIDER_SCRIPT = r"""
import json, os, sys
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
from aider.io import InputOutput
from aider.repomap import RepoMap

job = json.load(open(sys.argv[1]))
root = job["root"]


class Model:
    def token_count(self, text):
        return len(text) // 4


out = []
for budget in job["budgets"]:
    rm = RepoMap(map_tokens=budget, root=root, io=InputOutput(yes=True, pretty=False),
                 main_model=Model(), refresh="always")
    maps = []
    for cut in job["cuts"]:
        path = os.path.join(root, cut["rel"])
        original = open(path, encoding="utf-8").read()
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(cut["text"])
            others = [os.path.join(root, o) for o in job["files"] if o != cut["rel"]]
            maps.append(rm.get_repo_map([path], others) or "")
        finally:
            with open(path, "w", encoding="utf-8") as f:
                f.write(original)
    out.append(maps)
print(json.dumps(out))
"""


def _aider(work: Path, root: Path, cuts: list[Cut], files: list[Path]) -> list[list[str]] | str:
    python = work / "aider-venv" / "bin" / "python"
    probe = [str(python), "-c", "import aider.repomap"]
    if not python.exists() or subprocess.run(probe, capture_output=True).returncode != 0:
        subprocess.run([sys.executable, "-m", "venv", str(work / "aider-venv")], check=True)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "aider-chat"],
            capture_output=True,
            text=True,
        )
        if install.returncode != 0:
            return "could not install aider-chat"
    copy = work / "ctx" / "aider-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(root, copy)
    job = {
        "root": str(copy),
        "budgets": list(BUDGETS),
        "files": [f.relative_to(root).as_posix() for f in files],
        "cuts": [{"rel": c.path.relative_to(root).as_posix(), "text": c.text} for c in cuts],
    }
    job_file = work / "ctx" / "aider-job.json"
    job_file.write_text(json.dumps(job))
    run = subprocess.run(
        [str(python), "-c", _AIDER_SCRIPT, str(job_file)], capture_output=True, text=True,
        timeout=3_600,
    )  # fmt: skip
    if run.returncode != 0:
        return "failed: " + (run.stderr.strip().splitlines() or ["?"])[-1][:120]
    maps: list[list[str]] = json.loads(run.stdout.strip().splitlines()[-1])
    return maps


def _with_cut(index: WorkspaceIndex, cut: Cut) -> None:
    index.open_document(cut.path, cut.text)


def working_copy(work: Path, root: Path) -> Path:
    """A copy of the corpus the recall may cut files in (`cut_saved`): made anew per run,
    so a run stopped midway leaves no cut file behind; the files keep their times, so its
    index database stays warm across runs."""
    copy = work / "ctx" / f"{root.name}-cuts"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(root, copy)
    return copy.resolve()


@contextmanager
def cut_saved(index: WorkspaceIndex, cut: Cut) -> Iterator[None]:
    """The cut as an editor has it just after a save: the buffer, and the same text on disk.
    What follows saved files (the file graph, the member uses) must not learn the rest of
    the function from the file on disk, which a user writing it would not have saved yet;
    the Aider reference cuts its files on disk too. Restored after."""
    original = cut.path.read_bytes()
    cut.path.write_text(cut.text, encoding="utf-8")
    index.file_changed_on_disk(cut.path)
    index.open_document(cut.path, cut.text)
    try:
        yield
    finally:
        index.close_document(cut.path)
        cut.path.write_bytes(original)
        index.file_changed_on_disk(cut.path)


def _django(work: Path) -> Path:
    found = sorted(p for p in work.glob("django-5.2*") if p.is_dir())  # bench_index's copy
    return found[-1].resolve() if found else _download(work, "django", "5.2.19")


def recall_rows(
    work: Path,
    label: str,
    root: Path,
    package: Path,
    n: int,
    aider_n: int,
    cuts_of: Callable[[WorkspaceIndex, Path, int], list[Cut]] | None = None,
    suffixes: tuple[str, ...] = (".py",),
) -> list[Row]:
    copy = working_copy(work, root)
    root, package = copy, copy / package.relative_to(root)
    state = work / "ctx" / f"{root.name}-state"
    index = WorkspaceIndex([root], state_dir=state)
    index.update()
    index.prepare_queries()
    services = services_over(index, state / "services")
    estimator = services.estimator()
    cuts = (cuts_of or _cuts)(index, package, n)
    truth = sum(len(c.truth) for c in cuts)
    rows = [Row(NAME, f"recall corpus {label}", f"{len(cuts)} cuts, {truth} used names")]
    ours: dict[int, list[tuple[int, int]]] = {b: [] for b in BUDGETS}
    base: dict[int, list[tuple[int, int]]] = {b: [] for b in BUDGETS}
    split: dict[int, list[tuple[str, bool, bool]]] = {b: [] for b in BUDGETS}
    base_split: dict[int, list[tuple[str, bool, bool]]] = {b: [] for b in BUDGETS}
    tokens: dict[int, list[tuple[int, int]]] = {b: [] for b in BUDGETS}
    same = 0  # prompts built again after the buffer was closed and reopened, byte-identical
    for cut in cuts:
        texts: dict[int, str] = {}
        with cut_saved(index, cut):
            for b in BUDGETS:
                text, _, used = _ours_split(services, cut, b)
                texts[b] = text
                ours[b].append(_recall(cut, text))
                split[b] += _hits(cut, text)
                tokens[b].append(used)
                baseline = _import_baseline(index, cut.path, b, estimator)
                base[b].append(_recall(cut, baseline))
                base_split[b] += _hits(cut, baseline)
        with cut_saved(index, cut):  # the same input again, every per-request cache anew
            same += sum(_ours(services, cut, b)[0] == texts[b] for b in BUDGETS)
    aider_cuts = cuts[:aider_n] if AIDER else []
    files = [p for p in index.files() if p.suffix in suffixes]
    aider: list[list[str]] | str = "not run"
    if aider_cuts:
        aider = _aider(work, root, aider_cuts, files)
        if isinstance(aider, str):
            rows.append(Row(NAME, f"reference: Aider RepoMap on {label}", aider))
    index.close()

    def score(pairs: list[tuple[int, int]]) -> float:
        return sum(h for h, _ in pairs) / max(1, sum(t for _, t in pairs))

    for i, b in enumerate(BUDGETS):
        r_ours, r_base = score(ours[b]), score(base[b])
        rows.append(
            Row(NAME, f"{label} recall @{b // 1000}k vs import-following", round(r_ours, 3), "",
                round(r_base, 3), "imports", "+0.10 over imports",
                ok=r_ours >= r_base + 0.10)
        )  # fmt: skip
        if not isinstance(aider, str):
            subset = score(ours[b][: len(aider_cuts)])
            r_aider = score([_recall(c, m) for c, m in zip(aider_cuts, aider[i], strict=True)])
            rows.append(
                Row(NAME, f"{label} recall @{b // 1000}k vs Aider ({len(aider_cuts)} cuts)",
                    round(subset, 3), "", round(r_aider, 3), "Aider", "ahead of Aider",
                    ok=subset > r_aider)
            )  # fmt: skip
    rows += _split_rows(label, split, base_split, tokens)
    builds = len(cuts) * len(BUDGETS)
    rows.append(
        Row(NAME, f"{label} same input, same prompt (rebuilt after undoing and redoing the cut)",
            f"{same}/{builds}", "prompts", target="all", ok=same == builds)
    )  # fmt: skip
    return rows


def _share(hits: list[tuple[str, bool, bool]]) -> str:
    return f"{sum(h for *_, h in hits) / len(hits):.3f} of {len(hits)}" if hits else "-"


def _split_rows(
    label: str,
    split: dict[int, list[tuple[str, bool, bool]]],
    base_split: dict[int, list[tuple[str, bool, bool]]],
    tokens: dict[int, list[tuple[int, int]]],
) -> list[Row]:
    """Recall by kind of definition and by whether the visible code names it; tokens spent
    on the file window and on repository context."""
    rows: list[Row] = []
    for b in BUDGETS:
        k = f"@{b // 1000}k"
        for kind in KINDS:
            ours = [h for h in split[b] if h[0] == kind]
            theirs = [h for h in base_split[b] if h[0] == kind]
            target = ok = None
            if kind == "method" and b == 4_000 and ours:
                target = ">= 0.70"
                ok = sum(h for *_, h in ours) / len(ours) >= 0.70
            rows.append(
                Row(NAME, f"{label} {kind} recall {k}", _share(ours), "", _share(theirs),
                    "imports", target or "", ok=ok)
            )  # fmt: skip
        for named in (True, False):
            ours = [h for h in split[b] if h[1] == named]
            theirs = [h for h in base_split[b] if h[1] == named]
            what = "named by the visible code" if named else "not named yet"
            rows.append(
                Row(NAME, f"{label} recall {k}, {what}", _share(ours), "", _share(theirs),
                    "imports")
            )  # fmt: skip
        pairs = tokens[b]
        window = statistics.mean(w for w, _ in pairs) if pairs else 0.0
        repo = statistics.mean(r for _, r in pairs) if pairs else 0.0
        rows.append(
            Row(NAME, f"{label} tokens {k}: file window / repository context (mean)",
                f"{window:.0f} / {repo:.0f}", "tokens")
        )  # fmt: skip
    return rows


def rich_recall_rows(work: Path) -> list[Row]:
    root = _download(work, *CORPUS)
    return recall_rows(work, f"{CORPUS[0]} {CORPUS[1]}", root, root / CORPUS[0], CUTS, AIDER_CUTS)


def django_recall_rows(work: Path) -> list[Row]:
    root = _django(work)
    return recall_rows(work, root.name, root, root / "django", DJANGO_CUTS, DJANGO_AIDER_CUTS)


def sqlalchemy_recall_rows(work: Path) -> list[Row]:
    root = _download(work, *SQLALCHEMY)
    package = root / "lib" / "sqlalchemy"
    label = f"{SQLALCHEMY[0]} {SQLALCHEMY[1]}"
    return recall_rows(work, label, root, package, SQLALCHEMY_CUTS, SQLALCHEMY_AIDER_CUTS)


def _npm(work: Path, name: str, version: str, folder: str) -> Path:
    """A package's source folder from the npm registry (`npm pack`), as a checkout has it:
    <work>/ctx/<name>-<version>/<folder>, nothing of the built files beside it."""
    where = work / "ctx"
    root = (where / f"{name}-{version}").resolve()
    if (root / folder).is_dir():
        return root
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["npm", "pack", "--silent", f"{name}@{version}", "--pack-destination", str(where)],
        check=True, capture_output=True,
    )  # fmt: skip
    return _unpack(where / f"{name}-{version}.tgz", "package", folder, root)


def _unpack(archive: Path, top: str, folder: str, root: Path) -> Path:
    """``top/folder`` of ``archive`` as ``root/folder``, nothing else of it kept."""
    unpacked = archive.with_name(archive.name + "-unpacked")
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    shutil.rmtree(root, ignore_errors=True)
    (root / folder).parent.mkdir(parents=True)
    (unpacked / top / folder).rename(root / folder)
    shutil.rmtree(unpacked)
    return root


def _sdist(work: Path, name: str, version: str, folder: str) -> Path:
    """A folder of a PyPI source distribution, as a checkout has it: <work>/ctx/<name>-
    <version>/<folder>. Read from the index's JSON (PEP 691), checked against its sha256:
    `pip download` would build the package's metadata, and a Rust extension's build needs
    a Rust toolchain."""
    where = work / "ctx"
    root = (where / f"{name}-{version}").resolve()
    if (root / folder).is_dir():
        return root
    where.mkdir(parents=True, exist_ok=True)
    listing = httpx.get(
        f"https://pypi.org/simple/{name}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        follow_redirects=True,
        timeout=60,
    )
    listing.raise_for_status()
    stem = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    file = next(f for f in listing.json()["files"] if f["filename"] == f"{stem}.tar.gz")
    download = httpx.get(file["url"], follow_redirects=True, timeout=300)
    download.raise_for_status()
    data = download.content
    if hashlib.sha256(data).hexdigest() != file["hashes"]["sha256"]:
        raise RuntimeError(f"{file['filename']}: the download does not match its sha256")
    archive = where / file["filename"]
    archive.write_bytes(data)
    return _unpack(archive, stem, folder, root)


def npm_recall_rows(
    work: Path, corpus: tuple[str, str, str], language: str, suffixes: tuple[str, ...]
) -> list[Row]:
    if shutil.which("npm") is None:
        return [Row(NAME, f"recall corpus {corpus[0]} {corpus[1]}", "skipped (no npm)")]
    root = _npm(work, *corpus)
    label = f"{corpus[0]} {corpus[1]} ({language})"
    return recall_rows(
        work, label, root, root / corpus[2], NPM_CUTS, NPM_AIDER_CUTS, _brace_cuts, suffixes
    )


def puppeteer_recall_rows(work: Path) -> list[Row]:
    return npm_recall_rows(work, PUPPETEER, "TypeScript", (".ts",))


def three_recall_rows(work: Path) -> list[Row]:
    return npm_recall_rows(work, THREE, "JavaScript", (".js",))


def java_recall_rows(work: Path) -> list[Row]:
    return npm_recall_rows(work, REACT_ANDROID, "Java", (".java",))


def rust_recall_rows(work: Path) -> list[Row]:
    root = _sdist(work, *PYDANTIC_CORE)
    label = f"{PYDANTIC_CORE[0]} {PYDANTIC_CORE[1]} (Rust)"
    package = root / PYDANTIC_CORE[2]
    return recall_rows(work, label, root, package, NPM_CUTS, NPM_AIDER_CUTS, _brace_cuts, (".rs",))


def _debian(work: Path, package: str, version: str, folder: str) -> Path:
    """A folder of a Debian package (``apt-get download``, no root needed), as a checkout
    has it: <work>/ctx/<folder's name>-<version>."""
    where = work / "ctx"
    name = folder.rstrip("/").rsplit("/", 1)[-1]
    root = (where / f"{name}-{version.replace('~', '-')}").resolve()
    if root.is_dir():
        return root
    where.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        subprocess.run(
            ["apt-get", "download", f"{package}={version}"], cwd=tmp, check=True,
            capture_output=True,
        )  # fmt: skip
        deb = next(Path(tmp).glob("*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), "x"], cwd=tmp, check=True, capture_output=True)
        shutil.move(str(Path(tmp) / "x" / folder), str(root))
    return root


def go_recall_rows(work: Path) -> list[Row]:
    label = "goleveldb 2020-08-15 (Go)"
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        return [Row(NAME, f"recall corpus {label}", "skipped (no apt-get)")]
    try:
        root = _debian(work, *GOLEVELDB)
    except subprocess.CalledProcessError as exc:  # no package lists, or a newer release
        why = (exc.stderr or b"").decode(errors="replace").strip().splitlines() or ["?"]
        return [Row(NAME, f"recall corpus {label}", f"skipped (apt-get: {why[-1][:100]})")]
    package = root / "leveldb"
    return recall_rows(work, label, root, package, NPM_CUTS, NPM_AIDER_CUTS, _brace_cuts, (".go",))


def latency_rows(work: Path) -> list[Row]:
    tune_collector()  # as the server's process runs (``kimi-lsp`` sets it at start)
    root = _django(work)
    state = work / "ctx" / f"{root.name}-state"
    index = WorkspaceIndex([root], state_dir=state)
    index.update()  # the first run parses; later runs load the database (warm)
    index.prepare_queries()
    services = services_over(index, state / "services")
    cuts = _cuts(index, root / "django", LATENCY_CUTS, seed=1)
    times: list[float] = []
    for cut in cuts[:5]:  # warm the resident graph and the map once
        _ours(services, cut, 8_000)
    for cut in cuts:
        _with_cut(index, cut)
        try:
            _, elapsed = _ours(services, cut, 8_000)
        finally:
            index.close_document(cut.path)
        times.append(elapsed)
    index.close()
    times.sort()
    p50 = statistics.median(times) * 1000
    p95 = times[int(0.95 * (len(times) - 1))] * 1000
    return [
        Row(NAME, f"build p50, Django warm ({len(times)} cut buffers, 8k)", round(p50, 1), "ms"),
        Row(NAME, "build p95, Django warm", round(p95, 1), "ms", target="< 100 ms", ok=p95 < 100),
    ]


def cache_rows(work: Path) -> list[Row]:
    from tests.fake_kimi import FakeKimi

    root = _download(work, *CORPUS)
    index = WorkspaceIndex([root], state_dir=None)
    index.update()
    services = services_over(index, work / "ctx" / "cache-services")
    targets: list[Definition] = []
    for path in index.files():
        targets += [d for d in index.outline(path) if d.kind == DefinitionKind.FUNCTION][:1]
    rng = random.Random(5)
    rng.shuffle(targets)
    prompt = cached = 0
    with FakeKimi() as fake, httpx.Client(base_url=fake.base_url, timeout=30) as http:
        for i, d in enumerate(targets[:20]):
            action = ("explain", "refactor", "tests")[i % 3]
            # What a user's request sends at the function (contextBudget 12k, the default).
            built = prompt_at(services, action, d.path, d.range.start_line, d.range.start_col)
            reply = http.post(
                "/chat/completions",
                headers={"Authorization": f"Bearer {fake.key}"},
                json={"model": "kimi-k2.6", "messages": built.messages,
                      "max_completion_tokens": 256},
            )  # fmt: skip
            reply.raise_for_status()
            usage = reply.json()["usage"]
            prompt += usage["prompt_tokens"]
            cached += usage.get("cached_tokens") or 0
    index.close()
    share = cached / max(1, prompt)
    return [
        Row(NAME, "prefix-cache share, 20 mixed actions (emulator)", round(share, 3), "",
            target=">= 0.60", ok=share >= 0.60)
    ]  # fmt: skip


def run(work: Path) -> list[Row]:
    return (
        rich_recall_rows(work)
        + django_recall_rows(work)
        + sqlalchemy_recall_rows(work)
        + puppeteer_recall_rows(work)
        + three_recall_rows(work)
        + rust_recall_rows(work)
        + java_recall_rows(work)
        + go_recall_rows(work)
        + latency_rows(work)
        + cache_rows(work)
    )


if __name__ == "__main__":  # python -m bench.bench_context [rich|django|sqlalchemy|...]
    from bench.table import render

    here = Path(__file__).resolve().parent / ".work"
    part = {
        "rich": rich_recall_rows,
        "django": django_recall_rows,
        "sqlalchemy": sqlalchemy_recall_rows,
        "puppeteer": puppeteer_recall_rows,
        "three": three_recall_rows,
        "pydantic-core": rust_recall_rows,
        "react-native": java_recall_rows,
        "goleveldb": go_recall_rows,
        "latency": latency_rows,
        "cache": cache_rows,
    }
    chosen = sys.argv[1:] or list(part)
    print(render([row for name in chosen for row in part[name](here)]))

"""The prompt for one action: stable parts first, then what this request needs, in budget.

Layout (for Kimi's automatic prefix cache): the system message holds the instructions and
the repository map, the same bytes for every request on an unchanged repository; the user
message holds the per-request parts, chosen by the action's recipe in order of value until
the budget is spent, and written context first, then the target, then the instruction:

- explain: the definitions the target uses (their code when short, else signatures), the
  enclosing class or module outline, a few callers, then the ranked rest as a skeleton;
- refactor: the call sites a changed signature would break, the tests that exercise the
  target, the signatures it uses, the ranked rest;
- tests: the signatures of its dependencies, an existing test file of the project as a style
  example, the fixtures (conftest), the ranked rest.

The words around the context (system text, instruction, output size) are the recipes'
(``recipes.py``); ``actions.prompts.build`` is the one caller, for users, tests and
benchmarks alike.

The "ranked rest" is personalised PageRank over the file graph (imports included), seeded by
the target's file, the selection, the open documents and the diagnostics, then scored per
definition (`ranking.score_definitions`). Ignored files contribute nothing, and every part
is passed through secret redaction before it is counted. The total estimate never exceeds
the budget: optional parts are dropped, then the target is cut, lowest value first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kimi_lsp.context.errors import ContextError, UnknownAction
from kimi_lsp.context.ranking import Focus, name_words, score_definitions
from kimi_lsp.context.redact import redact, redact_fragment
from kimi_lsp.context.repomap import RepoMap, fit_skeleton
from kimi_lsp.context.typeflow import class_members, neighbour_only, type_flow
from kimi_lsp.index import (
    Definition,
    DefinitionKind,
    Reference,
    Span,
    WorkspaceIndex,
    language_for,
)
from kimi_lsp.index.resolve import go_package_names
from kimi_lsp.positions import read_text, relative, text_lines, to_index

ACTIONS = ("explain", "refactor", "tests")
# The repository map (stable prefix) gets the budget beyond the first 6k tokens, up to 6k:
# small budgets go to what this request needs; at the default 12k the map is 6k, ~2/3 of a
# typical prompt, which Kimi's prefix cache then serves for every request. (At 3/4 of it,
# the class outlines' room made the map ~57% of a prompt and the cached share 0.54.)
MAP_FROM = 6_000
MAP_SHARE = 1.0
MAP_MAX = 6_000
TARGET_SHARE = 0.5  # of the room after the fixed parts, at most, for the target's code
# The ranked skeleton gets at least 2.5k tokens, plus twice what of 4k the map does not
# take: with a small budget there is no room for a map and the skeleton takes what is left;
# with a big one the (cached) map carries the picture, and a small volatile part keeps the
# prefix-cache share up (at the default 12k the map is 6k and the skeleton 2.5k).
RANKED_MIN = 2_500
RANKED_FREE = 4_000
SHORT_BODY_LINES = 25  # a used definition this short goes in whole
RANKED_SHARE = {"explain": 0.5, "refactor": 0.3, "tests": 0.3}  # kept for the ranked skeleton
CALLERS = 5
CALL_SITES = 30
EXAMPLE_SHARE = 0.25  # of the budget, at most, for the example test file
TYPES_SHARE = 0.5  # of the room left, at most, for the outlines of the classes the code uses
TYPED_CLASSES = 8  # the most-used classes the outlines follow (with their bases)
NEIGHBOUR_MEMBERS = 24  # of the classes only the file's neighbours lead to, at most
OUTLINE_MEMBERS = 300  # candidates for the outlines, best first
MESSAGE_OVERHEAD = 4  # tokens per message for role markers


@dataclass(frozen=True)
class Section:
    name: str
    text: str
    tokens: int
    hidden: int = 0  # secrets redaction replaced in ``text``


@dataclass
class BuiltContext:
    """``messages`` to send; ``sections`` (the stable one first) with token estimates;
    ``left_out`` says what did not fit; ``tokens`` is the total estimate (≤ ``budget``)."""

    messages: list[dict[str, Any]]
    sections: list[Section]
    left_out: list[str]
    stable_prefix_tokens: int
    redactions: int
    tokens: int = 0
    notes: list[str] = field(default_factory=list)
    budget: int = 0
    # The split of ``tokens``: the target file's window, and what the repository adds (the
    # map and every part about other code); the system text and instruction make the rest.
    file_window_tokens: int = 0
    repository_tokens: int = 0


def map_budget(budget: int) -> int:
    """Tokens for the repository map at this prompt budget (a function of the budget only,
    so the map is the same bytes whatever the request)."""
    return int(min(MAP_MAX, max(0.0, MAP_SHARE * (budget - MAP_FROM))))


def used_definitions(
    index: WorkspaceIndex,
    path: Path,
    span: Span,
    allowed: Callable[[Path], bool] | None = None,
) -> list[Definition]:
    """Definitions (elsewhere) of the names the code in ``span`` uses, in order of first use;
    ``allowed`` (default: not ignored) filters their files. A method called on an object
    (``x.get(...)``) whose name more than one file defines is left to the type flow and the
    ranked skeleton: which one it is would be a guess, and a body costs its length."""
    ok = allowed if allowed is not None else (lambda p: not index.is_ignored(p))
    tags = index.file_tags(path)
    if tags is None:
        return []
    seen: set[str] = set()
    guessed: set[str] = set()
    found: list[Definition] = []
    source = _source(index, path)
    lines = text_lines(source)
    packages = go_package_names(source) if tags.language == "go" else None
    for ref in sorted(tags.references, key=lambda r: (r.range.start_line, r.range.start_col)):
        if ref.name in seen or not span.encloses(ref.range):
            continue
        on_object = _called_on_an_object(lines, ref)
        if on_object and ref.name in guessed:
            continue
        defs = [
            d
            for d in index.definitions(ref.name)
            if ok(d.path) and not (d.path == path and span.encloses(d.range))
        ]
        if packages is not None:  # Go: a bare name is this package's, `table.X` table's
            qualifier = _qualifier(lines, ref)
            if qualifier is None:
                defs = [d for d in defs if d.scope is None and d.path.parent == path.parent]
            elif qualifier in packages:
                on_object = False  # `table.NewReader(...)`: a package's function, no method
                folder = packages[qualifier]
                defs = [
                    d
                    for d in defs
                    if d.scope is None
                    and d.path.parent.name == folder
                    and d.path.parent != path.parent
                ]
        if on_object and len({d.path for d in defs}) > 1:
            guessed.add(ref.name)  # `x.get(...)`: which `get` is a guess, not worth a body
            continue
        seen.add(ref.name)
        defs.sort(key=lambda d: (d.path != path, str(d.path), d.range.start_line))
        found.extend(defs[:2])
    return found


def _qualifier(lines: list[str], ref: Reference) -> str | None:
    """The name before the dot in front of ``ref`` (`table` in `table.NewReader`), if any."""
    if ref.range.start_line >= len(lines):
        return None
    line = lines[ref.range.start_line]
    m = re.search(r"([A-Za-z_]\w*)\.$", line[: to_index(line, ref.range.start_col)].rstrip())
    return m.group(1) if m else None


def _called_on_an_object(lines: list[str], ref: Reference) -> bool:
    """Whether ``ref`` follows a dot on a receiver other than ``self``/``cls`` (whose
    members the type flow and the enclosing outline already show)."""
    if ref.range.start_line >= len(lines):
        return False
    line = lines[ref.range.start_line]
    before = line[: to_index(line, ref.range.start_col)].rstrip()
    return before.endswith(".") and not re.search(r"\b(?:self|cls)\.$", before)


def _names_in(index: WorkspaceIndex, path: Path, span: Span) -> frozenset[str]:
    tags = index.file_tags(path)
    refs = tags.references if tags else ()
    return frozenset(r.name for r in refs if span.encloses(r.range))


def _source(index: WorkspaceIndex, path: Path) -> str:
    return read_text(path, index.document_text(path)) or ""


def _lines(index: WorkspaceIndex, path: Path, first: int, last: int) -> list[str]:
    return text_lines(_source(index, path))[first : last + 1]


def _definition_text(index: WorkspaceIndex, d: Definition, *, whole: bool = True) -> str:
    body = _lines(index, d.path, d.range.start_line, d.range.end_line)
    if whole and len(body) <= SHORT_BODY_LINES:
        return "\n".join(body)
    return d.signature.strip() + "  # … body elided"


def _is_test_file(path: Path) -> bool:
    name = path.name.lower()
    return (
        name.startswith("test_")
        or name.endswith(("_test.py", "_test.go", ".test.ts", ".test.js", ".spec.ts", "_spec.rb"))
        or "tests" in path.parts
        or "test" in path.parts
    )


@dataclass
class _Request:
    index: WorkspaceIndex
    roots: list[Path]
    repo_map: RepoMap
    estimate: Callable[[str], int]
    action: str
    path: Path
    language: str
    target_span: Span
    target_code: str
    target_definition: Definition | None
    focus: Focus
    cursor_line: int = 0
    redactions: int = 0
    _ranks: dict[Path, float] | None = None

    def ranks(self) -> dict[Path, float]:
        """Personalised PageRank of the files for this request (computed once)."""
        if self._ranks is None:
            self._ranks = self.repo_map.ranker.ranks(self.focus)
        return self._ranks

    def clean(self, text: str, origin: Path | None = None) -> str:
        text, n = redact(text, origin)
        self.redactions += n
        return text

    def section(self, name: str, text: str, origin: Path | None = None) -> Section:
        """A part, redacted; its secrets count once it is in the prompt (a part is made
        many times while a window is fitted, and some never fit)."""
        text, hidden = redact(text, origin)
        return Section(name, text, self.estimate(text), hidden)

    def rel(self, path: Path) -> str:
        return relative(path, self.roots)

    def refs(self) -> list[Reference]:
        if self.target_definition is None:
            return []
        return [
            r
            for r in self.index.references_to(self.target_definition)
            if self.repo_map.ranker.allowed(r.path) and r.kind != "import"
        ]

    def ref_lines(self, refs: Sequence[Reference]) -> list[str]:
        out = []
        for r in refs:
            src = _lines(self.index, r.path, r.range.start_line, r.range.start_line)
            out.append(
                f"{self.rel(r.path)}:{r.range.start_line + 1}: {src[0].strip() if src else ''}"
            )
        return out


def _used(req: _Request, *, whole: bool) -> list[tuple[Section, Definition]]:
    out = []
    for d in used_definitions(req.index, req.path, req.target_span, req.repo_map.ranker.allowed):
        text = (
            f"{req.rel(d.path)}:{d.range.start_line + 1}:\n```{d.language}\n"
            f"{_definition_text(req.index, d, whole=whole)}\n```"
        )
        out.append((req.section(f"uses {d.name}", text, d.path), d))
    return out


def _callers(req: _Request, limit: int, title: str) -> list[Section]:
    refs = req.refs()[:limit]
    if not refs or req.target_definition is None:
        return []
    text = f"`{req.target_definition.name}` {title}:\n" + "\n".join(req.ref_lines(refs))
    return [req.section("callers" if limit <= CALLERS else "references", text)]


def _enclosing_outline(req: _Request) -> list[Section]:
    outline = req.index.outline(req.path)
    d = req.target_definition
    if d is not None and d.scope:  # the enclosing class: its members' signatures
        top = d.scope.split(".")[0]
        outline = [
            o
            for o in outline
            if o.qualified_name == top or o.scope == top or (o.scope or "").startswith(top + ".")
        ]
        title = f"Outline of `{top}` in {req.rel(req.path)}"
    else:
        title = f"Outline of {req.rel(req.path)}"
    lines = [
        f"{'  ' * (o.scope.count('.') + 1 if o.scope else 0)}{o.signature.strip()}" for o in outline
    ]
    if not lines:
        return []
    return [req.section("file outline", f"{title}:\n```\n" + "\n".join(lines) + "\n```", req.path)]


def _type_outlines(
    req: _Request, room: int, exclude: set[Definition]
) -> tuple[Section | None, list[Definition]]:
    """Outlines of the classes the target's code reaches through (``typeflow``): the class
    line, then the signatures of the members likeliest to be used next (by kind, by the
    class's weight, by what the project does with the code's names), best first until
    ``room`` is spent; shown grouped per class, in source order. Returns what it shows."""
    source = _source(req.index, req.path)
    flow = type_flow(req.index, req.path, source, req.target_span, req.target_definition)
    typed, uses = flow.classes, flow.member_uses
    if not typed or room <= 0:
        return None, []
    groups = class_members(req.index, req.path, typed[:TYPED_CLASSES])
    speculative = neighbour_only(req.index, req.path, typed[:TYPED_CLASSES])
    ranks = req.ranks()
    top = max(ranks.values(), default=1.0) or 1.0
    allowed = req.repo_map.ranker.allowed
    scored: list[tuple[float, int, int, Definition]] = []
    for gi, (cls, members, weight) in enumerate(groups):
        if not allowed(cls.path):
            continue
        file_w = 0.5 + ranks.get(cls.path, 0.0) / top
        for mi, d in enumerate(members):
            dunder = d.name.startswith("__") and d.name.endswith("__")
            if (dunder and d.name != "__init__") or d in exclude:
                continue
            # The target's own file is in the prompt already (its window, outline); a Go
            # type's methods in the other files of its package are not.
            if d.path == req.path or (d.path != cls.path and not allowed(d.path)):
                continue
            w = weight * file_w * _MEMBER_WEIGHT.get(d.kind, 0.3)
            if d.name.startswith("_") and not dunder:
                w *= 0.3
            # What the project does with the code's names: `mapper.class_` elsewhere puts
            # `class_` first among Mapper's 300 members.
            w *= 1.0 + math.log1p(uses.get(d.name, 0))
            scored.append((w, gi, mi, d))
    scored.sort(key=lambda t: (-t[0], t[1], t[2]))
    # The neighbours' members are a guess: the best few, not as many as the room holds.
    guesses = 0
    kept = []
    for t in scored:
        if groups[t[1]][0] in speculative:
            guesses += 1
            if guesses > NEIGHBOUR_MEMBERS:
                continue
        kept.append(t)
    scored = kept[:OUTLINE_MEMBERS]  # more never fit; each render costs its length
    header = "Classes the code works with (members' signatures; bodies elided):\n"

    def render(k: int) -> str:
        chosen: dict[int, list[tuple[int, Definition]]] = {}
        for _, gi, mi, d in scored[:k]:
            chosen.setdefault(gi, []).append((mi, d))
        blocks = []
        for gi in sorted(chosen):
            cls = groups[gi][0]
            lines = [f"{req.rel(cls.path)}:{cls.range.start_line + 1}:", cls.signature.strip()]
            members = sorted(chosen[gi], key=lambda t: t[0])
            lines += ["    " + d.signature.strip() for _, d in members]
            blocks.append("\n".join(lines))
        return header + f"```{req.language}\n" + "\n\n".join(blocks) + "\n```"

    lo, hi = 0, len(scored)
    while lo < hi:  # the most members whose outline fits
        mid = (lo + hi + 1) // 2
        if req.estimate(render(mid)) <= room:
            lo = mid
        else:
            hi = mid - 1
    if lo == 0:
        return None, []
    section = req.section("class outlines", render(lo))
    if section.tokens > room:  # redaction lengthened it: one step back is enough in practice
        section = req.section("class outlines", render(max(1, lo * 3 // 4)))
    shown = [d for *_, d in scored[:lo]]
    shown += [groups[gi][0] for _, gi, _, _ in scored[:lo]]
    return section, shown


_MEMBER_WEIGHT = {
    DefinitionKind.METHOD: 1.0,
    DefinitionKind.PROPERTY: 0.9,
    DefinitionKind.CONSTRUCTOR: 0.6,
    DefinitionKind.FUNCTION: 1.0,
    DefinitionKind.FIELD: 0.5,
    DefinitionKind.CONSTANT: 0.4,
    DefinitionKind.VARIABLE: 0.3,
    DefinitionKind.CLASS: 0.5,
}


def _tests_of_target(req: _Request) -> list[Section]:
    refs = [r for r in req.refs() if _is_test_file(r.path)]
    if not refs or req.target_definition is None:
        return []
    text = f"Tests that exercise `{req.target_definition.name}`:\n" + "\n".join(
        req.ref_lines(refs[:CALL_SITES])
    )
    return [req.section("tests of the target", text)]


def _example_test(req: _Request, budget: int) -> list[Section]:
    """An existing test file as a style example: one importing the target's file if any,
    else the smallest test file in the target's language; cut to a share of the budget."""
    candidates = [
        p
        for p in req.index.files()
        if _is_test_file(p)
        and p.name != "conftest.py"  # fixtures have their own section
        and p != req.path
        and not req.index.is_ignored(p)
    ]
    same_lang = [p for p in candidates if language_for(p) == req.language]
    importing = [p for p in same_lang if req.path in req.index.imports_of(p)]
    pool = importing or same_lang
    if not pool:
        return []
    info = {p: req.index.file_info(p) for p in pool}
    pick = min(pool, key=lambda p: (info[p].size if info[p] else 0, str(p)))  # type: ignore[union-attr]
    lines = _source(req.index, pick).splitlines()
    cap = int(EXAMPLE_SHARE * budget)
    while lines:
        text = (
            f"Example test file ({req.rel(pick)}):\n```{req.language}\n"
            + "\n".join(lines)
            + "\n```"
        )
        section = req.section("example test file", text, pick)
        if section.tokens <= cap:
            return [section]
        lines = lines[: len(lines) * 3 // 4]
    return []


def _fixtures(req: _Request) -> list[Section]:
    conftests = [
        p
        for p in req.index.files()
        if p.name == "conftest.py"
        and not req.index.is_ignored(p)
        and (req.path.is_relative_to(p.parent) or "tests" in p.parts)
    ]
    if not conftests:
        return []
    defs = [d for p in sorted(conftests) for d in req.index.outline(p) if d.scope is None]
    text = (
        "Test fixtures and helpers (conftest):\n```\n"
        + "".join(
            f"{req.rel(d.path)}:{d.range.start_line + 1}: {d.signature.strip()}\n" for d in defs
        )
        + "```"
    )
    return [req.section("fixtures", text)]


def _ranked_rest(
    req: _Request, budget: int, exclude: set[Definition]
) -> tuple[Section | None, int]:
    ranks = req.ranks()
    scored = score_definitions(
        req.index, ranks, req.focus, exclude=exclude, allowed=req.repo_map.ranker.allowed
    )
    ranked = [d for _, d in scored]
    header = "Related definitions, ranked for this request (signatures; bodies elided):\n"
    room = budget - req.estimate(header) - 1
    for _ in range(4):  # the header and the text may cost more together than apart
        text, n, hidden = fit_skeleton(
            req.index, ranked, req.roots, req.estimate, room, clean=redact_fragment
        )
        if not text:
            return None, len(ranked)
        tokens = req.estimate(header + text)
        if tokens <= budget:
            section = Section("ranked definitions", header + text, tokens, hidden)
            return section, len(ranked) - n
        room -= tokens - budget
    return None, len(ranked)


def _assemble(
    req: _Request,
    *,
    system: str,
    instruction: str,
    budget: int,
    extra: str,
    repository_budget: int | None = None,
) -> BuiltContext:
    left_out: list[str] = []
    room_for_repo = budget if repository_budget is None else repository_budget
    map_text = req.clean(req.repo_map.render(map_budget(room_for_repo)))
    stable = system
    if map_text:
        stable += (
            "\n\nRepository map (the most used files' definitions; bodies elided):\n" + map_text
        )
    stable_section = Section("system + repository map", stable, req.estimate(stable))

    code = req.target_code.rstrip()
    target_head = f"The code ({req.rel(req.path)}, line {req.target_span.start_line + 1}):\n"
    target = req.section("target", f"{target_head}```{req.language}\n{code}\n```", req.path)
    required = [target]
    if extra:
        required.append(req.section("examples", extra))
    required.append(Section("instruction", instruction, req.estimate(instruction)))

    # Every part costs its own estimate plus the separator; the messages cost their markers.
    sep = req.estimate("\n\n") + 1
    fixed = 2 * MESSAGE_OVERHEAD + stable_section.tokens

    def cost(parts: Sequence[Section]) -> int:
        return fixed + sum(s.tokens + sep for s in parts)

    # A target bigger than its share (a whole class around the cursor) keeps the window of
    # lines around the cursor, two thirds of it above: what the request is about.
    all_lines = text_lines(code)
    cursor = min(max(0, req.cursor_line - req.target_span.start_line), max(0, len(all_lines) - 1))
    if repository_budget is None:
        share = int(TARGET_SHARE * max(0, budget - cost(required[1:])))
    else:  # the window is counted apart: it may take what the total cap leaves it
        share = budget - repository_budget - cost(required[1:]) + stable_section.tokens
        share = max(0, share - req.estimate(system))

    def window(n: int) -> tuple[int, Section]:
        first = max(0, min(cursor - (2 * n) // 3, len(all_lines) - n))
        kept = all_lines[first : first + n]
        above, below = first, len(all_lines) - first - len(kept)
        body = (f"… ({above} lines above cut to fit)\n" if above else "") + "\n".join(kept)
        body += f"\n… ({below} lines below cut to fit)" if below else ""
        head = f"The code ({req.rel(req.path)}, line {req.target_span.start_line + first + 1}):\n"
        return first, req.section("target", f"{head}```{req.language}\n{body}\n```", req.path)

    if target.tokens > share and len(all_lines) > 1:
        lo, hi = 0, len(all_lines)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if window(mid)[1].tokens <= share:
                lo = mid
            else:
                hi = mid - 1
        first, target = window(lo)
        required[0] = target
        req.target_span = Span(
            req.target_span.start_line + first, 0, req.target_span.start_line + first + lo, 0
        )
        left_out.append(f"{len(all_lines) - lo} lines of the target away from the cursor")
    if cost(required) > budget:
        raise ContextError(
            f"a budget of {budget} tokens cannot hold the system text and the instruction "
            f"({cost(required)} tokens); raise contextBudget"
        )

    if repository_budget is not None:
        # The repository's parts (the map included) get ``repository_budget`` on top of the
        # target, the system text and the instruction; the total cap still holds.
        budget = min(budget, cost(required) - stable_section.tokens + repository_budget)
        if cost(required) > budget:
            raise ContextError(
                f"a repository budget of {repository_budget} tokens cannot hold the "
                f"repository map ({stable_section.tokens - req.estimate(system)} tokens)"
            )
    optional: list[Section | str] = []  # "types": the class outlines, fitted to the room left
    shown: set[Definition] = set()
    action = req.action
    if action == "explain":
        for s, d in _used(req, whole=True):
            optional.append(s)
            shown.add(d)
        optional.append("types")
        optional += _enclosing_outline(req)
        optional += _callers(req, CALLERS, "is used at")
    elif action == "refactor":
        optional += _callers(req, CALL_SITES, "is called at (a changed signature breaks these)")
        optional += _tests_of_target(req)
        for s, d in _used(req, whole=False):
            optional.append(s)
            shown.add(d)
        optional.append("types")
    elif action == "tests":
        for s, d in _used(req, whole=False):
            optional.append(s)
            shown.add(d)
        optional.append("types")
        optional += _example_test(req, budget)
        optional += _fixtures(req)
    if req.target_definition is not None:
        shown.add(req.target_definition)

    # The ranked skeleton is the cheapest carrier of what the rest of the code needs (a
    # signature line each), so it keeps a share of the room before the bulkier parts.
    chosen: list[Section] = []
    used = cost(required)
    reserve = int(RANKED_SHARE.get(action, 0.0) * max(0, budget - used))
    for part in optional:
        if isinstance(part, str):
            if req.target_definition is None:  # typeflow says which languages it types
                continue
            room = budget - reserve - used - sep
            room = min(room, int(TYPES_SHARE * max(0, budget - cost(required))))
            types, members = _type_outlines(req, room, shown)
            if types is None:
                continue
            shown.update(members)
            part = types
        s = part
        if used + s.tokens + sep <= budget - reserve:
            chosen.append(s)
            used += s.tokens + sep
        else:
            left_out.append(f"{s.name} ({s.tokens} tokens)")
    cap = RANKED_MIN + max(0, 2 * (RANKED_FREE - map_budget(budget)))
    rest, missing = _ranked_rest(req, min(cap, budget - used - sep), shown)
    if rest is not None:
        chosen.append(rest)
        used += rest.tokens + sep
    if missing:
        left_out.append(f"{missing} lower-ranked definitions (no room)")

    volatile = chosen + required
    user = "\n\n".join(s.text for s in volatile)
    messages = [{"role": "system", "content": stable}, {"role": "user", "content": user}]
    total = 2 * MESSAGE_OVERHEAD + req.estimate(stable) + req.estimate(user)
    window_tokens = required[0].tokens
    own = req.estimate(system) + sum(s.tokens for s in required[1:])
    return BuiltContext(
        messages=messages,
        sections=[stable_section, *volatile],
        left_out=left_out,
        stable_prefix_tokens=stable_section.tokens,
        redactions=req.redactions + sum(s.hidden for s in volatile),
        tokens=total,
        budget=budget,
        file_window_tokens=window_tokens,
        repository_tokens=max(0, total - window_tokens - own - 2 * MESSAGE_OVERHEAD),
    )


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
    action: str = "explain",
    selection: Span | None = None,
    open_documents: Sequence[Path] = (),
    diagnostics: Sequence[tuple[Path, Span]] = (),
    cursor_line: int | None = None,
    repository_budget: int | None = None,
) -> BuiltContext:
    """The prompt for ``action`` on a target the caller has already found (the actions
    layer's entry point); see the module docstring for the layout. ``budget`` caps the
    whole prompt; ``repository_budget``, when given, is the room for repository context
    (the map and the parts about other code), the target's window counted apart."""
    if action not in ACTIONS:
        raise UnknownAction(action, ACTIONS)
    ignored = index.is_ignored(path)
    focus = Focus(
        path,
        selection_paths=(path,) if selection is not None else (),
        open_documents=tuple(p for p in open_documents if not index.is_ignored(p)),
        diagnostic_paths=tuple(p for p, _ in diagnostics if not index.is_ignored(p)),
        near=_names_in(index, path, selection or target_span),
        words=name_words(target_definition.name) if target_definition is not None else frozenset(),
    )
    req = _Request(
        index,
        list(roots),
        repo_map,
        estimate,
        action,
        path,
        language,
        target_span,
        "" if ignored else target_code,
        target_definition,
        focus,
        cursor_line=target_span.start_line if cursor_line is None else cursor_line,
    )
    built = _assemble(
        req,
        system=system,
        instruction=instruction,
        budget=budget,
        extra=extra,
        repository_budget=repository_budget,
    )
    if ignored:
        built.left_out.insert(0, f"{path.name} itself: it is ignored (.gitignore/.kimiignore)")
    return built

"""Type flow, cheaply, from tree-sitter: the classes a Python function's names stand for.

Half of what the rest of a function uses are methods reached through an object
(``self.session.fetch(...)``, ``shape.contains(...)``): matching names cannot find them
before the code is written. Here the target's code is parsed and its receivers typed by a
few local rules, each of which only names a class the index knows:

- ``self`` / ``cls``: the enclosing class; its bases follow across files (MRO order);
- parameters annotated with project classes (``X``, ``Optional[X]``, ``X | None``,
  ``"X"``, ``type[X]``; every name in the annotation that is a project class);
- attributes: class-level annotations (``session: Session``), ``self.x: X = ...`` and
  ``self.x = X(...)`` in the class's methods, and properties' return annotations;
- locals assigned from a constructor (``q = Query(...)``) or from a call whose return
  annotation names a class (``q = self.query()``, ``q = make_query()``), ``with X() as x``;
- ``super()``: the enclosing class's bases;
- module-level names: an alias of a class (``ClauseVisitor = ExternalTraversal``) is that
  class, and a name bound to a constructor (``apps = Apps()``, in the file, else in at most
  three files of the project) is an instance; so is a class attribute
  (``objects = LogEntryManager()``);
- ``x or Cls(...)``, ``A() if c else B()``: either side; ``for x in xs`` with ``xs``
  annotated ``list[X]``: ``X``; ``isinstance(x, X)`` (or a tuple of classes): ``X``;
- an unannotated parameter, or a receiver no rule types, named for a class (``mapper`` ->
  ``Mapper``, ``schema_editor`` -> ``SchemaEditor``, ``primary_mapper`` -> ``Mapper``,
  ``self.engine.pool`` -> ``Pool``: the longest tail of its words that is a class's name),
  at half weight;
- a receiver no rule types, by the members the code uses on it: the classes defining all of
  them, bases over the subclasses overriding them (``compiler.execute_sql()`` ->
  ``SQLCompiler``), when few enough classes do.

- a name no rule types (a parameter, a local, a receiver), by what the project does with
  that name elsewhere (``usage``): the class whose members account for most of the
  ``opts.x`` the project writes (``opts.get_field``, ``opts.app_label`` -> ``Options``),
  among the neighbours, since a name's convention is a guess about this function.

TypeScript, JavaScript, Java, Go and Rust are typed as cheaply, by names rather than a
parse (``_flow_by_names``): the enclosing class or receiver type and its ``extends`` bases,
the project classes the code names, and its receivers by what the project does with them.

A function the parse lost (a bracket left open while typing) is typed from its header
alone: its parameters and ``self`` still say what the rest of it will use.

Below those, the unnamed neighbours: the classes and module-level instances the file imports
by name, and the classes the enclosing class's other methods reach through ``self.x``,
weighted by how much the class (else the file) uses them.

``type_flow`` returns the classes with how often the code reaches through them, and the
project's uses of the members on the names the code holds (the outlines rank members by
them); ``typed_classes`` the classes alone;
``class_members`` their members in MRO order; the packing into outlines is in build.py.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tree_sitter import Node

from kimi_lsp.context.usage import member_uses
from kimi_lsp.index import Definition, DefinitionKind, Span, WorkspaceIndex
from kimi_lsp.index.languages import new_parser
from kimi_lsp.positions import read_text, text_lines

CLASS_KINDS = (DefinitionKind.CLASS, DefinitionKind.INTERFACE, DefinitionKind.STRUCT)
MAX_CANDIDATES = 3  # a class name defined in more files than this is not resolved
MRO_DEPTH = 6
MAX_OWNERS = 12  # a member name more classes define than this does not tell the class
NAMED_WEIGHT = 0.5  # a parameter typed by its name alone (`session` -> Session)
DUCK_WEIGHT = 0.5  # a class told by the members used, not by a rule
IMPORT_WEIGHT = 0.1  # per use (up to 4): a class the module imports, or its class's self.x
USES_WEIGHT = 0.5  # a name typed by what the project does with it (a neighbour)
USES_SHARE = 0.5  # of the uses of a name's members, at least, the class must account for
USES_MIN = 3  # uses, at least (files that write `name.member`, summed over members)
USES_MEMBERS = 20  # a name's most used members that vote
USES_DISTINCT = 2  # of them, at least, the class must define (its bases included)
_MEMBER_KINDS = (DefinitionKind.METHOD, DefinitionKind.PROPERTY, DefinitionKind.FIELD)
HEADER_LINES = 12  # a signature spread over more lines than this loses its annotation
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_WORD = re.compile(r"\w+")
_RETURNS = re.compile(r"->\s*(.+?)\s*:\s*(?:#.*)?$", re.S)
_SELF_ANNOTATED = re.compile(r"\bself\.(\w+)\s*:\s*([^=\n]+)")
_SELF_BUILT = re.compile(r"\bself\.(\w+)\s*=\s*(?:[^=\n]*?\bor\s+)?([A-Za-z_][\w.]*)\(")
# A module-level or class-level binding: ``name = Other``, ``name = Cls(...)``, ``name: X = ...``.
_BINDING = re.compile(r"^\s*(\w+)\s*(?::\s*([^=]+?))?\s*=\s*([A-Za-z_][\w.]*)\s*(\()?")
# The languages typed by names (`_flow_by_names`), and what they write.
BRACE_LANGUAGES = frozenset(("typescript", "tsx", "javascript", "java", "go", "rust"))
_CAPITALIZED = re.compile(r"(?<![\w.])[A-Z]\w*")
_RECEIVER = re.compile(r"(?<![\w.])([a-z_]\w*)(?:\?)?\.(?=[A-Za-z_])")
# A field the code reaches a member through: `this.frameManager.x`, `this.#client?.x`,
# Rust's `self.store.x`.
_FIELD_RECEIVER = re.compile(r"(?<![\w.])(?:this|self)\.(#?[A-Za-z_]\w*)\??\.(?=[#A-Za-z_])")
# What a class declares its fields hold: `#client: CDPSession;`, `private readonly page:
# Page`, `store: Store,`, `store: &'a Store` (TypeScript, constructor parameters, Rust);
# `this.info = new Info()`
# and `#info = new Info();` (JavaScript); `private FrameManager frames;` (Java).
_FIELD_ANNOTATED = re.compile(
    r"(?:^|[\s;{(,])(#?[A-Za-z_]\w*)\s*[?!]?\s*:\s*(?:readonly\s+)?&?(?:'\w+\s+)?(?:mut\s+)?"
    r"([A-Z][\w.]*)",
    re.M,
)
_FIELD_BUILT = re.compile(
    r"(?:\bthis\.|^\s*(?:(?:private|protected|public|readonly|static)\s+)*)"
    r"(#?[A-Za-z_]\w*)\s*=\s*new\s+([A-Z][\w.]*)",
    re.M,
)
_FIELD_JAVA = re.compile(r"\b([A-Z]\w*)(?:<[^>\n]*>)?\s+([a-z_]\w*)\s*[;=]")
# A Go struct's fields, a line each: `repo *Repo`, `a, b store.Repo`, `cache map[string]*Item`
# (the element's type); a method's receiver, `func (s *Server) Handle()`, is its `this`.
_FIELD_GO = re.compile(
    r"^\s*([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s+(?:\*|\[\d*\]|map\[[^\]\n]*\])*"
    r"([A-Za-z_][\w.]*)",
    re.M,
)
_GO_EMBEDDED = re.compile(r"^\s*\*?([A-Za-z_][\w.]*)\s*(?://.*)?$")
# A Go function's parameters and the locals it binds to a type: `(s *session, o *opt.Options)`,
# `var v *version`, `t := &tFile{`.
_GO_TYPED = re.compile(
    r"(?:[(,]\s*|\bvar\s+)([A-Za-z_]\w*)\s+\*?([A-Za-z_][\w.]*)\s*[,)=\n]"
    r"|\b([A-Za-z_]\w*)\s*:?=\s*&?([A-Za-z_][\w.]*)\{"
)
_GO_RECEIVER = re.compile(r"^\s*func\s*\(\s*([A-Za-z_]\w*)\s+\*?\s*[A-Za-z_]")
_NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+")
_EXTENDS = re.compile(r"\b(?:extends|implements)\s+([\w.]+(?:\s*,\s*[\w.]+)*)")
_SELF_FROM_NAME = re.compile(r"\bself\.(\w+)\s*=\s*([A-Za-z_]\w*)\s*$", re.M)
# Names in annotations that are never project classes (skips a lookup each).
_TYPING = frozenset(
    ("Optional", "Union", "List", "Dict", "Set", "Tuple", "Type", "Sequence", "Mapping",
     "Iterable", "Iterator", "Callable", "Any", "None", "Literal", "ClassVar", "Final",
     "Annotated", "Self", "TypeVar", "Generic", "Protocol")
)  # fmt: skip


@dataclass(frozen=True)
class TypedClass:
    """A class the target's code reaches through, and how much (uses, plus 1 per rule);
    ``neighbour``: no rule typed the code with it, the file around makes it likely (the
    module imports it, the class's other methods reach through it)."""

    definition: Definition
    weight: float
    neighbour: bool = False


@dataclass(frozen=True)
class TypeFlow:
    """What `type_flow` finds: the classes, and ``member_uses``: member name -> the files
    that use it on one of the names the code holds (``mapper.class_`` for a ``mapper``)."""

    classes: list[TypedClass]
    member_uses: Mapping[str, int]


@lru_cache(maxsize=8)
def _parse(source: str) -> Node:
    return new_parser("python").parse(source.encode("utf-8")).root_node


def _text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", errors="replace")


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


class _Resolver:
    """Names to the index's classes and members, from one file's point of view."""

    def __init__(self, index: WorkspaceIndex, path: Path) -> None:
        self.index = index
        self.path = path
        self._classes: dict[tuple[str, Path, bool], list[Definition]] = {}
        self._mro: dict[Definition, list[Definition]] = {}
        self._attrs: dict[Definition, dict[str, list[Definition]]] = {}
        self._lines: dict[Path, list[str]] = {}
        self._instances: dict[str, list[Definition]] = {}
        self._owner_cache: dict[str, set[Definition] | None] = {}
        self._members: dict[Definition, list[Definition]] = {}
        self._imports: dict[Path, frozenset[Path]] = {}

    def imports(self, path: Path) -> frozenset[Path]:
        """The files ``path`` imports, resolved once per request."""
        if path not in self._imports:
            self._imports[path] = frozenset(self.index.resolve_imports(path))
        return self._imports[path]

    def lines(self, path: Path) -> list[str]:
        """The file's lines, split once per request (headers read many times)."""
        if path not in self._lines:
            self._lines[path] = text_lines(_source(self.index, path))
        return self._lines[path]

    def classes(
        self, name: str, near: Path | None = None, *, typed: bool = False
    ) -> list[Definition]:
        """The project classes ``name`` (bare or dotted: the last part) may stand for. A
        dotted name's qualifier is a module (``compiler.SQLCompiler``): a class of a file so
        named comes before one of the same name nearby (the subclass being defined). A
        lowercase name is a variable's unless ``typed`` (written where a type goes: Go's
        unexported `session`, `tFile`)."""
        qualifier, _, name = name.rpartition(".")
        module = qualifier.rsplit(".", 1)[-1]
        near = near or self.path
        key = (f"{module}.{name}" if module else name, near, typed and name.islower())
        if key not in self._classes:
            found = []
            self._classes[key] = []  # an alias cycle (A = B, B = A) ends here
            if name and name not in _TYPING and (typed or not name.islower()):
                # What a bare name can stand for: a module's class (one nested in a function
                # or a class is reached otherwise), a test's only from the tests.
                found = [
                    d
                    for d in self.index.definitions(name)
                    if d.kind in CLASS_KINDS
                    and d.name == name
                    and (d.scope is None or d.path == near)
                    and (not _in_tests(d.path) or _in_tests(near))
                ]
                found = found or self._aliased(name)
            named = [
                d
                for d in (found if module else [])
                if d.path.stem == module
                or (d.path.stem == "__init__" and d.path.parent.name == module)
            ]
            local = [d for d in found if d.path == near]
            if named:
                found = named
            elif local:
                found = local
            elif len(found) > 1 and (
                imported := [d for d in found if d.path in self.imports(near)]
            ):
                found = imported  # `use crate::model::Repo;`: that module's, not another's Repo
            elif len({d.path for d in found}) > MAX_CANDIDATES:
                found = []
            found.sort(key=lambda d: (str(d.path), d.range.start_line))
            self._classes[key] = found[:2]
        return self._classes[key]

    def named_for(self, name: str) -> list[Definition]:
        """The classes a variable's name names (``mapper`` -> Mapper, ``schema_editor`` and
        ``schemaEditor`` -> SchemaEditor, ``primary_mapper`` -> Mapper): the longest tail of
        its words that is a class's name."""
        words = _NAME_WORDS.findall(name)  # `frame_manager`, `frameManager`, `#frameManager`
        for i in range(len(words)):
            if len(words[i]) < 3 and i == len(words) - 1:
                break
            found = self.classes("".join(w[0].upper() + w[1:] for w in words[i:]))
            if found:
                return found
        return []

    def _aliased(self, name: str) -> list[Definition]:
        """The classes a module-level ``Name = Other`` makes ``name`` another name for."""
        out: list[Definition] = []
        for d in self._module_bindings(name):
            m = _BINDING.match(d.signature)
            if m is not None and m.group(1) == name and not m.group(2) and not m.group(4):
                out += [c for c in self.classes(m.group(3), d.path) if c not in out]
        return out

    def _module_bindings(self, name: str) -> list[Definition]:
        kinds = (DefinitionKind.VARIABLE, DefinitionKind.CONSTANT)
        return [
            d
            for d in self.index.definitions(name)
            if d.scope is None and d.kind in kinds and d.name == name
        ]

    def bound_type(self, d: Definition) -> list[Definition]:
        """The classes a binding's annotation names, or the class it is constructed from
        (``x: X = ...``, ``x = Cls(...)``)."""
        m = _BINDING.match(d.signature)
        if m is None or m.group(1) != d.name:
            return []
        if m.group(2):
            return self.in_annotation(m.group(2), d.path)
        return self.classes(m.group(3), d.path) if m.group(4) else []

    def instance_of(self, name: str) -> list[Definition]:
        """The classes a module-level name bound to a constructor stands for (``apps =
        Apps()``): this file's binding, else the few the project has."""
        if name not in self._instances:
            defs = self._module_bindings(name)
            # Not ``imports_of``: right after an edit it rebuilds the file's graph rows.
            own = [d for d in defs if d.path == self.path]
            if not own and len({d.path for d in defs}) <= MAX_CANDIDATES:
                own = defs
            found: list[Definition] = []
            for d in own:
                found += [c for c in self.bound_type(d) if c not in found]
            self._instances[name] = found
        return self._instances[name]

    def defining(self, names: set[str]) -> list[Definition]:
        """The classes that define every one of ``names``, bases over the subclasses that
        override them (``compiler.execute_sql(...)``, ``.as_sql(...)`` -> ``SQLCompiler``);
        nothing when a name is too common to tell (``get``) or the classes too many."""
        candidates: set[Definition] | None = None
        for name in sorted(names):
            if name.startswith("__"):
                continue
            owners = self._owners(name)
            if owners is None:
                continue  # too common: says nothing
            candidates = owners if candidates is None else candidates & owners
            if not candidates:
                return []
        if not candidates:
            return []
        roots = [c for c in candidates if not any(b in candidates for b in self.mro(c)[1:])]
        if len({c.path for c in roots}) > MAX_CANDIDATES:
            return []
        return sorted(roots, key=lambda c: (str(c.path), c.range.start_line))

    def by_uses(self, members: Mapping[str, int]) -> list[Definition]:
        """The class (at most two, bases over subclasses) whose members, its bases' included,
        account for at least `USES_SHARE` of the uses of ``members`` (member -> files) that
        tell a class at all, through at least `USES_DISTINCT` of them (one member, however
        often used, tells no class); nothing when none does."""
        votes: Counter[Definition] = Counter()
        kinds: Counter[Definition] = Counter()  # how many of the members each defines
        total = 0
        top = sorted(members.items(), key=lambda kv: (-kv[1], kv[0]))[:USES_MEMBERS]
        for member, n in top:
            owners = self._owners(member)
            if owners is None:
                continue  # too common to tell (`get`), or no project class has it
            total += n
            for cls in owners:
                votes[cls] += n
                kinds[cls] += 1
        score: dict[Definition, int] = {}
        for c in votes:
            mro = self.mro(c)
            if sum(kinds.get(b, 0) for b in mro) >= USES_DISTINCT:
                score[c] = sum(votes.get(b, 0) for b in mro)
        best = max(score.values(), default=0)
        if best < max(USES_MIN, USES_SHARE * total):
            return []
        tied = [c for c in score if score[c] == best]
        roots = [c for c in tied if not any(b in tied for b in self.mro(c)[1:])]
        return sorted(roots, key=lambda c: (str(c.path), c.range.start_line))[:2]

    def _owners(self, name: str) -> set[Definition] | None:
        if name not in self._owner_cache:
            defs = [
                d
                for d in self.index.definitions(name)
                if d.scope and d.name == name and d.kind in _MEMBER_KINDS
            ]
            owners: set[Definition] | None = None
            if not _in_tests(self.path):  # a test's stand-in class does not name the type
                defs = [d for d in defs if not _in_tests(d.path)]
            if 0 < len(defs) <= MAX_OWNERS:
                owners = set()
                for d in defs:
                    cls = self._class_named(d.path, d.scope or "")
                    if cls is not None:
                        owners.add(cls)
            self._owner_cache[name] = owners
        return self._owner_cache[name]

    def _class_named(self, path: Path, qualified: str) -> Definition | None:
        for d in self.index.outline(path):
            if d.qualified_name == qualified and d.kind in CLASS_KINDS:
                return d
        return None

    def in_annotation(self, text: str, near: Path | None = None) -> list[Definition]:
        """The project classes an annotation names (``Optional[X]``, ``"X | None"``...)."""
        out: list[Definition] = []
        for m in _NAME.finditer(text.replace("'", " ").replace('"', " ")):
            for c in self.classes(m.group(0), near):
                if c not in out:
                    out.append(c)
        return out

    def header(self, d: Definition) -> str:
        """The definition's header up to its colon (a signature may span lines)."""
        lines = self.lines(d.path)[d.range.start_line : d.range.start_line + HEADER_LINES]
        out = []
        for line in lines:
            out.append(line.strip())
            if line.rstrip().endswith(":"):
                break
        return " ".join(out)

    def bases(self, cls: Definition) -> list[Definition]:
        if cls.path.suffix == ".go":  # a struct's embedded types: `*opt.Options` on a line
            body = self.lines(cls.path)[cls.range.start_line + 1 : cls.range.end_line + 1]
            names = [m.group(1) for line in body if (m := _GO_EMBEDDED.match(line))]
            return [b for n in names for b in self.classes(n, cls.path, typed=True) if b != cls]
        if not cls.path.suffix.startswith(".py"):  # `class A extends B implements C {`
            lines = self.lines(cls.path)[cls.range.start_line : cls.range.start_line + 4]
            head = " ".join(lines).split("{", 1)[0]
            names = [n.strip() for m in _EXTENDS.finditer(head) for n in m.group(1).split(",")]
            return [b for n in names for b in self.classes(n, cls.path) if b != cls]
        head = self.header(cls)
        start, end = head.find("("), head.rfind(")")
        if start < 0 or end < start:
            return []
        out: list[Definition] = []
        for part in head[start + 1 : end].split(","):
            part = part.strip()
            if "=" in part:  # metaclass=..., keyword arguments
                continue
            m = _NAME.match(part)
            if m:
                out += [b for b in self.classes(m.group(0), cls.path) if b != cls]
        return out

    def mro(self, cls: Definition) -> list[Definition]:
        """The class, then its bases depth-first left to right, each once (C3 agrees on
        the common shapes; the differences do not matter for what to show)."""
        if cls not in self._mro:
            order: list[Definition] = []

            def visit(c: Definition, depth: int) -> None:
                if c in order or depth > MRO_DEPTH:
                    return
                order.append(c)
                for b in self.bases(c):
                    visit(b, depth + 1)

            visit(cls, 0)
            self._mro[cls] = order
        return self._mro[cls]

    def members(self, cls: Definition) -> list[Definition]:
        """The class's own members (direct children, and the methods a JavaScript
        constructor assigns to `this`), in source order; a Go type's methods from every file
        of its package; a Rust type's from the `impl` blocks of the files that import it."""
        if cls in self._members:  # asked per base, per member looked up, per rule
            return self._members[cls]
        qualified = cls.qualified_name
        if cls.path.suffix == ".rs":
            # `impl Session { … }` may be in any module that brings `Session` in (`use
            # crate::model::Session;`), and names it; not one that defines its own.
            naming = self.index.files_referencing(cls.name) - self.index.files_defining(cls.name)
            impls = sorted(p for p in naming if cls.path in self.imports(p))
            files = [cls.path, *impls]
            found = [d for p in files for d in self.index.outline(p) if d.scope == qualified]
        elif cls.path.suffix != ".go":
            # JavaScript's constructor may define the methods: `this.render = function () {}`.
            built = f"{qualified}.constructor"
            found = [d for d in self.index.outline(cls.path) if d.scope in (qualified, built)]
        else:
            package = cls.path.parent
            siblings = sorted(
                p
                for p in self.index.files()
                if p.parent == package and p.suffix == ".go" and p != cls.path
            )
            files = [cls.path, *siblings]
            found = [d for p in files for d in self.index.outline(p) if d.scope == qualified]
        self._members[cls] = found
        return found

    def member(self, cls: Definition, name: str) -> Definition | None:
        for c in self.mro(cls):
            for d in self.members(c):
                if d.name == name:
                    return d
        return None

    def attribute_types(self, cls: Definition) -> dict[str, list[Definition]]:
        """Attribute name -> classes, from the class body and ``self.x`` in its methods."""
        if cls not in self._attrs:
            table: dict[str, list[Definition]] = {}
            for c in reversed(self.mro(cls)):  # the subclass's word wins
                body = "\n".join(self.lines(c.path)[c.range.start_line : c.range.end_line + 1])
                for m in _SELF_FROM_NAME.finditer(body):  # `self.x = x`, x annotated
                    param = re.search(rf"\b{m.group(2)}\s*:\s*([^,=)\n]+)", body)
                    found = self.in_annotation(param.group(1), c.path) if param else []
                    if found:
                        table[m.group(1)] = found
                for m in _SELF_BUILT.finditer(body):
                    found = self.classes(m.group(2), c.path)
                    if found:
                        table[m.group(1)] = found
                for m in _SELF_ANNOTATED.finditer(body):
                    found = self.in_annotation(m.group(2), c.path)
                    if found:
                        table[m.group(1)] = found
                for d in self.members(c):
                    if d.kind not in (DefinitionKind.FIELD, DefinitionKind.VARIABLE):
                        continue
                    if ":" in d.signature:  # `session: Session`, with or without a value
                        annotation = d.signature.split(":", 1)[1].split("=", 1)[0]
                        found = self.in_annotation(annotation, c.path)
                    else:  # `objects = LogEntryManager()`
                        found = self.bound_type(d)
                    if found:
                        table[d.name] = found
            self._attrs[cls] = table
        return self._attrs[cls]

    def field_types(self, cls: Definition) -> dict[str, list[Definition]]:
        """A brace language's `attribute_types`: field name -> classes, from what the class
        and its bases declare (annotations, constructor parameters, `this.x = new X()`)."""
        if cls not in self._attrs:
            table: dict[str, list[Definition]] = {}
            for c in reversed(self.mro(cls)):  # the subclass's word wins
                body = "\n".join(self.lines(c.path)[c.range.start_line : c.range.end_line + 1])
                if c.path.suffix == ".go":  # after `type X struct {`
                    fields = body.split("\n", 1)[1] if "\n" in body else ""
                    found = [
                        (name.strip(), m.group(2))
                        for m in _FIELD_GO.finditer(fields)
                        for name in m.group(1).split(",")
                    ]
                else:
                    found = [(m.group(2), m.group(1)) for m in _FIELD_JAVA.finditer(body)]
                    for pattern in (_FIELD_ANNOTATED, _FIELD_BUILT):
                        found += [(m.group(1), m.group(2)) for m in pattern.finditer(body)]
                for field, type_name in found:
                    classes = self.classes(type_name, c.path, typed=c.path.suffix == ".go")
                    if classes:
                        table[field] = classes
            self._attrs[cls] = table
        return self._attrs[cls]

    def returns(self, d: Definition) -> list[Definition]:
        """The classes a function's or property's return annotation names."""
        m = _RETURNS.search(self.header(d))
        return self.in_annotation(m.group(1), d.path) if m else []


_LAST: list[tuple[tuple[int, Path, int], _Resolver]] = []


def _resolver(index: WorkspaceIndex, path: Path) -> _Resolver:
    """One resolver per request: typing the code and listing the members share its caches
    (same index, same file, nothing changed since)."""
    key = (id(index), path, index.generation)
    if _LAST and _LAST[0][0] == key:
        return _LAST[0][1]
    r = _Resolver(index, path)
    _LAST[:] = [(key, r)]
    return r


def _source(index: WorkspaceIndex, path: Path) -> str:
    return read_text(path, index.document_text(path)) or ""


def _function_node(root: Node, span: Span) -> Node | None:
    """The innermost function definition starting on the span's first line."""
    best = None
    node: Node | None = root
    while node is not None:  # down the nodes that hold the line: not the whole file
        if node.type == "function_definition" and node.start_point[0] == span.start_line:
            best = node
        node = next(
            (
                c
                for c in node.children
                if c.start_point[0] <= span.start_line <= c.end_point[0]
                and (
                    c.start_point[0] < span.start_line
                    or c.end_point[0] > c.start_point[0]
                    or c.type in ("function_definition", "decorated_definition")
                )
            ),
            None,
        )
    return best


def _header_node(source: str, span: Span) -> Node | None:
    """The function a header starts, parsed alone, for a buffer whose parse lost it (a
    docstring left open): its parameters type the code still, its body is gone."""
    lines = text_lines(source)[span.start_line : span.start_line + HEADER_LINES]
    header: list[str] = []
    for line in lines:
        header.append(line)
        if line.split("#")[0].rstrip().endswith(":"):
            break
    if not header or not header[0].lstrip().startswith(("def ", "async ")):
        return None
    lead = len(header[0]) - len(header[0].lstrip())
    snippet = "\n".join(h[lead:] if h[:lead].isspace() else h for h in header) + "\n    pass\n"
    children = _parse(snippet).children
    node = children[0] if children else None
    return node if node is not None and node.type == "function_definition" else None


def _enclosing_class(index: WorkspaceIndex, target: Definition) -> Definition | None:
    if not target.scope:
        return None
    owner = target.scope.rsplit(".", 1)[-1]
    # A method being typed: its class too may be lost to the parse until its `}` is written.
    for d in index.closed_outline(target.path):
        if d.name == owner and d.kind in CLASS_KINDS and d.range.encloses(target.range):
            return d
    return None


def typed_classes(
    index: WorkspaceIndex, path: Path, source: str, span: Span, target: Definition | None
) -> list[TypedClass]:
    """The project classes the code of ``span`` (Python) reaches through, most used first
    (ties in order of first use)."""
    return type_flow(index, path, source, span, target).classes


def type_flow(
    index: WorkspaceIndex, path: Path, source: str, span: Span, target: Definition | None
) -> TypeFlow:
    """The classes of `typed_classes`, and the project's uses of members on the code's names."""
    if not path.suffix.startswith(".py"):
        info = index.file_info(path)
        if info is None or info.language not in BRACE_LANGUAGES:
            return TypeFlow([], {})
        return _flow_by_names(index, path, info.language, source, span, target)
    node = _function_node(_parse(source), span) or _header_node(source, span)
    if node is None:
        return TypeFlow([], {})
    r = _resolver(index, path)
    owner = _enclosing_class(index, target) if target is not None else None
    env: dict[str, list[Definition]] = {}
    if owner is not None:
        params = node.child_by_field_name("parameters")
        first = next((c for c in (params.named_children if params else []) if c), None)
        decorators = _decorators(node)
        if first is not None and "staticmethod" not in decorators:
            env[_text(first).split(":")[0].strip()] = [owner]
        env["self"] = env.get("self", [owner])
    weights: dict[Definition, float] = {}
    order: list[Definition] = []
    local = _local_names(node)  # never module-level instances
    untyped: dict[str, set[str]] = {}  # receiver (`compiler`, `connection.ops`) -> members used

    ruled: set[Definition] = set()

    def note(classes: list[Definition], w: float, *, neighbour: bool = False) -> None:
        for c in classes:
            if c not in weights:
                order.append(c)
                weights[c] = 0.0
            weights[c] += w
            if not neighbour:
                ruled.add(c)

    def type_of(expr: Node | None, depth: int = 0) -> list[Definition]:
        if expr is None or depth > 6:
            return []
        if expr.type == "identifier":
            name = _text(expr)
            if name in env:
                return env[name]
            if name[:1].isupper():
                return r.classes(name)
            return r.instance_of(name) if name not in local else []
        if expr.type in ("boolean_operator", "conditional_expression"):
            sides = expr.named_children
            if expr.type == "conditional_expression":
                sides = sides[:1] + sides[2:]  # not the condition
            out: list[Definition] = []
            for side in sides:
                out += [c for c in type_of(side, depth + 1) if c not in out]
            return out
        if expr.type == "call":
            func = expr.child_by_field_name("function")
            if func is not None and func.type == "identifier":
                name = _text(func)
                if name == "super":
                    return [b for c in env.get("self", []) for b in r.mro(c)[1:]]
                built = r.classes(name)
                if built:
                    return built
                fns = [d for d in index.definitions(name) if d.name == name and d.scope is None]
                return [c for d in fns[:MAX_CANDIDATES] for c in r.returns(d)]
            if func is not None and func.type == "attribute":
                m = _member_of(func, depth)
                if m is not None:
                    return r.returns(m)
                last = _text(func.child_by_field_name("attribute"))
                return r.classes(last) if last[:1].isupper() else []  # `_cursor.Result(...)`
            return []
        if expr.type == "attribute":
            receivers = type_of(expr.child_by_field_name("object"), depth + 1)
            name = _text(expr.child_by_field_name("attribute"))
            for c in receivers:
                found = r.attribute_types(c).get(name)
                if found:
                    return found
                m = r.member(c, name)
                if m is not None and m.kind in (DefinitionKind.METHOD, DefinitionKind.PROPERTY):
                    return r.returns(m)  # a property: what it returns
            return []
        if expr.type in ("parenthesized_expression", "await"):
            inner = expr.named_children
            return type_of(inner[0], depth + 1) if inner else []
        return []

    def _member_of(attr: Node, depth: int) -> Definition | None:
        receivers = type_of(attr.child_by_field_name("object"), depth + 1)
        name = _text(attr.child_by_field_name("attribute"))
        for c in receivers:
            m = r.member(c, name)
            if m is not None:
                return m
        return None

    params = node.child_by_field_name("parameters")
    for p in params.named_children if params else []:
        if p.type in ("typed_parameter", "typed_default_parameter"):
            ann = _text(p.child_by_field_name("type"))
            name_node = p.child_by_field_name("name") or next(
                (c for c in p.named_children if c.type == "identifier"), None
            )
            found = r.in_annotation(ann)
            if name_node is not None and found:
                env[_text(name_node)] = found
                note(found, 1.0)
        elif p.type in ("identifier", "default_parameter"):  # `mapper` -> Mapper, by name
            name_node = p if p.type == "identifier" else p.child_by_field_name("name")
            name = _text(name_node)
            if name and name not in env and name not in ("self", "cls"):
                found = r.named_for(name)
                if found:
                    env[name] = found
                    note(found, NAMED_WEIGHT)
    if owner is not None:
        note([owner], 1.0)
    body = node.child_by_field_name("body")
    assigned: set[str] = set()  # the locals the code binds (`opts = ...`)
    for n in _walk(body) if body is not None else []:
        if n.type == "assignment":
            left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
            if left is None or left.type != "identifier":
                continue
            assigned.add(_text(left))
            typ = n.child_by_field_name("type")
            found = r.in_annotation(_text(typ)) if typ is not None else type_of(right)
            if found:
                env[_text(left)] = found
                note(found, 1.0)
        elif n.type == "as_pattern" or n.type == "with_item":
            value = n.named_children[0] if n.named_children else None
            alias = n.child_by_field_name("alias")
            if value is not None and alias is not None:
                found = type_of(value)
                target_name = _text(alias).strip()
                if found and target_name.isidentifier():
                    env[target_name] = found
        elif n.type == "for_statement":  # `for x in xs`, xs: list[X]
            left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
            if left is not None and left.type == "identifier" and _text(left) not in env:
                found = type_of(right)
                if found:
                    env[_text(left)] = found
        elif n.type == "call" and _text(n.child_by_field_name("function")) == "isinstance":
            args = n.child_by_field_name("arguments")
            named = args.named_children if args is not None else []
            if len(named) == 2 and named[0].type == "identifier":
                kinds = named[1].named_children if named[1].type == "tuple" else [named[1]]
                found = [c for k in kinds for c in r.classes(_text(k))]
                if found:
                    name = _text(named[0])
                    env[name] = env.get(name, []) + [c for c in found if c not in env.get(name, [])]
                    note(found, 1.0)
        elif n.type == "attribute":
            receiver = n.child_by_field_name("object")
            typed = type_of(receiver)
            note(typed, 1.0)
            note(type_of(n), 0.5)  # `self.session` stands for a Session the code may use
            if not typed and receiver is not None and _is_path(receiver):
                untyped.setdefault(_text(receiver), set()).add(
                    _text(n.child_by_field_name("attribute"))
                )
    for path_text, names in untyped.items():  # a receiver's members name its class
        note(r.defining(names), DUCK_WEIGHT)
        last = path_text.rsplit(".", 1)[-1]
        if last not in env and last not in ("self", "cls"):
            note(r.named_for(last), NAMED_WEIGHT)  # `self.engine.pool` -> Pool
    # What the project does with the code's names: the untyped ones get a class by it (as
    # neighbours), and every one's members say which of a class's members come next.
    table = member_uses(index)
    held = {p.rsplit(".", 1)[-1] for p in untyped} | _parameter_names(node) | assigned
    hints: Counter[str] = Counter()
    for name in sorted((held | env.keys()) - {"self", "cls"}):
        members = table.of(name)
        hints.update(members)
        if name not in env:
            note(r.by_uses(members), USES_WEIGHT, neighbour=True)
    # Unnamed neighbours: the classes and instances the file imports, which the rest of the
    # function may reach though the visible code does not yet; the more the file uses them,
    # the likelier.
    in_class: Counter[str] = Counter()  # the enclosing class's words: its methods tell most
    if owner is not None:
        lines = r.lines(path)  # the open buffer's, split once per request
        around = "\n".join(lines[owner.range.start_line : owner.range.end_line + 1])
        in_class = Counter(_WORD.findall(around))
        attrs = r.attribute_types(owner)  # what the class's methods reach through `self.x`
        for attr, count in Counter(re.findall(r"\bself\.(\w+)\.\w", around)).items():
            if attr in attrs:
                note(attrs[attr], IMPORT_WEIGHT * min(count, 4), neighbour=True)
    for name, uses in _imported_names(node, source).items():
        if name in env or name in local:
            continue
        nearby = in_class[name]
        found = r.classes(name) if name[:1].isupper() else r.instance_of(name)
        note(found, IMPORT_WEIGHT * (min(uses, 4) + 2 * min(nearby, 4)), neighbour=True)
    classes = [
        TypedClass(c, weights[c], neighbour=c not in ruled)
        for c in sorted(order, key=lambda c: -weights[c])
    ]
    return TypeFlow(classes, hints)


def _flow_by_names(
    index: WorkspaceIndex,
    path: Path,
    language: str,
    source: str,
    span: Span,
    target: Definition | None,
) -> TypeFlow:
    """TypeScript, JavaScript, Java, Go, Rust, as cheaply: no parse of the body, the names
    it writes. The enclosing class (``this.``, a Go receiver, a Rust ``impl``) and its
    ``extends`` bases; the project classes the code names (parameter and field types,
    ``new Foo()``, ``Foo{}``, ``Foo::new()``), weighted by mentions; and the receivers
    (``repo.save()``), by what the project does with those names."""
    r = _resolver(index, path)
    code = "\n".join(text_lines(source)[span.start_line : span.end_line + 1])
    weights: dict[Definition, float] = {}
    ruled: set[Definition] = set()

    def note(classes: list[Definition], w: float, *, neighbour: bool = False) -> None:
        for c in classes:
            weights[c] = weights.get(c, 0.0) + w
            if not neighbour:
                ruled.add(c)

    owner = None
    holders: list[Definition] = []  # the class, or a Rust `impl`'s / Go receiver's type
    if target is not None and target.scope:
        owner = _enclosing_class(index, target)
        holders = [owner] if owner is not None else r.classes(target.scope, path, typed=True)
        note(holders, 1.0)
    for name, n in Counter(_CAPITALIZED.findall(code)).items():
        note(r.classes(name), float(min(n, 4)))
    if language == "go":  # unexported types (`s *session`, `tFile{}`): where the tags see a type
        tags = index.file_tags(path)
        lowered = Counter(
            ref.name
            for ref in (tags.references if tags is not None else ())
            if ref.kind == "type"
            and not ref.name[:1].isupper()
            and span.start_line <= ref.range.start_line <= span.end_line
        )
        for name, n in sorted(lowered.items()):
            note(r.classes(name, typed=True), float(min(n, 4)))
    # The fields the code reaches members through: what the class declares they hold, else
    # what their names name (`this.#frameManager` -> FrameManager). A Rust or Go method is
    # outside its struct: the struct of the type it is declared on says.
    fields = r.field_types(holders[0]) if len(holders) == 1 else {}
    reach = _field_receiver(language, code)
    for name in sorted(set(reach.findall(code))):
        declared = fields.get(name)
        note(declared or r.named_for(name), 1.0 if declared else NAMED_WEIGHT)
    if language == "go":  # a parameter's or local's fields: `s.o.GetBlockSize()`, s *session
        for name, held in sorted(_go_typed(r, path, code).items()):
            fields_of = r.field_types(held)
            for field in sorted(set(_field_chain(name).findall(code))):
                if field in fields_of:
                    note(fields_of[field], 1.0)
    if len(holders) == 1:  # unnamed neighbours: what the type's methods reach through fields
        holder = holders[0]
        if owner is not None:  # the class holds them
            lines = r.lines(owner.path)
            around = "\n".join(lines[owner.range.start_line : owner.range.end_line + 1])
            uses = Counter(reach.findall(around))
        else:  # a Rust `impl`'s, a Go receiver's: its methods, wherever they are
            uses = Counter()
            for m in r.members(holder):
                if m.kind not in (DefinitionKind.METHOD, DefinitionKind.FUNCTION):
                    continue
                lines = r.lines(m.path)
                body = "\n".join(lines[m.range.start_line : m.range.end_line + 1])
                uses.update(_field_receiver(language, body).findall(body))
        for name, count in sorted(uses.items()):
            if name in fields:
                note(fields[name], IMPORT_WEIGHT * min(count, 4), neighbour=True)
    table = member_uses(index)
    hints: Counter[str] = Counter()
    for name in sorted(set(_RECEIVER.findall(code)) - {"this", "self", "super"}):
        note(r.named_for(name), NAMED_WEIGHT)  # `renderObject.x` -> RenderObject
        members = table.of(name, language)
        hints.update(members)
        note(r.by_uses(members), USES_WEIGHT, neighbour=True)
    order = sorted(weights, key=lambda c: (-weights[c], str(c.path), c.range.start_line))
    return TypeFlow([TypedClass(c, weights[c], neighbour=c not in ruled) for c in order], hints)


def _go_typed(r: _Resolver, path: Path, code: str) -> dict[str, Definition]:
    """The names a Go function's code binds to one project type: its receiver and
    parameters (`s *session`), `var v *version`, `t := &tFile{...}`."""
    out: dict[str, Definition] = {}
    for m in _GO_TYPED.finditer(code):
        name, type_name = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        found = r.classes(type_name, path, typed=True)
        if len(found) == 1 and name not in out:
            out[name] = found[0]
    return out


def _field_receiver(language: str, code: str) -> re.Pattern[str]:
    """What reaches a member through a field of the method's own type: ``this.x.``,
    ``self.x.``, and in Go the receiver the method's header names (``s.repo.`` in
    ``func (s *Server) ...``)."""
    if language == "go":
        m = _GO_RECEIVER.match(code)
        if m is not None:
            return _field_chain(m.group(1))
    return _FIELD_RECEIVER


def _field_chain(name: str) -> re.Pattern[str]:
    """`name.x.` (a member reached through the field `x` of what ``name`` holds): `x`."""
    return re.compile(rf"(?<![\w.]){re.escape(name)}\.([A-Za-z_]\w*)\.(?=[A-Za-z_])")


def _parameter_names(fn: Node) -> set[str]:
    params = fn.child_by_field_name("parameters")
    out = set()
    for p in params.named_children if params is not None else []:
        name = p if p.type == "identifier" else p.child_by_field_name("name")
        if name is not None and name.type == "identifier":
            out.add(_text(name))
    return out


def _imported_names(fn: Node, source: str) -> dict[str, int]:
    """The names the module's top-level ``from ... import`` statements bind, with how often
    the visible file uses each (at least once: the import)."""
    root = fn
    while root.parent is not None:
        root = root.parent
    names: list[str] = []
    for stmt in root.named_children:
        if stmt.type != "import_from_statement":
            continue
        for child in stmt.children_by_field_name("name"):
            alias = child.child_by_field_name("alias") if child.type == "aliased_import" else None
            names.append(_text(alias or child).rsplit(".", 1)[-1])
    words = Counter(_WORD.findall(source))
    return {n: max(1, words[n] - 1) for n in names}


def _in_tests(path: Path) -> bool:
    return any(part in ("test", "tests") for part in path.parts)


def _is_path(node: Node) -> bool:
    """``name`` or ``a.b.c``: a receiver whose text names the same object each time."""
    while node.type == "attribute":
        obj = node.child_by_field_name("object")
        if obj is None:
            return False
        node = obj
    return node.type == "identifier"


def _local_names(fn: Node) -> set[str]:
    """The names a function binds itself: parameters, assignment and loop targets."""
    out: set[str] = set()
    params = fn.child_by_field_name("parameters")
    for p in params.named_children if params is not None else []:
        name = p if p.type == "identifier" else p.child_by_field_name("name")
        if name is None:
            name = next((c for c in p.named_children if c.type == "identifier"), None)
        if name is not None:
            out.add(_text(name))
    body = fn.child_by_field_name("body")
    for n in _walk(body) if body is not None else []:
        if n.type in ("assignment", "augmented_assignment", "for_statement", "for_in_clause"):
            left = n.child_by_field_name("left")
            for leaf in _walk(left) if left is not None else []:
                if leaf.type == "identifier" and (
                    leaf.parent is None or leaf.parent.type != "attribute"
                ):
                    out.add(_text(leaf))
        elif n.type in ("as_pattern", "with_item"):
            alias = n.child_by_field_name("alias")
            if alias is not None:
                out.add(_text(alias).strip())
    return out


def _decorators(node: Node) -> set[str]:
    parent = node.parent
    if parent is None or parent.type != "decorated_definition":
        return set()
    return {_text(c).lstrip("@").strip() for c in parent.children if c.type == "decorator"}


def class_members(
    index: WorkspaceIndex, path: Path, classes: list[TypedClass]
) -> list[tuple[Definition, list[Definition], float]]:
    """For each typed class and then its bases (MRO order, each class once): the class,
    its members, and the weight it inherits (halved per step away from the typed class)."""
    r = _resolver(index, path)
    seen: dict[Definition, int] = {}
    out: list[tuple[Definition, list[Definition], float]] = []
    for tc in classes:
        for depth, c in enumerate(r.mro(tc.definition)):
            w = tc.weight / (1.0 + depth)
            if c in seen:
                i = seen[c]
                cls, members, old = out[i]
                out[i] = (cls, members, old + w)
                continue
            seen[c] = len(out)
            out.append((c, r.members(c), w))
    return out


def neighbour_only(index: WorkspaceIndex, path: Path, classes: list[TypedClass]) -> set[Definition]:
    """The classes (bases included) that only the file's neighbours lead to, no rule."""
    r = _resolver(index, path)
    ruled = {c for tc in classes if not tc.neighbour for c in r.mro(tc.definition)}
    return {c for tc in classes if tc.neighbour for c in r.mro(tc.definition)} - ruled


def base_names(index: WorkspaceIndex, cls: Definition) -> list[str]:
    """The names of the class's bases as written (for the outline's class line)."""
    head = _Resolver(index, cls.path).header(cls)
    start, end = head.find("("), head.rfind(")")
    if start < 0 or end < start:
        return []
    return [p.strip() for p in head[start + 1 : end].split(",") if p.strip()]

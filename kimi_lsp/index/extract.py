"""Tags from a parse tree: definitions, references and imports of one file.

The work is split so that worker processes and the database exchange compact, marshal-able
tuples (`RawTags`) rather than objects: `extract_raw` produces them, `decode` turns them into
`FileTags` for one file when a query needs it.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tree_sitter import Node, Parser, Query, QueryCursor, Tree

from kimi_lsp.index.languages import (
    capture_names,
    new_parser,
    query_source,
    tags_query,
    ts_language,
)
from kimi_lsp.index.model import (
    Definition,
    DefinitionKind,
    FileTags,
    Import,
    Reference,
    Span,
)
from kimi_lsp.positions import byte_to_character

# Raw layouts (tuples of str/int/None, stored with marshal):
#   definition: (name, kind, sl, sc, el, ec, nsl, nsc, nel, nec, signature, scope, doc)
#               doc = (sl, sc, el, ec) | None
#   reference:  (name, kind, sl, sc, el, ec, enclosing)
#   import:     (module, sl, sc, el, ec)
#   RawTags:    (language, content_hash, line_count, size, defs, refs, imports)
RawTags = tuple[
    str, str, int, int, list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]
]
# Where each part sits in RawTags (marshal keeps tuples fast; the names keep them readable).
TAG_LANGUAGE: Final = 0
TAG_HASH: Final = 1
TAG_LINES: Final = 2
TAG_SIZE: Final = 3
TAG_DEFS: Final = 4
TAG_REFS: Final = 5
TAG_IMPORTS: Final = 6

_KINDS: dict[str, DefinitionKind] = {k.value: k for k in DefinitionKind}
_KINDS.update(
    {
        "object": DefinitionKind.CLASS,
        "record": DefinitionKind.CLASS,
        "trait": DefinitionKind.INTERFACE,
        "namespace": DefinitionKind.MODULE,
        "package": DefinitionKind.MODULE,
    }
)
# A function defined directly inside one of these is a method.
_CONTAINERS = frozenset(
    {
        DefinitionKind.CLASS,
        DefinitionKind.INTERFACE,
        DefinitionKind.STRUCT,
        DefinitionKind.ENUM,
    }
)
_CALLABLES = frozenset({DefinitionKind.FUNCTION, DefinitionKind.METHOD, DefinitionKind.CONSTRUCTOR})
# Plain str values (what is stored; `kind.value` on an enum member costs a descriptor call).
_VALUES: dict[DefinitionKind, str] = {k: str(k.value) for k in DefinitionKind}
_FUNCTION, _CONSTANT, _VARIABLE = (
    DefinitionKind.FUNCTION,
    DefinitionKind.CONSTANT,
    DefinitionKind.VARIABLE,
)
# C/C++ tags name the declarator; the definition the user means is the whole declaration.
_C_WIDEN = frozenset(
    {
        "function_declarator",
        "pointer_declarator",
        "reference_declarator",
        "parenthesized_declarator",
        "function_definition",
        "declaration",
        "field_declaration",
        "template_declaration",
    }
)
_C_STOP = frozenset({"function_definition", "declaration", "field_declaration"})
_SIGNATURE_MAX = 200
_UPPER = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def content_hash(source: bytes) -> str:
    return hashlib.blake2b(source, digest_size=16).hexdigest()


_MARK_HIGH = bytes(range(128)) + b"\x80" * 128  # bytes.translate: non-ASCII -> 0x80


class Columns:
    """Byte columns -> UTF-16 columns; free for ASCII files and, in other files, on the lines
    that are ASCII (most of them)."""

    __slots__ = ("_line_starts", "_source", "_wide", "ascii")

    def __init__(self, source: bytes, line_starts: list[int] | None = None) -> None:
        self._source = source
        self.ascii = source.isascii()
        self._line_starts = line_starts
        self._wide: dict[int, int] | None = None

    @property
    def wide(self) -> dict[int, int]:
        """Row -> start byte of every row holding a non-ASCII byte: only on those rows do the
        two kinds of column differ. (Found run by run, without splitting the file in lines.)"""
        if self._wide is None:
            wide: dict[int, int] = {}
            if not self.ascii:
                # Searched with bytes.find in a copy where every non-ASCII byte is 0x80, a row
                # at a time: a regex over the file cost 2% of the extraction.
                source = self._source
                marked = source.translate(_MARK_HIGH)
                row = last = 0
                at = marked.find(b"\x80")
                while at >= 0:
                    row += source.count(b"\n", last, at)
                    wide[row] = source.rfind(b"\n", 0, at) + 1
                    end = source.find(b"\n", at)
                    if end < 0:
                        break
                    row += 1
                    last = end + 1
                    at = marked.find(b"\x80", last)
            self._wide = wide
        return self._wide

    def col(self, point: tuple[int, int]) -> int:
        row, byte_col = point
        if self.ascii or byte_col == 0:
            return byte_col
        if self._line_starts is not None:  # an open buffer's: no need to scan the file
            starts = self._line_starts
            start = starts[row] if row < len(starts) else len(self._source)
        else:
            found = self.wide.get(row)
            if found is None:  # an ASCII row
                return byte_col
            start = found
        prefix = self._source[start : start + byte_col]
        if prefix.isascii():
            return byte_col
        return byte_to_character(prefix, byte_col, "utf-16")

    def span(self, node: Node) -> tuple[int, int, int, int]:
        s, e = node.start_point, node.end_point
        if self.ascii:
            return (s[0], s[1], e[0], e[1])
        return (s[0], self.col(s), e[0], self.col(e))


def _capture_roles(language: str) -> dict[str, tuple[str, str]]:
    """capture name -> ("def"|"ref"|"import", kind); other captures are ignored."""
    query = tags_query(language)
    roles: dict[str, tuple[str, str]] = {}
    for i in range(query.capture_count):
        cap = query.capture_name(i)
        if cap.startswith("definition."):
            roles[cap] = ("def", cap.split(".", 2)[1])
        elif cap.startswith("reference."):
            roles[cap] = ("ref", cap.split(".", 2)[1])
        elif cap == "import":
            roles[cap] = ("import", "")
        elif cap == "import.member":  # a name in `from M import name`: maybe module M.name
            roles[cap] = ("import", "member")
    return roles


# Per language, per pattern index: the pattern's captures that matter, [(capture, role,
# kind)], or only the kind (a str) when that is one reference capture (most matches are).
_Plan = list[tuple[str, str, str]] | str
_PLANS: dict[str, list[_Plan]] = {}


def _plans(language: str) -> list[_Plan]:
    """The plan of every pattern, read from its text (the bindings do not list a pattern's
    captures): the `@names` in it that are capture names of the query."""
    query = tags_query(language)
    source = query_source(language).encode("utf-8")
    roles = _capture_roles(language)
    plans: list[_Plan] = []
    for i in range(query.pattern_count):
        text = source[query.start_byte_for_pattern(i) : query.end_byte_for_pattern(i)]
        caps = dict.fromkeys(c for c in capture_names(text.decode("utf-8")) if c in roles)
        plan = [(cap, *roles[cap]) for cap in caps]
        plans.append(plan[0][2] if len(plan) == 1 and plan[0][1] == "ref" else plan)
    return plans


def _widen_c(node: Node) -> Node:
    current = node
    while current.parent is not None and current.parent.type in _C_WIDEN:
        current = current.parent
        if current.type in _C_STOP:
            break
    return current


_RECEIVERS = frozenset({"go", "rust", "cpp", "lua"})


def _type_name(node: Node | None, source: bytes) -> str | None:
    """The plain type name in a receiver or impl type (`*Server`, `Cache<T>`, `a::B`)."""
    while node is not None:
        if node.type in ("type_identifier", "identifier"):
            return source[node.start_byte : node.end_byte].decode("utf-8", "replace")
        inner = node.child_by_field_name("type") or node.child_by_field_name("name")
        if inner is None:
            inner = next((c for c in node.named_children if "type" in c.type), None)
        node = inner
    return None


def _owner(dnode: Node, name: Node, language: str, source: bytes) -> str | None:
    """The type a method belongs to when the syntax names it outside any class body:
    Go receivers, Rust `impl` blocks, C++ `Type::method` definitions, Lua `Table.f`."""
    if language == "go":
        if dnode.type == "method_declaration":
            receiver = dnode.child_by_field_name("receiver")
            params = receiver.named_children if receiver is not None else []
            return _type_name(params[0].child_by_field_name("type"), source) if params else None
        return None
    if language == "rust":
        body = dnode.parent
        if dnode.type == "function_item" and body is not None and body.type == "declaration_list":
            impl = body.parent
            if impl is not None and impl.type == "impl_item":
                return _type_name(impl.child_by_field_name("type"), source)
        return None
    if language == "lua":  # `function Inventory.new()`, `function Inventory:add()`
        index = name.parent
        if index is not None and index.type in ("dot_index_expression", "method_index_expression"):
            table = index.child_by_field_name("table")
            if table is not None:
                return source[table.start_byte : table.end_byte].decode("utf-8", "replace")
        return None
    qualified = name.parent  # cpp: `double Matrix::at(...)`
    if qualified is not None and qualified.type == "qualified_identifier":
        scope = qualified.child_by_field_name("scope")
        if scope is not None:
            text = source[scope.start_byte : scope.end_byte].decode("utf-8", "replace")
            return text.replace("::", ".").strip(".") or None
    return None


@functools.cache
def _field_id(language: str, field: str) -> int | None:
    return ts_language(language).field_id_for_name(field)


# Python's docstrings, found by kind id (comparing ids skips building a str per node):
# (the `body` field, the ids of expression_statement, the ids of string).
_PyDocIds = tuple[int | None, frozenset[int], frozenset[int]]


@functools.cache
def _python_doc_ids() -> _PyDocIds:
    lang = ts_language("python")
    kinds = [lang.node_kind_for_id(i) for i in range(lang.node_kind_count)]
    return (
        _field_id("python", "body"),
        frozenset(i for i, k in enumerate(kinds) if k == "expression_statement"),
        frozenset(i for i, k in enumerate(kinds) if k == "string"),
    )


def _python_doc(node: Node, cols: Columns, ids: _PyDocIds) -> tuple[int, int, int, int] | None:
    """The span of a Python definition's docstring: the string its body starts with."""
    body_id, statements, strings = ids
    body = node.child_by_field_id(body_id) if body_id is not None else None
    # named_child(0), not named_children[0]: the latter builds a list of every statement.
    if body is None or not body.named_child_count:
        return None
    first = body.named_child(0)
    if first.kind_id not in statements or not first.named_child_count:
        return None
    inner = first.named_child(0)
    return cols.span(inner) if inner.kind_id in strings else None


def _doc_node_range(node: Node) -> tuple[Node, Node] | None:
    """The block of comments right above a definition (Python's docstrings: `_python_doc`)."""
    target = node
    # Comments sit before the outermost wrapper (export, decorators, attributes, templates).
    while target.parent is not None and target.parent.start_byte == target.start_byte:
        target = target.parent
    if target.parent is not None and target.parent.type in (
        "export_statement",
        "decorated_definition",
    ):
        target = target.parent
    prev = target.prev_named_sibling
    if prev is None or "comment" not in prev.type or prev.end_point[0] < target.start_point[0] - 1:
        return None
    last = prev
    first = prev
    while True:
        before = first.prev_named_sibling
        if before is None or "comment" not in before.type:
            break
        if before.end_point[0] < first.start_point[0] - 1:
            break
        first = before
    return first, last


def _signature(source: bytes, start: int, name_start: int, name_below: bool) -> str:
    """The definition's first line (it starts at byte `start`), or the name's line when the
    first holds only annotations/attributes (`@Override`, `#[derive(..)]`, `[Serializable]`)
    and the name is on a later line (`name_below`)."""
    head = source[start : start + 2]
    if head == b"#[" or (name_below and head[:1] in (b"@", b"[")):
        start = name_start
    line_start = source.rfind(b"\n", 0, start) + 1
    line_end = source.find(b"\n", start)
    if line_end < 0:
        line_end = len(source)
    text = source[line_start:line_end].decode("utf-8", "replace").strip()
    return text[:_SIGNATURE_MAX]


# (node start, node end, node type, name start, the query's kind) of one definition.
DefKey = tuple[int, int, str, int, str]


@dataclass(slots=True)
class Extraction:
    """Raw tags of a file or of one region, with the byte offsets incremental updates need."""

    defs: list[tuple[Any, ...]]
    refs: list[tuple[Any, ...]]
    imports: list[tuple[Any, ...]]
    def_bytes: list[DefKey]  # per definition
    ref_bytes: list[int]  # start byte per reference
    import_bytes: list[int]  # start byte per import
    # Of a region: the definitions its query matched whose node reaches beyond the region
    # (those enclosing it, normally). An edit inside the region that changes these (the value
    # of `const f = () => ..` no longer a function makes `f` a constant) needs a full extraction.
    beyond: list[DefKey] = field(default_factory=list)


Outer = list[tuple[int, str, DefinitionKind]]  # enclosing definitions: (end byte, qualified, kind)


def extract_region(
    source: bytes,
    language: str,
    tree: Tree,
    cols: Columns,
    lo: int = 0,
    hi: int | None = None,
    outer: Outer | None = None,
    *,
    offsets: bool = True,
) -> Extraction:
    """Tags of the nodes lying within bytes [lo, hi] (the whole file by default).

    `outer` seeds the definitions enclosing the region, so scopes, method kinds and
    enclosing names come out as a whole-file extraction would give them. Without `offsets`
    the byte offsets (`def_bytes`, `ref_bytes`, `import_bytes`: what an open buffer's
    incremental updates need) stay empty: a worker indexing files from disk needs only tags.
    """
    plans = _PLANS.get(language)
    if plans is None:
        plans = _PLANS[language] = _plans(language)
    cursor = QueryCursor(tags_query(language))
    whole = hi is None
    if hi is None:
        hi = len(source)
    else:
        cursor.set_byte_range(lo, hi)

    # name node start byte -> (pattern index, kind, def node, name node)
    defs: dict[int, tuple[int, str, Node, Node]] = {}
    refs: dict[int, tuple[int, str, Node]] = {}
    imports: dict[int, tuple[Node, str]] = {}
    get_ref = refs.get
    for pattern, caps in cursor.matches(tree.root_node):
        plan = plans[pattern]
        if isinstance(plan, str):  # one reference capture, the common case: its kind
            names = caps.get("name")
            if names:
                name = names[0]
                key = name.start_byte
                old_ref = get_ref(key)
                if old_ref is None or pattern < old_ref[0]:
                    refs[key] = (pattern, plan, name)
            continue
        names = caps.get("name")
        for cap, what, kind in plan:
            nodes = caps.get(cap, ())  # a reference's capture is disabled: only its name counts
            if what == "import":
                for n in nodes:
                    if whole or (n.start_byte >= lo and n.end_byte <= hi):
                        imports.setdefault(n.start_byte, (n, kind))
            elif names:
                name = names[0]
                key = name.start_byte
                if what == "def":
                    old = defs.get(key)
                    if nodes and (old is None or pattern < old[0]):
                        defs[key] = (pattern, kind, nodes[0], name)
                else:
                    old_ref = get_ref(key)
                    if old_ref is None or pattern < old_ref[0]:
                        refs[key] = (pattern, kind, name)

    # Definitions in source order, outer before inner, with scopes from a stack sweep.
    items: list[tuple[int, int, int, str, Node, Node]] = []
    beyond: list[DefKey] = []
    c_like = language in ("c", "cpp")
    for _, kind, dnode, name in defs.values():
        if c_like:
            dnode = _widen_c(dnode)
        if not whole and (dnode.start_byte < lo or dnode.end_byte > hi):
            # Matches of the region's siblings (patterns rooted at a common parent) do not
            # depend on it; those enclosing it, or naming something in it, may.
            if (dnode.end_byte > lo and dnode.start_byte < hi) or lo <= name.start_byte < hi:
                beyond.append((dnode.start_byte, dnode.end_byte, dnode.type, name.start_byte, kind))
            continue
        items.append((dnode.start_byte, -dnode.end_byte, name.start_byte, kind, dnode, name))
    items.sort()  # by (start, -end, name start): name starts differ, nodes are never compared

    raw_defs: list[tuple[Any, ...]] = []
    def_bytes: list[DefKey] = []
    def_bounds: list[tuple[int, int, str]] = []  # (start, end, qualified name) in source order
    stack: Outer = list(outer or ())
    ascii_cols = cols.ascii
    # Rows where columns need converting; None when that is cheaper asked point by point (a
    # region of an open buffer, whose line starts are known: a scan would cost every edit).
    wide = cols.wide if whole or cols.ascii else None
    span = cols.span
    receivers = language in _RECEIVERS
    python = language == "python"
    py_doc = _python_doc_ids() if python else None
    kinds_get = _KINDS.get
    for start, neg_end, name_start, kind_s, dnode, name in items:
        while stack and stack[-1][0] <= start:
            stack.pop()
        scope = stack[-1][1] if stack else None
        if receivers:
            owner = _owner(dnode, name, language, source)
            if owner:
                scope = f"{scope}.{owner}" if scope else owner
        kind = kinds_get(kind_s, _VARIABLE)
        if kind is _FUNCTION and stack:
            if stack[-1][2] in _CONTAINERS:
                kind = DefinitionKind.METHOD
            elif c_like and stack[-1][2] in _CALLABLES:
                continue  # `Matrix m(n, n);` in a body parses as a function declaration
        name_end = name.end_byte
        text = source[name_start:name_end].decode("utf-8", "replace")
        if python and kind is _CONSTANT and not _UPPER.match(text):
            kind = _VARIABLE
        if py_doc is not None:
            doc_span = _python_doc(dnode, cols, py_doc)
        else:
            doc_span = None
            doc = _doc_node_range(dnode)
            if doc is not None:
                a, b = span(doc[0]), span(doc[1])
                doc_span = (a[0], a[1], b[2], b[3])
        dp: tuple[int, int] = dnode.start_point
        ep: tuple[int, int] = dnode.end_point
        nsp: tuple[int, int] = name.start_point
        # A name on one line ends len(bytes) after it starts (cheaper than asking the node).
        nep = name.end_point if "\n" in text else (nsp[0], nsp[1] + name_end - name_start)
        if not ascii_cols:  # only the points on rows holding a non-ASCII byte change
            if wide is None or dp[0] in wide:
                dp = (dp[0], cols.col(dp))
            if wide is None or ep[0] in wide:
                ep = (ep[0], cols.col(ep))
            if wide is None or nsp[0] in wide:
                nsp = (nsp[0], cols.col(nsp))
            if wide is None or nep[0] in wide:
                nep = (nep[0], cols.col(nep))
        end = -neg_end
        raw_defs.append(
            (
                text,
                _VALUES[kind],
                dp[0],
                dp[1],
                ep[0],
                ep[1],
                nsp[0],
                nsp[1],
                nep[0],
                nep[1],
                _signature(source, start, name_start, dp[0] != nsp[0]),
                scope,
                doc_span,
            )
        )
        if offsets:
            def_bytes.append((start, end, dnode.type, name_start, kind_s))
        qualified = f"{scope}.{text}" if scope else text
        stack.append((end, qualified, kind))
        def_bounds.append((start, end, qualified))

    # References: not the definitions' own names; enclosing = innermost definition.
    raw_refs: list[tuple[Any, ...]] = []
    ref_bytes: list[int] = []
    di = 0
    ndefs = len(def_bounds)
    next_def = def_bounds[0][0] if ndefs else -1
    rstack: list[tuple[int, str]] = [(end, q) for end, q, _ in outer or ()]
    enclosing = rstack[-1][1] if rstack else None
    until = rstack[-1][0] if rstack else -1  # where `enclosing` ends
    add_ref, add_at = raw_refs.append, ref_bytes.append
    for start in sorted(refs):  # keys are the names' start bytes
        if start in defs:
            continue  # a definition's own name
        _, kind_s, n = refs[start]
        end = n.end_byte
        if not whole and (start < lo or end > hi):
            continue
        if start >= until or 0 <= next_def <= start:  # the innermost definition changes
            while di < ndefs and def_bounds[di][0] <= start:
                ds, de, q = def_bounds[di]
                while rstack and rstack[-1][0] <= ds:
                    rstack.pop()
                rstack.append((de, q))
                di += 1
            next_def = def_bounds[di][0] if di < ndefs else -1
            while rstack and rstack[-1][0] <= start:
                rstack.pop()
            enclosing = rstack[-1][1] if rstack else None
            until = rstack[-1][0] if rstack else 1 << 62
        text = source[start:end].decode("utf-8", "replace")
        row, col = n.start_point
        if "\n" in text:  # not a plain name: ask the node where it ends
            erow, ecol = n.end_point
        else:  # a name on one line ends len(bytes) later
            erow, ecol = row, col + end - start
        if ascii_cols or (wide is not None and row not in wide and erow not in wide):
            add_ref((text, kind_s, row, col, erow, ecol, enclosing))
        else:
            scol, ecol = cols.col((row, col)), cols.col((erow, ecol))
            add_ref((text, kind_s, row, scol, erow, ecol, enclosing))
        if offsets:
            add_at(start)

    raw_imports: list[tuple[Any, ...]] = []
    import_bytes: list[int] = []
    for at, (n, how) in sorted(imports.items()):
        module = source[n.start_byte : n.end_byte].decode("utf-8", "replace").strip("\"'<>` \t")
        if how == "member":  # `from . import errors` imports the module `.errors` if it exists
            field = _field_id(language, "module_name")
            parent = n.parent.child_by_field_id(field) if n.parent and field is not None else None
            if parent is None:
                continue
            base = source[parent.start_byte : parent.end_byte].decode("utf-8", "replace")
            module = f"{base}{'' if base.endswith('.') else '.'}{module}"
        if module:
            raw_imports.append((module, *cols.span(n)))
            if offsets:
                import_bytes.append(at)
    return Extraction(raw_defs, raw_refs, raw_imports, def_bytes, ref_bytes, import_bytes, beyond)


def line_count(source: bytes) -> int:
    return source.count(b"\n") + (1 if source and not source.endswith(b"\n") else 0)


def raw_tags(
    source: bytes, language: str, ex: Extraction, line_starts: list[int] | None = None
) -> RawTags:
    if line_starts is None:
        lines = line_count(source)
    else:  # one start per newline, plus the first line's
        lines = len(line_starts) - (0 if source and not source.endswith(b"\n") else 1)
    return (
        language,
        content_hash(source),
        lines,
        len(source),
        ex.defs,
        ex.refs,
        ex.imports,
    )


class _Parsers(threading.local):
    """One parser per language and thread: a worker parses thousands of files, and a new
    parser per file cost ~5% of the parse (its buffers are allocated afresh each time)."""

    def __init__(self) -> None:
        self.by_language: dict[str, Parser] = {}


_PARSERS = _Parsers()


def _parser(language: str) -> Parser:
    parsers = _PARSERS.by_language
    parser = parsers.get(language)
    if parser is None:
        parser = parsers[language] = new_parser(language)
    return parser


def extract_raw(source: bytes, language: str, tree: Tree | None = None) -> RawTags:
    """Parse `source` (unless `tree` is given) and extract its tags as raw tuples."""
    if tree is None:
        tree = _parser(language).parse(source)
    ex = extract_region(source, language, tree, Columns(source), offsets=False)
    return raw_tags(source, language, ex)


def decode_definitions(path: Path, raw: RawTags | Sequence[Any]) -> tuple[Definition, ...]:
    """Only the definitions of raw tags (cheaper than `decode` when references are not needed)."""
    language = raw[0]
    return tuple(
        Definition(
            d[0],
            _KINDS[d[1]],
            path,
            Span(d[2], d[3], d[4], d[5]),
            Span(d[6], d[7], d[8], d[9]),
            d[10],
            d[11],
            Span(*d[12]) if d[12] is not None else None,
            language,
        )
        for d in raw[4]
    )


def decode(
    path: Path, raw: RawTags | Sequence[Any], defs: tuple[Definition, ...] | None = None
) -> FileTags:
    """Raw tuples -> `FileTags` for `path` (reusing already decoded `defs` when given)."""
    language, chash, line_count, size, _, rrefs, rimports = raw
    if defs is None:
        defs = decode_definitions(path, raw)
    refs = tuple(Reference(r[0], r[1], path, Span(r[2], r[3], r[4], r[5]), r[6]) for r in rrefs)
    imps = tuple(Import(i[0], path, Span(i[1], i[2], i[3], i[4])) for i in rimports)
    return FileTags(path, language, chash, defs, refs, imps, line_count, size)


# Languages whose blocks are brackets: a body being typed leaves its `{` open.
BRACKET_LANGUAGES = frozenset(
    ("typescript", "tsx", "javascript", "java", "go", "rust", "c", "cpp", "c_sharp", "php",
     "scala")
)  # fmt: skip
_PAIRS = {"{": "}", "(": ")", "[": "]", "${": "}", "#{": "}"}


@functools.cache
def _bracket_query(language: str) -> Query:
    lang = ts_language(language)
    tokens = [t for t in (*_PAIRS, "}", ")", "]") if lang.id_for_node_kind(t, False) is not None]
    alternatives = " ".join(f'"{t}"' for t in dict.fromkeys(tokens))
    return Query(lang, f"[{alternatives}] @bracket")


def close_brackets(source: bytes, language: str, tree: Tree | None = None) -> bytes | None:
    """``source`` with the brackets it leaves open closed at its end, on a line of their
    own, or None when it leaves none open (or its blocks are not brackets). A function
    being typed has no closing ``}`` yet, and the parse then loses it and often the class
    around it; closed, they parse as what the user is writing. The brackets are the
    parse's tokens (``tree``'s when given: an open buffer's), so those in strings and
    comments do not count; a bracket the parse made up (a MISSING node) is not the user's."""
    if language not in BRACKET_LANGUAGES:
        return None
    if tree is None:
        tree = _parser(language).parse(source)
    if not tree.root_node.has_error:
        return None
    found = QueryCursor(_bracket_query(language)).captures(tree.root_node).get("bracket", [])
    open_: list[str] = []
    for node in sorted(found, key=lambda n: n.start_byte):
        if node.is_missing:
            continue
        token = node.type
        if token in _PAIRS:
            open_.append(_PAIRS[token])
        elif token in open_:  # what it closes; the brackets opened inside stay unclosed
            del open_[len(open_) - 1 - open_[::-1].index(token) :]
    if not open_:
        return None
    return source + b"\n" + "".join(reversed(open_)).encode()


def extract_tags(path: Path, source: bytes, language: str) -> FileTags:
    """Parse and extract one file's tags (the simple entry point for tests and tools)."""
    return decode(path, extract_raw(source, language))

"""Per-language tags on realistic fixture files: definitions with the right kinds and scopes,
references with their enclosing definition, imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimi_lsp.index import DefinitionKind as K
from kimi_lsp.index.extract import Columns, extract_region, extract_tags
from kimi_lsp.index.languages import LANGUAGES, language_for, new_parser, tags_query

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "index" / "langs"

# file -> (definitions as {qualified name: kind} that must be present,
#          references as {(name, enclosing)} that must be present, imports in order)
CASES: dict[str, tuple[dict[str, K], set[tuple[str, str | None]], list[str]]] = {
    "shapes.py": (
        {
            "DEFAULT_SCALE": K.CONSTANT,
            "registry": K.VARIABLE,
            "Shape": K.CLASS,
            "Shape.area": K.METHOD,
            "Circle": K.CLASS,
            "Circle.__init__": K.METHOD,
            "Circle.sides": K.FIELD,
            "total_area": K.FUNCTION,
        },
        {("Shape", "Circle"), ("to_metres", "Circle.__init__"), ("Circle", "make_unit_circle")},
        # `from M import n` also names the module M.n, which exists when n is a submodule
        # (`from . import errors`); the resolver keeps only what names a file.
        [
            "math",
            "dataclasses",
            "dataclasses.dataclass",
            ".units",
            ".units.Length",
            ".units.to_metres",
        ],
    ),
    "widgets.js": (
        {
            "MAX_WIDGETS": K.CONSTANT,
            "Widget": K.CLASS,
            "Widget.constructor": K.CONSTRUCTOR,
            "Widget.draw": K.METHOD,
            "Widget.count": K.FIELD,
            "createWidget": K.FUNCTION,
            "destroyWidget": K.FUNCTION,
        },
        {("render", "Widget.draw"), ("Widget", "createWidget"), ("Component", "Widget")},
        ["./dom.js", "./util"],
    ),
    "service.ts": (
        {
            "UserId": K.TYPE,
            "Role": K.ENUM,
            "User": K.INTERFACE,
            "User.greet": K.METHOD,
            "UserService": K.CLASS,
            "UserService.find": K.METHOD,
            "UserService.cache": K.FIELD,
            "handle": K.FUNCTION,
        },
        {("UserService", "handle"), ("Repository", "UserService"), ("UserId", "User")},
        ["./http", "./db"],
    ),
    "App.tsx": (
        {"Props": K.TYPE, "App": K.FUNCTION, "Layout": K.CLASS, "Layout.render": K.METHOD},
        {("Layout", "App"), ("Button", "App"), ("formatTitle", "useTitle")},
        ["react", "./Button"],
    ),
    "server.go": (
        {
            "MaxConns": K.CONSTANT,
            "defaultAddr": K.VARIABLE,
            "Handler": K.INTERFACE,
            "Handler.Serve": K.METHOD,  # an interface's method: what its outline lists
            "Server": K.STRUCT,
            "Server.Addr": K.FIELD,
            "ID": K.TYPE,
            "New": K.FUNCTION,
            "Server.Start": K.METHOD,  # scoped by its receiver
        },
        {("ListenAndServe", "Server.Start"), ("Server", "New")},
        ["fmt", "net/http", "example.com/app/store"],
    ),
    "lib.rs": (
        {
            "VERSION": K.CONSTANT,
            "Cache": K.STRUCT,
            "Cache.entries": K.FIELD,
            "Mode": K.ENUM,
            "Key": K.TYPE,
            "Store": K.INTERFACE,
            "Store.get": K.METHOD,  # a required method, declared without a body
            "Cache.new": K.METHOD,  # scoped by its `impl Cache` block
            "build": K.FUNCTION,
            "square": K.MACRO,
            "config": K.MODULE,
        },
        {("Config", "build"), ("println", "build"), ("Key", "Cache.insert")},
        ["std::collections::HashMap", "crate::config::Config", "config"],
    ),
    "Account.java": (
        {
            "Account": K.CLASS,
            "Account.Account": K.CONSTRUCTOR,
            "Account.deposit": K.METHOD,
            "Account.balance": K.FIELD,
            "Ledger": K.INTERFACE,
            "Currency": K.ENUM,
            "Currency.EUR": K.CONSTANT,
            "Money": K.CLASS,
        },
        {("record", "Account.deposit"), ("Account", "Account.compareTo")},
        ["java.util.List", "com.example.bank.audit.Auditor"],
    ),
    "buffer.c": (
        {
            "BUF_MIN": K.MACRO,
            "MAX": K.MACRO,
            "buffer_t": K.TYPE,
            "mode": K.TYPE,
            "mode.MODE_READ": K.CONSTANT,
            "buffer_grow": K.FUNCTION,
            "buffer_append": K.FUNCTION,
        },
        {("buffer_grow", "buffer_append"), ("realloc", "buffer_grow"), ("MAX", "buffer_grow")},
        ["stdlib.h", "buffer.h"],
    ),
    "matrix.cpp": (
        {
            "linalg": K.MODULE,
            "linalg.Row": K.TYPE,
            "linalg.Matrix": K.CLASS,
            "linalg.Matrix.at": K.METHOD,
            "linalg.Matrix.rows_": K.FIELD,
            "linalg.identity": K.FUNCTION,
        },
        {("Matrix", "linalg.identity"), ("Row", "linalg.Matrix.data_")},
        ["vector", "matrix.hpp"],
    ),
    "order.rb": (
        {
            "Shop": K.MODULE,
            "Shop.TAX_RATE": K.CONSTANT,
            "Shop.Order": K.CLASS,
            "Shop.Order.total": K.METHOD,
            "Shop.Order.from_json": K.METHOD,
        },
        {("subtotal", "Shop.Order.total"), ("LineItem", "Shop.Order.from_json")},
        ["json", "line_item"],
    ),
    "inventory.lua": (
        {
            "Inventory": K.MODULE,
            "Inventory.new": K.FUNCTION,
            "Inventory.add": K.METHOD,
            "serialize": K.FUNCTION,
        },
        {("setmetatable", "Inventory.new"), ("encode", "serialize")},
        ["dkjson"],
    ),
    "Repository.cs": (
        {
            "Shop.Data": K.MODULE,
            "Shop.Data.ProductRepository": K.CLASS,
            "Shop.Data.ProductRepository.ProductRepository": K.CONSTRUCTOR,
            "Shop.Data.ProductRepository.Add": K.METHOD,
            "Shop.Data.ProductRepository.Count": K.PROPERTY,
            "Shop.Data.ProductRepository.items": K.FIELD,
            "Shop.Data.IRepository": K.INTERFACE,
            "Shop.Data.Point": K.STRUCT,
            "Shop.Data.Status": K.ENUM,
        },
        {
            ("Log", "Shop.Data.ProductRepository.Add"),
            ("IRepository", "Shop.Data.ProductRepository"),
        },
        ["System.Collections.Generic", "Shop.Models"],
    ),
    "Cart.php": (
        {
            "App\\Shop": K.MODULE,
            "Cart": K.CLASS,
            "Cart.MAX_ITEMS": K.CONSTANT,
            "Cart.items": K.FIELD,
            "Cart.add": K.METHOD,
            "cart_total": K.FUNCTION,
        },
        {("BaseCart", "Cart"), ("Countable", "Cart")},
        ["App\\Models\\Product", "helpers.php"],
    ),
    "Queue.scala": (
        {
            "Queue.empty": K.METHOD,  # `object Queue` (the trait Queue is also defined)
            "ArrayQueue": K.CLASS,
            "ArrayQueue.push": K.METHOD,
        },
        {("Queue", "ArrayQueue"), ("ArrayQueue", "Queue.empty")},
        [],
    ),
}


def test_every_language_has_a_fixture_and_at_least_twelve_languages() -> None:
    covered = {language_for(FIXTURES / name) for name in CASES}
    assert covered == set(LANGUAGES)
    assert len(LANGUAGES) >= 12


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_tag_query_compiles(language: str) -> None:
    assert tags_query(language).pattern_count > 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_tags(name: str) -> None:
    path = FIXTURES / name
    want_defs, want_refs, want_imports = CASES[name]
    tags = extract_tags(path, path.read_bytes(), language_for(path) or "")

    got = {d.qualified_name: d.kind for d in tags.definitions}
    for qualified, kind in want_defs.items():
        assert got.get(qualified) == kind, f"{qualified}: {got.get(qualified)} (have {got})"

    refs = {(r.name, r.enclosing) for r in tags.references}
    assert want_refs <= refs, want_refs - refs
    assert [i.module for i in tags.imports] == want_imports

    # Only definition captures name definitions: a definition's own name is never a reference.
    def_names = {(d.name, d.name_range) for d in tags.definitions}
    assert not {(r.name, r.range) for r in tags.references} & def_names
    for d in tags.definitions:
        assert d.range.encloses(d.name_range), d
        assert d.path == path
        assert d.language == tags.language
        assert d.signature
        assert "\n" not in d.signature


def test_python_docstring_and_comment_docs() -> None:
    path = FIXTURES / "shapes.py"
    tags = extract_tags(path, path.read_bytes(), "python")
    by_name = {d.qualified_name: d for d in tags.definitions}
    lines = path.read_text().splitlines()
    shape_doc = by_name["Shape"].doc_range
    assert shape_doc is not None
    assert lines[shape_doc.start_line].strip() == '"""Anything with an area."""'
    assert by_name["total_area"].doc_range is None  # a comment inside the body is no docstring

    go = FIXTURES / "server.go"
    gtags = extract_tags(go, go.read_bytes(), "go")
    start = next(d for d in gtags.definitions if d.name == "Start")
    assert start.doc_range is not None
    assert go.read_text().splitlines()[start.doc_range.start_line] == "// Start runs the server."


def test_out_of_line_cpp_method_is_scoped_by_its_class() -> None:
    path = FIXTURES / "matrix.cpp"
    tags = extract_tags(path, path.read_bytes(), "cpp")
    at = [d for d in tags.definitions if d.qualified_name == "linalg.Matrix.at"]
    assert [d.signature for d in at] == [
        "double at(int r, int c) const;",
        "double Matrix::at(int r, int c) const {",
    ]


def test_signature_skips_annotation_lines() -> None:
    path = FIXTURES / "Account.java"
    tags = extract_tags(path, path.read_bytes(), "java")
    compare = next(d for d in tags.definitions if d.name == "compareTo")
    assert compare.signature == "public int compareTo(Account other) {"


def test_columns_are_utf16_code_units() -> None:
    # "é" is 2 bytes in UTF-8 and 1 UTF-16 unit; "😀" is 4 bytes and 2 units.
    source = 'x = "é😀"; y = 1\ndef f():\n    pass\n'.encode()
    tags = extract_tags(Path("/w/a.py"), source, "python")
    f = next(d for d in tags.definitions if d.name == "f")
    assert f.name_range == (1, 4, 1, 5)
    src = "s = '😀'\nclass A(B): pass\n".encode()
    tags = extract_tags(Path("/w/b.py"), src, "python")
    assert next(r for r in tags.references if r.name == "B").range == (1, 8, 1, 9)
    src = "s = '😀'; t = f(B)\n".encode()
    assert extract_tags(Path("/w/c.py"), src, "python").references[0].range == (0, 14, 0, 15)


@pytest.mark.parametrize(
    ("path", "language"),
    [("a/b.py", "python"), ("x.TSX", "tsx"), ("m.h", "c"), ("m.hpp", "cpp"), ("README", None)],
)
def test_language_for(path: str, language: str | None) -> None:
    assert language_for(path) == language


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_workers_extraction_equals_an_open_buffers(name: str) -> None:
    """Workers skip the byte offsets an open buffer keeps for its incremental updates; the
    tags are the same."""
    path = FIXTURES / name
    source, language = path.read_bytes(), language_for(path) or ""
    tree = new_parser(language).parse(source)
    full = extract_region(source, language, tree, Columns(source))
    lean = extract_region(source, language, tree, Columns(source), offsets=False)
    assert (lean.defs, lean.refs, lean.imports) == (full.defs, full.refs, full.imports)
    assert full.refs
    assert len(full.ref_bytes) == len(full.refs)
    assert (lean.def_bytes, lean.ref_bytes, lean.import_bytes) == ([], [], [])


def test_reference_kinds_come_from_patterns_whose_reference_node_is_not_recorded() -> None:
    # The query no longer records the @reference.* nodes (nobody reads them): each
    # reference still gets the kind of the first pattern naming it.
    query = tags_query("python")
    assert "reference.call" in {query.capture_name(i) for i in range(query.capture_count)}
    path = FIXTURES / "shapes.py"
    tags = extract_tags(path, path.read_bytes(), "python")
    kinds = {(r.name, r.kind) for r in tags.references}
    assert {("Shape", "class"), ("Length", "import"), ("float", "type"), ("sum", "call")} <= kinds
    assert ("Shape", "call") not in kinds  # a base class, not a call


def test_a_rust_use_names_what_it_imports() -> None:
    """As Python's `from m import name`: each item a `use` brings in is an import reference
    (the ranking's "names the file imports"), through groups, nested groups and aliases;
    the path's modules and a glob are not."""
    source = (
        b"use crate::errors::{ValError, types::{ErrorType, ErrorKind as Kind}};\n"
        b"use super::build_validator;\n"
        b"use std::fmt::Write as _;\n"
        b"use crate::tools::*;\n"
        b"use super::{self, fields::{self as f}};\n"
    )
    # The last line holds "€" and an emoji before its `use`, and no line break after it.
    last = "/* €—😀 */ use crate::tools::SchemaDict;"
    tags = extract_tags(Path("/w/src/a.rs"), source + last.encode(), "rust")
    imported = sorted(r.name for r in tags.references if r.kind == "import")
    assert imported == [
        "ErrorKind", "ErrorType", "SchemaDict", "ValError", "Write", "build_validator",
    ]  # fmt: skip
    schema = next(r for r in tags.references if r.name == "SchemaDict")
    col = len(last[: last.index("SchemaDict")].encode("utf-16-le")) // 2  # UTF-16 units
    assert schema.range == (5, col, 5, col + len("SchemaDict"))


def test_a_rust_use_of_one_name_is_another_crates_not_a_module_file() -> None:
    """`use serde;` names a crate; `mod errors;` a file of this one (`errors.rs` beside)."""
    source = b"mod errors;\nuse serde;\nuse crate::errors::ValError;\nmod inline {}\n"
    tags = extract_tags(Path("/w/src/lib.rs"), source, "rust")
    assert [i.module for i in tags.imports] == ["errors", "crate::errors::ValError"]


def test_a_java_import_names_its_class_not_a_wildcards_package() -> None:
    source = (
        b"import com.acme.bridge.ReadableMap;\nimport static com.acme.util.Views.find;\n"
        b"import com.acme.events.*;\n\nclass A {\n    ReadableMap map;\n}\n"
    )
    tags = extract_tags(Path("/w/A.java"), source, "java")
    assert sorted(r.name for r in tags.references if r.kind == "import") == ["ReadableMap", "find"]
    assert [i.module for i in tags.imports] == [
        "com.acme.bridge.ReadableMap",
        "com.acme.util.Views.find",
        "com.acme.events",
    ]

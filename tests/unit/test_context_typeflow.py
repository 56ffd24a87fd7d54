"""Type flow: each rule types a receiver, so the methods the rest of the code will call
(and does not name yet) reach the prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimi_lsp.actions.target import find_target
from kimi_lsp.context.build import NEIGHBOUR_MEMBERS
from kimi_lsp.context.typeflow import TypedClass, class_members, typed_classes
from kimi_lsp.index import WorkspaceIndex
from tests.fixtures.context.explain import explain_definition

MODELS = """\
class Base:
    def save(self):
        pass

    def base_only(self):
        pass


class Row:
    def keys(self):
        return []


class Session:
    def fetch(self, q) -> "Row":
        return Row()

    def close(self):
        pass


class Query:
    def filter(self, x):
        return self

    def all(self):
        return []


class Shape:
    def contains(self, p):
        return True

    def area(self):
        return 0


def make_query() -> Query:
    return Query()


class Cell:
    def value(self):
        return 0


class Table:
    def rows(self) -> "list[Grid]":
        return []


class Grid:
    cell: Cell

    def keys(self):
        return []


class Compiler:
    def execute_sql(self, sql):
        pass

    def as_sql(self):
        pass


class InsertCompiler(Compiler):
    def execute_sql(self, sql):
        pass


class Mapper:
    def identity_key(self):
        pass


Visitor = Shape
shared = Session()
"""

NEIGHBOURS = """from models import Cell, Query


def uses_query_everywhere():
    return Query(), Query(), Query()


def untyped(s):
    return s
"""

SERVICE = """\
from typing import Optional

from models import Base, Query, Row, Session, Shape, Table, Visitor, make_query, shared


class Service(Base):
    session: Session
    store = Query()

    def __init__(self, session: Session, row: "Row | None" = None):
        self.helper = Query()
        self.typed: Optional[Shape] = None
        self.given = row
        self.maybe = session or Shape()

    @property
    def current(self) -> Row:
        return Row()

    def via_self(self):
        x = 1
        return x

    def via_optional(self, s: Optional[Shape]):
        return s

    def via_union(self, s: Shape | None):
        return s

    def via_string(self, s: "Shape"):
        return s

    def via_type(self, s: type[Shape]):
        return s

    def via_class_annotation(self):
        return self.session

    def via_init_constructor(self):
        return self.helper

    def via_self_annotation(self):
        return self.typed

    def via_init_parameter(self):
        return self.given

    def via_local_constructor(self):
        q = Query()
        return q

    def via_return_annotation(self):
        q = make_query()
        return q

    def via_method_return(self):
        row = self.session.fetch(1)
        return row

    def via_property(self):
        return self.current.keys

    def via_super(self):
        return super().save

    def untyped(self, s):
        return s

    def via_alias(self, v: Visitor):
        return v

    def via_module_instance(self):
        s = shared
        return s

    def via_class_attribute(self):
        return self.store

    def via_or(self):
        return self.maybe

    def via_conditional(self, flag):
        q = Query() if flag else None
        return q

    def via_loop(self, table: Table):
        for grid in table.rows():
            grid.cell

    def via_isinstance(self, x):
        if isinstance(x, (Shape, Row)):
            return x

    def via_parameter_name(self, mapper):
        return mapper

    def via_parameter_name_tail(self, primary_mapper):
        return primary_mapper

    def via_receiver_name(self, thing):
        return thing.mapper.undefined_anywhere()

    def via_members_used(self, c):
        c.execute_sql(1)
        return c.as_sql()

    def via_an_overridden_member(self, c):
        return c.execute_sql(1)


def plain(s):
    return s.undefined_anywhere(1)
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorkspaceIndex, Path]:
    root = tmp_path_factory.mktemp("typeflow")
    (root / "models.py").write_text(MODELS)
    (root / "service.py").write_text(SERVICE)
    (root / "neighbours.py").write_text(NEIGHBOURS)
    index = WorkspaceIndex([root], state_dir=None)
    index.update()
    return index, root


def typed_in(
    project: tuple[WorkspaceIndex, Path], function: str, file: str = "service.py"
) -> list[TypedClass]:
    index, root = project
    path = root / file
    target = next(d for d in index.outline(path) if d.name == function)
    return typed_classes(index, path, path.read_text(), target.range, target)


def classes_in(project: tuple[WorkspaceIndex, Path], function: str) -> list[str]:
    """The classes a rule types the function's code with (not the file's neighbours)."""
    return [t.definition.name for t in typed_in(project, function) if not t.neighbour]


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("via_optional", "Shape"),
        ("via_union", "Shape"),
        ("via_string", "Shape"),
        ("via_type", "Shape"),
        ("via_class_annotation", "Session"),
        ("via_init_constructor", "Query"),
        ("via_self_annotation", "Shape"),
        ("via_init_parameter", "Row"),
        ("via_local_constructor", "Query"),
        ("via_return_annotation", "Query"),
        ("via_method_return", "Row"),
        ("via_property", "Row"),
        ("via_super", "Base"),
        ("via_alias", "Shape"),
        ("via_module_instance", "Session"),
        ("via_class_attribute", "Query"),
        ("via_or", "Shape"),
        ("via_conditional", "Query"),
        ("via_loop", "Cell"),
        ("via_isinstance", "Shape"),
        ("via_isinstance", "Row"),
        ("via_parameter_name", "Mapper"),
        ("via_parameter_name_tail", "Mapper"),
        ("via_receiver_name", "Mapper"),
        ("via_members_used", "Compiler"),
    ],
)
def test_each_rule_types_its_receiver(
    project: tuple[WorkspaceIndex, Path], function: str, expected: str
) -> None:
    assert expected in classes_in(project, function)


def test_self_stands_for_the_enclosing_class_and_its_bases_in_mro_order(
    project: tuple[WorkspaceIndex, Path],
) -> None:
    index, root = project
    path = root / "service.py"
    target = next(d for d in index.outline(path) if d.name == "via_self")
    typed = typed_classes(index, path, path.read_text(), target.range, target)
    typed = [t for t in typed if not t.neighbour]
    assert [t.definition.name for t in typed] == ["Service"]
    groups = class_members(index, path, typed)
    assert [cls.name for cls, _, _ in groups] == ["Service", "Base"]
    assert "base_only" in [m.name for m in groups[1][1]]


def test_names_without_evidence_stand_for_nothing(project: tuple[WorkspaceIndex, Path]) -> None:
    assert classes_in(project, "untyped") == ["Service"]  # self only: `s` is not typed
    assert classes_in(project, "plain") == []


def test_members_used_name_the_base_not_the_subclass_that_overrides_them(
    project: tuple[WorkspaceIndex, Path],
) -> None:
    assert classes_in(project, "via_an_overridden_member") == ["Service", "Compiler"]


def test_the_imported_classes_are_neighbours_weighted_by_use_below_the_typed_ones(
    project: tuple[WorkspaceIndex, Path],
) -> None:
    typed = typed_in(project, "untyped", "neighbours.py")
    assert [t.definition.name for t in typed] == ["Query", "Cell"]  # used 4 times, then once
    assert all(t.neighbour for t in typed)
    assert typed[0].weight > typed[1].weight
    ruled = typed_in(project, "via_local_constructor")
    query = next(t for t in ruled if t.definition.name == "Query")
    assert not query.neighbour
    assert all(t.weight < query.weight for t in ruled if t.neighbour)


def test_the_outline_carries_methods_the_code_does_not_name_yet(
    project: tuple[WorkspaceIndex, Path],
) -> None:
    index, root = project
    path = root / "service.py"
    target = next(d for d in index.outline(path) if d.name == "via_method_return")
    built = explain_definition(index, root, target, budget=2_000)
    outlines = next(s for s in built.sections if s.name == "class outlines")
    assert "class Session:" in outlines.text
    assert "def close(self):" in outlines.text  # named nowhere in the target
    assert "class Row:" in outlines.text
    assert "def keys(self):" in outlines.text
    assert built.tokens <= 2_000


def test_the_outline_leaves_the_target_file_out_and_follows_self_to_the_bases(
    project: tuple[WorkspaceIndex, Path],
) -> None:
    index, root = project
    path = root / "service.py"
    target = next(d for d in index.outline(path) if d.name == "via_self")
    built = explain_definition(index, root, target, budget=2_000)
    outlines = next(s for s in built.sections if s.name == "class outlines")
    assert "class Base:" in outlines.text
    assert "def base_only(self):" in outlines.text
    assert "class Service(Base):" not in outlines.text  # its own file is shown already


def test_a_neighbour_class_lends_the_outlines_only_its_best_few_members(tmp_path: Path) -> None:
    big = "class Big:\n" + "".join(f"    def m{i}(self):\n        pass\n\n" for i in range(60))
    (tmp_path / "big.py").write_text(big)
    (tmp_path / "user.py").write_text(
        "from big import Big\n\n\ndef go(x):\n    y = x + 1\n    return y\n"
    )
    index = WorkspaceIndex([tmp_path], state_dir=None)
    index.update()
    path = tmp_path / "user.py"
    target = next(d for d in index.outline(path) if d.name == "go")
    # Room for all 60: the cap, not the budget, stops them.
    built = explain_definition(index, tmp_path, target, budget=20_000)
    outlines = next(s for s in built.sections if s.name == "class outlines")
    assert "class Big:" in outlines.text
    assert outlines.text.count("    def m") == NEIGHBOUR_MEMBERS


def test_a_function_the_parse_lost_is_typed_from_its_header(
    project: tuple[WorkspaceIndex, Path],
) -> None:
    """A bracket left open while typing loses the function in the parse; its parameters
    still type what the rest of it will use."""
    index, root = project
    path = root / "service.py"
    text = path.read_text() + "def writing(shape: Shape, s):\n    x = (\n"
    index.open_document(path, text)
    try:
        lines = text.splitlines()
        target = find_target(index, path, text, len(lines) - 1, 4)
        assert target.name == "writing"
        typed = typed_classes(index, path, text, target.span, target.definition)
        assert [t.definition.name for t in typed if not t.neighbour] == ["Shape"]
    finally:
        index.close_document(path)


def test_a_class_a_test_defines_in_a_function_is_not_what_library_code_names(
    tmp_path: Path,
) -> None:
    """SQLAlchemy's tests define `Row`, `User`, `Prop` inside test functions by the dozen:
    a bare name in the library stands for the module's class, never for those."""
    (tmp_path / "models.py").write_text("class Row:\n    def keys(self):\n        return []\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_rows.py").write_text(
        "def test_keys():\n    class Row:\n        def keys(self):\n            return [1]\n"
    )
    (tmp_path / "use.py").write_text("def first(row: Row):\n    return row.keys()\n")
    index = WorkspaceIndex([tmp_path], state_dir=None)
    index.update()
    path = tmp_path / "use.py"
    target = next(d for d in index.outline(path) if d.name == "first")
    typed = typed_classes(index, path, path.read_text(), target.range, target)
    assert [(t.definition.path.name, t.definition.qualified_name) for t in typed] == [
        ("models.py", "Row")
    ]


def test_a_subclass_named_like_its_base_in_another_module_follows_it(tmp_path: Path) -> None:
    """`class SQLCompiler(compiler.SQLCompiler)`, Django's backends' way: the qualifier
    names the module, so the base is the other file's class, not the one being defined."""
    (tmp_path / "compiler.py").write_text(
        "class SQLCompiler:\n    def execute_sql(self):\n        return 1\n"
    )
    (tmp_path / "backend.py").write_text(
        "import compiler\n\n\nclass SQLCompiler(compiler.SQLCompiler):\n"
        "    def as_sql(self):\n        return self.execute_sql()\n"
    )
    index = WorkspaceIndex([tmp_path], state_dir=None)
    index.update()
    path = tmp_path / "backend.py"
    target = next(d for d in index.outline(path) if d.name == "as_sql")
    typed = typed_classes(index, path, path.read_text(), target.range, target)
    groups = class_members(index, path, [t for t in typed if not t.neighbour])
    assert [(cls.path.name, cls.name) for cls, _, _ in groups] == [
        ("backend.py", "SQLCompiler"),
        ("compiler.py", "SQLCompiler"),
    ]
    assert "execute_sql" in [m.name for m in groups[1][1]]

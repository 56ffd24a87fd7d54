"""The context engine on a small real project: what it picks, what it never sends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kimi_lsp.actions.prompts import prompt_at
from kimi_lsp.context import (
    BuiltContext,
    RepoMap,
    build_context,
    pagerank,
    redact,
    used_definitions,
)
from kimi_lsp.index import Definition, Span, WorkspaceIndex
from kimi_lsp.llm.tokens import estimate_text_tokens
from tests.fixtures.context.shop import shop_services, with_request
from tests.fixtures.workspace import indexed_files

SECRET = "sk-live-0123456789abcdefghijklmnopqrstuv"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorkspaceIndex, Path]:
    root = tmp_path_factory.mktemp("proj")
    (root / ".gitignore").write_text("private/\n")
    (root / "geometry.py").write_text(
        "def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n"
    )
    (root / "units.py").write_text("def to_metres(feet):\n    return feet * 0.3048\n")
    (root / "report.py").write_text(
        "from geometry import area\nfrom units import to_metres\n\n"
        f"API_KEY = '{SECRET}'\n\n\n"
        "def summary(w, h):\n    return to_metres(area(w, h))\n"
    )
    for i in range(5):
        (root / f"user{i}.py").write_text(
            f"from geometry import area\n\n\ndef f{i}():\n    return area({i}, 2)\n"
        )
    (root / "private").mkdir()
    (root / "private" / "hidden.py").write_text("def area(x):\n    return 'top secret'\n")
    index = WorkspaceIndex([root], state_dir=None)
    index.update()
    return index, root


def explain(
    index: WorkspaceIndex,
    root: Path,
    path: Path,
    span: Span,
    code: str,
    defn: Definition | None,
    budget: int,
    **extra: Any,
) -> BuiltContext:
    return build_context(
        index,
        [root],
        RepoMap(index, [root], estimate_text_tokens),
        estimate_text_tokens,
        system="SYSTEM",
        path=path,
        language="python",
        target_span=span,
        target_code=code,
        target_definition=defn,
        instruction=f"Explain `{defn.name if defn else 'this'}`.",
        budget=budget,
        **extra,
    )


def build(index: WorkspaceIndex, root: Path, budget: int = 4_000) -> object:
    path = root / "report.py"
    text = path.read_text()
    defn = index.enclosing_definition(path, 7, 4)
    code = "\n".join(text.splitlines()[6:8])
    return explain(index, root, path, Span(6, 0, 7, 34), code, defn, budget)


def test_the_definitions_the_target_uses_come_first(project: tuple[WorkspaceIndex, Path]) -> None:
    index, root = project
    used = used_definitions(index, root / "report.py", Span(6, 0, 7, 34))
    assert [d.name for d in used] == ["to_metres", "area"]
    assert all("private" not in str(d.path) for d in used)
    built = build(index, root)
    user = built.messages[1]["content"]  # type: ignore[attr-defined]
    assert "return feet * 0.3048" in user  # short bodies go in whole
    assert "return w * h" in user


def test_pagerank_ranks_the_most_used_file_first(project: tuple[WorkspaceIndex, Path]) -> None:
    index, root = project
    ranks = pagerank(index.file_graph())
    assert max(ranks, key=lambda p: ranks[p]) == root / "geometry.py"


def test_the_stable_prefix_is_the_same_bytes_whatever_the_request(
    project: tuple[WorkspaceIndex, Path],
) -> None:
    index, root = project
    a = build(index, root)
    repo_map = RepoMap(index, [root], estimate_text_tokens)
    other = build_context(
        index,
        [root],
        repo_map,
        estimate_text_tokens,
        system="SYSTEM",
        path=root / "units.py",
        language="python",
        target_span=Span(0, 0, 1, 25),
        target_code="def to_metres(feet):\n    return feet * 0.3048",
        target_definition=None,
        instruction="Simplify.",
        budget=12_000,
    )
    a = build(index, root, 12_000)
    assert a.messages[0] == other.messages[0]  # type: ignore[attr-defined]
    assert a.stable_prefix_tokens > 0  # type: ignore[attr-defined]
    assert "geometry.py:" in other.messages[0]["content"]


def test_ignored_files_and_secrets_never_enter_the_prompt(
    project: tuple[WorkspaceIndex, Path],
) -> None:
    index, root = project
    built = build(index, root)
    everything = str(built.messages)  # type: ignore[attr-defined]
    assert "top secret" not in everything
    assert "hidden.py" not in everything
    assert SECRET not in everything


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(budget=st.integers(200, 5_000))
def test_a_budget_is_never_exceeded(project: tuple[WorkspaceIndex, Path], budget: int) -> None:
    index, root = project
    built = build(index, root, budget)
    needed = sum(s.tokens for s in built.sections if s.name in ("target", "instruction"))  # type: ignore[attr-defined]
    if needed + built.sections[0].tokens <= budget:  # type: ignore[attr-defined]
        assert built.tokens <= budget  # type: ignore[attr-defined]
        total = sum(s.tokens for s in built.sections)  # type: ignore[attr-defined]
        assert total <= budget


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("key = '-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----'", "abc"),
        ("aws = 'AKIAABCDEFGHIJKLMNOP'", "AKIAABCDEFGHIJKLMNOP"),
        ("url = 'https://bob:hunter2@example.com/x'", "hunter2"),
        ("url = 'https://x.io/?token=abcdef123456'", "abcdef123456"),
        ("db_password = 'Xq9!vT2#pL8@zR4'", "Xq9!vT2#pL8@zR4"),
        ("gh = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789'", "ghp_abcdefghijklmnopqrstuvwxyz"),
    ],
)
def test_redaction_catches_the_common_shapes(text: str, hidden: str) -> None:
    out, count = redact(text)
    assert hidden not in out
    assert count >= 1


def test_redaction_leaves_ordinary_code_alone() -> None:
    code = (
        "password_field = 'changeme'\ntoken = next_token(stream)\n"
        "_ACCEPTED_TOKENS = _UNPREFIXED_TOKENS | _PATH_TOKENS\n"  # SQLAlchemy's, a name
        "DEFAULT_TOKEN = FALLBACK_SESSION_TOKEN_VALUE\n"
    )
    assert redact(code) == (code, 0)


def test_a_bare_random_value_is_still_a_secret() -> None:
    out, count = redact(
        "api_key: Zx8bQ2mLp0Rt7Yw4Vn3K\nauth_token = A1B2_C3D4_E5F6_G7H8x\n"
        "password: correct_horse_battery_staple\n"  # a passphrase in a config file
    )
    assert "Zx8bQ2mLp0Rt7Yw4Vn3K" not in out
    assert "A1B2_C3D4_E5F6_G7H8x" not in out
    assert "correct_horse_battery_staple" not in out
    assert count == 3


def test_env_files_have_every_value_hidden() -> None:
    out, count = redact("# comment\nDB=postgres://u:p@h/db\nDEBUG=1\n", Path(".env"))
    assert "postgres" not in out
    assert "DEBUG=" in out
    assert count >= 2


def test_the_enclosing_class_outline_is_that_class_only(tmp_path: Path) -> None:
    # `Console`'s outline must not take in `ConsoleOptions`, whose name merely starts alike.
    (tmp_path / "console.py").write_text(
        "class ConsoleOptions:\n    def update_width(self, width):\n        return self\n\n\n"
        "class Console:\n    def print(self, text):\n        return text\n\n"
        "    def rule(self):\n        return self.print('-')\n"
    )
    services = with_request(shop_services(tmp_path, tmp_path / ".state"), budget=3_000)
    built = prompt_at(services, "explain", tmp_path / "console.py", 10, 8)
    (outline,) = [s for s in built.sections if s.name == "file outline"]
    assert "def print(self, text):" in outline.text
    assert "update_width" not in outline.text


def test_a_method_called_on_an_object_is_a_use_only_when_one_file_defines_it(
    tmp_path: Path,
) -> None:
    """`x.get(...)` with `get` in two files: which one is a guess, so no body of either;
    a method only one file defines, and a plain call, are uses as before."""
    (tmp_path / "a.py").write_text("class A:\n    def get(self):\n        return 1\n")
    (tmp_path / "b.py").write_text(
        "class B:\n    def get(self):\n        return 2\n\n"
        "    def only_b(self):\n        return 3\n"
    )
    (tmp_path / "c.py").write_text("def helper():\n    return 0\n")
    (tmp_path / "use.py").write_text(
        "def f(x):\n    x.get()\n    x.only_b()\n    helper()\n    return get()\n"
    )
    # Columns count UTF-16 units: "🚀" is two, one str character; the dot is found anyway.
    (tmp_path / "wide.py").write_text('def g(x):\n    label = "€🚀"; x.get()\n    return label\n')
    index = WorkspaceIndex([tmp_path], state_dir=None)
    index.update()
    used = used_definitions(index, tmp_path / "use.py", Span(0, 0, 4, 16))
    assert [d.qualified_name for d in used] == ["B.only_b", "helper", "A.get", "B.get"]
    assert used_definitions(index, tmp_path / "wide.py", Span(0, 0, 2, 16)) == []


def test_a_go_name_is_its_packages_bare_and_the_imported_packages_qualified(
    tmp_path: Path,
) -> None:
    """Go: a bare `DB` is this package's (not memdb's `DB`), `table.NewReader(...)` the
    table package's function (not journal's `NewReader`, and not a method call whose
    owner would be a guess). An aliased import is the package its path names; the line
    holds "€", "—" and an emoji before the call (columns count UTF-16 units)."""
    files = {
        "db/db.go": "package db\n\ntype DB struct {\n\tn int\n}\n",
        "db/memdb/memdb.go": "package memdb\n\ntype DB struct {\n\tkv []byte\n}\n",
        "db/table/reader.go": "package table\n\nfunc NewReader() int { return 0 }\n",
        "db/journal/reader.go": "package journal\n\nfunc NewReader() int { return 1 }\n",
        "db/open.go": 'package db\n\nimport "example.com/db/table"\n\n'
        'func Open() *DB {\n\t_, _ = "€—😀", table.NewReader()\n\treturn &DB{}\n}\n',
        "db/close.go": 'package db\n\nimport (\n\tlog "example.com/db/journal" // the WAL\n)\n\n'
        "func Close() int {\n\treturn log.NewReader()\n}\n",
    }
    index = indexed_files(tmp_path, files)
    used = used_definitions(index, tmp_path / "db" / "open.go", Span(4, 0, 7, 1))
    assert [(d.name, d.path.parent.name) for d in used] == [("DB", "db"), ("NewReader", "table")]
    used = used_definitions(index, tmp_path / "db" / "close.go", Span(6, 0, 8, 1))
    assert [(d.name, d.path.parent.name) for d in used] == [("NewReader", "journal")]


def test_the_secrets_counted_are_the_placeholders_the_prompt_carries(tmp_path: Path) -> None:
    """A target bigger than its share is fitted by trying windows of it; each try redacts,
    but only what is sent counts (the count was the sum over every try)."""
    body = "".join(f"    x{i} = {i}\n" for i in range(400))
    text = f"def big():\n    token = '{SECRET}'\n{body}    return x0\n"
    (tmp_path / "big.py").write_text(text)
    index = WorkspaceIndex([tmp_path], state_dir=None)
    index.update()
    path = tmp_path / "big.py"
    defn = index.enclosing_definition(path, 1, 4)
    assert defn is not None
    built = explain(index, tmp_path, path, defn.range, text, defn, 1_500, cursor_line=2)
    sent = "".join(m["content"] for m in built.messages)
    assert SECRET not in sent
    assert any("lines of the target" in x for x in built.left_out)  # it was windowed
    assert built.redactions == sent.count("<redacted:") == 1

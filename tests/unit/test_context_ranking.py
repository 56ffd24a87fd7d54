"""Ranking: PageRank math, incremental sync, and a preference for what the target uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kimi_lsp.actions.prompts import prompt_at
from kimi_lsp.actions.services import Services
from kimi_lsp.config import Settings
from kimi_lsp.context import (
    Focus,
    RepoMap,
    ResidentGraph,
    fit_skeleton,
    pagerank,
    render_skeleton,
    score_definitions,
)
from kimi_lsp.context.ranking import name_words, outline_table
from kimi_lsp.context.tokens import TokenEstimator
from kimi_lsp.index import Definition, WorkspaceIndex
from tests.fixtures.context.shop import make_shop, with_request
from tests.fixtures.workspace import indexed_files


def dense_pagerank(graph: dict[str, dict[str, float]], pers: dict[str, float]) -> dict[str, float]:
    nodes = sorted({*graph, *(t for e in graph.values() for t in e)})
    n, ix = len(nodes), {k: i for i, k in enumerate(nodes)}
    m = np.zeros((n, n))
    for s, edges in graph.items():
        total = sum(edges.values())
        for t, w in edges.items():
            m[ix[t], ix[s]] = w / total
    p = np.array([pers.get(k, 0.0) for k in nodes])
    p = p / p.sum()
    dangling = np.array([not graph.get(k) for k in nodes])
    r = p.copy()
    for _ in range(200):
        r = 0.85 * (m @ r) + (0.85 * r[dangling].sum() + 0.15) * p
    return {k: float(r[ix[k]]) for k in nodes}


GRAPH = {
    "a": {"b": 2.0, "c": 1.0},
    "b": {"c": 1.0},
    "c": {"a": 0.5},
    "d": {"c": 3.0, "e": 1.0},
    "e": {},
}


def test_personalised_pagerank_matches_the_dense_reference() -> None:
    pers = {"d": 1.0, "a": 0.5}
    got = pagerank(GRAPH, pers)
    want = dense_pagerank(GRAPH, pers)
    assert sum(got.values()) == pytest.approx(1.0)
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-6)


def test_personalisation_moves_rank_to_the_seed_and_its_neighbours() -> None:
    plain = pagerank(GRAPH)
    seeded = pagerank(GRAPH, {"d": 1.0})
    assert seeded["d"] > plain["d"]
    assert max(seeded, key=lambda k: seeded[k]) in {"c", "d"}


def test_incremental_sync_ranks_like_a_fresh_build() -> None:
    g: ResidentGraph[str] = ResidentGraph()
    g.sync(GRAPH)
    changed = {**GRAPH, "e": {"a": 1.0}, "b": {}}
    assert g.sync(changed) == 2  # only the two rows that changed
    fresh = pagerank(changed, {"a": 1.0})
    again = g.pagerank({"a": 1.0})
    for k in fresh:
        assert again[k] == pytest.approx(fresh[k], abs=1e-9)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorkspaceIndex, Path]:
    root = make_shop(tmp_path_factory.mktemp("shop"))
    index = WorkspaceIndex([root], state_dir=None)
    index.update()
    return index, root


def test_ranking_prefers_the_definitions_the_target_file_uses(
    shop: tuple[WorkspaceIndex, Path],
) -> None:
    index, root = shop
    repo_map = RepoMap(index, [root], TokenEstimator())
    focus = Focus(root / "shop" / "cart.py")
    scored = score_definitions(index, repo_map.ranker.ranks(focus), focus)
    names = [d.qualified_name for _, d in scored]
    used = {"Product", "Money", "Money.add", "add_vat"}  # net.add(...) calls Money.add
    top = set(names[: len(used)])
    assert top == used, names[:8]
    assert names.index("add_vat") < names.index("vat_rate")
    assert "slugify" not in names[:8]  # a file nothing here touches ranks last


def test_explain_context_carries_the_signatures_the_rest_of_the_body_needs(
    shop: tuple[WorkspaceIndex, Path], tmp_path: Path
) -> None:
    index, root = shop
    services = Services(Settings(state_dir=tmp_path / "state"), [root], index=index)
    path = root / "shop" / "cart.py"
    built = prompt_at(with_request(services, budget=1_500), "explain", path, 13, 8)
    user = built.messages[1]["content"]
    assert 'def add(self, other: "Money") -> "Money":' in user  # Money.add, called in total
    assert "def add_vat(price: Money, country: str) -> Money:" in user
    assert "def slugify" not in user


def test_the_resident_graph_resyncs_after_a_save_not_while_typing(
    tmp_path: Path,
) -> None:
    root = make_shop(tmp_path)
    index = WorkspaceIndex([root], state_dir=None)
    index.update()
    repo_map = RepoMap(index, [root], TokenEstimator())
    assert repo_map.ranker.refresh()
    assert not repo_map.ranker.refresh()
    path = root / "shop" / "util.py"
    text = "from shop.money import Money\n\n\ndef zero():\n    return Money(0)\n"
    index.open_document(path, text)  # typing: the graph and the map stay as they were
    assert not repo_map.ranker.refresh()
    path.write_text(text)  # saved
    index.close_document(path)
    index.file_changed_on_disk(path)
    assert repo_map.ranker.refresh()
    assert repo_map.ranker.rows_changed >= 1
    ranks = repo_map.ranker.ranks(Focus(path))
    assert ranks[root / "shop" / "money.py"] > ranks[root / "shop" / "tax.py"]


def test_names_the_target_itself_uses_outrank_the_rest_of_its_file(
    shop: tuple[WorkspaceIndex, Path],
) -> None:
    index, root = shop
    repo_map = RepoMap(index, [root], TokenEstimator())
    path = root / "shop" / "cart.py"
    for near in ("add_vat", "Product"):
        focus = Focus(path, near=frozenset({near}))
        scored = score_definitions(index, repo_map.ranker.ranks(focus), focus)
        assert scored[0][1].name == near


PKG = {
    "pkg/__init__.py": "",
    "pkg/errors.py": (
        "class StyleError(Exception):\n    pass\n\n\nclass MissingStyle(StyleError):\n    pass\n"
    ),
    "pkg/base.py": (
        "class Base:\n    def __init__(self):\n        self.ready = True\n\n"
        "    def __len__(self):\n        return 0\n"
    ),
    "pkg/other.py": (
        "class Unrelated:\n    def __init__(self, x):\n        self.x = x\n\n"
        "    def __eq__(self, other):\n        return False\n\n\n"
        "def helper():\n    return 1\n"
    ),
    "pkg/files.py": (
        "from .other import helper\n\n\ndef open(path):\n    return path\n\n\n"
        "class Reader:\n    def open(self):\n        return self\n\n"
        "    def read(self):\n        return ''\n\n\n"
        "class Writer:\n    def open(self):\n        return self\n\n\n"
        "class Pipe:\n    def open(self):\n        return self\n"
    ),
    "pkg/style.py": (
        "from . import errors\nfrom .base import Base\n\n\n"
        "class Style(Base):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.name = open('x').read()\n"
    ),
}


@pytest.fixture(scope="module")
def pkg(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorkspaceIndex, Path]:
    root = tmp_path_factory.mktemp("pkg")
    for rel, text in PKG.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    index = WorkspaceIndex([root], state_dir=None)
    index.update()
    return index, root


def _ranked(index: WorkspaceIndex, root: Path) -> list[str]:
    repo_map = RepoMap(index, [root], TokenEstimator())
    focus = Focus(root / "pkg" / "style.py", near=frozenset({"__init__", "open", "read"}))
    return [
        d.qualified_name for _, d in score_definitions(index, repo_map.ranker.ranks(focus), focus)
    ]


def test_a_module_imported_by_name_offers_its_definitions(pkg: tuple[WorkspaceIndex, Path]) -> None:
    # `from . import errors` (used as `errors.MissingStyle`) makes errors.py's classes likely
    # next to an unrelated top-level function the file never names.
    names = _ranked(*pkg)
    assert names.index("MissingStyle") < names.index("helper")
    assert names.index("StyleError") < names.index("helper")


def test_dunders_are_no_evidence_and_overloads_in_one_file_are_one_name(
    pkg: tuple[WorkspaceIndex, Path],
) -> None:
    names = _ranked(*pkg)
    # `super().__init__()` names every constructor: an unrelated class's __init__ and other
    # dunders do not rise above the names the target does use.
    assert names.index("MissingStyle") < names.index("Unrelated.__init__")
    assert names.index("Base.__init__") < names.index("Unrelated.__init__")  # its base class
    # `open` is defined four times, in one file: still one unambiguous name, among the first.
    assert {"open", "Reader.open", "Writer.open", "Pipe.open"} <= set(names[:5]), names[:6]
    assert (
        names.index("Unrelated.__eq__") > names.index("helper") or "Unrelated.__eq__" not in names
    )


WRAPPER = {
    "app/__init__.py": "",
    "app/registry.py": (
        "class Registry:\n"
        "    def register_model(self, label, model):\n        return None\n\n"
        "    def clear_cache(self):\n        return None\n\n"
        "    def lazy_model_operation(self, function, *keys):\n        return None\n"
    ),
    "app/related.py": (
        "from app.registry import Registry\n\n\n"
        "def lazy_related_operation(function, model):\n"
        '    """Run function once the model is ready."""\n'
    ),
}


def test_a_member_whose_name_echoes_the_targets_outranks_its_siblings(
    tmp_path: Path,
) -> None:
    # A wrapper calls what its name echoes (`lazy_related_operation` →
    # `registry.lazy_model_operation(...)`): with nothing else to tell the members apart,
    # the one sharing a distinctive word with the target's name comes first.
    for rel, text in WRAPPER.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    index = WorkspaceIndex([tmp_path], state_dir=None)
    index.update()
    repo_map = RepoMap(index, [tmp_path], TokenEstimator())
    path = tmp_path / "app" / "related.py"

    def members(focus: Focus) -> list[str]:
        scored = score_definitions(index, repo_map.ranker.ranks(focus), focus)
        return [d.name for _, d in scored if d.scope == "Registry"]

    plain = members(Focus(path))
    assert plain[0] != "lazy_model_operation"  # source order decides without the words
    echoed = members(Focus(path, words=name_words("lazy_related_operation")))
    assert echoed[0] == "lazy_model_operation", echoed


def test_name_words_split_both_cases_and_drop_the_common_ones() -> None:
    assert name_words("lazy_related_operation") == {"lazy", "related", "operation"}
    assert name_words("getTraceback_HTML") == {"traceback", "html"}
    assert name_words("get_value") == frozenset()


def test_scores_follow_a_files_content_and_reuse_its_table_while_it_stays(tmp_path: Path) -> None:
    """The per-file tables behind the scores are keyed by content: an edited file scores its
    new definitions at once, an unchanged one is not worked out again."""
    (tmp_path / "shapes.py").write_text("class Shape:\n    def area(self):\n        return 0\n")
    (tmp_path / "app.py").write_text("from shapes import Shape\n\nShape().area()\n")
    index = WorkspaceIndex([tmp_path], state_dir=None)
    index.update()
    repo_map = RepoMap(index, [tmp_path], TokenEstimator())
    focus = Focus(tmp_path / "app.py")

    def names() -> list[str]:
        return [
            d.qualified_name
            for _, d in score_definitions(index, repo_map.ranker.ranks(focus), focus)
        ]

    assert names()[:2] == ["Shape", "Shape.area"]
    table = outline_table(index, tmp_path / "shapes.py")
    assert outline_table(index, tmp_path / "shapes.py") is table
    index.open_document(
        tmp_path / "shapes.py", "class Shape:\n    def perimeter(self):\n        return 0\n"
    )
    assert outline_table(index, tmp_path / "shapes.py") is not table
    assert names() == ["Shape", "Shape.perimeter"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(budget=st.integers(min_value=0, max_value=700))
def test_the_fitted_skeleton_is_the_longest_ranked_prefix_that_fits(
    shop: tuple[WorkspaceIndex, Path], budget: int
) -> None:
    """fit_skeleton works each definition's lines out once and renders a prefix from them:
    the text must be render_skeleton's of the longest prefix within the budget."""
    index, root = shop
    estimate = TokenEstimator()
    focus = Focus(root / "shop" / "cart.py")
    ranked = [
        d
        for _, d in score_definitions(
            index, RepoMap(index, [root], estimate).ranker.ranks(focus), focus
        )
    ]
    assert len(ranked) > 10
    text, n, hidden = fit_skeleton(index, ranked, [root], estimate, budget)
    assert hidden == 0
    assert text == render_skeleton(index, ranked[:n], [root])
    assert estimate(text) <= budget or n == 0
    if n < len(ranked):
        assert estimate(render_skeleton(index, ranked[: n + 1], [root])) > budget


def test_the_skeleton_is_cleaned_line_by_line_and_counts_what_was_hidden(
    shop: tuple[WorkspaceIndex, Path],
) -> None:
    index, root = shop
    focus = Focus(root / "shop" / "cart.py")
    estimate = TokenEstimator()
    ranked = [
        d
        for _, d in score_definitions(
            index, RepoMap(index, [root], estimate).ranker.ranks(focus), focus
        )
    ]
    plain, n, _ = fit_skeleton(index, ranked, [root], estimate, 10_000)
    shouted, m, hidden = fit_skeleton(
        index, ranked, [root], estimate, 10_000, clean=lambda line: (line.upper(), 1)
    )
    assert n == m == len(ranked)
    assert shouted == plain.upper()
    assert hidden == plain.count("\n")  # every line, the files' names included


def test_the_skeleton_shows_files_in_rank_order_and_definitions_in_source_order_under_their_class(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.py").write_text(
        "class Shape:\n    def area(self):\n        return 0\n\n"
        "    def perimeter(self):\n        return 1\n\n\ndef helper():\n    pass\n"
    )
    (tmp_path / "b.py").write_text("def other():\n    pass\n")
    index = WorkspaceIndex([tmp_path], state_dir=None)
    index.update()

    def named(path: str, qualified: str) -> Definition:
        return next(d for d in index.outline(tmp_path / path) if d.qualified_name == qualified)

    chosen = [named("a.py", "Shape.perimeter"), named("b.py", "other"), named("a.py", "helper")]
    assert render_skeleton(index, chosen, [tmp_path]) == (
        "a.py:\n  class Shape:\n    def perimeter(self):\n  def helper():\nb.py:\n  def other():\n"
    )
    assert render_skeleton(index, [*chosen, chosen[0]], [tmp_path]) == render_skeleton(
        index, chosen, [tmp_path]
    )  # a definition twice is shown once


def test_a_rust_use_ranks_the_items_it_names_first(tmp_path: Path) -> None:
    """`use crate::build_tools::{is_strict, ..}` names what the file will call, as Python's
    `from m import name` does: those items outrank their module's other functions, and the
    parent module `super::` names (`validators/mod.rs`) is an import like any other."""
    src = tmp_path / "src"
    files = {
        "lib.rs": "mod build_tools;\nmod validators;\n",
        "build_tools.rs": "".join(
            f"pub fn helper_{i}(schema: &Schema) -> bool {{ true }}\n\n" for i in range(12)
        )
        + "pub fn is_strict(schema: &Schema, config: &Config) -> bool { false }\n",
        "validators/mod.rs": "pub trait Validator {\n    fn validate(&self) -> u32;\n}\n\n"
        "pub fn build_validator(schema: &Schema) -> u32 { 0 }\n\n"
        "pub fn unused_in_union(schema: &Schema) -> u32 { 1 }\n",
        "validators/union.rs": "use crate::build_tools::is_strict;\n"
        "use super::{build_validator, Validator};\n\n"
        "pub fn build(schema: &Schema, config: &Config) -> u32 {\n"
        "    let strict = is_strict(schema, config);\n    build_validator(schema)\n}\n",
    }
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    index = WorkspaceIndex([tmp_path], state_dir=None)
    index.update()
    union = src / "validators" / "union.rs"
    assert src / "validators" / "mod.rs" in index.imports_of(union)
    repo_map = RepoMap(index, [tmp_path], TokenEstimator())
    focus = Focus(union)
    names = [d.name for _, d in score_definitions(index, repo_map.ranker.ranks(focus), focus)]
    assert set(names[:3]) == {"is_strict", "build_validator", "Validator"}, names[:6]
    assert names.index("is_strict") < min(names.index(f"helper_{i}") for i in range(12))


def test_a_java_import_ranks_its_class_with_the_names_the_code_writes(tmp_path: Path) -> None:
    """`import com.acme.bridge.ReadableMap;` names a class the file will use, though the code
    above the cursor has not written it yet: it ranks in the tier of the classes the code
    names (`Other0`), above what those reach (`Other1`..)."""
    bridge = tmp_path / "com" / "acme" / "bridge"
    bridge.mkdir(parents=True)
    fields = "".join(f"    Other{i} f{i};\n" for i in range(1, 12))
    (bridge / "Other0.java").write_text(
        f"package com.acme.bridge;\n\npublic class Other0 {{\n{fields}}}\n"
    )
    for i in range(1, 12):
        (bridge / f"Other{i}.java").write_text(
            f"package com.acme.bridge;\n\npublic class Other{i} {{\n    int size;\n}}\n"
        )
    (bridge / "ReadableMap.java").write_text(
        "package com.acme.bridge;\n\npublic interface ReadableMap {\n    int getInt(String k);\n}\n"
    )
    event = tmp_path / "com" / "acme" / "events" / "BlurEvent.java"
    event.parent.mkdir(parents=True)
    event.write_text(
        "package com.acme.events;\n\nimport com.acme.bridge.Other0;\n"
        "import com.acme.bridge.ReadableMap;\n\npublic class BlurEvent {\n"
        "    Other0 other;\n\n    int size() {\n        return 0;\n    }\n}\n"
    )
    index = WorkspaceIndex([tmp_path], state_dir=None)
    index.update()
    repo_map = RepoMap(index, [tmp_path], TokenEstimator())
    focus = Focus(event)
    scored = score_definitions(index, repo_map.ranker.ranks(focus), focus)
    tier = {d.name: int(score) for score, d in scored if d.scope is None}
    assert tier["ReadableMap"] == tier["Other0"]
    assert tier["ReadableMap"] > max(tier[f"Other{i}"] for i in range(1, 12))


def test_go_ranks_what_an_imported_package_exports_and_its_own_packages_names(
    tmp_path: Path,
) -> None:
    """Go imports a package, not names: `table.NewReader` may follow `import ".../table"`,
    and a bare `makeKey` is any file's of the same package. So the imported package's
    exported functions rank in a tier above the rest (its unexported ones do not: `table.`
    cannot reach them), and the own package's functions above those of another package
    the walk ranks alike (`keyType` names both files)."""
    files = {
        "db/key.go": "package db\n\ntype keyType int\n\n"
        "func makeKey(b []byte) []byte { return b }\n",
        "db/sub/key.go": "package sub\n\ntype keyType int\n\n"
        "func makeSub(b []byte) []byte { return b }\n",
        "db/table/reader.go": "package table\n\nfunc NewReader(size int) int {\n"
        "\treturn helper(size)\n}\n\nfunc helper(n int) int { return n }\n",
        "db/db.go": 'package db\n\nimport (\n\t"fmt"\n\n\t"example.com/db/table"\n'
        ")\n\nfunc Open(kt keyType) {\n\tfmt.Println(kt)\n}\n",
    }
    index = indexed_files(tmp_path, files)
    repo_map = RepoMap(index, [tmp_path], TokenEstimator())
    focus = Focus(tmp_path / "db" / "db.go")
    ranks = repo_map.ranker.ranks(focus)
    assert ranks[tmp_path / "db" / "key.go"] == ranks[tmp_path / "db" / "sub" / "key.go"]
    score = {d.name: s for s, d in score_definitions(index, ranks, focus)}
    assert int(score["NewReader"]) > int(score["helper"])
    assert score["makeKey"] > score["makeSub"]

"""WorkspaceIndex queries, editor buffers and parallel indexing on small real projects."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kimi_lsp.index import DefinitionKind, WorkspaceIndex

FILES = {
    "shop/__init__.py": "from .cart import Cart\n",
    "shop/cart.py": (
        "from shop.pricing import price_of, TAX\n"
        "\n"
        "class Cart:\n"
        '    """A cart."""\n'
        "\n"
        "    def total(self):\n"
        "        return sum(price_of(i) for i in self.items) * TAX\n"
    ),
    "shop/pricing.py": "TAX = 1.2\n\ndef price_of(item):\n    return item.price\n",
    "app.py": (
        "from shop import Cart\n"
        "from shop.pricing import price_of\n"
        "\n"
        "def main():\n"
        "    cart = Cart()\n"
        "    return cart.total() + price_of(None)\n"
    ),
    "web/ui.ts": (
        "import { fmt } from './fmt';\nexport function show(x: number) { return fmt(x); }\n"
    ),
    "web/fmt.ts": "export function fmt(x: number): string { return String(x); }\n",
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for rel, text in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


@pytest.fixture
def index(root: Path) -> WorkspaceIndex:
    ix = WorkspaceIndex([root], workers=1)
    ix.update()
    return ix


def test_definitions_by_bare_and_qualified_name(index: WorkspaceIndex, root: Path) -> None:
    (cart,) = index.definitions("Cart")
    assert cart.kind is DefinitionKind.CLASS
    assert cart.path == root / "shop/cart.py"
    (total,) = index.definitions("Cart.total")
    assert total.kind is DefinitionKind.METHOD
    assert total.scope == "Cart"
    assert index.definitions("total") == [total]
    # A qualifier that names no definition (often a module: `pricing.price_of`) is dropped.
    assert index.definitions("pricing.price_of") == index.definitions("price_of")
    assert index.definitions("nothing") == []


def test_files_defining_a_name_follow_an_edited_buffer(index: WorkspaceIndex, root: Path) -> None:
    assert index.files_defining("price_of") == {root / "shop/pricing.py"}
    assert index.files_defining("total") == {d.path for d in index.definitions("total")}
    index.open_document(root / "app.py", "def price_of(x):\n    return 0\n")
    assert index.files_defining("price_of") == {root / "shop/pricing.py", root / "app.py"}
    assert index.files_defining("main") == frozenset()


def test_references_to_a_definition(index: WorkspaceIndex, root: Path) -> None:
    (price_of,) = index.definitions("price_of")
    refs = index.references_to(price_of)
    where = {(r.path.relative_to(root).as_posix(), r.enclosing) for r in refs}
    assert ("shop/cart.py", "Cart.total") in where
    assert ("app.py", "main") in where
    assert all(r.name == "price_of" for r in refs)


def test_enclosing_definition_and_outline(index: WorkspaceIndex, root: Path) -> None:
    cart = root / "shop/cart.py"
    inner = index.enclosing_definition(cart, 6, 12)
    assert inner is not None
    assert inner.qualified_name == "Cart.total"
    outer = index.enclosing_definition(cart, 3, 4)
    assert outer is not None
    assert outer.name == "Cart"
    assert index.enclosing_definition(cart, 0, 0) is None
    assert [d.qualified_name for d in index.outline(cart)] == ["Cart", "Cart.total"]
    assert index.outline(root / "missing.py") == []


def test_imports_importers_and_file_graph(index: WorkspaceIndex, root: Path) -> None:
    pricing, cart, app = root / "shop/pricing.py", root / "shop/cart.py", root / "app.py"
    assert index.imports_of(cart) == [pricing]
    assert set(index.imports_of(app)) == {root / "shop/__init__.py", pricing}
    assert index.importers(pricing) == [app, cart]
    assert index.imports_of(root / "web/ui.ts") == [root / "web/fmt.ts"]
    graph = index.file_graph()
    assert graph[app][pricing] > 1  # an import plus a call
    assert graph[app][cart] >= 1  # calls Cart() and .total() defined there
    assert pricing not in graph[pricing]


def test_resolving_one_files_imports_agrees_with_the_graph_after_an_edit(
    index: WorkspaceIndex, root: Path
) -> None:
    """``resolve_imports`` answers without bringing the graph's rows up to date: from the
    graph for a file as it stands, from the file's own tags for one just edited."""
    pricing, cart, app = root / "shop/pricing.py", root / "shop/cart.py", root / "app.py"
    assert index.resolve_imports(cart) == [pricing]  # before the graph was ever built
    assert index.imports_of(cart) == [pricing]
    index.open_document(cart, "from shop import Cart\n\nclass Basket:\n    pass\n")
    assert index.resolve_imports(cart) == [root / "shop/__init__.py"]  # the buffer's
    assert set(index.resolve_imports(app)) == {root / "shop/__init__.py", pricing}
    assert index.imports_of(cart) == [root / "shop/__init__.py"]
    assert index.resolve_imports(cart) == index.imports_of(cart)


def test_from_package_import_module_imports_the_module(root: Path) -> None:
    # `from . import pricing` imports shop/pricing.py, not only the package's __init__.
    (root / "shop/checkout.py").write_text(
        "from . import pricing\nfrom .cart import Cart as C\n\n"
        "def pay(item):\n    return pricing.price_of(item)\n"
    )
    ix = WorkspaceIndex([root], workers=1)
    ix.update()
    imports = ix.imports_of(root / "shop/checkout.py")
    assert set(imports) == {
        root / "shop/__init__.py",
        root / "shop/pricing.py",
        root / "shop/cart.py",
    }
    assert root / "shop/checkout.py" in ix.importers(root / "shop/pricing.py")


def test_definition_graph_links_callers_to_callees(index: WorkspaceIndex) -> None:
    graph = index.definition_graph()
    (main,) = index.definitions("main")
    (price_of,) = index.definitions("price_of")
    (total,) = index.definitions("total")
    assert graph[main][price_of] == 1.0
    assert graph[main][total] == 1.0
    assert graph[total][price_of] == 1.0


def test_files_info_stats_and_symbols(index: WorkspaceIndex, root: Path) -> None:
    assert len(index.files()) == len(FILES)
    info = index.file_info(root / "shop/pricing.py")
    assert info is not None
    assert (info.language, info.definitions, info.line_count, info.source) == (
        "python",
        2,
        4,
        "disk",
    )
    assert index.stats().languages == {"python": 4, "typescript": 2}
    names = [d.name for d in index.symbols("pric")]
    assert names[0] == "price_of"
    assert [d.name for d in index.symbols("prc")] == ["price_of"]  # fuzzy


def test_progress_is_reported_up_to_the_total(root: Path) -> None:
    calls: list[tuple[int, int]] = []
    WorkspaceIndex([root], workers=1).update(lambda done, total: calls.append((done, total)))
    assert calls[-1] == (len(FILES), len(FILES))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_open_buffer_overrides_disk_until_closed(index: WorkspaceIndex, root: Path) -> None:
    path = root / "shop/pricing.py"
    index.open_document(path, "TAX = 1.2\n\ndef price_of(item):\n    return item.price\n")
    index.change_document(
        path,
        [
            {
                "range": {
                    "start": {"line": 2, "character": 4},
                    "end": {"line": 2, "character": 12},
                },
                "text": "cost_of",
            }
        ],
    )
    assert index.definitions("price_of") == []
    (cost,) = index.definitions("cost_of")
    assert cost.path == path
    info = index.file_info(path)
    assert info is not None
    assert info.source == "buffer"
    assert path.read_text().count("price_of") == 1  # the disk is untouched
    index.close_document(path)
    assert index.definitions("cost_of") == []
    assert len(index.definitions("price_of")) == 1


def test_files_changed_on_disk(index: WorkspaceIndex, root: Path) -> None:
    new = root / "shop/tax.py"
    new.write_text("def vat():\n    pass\n")
    index.file_changed_on_disk(new)
    assert index.definitions("vat")
    new.unlink()
    index.file_changed_on_disk(new)
    assert index.definitions("vat") == []
    ignored = root / "node_modules/x.py"
    ignored.parent.mkdir()
    ignored.write_text("def hidden():\n    pass\n")
    index.file_changed_on_disk(ignored)
    assert index.definitions("hidden") == []


def test_generation_grows_on_every_change_and_only_then(index: WorkspaceIndex, root: Path) -> None:
    seen = [index.generation]

    def grew() -> bool:
        seen.append(index.generation)
        return seen[-1] > seen[-2]

    index.definitions("Cart")
    index.file_graph()
    index.symbols("pri")
    assert not grew()  # queries change nothing
    path = root / "shop/pricing.py"
    index.open_document(path, path.read_text())
    assert grew()
    edit = {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}}
    index.change_document(path, [{**edit, "text": "#"}])
    assert grew()
    index.close_document(path)
    assert grew()
    (root / "shop/tax.py").write_text("def vat():\n    pass\n")
    index.file_changed_on_disk(root / "shop/tax.py")
    assert grew()
    (root / "shop/tax.py").unlink()
    index.file_changed_on_disk(root / "shop/tax.py")
    assert grew()
    with pytest.raises(AttributeError):
        index.generation = 0  # type: ignore[misc]


@pytest.mark.parametrize("server_threads", [False, True], ids=["fork", "forkserver"])
def test_parallel_cold_index_matches_single_process(tmp_path: Path, server_threads: bool) -> None:
    for i in range(90):
        (tmp_path / f"m{i}.py").write_text(
            f"import m{(i + 1) % 90}\n\nclass C{i}:\n    def run(self):\n        return f{i}()\n"
            f"\ndef f{i}():\n    return C{(i + 1) % 90}()\n"
        )
    one = WorkspaceIndex([tmp_path], workers=1)
    two = WorkspaceIndex([tmp_path], workers=2)
    assert one.update().parsed == 90
    # A process running other threads (the server) starts its workers from a fork server.
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    if server_threads:
        thread.start()
    try:
        assert two.update().parsed == 90
    finally:
        stop.set()
    assert one.files() == two.files()
    for p in one.files():
        assert one.file_tags(p) == two.file_tags(p)


def test_saved_generation_moves_with_the_disk_not_with_buffers(
    index: WorkspaceIndex, root: Path
) -> None:
    path = root / "shop/pricing.py"
    saved = index.saved_generation
    index.open_document(path, "TAX = 2.0\n")
    index.change_document(path, [{"text": "TAX = 3.0\n"}])
    index.close_document(path)  # back to the unchanged disk content
    assert index.saved_generation == saved
    path.write_text("TAX = 1.5\n")
    index.file_changed_on_disk(path)
    assert index.saved_generation > saved
    grown = index.saved_generation
    (root / "shop/new.py").write_text("X = 1\n")
    index.file_changed_on_disk(root / "shop/new.py")
    assert index.saved_generation > grown

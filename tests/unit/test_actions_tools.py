"""The index tools on a small real project: what they answer, and what they never return."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kimi_lsp.actions.tools import TOOL_NAMES, IndexTools, tool_specs
from kimi_lsp.index import WorkspaceIndex
from kimi_lsp.llm.tokens import estimate_text_tokens

SECRET = "sk-live-0123456789abcdefghijklmnopqrstuv"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorkspaceIndex, Path]:
    root = tmp_path_factory.mktemp("shop")
    (root / ".gitignore").write_text("private/\n")
    (root / "shop").mkdir()
    (root / "shop" / "inventory.py").write_text(
        "class Inventory:\n"
        "    def reserve(self, sku, n):\n"
        "        '''Hold n units of sku.'''\n"
        "        self.held[sku] = self.held.get(sku, 0) + n\n"
        "        return n\n"
        "\n"
        "    def release(self, sku):\n"
        "        self.held.pop(sku, None)\n"
    )
    (root / "shop" / "orders.py").write_text(
        "from shop.inventory import Inventory\n\n"
        f"PAYMENT_KEY = '{SECRET}'\n\n\n"
        "def place(inv, sku):\n"
        "    return inv.reserve(sku, 1)\n"
    )
    (root / "shop" / "legacy.py").write_text("def reserve(x):\n    return x\n")
    (root / "private").mkdir()
    (root / "private" / "vault.py").write_text(
        "def reserve(x):\n    return 'the private body'\n\n\ndef vault_only():\n    pass\n"
    )
    index = WorkspaceIndex([root], state_dir=None)
    index.update()
    return index, root


@pytest.fixture
def tools(project: tuple[WorkspaceIndex, Path]) -> IndexTools:
    index, root = project
    return IndexTools(index, [root], estimate_text_tokens)


def call(tools: IndexTools, tool: str, **args: object) -> str:
    return tools.call(tool, json.dumps(args)).text


def test_specs_are_valid_kimi_functions() -> None:
    specs = tool_specs()
    assert [s["function"]["name"] for s in specs] == list(TOOL_NAMES)
    for s in specs:
        assert s["type"] == "function"
        assert s["function"]["parameters"]["type"] == "object"
        for prop in s["function"]["parameters"]["properties"].values():
            assert "type" in prop  # nested properties without a type are rejected (§3.5)


def test_definition_gives_signature_location_body_and_alternatives(tools: IndexTools) -> None:
    result = tools.call("definition", '{"name": "Inventory.reserve"}')
    assert "method Inventory.reserve at shop/inventory.py:2" in result.text
    assert "signature: def reserve(self, sku, n):" in result.text
    assert "4:         self.held[sku] = self.held.get(sku, 0) + n" in result.text
    assert result.sources[0] == "shop/inventory.py:2"
    assert result.summary == "looked up `Inventory.reserve` in shop/inventory.py"
    bare = tools.call("definition", '{"name": "reserve"}')
    assert "also defined at" in bare.text


def test_an_ignored_file_is_never_read_nor_named(tools: IndexTools) -> None:
    everything = [
        call(tools, "definition", name="reserve"),
        call(tools, "definition", name="vault_only"),
        call(tools, "references", name="reserve"),
        call(tools, "search", text="vault"),
        call(tools, "outline", path="private/vault.py"),
        call(tools, "read", path="private/vault.py", start_line=1, end_line=9),
        call(tools, "read", path="shop/../private/vault.py", start_line=1, end_line=9),
    ]
    for text in everything:
        assert "the private body" not in text
        assert "private/vault.py:" not in text
    assert "No definition named `vault_only`" in everything[1]
    assert "ignored" in everything[4]
    assert "ignored" in everything[5]


def test_a_line_holding_a_secret_never_returns_the_secret(tools: IndexTools) -> None:
    outputs = [
        tools.call("read", json.dumps({"path": "shop/orders.py", "start_line": 1, "end_line": 9})),
        tools.call("outline", '{"path": "shop/orders.py"}'),
        tools.call("search", '{"text": "PAYMENT"}'),
        tools.call("definition", '{"name": "PAYMENT_KEY"}'),
    ]
    for result in outputs:
        assert SECRET not in result.text
    assert "<redacted:" in outputs[0].text
    assert outputs[0].redactions >= 1


def test_paths_outside_the_workspace_are_refused(tools: IndexTools, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.py"
    outside.write_text("x = 1\n")
    text = call(tools, "read", path=str(outside), start_line=1, end_line=1)
    assert text.startswith("error:")
    assert "x = 1" not in text
    assert call(tools, "read", path="/etc/passwd", start_line=1, end_line=3).startswith("error:")


def test_references_outline_read_and_search(tools: IndexTools) -> None:
    refs = tools.call("references", '{"name": "Inventory.reserve", "limit": 5}')
    assert "shop/orders.py:7: return inv.reserve(sku, 1)" in refs.text
    assert "shop/orders.py:7" in refs.sources
    outline = call(tools, "outline", path="shop/inventory.py")
    assert "1: class Inventory" in outline
    assert "7:   method Inventory.release — def release(self, sku):" in outline
    read = call(tools, "read", path="shop/inventory.py", start_line=7, end_line=8)
    assert read.splitlines() == [
        "shop/inventory.py lines 7-8 of 8",
        "7:     def release(self, sku):",
        "8:         self.held.pop(sku, None)",
    ]
    assert "Inventory.release (method) shop/inventory.py:7" in call(tools, "search", text="rele")


def test_results_are_budgeted(project: tuple[WorkspaceIndex, Path]) -> None:
    index, root = project
    small = IndexTools(index, [root], estimate_text_tokens, result_tokens=30)
    result = small.call("read", '{"path": "shop/inventory.py", "start_line": 1, "end_line": 8}')
    assert result.tokens <= 30
    assert "more lines cut" in result.text
    assert result.tokens == estimate_text_tokens(result.text)


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("nope", "{}", "there is no tool 'nope'"),
        ("definition", "{not json", "not JSON"),
        ("definition", "[]", "JSON object"),
        ("definition", '{"name": 3}', "`name` must be a string"),
        ("read", '{"path": "shop/inventory.py", "start_line": "a"}', "must be an integer"),
        ("outline", '{"path": "shop/missing.py"}', "not a file of the workspace index"),
    ],
)
def test_bad_calls_are_answered_not_raised(
    tools: IndexTools, name: str, arguments: str, message: str
) -> None:
    result = tools.call(name, arguments)
    assert not result.ok
    assert message in result.text


def test_a_file_ignored_after_indexing_is_filtered_out_at_call_time(tmp_path: Path) -> None:
    # The index still holds the file's tags until its next update; the tools ask the rules.
    (tmp_path / "a.py").write_text("def reserve():\n    return 'public'\n")
    (tmp_path / "b.py").write_text("def reserve():\n    return 'now private'\n")
    (tmp_path / "c.py").write_text("from a import reserve\nreserve()\n")
    index = WorkspaceIndex([tmp_path], state_dir=None)
    index.update()
    (tmp_path / ".kimiignore").write_text("b.py\n")
    index.rules.forget()
    assert index.is_ignored(tmp_path / "b.py")
    assert any(d.path.name == "b.py" for d in index.definitions("reserve"))  # still indexed
    tools = IndexTools(index, [tmp_path], estimate_text_tokens)
    for text in (
        call(tools, "definition", name="reserve"),
        call(tools, "search", text="reserve"),
        call(tools, "references", name="reserve"),
        call(tools, "read", path="b.py", start_line=1, end_line=2),
        call(tools, "outline", path="b.py"),
    ):
        assert "now private" not in text
        assert "b.py:" not in text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.integers(-5, 12),
    length=st.integers(-3, 400),
    budget=st.integers(30, 400),
)
def test_any_read_stays_in_budget_and_never_returns_the_secret(
    project: tuple[WorkspaceIndex, Path], start: int, length: int, budget: int
) -> None:
    index, root = project
    tools = IndexTools(index, [root], estimate_text_tokens, result_tokens=budget)
    args = {"path": "shop/orders.py", "start_line": start, "end_line": start + length}
    result = tools.call("read", json.dumps(args))
    assert SECRET not in result.text
    assert result.tokens <= budget
    numbered = [ln for ln in result.text.splitlines()[1:] if ln[:1].isdigit()]
    assert len(numbered) <= 200
    assert all(":" in ln for ln in numbered)  # every quoted line names its line number

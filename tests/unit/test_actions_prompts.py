"""What the actions send: each action's recipe, the editor's view, the model's budget, the
secrets kept home and put back."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimi_lsp.actions.prompts import OUTPUT_TOKENS, build
from kimi_lsp.actions.services import EditorView, Services
from kimi_lsp.actions.target import find_target, slice_span
from kimi_lsp.config import Settings
from kimi_lsp.context import prompt_budget, redact, restore
from kimi_lsp.index import Span, WorkspaceIndex
from tests.fixtures.context.shop import SECRETS, make_shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Services, Path]:
    root = make_shop(tmp_path_factory.mktemp("shop"))
    (root / "shop" / "loose.py").write_text("def orphan_helper(x: int) -> int:\n    return x\n")
    index = WorkspaceIndex([root], state_dir=None)
    index.update()
    state = tmp_path_factory.mktemp("state")
    return Services(Settings(state_dir=state), [root], index=index), root


def _prompt(services: Services, root: Path, action: str, line: int = 13) -> str:
    path = root / "shop" / "cart.py"
    text = path.read_text()
    target = find_target(services.index, path, text, line, 8)
    built = build(services, action, target, text)
    assert built.tokens <= built.budget
    return "\n".join(m["content"] for m in built.messages)


def test_each_action_gets_its_own_recipe(shop: tuple[Services, Path]) -> None:
    services, root = shop
    explain = _prompt(services, root, "explain")
    refactor = _prompt(services, root, "refactor")
    tests = _prompt(services, root, "tests")
    # refactor: the call sites a changed signature would break, and the tests that run it
    assert "is called at (a changed signature breaks these)" in refactor
    assert "shop/report.py:6:" in refactor
    assert "Tests that exercise `total`" in refactor
    # tests: the project's fixtures and a test file as a style example
    assert "Test fixtures and helpers (conftest)" in tests
    assert "def ten() -> Money:" in tests
    assert "Example test file" in tests
    # explain: the enclosing class's outline, none of the others' parts
    assert "Outline of `Cart`" in explain
    assert "is called at" not in explain
    assert "Example test file" not in explain


def test_the_budget_is_what_the_model_leaves_after_the_answer(
    shop: tuple[Services, Path], tmp_path: Path
) -> None:
    services, root = shop
    path = root / "shop" / "cart.py"
    text = path.read_text()
    target = find_target(services.index, path, text, 13, 8)
    big = Services(
        Settings(state_dir=tmp_path, context_budget=10_000_000), [root], index=services.index
    )
    context = big.model_context()
    assert context >= 100_000  # the configured model's window, from the model table
    built = build(big, "tests", target, text)
    assert built.budget == prompt_budget(context, OUTPUT_TOKENS["tests"], cap=None)
    assert build(services, "tests", target, text).budget == 12_000  # the default cap


def test_open_documents_bring_their_files_into_the_ranking(
    shop: tuple[Services, Path], tmp_path: Path
) -> None:
    shared, root = shop
    # A budget too small for a repository map: what is shown is what was ranked.
    services = Services(Settings(state_dir=tmp_path, context_budget=2_000), [root], shared.index)
    loose = root / "shop" / "loose.py"
    assert "orphan_helper" not in _prompt(services, root, "explain")  # nothing links to it
    viewed = services.with_view(EditorView(open_documents=(loose,)))
    assert "def orphan_helper(x: int) -> int:" in _prompt(viewed, root, "explain")


def test_diagnostics_count_only_where_they_touch_the_target(tmp_path: Path) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    view = EditorView(
        diagnostics={a: [Span(3, 0, 3, 5), Span(40, 2, 41, 0)], b: [Span(3, 0, 3, 1)]}
    )
    assert view.diagnostics_in(a, Span(2, 0, 10, 0)) == [(a, Span(3, 0, 3, 5))]
    assert view.diagnostics_in(a, Span(41, 0, 50, 0)) == [(a, Span(40, 2, 41, 0))]
    assert view.diagnostics_in(b, Span(4, 0, 9, 0)) == []


def test_a_selection_to_the_end_of_the_file_keeps_its_last_line() -> None:
    text = "def f():\n    key = 1\n    return key\n"
    assert slice_span(text, Span(0, 0, 3, 0)) == text
    assert slice_span(text, Span(1, 4, 2, 4)) == "key = 1\n    "


def test_redaction_is_reversible_and_tags_each_secret_apart() -> None:
    code = (
        f"A = '{SECRETS[0]}'\nB = '{SECRETS[0]}'\nC = 'sk-live-ffffffffffffffffffffffffffffffff'\n"
    )
    hidden, count = redact(code)
    assert count == 3
    assert SECRETS[0] not in hidden
    lines = hidden.splitlines()
    assert lines[0][4:] == lines[1][4:] != lines[2][4:]  # same secret, same placeholder
    rewritten = hidden.replace("A =", "ALPHA =")
    assert restore(rewritten, code) == code.replace("A =", "ALPHA =")
    assert restore("nothing to restore", code) == "nothing to restore"


def test_a_selected_name_is_the_cursor_and_blank_edges_are_trimmed(
    shop: tuple[Services, Path],
) -> None:
    services, root = shop
    path = root / "shop" / "cart.py"
    text = path.read_text()
    lines = text.splitlines()
    row = next(i for i, line in enumerate(lines) if "def total" in line)
    col = lines[row].index("total")
    # eglot sends the word under point as the range: that is the cursor, not a selection
    word = find_target(services.index, path, text, row, col, Span(row, col, row, col + 5))
    assert word.name == "total"
    assert not word.selected
    assert "return add_vat(net, country)" in word.code
    # C-M-h marks the blank line above the function too: the selection starts at its def
    end = row + 5
    marked = find_target(services.index, path, text, row - 1, 0, Span(row - 1, 0, end, 0))
    assert marked.span.start_line == row
    assert marked.name == "total"
    assert marked.code.startswith("    def total")


def test_a_code_actions_diagnostics_reach_its_commands_view_not_the_services() -> None:
    from kimi_lsp.actions.code_actions import offers

    rng = {"start": {"line": 1, "character": 15}, "end": {"line": 1, "character": 16}}
    found = offers(
        "file:///a.py",
        rng,
        diagnostics=[{"range": rng, "message": "undefined name 'c'"}],
        available={"kimi.refactor", "kimi.explain"},
        has_target=True,
    )
    assert all(o.argument["diagnostics"] == [rng] for o in found)
    a = Path("/a.py")
    view = EditorView.for_request([a], a, found[0].argument["diagnostics"])
    assert view.diagnostics_in(a, Span(0, 0, 3, 0)) == [(a, Span(1, 15, 1, 16))]
    assert EditorView.for_request([a], a, []).diagnostics == {}
    quiet = offers("file:///a.py", rng, diagnostics=[], available={"kimi.explain"}, has_target=True)
    assert "diagnostics" not in quiet[0].argument


@pytest.mark.parametrize("action", ["explain", "refactor", "tests"])
def test_a_prompt_at_a_position_is_the_prompt_the_users_request_sends(
    shop: tuple[Services, Path], action: str
) -> None:
    """``prompt_at`` (what ``kimi-lsp context`` and the context tests and benchmarks use)
    is the user's path: the same target, the same recipe, the same bytes."""
    from kimi_lsp.actions.prompts import prompt_at
    from kimi_lsp.context.recipes import SYSTEM, instruction

    services, root = shop
    path = root / "shop" / "cart.py"
    text = path.read_text()
    target = find_target(services.index, path, text, 13, 8)
    users = build(services, action, target, text).messages
    measured = prompt_at(services, action, path, 13, 8).messages
    assert measured == users
    assert users[0]["content"].startswith(SYSTEM)
    assert users[-1]["content"].endswith(instruction(action, target.name))

"""Prompt layout: the stable prefix is byte-identical across requests and processes; each
recipe carries its parts; the budget formula; the CLI prints the messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kimi_lsp.actions.errors import IgnoredFile, NothingToWorkOn
from kimi_lsp.actions.prompts import prompt_at
from kimi_lsp.actions.services import Services
from kimi_lsp.context import BuiltContext, prompt_budget, redact
from kimi_lsp.index import Span
from tests.fixtures.context.shop import (
    IGNORED_MARKERS,
    SECRETS,
    make_shop,
    shop_services,
    with_request,
)

Shop = tuple[Services, Path]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    root = make_shop(tmp_path_factory.mktemp("shop"))
    return shop_services(root, tmp_path_factory.mktemp("state")), root


def build(
    shop: Shop,
    rel: str,
    line: int,
    action: str,
    budget: int = 3_000,
    selection: Span | None = None,
) -> BuiltContext:
    """The prompt a user's ``action`` sends at ``rel:line`` with ``contextBudget=budget``."""
    services, root = shop
    request = with_request(services, budget=budget)
    return prompt_at(request, action, root / rel, line, 4, selection=selection)


def test_the_stable_prefix_is_identical_whatever_the_request(shop: Shop, tmp_path: Path) -> None:
    a = build(shop, "shop/cart.py", 13, "explain", 12_000)
    b = build(shop, "shop/tax.py", 9, "refactor", 12_000)
    c = build(shop, "shop/money.py", 8, "tests", 12_000)
    assert a.messages[0] == b.messages[0] == c.messages[0]
    assert a.stable_prefix_tokens > 0
    assert "shop/money.py:" in a.messages[0]["content"]
    # A second index of the same files, built afresh: the same bytes.
    root = make_shop(tmp_path / "again")
    other = shop_services(root, shop[0].settings.state_dir)  # the same key for secrets
    again = build((other, root), "shop/cart.py", 13, "explain", 12_000)
    assert again.messages[0]["content"] == a.messages[0]["content"]
    assert again.messages[1]["content"] == a.messages[1]["content"]


def test_no_map_below_six_thousand_tokens_then_a_growing_one(shop: Shop) -> None:
    small = build(shop, "shop/cart.py", 13, "explain", 4_000)
    assert "Repository map" not in small.messages[0]["content"]
    assert build(shop, "shop/cart.py", 13, "explain", 12_000).stable_prefix_tokens > 100


def test_each_recipe_carries_its_parts(shop: Shop) -> None:
    explain = build(shop, "shop/money.py", 8, "explain")  # Money.add
    names = [s.name for s in explain.sections]
    assert "file outline" in names  # the enclosing class
    assert "callers" in names  # cart.py calls add
    refactor = build(shop, "shop/tax.py", 10, "refactor")  # add_vat
    user = refactor.messages[1]["content"]
    assert "shop/cart.py:" in user  # the call site a changed signature breaks
    tests = build(shop, "shop/tax.py", 10, "tests")
    user = tests.messages[1]["content"]
    assert "Example test file (tests/test_" in user
    assert "def ten() -> Money:" in user  # the fixture
    # The instruction comes last, after the target: volatile parts at the end.
    assert explain.messages[1]["content"].rstrip().endswith(explain.sections[-1].text.rstrip())


def test_ignored_files_and_planted_secrets_never_appear(shop: Shop) -> None:
    everything = ""
    redactions = 0
    secrets = Span(2, 0, 6, 0)  # the module's constants, selected
    cases = [("shop/catalog.py", 14, None), ("shop/catalog.py", 2, secrets),
             ("shop/tax.py", 10, None), ("shop/money.py", 14, None)]  # fmt: skip
    for rel, line, selected in cases:
        for action in ("explain", "refactor", "tests"):
            built = build(shop, rel, line, action, budget=6_000, selection=selected)
            everything += json.dumps(built.messages)
            redactions += built.redactions
    for secret in SECRETS:
        assert secret not in everything
    for marker in IGNORED_MARKERS:
        assert marker not in everything
    assert redactions > 0
    # An ignored file is refused, naming the rule, whatever the action: nothing is built.
    for action in ("explain", "refactor", "tests"):
        with pytest.raises(IgnoredFile, match=r"\.gitignore:1 `private/`"):
            build(shop, "private/algo.py", 3, action)
    # No definition at the cursor (a .env file has none; nor has an import line): nothing.
    for rel in (".env", "shop/tax.py"):
        with pytest.raises(NothingToWorkOn):
            build(shop, rel, 0, "explain")


def test_maintained_detectors_are_applied() -> None:
    text = 'slack = "xoxb-1234-5678-abcdefghij"\nstripe = "sk_live_abcdefghijklmnopqrstuvwx"\n'
    out, count = redact(text)
    assert count == 2
    assert "xoxb-1234" not in out
    assert "sk_live_abcdef" not in out


def test_the_budget_is_the_context_minus_the_answer_minus_a_margin_capped() -> None:
    assert prompt_budget(128_000, 8_000, cap=None) == 128_000 - 8_000 - 6_400
    assert prompt_budget(128_000, 8_000) == 12_000
    assert prompt_budget(8_000, 4_000, cap=12_000, margin=500) == 3_500
    assert prompt_budget(1_000, 4_000) == 0


def test_cli_prints_the_messages_with_token_estimates(tmp_path: Path) -> None:
    root = make_shop(tmp_path)
    (root / ".git").mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "kimi_lsp", "context", f"{root}/shop/cart.py:14:9", "--json",
         "--budget", "2000"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    data = json.loads(out.stdout)
    assert [m["role"] for m in data["messages"]] == ["system", "user"]
    assert all(isinstance(s["tokens"], int) for s in data["sections"])
    # --budget is the room for repository context; the target file's window comes on top.
    assert 0 < data["repositoryTokens"] <= 2000
    assert data["fileWindowTokens"] > 0
    assert "add_vat" in data["messages"][1]["content"]
    for secret in SECRETS:
        assert secret not in out.stdout

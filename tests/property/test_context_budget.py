"""Over random budgets, actions and cursor positions: the prompt never exceeds the budget,
and nothing from an ignored file or a planted secret is ever in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kimi_lsp.actions.errors import NothingToWorkOn
from kimi_lsp.actions.prompts import prompt_at
from kimi_lsp.actions.services import Services
from kimi_lsp.context import ACTIONS, ContextError
from kimi_lsp.index import Span
from tests.fixtures.context.shop import (
    FILES,
    IGNORED_MARKERS,
    SECRETS,
    make_shop,
    shop_services,
    with_request,
)

TARGETS = [
    rel
    for rel in FILES
    if rel.endswith(".py") and not rel.startswith("private/") and rel != "vendor_notes.py"
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Services, Path]:
    root = make_shop(tmp_path_factory.mktemp("shop"))
    return shop_services(root, tmp_path_factory.mktemp("state")), root


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    budget=st.integers(60, 6_000),
    action=st.sampled_from(ACTIONS),
    rel=st.sampled_from(TARGETS),
    line=st.integers(0, 25),
    col=st.integers(0, 12),
    select=st.booleans(),
)
def test_no_prompt_exceeds_its_budget_or_carries_a_secret_or_an_ignored_file(
    shop: tuple[Services, Path],
    budget: int,
    action: str,
    rel: str,
    line: int,
    col: int,
    select: bool,
) -> None:
    services, root = shop
    estimator = services.estimator()
    request = with_request(
        services,
        budget=budget,
        open_documents=[root / "shop" / "money.py", root / "private" / "algo.py"],
    )
    selection = Span(line, 0, line + 3, 0) if select else None
    try:
        built = prompt_at(request, action, root / rel, line, col, selection=selection)
    except NothingToWorkOn:
        # Only with no definition at the cursor (and no code selected).
        assert services.index is not None
        assert services.index.enclosing_definition(root / rel, line, col) is None
        return
    except ContextError:
        # Only when the budget cannot hold even the system text and the instruction.
        assert budget < 200
        return
    event("built")
    text = "".join(m["content"] for m in built.messages)
    measured = sum(estimator(m["content"]) + 4 for m in built.messages)
    assert measured <= budget
    assert built.tokens <= budget
    for secret in SECRETS:
        assert secret not in text
    for marker in IGNORED_MARKERS:
        assert marker not in text
    assert "private/algo.py" not in text
    assert "vendor_notes" not in text

"""Over random budgets, actions and cursor positions: the prompt never exceeds the budget,
and nothing from an ignored file or a planted secret is ever in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kimi_lsp.context import (
    ACTIONS,
    ContextError,
    RepoMap,
    TokenEstimator,
    build_action_context,
)
from kimi_lsp.index import Span, WorkspaceIndex
from tests.fixtures.context.shop import FILES, IGNORED_MARKERS, SECRETS, make_shop

TARGETS = [
    rel
    for rel in FILES
    if rel.endswith(".py") and not rel.startswith("private/") and rel != "vendor_notes.py"
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorkspaceIndex, Path, RepoMap]:
    root = make_shop(tmp_path_factory.mktemp("shop"))
    index = WorkspaceIndex([root], state_dir=None)
    index.update()
    return index, root, RepoMap(index, [root], TokenEstimator())


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
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
    shop: tuple[WorkspaceIndex, Path, RepoMap],
    budget: int,
    action: str,
    rel: str,
    line: int,
    col: int,
    select: bool,
) -> None:
    index, root, repo_map = shop
    estimator = repo_map.estimate
    try:
        built = build_action_context(
            index,
            root / rel,
            line,
            col,
            action=action,
            model_context=200_000,
            output_budget=4_000,
            budget=budget,
            estimator=estimator,
            repo_map=repo_map,
            selection=Span(line, 0, line + 3, 0) if select else None,
            open_documents=[root / "shop" / "money.py", root / "private" / "algo.py"],
        )
    except ContextError:
        # Only when the budget cannot hold even the system text and the instruction.
        assert budget < 200
        return
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

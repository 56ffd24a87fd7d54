"""The budget means the same for every engine: room for repository context, the target's
window counted apart, the total cap still holding."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimi_lsp.context import BuiltContext
from kimi_lsp.index import WorkspaceIndex
from tests.fixtures.context.explain import explain_definition


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorkspaceIndex, Path]:
    root = tmp_path_factory.mktemp("split")
    for i in range(30):
        (root / f"lib{i}.py").write_text(
            "".join(f"def helper_{i}_{j}(a, b, c):\n    return a + b + c\n\n" for j in range(20))
        )
    body = "".join(f"    x{j} = helper_{j % 30}_{j % 20}(1, 2, 3)\n" for j in range(300))
    imports = "".join(f"from lib{i} import *\n" for i in range(30))
    (root / "main.py").write_text(f"{imports}\n\ndef big():\n{body}    return 0\n")
    index = WorkspaceIndex([root], state_dir=None)
    index.update()
    return index, root


def build(
    project: tuple[WorkspaceIndex, Path], *, budget: int, repository_budget: int | None
) -> BuiltContext:
    index, root = project
    target = next(d for d in index.outline(root / "main.py") if d.name == "big")
    return explain_definition(
        index, root, target, budget=budget, repository_budget=repository_budget
    )


def test_the_repository_gets_its_budget_whatever_the_file_window_takes(
    project: tuple[WorkspaceIndex, Path],
) -> None:
    built = build(project, budget=100_000, repository_budget=2_000)
    assert built.file_window_tokens > 2_000
    assert "cut to fit" not in built.messages[1]["content"]  # the whole big function
    assert 1_500 < built.repository_tokens <= 2_000
    assert built.tokens <= 100_000


def test_without_a_repository_budget_the_file_window_shares_the_total(
    project: tuple[WorkspaceIndex, Path],
) -> None:
    built = build(project, budget=4_000, repository_budget=None)
    assert built.file_window_tokens + built.repository_tokens <= 4_000
    assert built.file_window_tokens <= 2_000  # its share of the total: cut around the cursor
    assert "cut to fit" in built.messages[1]["content"]


def test_the_total_cap_still_holds(project: tuple[WorkspaceIndex, Path]) -> None:
    built = build(project, budget=3_000, repository_budget=8_000)
    assert built.tokens <= 3_000
    assert built.repository_tokens > 0

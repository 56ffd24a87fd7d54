"""What an action works on when the buffer does not parse: typing leaves a bracket open."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimi_lsp.actions.errors import NothingToWorkOn
from kimi_lsp.actions.target import find_target
from kimi_lsp.index import Span, WorkspaceIndex

SAVED = (
    "import os\n\n\ndef other():\n    return 1\n\n\n"
    "class K:\n    def m(self, x):\n        y = 1\n        return y\n"
)
# The bracket is open at the end of the buffer (typing a function at the end of a file):
# tree-sitter's recovery then drops the enclosing class and method.
TYPING = (
    "import os\n\n\ndef other():\n    return 1\n\n\n"
    "class K:\n    def m(self, x):\n        y = 1\n\n        if (\n"
)


@pytest.fixture
def index(tmp_path: Path) -> WorkspaceIndex:
    (tmp_path / "a.py").write_text(SAVED)
    index = WorkspaceIndex([tmp_path], state_dir=None)
    index.update()
    index.open_document(tmp_path / "a.py", TYPING)
    return index


def test_a_function_left_open_while_typing_is_still_the_target(
    index: WorkspaceIndex, tmp_path: Path
) -> None:
    path = tmp_path / "a.py"
    assert index.enclosing_definition(path, 11, 10) is None  # the parse lost K and m
    for line in (9, 10, 11):  # a line of the body, a blank line, the open bracket
        target = find_target(index, path, TYPING, line, 8)
        assert target.name == "m"
        assert target.span == Span(8, 0, 11, len("        if ("))
        assert target.code == "    def m(self, x):\n        y = 1\n\n        if ("
    # A definition the parse kept is found as before.
    assert find_target(index, path, TYPING, 4, 6).name == "other"


def test_module_level_code_is_still_nothing_to_work_on(
    index: WorkspaceIndex, tmp_path: Path
) -> None:
    for line in (0, 1, 5):  # the import, the blank line after it, the one after other()
        with pytest.raises(NothingToWorkOn):
            find_target(index, tmp_path / "a.py", TYPING, line, 1)


def test_a_form_feed_is_not_a_line_break(tmp_path: Path) -> None:
    """Python sources use form feeds as page breaks; the index and LSP count lines at line
    breaks only (``str.splitlines`` would also split there and shift every line after)."""
    text = "def a():\n    return 1\n\x0c\ndef b(x):\n    return x + 2\n"
    (tmp_path / "m.py").write_text(text)
    index = WorkspaceIndex([tmp_path], state_dir=None)
    index.update()
    target = find_target(index, tmp_path / "m.py", text, 4, 4)
    assert target.name == "b"
    assert target.code == "def b(x):\n    return x + 2"

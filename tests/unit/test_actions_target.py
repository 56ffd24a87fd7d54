"""What an action works on when the buffer does not parse: typing leaves a bracket open."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimi_lsp.actions.errors import NothingToWorkOn
from kimi_lsp.actions.target import find_target
from kimi_lsp.index import DefinitionKind, Span, WorkspaceIndex

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


def indexed(tmp_path: Path, name: str, text: str) -> tuple[WorkspaceIndex, Path]:
    """A workspace of one file, indexed: the file's path and the index."""
    (tmp_path / name).write_text(text)
    index = WorkspaceIndex([tmp_path], state_dir=None)
    index.update()
    return index, tmp_path / name


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
    # The import, the blank line after it, the one after other() at the margin.
    for line, col in ((0, 1), (1, 1), (5, 0)):
        with pytest.raises(NothingToWorkOn):
            find_target(index, tmp_path / "a.py", TYPING, line, col)


def test_a_blank_line_indented_under_a_function_is_in_it(
    index: WorkspaceIndex, tmp_path: Path
) -> None:
    """Enter at the end of a body puts the cursor on a blank line the parse leaves out of
    the function; indented under it, the cursor is in it (the margin is module level)."""
    path = tmp_path / "a.py"
    assert index.enclosing_definition(path, 5, 4) is None
    target = find_target(index, path, TYPING, 5, 4)
    assert target.name == "other"
    assert target.definition == index.enclosing_definition(path, 4, 4)
    assert target.code == "def other():\n    return 1"


def test_a_method_the_parse_lost_gets_a_definition_from_its_header(
    index: WorkspaceIndex, tmp_path: Path
) -> None:
    """The context follows the target's class and name (type flow, callers): a method
    whose parse was lost still says it is ``K.m``."""
    target = find_target(index, tmp_path / "a.py", TYPING, 10, 8)
    d = target.definition
    assert d is not None
    assert (d.name, d.kind, d.scope, d.signature) == (
        "m",
        DefinitionKind.METHOD,
        "K",
        "def m(self, x):",
    )
    assert d.name_range == Span(8, 8, 8, 9)
    assert d.range == target.span


def test_a_docstring_left_open_keeps_the_function_and_its_class(tmp_path: Path) -> None:
    text = (
        'class Shop:\n    def checkout(self, cart):\n        """Pay for the cart.\n\n        Then\n'
    )
    index, path = indexed(tmp_path, "s.py", text)
    target = find_target(index, path, text, 4, 8)
    assert target.definition is not None
    assert target.definition.qualified_name == "Shop.checkout"
    assert target.span == Span(1, 0, 4, len("        Then"))


def test_a_form_feed_is_not_a_line_break(tmp_path: Path) -> None:
    """Python sources use form feeds as page breaks; the index and LSP count lines at line
    breaks only (``str.splitlines`` would also split there and shift every line after)."""
    text = "def a():\n    return 1\n\x0c\ndef b(x):\n    return x + 2\n"
    index, path = indexed(tmp_path, "m.py", text)
    target = find_target(index, path, text, 4, 4)
    assert target.name == "b"
    assert target.code == "def b(x):\n    return x + 2"


def test_a_method_the_parse_lost_inside_the_class_it_kept_is_the_target(tmp_path: Path) -> None:
    """A signature being typed (its bracket open) loses the method and leaves the class:
    the target is the method, not the whole class around the cursor."""
    text = (
        "class Shop:\n    def total(self):\n        return 1\n\n"
        "    def checkout(\n        self, cart: int\n"
    )
    index, path = indexed(tmp_path, "s.py", text)
    kept = index.enclosing_definition(path, 5, 8)
    assert kept is not None
    assert kept.qualified_name == "Shop"
    target = find_target(index, path, text, 5, 8)
    assert target.definition is not None
    assert (target.definition.qualified_name, target.definition.kind) == (
        "Shop.checkout",
        DefinitionKind.METHOD,
    )
    assert target.code == "    def checkout(\n        self, cart: int"
    # A line of the class the parse kept, in no method, is still the class.
    assert find_target(index, path, text, 0, 4).name == "Shop"


def test_a_lost_header_with_wide_characters_counts_utf16_columns(tmp_path: Path) -> None:
    """The made definition's columns are UTF-16, as the index's are: "café" is four units
    (five bytes in Neovim's count), and the emoji on the last line is two."""
    text = (
        "class Menu:\n    def total(self):\n        return 1\n\n"
        '    def café(\n        self, sign="€🍰"\n'
    )
    index, path = indexed(tmp_path, "m.py", text)
    assert [d.qualified_name for d in index.outline(path)] == ["Menu", "Menu.total"]
    target = find_target(index, path, text, 5, 8)
    d = target.definition
    assert d is not None
    assert d.qualified_name == "Menu.café"
    assert d.name_range == Span(4, 8, 4, 12)
    assert target.span == Span(4, 0, 5, len('        self, sign="€') + 2 + 1)
    assert target.code.endswith('sign="€🍰"')


# A TypeScript method being typed at the end of its file, with no `}` yet (an editor without
# auto-closed brackets: Neovim's and Emacs's defaults). The `{` in the string and the comment
# are not the user's brackets.
TS_SAVED = (
    "export class Page {\n  title(): string {\n    return '{';\n  }\n\n"
    "  screenshot(options: Options): number {\n    // { a comment\n    return 1;\n  }\n}\n"
)
TS_TYPING = (
    "export class Page {\n  title(): string {\n    return '{';\n  }\n\n"
    "  screenshot(options: Options): number {\n    // { a comment\n"
    "    const { clip } = options;\n    if (clip) {\n      \n"
)


def test_a_brace_method_left_open_while_typing_is_the_target_within_its_class(
    tmp_path: Path,
) -> None:
    index, path = indexed(tmp_path, "page.ts", TS_SAVED)
    index.open_document(path, TS_TYPING)
    assert index.enclosing_definition(path, 9, 6) is None  # the parse lost it
    # The cursor on the last, blank line, at the indentation the editor left.
    target = find_target(index, path, TS_TYPING, 9, 6)
    assert target.definition is not None
    assert (target.name, target.definition.scope) == ("screenshot", "Page")
    assert target.definition.kind == DefinitionKind.METHOD
    assert target.span == Span(5, 0, 9, 6)  # from its header to the end of the buffer
    assert target.code.startswith("  screenshot(options: Options): number {")
    page = next(d for d in index.closed_outline(path) if d.name == "Page")
    assert page.range.end_line == 9  # the class ends where the text does, not after it


def test_brackets_closed_are_only_the_ones_left_open(tmp_path: Path) -> None:
    from kimi_lsp.index.extract import close_brackets

    closed = close_brackets(TS_TYPING.encode(), "typescript")
    assert closed == TS_TYPING.encode() + b"\n}}}"  # `if`, `screenshot`, `Page`
    assert close_brackets(TS_SAVED.encode(), "typescript") is None  # nothing open
    assert close_brackets(b"def f(:\n", "python") is None  # blocks by indentation
    # A `(` left open inside a body the file closes: the body's `}` closes it too.
    assert close_brackets(b"class A {\n  f() {\n    log(\n  }\n}\n", "typescript") is None
    index, path = indexed(tmp_path, "page.ts", TS_SAVED)
    assert index.closed_outline(path) == index.outline(path)


def test_a_brace_method_being_typed_is_found_after_the_last_line_break_and_wide_characters(
    tmp_path: Path,
) -> None:
    """Enter after the last line puts the cursor on the empty line after the final break
    (an LSP position past the text's last line); the last line holds "€" and an emoji, so
    UTF-16 columns differ from characters and from Neovim's bytes."""
    typing = TS_TYPING[: TS_TYPING.rindex("      \n")] + '      log("€ 😀", clip\n'
    index, path = indexed(tmp_path, "page.ts", TS_SAVED)
    index.open_document(path, typing)
    end = len(typing.splitlines())  # the line after the final break
    target = find_target(index, path, typing, end, 0)
    assert target.definition is not None
    assert (target.name, target.definition.scope) == ("screenshot", "Page")
    last = typing.splitlines()[-1]
    assert target.span == Span(5, 0, end - 1, len(last.encode("utf-16-le")) // 2)
    assert target.code.endswith('log("€ 😀", clip')


def test_a_workspace_refactor_of_a_class_whose_method_is_being_typed_is_about_the_class(
    tmp_path: Path,
) -> None:
    """The workspace refactor finds its symbol as the explain does: the parse of the buffer
    lost `Page` (a method's `}` not yet written), the text with its brackets closed has it."""
    from kimi_lsp.actions.services import Services
    from kimi_lsp.actions.workspace import plan_workspace
    from kimi_lsp.config import Settings

    (tmp_path / "shop.ts").write_text(
        "import { Page } from './page';\n\nexport function open(): Page {\n"
        "  return new Page();\n}\n"
    )
    index, path = indexed(tmp_path, "page.ts", TS_SAVED)
    index.open_document(path, TS_TYPING)
    assert index.enclosing_definition(path, 0, 14) is None  # the parse lost the class
    services = Services(Settings(state_dir=tmp_path / "state"), [tmp_path], index=index)
    buffers = {path: TS_TYPING}

    def read(p: Path) -> str | None:
        return buffers.get(p) or p.read_text()

    plan = plan_workspace(services, "rename Page to Tab", read, symbol=(path, 0, 14))
    assert plan.symbol == "Page"
    assert [f.path.name for f in plan.files] == ["page.ts", "shop.ts"]  # where it is used
    assert next(f for f in plan.files if f.path == path).text == TS_TYPING  # the buffer
    # Inside the method being typed: the method, not its class.
    assert plan_workspace(services, "rename", read, symbol=(path, 8, 6)).symbol == "screenshot"

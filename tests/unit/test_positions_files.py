"""Where a position's file is: its root-relative name and its text as the editor has it."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from kimi_lsp.positions import lsp_lines, read_text, relative, text_lines


def test_a_file_is_named_from_the_first_root_that_holds_it(tmp_path: Path) -> None:
    outer, inner = tmp_path / "repo", tmp_path / "repo" / "sub"
    path = inner / "pkg" / "mod.py"
    assert relative(path, [inner, outer]) == "pkg/mod.py"
    assert relative(path, [outer, inner]) == "sub/pkg/mod.py"
    assert relative(tmp_path / "else.py", [outer]) == (tmp_path / "else.py").as_posix()


def test_the_open_buffer_wins_over_the_disk_and_bad_bytes_never_crash(tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    path.write_bytes(b"x = '\xe2\x82'  # cut in two\n")
    assert read_text(path, "unsaved = 1\n") == "unsaved = 1\n"
    assert read_text(path) == "x = '\ufffd'  # cut in two\n"
    # A file to be rewritten whole must keep its bytes: refused, not replaced.
    assert read_text(path, strict=True) is None
    assert read_text(tmp_path / "missing.py") is None
    assert read_text(tmp_path) is None  # a folder


def test_lines_split_where_lsp_splits() -> None:
    assert text_lines("a\r\nb\x0cc\u2028d\re\n") == ["a", "b\x0cc\u2028d", "e"]
    assert text_lines("a\n\n") == ["a", ""]
    assert text_lines("") == []


@given(st.text(alphabet="a\n\r\x0c\u2028é"))
def test_lines_are_the_lsp_lines_without_their_breaks(text: str) -> None:
    assert text_lines(text) == [line.rstrip("\r\n") for line in lsp_lines(text)]

"""`Columns`: which rows of a file hold non-ASCII bytes, and the UTF-16 columns on them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kimi_lsp.index.extract import Columns

lines = st.lists(
    st.text(st.sampled_from([*list("ab ("), "é", "€", "🙂", "漢"]), max_size=8), max_size=8
)


@given(lines, st.booleans())
def test_wide_rows_are_the_rows_holding_a_non_ascii_character(rows: list[str], end: bool) -> None:
    source = ("\n".join(rows) + ("\n" if end else "")).encode("utf-8")
    expected: dict[int, int] = {}
    start = 0
    for row, line in enumerate(source.split(b"\n")):
        if not line.isascii():
            expected[row] = start
        start += len(line) + 1
    assert Columns(source).wide == expected


@given(lines)
def test_a_column_counts_the_utf16_units_before_it(rows: list[str]) -> None:
    source = "\n".join(rows).encode("utf-8")
    cols = Columns(source)
    for row, line in enumerate(rows):
        for i in range(len(line) + 1):
            byte_col = len(line[:i].encode("utf-8"))
            assert cols.col((row, byte_col)) == len(line[:i].encode("utf-16-le")) // 2

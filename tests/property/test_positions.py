"""The one positions module: columns in each encoding, checked against Python's own codecs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kimi_lsp.positions import (
    ENCODINGS,
    Encoding,
    byte_to_character,
    character_to_byte,
    convert_column,
    encoding_of,
    text_len,
    to_index,
    utf8_bytes,
    valid_text,
)

CODECS = {"utf-8": ("utf-8", 1), "utf-16": ("utf-16-le", 2), "utf-32": ("utf-32-le", 4)}
chars = st.text(
    st.sampled_from([*list("ab \t("), "é", "€", "—", "“", "”", "🙂", "漢"]), max_size=12
)


def reference_len(text: str, enc: str) -> int:
    codec, width = CODECS[enc]
    return len(text.encode(codec)) // width


@pytest.mark.parametrize("enc", ENCODINGS)
@given(line=chars, data=st.data())
def test_columns_round_trip_in_every_encoding(
    enc: Encoding, line: str, data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(line)))
    col = reference_len(line[:i], enc)
    assert text_len(line[:i], enc) == col
    assert to_index(line, col, enc) == i
    for other in ENCODINGS:
        assert convert_column(line, col, enc, other) == reference_len(line[:i], other)
    raw = line.encode()
    assert character_to_byte(raw, col, enc) == len(line[:i].encode())
    assert byte_to_character(raw, len(line[:i].encode()), enc) == col


def test_a_column_inside_a_character_or_past_the_end_moves_to_a_boundary() -> None:
    assert to_index("a🙂b", 2, "utf-16") == 2  # half of the emoji: after it
    assert to_index("a€b", 2, "utf-8") == 2  # inside the three bytes of "€": after it
    assert to_index("ab", 9, "utf-8") == 2


def test_invalid_bytes_an_editor_sent_count_as_the_bytes_they_were() -> None:
    text = b'x = "\xa6"'.decode("utf-8", "surrogateescape")
    assert text_len(text, "utf-8") == 7
    assert utf8_bytes(text) == b'x = "\xa6"'
    assert valid_text(text) == 'x = "\ufffd"'
    assert len(valid_text(text)) == len(text)  # one for one: indices stay


def test_the_negotiated_encoding_defaults_to_utf16() -> None:
    assert encoding_of("utf-8") == "utf-8"
    assert encoding_of(None) == "utf-16"
    assert encoding_of("latin-1") == "utf-16"

"""The edit engine, against a model: whatever the chunking, the document ends up exactly right,
in each position encoding a client may negotiate (UTF-8 bytes, UTF-16 units, UTF-32 code
points), with multi-byte and astral text in and around the target."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from lsprotocol import types as T

from kimi_lsp.edits.answer import code_so_far
from kimi_lsp.edits.stream import (
    Conflict,
    RegionWriter,
    apply_edits,
    convert_edits,
    find_review_block,
    resolve_review,
    review_block,
    split_lines,
)
from kimi_lsp.positions import DEFAULT, ENCODINGS, Encoding, to_index

apply = apply_edits
each_encoding = pytest.mark.parametrize("enc", ENCODINGS)


def in_neovim(text: str, edits: list[T.TextEdit], enc: Encoding = DEFAULT) -> str:
    """``vim.lsp.util.apply_text_edits`` of Neovim 0.10/0.11 on its model of a document: lines
    without breaks and 'eol' (a final newline), then the text it reports back. A port for
    "\\n" documents and edits at line starts and ends, the only ones the writer makes; Neovim
    is the client whose reading of edits past the last line differs from the spec's."""
    buf = text.split("\n")
    eol = len(buf) > 1 and buf[-1] == ""
    if eol:
        buf.pop()
    has_eol_edit = False
    order = sorted(
        enumerate(edits),
        key=lambda ie: (ie[1].range.start.line, ie[1].range.start.character, ie[0]),
        reverse=True,
    )
    for _, edit in order:
        new = edit.new_text.split("\n")
        start, end = edit.range.start, edit.range.end
        srow, erow = start.line, end.line
        scol = to_index(buf[srow], start.character, enc) if srow < len(buf) else start.character
        ecol = to_index(buf[erow], end.character, enc) if erow < len(buf) else end.character
        size = len(buf)
        if size <= srow:
            buf[size:size] = new  # whole lines after the last: the text's final "" stays a line
            continue
        last_len = len(buf[min(erow, size - 1)])
        if size <= erow:
            erow, ecol, has_eol_edit = size - 1, last_len, True
        ecol = min(ecol, last_len)
        new[0] = buf[srow][:scol] + new[0]
        new[-1] += buf[erow][ecol:]
        buf[srow : erow + 1] = new
    if has_eol_edit and buf[-1] == "" and len(buf) > 1:
        buf.pop()  # 'fixeol': the extra empty line an edit past the end made
    return "\n".join(buf) + ("\n" if eol else "")


def same_in_neovim(text: str, edits: list[T.TextEdit], enc: Encoding = DEFAULT) -> bool:
    """Neovim ends in the text LSP's semantics give. Not compared: an empty document (the buffer
    keeps one empty line) and edits that add or remove the final newline ('eol' is an option
    there, which no edit changes)."""
    want = apply(text, edits, enc)
    if not text or not want or want.endswith("\n") != text.endswith("\n"):
        return True
    # One that ends past the last line Neovim applies in two steps, and reports the first
    # (an empty last line) as a change of its own, which looks like the user's typing.
    past_the_end = text.count("\n") + (not text.endswith("\n"))
    if any(e.range.end.line >= past_the_end for e in edits):
        return False
    return in_neovim(text, edits, enc) == want


WIDE = ["é", "€", "—", "“", "”", "😀", "🙂", "字", "漢"]  # 2-, 3- and 4-byte UTF-8; astral
line_text = st.text(alphabet=st.sampled_from([*list("ab xy(){}:=\t"), *WIDE]), max_size=8)
lines_st = st.lists(line_text.map(lambda s: s + "\n"), max_size=8)


@each_encoding
@settings(max_examples=150, deadline=None)
@given(
    doc=lines_st,
    data=st.data(),
    answer=lines_st,
    no_final_newline=st.booleans(),
)
def test_streamed_steps_end_in_the_document_with_the_region_replaced(
    enc: Encoding, doc: list[str], data: st.DataObject, answer: list[str], no_final_newline: bool
) -> None:
    if no_final_newline and doc:
        doc[-1] = doc[-1].rstrip("\n")
        if not doc[-1]:
            doc.pop()  # an empty last "line" is no line at all
    start = data.draw(st.integers(0, len(doc)))
    end = data.draw(st.integers(start, len(doc)))
    assume(end > start or not no_final_newline)  # a target is never empty at such an end
    text = "".join(doc)
    writer = RegionWriter(start, doc[start:end], enc)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(answer)), max_size=4)))
    for cut in [*cuts, len(answer)]:
        edits = writer.step(text, answer[:cut])
        assert not isinstance(edits, Conflict)
        assert same_in_neovim(text, edits, enc)
        text = apply(text, edits, enc)
        writer.commit()
    expected_region = "".join(answer)
    expected = "".join(doc[:start]) + expected_region + "".join(doc[end:])
    if no_final_newline and doc and end == len(doc) and answer and not doc[-1].endswith("\n"):
        expected = expected.removesuffix("\n")
    assert text == expected


@each_encoding
@settings(max_examples=100, deadline=None)
@given(
    doc=lines_st,
    data=st.data(),
    answer=lines_st,
    typed=st.lists(line_text, min_size=1, max_size=3),
)
def test_user_lines_above_or_below_the_region_are_kept_and_the_region_follows(
    enc: Encoding, doc: list[str], data: st.DataObject, answer: list[str], typed: list[str]
) -> None:
    start = data.draw(st.integers(0, len(doc)))
    end = data.draw(st.integers(start, len(doc)))
    assume(answer)
    writer = RegionWriter(start, doc[start:end], enc)
    text = "".join(doc)
    edits = writer.step(text, answer[: max(1, len(answer) // 2)])
    assert not isinstance(edits, Conflict)
    text = apply(text, edits, enc)
    writer.commit()
    user = "".join(t.replace("\n", "") + "\n" for t in typed)
    lines = split_lines(text)
    above = data.draw(st.booleans())
    at = data.draw(st.integers(0, writer.start) if above else st.integers(writer.end, len(lines)))
    where = T.Range(T.Position(at, 0), T.Position(at, 0))
    text = "".join(lines[:at]) + user + "".join(lines[at:])
    assert writer.user_changed(where, user) is None
    result = writer.step(text, answer)
    assert not isinstance(result, Conflict)
    text = apply(text, result, enc)
    assert user in text
    assert "".join(answer) in text
    if above:
        assert text.startswith("".join(lines[:at]) + user)
    else:
        assert text.endswith(user + "".join(lines[at:]))


def test_an_edit_inside_the_region_is_a_conflict() -> None:
    doc = "a\nb\nc\nd\n"
    writer = RegionWriter(1, ["b\n", "c\n"])
    edits = writer.step(doc, ["B\n"])
    assert not isinstance(edits, Conflict)
    doc = apply(doc, edits)
    writer.commit()
    assert doc == "a\nB\nd\n"
    user_typed = "a\nB and mine\nd\n"
    inside = T.Range(T.Position(1, 1), T.Position(1, 1))
    assert isinstance(writer.user_changed(inside, " and mine"), Conflict)
    assert isinstance(writer.step(user_typed, ["B\n", "C\n"]), Conflict)
    # Changes nobody reported are caught too: the region's text is checked before every write.
    other = RegionWriter(1, ["b\n"])
    assert isinstance(other.step("a\nX\nc\n", ["B\n"]), Conflict)


def _region(doc: list[str], data: st.DataObject, no_final_newline: bool) -> tuple[int, int]:
    """Lines [start, end) of ``doc`` to rewrite; ``doc`` loses its final newline if asked."""
    if no_final_newline and doc:
        doc[-1] = doc[-1].rstrip("\n")
        if not doc[-1]:
            doc.pop()
    start = data.draw(st.integers(0, len(doc)))
    end = data.draw(st.integers(start, len(doc)))
    assume(end > start or not no_final_newline)
    return start, end


@each_encoding
@settings(max_examples=150, deadline=None)
@given(doc=lines_st, data=st.data(), answer=lines_st, no_final_newline=st.booleans())
def test_review_reject_restores_byte_for_byte_and_accept_keeps_the_answer(
    enc: Encoding, doc: list[str], data: st.DataObject, answer: list[str], no_final_newline: bool
) -> None:
    start, end = _region(doc, data, no_final_newline)
    original = "".join(doc)
    writer = RegionWriter(start, doc[start:end], enc)
    edits = writer.step(original, review_block(doc[start:end], answer, final=True))
    assert not isinstance(edits, Conflict)
    previewed = apply(original, edits, enc)
    assert same_in_neovim(original, edits, enc)
    block = find_review_block(previewed, start)
    assert block is not None
    reject, accept = (
        resolve_review(previewed, block, accept=a, encoding=enc) for a in (False, True)
    )
    assert apply(previewed, [reject], enc) == original
    assert same_in_neovim(previewed, [reject], enc)
    assert same_in_neovim(previewed, [accept], enc)
    accepted = apply(previewed, [accept], enc)
    want = "".join(doc[:start]) + "".join(answer) + "".join(doc[end:])
    # An answer of nothing at the end of a file leaves the line before as it was.
    if no_final_newline and doc and end == len(doc) and not doc[-1].endswith("\n") and answer:
        want = want.removesuffix("\n")
    assert accepted == want


def test_code_so_far_strips_fences_and_chatter_and_waits_for_whole_lines() -> None:
    answer = "Here you go:\n```python\ndef f():\n    return 1\n```\nHope it helps."
    assert code_so_far(answer, final=True) == ["def f():\n", "    return 1\n"]
    assert code_so_far("Sure:\n```py\ndef f():\n    ret", final=False) == ["def f():\n"]
    assert code_so_far("Sure, one moment", final=False) == []
    assert code_so_far("x = 1\n", final=True) == ["x = 1\n"]


def test_inserts_at_one_position_come_in_the_order_of_the_list() -> None:
    at = T.Range(T.Position(0, 0), T.Position(0, 0))
    first, second = T.TextEdit(range=at, new_text="x"), T.TextEdit(range=at, new_text="y")
    assert apply("a\n", [first, second]) == "xya\n"
    whole = T.TextEdit(range=T.Range(T.Position(0, 0), T.Position(1, 0)), new_text="b\n")
    assert apply("a\n", [first, whole]) == "xb\n"


@each_encoding
@settings(max_examples=150, deadline=None)
@given(doc=lines_st, data=st.data(), answer=lines_st, no_final_newline=st.booleans())
def test_edits_made_in_utf16_and_recounted_for_the_client_apply_the_same(
    enc: Encoding, doc: list[str], data: st.DataObject, answer: list[str], no_final_newline: bool
) -> None:
    """What the server does: the library computes in UTF-16, the edge recounts each edit with
    the document's text for the client's encoding, and the client applies it in that one."""
    start, end = _region(doc, data, no_final_newline)
    text = "".join(doc)
    block = review_block(doc[start:end], answer, final=True)
    edits = RegionWriter(start, doc[start:end]).step(text, block)
    assert not isinstance(edits, Conflict)
    sent = convert_edits(text, edits, DEFAULT, enc)
    assert apply(text, sent, enc) == apply(text, edits)
    assert same_in_neovim(text, sent, enc)
    assert convert_edits(text, sent, enc, DEFAULT) == edits  # and back, unchanged


@each_encoding
def test_the_end_of_a_document_without_a_final_newline_is_counted_in_the_encoding(
    enc: Encoding,
) -> None:
    """The Neovim corruption: the last line's end, where "…" sits, counted in UTF-16 and read as
    bytes, cut the character in two. Each encoding's count lands exactly on the end."""
    doc = ["def total(xs):\n", "    return sum(xs)  # “…” €\n", "    # 🙂 漢字 — end…"]
    writer = RegionWriter(1, doc[1:], enc)
    edits = writer.step("".join(doc), ["    return 0\n"])
    assert not isinstance(edits, Conflict)
    want = "def total(xs):\n    return 0"
    assert apply("".join(doc), edits, enc) == want
    assert in_neovim("".join(doc), edits, enc) == want
    last = "    # 🙂 漢字 — end…"
    units = {"utf-8": len(last.encode()), "utf-16": len(last.encode("utf-16-le")) // 2}
    ends = {e.range.end.character for e in edits if e.range.end.line == 2}
    assert ends == {units.get(enc, len(last))}

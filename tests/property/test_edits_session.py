"""EditSession against a model client: whatever the document, the target, the chunking and the
user's typing outside the target, the document ends up exactly right."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types as T

from kimi_lsp.edits import RAW, EditSession, LineIndex, SessionState

_BREAK = re.compile(r"\r\n|\r|\n")


def utf16_offset(text: str, pos: T.Position) -> int:
    """An independent reading of an LSP position: via the UTF-16 encoding itself."""
    starts = [0] + [m.end() for m in _BREAK.finditer(text)]
    if pos.line >= len(starts):
        return len(text)
    start = starts[pos.line]
    m = _BREAK.search(text, start)
    line = text[start : m.start() if m else len(text)]
    units = line.encode("utf-16-le")[: 2 * pos.character]
    return start + len(units.decode("utf-16-le"))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Client:
    """What an editor does: checks the version, applies the edits, echoes a didChange."""

    def __init__(self, text: str, version: int = 1) -> None:
        self.text, self.version = text, version
        self.edits_seen = 0

    def apply(
        self, session: EditSession, edit: T.TextDocumentEdit | None, *, echo_first: bool = True
    ) -> bool:
        if edit is None:
            return True
        self.edits_seen += 1
        if edit.text_document.version != self.version:
            session.applied(False, "version mismatch")
            return False
        spans = sorted(
            (
                (utf16_offset(self.text, e.range.start), utf16_offset(self.text, e.range.end), e)
                for e in edit.edits
            ),
            key=lambda s: s[0],
            reverse=True,
        )
        changes: list[T.TextDocumentContentChangeEvent] = []
        for a, b, e in spans:  # last first, so each range is still valid when applied
            assert a <= b
            self.text = self.text[:a] + e.new_text + self.text[b:]
            changes.append(T.TextDocumentContentChangePartial(range=e.range, text=e.new_text))
        self.version += 1
        if echo_first:
            session.user_changed(self.version, changes)
            session.applied(True)
        else:
            session.applied(True)
            session.user_changed(self.version, changes)
        return True

    def type(self, session: EditSession, offset: int, typed: str, remove: int = 0) -> None:
        index = LineIndex(self.text)
        rng = T.Range(index.position(offset), index.position(offset + remove))
        self.text = self.text[:offset] + typed + self.text[offset + remove :]
        self.version += 1
        session.user_changed(
            self.version, [T.TextDocumentContentChangePartial(range=rng, text=typed)]
        )


def drain(session: EditSession, client: Client) -> None:
    client.apply(session, session.finish())
    for _ in range(5):
        if not session.needs_flush:
            break
        client.apply(session, session.flush())


chars = st.sampled_from([*"ab xy(){}:=\t", "é", "😀", "\U0001d518", "字", "\n", "\n", "\r\n", "\r"])
docs = st.lists(chars, max_size=30).map("".join)


def chunks(text: str, cuts: Sequence[int]) -> list[str]:
    points = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


def target_of(doc: str, a: int, b: int) -> tuple[int, int, T.Range]:
    a, b = sorted((a % (len(doc) + 1), b % (len(doc) + 1)))
    # Never split a \r\n pair: no editor can put a position between the two.
    if 0 < a < len(doc) and doc[a - 1 : a + 1] == "\r\n":
        a -= 1
    if 0 < b < len(doc) and doc[b - 1 : b + 1] == "\r\n":
        b += 1
    index = LineIndex(doc)
    rng = T.Range(index.position(a), index.position(b))
    assert (utf16_offset(doc, rng.start), utf16_offset(doc, rng.end)) == (a, b)
    return a, b, rng


@settings(max_examples=300, deadline=None)
@given(
    doc=docs,
    ends=st.tuples(st.integers(0, 99), st.integers(0, 99)),
    answer=docs,
    cuts=st.lists(st.integers(0, 99), max_size=6),
    steps=st.lists(st.floats(0, 0.2), min_size=6, max_size=6),
    echo_first=st.booleans(),
)
def test_all_edits_in_order_give_the_document_with_the_target_replaced(
    doc: str,
    ends: tuple[int, int],
    answer: str,
    cuts: list[int],
    steps: list[float],
    echo_first: bool,
) -> None:
    a, b, rng = target_of(doc, *ends)
    clock = Clock()
    session = EditSession("file:///x", doc, 1, rng, post=RAW, clock=clock)
    client = Client(doc)
    for piece, step in zip(chunks(answer, cuts), steps * 7, strict=False):
        clock.now += step
        client.apply(session, session.feed(piece), echo_first=echo_first)
        assert session.text == client.text
    drain(session, client)
    assert client.text == doc[:a] + answer + doc[b:]
    assert session.state is SessionState.DONE
    assert session.version == client.version


@settings(max_examples=300, deadline=None)
@given(
    doc=docs,
    ends=st.tuples(st.integers(0, 99), st.integers(0, 99)),
    answer=docs,
    cuts=st.lists(st.integers(0, 99), max_size=5),
    typing=st.lists(
        st.tuples(
            st.booleans(), st.integers(0, 99), st.lists(chars, min_size=1, max_size=4).map("".join)
        ),
        max_size=4,
    ),
)
def test_user_edits_outside_the_target_are_kept_and_the_target_follows(
    doc: str,
    ends: tuple[int, int],
    answer: str,
    cuts: list[int],
    typing: list[tuple[bool, int, str]],
) -> None:
    a, b, rng = target_of(doc, *ends)
    before, after = doc[:a], doc[b:]
    clock = Clock()
    session = EditSession("file:///x", doc, 7, rng, post=RAW, clock=clock)
    client = Client(doc, 7)
    pieces = chunks(answer, cuts)
    for i, piece in enumerate(pieces):
        clock.now += 1
        client.apply(session, session.feed(piece))
        if i < len(typing):
            above, where, typed = typing[i]
            shown_len = len(client.text) - len(before) - len(after)
            if above:
                at = where % (len(before) + 1)
                pos = at
            else:
                lo = 0 if shown_len else 1  # at an empty target's spot it counts as above
                if len(after) < lo:
                    continue
                at = lo + where % (len(after) - lo + 1)
                pos = len(before) + shown_len + at
            text = client.text
            if (
                text[pos - 1 : pos + 1] == "\r\n"  # no editor puts a cursor inside a \r\n
                or (pos and text[pos - 1] == "\r" and typed.startswith("\n"))
                or (typed.endswith("\r") and text[pos : pos + 1] == "\n")
            ):
                continue
            client.type(session, pos, typed)
            if above:
                before = before[:at] + typed + before[at:]
            else:
                after = after[:at] + typed + after[at:]
            assert session.state is SessionState.WRITING
    drain(session, client)
    assert client.text == before + answer + after
    assert session.state is SessionState.DONE


@settings(max_examples=200, deadline=None)
@given(
    doc=docs,
    ends=st.tuples(st.integers(0, 99), st.integers(0, 99)),
    answer=docs,
    cuts=st.lists(st.integers(0, 99), max_size=4),
    accept=st.booleans(),
)
def test_review_reject_restores_byte_for_byte_and_accept_leaves_the_answer(
    doc: str, ends: tuple[int, int], answer: str, cuts: list[int], accept: bool
) -> None:
    _, _, rng = target_of(doc, *ends)
    clock = Clock()
    session = EditSession("file:///x", doc, 1, rng, post=RAW, review=True, clock=clock)
    # Review mode takes whole lines: the target grows to them.
    original = session.original
    a = doc.index(original) if original else LineIndex(doc).offset(session.target.start)
    a = LineIndex(doc).offset(session.target.start)
    b = a + len(original)
    assert doc[a:b] == original
    client = Client(doc)
    for piece in chunks(answer, cuts):
        clock.now += 1
        client.apply(session, session.feed(piece))
    drain(session, client)
    assert session.state is SessionState.REVIEW
    assert "<<<<<<< original" in client.text
    client.apply(session, session.accept() if accept else session.reject())
    assert session.state is SessionState.DONE
    if accept:
        assert client.text == doc[:a] + answer + doc[b:]
    else:
        assert client.text == doc

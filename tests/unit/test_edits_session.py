"""EditSession behaviours one at a time: pacing, versions, the user's edits, post-processing."""

from __future__ import annotations

from lsprotocol import types as T

from kimi_lsp.edits import (
    RAW,
    EditSession,
    LineIndex,
    SessionState,
    apply_text_edits,
    minimal_edits,
)
from tests.property.test_edits_session import Client, Clock, drain

DOC = "import os\n\ndef foo(x):\n    return x+1\n\nprint(foo(2))\n"
FOO = T.Range(T.Position(2, 0), T.Position(4, 0))  # the two lines of foo


def session(
    doc: str = DOC, target: T.Range = FOO, **options: object
) -> tuple[EditSession, Client, Clock]:
    clock = Clock()
    s = EditSession("file:///a.py", doc, 3, target, clock=clock, **options)  # type: ignore[arg-type]
    return s, Client(doc, 3), clock


ANSWER = "Here it is:\n```python\ndef foo(x: int) -> int:\n    return x + 1\n```\nDone."


def test_fences_and_chatter_are_stripped_and_the_answer_replaces_the_target() -> None:
    s, client, clock = session()
    for ch in ANSWER:
        clock.now += 0.01
        client.apply(s, s.feed(ch))
    drain(s, client)
    assert (
        client.text == "import os\n\ndef foo(x: int) -> int:\n    return x + 1\n\nprint(foo(2))\n"
    )
    assert s.state is SessionState.DONE


def test_at_most_one_edit_per_interval_of_the_injected_clock() -> None:
    s, client, clock = session(post=RAW)
    sent = 0
    for _ in range(50):
        clock.now += 0.01  # 50 deltas in half a second
        edit = s.feed("x\n")
        sent += edit is not None
        client.apply(s, edit)
    assert 4 <= sent <= 6
    drain(s, client)
    assert "x\n" * 50 in client.text


def test_edits_carry_the_version_and_the_echo_moves_it() -> None:
    s, client, clock = session(post=RAW)
    edit = s.feed("def foo():\n")
    assert edit is not None
    assert edit.text_document.version == 3
    assert s.waiting
    clock.now += 1
    assert s.feed("    pass\n") is None  # one edit in flight at a time
    client.apply(s, edit, echo_first=False)
    assert (s.version, s.written_version) == (4, 4)
    edit = s.flush()
    assert edit is not None
    assert edit.text_document.version == 4


def test_a_refused_edit_turns_into_a_preview() -> None:
    s, _, _ = session()
    s.feed("```python\ndef foo(x):\n")
    s.applied(False, "the document changed")
    assert s.state is SessionState.PREVIEW
    assert "did not apply" in (s.stop_reason or "")
    s.feed("    return 2\n```\n")
    assert s.finish() is None
    assert s.preview == "def foo(x):\n    return 2\n"


def test_typing_inside_the_target_stops_writing_and_keeps_the_users_text() -> None:
    s, client, clock = session(post=RAW)
    client.apply(s, s.feed("def foo(y):\n"))
    at = client.text.index("foo(y)") + 4
    client.type(s, at, "zz")
    assert s.state is SessionState.PREVIEW
    clock.now += 1
    assert s.feed("    return y\n") is None
    assert s.finish() is None
    assert "foo(zzy)" in client.text
    assert s.preview == "def foo(y):\n    return y\n"


def test_typing_above_moves_the_target() -> None:
    s, client, clock = session(post=RAW)
    client.apply(s, s.feed("def foo(y):\n"))
    client.type(s, 0, "# header\n# more\n")
    assert s.target.start == T.Position(4, 0)
    clock.now += 1
    client.apply(s, s.feed("    return y\n"))
    drain(s, client)
    assert (
        client.text == "# header\n# more\nimport os\n\ndef foo(y):\n    return y\n\nprint(foo(2))\n"
    )


def test_the_users_change_before_our_edit_arrives_stops_writing() -> None:
    s, client, _ = session(post=RAW)
    edit = s.feed("def foo(y):\n")
    assert edit is not None
    client.type(s, 0, "#")  # reaches the client first: our edit is for version 3, now stale
    assert s.state is SessionState.PREVIEW
    assert not client.apply(s, edit)  # the client refuses it by version


def test_an_echo_and_the_users_typing_in_one_notification() -> None:
    s, client, _ = session(post=RAW)
    edit = s.feed("def foo(y):\n")
    assert edit is not None
    echoed = apply_text_edits(client.text, edit.edits)
    changes = [
        T.TextDocumentContentChangePartial(range=e.range, text=e.new_text)
        for e in reversed(edit.edits)
    ]
    changes.append(
        T.TextDocumentContentChangePartial(
            range=T.Range(T.Position(0, 0), T.Position(0, 0)), text="#"
        )
    )
    s.user_changed(4, changes)
    s.applied(True)
    assert s.text == "#" + echoed
    assert s.state is SessionState.WRITING
    assert s.target.start == T.Position(2, 0)


def test_a_whole_document_change_outside_the_target_is_followed() -> None:
    s, client, _ = session(post=RAW)
    client.apply(s, s.feed("def foo(y):\n"))
    new = client.text.replace("print(foo(2))", "print(foo(3))")
    s.user_changed(5, [T.TextDocumentContentChangeWholeDocument(text=new)])
    assert s.state is SessionState.WRITING
    s.user_changed(
        6, [T.TextDocumentContentChangeWholeDocument(text=new.replace("foo(y)", "bar(y)"))]
    )
    assert s.state is SessionState.PREVIEW


def test_positions_count_utf16_units() -> None:
    doc = "s = '😀😀'; t = 1\nu = 2\n"
    target = T.Range(T.Position(0, 12), T.Position(0, 17))  # "t = 1": after 2 emoji = 4 units
    assert LineIndex(doc).offset(target.start) == doc.index("t = 1")
    s, client, _ = session(doc, target, post=RAW)
    edit = s.feed("t = 2")
    assert edit is not None
    assert [(e.range.start, e.range.end, e.new_text) for e in edit.edits] == [
        (T.Position(0, 16), T.Position(0, 17), "2")
    ]
    client.apply(s, edit)
    assert client.text == "s = '😀😀'; t = 2\nu = 2\n"


def test_edits_are_minimal() -> None:
    old = "def foo(x):\n    return x+1\n\nprint(1)\n"
    new = "def foo(x):\n    return x + 1\n\nprint(1)\n"
    assert minimal_edits(old, new) == [(24, 25, " + ")]
    assert minimal_edits("a\r\nb\r\n", "a\r\nc\r\n") == [(3, 4, "c")]
    assert minimal_edits("same", "same") == []


def test_the_answer_is_fitted_to_the_targets_indentation_and_line_breaks() -> None:
    doc = "class A:\r\n    def m(self):\r\n        return 1\r\n"
    target = T.Range(T.Position(1, 0), T.Position(3, 0))
    s, client, _ = session(doc, target)
    client.apply(s, s.feed("```python\ndef m(self):\n    return 2\n```"))
    drain(s, client)
    assert client.text == "class A:\r\n    def m(self):\r\n        return 2\r\n"


def test_a_mid_line_target_gets_no_extra_indentation_or_line_break() -> None:
    doc = "    total = a+b  # sum\n"
    target = T.Range(T.Position(0, 12), T.Position(0, 15))
    s, client, _ = session(doc, target)
    client.apply(s, s.feed("```\na + b\n```"))
    drain(s, client)
    assert client.text == "    total = a + b  # sum\n"


def test_an_answer_that_breaks_the_syntax_becomes_a_review_with_a_warning() -> None:
    seen: list[str] = []

    def syntax_ok(language: str, text: str) -> bool | None:
        seen.append(language)
        return text.count("(") == text.count(")")

    s, client, _ = session(language="python", syntax_ok=syntax_ok)
    client.apply(s, s.feed("```python\ndef foo(x:\n    return x\n```"))
    drain(s, client)
    assert seen == ["python", "python"]
    assert s.state is SessionState.REVIEW
    assert s.warnings
    assert "<<<<<<< original (2 lines)\ndef foo(x):\n    return x+1\n=======\n" in client.text
    client.apply(s, s.reject())
    assert client.text == DOC


def test_an_answer_without_code_leaves_the_document_alone() -> None:
    s, client, _ = session()
    s.feed("I cannot help with that.\n```")
    assert s.finish() is None
    assert s.state is SessionState.PREVIEW
    assert client.text == DOC


def test_review_accept_after_the_user_edited_the_answer_keeps_their_edit() -> None:
    s, client, _ = session(review=True)
    client.apply(s, s.feed("```python\ndef foo(x):\n    return x + 1\n```"))
    drain(s, client)
    assert s.state is SessionState.REVIEW
    at = client.text.index("x + 1")
    client.type(s, at, "(")
    client.type(s, at + 6, ")")
    client.apply(s, s.accept())
    assert client.text == "import os\n\ndef foo(x):\n    return (x + 1)\n\nprint(foo(2))\n"
    assert s.state is SessionState.DONE

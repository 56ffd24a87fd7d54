"""Incremental re-parsing from LSP edits gives exactly the tags of a full re-parse."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kimi_lsp.index.documents import Document
from kimi_lsp.index.extract import extract_raw
from kimi_lsp.index.languages import new_parser
from kimi_lsp.positions import Encoding

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "index" / "langs"
BASES = {
    "python": (FIXTURES / "shapes.py").read_text() + '\ns = "é 😀"\ndef après(x):\n    return x\n',
    "typescript": (FIXTURES / "service.ts").read_text() + "\nconst ü = '😀';\n",
    "go": (FIXTURES / "server.go").read_text(),
    "rust": (FIXTURES / "lib.rs").read_text(),
    "cpp": (FIXTURES / "matrix.cpp").read_text(),
    "javascript": (FIXTURES / "widgets.js").read_text(),
    "tsx": (FIXTURES / "App.tsx").read_text(),
    "java": (FIXTURES / "Account.java").read_text(),
    "c": (FIXTURES / "buffer.c").read_text(),
    "ruby": (FIXTURES / "order.rb").read_text(),
    "lua": (FIXTURES / "inventory.lua").read_text(),
    "c_sharp": (FIXTURES / "Repository.cs").read_text(),
    "php": (FIXTURES / "Cart.php").read_text(),
    "scala": (FIXTURES / "Queue.scala").read_text(),
}
PIECES = [
    "\n",
    "def ",
    "class ",
    "f",
    "(x)",
    ":",
    "    ",
    "return 1",
    "é",
    "😀",
    " ",
    "{",
    "}",
    "#",
]


UNIT = {"utf-8": ("utf-8", 1), "utf-16": ("utf-16-le", 2), "utf-32": ("utf-32-le", 4)}


def _position(text: str, index: int, enc: str = "utf-16") -> dict[str, int]:
    """Codepoint index -> LSP position (line, character counted in ``enc``)."""
    line = text.count("\n", 0, index)
    start = text.rfind("\n", 0, index) + 1
    codec, width = UNIT[enc]
    return {"line": line, "character": len(text[start:index].encode(codec)) // width}


@settings(max_examples=200, deadline=None)
@given(
    language=st.sampled_from(sorted(BASES)),
    enc=st.sampled_from(["utf-8", "utf-16", "utf-32"]),
    data=st.data(),
)
def test_random_edit_sequences_match_a_full_reparse(
    language: str, enc: Encoding, data: st.DataObject
) -> None:
    """In whichever encoding the client counts its change ranges."""
    text = BASES[language]
    doc = Document(Path(f"/w/file.{language}"), language, text)
    for _ in range(data.draw(st.integers(1, 8), label="edits")):
        a = data.draw(st.integers(0, len(text)))
        b = data.draw(st.integers(a, min(len(text), a + 40)))
        new = "".join(data.draw(st.lists(st.sampled_from(PIECES), max_size=4)))
        rng = {"start": _position(text, a, enc), "end": _position(text, b, enc)}
        change = {"range": rng, "text": new}
        # Several edits per notification, as editors batch them.
        batch = [change]
        text = text[:a] + new + text[b:]
        if data.draw(st.booleans(), label="second edit in the same notification"):
            c = data.draw(st.integers(0, len(text)))
            batch.append(
                {
                    "range": {"start": _position(text, c, enc), "end": _position(text, c, enc)},
                    "text": "x",
                }
            )
            text = text[:c] + "x" + text[c:]
        doc.apply(batch, enc)
        assert doc.text == text
    source = text.encode()
    assert doc.tree.root_node.end_byte == len(source)
    # Re-extracting only around each edit gives what extracting the whole tree gives...
    assert doc.raw == extract_raw(source, language, doc.tree)
    # ...and, for code that parses cleanly, what a full re-parse from scratch gives. (With
    # syntax errors, tree-sitter's incremental error recovery may legitimately settle on a
    # different tree than a fresh parse; the next clean state converges again.)
    fresh = new_parser(language).parse(source)
    if not fresh.root_node.has_error:
        assert str(doc.tree.root_node) == str(fresh.root_node)
        assert doc.raw == extract_raw(source, language)


def test_whole_document_change_replaces_the_text() -> None:
    doc = Document(Path("/w/a.py"), "python", "def a():\n    pass\n")
    doc.apply([{"text": "def b():\n    pass\n"}])
    assert [d[0] for d in doc.raw[4]] == ["b"]


@settings(max_examples=200, deadline=None)
@given(language=st.sampled_from(sorted(BASES)), data=st.data())
def test_typing_inside_names_matches_a_fresh_parse(language: str, data: st.DataObject) -> None:
    """Edits that keep the code valid (typing or deleting inside identifiers), one change per
    notification as editors send keystrokes: tags equal those of a fresh parse every time."""
    text = BASES[language]
    doc = Document(Path(f"/w/file.{language}"), language, text)
    inner = [i for i in range(1, len(text) - 1) if text[i - 1 : i + 2].isidentifier()]
    for _ in range(data.draw(st.integers(1, 10), label="keystrokes")):
        i = data.draw(st.sampled_from(inner))
        if data.draw(st.booleans(), label="insert"):
            change = {
                "range": {"start": _position(text, i), "end": _position(text, i)},
                "text": "q",
            }
            text = text[:i] + "q" + text[i:]
        else:
            end = _position(text, i + 1)
            change = {"range": {"start": _position(text, i), "end": end}, "text": ""}
            text = text[:i] + text[i + 1 :]
        inner = [j for j in range(1, len(text) - 1) if text[j - 1 : j + 2].isidentifier()]
        doc.apply([change])
        fresh = new_parser(language).parse(text.encode())
        if not fresh.root_node.has_error:
            assert doc.raw == extract_raw(text.encode(), language)


def _edit(doc: Document, text: str, old: str, new: str) -> str:
    """Replace the first `old` in the buffer with `new` (one LSP change); the new text."""
    i = text.index(old)
    rng = {"start": _position(text, i), "end": _position(text, i + len(old))}
    doc.apply([{"range": rng, "text": new}])
    text = text[:i] + new + text[i + len(old) :]
    assert doc.text == text
    return text


@pytest.mark.parametrize(
    ("language", "text", "old", "new"),
    [
        # A class defined in a function's return type: both definitions widen to the one
        # `function_definition` node, so neither may seed the other's scope (`n.A.A.f`).
        ("cpp", "namespace n {\nclass A {\n  int x;\n} f() {\n  return 1;\n}\n}\n", "1;", "2;"),
        # The value stops being a function: `f` becomes a constant, whose node (the whole
        # declaration) encloses the re-extracted one.
        ("javascript", "const f = (w) => w.d();\n", "(w", ""),
        # A definition's signature is its whole first line, edited here inside another one.
        ("go", "package p\nvar a = 1; func f() int { return 7 }\n", "7", "8"),
        ("c", "int f() {\n  return 7; } int g(void);\n", "7", "8"),
    ],
    ids=["cpp-widened-together", "js-function-to-constant", "go-line-before", "c-line-after"],
)
def test_an_edit_inside_one_definition_updates_what_depends_on_it(
    language: str, text: str, old: str, new: str
) -> None:
    doc = Document(Path(f"/w/file.{language}"), language, text)
    text = _edit(doc, text, old, new)
    assert doc.raw == extract_raw(text.encode(), language)


def test_a_line_added_inside_a_method_moves_a_class_docstring_that_follows_it() -> None:
    """Error recovery made the string after `f` the class's docstring (found by random edits
    of a Django file): a newline typed inside `f` must move it too."""
    text = 'class A:\n    def f(self):\n        x = 1\n    def g#, y):\n        """Doc."""'
    doc = Document(Path("/w/a.py"), "python", text)
    at = text.index("x = 1") - 5  # inside the indentation: `f` keeps its body
    doc.apply([{"range": {"start": _position(text, at), "end": _position(text, at)}, "text": "\n"}])
    text = text[:at] + "\n" + text[at:]
    assert doc.raw == extract_raw(text.encode(), "python")
    assert doc.raw[4][0][12] == (5, 8, 5, 18)


@pytest.mark.parametrize(
    ("language", "edits"),
    [
        # Found by Hypothesis: `class Matrix` duplicated under `linalg.Matrix`, and a method
        # scoped `linalg.Matrix.Matrix`, once the class became a function's return type.
        ("cpp", [(0, 30, ""), (0, 40, ""), (214, 228, ""), (0, 0, ""), (59, 59, "")]),
        # Found by Hypothesis: two fields on one line, the second's signature left stale.
        ("cpp", [(0, 17, ""), (245, 251, ""), (0, 0, ""), (241, 242, "")]),
        ("javascript", [(407, 410, "")]),
    ],
    ids=["cpp-scope", "cpp-signature", "js-kind"],
)
def test_edit_sequences_found_by_hypothesis(
    language: str, edits: list[tuple[int, int, str]]
) -> None:
    text = BASES[language]
    doc = Document(Path(f"/w/file.{language}"), language, text)
    for a, b, new in edits:
        rng = {"start": _position(text, a), "end": _position(text, b)}
        change = {"range": rng, "text": new}
        doc.apply([change])
        text = text[:a] + new + text[b:]
        assert doc.raw == extract_raw(text.encode(), language, doc.tree)

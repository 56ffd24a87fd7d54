"""`close_brackets`: whatever a buffer being typed leaves open, closing it once closes all."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tree_sitter import QueryCursor

from kimi_lsp.index.extract import _PAIRS, _bracket_query, _parser, close_brackets

SOURCES = {
    "typescript": (
        "export class Page {\n  #frames = new Map<string, number>();\n  title(): string {\n"
        "    const s = `a ${this.x({ y: [1, 2] })} b`;\n    // a { comment\n"
        "    return '{' + s;\n  }\n  screenshot(o: { clip?: number }): number {\n"
        "    if (o.clip) {\n      return (o.clip + 1) * 2;\n    }\n    return [o].length;\n"
        "  }\n}\n"
    ),
    "javascript": (
        "class Mesh extends Object3D {\n  constructor() {\n    super();\n"
        "    this.render = function ( scene ) { return scene.children.map( ( c ) => c.id ); };\n"
        "  }\n}\n"
    ),
    "go": (
        "package store\n\nfunc (r *Repo) Find(id string) (int, error) {\n"
        "\tfor _, x := range r.items {\n\t\tif x.ID == id { return x.N, nil }\n\t}\n"
        '\treturn 0, fmt.Errorf("no %s {", id)\n}\n'
    ),
    "rust": (
        "impl Repo {\n    pub fn find(&self, id: &str) -> Option<u32> {\n"
        "        let v: Vec<u32> = self.items.iter().map(|x| x.n).collect();\n"
        "        v.get(0).copied()\n    }\n}\n"
    ),
    "java": (
        "public class Repo {\n    public Item find(String id) {\n"
        '        for (Item i : items) { if (i.id().equals("{" + id)) { return i; } }\n'
        "        return null;\n    }\n}\n"
    ),
}


def open_at(source: bytes, language: str, at: int) -> list[str]:
    """The reference: the closers of the brackets open at byte ``at`` of a whole, well-formed
    file, innermost last, by its own parse (which has no errors to recover from)."""
    tree = _parser(language).parse(source)
    tokens = QueryCursor(_bracket_query(language)).captures(tree.root_node).get("bracket", [])
    stack: list[tuple[int, str]] = []
    for node in sorted(tokens, key=lambda n: n.start_byte):
        if node.start_byte >= at:
            break
        if node.type in _PAIRS:
            stack.append((node.start_byte, _PAIRS[node.type]))
        else:
            stack.pop()
    return [closer for _, closer in stack]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(SOURCES)), st.floats(0, 1))
def test_a_prefix_gets_the_closers_of_what_is_open_there(language: str, at: float) -> None:
    source = SOURCES[language].encode()
    prefix = source[: int(len(source) * at)]
    last = prefix.rsplit(b"\n", 1)[-1]
    if any(last.count(q) % 2 for q in (b'"', b"'", b"`")) or b"//" in last:
        return  # cut inside a string or a comment: brackets after it are text, not code
    expected = open_at(source, language, len(prefix))
    closed = close_brackets(prefix, language)
    if not expected:
        assert closed is None
        return
    # The brackets open there, closed in order at the end; nothing the user wrote moves.
    assert closed == prefix + b"\n" + "".join(reversed(expected)).encode()
    assert close_brackets(closed, language) is None


def test_a_whole_file_leaves_nothing_open() -> None:
    for language, source in SOURCES.items():
        assert close_brackets(source.encode(), language) is None, language

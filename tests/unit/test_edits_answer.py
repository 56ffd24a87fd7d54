"""Reading code out of an answer: fences as CommonMark reads them."""

from __future__ import annotations

from kimi_lsp.edits.answer import code_blocks, code_so_far

DOCSTRING = (
    'def f():\n    """Use it so:\n\n    ```python\n    f()\n    ```\n    """\n    return 1\n'
)
README = "# Tool\n\nRun it:\n\n```bash\ntool --all\n```\n\nDone.\n"


def test_a_fence_inside_the_code_does_not_end_the_block() -> None:
    # a docstring's fences are indented past three spaces: code, not the end of the block
    answer = f"Here:\n```python\n{DOCSTRING}```\nThat is all."
    assert "".join(code_so_far(answer, final=True)) == DOCSTRING
    # while streaming, the same lines come through as they complete
    half = answer[: answer.index("    f()") + len("    f()\n    ```\n")]
    assert "".join(code_so_far(half, final=False)) == DOCSTRING[: DOCSTRING.index('    """\n', 5)]


def test_a_longer_fence_holds_a_markdown_file_with_fences_of_its_own() -> None:
    answer = f"````markdown\n{README}````\n"
    assert "".join(code_so_far(answer, final=True)) == README
    assert code_blocks(answer) == [README.splitlines(keepends=True)]


def test_a_block_ends_only_at_its_own_kind_of_fence() -> None:
    answer = "~~~python\nx = '```'\n```\ny = 2\n~~~\n```js\nz()\n```\n```python\nlast = 1\n"
    assert code_blocks(answer) == [
        ["x = '```'\n", "```\n", "y = 2\n"],  # a backtick line inside a tilde block is code
        ["z()\n"],
        ["last = 1\n"],  # an unclosed last block: the answer ended inside it
    ]
    # an opening line with an info string never closes a block
    assert code_blocks("```\na\n```python\nb\n```\n") == [["a\n", "```python\n", "b\n"]]

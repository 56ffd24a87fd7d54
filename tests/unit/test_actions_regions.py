"""The parts of a long file a symbol's change touches: which lines, and how answers go back."""

from __future__ import annotations

from pathlib import Path

from kimi_lsp.actions.regions import AROUND_USE, Part, choose_parts, render_parts, splice
from kimi_lsp.edits.stream import split_lines
from kimi_lsp.index import WorkspaceIndex

CORE = "def price(x):\n    return x\n"


def _index(root: Path, text: str) -> tuple[WorkspaceIndex, Path]:
    (root / "core.py").write_text(CORE)
    path = root / "shop.py"
    path.write_text(text)
    index = WorkspaceIndex([root], state_dir=None)
    index.update()
    return index, path


def test_uses_give_their_function_the_import_and_merge_when_they_touch(tmp_path: Path) -> None:
    filler = "".join(f"def f{i}():\n    return {i}\n\n" for i in range(20))
    text = (
        "import os\nfrom core import price\n\n"  # 0-2
        + filler  # 3-62
        + "def a(x):\n    return price(x)\n"  # 63-64
        + "def b(x):\n    return price(x) * 2\n\n"  # 65-66, touching a
        + filler  # 68-127
        + "class Cart:\n    def total(self):\n        return price(1)\n"  # 128-130
    )
    index, path = _index(tmp_path, text)
    defn = index.definitions("price")[0]
    parts = choose_parts(index, defn, path, split_lines(text), index.references_to(defn))
    # the import naming it (not `import os`), a and b as one part, the method alone
    assert parts == [Part(1, 1), Part(63, 66), Part(129, 130)]
    shown = render_parts(split_lines(text), parts, "python")
    assert "Part 2 (lines 64-67):\n```python\ndef a(x):" in shown
    assert "def f5" not in shown


def test_a_use_in_a_long_function_sends_the_lines_around_it(tmp_path: Path) -> None:
    body = "".join(f"    y{i} = {i}\n" for i in range(200))
    text = "from core import price\n\n\ndef long(x):\n" + body + "    return price(x)\n"
    index, path = _index(tmp_path, text)
    use = 4 + 200
    defn = index.definitions("price")[0]
    parts = choose_parts(index, defn, path, split_lines(text), index.references_to(defn))
    assert parts == [Part(0, 0), Part(use - AROUND_USE, use)]  # clipped at the file's end


def test_splice_puts_each_block_back_at_its_indentation_or_says_why_not() -> None:
    lines = split_lines("import a\nx = 1\nclass C:\n    def m(self):\n        return a.f()\n")
    parts = [Part(0, 0), Part(3, 4)]
    answer = (
        "Here:\n```python\nimport b\n```\n"
        "```python\ndef m(self):\n    return b.f()\n```\n"  # the model dropped the indent
    )
    assert "".join(splice(lines, parts, answer)) == (
        "import b\nx = 1\nclass C:\n    def m(self):\n        return b.f()\n"
    )
    assert splice(lines, parts, "```python\nimport b\n```") == (
        "the answer has 1 code block(s) for 2 parts"
    )

"""The parts of a long file a symbol's change touches, sent and written back without the rest.

A workspace refactor about a symbol sends a file whole when it is short. A long one (over
``MAX_FILE_LINES``) is sent as its parts that use the symbol: for each use, the innermost
definition around it when that is short (else the lines around the use), the imports that
name it, and the definition itself in its own file; overlapping or touching parts merge.
The answer has one code block per part, in order; each replaces its part's lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kimi_lsp.edits.answer import code_blocks, fit_indent
from kimi_lsp.index import Definition, Reference, WorkspaceIndex

PART_MAX_LINES = 150  # a definition longer than this around a use is not sent whole
AROUND_USE = 12  # lines before and after a use when its definition is too long (or none)


@dataclass(frozen=True)
class Part:
    start: int  # first line (0-based)
    end: int  # last line, inclusive

    @property
    def size(self) -> int:
        return self.end - self.start + 1


def choose_parts(
    index: WorkspaceIndex, defn: Definition, path: Path, lines: list[str], uses: list[Reference]
) -> list[Part]:
    """The parts of the file at ``path`` (its current ``lines``) that define ``defn`` or hold
    one of its ``uses`` (``index.references_to(defn)``: the caller has them for every file)."""
    last = len(lines) - 1
    spans: list[tuple[int, int]] = []
    if defn.path == path:
        spans.append((defn.range.start_line, defn.range.end_line))
    tags = index.file_tags(path)
    imports = [(i.range.start_line, i.range.end_line) for i in tags.imports] if tags else []
    for first, end in imports:  # the imports that name it
        if any(defn.name in lines[i] for i in range(first, min(end, last) + 1)):
            spans.append((first, end))
    for ref in uses:
        if ref.path != path:
            continue
        line = ref.range.start_line
        if any(first <= line <= end for first, end in imports):
            continue  # in an import: that import is a part already
        around = index.enclosing_definition(ref.path, line, ref.range.start_col)
        if around is not None and around.range.end_line - around.range.start_line < PART_MAX_LINES:
            spans.append((around.range.start_line, around.range.end_line))
        else:
            spans.append((line - AROUND_USE, line + AROUND_USE))
    parts: list[Part] = []
    for start, end in sorted((max(0, a), min(last, b)) for a, b in spans):
        if parts and start <= parts[-1].end + 1:
            parts[-1] = Part(parts[-1].start, max(parts[-1].end, end))
        else:
            parts.append(Part(start, end))
    return parts


def render_parts(lines: list[str], parts: list[Part], lang: str) -> str:
    shown = []
    for n, part in enumerate(parts, 1):
        code = "".join(lines[part.start : part.end + 1]).rstrip("\n")
        shown.append(f"Part {n} (lines {part.start + 1}-{part.end + 1}):\n```{lang}\n{code}\n```\n")
    return "\n".join(shown)


def splice(lines: list[str], parts: list[Part], answer: str) -> list[str] | str:
    """The file's lines with each part replaced by its block of ``answer``; a message when
    the answer does not have one block per part."""
    blocks = code_blocks(answer)
    if len(blocks) != len(parts):
        return f"the answer has {len(blocks)} code block(s) for {len(parts)} parts"
    out = list(lines)
    for part, block in sorted(zip(parts, blocks, strict=True), key=lambda pb: -pb[0].start):
        original = lines[part.start : part.end + 1]
        new = fit_indent(block, original)
        if new and not new[-1].endswith("\n") and original[-1].endswith("\n"):
            new[-1] += "\n"
        out[part.start : part.end + 1] = new
    return out

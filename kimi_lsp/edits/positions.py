"""LSP positions in a text: lines end at ``\\n``, ``\\r\\n`` or ``\\r`` (and nowhere else, unlike
``str.splitlines``); characters count UTF-16 code units, so a character outside the Basic
Multilingual Plane (an emoji, say) counts two."""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from lsprotocol import types as T

_BREAK = re.compile(r"\r\n|\r|\n")


def utf16_units(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


class LineIndex:
    """Offsets ↔ positions for one text, in O(log lines) each."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [m.end() for m in _BREAK.finditer(text)]

    def line_end(self, line: int) -> int:
        """The offset where ``line``'s content ends (before its line break)."""
        if line + 1 < len(self.starts):
            end = self.starts[line + 1]
            brk = self.text[self.starts[line] : end]
            return end - (2 if brk.endswith("\r\n") else 1)
        return len(self.text)

    def position(self, offset: int) -> T.Position:
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.starts, offset) - 1
        start = self.starts[line]
        return T.Position(line=line, character=utf16_units(self.text[start:offset]))

    def offset(self, pos: T.Position) -> int:
        """The offset of ``pos``; past the end of a line clamps to the line's end, past the
        last line to the end of the text (what editors do)."""
        if pos.line >= len(self.starts):
            return len(self.text)
        start, end = self.starts[pos.line], self.line_end(pos.line)
        units = 0
        i = start
        while i < end and units < pos.character:
            units += 2 if ord(self.text[i]) > 0xFFFF else 1
            i += 1
        return i


def lsp_lines(text: str) -> list[str]:
    """The lines of ``text`` with their line breaks, split where LSP splits them."""
    return [m.group(0) for m in re.finditer(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z", text)]


def apply_text_edits(text: str, edits: Sequence[T.TextEdit]) -> str:
    """What a client does with one ``TextDocumentEdit``'s edits: every range refers to the
    text before any of them; ranges do not overlap."""
    index = LineIndex(text)
    spans = sorted(
        (
            (index.offset(e.range.start), index.offset(e.range.end), i, e.new_text)
            for i, e in enumerate(edits)
        ),
        key=lambda s: (s[0], s[1], s[2]),
    )
    out: list[str] = []
    at = 0
    for a, b, _, new in spans:
        if a < at:
            raise ValueError("overlapping edits")
        out.append(text[at:a])
        out.append(new)
        at = b
    out.append(text[at:])
    return "".join(out)


def apply_content_change(text: str, change: T.TextDocumentContentChangeEvent) -> str:
    """A ``didChange`` content change applied to ``text``."""
    if isinstance(change, T.TextDocumentContentChangePartial):
        index = LineIndex(text)
        a, b = index.offset(change.range.start), index.offset(change.range.end)
        return text[:a] + change.text + text[b:]
    return change.text

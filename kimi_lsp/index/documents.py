"""Open editor buffers: LSP incremental changes applied to a tree-sitter tree.

A change's range is in LSP positions (0-based line, UTF-16 character). It is turned into byte
offsets, applied to the UTF-8 text, told to the old tree (`Tree.edit`) and the text re-parsed
with the old tree, so tree-sitter reuses every unchanged subtree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tree_sitter import Point, Tree

from kimi_lsp.index.errors import BadDocumentChange
from kimi_lsp.index.extract import RawTags, extract_raw
from kimi_lsp.index.languages import new_parser


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _position(obj: Any) -> tuple[int, int]:
    return int(_field(obj, "line")), int(_field(obj, "character"))


class Document:
    """One open buffer: its UTF-8 bytes, line starts, tree and tags."""

    def __init__(self, path: Path, language: str, text: str) -> None:
        self.path = path
        self.language = language
        self._parser = new_parser(language)
        self.source = text.encode("utf-8")
        self._lines = _line_starts(self.source)
        self.tree: Tree = self._parser.parse(self.source)
        self.raw: RawTags = extract_raw(self.source, language, self.tree)

    @property
    def text(self) -> str:
        return self.source.decode("utf-8")

    def replace(self, text: str) -> None:
        self.source = text.encode("utf-8")
        self._lines = _line_starts(self.source)
        self.tree = self._parser.parse(self.source)
        self.raw = extract_raw(self.source, self.language, self.tree)

    def _offset(self, line: int, character: int) -> tuple[int, Point]:
        """LSP position -> (byte offset, tree-sitter point). Past-the-end clamps, as LSP says."""
        if line < 0 or character < 0:
            raise BadDocumentChange(self.path, f"negative position {line}:{character}")
        if line >= len(self._lines):
            end = len(self.source)
            return end, _point_of(self._lines, end)
        start = self._lines[line]
        stop = self._lines[line + 1] - 1 if line + 1 < len(self._lines) else len(self.source)
        text = self.source[start:stop]
        if text.isascii():
            col = min(character, len(text))
        else:
            units = text.decode("utf-8", "replace").encode("utf-16-le")[: 2 * character]
            col = len(units.decode("utf-16-le", "ignore").encode("utf-8"))
        return start + col, Point(line, col)

    def apply(self, changes: Iterable[Any]) -> None:
        """Apply LSP content changes in order, then re-parse incrementally and re-extract."""
        tree = self.tree
        for change in changes:
            text = str(_field(change, "text") or "")
            rng = _field(change, "range")
            if rng is None:  # the whole document
                self.source = text.encode("utf-8")
                self._lines = _line_starts(self.source)
                tree = self._parser.parse(self.source)
                continue
            start, start_pt = self._offset(*_position(_field(rng, "start")))
            end, end_pt = self._offset(*_position(_field(rng, "end")))
            if end < start:
                raise BadDocumentChange(self.path, "range ends before it starts")
            new = text.encode("utf-8")
            self.source = self.source[:start] + new + self.source[end:]
            new_end = start + len(new)
            self._lines = _splice_lines(self._lines, start_pt[0], end_pt[0], start, new, end)
            tree.edit(
                start_byte=start,
                old_end_byte=end,
                new_end_byte=new_end,
                start_point=start_pt,
                old_end_point=end_pt,
                new_end_point=_point_of(self._lines, new_end),
            )
            tree = self._parser.parse(self.source, tree)
        self.tree = tree
        self.raw = extract_raw(self.source, self.language, tree)


def _line_starts(source: bytes) -> list[int]:
    starts = [0]
    find = source.find
    i = find(b"\n")
    while i >= 0:
        starts.append(i + 1)
        i = find(b"\n", i + 1)
    return starts


def _splice_lines(
    lines: list[int], first: int, last: int, start: int, new: bytes, old_end: int
) -> list[int]:
    """Line starts after replacing bytes [start, old_end) (lines first..last) with `new`."""
    delta = len(new) - (old_end - start)
    inserted = []
    i = new.find(b"\n")
    while i >= 0:
        inserted.append(start + i + 1)
        i = new.find(b"\n", i + 1)
    tail = [s + delta for s in lines[last + 1 :]] if delta else lines[last + 1 :]
    return lines[: first + 1] + inserted + tail


def _point_of(lines: list[int], offset: int) -> Point:
    lo, hi = 0, len(lines) - 1
    while lo < hi:  # the last line start <= offset
        mid = (lo + hi + 1) // 2
        if lines[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return Point(lo, offset - lines[lo])

"""Open editor buffers: LSP incremental changes applied to a tree-sitter tree.

A change's range is in LSP positions (0-based line, UTF-16 character). It is turned into byte
offsets, applied to the UTF-8 text, told to the old tree (`Tree.edit`) and the text re-parsed
with the old tree, so tree-sitter reuses every unchanged subtree.

Tags are then re-extracted only inside the innermost definition that contains everything the
edit changed (the edit itself and tree-sitter's changed ranges); tags before it stay, tags
after it are shifted. The whole file is re-extracted instead when no definition contains the
change, when a notification carries several changes, or when the edit may reach a tag
outside that definition: one whose signature line it changed (a signature is a whole line),
or one the query matched around it that is not what was kept (an enclosing definition whose
pattern no longer matches, or a name inside whose winning pattern now captures an enclosing
node). A property test over every language holds this to the result of a full re-parse.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from tree_sitter import Point, Tree

from kimi_lsp.index.errors import BadDocumentChange
from kimi_lsp.index.extract import (
    _KINDS,
    Columns,
    DefKey,
    Extraction,
    Outer,
    RawTags,
    extract_region,
    raw_tags,
)
from kimi_lsp.index.languages import new_parser
from kimi_lsp.positions import DEFAULT, Encoding, byte_to_character, character_to_byte, utf8_bytes


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
        self.source = utf8_bytes(text)
        self._lines = _line_starts(self.source)
        self.tree: Tree = self._parser.parse(self.source)
        self._extract_all()

    @property
    def text(self) -> str:
        return self.source.decode("utf-8", "replace")  # an invalid byte the editor sent: U+FFFD

    def _extract_all(self) -> None:
        cols = Columns(self.source, self._lines)
        self._ex: Extraction = extract_region(self.source, self.language, self.tree, cols)
        self.raw: RawTags = raw_tags(self.source, self.language, self._ex, self._lines)

    def _offset(self, line: int, character: int, encoding: Encoding = DEFAULT) -> tuple[int, Point]:
        """LSP position (``character`` counted in ``encoding``) -> (byte offset, tree-sitter
        point). Past-the-end clamps, as LSP says."""
        if line < 0 or character < 0:
            raise BadDocumentChange(self.path, f"negative position {line}:{character}")
        if line >= len(self._lines):
            end = len(self.source)
            return end, _point_of(self._lines, end)
        start = self._lines[line]
        stop = self._lines[line + 1] - 1 if line + 1 < len(self._lines) else len(self.source)
        text = self.source[start:stop]
        col = character_to_byte(text, character, encoding)
        return start + col, Point(line, col)

    def _col16(self, point: Point) -> int:
        start = self._lines[point[0]]
        return byte_to_character(self.source[start : start + point[1]], point[1])

    def apply(self, changes: Iterable[Any], encoding: Encoding = DEFAULT) -> None:
        """Apply LSP content changes in order (ranges counted in ``encoding``), then re-parse
        incrementally and re-extract."""
        changes = list(changes)
        tree = self.tree
        single = len(changes) == 1 and _field(changes[0], "range") is not None
        edit: tuple[int, int, int, tuple[int, int], tuple[int, int]] | None = None
        for change in changes:
            text = str(_field(change, "text") or "")
            rng = _field(change, "range")
            if rng is None:  # the whole document
                self.source = utf8_bytes(text)
                self._lines = _line_starts(self.source)
                tree = self._parser.parse(self.source)
                continue
            start, start_pt = self._offset(*_position(_field(rng, "start")), encoding)
            end, end_pt = self._offset(*_position(_field(rng, "end")), encoding)
            if end < start:
                raise BadDocumentChange(self.path, "range ends before it starts")
            old_end16 = (end_pt[0], self._col16(end_pt))
            new = utf8_bytes(text)
            self.source = self.source[:start] + new + self.source[end:]
            new_end = start + len(new)
            self._lines = _splice_lines(self._lines, start_pt[0], end_pt[0], start, new, end)
            new_end_pt = _point_of(self._lines, new_end)
            tree.edit(
                start_byte=start,
                old_end_byte=end,
                new_end_byte=new_end,
                start_point=start_pt,
                old_end_point=end_pt,
                new_end_point=new_end_pt,
            )
            new_tree = self._parser.parse(self.source, tree)
            if single:
                lo, hi = start, new_end
                for r in tree.changed_ranges(new_tree):
                    lo, hi = min(lo, r.start_byte), max(hi, r.end_byte)
                new_end16 = (new_end_pt[0], self._col16(new_end_pt))
                edit = (start, end, new_end, old_end16, new_end16)
                region = (lo, hi, start_pt[0])
            tree = new_tree
        self.tree = tree
        if edit is None or not self._extract_around(edit, *region):
            self._extract_all()

    def _extract_around(
        self,
        edit: tuple[int, int, int, tuple[int, int], tuple[int, int]],
        lo: int,
        hi: int,
        edit_line: int,
    ) -> bool:
        """Re-extract only the innermost definition containing the change; False if none."""
        start, old_end, new_end, old_end16, new_end16 = edit
        delta = new_end - old_end
        ex = self._ex
        unit = -1
        for i, (s, e, *_) in enumerate(ex.def_bytes):
            if s >= start:
                break
            # Later (inner) candidates replace earlier (outer) ones, but not one with the same
            # extent: C/C++ definitions widened to one node (`class A {..} f() {..}`) are
            # re-extracted together, so none of them may seed the others' scope.
            if (
                e > old_end
                and s <= lo
                and hi <= e + delta
                and (unit < 0 or ex.def_bytes[unit][:2] != (s, e))
            ):
                unit = i
        if unit < 0:
            return False
        us, ue_old, utype, *_ = ex.def_bytes[unit]
        ue = ue_old + delta
        node = self.tree.root_node.descendant_for_byte_range(us, ue)
        while node is not None and not (node.start_byte <= us and node.end_byte >= ue):
            node = node.parent
        while node is not None and node.start_byte == us and node.end_byte == ue:
            if node.type == utype:
                break
            node = node.parent
        if node is None or (node.start_byte, node.end_byte, node.type) != (us, ue, utype):
            return False  # the definition's own extent or kind changed

        # The definitions enclosing the unit (outermost first) seed scopes and kinds.
        # A kept definition's signature is the text of its first (or its name's) line: one
        # on a line the edit changed (`int a; void f() { <edit> }`) needs a full extraction.
        eline = old_end16[0]
        outer: Outer = []
        enclosing: list[int] = []
        for i in range(unit):
            d = ex.defs[i]
            if ex.def_bytes[i][1] >= ue_old:  # encloses the unit
                if d[2] == edit_line or edit_line <= d[6] <= eline:
                    return False
                qualified = f"{d[11]}.{d[0]}" if d[11] else d[0]
                outer.append((ex.def_bytes[i][1] + delta, qualified, _KINDS[d[1]]))
                enclosing.append(i)
            elif d[6] == edit_line:  # ends before the unit: no line of it is past the edit's
                return False
        keys: list[DefKey] = []
        for i in enclosing:
            s, e, t, n, k = ex.def_bytes[i]
            keys.append((s, e + delta, t, n + delta if n >= old_end else n, k))
        inside_end = bisect_left(ex.def_bytes, (ue_old,), unit + 1)  # by start byte
        if inside_end < len(ex.defs) and ex.defs[inside_end][2] == eline:
            return False  # the next definition starts on the line the unit's edit ends on
        fresh = extract_region(
            self.source, self.language, self.tree, Columns(self.source, self._lines), us, ue, outer
        )
        if sorted(fresh.beyond) != sorted(keys):
            return False  # the edit changed how a pattern around the unit matches

        moved = new_end16[0] != eline  # lines were added or removed

        def shift_span(t: tuple[Any, ...], i: int) -> tuple[Any, ...]:
            # Most tags sit on other lines than the edit's end: untouched unless lines moved.
            if not moved and t[i] != eline and t[i + 2] != eline:
                return t
            a = shift(t[i], t[i + 1])
            b = shift(t[i + 2], t[i + 3])
            return (*t[:i], *a, *b, *t[i + 4 :])

        def shift(line: int, col: int) -> tuple[int, int]:
            if (line, col) < old_end16:
                return line, col
            if line == old_end16[0]:
                return new_end16[0], col - old_end16[1] + new_end16[1]
            return line + new_end16[0] - old_end16[0], col

        defs = ex.defs[:unit]
        def_bytes = ex.def_bytes[:unit]

        def shift_def(d: tuple[Any, ...]) -> tuple[Any, ...]:
            """Its range, name and docstring, each where it now is (`shift` leaves what comes
            before the edit alone)."""
            d = shift_span(shift_span(d, 2), 6)
            doc = d[12]
            if doc is not None and (moved or eline in (doc[0], doc[2])):
                d = (*d[:12], (*shift(doc[0], doc[1]), *shift(doc[2], doc[3])))
            return d

        # Enclosing definitions: their ends move, and so may a name after the body (C) or a
        # docstring that error recovery put after the unit.
        for i, key in zip(enclosing, keys, strict=True):
            defs[i], def_bytes[i] = shift_def(ex.defs[i]), key
        defs += fresh.defs
        def_bytes += fresh.def_bytes

        if moved:
            defs += [shift_def(d) for d in ex.defs[inside_end:]]
        else:
            # The next definition starts on a later line (checked above), so do all after it;
            # only the first ones can have a comment block starting on the edit's line.
            after = ex.defs[inside_end:]
            j = 0
            while j < len(after) and ex.def_bytes[inside_end + j][0] == ex.def_bytes[inside_end][0]:
                after[j] = shift_def(after[j])
                j += 1
            defs += after
        def_bytes += (
            [(s + delta, e + delta, t, n + delta, k) for s, e, t, n, k in ex.def_bytes[inside_end:]]
            if delta
            else ex.def_bytes[inside_end:]
        )

        # References and imports: one start byte each, sorted, so the unit's are a slice.
        i0, i1 = bisect_left(ex.ref_bytes, us), bisect_left(ex.ref_bytes, ue_old)
        refs = ex.refs[:i0] + fresh.refs + _shift_tail(ex.refs, i1, 2, moved, eline, shift_span)
        ref_bytes = ex.ref_bytes[:i0] + fresh.ref_bytes + _add(ex.ref_bytes[i1:], delta)
        i0, i1 = bisect_left(ex.import_bytes, us), bisect_left(ex.import_bytes, ue_old)
        imports = (
            ex.imports[:i0]
            + fresh.imports
            + _shift_tail(ex.imports, i1, 1, moved, eline, shift_span)
        )
        import_bytes = ex.import_bytes[:i0] + fresh.import_bytes + _add(ex.import_bytes[i1:], delta)

        self._ex = Extraction(defs, refs, imports, def_bytes, ref_bytes, import_bytes)
        self.raw = raw_tags(self.source, self.language, self._ex, self._lines)
        return True


def _add(values: list[int], delta: int) -> list[int]:
    return [v + delta for v in values] if delta else values


def _shift_tail(
    tags: list[tuple[Any, ...]],
    first: int,
    at: int,
    moved: bool,
    eline: int,
    shift_span: Callable[[tuple[Any, ...], int], tuple[Any, ...]],
) -> list[tuple[Any, ...]]:
    """`tags[first:]` (all after the edit, by position) with the span at index `at` shifted.

    Unless lines moved, only the tags on the edit's last line change, and they come first.
    """
    if moved:
        return [shift_span(t, at) for t in tags[first:]]
    tail = tags[first:]
    i = 0
    while i < len(tail) and tail[i][at] == eline:
        tail[i] = shift_span(tail[i], at)
        i += 1
    return tail


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

"""Streaming an answer into a region of a document, as small edits, never over the user's text.

A ``RegionWriter`` owns whole lines ``[start, start + len(shown))`` of one document. Each time
more of the answer is known, ``step(document_text, desired_lines)`` finds the region in the
document as it is *now* (where it was, or — when the user edited above it — shifted by the
user's lines, found by its exact content), and returns the minimal line edits that turn what
is shown into what is desired. If the user typed inside the region, it returns ``Conflict``
and the caller stops touching the document (the rest of the answer becomes a preview).

Positions are LSP's: 0-based lines; characters count UTF-16 code units unless an ``encoding``
("utf-8", "utf-16", "utf-32", see ``kimi_lsp.positions``) says otherwise (edits here start and
end at line starts, except at the end of a document without a final newline).
``convert_edits`` turns edits computed in one encoding into another with the document's text.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from lsprotocol import types as T

from kimi_lsp.positions import DEFAULT, Encoding, convert_column, line_text, lsp_lines, to_index
from kimi_lsp.positions import text_len as _text_len

split_lines = lsp_lines  # LSP's lines: not str.splitlines, which also splits at U+2028

MARK_ORIGINAL = "<<<<<<< original"
MARK_SPLIT = "======="
MARK_ANSWER = ">>>>>>> kimi"


@dataclass(frozen=True)
class Conflict:
    """The user changed text inside the region: stop writing."""

    reason: str


class RegionWriter:
    def __init__(self, start: int, shown: list[str], encoding: Encoding = DEFAULT) -> None:
        self.start = start
        self.encoding = encoding  # of the positions in the edits ``step`` returns
        self.shown = list(shown)  # the lines of the region as we last wrote (or found) them
        self._pending: list[str] = self.shown
        self.conflict: Conflict | None = None
        # Decided at the first step: does the region end a file that has no final newline?
        self._open_end: bool | None = None

    @property
    def end(self) -> int:
        return self.start + len(self.shown)

    def user_changed(self, change_range: T.Range | None, text: str) -> Conflict | None:
        """Follow one change the user made (an LSP content change event): a change above the
        region moves it; one inside it (or a whole-document change) is a conflict."""
        if self.conflict is not None:
            return self.conflict
        if change_range is None:
            self.conflict = Conflict("the document was replaced meanwhile")
            return self.conflict
        a, b = change_range.start, change_range.end
        before = b.line < self.start or (b.line == self.start and b.character == 0)
        if before and not (
            a.line == b.line == self.start and a.character == b.character == 0 and not self.shown
        ):
            self.start += text.count("\n") - (b.line - a.line)
            return None
        if a.line >= self.end:
            return None
        self.conflict = Conflict("the text being rewritten was edited meanwhile")
        return self.conflict

    def step(self, document: str, desired: list[str]) -> list[T.TextEdit] | Conflict:
        """The edits that make the region show ``desired``; the caller applies all or none,
        then calls ``commit`` when the client applied them."""
        if self.conflict is not None:
            return self.conflict
        lines = split_lines(document)
        if lines[self.start : self.end] != self.shown:  # a change we were not told about
            self.conflict = Conflict("the text being rewritten was edited meanwhile")
            return self.conflict
        if self._open_end is None:
            at_eof = self.end >= len(lines)
            self._open_end = bool(at_eof and lines and not lines[-1].endswith("\n"))
        # Keep a file without a final newline that way: the region's last line gets none.
        desired = [ln if ln.endswith("\n") else ln + "\n" for ln in desired]
        if self._open_end and self.start + len(self.shown) >= len(lines) and desired:
            desired[-1] = desired[-1].removesuffix("\n")
            if not desired[-1]:
                desired.pop()
        edits: list[T.TextEdit] = []
        matcher = difflib.SequenceMatcher(a=self.shown, b=desired, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                continue
            edits.append(
                T.TextEdit(
                    range=T.Range(
                        start=_pos(lines, self.start + i1, self.encoding),
                        end=_pos(lines, self.start + i2, self.encoding),
                    ),
                    new_text="".join(desired[j1:j2]),
                )
            )
        self._pending = desired
        return [within_the_lines(lines, e, self.encoding) for e in edits]

    def commit(self) -> None:
        """The client applied the edits of the last ``step``."""
        self.shown = list(self._pending)


def offset_of(text: str, pos: T.Position, encoding: Encoding = DEFAULT) -> int:
    """An LSP position (characters counted in ``encoding``) as an index into ``text``."""
    lines = split_lines(text)
    if pos.line >= len(lines):
        return len(text)
    base = sum(len(ln) for ln in lines[: pos.line])
    return base + to_index(lines[pos.line], pos.character, encoding)


def apply_edits(text: str, edits: list[T.TextEdit], encoding: Encoding = DEFAULT) -> str:
    """Apply non-overlapping edits whose ranges all refer to ``text`` (LSP semantics)."""
    spans = sorted(
        (
            (
                offset_of(text, e.range.start, encoding),
                offset_of(text, e.range.end, encoding),
                i,
                e.new_text,
            )
            for i, e in enumerate(edits)
        ),
        reverse=True,
    )
    # From the end; at one position the later edit first, so the earlier one's text comes
    # before it, as the order of the list says.
    for a, b, _, new in spans:
        text = text[:a] + new + text[b:]
    return text


def convert_position(
    lines: list[str], pos: T.Position, source: Encoding, target: Encoding
) -> T.Position:
    """``pos`` on the document of ``lines``, counted in ``source``, as counted in ``target``."""
    if source == target or pos.character == 0:
        return pos
    return T.Position(
        line=pos.line,
        character=convert_column(line_text(lines, pos.line), pos.character, source, target),
    )


def convert_edits(
    text: str, edits: list[T.TextEdit], source: Encoding, target: Encoding
) -> list[T.TextEdit]:
    """Edits whose ranges refer to ``text``, counted in ``source``, recounted in ``target``."""
    if source == target:
        return list(edits)
    lines = split_lines(text)
    return [
        T.TextEdit(
            range=T.Range(
                start=convert_position(lines, e.range.start, source, target),
                end=convert_position(lines, e.range.end, source, target),
            ),
            new_text=e.new_text,
        )
        for e in edits
    ]


def _pos(lines: list[str], line: int, encoding: Encoding = DEFAULT) -> T.Position:
    if line < len(lines):
        return T.Position(line=line, character=0)
    if not lines:
        return T.Position(line=0, character=0)
    last = lines[-1]
    if last.endswith(("\n", "\r")):
        return T.Position(line=len(lines), character=0)
    return T.Position(line=len(lines) - 1, character=_text_len(last, encoding))


def within_the_lines(
    lines: list[str], edit: T.TextEdit, encoding: Encoding = DEFAULT
) -> T.TextEdit:
    """The same edit without the position past a document's final line break, where it can.

    Neovim (0.10, 0.11) reads edits that reach that position its own way: an insertion there
    is added as whole lines and keeps the text's final break as an extra empty line
    (``"a\\n"`` + ``"x\\n"`` gave ``"a\\nx\\n\\n"``), and an edit that ends there is applied
    as two changes, the first leaving an empty last line that looks like the user's typing.
    Ending before that final break instead (and keeping it) is the same edit for every client.
    """
    start, end = edit.range.start, edit.range.end
    n = len(lines)
    if n == 0 or end.line < n:
        return edit
    content = lines[-1].rstrip("\r\n")
    brk = lines[-1][len(content) :]
    if not brk:
        return edit  # no final break: the position past the last line does not occur
    before_brk = T.Position(line=n - 1, character=_text_len(content, encoding))
    text = edit.new_text
    if text.endswith(brk):
        if start.line >= n:  # an insertion after the document
            return T.TextEdit(
                range=T.Range(start=before_brk, end=before_brk),
                new_text=brk + text.removesuffix(brk),
            )
        return T.TextEdit(
            range=T.Range(start=start, end=before_brk), new_text=text.removesuffix(brk)
        )
    if text or start.character != 0 or not 0 < start.line < n:
        return edit
    prev = lines[start.line - 1]
    prev_content = prev.rstrip("\r\n")
    if prev[len(prev_content) :] != brk:
        return edit
    # Deleting the last lines: take the break before them instead of the final one.
    at = T.Position(line=start.line - 1, character=_text_len(prev_content, encoding))
    return T.TextEdit(range=T.Range(start=at, end=before_brk), new_text="")


def review_block(original: list[str], answer: list[str], *, final: bool) -> list[str]:
    """The conflict-marker preview: the original, then the answer (so far)."""
    orig = [ln if ln.endswith("\n") else ln + "\n" for ln in original]
    ans = [ln if ln.endswith("\n") else ln + "\n" for ln in answer]
    tail = [MARK_ANSWER + "\n"] if final else [MARK_ANSWER + " (streaming…)\n"]
    # The count tells the split apart from a "=======" line inside the original.
    head = f"{MARK_ORIGINAL} ({len(orig)} lines)\n"
    return [head, *orig, MARK_SPLIT + "\n", *ans, *tail]


@dataclass(frozen=True)
class ReviewBlock:
    start: int  # line of the <<<<<<< marker
    split: int  # line of =======
    end: int  # line of >>>>>>> (inclusive)
    original: str  # the original lines, byte for byte
    answer: str


def find_review_block(document: str, line: int) -> ReviewBlock | None:
    """The review block around ``line``, if the cursor is in one."""
    lines = split_lines(document)
    top = min(line, len(lines) - 1)
    start = next((i for i in range(top, -1, -1) if lines[i].startswith(MARK_ORIGINAL)), None)
    if start is None:
        return None
    # The opening marker counts the original's lines: that tells the split apart from a
    # "=======" line inside the original.
    counted = re.match(r"\((\d+) lines\)", lines[start][len(MARK_ORIGINAL) :].strip())
    split: int | None
    if counted:
        split = start + 1 + int(counted.group(1))
        if split >= len(lines) or lines[split].rstrip("\r\n") != MARK_SPLIT:
            return None
    else:
        split = next(
            (i for i in range(start + 1, len(lines)) if lines[i].rstrip("\r\n") == MARK_SPLIT),
            None,
        )
        if split is None:
            return None
    # The answer may contain marker-like lines too: the block ends at the last closing marker
    # before the next block.
    following = next(
        (i for i in range(split + 1, len(lines)) if lines[i].startswith(MARK_ORIGINAL)),
        len(lines),
    )
    end = next(
        (
            i
            for i in range(following - 1, split, -1)
            if lines[i].rstrip("\r\n").startswith(MARK_ANSWER)
        ),
        None,
    )
    if end is None or not start <= line <= end:
        return None
    return ReviewBlock(
        start, split, end, "".join(lines[start + 1 : split]), "".join(lines[split + 1 : end])
    )


def resolve_review(
    document: str, block: ReviewBlock, *, accept: bool, encoding: Encoding = DEFAULT
) -> T.TextEdit:
    """One edit replacing the whole block with the answer (accept) or the original (reject)."""
    lines = split_lines(document)
    text = block.answer if accept else block.original
    if block.end == len(lines) - 1 and not lines[-1].endswith("\n"):
        text = text.removesuffix("\n")  # the block was the end of a file without a final newline
    whole = T.Range(
        start=_pos(lines, block.start, encoding), end=_pos(lines, block.end + 1, encoding)
    )
    return within_the_lines(lines, T.TextEdit(range=whole, new_text=text), encoding)

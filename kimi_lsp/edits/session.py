"""One streamed answer written into one range of one document, as versioned edits.

An ``EditSession`` keeps its own copy of the document (as of ``version``) and of the target
range in it. ``feed(delta)`` adds answer text and, at most every ``min_interval`` seconds (an
injected clock), returns one ``TextDocumentEdit``: the smallest edits (a line diff, trimmed to
the characters that differ) that turn what the target shows now into what it should show.
Only one edit is in flight at a time: the next waits until the client's ``didChange`` echo of
the last one has come back (``user_changed``) — the only way to know the version it made.

The user keeps the document. ``user_changed(version, changes)`` follows every ``didChange``:
changes outside the target move it; a change inside it (or an edit the client refused:
``applied(False)``) stops the writing, and the rest of the answer is offered as ``preview``.
Nothing already written is touched again.

Review mode writes a conflict-marker block instead (``<<<<<<< original`` / ``=======`` /
``>>>>>>> kimi``); ``accept()`` and ``reject()`` then give the edit that leaves exactly the
answer, or exactly the original, byte for byte. An answer that breaks the file's syntax (the
caller's ``syntax_ok`` hook says so) is never applied silently: it becomes a review block.
"""

from __future__ import annotations

import difflib
import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lsprotocol import types as T

from kimi_lsp.edits.answer import code_so_far, fit_indent
from kimi_lsp.edits.positions import LineIndex, apply_content_change, lsp_lines
from kimi_lsp.edits.stream import MARK_ANSWER, MARK_ORIGINAL, MARK_SPLIT, find_review_block

SyntaxCheck = Callable[[str, str], bool | None]
"""``(language, text)`` → parses cleanly? ``None`` when the language cannot be checked."""

MIN_INTERVAL_S = 0.1  # at most ~10 edits a second: editors re-render and re-lint on each


class SessionState(enum.Enum):
    WRITING = "writing"  # the answer goes into the document
    PREVIEW = "preview"  # stopped: the rest of the answer is only offered
    REVIEW = "review"  # the final review block is in the document: accept or reject
    DONE = "done"


@dataclass(frozen=True)
class Postprocess:
    """How a raw answer becomes the text written: ``extract_code`` keeps the code of a fenced
    block (whole lines only while streaming) and matches the target's final line break and
    line-break style; ``reindent`` moves it to the target's indentation."""

    extract_code: bool = True
    reindent: bool = True


RAW = Postprocess(extract_code=False, reindent=False)


@dataclass
class _InFlight:
    after: str  # the document once the client applied the edit
    start: int  # the target's range in ``after``
    end: int
    final: bool
    resolving: bool = False  # an accept/reject of a review block
    applied: bool = False
    echoed: bool = False


def minimal_edits(old: str, new: str) -> list[tuple[int, int, str]]:
    """``(start, end, text)`` replacements of ``old`` (offsets into it, ascending) that give
    ``new``: a line diff, each hunk trimmed to the characters that differ."""
    a, b = lsp_lines(old), lsp_lines(new)
    starts = [0]
    for line in a:
        starts.append(starts[-1] + len(line))
    out: list[tuple[int, int, str]] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        lo, hi = starts[i1], starts[i2]
        was, now = old[lo:hi], "".join(b[j1:j2])
        p = 0
        limit = min(len(was), len(now))
        while p < limit and was[p] == now[p]:
            p += 1
        if 0 < p < len(was) and was[p - 1] == "\r" and was[p] == "\n":
            p -= 1  # never a position between \r and \n
        s = 0
        while s < limit - p and was[len(was) - 1 - s] == now[len(now) - 1 - s]:
            s += 1
        e = len(was) - s
        if s and 0 < e < len(was) and was[e - 1] == "\r" and was[e] == "\n":
            s -= 1
            e += 1
        if p == e and p == len(now) - s:
            continue
        out.append((lo + p, lo + e, now[p : len(now) - s]))
    return out


def _newline_of(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


class EditSession:
    def __init__(
        self,
        uri: str,
        text: str,
        version: int,
        target: T.Range,
        *,
        review: bool = False,
        post: Postprocess = Postprocess(),
        language: str | None = None,
        syntax_ok: SyntaxCheck | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = MIN_INTERVAL_S,
    ) -> None:
        self.uri = uri
        self.version = version
        self.review = review
        self.post = post
        self.language = language
        self.syntax_ok = syntax_ok
        self.clock = clock
        self.min_interval = min_interval
        self.answer = ""
        self.state = SessionState.WRITING
        self.stop_reason: str | None = None
        self.warnings: list[str] = []
        self.written_version: int | None = None  # the version our last edit made
        self._text = text
        index = LineIndex(text)
        start, end = index.offset(target.start), index.offset(target.end)
        if end < start:
            start, end = end, start
        if review:  # a review block is made of whole lines
            start = index.starts[index.position(start).line]
            end_pos = index.position(end)
            if end_pos.character != 0 or end == start:
                end = (
                    index.starts[end_pos.line + 1]
                    if end_pos.line + 1 < len(index.starts)
                    else len(text)
                )
        self._start, self._end = start, end
        self.original = text[start:end]
        first_line = index.starts[index.position(start).line]
        self._context = lsp_lines(text[first_line : max(end, first_line)])
        self._mid_line = start != first_line
        self._last_emit = float("-inf")
        self._final = False
        self._checked = False
        self._inflight: _InFlight | None = None
        self._block: str | None = None  # the final review block as written
        self._code_final: str | None = None

    # -- what the session shows ------------------------------------------------------------

    @property
    def text(self) -> str:
        """The document as the session believes the client has it (at ``version``)."""
        return self._text

    @property
    def target(self) -> T.Range:
        """The target's range in the document now."""
        index = LineIndex(self._text)
        return T.Range(start=index.position(self._start), end=index.position(self._end))

    @property
    def waiting(self) -> bool:
        """An edit is in flight: the next waits for its echo."""
        return self._inflight is not None

    @property
    def needs_flush(self) -> bool:
        """Something is left to write once nothing is in flight (call ``flush``)."""
        if self.state is not SessionState.WRITING or self._inflight is not None:
            return False
        want = self._desired(self._final)
        return want is not None and want != self._text[self._start : self._end]

    @property
    def preview(self) -> str:
        """The answer as it would be written (the whole of it once finished)."""
        return self.code(final=self._final)

    def code(self, *, final: bool) -> str:
        """The post-processed answer: code only, fitted to the target."""
        answer = self.answer
        if not final and answer.endswith("\r"):
            answer = answer[:-1]  # it may be the first half of a \r\n still on its way
        if not self.post.extract_code:
            lines = lsp_lines(answer)
        else:
            lines = code_so_far(answer, final=final)
        if self.post.reindent and lines:
            lines = fit_indent(lines, self._context)
            if self._mid_line:
                lines[0] = lines[0].lstrip(" \t")  # the line's indentation is before the target
        out = "".join(lines)
        if self.post.extract_code and out:
            nl = _newline_of(self.original or self._text)
            if nl == "\r\n":
                out = out.replace("\r\n", "\n").replace("\n", "\r\n")
            ends = self.original.endswith(("\n", "\r"))
            if ends and not out.endswith(("\n", "\r")):
                out += nl
            elif not ends and self.original and out.endswith(nl):
                out = out[: -len(nl)]
        return out

    def _review_block(self, code: str, *, final: bool) -> str:
        nl = _newline_of(self.original or self._text)
        orig = self.original
        if orig and not orig.endswith(("\n", "\r")):
            orig += nl
        ans = code if not code or code.endswith(("\n", "\r")) else code + nl
        count = len(lsp_lines(orig))
        tail = MARK_ANSWER if final else MARK_ANSWER + " (streaming…)"
        block = f"{MARK_ORIGINAL} ({count} lines){nl}{orig}{MARK_SPLIT}{nl}{ans}{tail}"
        if self.original and not self.original.endswith(("\n", "\r")):
            return block  # the target ended a file without a final line break: so does the block
        return block + nl

    def _desired(self, final: bool) -> str | None:
        code = self.code(final=final)
        if not code and not final and self.post.extract_code:
            return None  # nothing to show yet: the original stays in place meanwhile
        if self.review:
            return self._review_block(code, final=final)
        return code

    # -- feeding the answer ----------------------------------------------------------------

    def feed(self, delta: str) -> T.TextDocumentEdit | None:
        """Add answer text; the edit to send now, if one is due."""
        self.answer += delta
        return self._emit(final=False, force=False)

    def flush(self) -> T.TextDocumentEdit | None:
        """The edit that brings the document up to date now, whatever the interval."""
        return self._emit(final=self._final, force=True)

    def finish(self) -> T.TextDocumentEdit | None:
        """The answer is complete: the last edit (or ``None`` while one is in flight; then
        ``flush`` once ``waiting`` is over)."""
        self._final = True
        if self.state is not SessionState.WRITING:
            return None
        if not self._checked:
            self._checked = True
            code = self.code(final=True)
            if self.post.extract_code and not code.strip():
                self._stop("the answer had no code")
                return None
            if not self.review and self.syntax_ok is not None and self.language:
                head, tail = self._text[: self._start], self._text[self._end :]
                before = self.syntax_ok(self.language, head + self.original + tail)
                after = self.syntax_ok(self.language, head + code + tail)
                if before and after is False:
                    self.review = True
                    self.warnings.append(
                        "the answer does not parse; it is shown for review, not applied"
                    )
        return self._emit(final=True, force=True)

    def _emit(self, *, final: bool, force: bool) -> T.TextDocumentEdit | None:
        if self.state is not SessionState.WRITING or self._inflight is not None:
            return None
        now = self.clock()
        if not force and now - self._last_emit < self.min_interval:
            return None
        want = self._desired(final)
        if want is None:
            return None
        shown = self._text[self._start : self._end]
        if want == shown:
            if final:
                self._settle_final(want)
            return None
        self._last_emit = now
        after = self._text[: self._start] + want + self._text[self._end :]
        self._inflight = _InFlight(after, self._start, self._start + len(want), final)
        return self._edit(
            [(self._start + a, self._start + b, new) for a, b, new in minimal_edits(shown, want)]
        )

    def _edit(self, spans: Sequence[tuple[int, int, str]]) -> T.TextDocumentEdit:
        text = self._text
        index = LineIndex(text)
        # No LSP position lies between the \r and \n of a line break: a span that starts or
        # ends there takes the whole pair (touching spans then merge).
        widened: list[tuple[int, int, str]] = []
        for a, b, new in spans:
            if 0 < a < len(text) and text[a - 1] == "\r" and text[a] == "\n":
                a, new = a - 1, "\r" + new
            if 0 < b < len(text) and text[b - 1] == "\r" and text[b] == "\n":
                b, new = b + 1, new + "\n"
            if widened and a <= widened[-1][1]:
                pa, pb, pnew = widened.pop()
                a, new = pa, pnew + text[pb:a] + new if a >= pb else pnew + new
            widened.append((a, b, new))
        spans = widened
        return T.TextDocumentEdit(
            text_document=T.OptionalVersionedTextDocumentIdentifier(
                uri=self.uri, version=self.version
            ),
            edits=[
                T.TextEdit(range=T.Range(index.position(a), index.position(b)), new_text=new)
                for a, b, new in spans
            ],
        )

    def _settle_final(self, written: str) -> None:
        if self.review:
            self._block = written
            self._code_final = self.code(final=True)
            self.state = SessionState.REVIEW
        else:
            self.state = SessionState.DONE

    def _stop(self, reason: str) -> None:
        if self.state is SessionState.WRITING:
            self.state = SessionState.PREVIEW
            self.stop_reason = reason

    # -- what the client did ---------------------------------------------------------------

    def applied(self, ok: bool, reason: str | None = None) -> None:
        """The client's answer to ``workspace/applyEdit``. ``False`` is a normal outcome (the
        user typed meanwhile): the session stops writing and offers a preview."""
        flight = self._inflight
        if flight is None:
            return
        if not ok:
            self._inflight = None
            if not flight.resolving:
                why = "the editor did not apply the edit"
                self._stop(f"{why} ({reason})" if reason else why)
            return
        flight.applied = True
        if flight.echoed:
            self._land(flight)

    def _land(self, flight: _InFlight) -> None:
        self._inflight = None
        if flight.resolving:
            self.state = SessionState.DONE
        elif flight.final:
            self._settle_final(self._text[self._start : self._end])

    def user_changed(
        self, new_version: int, changes: Sequence[T.TextDocumentContentChangeEvent]
    ) -> None:
        """Follow a ``textDocument/didChange``: the echo of our own edit, the user's typing,
        or both in one notification."""
        flight = self._inflight
        if flight is not None and not flight.echoed:
            text = self._text
            for i, change in enumerate(changes):
                text = apply_content_change(text, change)
                if text == flight.after:
                    self._text, self.version = text, new_version
                    self._start, self._end = flight.start, flight.end
                    self.written_version = new_version
                    flight.echoed = True
                    if flight.applied:
                        self._land(flight)
                    self._user(changes[i + 1 :])
                    return
            # The user's change reached the client before our edit: that edit was made for a
            # document that no longer exists.
            self._inflight = None
            self._stop("the document changed before the edit arrived")
        self._user(changes)
        self.version = new_version

    def _user(self, changes: Sequence[T.TextDocumentContentChangeEvent]) -> None:
        for change in changes:
            old = self._text
            if isinstance(change, T.TextDocumentContentChangePartial):
                index = LineIndex(old)
                a, b = index.offset(change.range.start), index.offset(change.range.end)
                new = change.text
            else:  # a whole-document change: find what differs
                full = change.text
                a = 0
                limit = min(len(old), len(full))
                while a < limit and old[a] == full[a]:
                    a += 1
                s = 0
                while s < limit - a and old[len(old) - 1 - s] == full[len(full) - 1 - s]:
                    s += 1
                b, new = len(old) - s, full[a : len(full) - s]
            self._text = old[:a] + new + old[b:]
            delta = len(new) - (b - a)
            if b <= self._start:  # before the target (an insertion at its start, too)
                self._start += delta
                self._end += delta
            elif a >= self._end:
                pass
            elif self.state is SessionState.REVIEW and self._start <= a and b <= self._end:
                self._end += delta  # an edit inside the review block: it is the user's now
            else:
                self._stop("the text being rewritten was edited meanwhile")
                if self.state is SessionState.REVIEW:
                    self._block = None

    # -- review ----------------------------------------------------------------------------

    def accept(self) -> T.TextDocumentEdit | None:
        """The edit that replaces the review block with the answer."""
        return self._resolve(accept=True)

    def reject(self) -> T.TextDocumentEdit | None:
        """The edit that restores the original, byte for byte."""
        return self._resolve(accept=False)

    def _resolve(self, *, accept: bool) -> T.TextDocumentEdit | None:
        if self.state is not SessionState.REVIEW or self._inflight is not None:
            return None
        block = self._text[self._start : self._end]
        if block == self._block and self._code_final is not None:
            new = self._code_final if accept else self.original
            start, end = self._start, self._end
        else:  # the user edited inside the block: read it back from the document
            line = LineIndex(self._text).position(self._start).line
            found = find_review_block(self._text, line)
            if found is None:
                return None
            index = LineIndex(self._text)
            start = index.starts[found.start]
            end = (
                index.starts[found.end + 1]
                if found.end + 1 < len(index.starts)
                else len(self._text)
            )
            new = found.answer if accept else found.original
            if end == len(self._text) and not self._text.endswith(("\n", "\r")):
                new = new.removesuffix("\n")
        after = self._text[:start] + new + self._text[end:]
        self._inflight = _InFlight(after, start, start + len(new), True, resolving=True)
        return self._edit([(start, end, new)])

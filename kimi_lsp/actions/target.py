"""What an action works on: the definition under the cursor, or the selection."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from kimi_lsp.actions.errors import IgnoredFile, NothingToWorkOn
from kimi_lsp.index import Definition, DefinitionKind, Span, WorkspaceIndex, language_for
from kimi_lsp.positions import lsp_lines, text_lines, to_index, utf16_len


@dataclass(frozen=True)
class Target:
    path: Path
    language: str
    span: Span  # 0-based lines, UTF-16 columns
    code: str  # the text of the span
    name: str  # the symbol's name, or "selection"
    definition: Definition | None
    selected: bool = False  # the user selected this code (else: the definition at the cursor)

    @property
    def code_hash(self) -> str:
        return hashlib.sha256(self.code.encode()).hexdigest()[:20]

    @property
    def key(self) -> str:
        """Identifies the target for 'same action, same target → cancel the earlier run'."""
        return f"{self.path}:{self.span.start_line}:{self.span.end_line}"


def slice_span(text: str, span: Span) -> str:
    lines = lsp_lines(text)
    if not lines:
        return ""
    last = min(span.end_line, len(lines) - 1)
    first = min(span.start_line, last)
    start = to_index(lines[first], span.start_col)
    # A position past the last line is the end of the text (LSP's end-of-file position).
    end = len(lines[last]) if span.end_line > last else to_index(lines[last], span.end_col)
    if first == last:
        return lines[first][start:end]
    return lines[first][start:] + "".join(lines[first + 1 : last]) + lines[last][:end]


def find_target(
    index: WorkspaceIndex | None,
    path: Path,
    text: str,
    line: int,
    col: int,
    selection: Span | None = None,
) -> Target:
    """The selection when there is one, else the innermost definition at the position.
    A selection of one name (what some clients send for the cursor on a word) is the cursor;
    blank lines at a selection's edges are not part of it. An ignored file is refused
    (``IgnoredFile``, naming the rule): nothing of it may enter a prompt."""
    refuse_ignored(index, path)
    lang = language_for(path) or "text"
    if selection is not None and (
        selection.start_line != selection.end_line or selection.start_col != selection.end_col
    ):
        selection = _trim_blank_lines(text, selection)
        code = slice_span(text, selection)
        if code.strip() and not _NAME.fullmatch(code):
            # Marked from the line's start: the code begins after the indentation.
            lead = len(code) - len(code.lstrip(" \t"))
            probe = Span(
                selection.start_line,
                selection.start_col + lead,
                selection.end_line,
                selection.end_col,
            )
            defn = (
                index.enclosing_definition(path, probe.start_line, probe.start_col)
                if index
                else None
            )
            inside = defn is not None and _contains(defn.range, probe)
            name = defn.name if inside and defn is not None else "selection"
            return Target(path, lang, selection, code, name, defn if inside else None, True)
    found = definition_at(index, path, text, line, col)
    if found is None:
        raise NothingToWorkOn(
            "There is no function, class or other definition at the cursor. Put the cursor "
            "inside one, or select the code to work on."
        )
    span, defn = found
    return Target(path, lang, span, slice_span(text, span), defn.name, defn)


def definition_at(
    index: WorkspaceIndex | None, path: Path, text: str, line: int, col: int
) -> tuple[Span, Definition] | None:
    """The innermost definition at the position as the user is writing it (``text``, the
    buffer), and the lines it spans: the parse's, or, where typing left a function open
    (a Python line not yet ended, a brace language's ``}`` not yet written) and the parse
    lost it, the one being written."""
    lang = language_for(path) or "text"
    defn = index.enclosing_definition(path, line, col) if index is not None else None
    if lang == "python" and (defn is None or defn.kind in _CLASS_KINDS):
        # Typing leaves the function open (`y = f(`, a docstring not yet closed): its parse
        # lost it, or ended it early (the class around it may be all that is left), its
        # lines did not.
        found = _open_definition(path, text, line, col, index.outline(path) if index else [])
        if found is not None and (
            defn is None or found[1].name_range.start_line > defn.name_range.start_line
        ):
            return found
    if index is not None and lang != "python" and (defn is None or defn.kind in _CLASS_KINDS):
        # A body being typed has no closing `}` yet: the parse lost the function, often the
        # class around it too; with the brackets closed it parses as what is being written.
        # On the blank line after the header the cursor's column may be past its end; on
        # the empty line after a final line break, it is at the end of the text.
        lines = text_lines(text) or [""]
        if line < len(lines):
            at = (line, min(col, utf16_len(lines[line])))
        else:
            at = (len(lines) - 1, utf16_len(lines[-1]))
        closed = index.enclosing_definition(path, *at, closed=True) if line >= 0 else None
        if closed is not None and (defn is None or closed.kind not in _CLASS_KINDS):
            defn = closed
    if defn is None:
        return None
    return Span(defn.range.start_line, 0, defn.range.end_line, defn.range.end_col), defn


def refuse_ignored(index: WorkspaceIndex | None, path: Path) -> None:
    """Raise ``IgnoredFile`` naming the rule when the ignore rules keep ``path`` out."""
    if index is not None and index.is_ignored(path):
        raise IgnoredFile(path, index.rules.why_ignored(path))


_NAME = re.compile(r"[^\W\d]\w*")
_CLASS_KINDS = (DefinitionKind.CLASS, DefinitionKind.INTERFACE, DefinitionKind.STRUCT)
_HEADER = re.compile(r"([ \t]*)(?:async[ \t]+def|def|class)[ \t]+([^\W\d]\w*)")


def _open_definition(
    path: Path, text: str, line: int, col: int, outline: list[Definition]
) -> tuple[Span, Definition] | None:
    """The Python ``def`` or ``class`` the cursor is in by indentation, where the parse
    does not say: an unclosed bracket or docstring while typing loses the definition or
    ends it early, and a blank line after its last line is in it when the cursor is
    indented deeper than its header (where the editor puts it after Enter). Its lines, and
    its definition: the parse's when it kept the header, else one made from the header
    (scope and kind from the headers around it), so the context still follows its class
    and its name. None at module level."""
    lines = text_lines(text)
    if not 0 <= line < len(lines):
        return None

    def indent(s: str) -> int:
        return len(s) - len(s.lstrip(" \t"))

    here = next((i for i in range(line, -1, -1) if lines[i].strip()), None)
    if here is None:
        return None
    parsed = {d.name_range.start_line: d for d in outline}
    # On a blank line the cursor's column is the indentation being typed at.
    depth = indent(lines[here]) if here == line else min(col, indent(lines[here]) + 1)
    for i in range(here, -1, -1):
        m = _HEADER.match(lines[i])
        if m is None or (i != here and len(m.group(1)) >= depth):
            continue
        kept = parsed.get(i)
        head = len(m.group(1))
        end = i
        for j in range(i + 1, len(lines)):
            if lines[j].strip():
                if indent(lines[j]) <= head:
                    break
                end = j
        if kept is not None:
            end = max(end, kept.range.end_line)
            return Span(kept.range.start_line, 0, end, utf16_len(lines[end])), kept
        span = Span(i, 0, end, utf16_len(lines[end]))
        return span, _header_definition(path, lines, i, m, span)
    return None


def _header_definition(
    path: Path, lines: list[str], i: int, header: re.Match[str], span: Span
) -> Definition:
    """A definition for a header the parse lost: its scope is the headers above it with
    less indentation (``K.m`` for a method of ``K``)."""
    scopes: list[tuple[str, str]] = []  # (keyword, name), innermost first
    depth = len(header.group(1))
    for j in range(i - 1, -1, -1):
        m = _HEADER.match(lines[j])
        if m is not None and len(m.group(1)) < depth:
            scopes.append((lines[j].split()[0], m.group(2)))
            depth = len(m.group(1))
            if depth == 0:
                break
    keyword = lines[i].split()[0]
    if keyword == "class":
        kind = DefinitionKind.CLASS
    elif scopes and scopes[0][0] == "class":
        kind = DefinitionKind.METHOD
    else:
        kind = DefinitionKind.FUNCTION
    name = header.group(2)
    col = utf16_len(lines[i][: header.end(2)]) - utf16_len(name)
    return Definition(
        name=name,
        kind=kind,
        path=path,
        range=span,
        name_range=Span(i, col, i, col + utf16_len(name)),
        signature=lines[i].strip(),
        scope=".".join(n for _, n in reversed(scopes)) or None,
        doc_range=None,
        language="python",
    )


def _trim_blank_lines(text: str, span: Span) -> Span:
    lines = lsp_lines(text)

    def blank(i: int, from_col: int = 0) -> bool:
        return i >= len(lines) or not lines[i][to_index(lines[i], from_col) :].strip()

    while span.start_line < span.end_line and blank(span.start_line, span.start_col):
        span = Span(span.start_line + 1, 0, span.end_line, span.end_col)
    while span.end_line > span.start_line + 1 and span.end_col == 0 and blank(span.end_line - 1):
        span = Span(span.start_line, span.start_col, span.end_line - 1, 0)
    # Whole lines marked: the code ends before the last line break, as definitions do.
    if span.end_col == 0 and span.start_line < span.end_line <= len(lines):
        last = lines[span.end_line - 1].rstrip("\r\n")
        span = Span(span.start_line, span.start_col, span.end_line - 1, utf16_len(last))
    return span


def _contains(outer: Span, inner: Span) -> bool:
    return (outer.start_line, outer.start_col) <= (inner.start_line, inner.start_col) and (
        inner.end_line,
        inner.end_col,
    ) <= (outer.end_line, outer.end_col)

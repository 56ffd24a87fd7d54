"""From a model's answer to the code that goes into the document.

Models wrap code in fences and add a sentence before or after; ``code_so_far`` keeps only the
code, and only complete lines while the answer streams; ``code_blocks`` splits an answer of
several blocks. ``fit_indent`` moves the code to the indentation of the text it replaces.
"""

from __future__ import annotations

import re

# CommonMark's fences: a run of 3+ backticks or tildes indented at most 3 spaces (an info
# string may follow the opening one); the block ends at a line of the same character, at
# least as long, and nothing else. So neither a "```python" line nor a docstring's indented
# fence inside the code ends it, and an answer fenced with ```` can hold ``` blocks.
_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CLOSE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*\r?$")


def _closes(line: str, fence: str) -> bool:
    found = _CLOSE.match(line)
    return found is not None and found.group(1)[0] == fence[0] and len(found.group(1)) >= len(fence)


def code_so_far(answer: str, *, final: bool) -> list[str]:
    """The code lines of ``answer`` (with line breaks); while streaming, complete lines only."""
    lines = answer.splitlines(keepends=True)
    if not final and lines and not lines[-1].endswith("\n"):
        lines = lines[:-1]  # a line still being written
    blocks = code_blocks("".join(lines))
    if blocks:
        return blocks[0]
    if "```" in answer or (not final and not lines):
        return []  # a fence may still be coming
    return _trim_blank_edges(lines)


def code_blocks(answer: str) -> list[list[str]]:
    """Every fenced code block of a finished answer, in order (lines with their breaks). An
    unclosed last block counts: the answer ended inside it."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    fence = ""
    for ln in answer.splitlines(keepends=True):
        if current is None:
            if opening := _OPEN.match(ln):
                current, fence = [], opening.group(1)
        elif _closes(ln, fence):
            blocks.append(current)
            current = None
        else:
            current.append(ln)
    if current is not None:
        blocks.append(current)
    return blocks


def _trim_blank_edges(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def fit_indent(code: list[str], original: list[str]) -> list[str]:
    """Re-indent ``code`` so its least-indented line sits where the original's did."""

    def base(lines: list[str]) -> str | None:
        indents = [_indent_of(ln) for ln in lines if ln.strip()]
        return min(indents, key=len) if indents else None

    have, want = base(code), base(original)
    if have is None or want is None or have == want:
        return code
    out = []
    for ln in code:
        if ln.strip() and ln.startswith(have):
            out.append(want + ln[len(have) :])
        else:
            out.append(ln)
    return out

"""A unified diff exactly as ``git diff`` prints it, so ``git apply`` and ``patch -p1`` take it.

``git_diff(name, old, new)``: ``name`` is the path relative to the repository (workspace) root,
``old`` None for a created file (``--- /dev/null``), ``new`` None for a deleted one
(``+++ /dev/null``). A last line without a line break is followed by git's
``\\ No newline at end of file`` marker. Three lines of context, as git uses.
"""

from __future__ import annotations

import difflib

from kimi_lsp.edits.stream import split_lines

NO_NEWLINE = "\\ No newline at end of file\n"


def _ended(lines: list[str]) -> list[str]:
    """Each line ends with a break; one that did not is followed by git's marker."""
    out: list[str] = []
    for line in lines:
        if line.endswith(("\n", "\r")):
            out.append(line)
        else:
            out.append(line + "\n")
            out.append(NO_NEWLINE)
    return out


def git_diff(name: str, old: str | None, new: str | None) -> str:
    """The diff of one file, "" when nothing changed."""
    if old == new:
        return ""
    before = split_lines(old or "")
    after = split_lines(new or "")
    head = [f"diff --git a/{name} b/{name}\n"]
    if old is None:
        head.append("new file mode 100644\n")
    elif new is None:
        head.append("deleted file mode 100644\n")
    head.append("--- /dev/null\n" if old is None else f"--- a/{name}\n")
    head.append("+++ /dev/null\n" if new is None else f"+++ b/{name}\n")
    body: list[str] = []
    for line in difflib.unified_diff(before, after, n=3, lineterm="\n"):
        if line.startswith(("---", "+++")) and not body:
            continue  # difflib's own headers (always the first two lines): ours are above
        body.extend(_ended([line]) if line[:1] in " +-" else [line])
    return "".join(head + body)

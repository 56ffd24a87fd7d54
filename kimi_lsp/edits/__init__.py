"""Streaming edits: a model's answer becomes small edits of a document, never over the user's.

- ``RegionWriter(start, lines).step(document, desired)`` → minimal ``TextEdit``s, or
  ``Conflict`` when the user changed the region meanwhile (then stop; offer a preview).
  ``commit()`` once the client applied them.
- ``review_block(original, answer, final=...)`` → the conflict-marker preview;
  ``find_review_block(document, line)`` and ``resolve_review(document, block, accept=...)``
  → the one edit that keeps the answer or restores the original byte for byte.
- ``code_so_far(answer, final=...)`` strips fences and chatter; ``fit_indent`` re-indents.
- ``apply_edits(text, edits, encoding)``: what a client does with LSP ``TextEdit``s; positions
  count UTF-16 units unless ``encoding`` says otherwise (``kimi_lsp.positions``), and
  ``convert_edits`` recounts edits for the encoding a client negotiated.

The pacing (≤ 10 writes a second), the document versions and the review flow live with the
actions that stream (``kimi_lsp.actions.refactor``).

Uses lsprotocol's plain types only; never pygls, never the index.
"""

from kimi_lsp.edits.answer import code_so_far, fit_indent
from kimi_lsp.edits.stream import (
    MARK_ANSWER,
    MARK_ORIGINAL,
    MARK_SPLIT,
    Conflict,
    RegionWriter,
    ReviewBlock,
    apply_edits,
    find_review_block,
    resolve_review,
    review_block,
    split_lines,
)

__all__ = [
    "MARK_ANSWER",
    "MARK_ORIGINAL",
    "MARK_SPLIT",
    "Conflict",
    "RegionWriter",
    "ReviewBlock",
    "apply_edits",
    "code_so_far",
    "find_review_block",
    "fit_indent",
    "resolve_review",
    "review_block",
    "split_lines",
]

"""Streaming edit sessions: a model's answer becomes small, versioned edits of a document.

- ``RegionWriter(start, lines).step(document, desired)`` → minimal ``TextEdit``s, or
  ``Conflict`` when the user changed the region meanwhile (then stop; offer a preview).
  ``commit()`` once the client applied them.
- ``review_block(original, answer, final=...)`` → the conflict-marker preview;
  ``find_review_block(document, line)`` and ``resolve_review(document, block, accept=...)``
  → the one edit that keeps the answer or restores the original byte for byte.
- ``code_so_far(answer, final=...)`` strips fences and chatter; ``fit_indent`` re-indents.
- ``apply_edits(text, edits)``: what a client does with LSP ``TextEdit``s (UTF-16 positions).

- ``EditSession(uri, text, version, target, *, review, post, language, syntax_ok, clock)``:
  the whole life of one streamed answer in one range: ``feed(delta)`` / ``finish()`` /
  ``flush()`` → ``TextDocumentEdit | None`` (≤ 10 a second), ``applied(ok)``,
  ``user_changed(version, changes)``, ``preview``, ``accept()`` / ``reject()``.
- ``minimal_edits(old, new)``, ``LineIndex`` (offsets ↔ UTF-16 positions),
  ``apply_text_edits`` and ``apply_content_change`` (what a client does).

Uses lsprotocol's plain types only; never pygls, never the index.
"""

from kimi_lsp.edits.answer import code_so_far, fit_indent
from kimi_lsp.edits.positions import (
    LineIndex,
    apply_content_change,
    apply_text_edits,
    lsp_lines,
    utf16_units,
)
from kimi_lsp.edits.session import (
    MIN_INTERVAL_S,
    RAW,
    EditSession,
    Postprocess,
    SessionState,
    SyntaxCheck,
    minimal_edits,
)
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
    utf16_len,
)

__all__ = [
    "MARK_ANSWER",
    "MARK_ORIGINAL",
    "MARK_SPLIT",
    "MIN_INTERVAL_S",
    "RAW",
    "Conflict",
    "EditSession",
    "LineIndex",
    "Postprocess",
    "RegionWriter",
    "ReviewBlock",
    "SessionState",
    "SyntaxCheck",
    "apply_content_change",
    "apply_edits",
    "apply_text_edits",
    "code_so_far",
    "find_review_block",
    "fit_indent",
    "lsp_lines",
    "minimal_edits",
    "resolve_review",
    "review_block",
    "split_lines",
    "utf16_len",
    "utf16_units",
]

"""Refactor (and fix): the answer streams into the document as small, versioned edits.

The document is the user's. Edits go through an ``Editor`` (the server: ``workspace/applyEdit``
with the document's version); a refused edit (``applied: false``) or a change the user makes
inside the target stops the writing, and the rest of the answer is offered as a preview
instead. Long targets are written in review mode (original and answer side by side, with
Accept / Reject code actions); an answer that breaks the file's syntax is never applied
silently: it becomes a review block with a warning.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lsprotocol import types as T

from kimi_lsp.actions.code_actions import REFACTOR_PRESETS
from kimi_lsp.actions.errors import NothingToWorkOn
from kimi_lsp.actions.pipeline import Sink
from kimi_lsp.actions.prompts import OUTPUT_TOKENS, build_messages
from kimi_lsp.actions.readiness import wait_for_index
from kimi_lsp.actions.services import Services
from kimi_lsp.actions.target import find_target
from kimi_lsp.context import restore
from kimi_lsp.context.recipes import FIX_INSTRUCTION
from kimi_lsp.edits.answer import code_so_far, fit_indent
from kimi_lsp.edits.stream import Conflict, RegionWriter, review_block, split_lines
from kimi_lsp.index import Span, language_for
from kimi_lsp.index.languages import new_parser

log = logging.getLogger(__name__)

REFACTOR_MAX_TOKENS = OUTPUT_TOKENS["refactor"]  # per request; longer answers continue
REVIEW_MIN_LINES = 4  # targets at least this long are written as a review block
WRITE_INTERVAL_S = 0.1  # at most ~10 edits a second


class Editor(Protocol):
    """The document as the editor has it, and a way to edit it (the server implements this)."""

    def text(self) -> str: ...

    async def apply(self, edits: list[T.TextEdit], label: str) -> bool: ...


class ConfirmingEditor(Editor, Protocol):
    """An editor that can show a whole edit for the user to accept first (VS Code's Refactor
    Preview, from ``needsConfirmation`` change annotations): then a long refactor is proposed
    once, at the end, instead of a review block written into the file."""

    confirms_edits: bool

    async def propose(self, edits: list[T.TextEdit], label: str, description: str) -> bool: ...


@dataclass
class RefactorResult:
    applied: bool
    review: bool
    preview: str | None  # the answer, when it could not (all) be written into the document
    reason: str = ""
    cached: bool = False
    answer_text: str = ""
    warnings: list[str] = field(default_factory=list)


def syntax_ok(language: str, text: str) -> bool | None:
    """Does ``text`` parse without errors? None when the language has no grammar here."""
    try:
        parser = new_parser(language)
    except Exception:
        return None
    return not parser.parse(text.encode("utf-8", "surrogatepass")).root_node.has_error


class AnswerStreamer:
    """Turns answer deltas into region writes, at most ~10 a second."""

    def __init__(
        self,
        editor: Editor,
        writer: RegionWriter,
        original: list[str],
        review: bool,
        clock: Callable[[], float] = time.monotonic,
        prefix: list[str] | None = None,
        unredact: Callable[[str], str] | None = None,
        label: str = "Kimi: refactor",
    ) -> None:
        self.editor, self.writer, self.original, self.review = editor, writer, original, review
        self.label = label  # what the editor shows for the edit (its undo entry, a message)
        self.prefix = prefix or []  # lines written before the code (a blank separator line)
        # The prompt had the code's secrets redacted: put them back in what is written.
        self.unredact = unredact
        self.answer = ""
        # Set when the editor confirms edits: the answer is proposed once, at the end, as
        # one edit to accept (its description); nothing is written while it streams.
        self.propose: str | None = None
        self.declined = False
        self.stopped: str | None = None
        self._written: list[str] | None = None
        self._clock = clock
        self._last = float("-inf")
        self._lock = asyncio.Lock()

    def desired(self, final: bool) -> list[str]:
        code = fit_indent(code_so_far(self.answer, final=final), self.original)
        if self.unredact is not None:
            code = [self.unredact(line) for line in code]
        if self.review and self.propose is None:
            return review_block(self.original, code, final=final)
        return [*self.prefix, *code] if code else []

    async def write(self, *, final: bool, desired: list[str] | None = None) -> None:
        async with self._lock:
            if self.stopped is not None:
                return
            if self.propose is not None and not final:
                return  # proposed whole at the end; the stream shows it meanwhile
            want = desired if desired is not None else self.desired(final)
            if not want and not final:
                return  # nothing to show yet; keep the original in place meanwhile
            if want == self._written:
                return
            edits = self.writer.step(self.editor.text(), want)
            if isinstance(edits, Conflict):
                self.stopped = edits.reason
                return
            if edits and self.propose is not None:
                if not await _propose(self.editor, edits, self.label, self.propose):
                    self.stopped, self.declined = "discarded in the preview", True
                    return
            elif edits and not await self.editor.apply(edits, self.label):
                self.stopped = "the editor did not apply the edit (the document changed)"
                return
            self.writer.commit()
            self._written = want
            self._last = self._clock()

    def due(self) -> bool:
        return self._clock() - self._last >= WRITE_INTERVAL_S


def _confirms(editor: Editor) -> bool:
    return bool(getattr(editor, "confirms_edits", False)) and hasattr(editor, "propose")


async def _propose(editor: Editor, edits: list[T.TextEdit], label: str, description: str) -> bool:
    assert _confirms(editor)
    confirming: ConfirmingEditor = editor  # type: ignore[assignment]
    return await confirming.propose(edits, label, description)


class EditingSink:
    """The pipeline's sink: forwards to the client's sink and schedules document writes."""

    def __init__(self, outer: Sink, streamer: AnswerStreamer) -> None:
        self.outer, self.streamer = outer, streamer
        self.tasks: set[asyncio.Task[None]] = set()

    def progress(self, message: str) -> None:
        self.outer.progress(message)

    def reasoning(self, delta: str) -> None:
        self.outer.reasoning(delta)

    def text(self, delta: str) -> None:
        self.outer.text(delta)
        self.streamer.answer += delta
        if "\n" in delta and self.streamer.due() and not self.tasks:
            task = asyncio.ensure_future(self.streamer.write(final=False))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)


def thinking_action(instruction: str, preset: str | None) -> str:
    """Which action the thinking policy sees: a fix, a preset, or a free-form refactor."""
    if instruction.strip().lower().startswith(FIX_INSTRUCTION.split("{")[0].strip()):
        return "fix"
    if not instruction.strip() and preset in REFACTOR_PRESETS:
        return preset
    return "refactor"


async def refactor(
    services: Services,
    editor: Editor,
    path: Path,
    line: int,
    col: int,
    sink: Sink,
    *,
    selection: Span | None = None,
    instruction: str = "",
    preset: str | None = None,
    regenerate: bool = False,
    sessions: dict[str, RegionWriter] | None = None,
    session_key: str = "",
) -> RefactorResult:
    await wait_for_index(services, sink)  # the prompt sees the whole workspace
    text = editor.text()
    target = find_target(services.index, path, text, line, col, selection)
    if (
        selection is not None
        and target.definition is not None
        and (selection.start_col != 0 or selection.end_col != 0)
    ):
        # Part of a line (a diagnostic's range, a word): rewrite the whole definition it is in;
        # the model cannot return a fragment that fits back reliably.
        target = find_target(services.index, path, text, selection.start_line, selection.start_col)
    if preset is not None and preset not in REFACTOR_PRESETS:
        raise NothingToWorkOn(
            f"Unknown refactor preset {preset!r}; one of {', '.join(REFACTOR_PRESETS)}."
        )
    words = instruction.strip() or REFACTOR_PRESETS.get(preset or "", "") or "improve it"
    messages = build_messages(services, "refactor", target, text, instruction=words)
    lines = split_lines(text)
    first, last = target.span.start_line, target.span.end_line
    if target.span.end_col == 0 and last > first:
        last -= 1  # a selection that ends at a line's start does not take that line
    last = min(last, len(lines) - 1)
    original = lines[first : last + 1]
    review = services.settings.review_mode and len(original) >= REVIEW_MIN_LINES
    writer = RegionWriter(first, original)
    if sessions is not None:
        sessions[session_key] = writer  # the server forwards the user's changes to it
    streamer = AnswerStreamer(
        editor,
        writer,
        original,
        review,
        unredact=lambda line: restore(line, target.code, target.path),
    )
    if review and _confirms(editor):
        streamer.propose = f"{target.name}: {words}"
    editing = EditingSink(sink, streamer)
    try:
        result = await services.answer(
            messages,
            max_completion_tokens=REFACTOR_MAX_TOKENS,
            sink=editing,
            regenerate=regenerate,
            language=target.language,
            tools=preset is None,  # a free instruction (or a fix), not a mechanical preset
            action=thinking_action(instruction, preset),
        )
        if editing.tasks:
            await asyncio.gather(*editing.tasks)
        streamer.answer = result.text
        warnings: list[str] = []
        final_code = fit_indent(code_so_far(result.text, final=True), original)
        if not final_code:
            streamer.stopped = streamer.stopped or "the answer had no code"
        language = language_for(path) or target.language
        before_ok = syntax_ok(language, text)
        after = (
            text[: sum(len(x) for x in lines[:first])]
            + "".join(final_code)
            + "".join(lines[last + 1 :])
        )
        if before_ok and syntax_ok(language, after) is False:
            warnings.append("the answer does not parse; it is shown for review, not applied")
            streamer.review = True
        await streamer.write(final=True, desired=streamer.desired(final=True))
    finally:
        if sessions is not None:
            sessions.pop(session_key, None)
    # Discarded in the client's preview: the user saw it all and said no; nothing to show.
    held = streamer.stopped is not None and not streamer.declined
    preview = "".join(final_code) or result.text if held else None
    return RefactorResult(
        applied=streamer.stopped is None,
        review=streamer.review,
        preview=preview,
        reason=streamer.stopped or "",
        cached=result.cached,
        answer_text=result.text,
        warnings=warnings,
    )

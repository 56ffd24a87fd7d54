"""Workspace-wide refactor: plan the files, one sub-request per file, one reviewable edit.

1. Plan (no model call): the files that reference a symbol (and the one defining it), or the
   indexed files matching scope globs; ignored files never. The plan carries each file's
   content hash, an estimate of tokens and cost, and is shown before anything is spent.
   A file over ``MAX_FILE_LINES`` goes as the parts that use the symbol (``regions.py``).
2. Fan out: one request per file, each with the instruction, the definition the change is
   about (for a symbol), and that one file, a small output budget, run concurrently as batch
   work (the quota governor, when present, keeps interactive work ahead of it). Everything
   but the file comes first and is the same bytes for every file, so Kimi's prefix cache
   serves it from the second request on.
3. Validate each answer: it must parse (tree-sitter) where the original did; a file whose
   answer fails is reported, not applied.
4. Assemble one ``WorkspaceEdit`` with a change annotation per file (``needsConfirmation``)
   so the editor's refactor preview lets the user review it. A file changed since planning
   is skipped and reported, never clobbered. Cancel applies nothing.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types as T

from kimi_lsp.actions.diff import git_diff
from kimi_lsp.actions.errors import NothingToWorkOn, ThinkingBudgetSpent
from kimi_lsp.actions.pipeline import QuietSink, Sink
from kimi_lsp.actions.readiness import wait_for_index
from kimi_lsp.actions.refactor import syntax_ok
from kimi_lsp.actions.regions import Part, choose_parts, render_parts, splice
from kimi_lsp.actions.services import Services
from kimi_lsp.actions.target import definition_at
from kimi_lsp.context import redact, restore
from kimi_lsp.context.recipes import (
    SYSTEM,
    WORKSPACE_FILE_PARTS,
    WORKSPACE_FILE_WHOLE,
    WORKSPACE_SHARED,
)
from kimi_lsp.edits.answer import code_so_far
from kimi_lsp.edits.stream import RegionWriter, split_lines
from kimi_lsp.index import Definition, Reference, language_for
from kimi_lsp.llm import KimiError, Usage, cost_usd
from kimi_lsp.llm.tokens import estimate_text_tokens
from kimi_lsp.positions import DEFAULT, Encoding, relative

MAX_FILE_LINES = 800  # a longer file is sent as its parts that use the symbol (regions.py)
BRIEF_MAX_LINES = 80  # of the symbol's definition shown with every file; a longer one is cut
FAN_OUT = 4  # concurrent sub-requests without a quota governor to pace them
OUTPUT_SLACK = 1.3  # the rewritten file may grow a little


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class FilePlan:
    path: Path
    text: str
    hash: str
    input_tokens: int
    output_tokens: int
    parts: tuple[Part, ...] = ()  # a long file: only these are sent and rewritten


@dataclass
class WorkspacePlan:
    instruction: str
    files: list[FilePlan]
    skipped: dict[Path, str] = field(default_factory=dict)
    # What every file's request carries besides the file: the symbol's definition, redacted.
    brief: str = ""
    roots: list[Path] = field(default_factory=list)
    symbol: str = ""  # the name a symbol refactor is about
    # Reasoning tokens each file's request asks for on top of its answer (the thinking
    # policy: none on K2.6, the allowance on a model that always thinks).
    reasoning_allowance: int = 0

    def name_of(self, path: Path) -> str:
        """A file as the prompt names it: relative to its workspace root."""
        return relative(path, self.roots)

    @property
    def tokens(self) -> int:
        return sum(f.input_tokens + f.output_tokens + self.reasoning_allowance for f in self.files)

    def cost_usd(self, model: str) -> float | None:
        usage = Usage(
            prompt_tokens=sum(f.input_tokens for f in self.files),
            completion_tokens=sum(f.output_tokens + self.reasoning_allowance for f in self.files),
        )
        return cost_usd(model, usage)

    def confirmation(self, model: str, limit_usd: float) -> str | None:
        """The question to ask before a run that costs more than ``limit_usd`` (the setting
        ``workspace_confirm_usd``); None when it may go ahead unasked."""
        cost = self.cost_usd(model) or 0.0
        if cost <= limit_usd:
            return None
        return (
            f"Kimi will rewrite up to {len(self.files)} files for about "
            f"{self.tokens} tokens (~${cost:.2f}). Go ahead?"
        )

    def summary(self, model: str) -> dict[str, object]:
        cost = self.cost_usd(model)
        return {
            "files": [str(f.path) for f in self.files],
            "skipped": {str(p): why for p, why in self.skipped.items()},
            # long files sent as the parts that use the symbol: how many parts
            "parts": {str(f.path): len(f.parts) for f in self.files if f.parts},
            "estimatedTokens": self.tokens,
            "estimatedUsd": None if cost is None else round(cost, 4),
        }


@dataclass
class FileResult:
    path: Path
    new_text: str | None = None
    error: str | None = None


@dataclass
class WorkspaceResult:
    plan: WorkspacePlan
    results: list[FileResult]
    edit: T.WorkspaceEdit | None
    diff: str
    stale: dict[Path, str] = field(default_factory=dict)

    def report(self) -> dict[str, object]:
        return {
            "changed": [
                str(r.path)
                for r in self.results
                if r.new_text is not None and r.path not in self.stale
            ],
            "failed": {str(r.path): r.error for r in self.results if r.error},
            "stale": {str(p): why for p, why in self.stale.items()},
        }


async def wait_for_whole_index(services: Services, sink: Sink) -> None:
    """Wait for the index's first scan (``indexWaitMs`` at most, its progress said) before
    `plan_workspace`: a plan made from part of the workspace leaves out files that use the
    symbol, and its edit would change some of them and not the others. Raises
    `NothingToWorkOn` when the scan outlasts the wait."""
    if not await wait_for_index(services, sink) and services.index is not None:
        done, total = services.index.scan_progress
        raise NothingToWorkOn(
            f"The index is still scanning ({done:,}/{total:,} files): a workspace refactor "
            "now could miss files that use the symbol. Try again when the scan ends."
        )


def plan_workspace(
    services: Services,
    instruction: str,
    read: Callable[[Path], str | None],
    *,
    scope: list[str] | None = None,
    symbol: tuple[Path, int, int] | None = None,
    max_files: int = 50,
) -> WorkspacePlan:
    """Choose the files from the index; ``read`` gives a file's text as the editor has it."""
    index = services.index
    if index is None:
        raise NothingToWorkOn("The workspace is not indexed yet; try again in a moment.")
    if not instruction.strip():
        raise NothingToWorkOn("Say what to change: the instruction is empty.")
    candidates: list[Path]
    roots = list(services.roots)
    plan = WorkspacePlan(instruction, [], roots=roots)
    defn: Definition | None = None
    uses: list[Reference] = []
    if symbol is not None:
        path, line, col = symbol
        # As the editor has it: a class whose method is being typed is still the class.
        found = definition_at(index, path, read(path) or "", line, col)
        defn = found[1] if found is not None else None
        if defn is None:
            raise NothingToWorkOn("There is no definition at that position to refactor.")
        plan.symbol = defn.name
        uses = index.references_to(defn)
        candidates = sorted({defn.path, *(ref.path for ref in uses)})
        if not index.is_ignored(defn.path):
            plan.brief = _brief(defn, read(defn.path), plan.name_of(defn.path))
    elif scope:
        candidates = [
            p for p in index.files() if any(fnmatch.fnmatch(relative(p, roots), g) for g in scope)
        ]
    else:
        raise NothingToWorkOn("Give a symbol position or a scope (glob patterns) to refactor.")
    shared = estimate_text_tokens(_shared_part(plan))
    for path in sorted(candidates):
        if index.is_ignored(path):
            plan.skipped[path] = "ignored"
            continue
        if len(plan.files) >= max_files:
            plan.skipped[path] = f"over maxFiles ({max_files})"
            continue
        text = read(path)
        if text is None:
            plan.skipped[path] = "unreadable"
            continue
        parts: tuple[Part, ...] = ()
        sent = text
        if text.count("\n") > MAX_FILE_LINES:
            if defn is None:
                plan.skipped[path] = (
                    f"longer than {MAX_FILE_LINES} lines (a refactor about a symbol sends "
                    "only the parts that use it)"
                )
                continue
            lines = split_lines(text)
            parts = tuple(choose_parts(index, defn, path, lines, uses))
            if not parts:
                plan.skipped[path] = f"longer than {MAX_FILE_LINES} lines, and no use found"
                continue
            if sum(p.size for p in parts) > MAX_FILE_LINES:
                plan.skipped[path] = f"its parts that use {defn.name} pass {MAX_FILE_LINES} lines"
                continue
            sent = "".join("".join(lines[p.start : p.end + 1]) for p in parts)
        tokens = estimate_text_tokens(sent)
        plan.files.append(
            FilePlan(
                path,
                text,
                content_hash(text),
                shared + tokens + 40 + 20 * len(parts),
                int(tokens * OUTPUT_SLACK) + 64 + 16 * len(parts),
                parts,
            )
        )
    plan.reasoning_allowance = services.thinking_plan("workspace", 0).allowance
    return plan


def _brief(defn: Definition, text: str | None, name: str) -> str:
    """The symbol's definition as every file's request shows it (secrets redacted)."""
    if text is None:
        return ""
    lines = split_lines(text)[defn.range.start_line : defn.range.end_line + 1]
    more = len(lines) - BRIEF_MAX_LINES
    code = "".join(lines[:BRIEF_MAX_LINES]).rstrip()
    if more > 0:
        code += f"\n… ({more} more lines)"
    code, _ = redact(code, defn.path)
    lang = defn.language
    return (
        f"The change is about `{defn.qualified_name}` ({defn.kind}), defined in {name}:\n\n"
        f"```{lang}\n{code}\n```\n\n"
    )


def _shared_part(plan: WorkspacePlan) -> str:
    """The start of every file's request: the same bytes for each, so Kimi caches it."""
    return WORKSPACE_SHARED.format(instruction=plan.instruction, brief=plan.brief)


def _messages(plan: WorkspacePlan, file: FilePlan) -> list[dict[str, str]]:
    lang = language_for(file.path) or ""
    name = plan.name_of(file.path)
    if file.parts:
        lines = split_lines(file.text)
        shown, _ = redact(render_parts(lines, list(file.parts), lang), file.path)
        user = WORKSPACE_FILE_PARTS.format(
            shared=_shared_part(plan),
            name=name,
            lang=lang,
            lines=len(lines),
            symbol=plan.symbol,
            shown=shown,
            count=len(file.parts),
        )
    else:
        code, _ = redact(file.text.rstrip(), file.path)  # `_one` restores them in the answer
        user = WORKSPACE_FILE_WHOLE.format(
            shared=_shared_part(plan), name=name, lang=lang, code=code
        )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


async def _one(services: Services, plan: WorkspacePlan, file: FilePlan) -> FileResult:
    try:
        result = await services.answer(
            _messages(plan, file),
            max_completion_tokens=file.output_tokens,
            sink=QuietSink(),
            batch=True,
            language=language_for(file.path),
            action="workspace",
        )
    except (KimiError, ThinkingBudgetSpent) as exc:  # one file's failure is that file's
        return FileResult(file.path, error=exc.message)
    if result.finish_reason != "stop":
        return FileResult(file.path, error=f"the answer was cut ({result.finish_reason})")
    if file.parts:
        spliced = splice(split_lines(file.text), list(file.parts), result.text)
        if isinstance(spliced, str):
            return FileResult(file.path, error=spliced)
        new = restore("".join(spliced), file.text, file.path)
    else:
        code = "".join(code_so_far(result.text, final=True))
        new = restore(code, file.text.rstrip(), file.path)
    if not new.strip():
        return FileResult(file.path, error="the answer had no code")
    if file.text.endswith("\n") and not new.endswith("\n"):
        new += "\n"
    lang = language_for(file.path)
    if lang and syntax_ok(lang, file.text) and syntax_ok(lang, new) is False:
        return FileResult(file.path, error="the rewritten file does not parse; not applied")
    return FileResult(file.path, new_text=new)


async def run_workspace(
    services: Services,
    plan: WorkspacePlan,
    sink: Sink,
    read: Callable[[Path], str | None],
    versions: Mapping[Path, int | None] | None = None,
    encoding: Encoding = DEFAULT,
) -> WorkspaceResult:
    """Fan out, validate, assemble. Applies nothing itself: the caller applies ``edit``,
    whose positions count characters in ``encoding`` (the editor's)."""
    total = len(plan.files)
    done = 0
    running = 0
    gate = asyncio.Semaphore(FAN_OUT if services.admission is None else max(total, 1))
    sink.progress(f"0/{total} files")

    async def one(file: FilePlan) -> FileResult:
        nonlocal done, running
        async with gate:
            running += 1
            try:
                return await _one(services, plan, file)
            finally:
                running -= 1
                done += 1
                waiting = total - done - running
                sink.progress(f"{done}/{total} files, {waiting} waiting")

    results = list(await asyncio.gather(*(one(f) for f in plan.files)))
    stale: dict[Path, str] = {}
    annotations: dict[str, T.ChangeAnnotation] = {}
    changes: list[T.TextDocumentEdit] = []
    diffs: list[str] = []
    by_path = {f.path: f for f in plan.files}
    for result in results:
        if result.new_text is None:
            continue
        file = by_path[result.path]
        if result.new_text == file.text:
            continue
        now = read(file.path)
        if now is None or content_hash(now) != file.hash:
            stale[file.path] = "changed since planning; left alone"
            continue
        lines = split_lines(file.text)
        edits = RegionWriter(0, lines, encoding).step(file.text, split_lines(result.new_text))
        assert isinstance(edits, list)
        note = f"kimi-{len(annotations) + 1}"
        annotations[note] = T.ChangeAnnotation(
            label=f"Kimi: {plan.name_of(file.path)}",
            needs_confirmation=True,
            description=plan.instruction,
        )
        changes.append(
            T.TextDocumentEdit(
                text_document=T.OptionalVersionedTextDocumentIdentifier(
                    uri=file.path.as_uri(), version=(versions or {}).get(file.path)
                ),
                edits=[
                    T.AnnotatedTextEdit(range=e.range, new_text=e.new_text, annotation_id=note)
                    for e in edits
                ],
            )
        )
        diffs.append(git_diff(plan.name_of(file.path), file.text, result.new_text))
    edit = (
        T.WorkspaceEdit(document_changes=list(changes), change_annotations=annotations)
        if changes
        else None
    )
    return WorkspaceResult(plan, results, edit, "".join(diffs), stale)

"""The messages an action sends: the recipe's words (``kimi_lsp.context.recipes``: system
text, instruction and output size per action) around what the context engine packs.

Stable parts first (the system text), volatile parts last (the code and the instruction), so
Kimi's automatic prefix cache serves repeated requests cheaply. The context engine
(``kimi_lsp.context``) adds the repository map and the action's recipe, ranked for the
target, the selection, the open documents and the diagnostics in range, within the budget
the model's context leaves after the action's output (capped by ``contextBudget``). Without
a workspace folder there is no index: the prompt carries the target alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kimi_lsp.actions.errors import NothingToWorkOn
from kimi_lsp.actions.services import Services
from kimi_lsp.actions.target import Target, find_target
from kimi_lsp.context import BuiltContext, Section, build_context, prompt_budget, redact
from kimi_lsp.context.recipes import INSTRUCTIONS, OUTPUT_TOKENS, SYSTEM
from kimi_lsp.context.recipes import instruction as instruction_for
from kimi_lsp.index import Span
from kimi_lsp.llm.tokens import estimate_text_tokens
from kimi_lsp.positions import read_text

__all__ = ["INSTRUCTIONS", "OUTPUT_TOKENS", "SYSTEM", "build", "build_messages", "prompt_at"]


def build_messages(
    services: Services,
    action: str,
    target: Target,
    document_text: str,
    *,
    instruction: str = "",
    framework: str = "the project's test framework",
    extra: str = "",
) -> list[dict[str, Any]]:
    return build(
        services,
        action,
        target,
        document_text,
        instruction=instruction,
        framework=framework,
        extra=extra,
    ).messages


def build(
    services: Services,
    action: str,
    target: Target,
    document_text: str,
    *,
    instruction: str = "",
    framework: str = "the project's test framework",
    extra: str = "",
) -> BuiltContext:
    """The prompt, from the context engine when the workspace is indexed."""
    words = instruction_for(action, target.name, request=instruction, framework=framework)
    index = services.index
    if index is None:  # no workspace folder: the target alone
        code, n = redact(target.code.rstrip(), target.path)
        parts = [
            f"File: {target.path.name} ({target.language})",
            f"The code:\n```{target.language}\n{code}\n```",
        ]
        if extra:
            extra, m = redact(extra)
            n += m
            parts.append(extra)
        parts.append(words)
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "\n\n".join(parts)},
        ]
        tokens = estimate_text_tokens(SYSTEM)
        return BuiltContext(
            messages,
            [Section("system", SYSTEM, tokens)],
            [],
            tokens,
            n,
            estimate_text_tokens(SYSTEM + messages[1]["content"]),
        )
    budget = prompt_budget(
        services.model_context(), OUTPUT_TOKENS[action], cap=services.settings.context_budget
    )
    view = services.editor
    return build_context(
        index,
        services.roots,
        services.repo_map(),
        services.estimator(),
        system=SYSTEM,
        path=target.path,
        language=target.language,
        target_span=target.span,
        target_code=target.code,
        target_definition=target.definition,
        instruction=words,
        budget=budget,
        extra=extra,
        action=action,
        selection=target.span if target.selected else None,
        open_documents=[p for p in view.open_documents if p != target.path],
        diagnostics=view.diagnostics_in(target.path, target.span),
        repository_budget=services.settings.context_repository_budget,
    )


def prompt_at(
    services: Services,
    action: str,
    path: Path,
    line: int,
    col: int,
    *,
    selection: Span | None = None,
    instruction: str = "",
) -> BuiltContext:
    """The prompt ``action`` sends for ``path`` at ``line:col`` (0-based; the selection when
    given, else the definition there): what ``kimi-lsp context`` prints, and what the context
    engine's tests and benchmarks measure. The file is read as the editor has it (the index's
    open buffer, else the disk)."""
    index = services.index
    text = read_text(path, index.document_text(path) if index is not None else None)
    if text is None:
        raise NothingToWorkOn(f"Cannot read {path} as UTF-8 text.")
    target = find_target(index, path, text, line, col, selection)
    return build(services, action, target, text, instruction=instruction)

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

from typing import Any

from kimi_lsp.actions.services import Services
from kimi_lsp.actions.target import Target
from kimi_lsp.context import BuiltContext, Section, build_context, prompt_budget, redact
from kimi_lsp.context.recipes import INSTRUCTIONS, OUTPUT_TOKENS, SYSTEM
from kimi_lsp.context.recipes import instruction as instruction_for

__all__ = ["INSTRUCTIONS", "OUTPUT_TOKENS", "SYSTEM", "build", "build_messages"]
from kimi_lsp.llm.tokens import estimate_text_tokens


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

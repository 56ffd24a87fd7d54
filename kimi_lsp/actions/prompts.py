"""The messages an action sends.

Stable parts first (the system text), volatile parts last (the code and the instruction), so
Kimi's automatic prefix cache serves repeated requests cheaply. The context engine
(``kimi_lsp.context``) adds the ranked repository map; until a workspace has an index the
prompt carries the target and its file's outline only.
"""

from __future__ import annotations

from typing import Any

from kimi_lsp.actions.services import Services
from kimi_lsp.actions.target import Target

SYSTEM = (
    "You are Kimi, working inside the user's code editor through kimi-lsp. "
    "Answer about the code you are shown; be precise and brief."
)

INSTRUCTIONS = {
    "explain": (
        "Explain what `{name}` does, how it does it, and anything surprising a reader should "
        "know. Use Markdown; no preamble."
    ),
    "refactor": (
        "Rewrite the code below: {instruction}. Keep its behaviour. Reply with the new code "
        "only, in one fenced code block, nothing else."
    ),
    "tests": (
        "Write tests for `{name}` with {framework}, following the project's style. Reply with "
        "the test code only, in one fenced code block, nothing else."
    ),
}


def _outline(services: Services, target: Target) -> str:
    if services.index is None:
        return ""
    lines = [
        f"{'  ' * (d.scope.count('.') + 1 if d.scope else 0)}{d.signature.strip()}"
        for d in services.index.outline(target.path)
    ]
    return "\n".join(lines)


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
    outline = _outline(services, target)
    parts = [f"File: {target.path.name} ({target.language})"]
    if outline:
        parts.append(f"Outline of the file:\n```\n{outline}\n```")
    parts.append(f"The code:\n```{target.language}\n{target.code.rstrip()}\n```")
    if extra:
        parts.append(extra)
    parts.append(
        INSTRUCTIONS[action].format(
            name=target.name, instruction=instruction or "improve it", framework=framework
        )
    )
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "\n\n".join(parts)},
    ]

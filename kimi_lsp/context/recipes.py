"""What each action asks for: the system text, the instruction and the output size per
action, the one table ``actions`` and the context engine's tests and benchmarks share.

``build_context`` (``build.py``) packs the context; the words around it come from here, so
a prompt a test or a benchmark builds is the prompt a user's request sends.
"""

from __future__ import annotations

SYSTEM = (
    "You are Kimi, working inside the user's code editor through kimi-lsp. "
    "Answer about the code you are shown; be precise and brief."
)

# The output budget each action asks for (TPM admission charges every token asked for);
# the prompt's budget is what the model's context leaves after it, capped by contextBudget.
OUTPUT_TOKENS = {"explain": 1500, "refactor": 2048, "tests": 3000}

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

# A quick fix is a refactor whose instruction is the diagnostic's message.
FIX_INSTRUCTION = "fix this problem reported by the editor: {message}"

# The workspace refactor: one request per file, the shared part first (cached by Kimi).
WORKSPACE_SHARED = (
    "Apply this change across the project: {instruction}\n\n{brief}"
    "Each file comes on its own: whole, or a long one as the parts that matter. Change "
    "only what the change needs and keep the rest as it is. Reply with code only, in "
    "fenced code blocks as the file's request says.\n\n"
)
WORKSPACE_FILE_WHOLE = (
    "{shared}File: {name} ({lang})\n\n```{lang}\n{code}\n```\n\n"
    "Reply with the whole of {name} after the change, in one fenced code block, "
    "nothing else. If it needs no change, reply with it unchanged."
)
WORKSPACE_FILE_PARTS = (
    "{shared}File: {name} ({lang}), {lines} lines. Only its parts "
    "that use `{symbol}` are shown; the rest stays as it is.\n\n{shown}\n"
    "Instead of the whole file, reply with each of the {count} parts after "
    "the change, in order, each in its own fenced code block, nothing else. A part "
    "that needs no change comes back as it is."
)


def instruction(
    action: str,
    name: str,
    *,
    request: str = "",
    framework: str = "the project's test framework",
) -> str:
    """The instruction ``action`` ends its prompt with, for the target ``name``."""
    return INSTRUCTIONS[action].format(
        name=name, instruction=request or "improve it", framework=framework
    )

"""What ``kimi.showContext`` shows: the exact messages an action would send, then how the
context engine spent the budget (sections and their tokens, what it left out)."""

from __future__ import annotations

from kimi_lsp.context import BuiltContext


def render(built: BuiltContext) -> str:
    shown = "\n\n".join(f"## {m['role']}\n\n{m['content']}" for m in built.messages)
    table = "\n".join(f"| {s.name} | {s.tokens} |" for s in built.sections)
    shown += (
        f"\n\n## Sections\n\n| section | tokens (estimated) |\n|---|---|\n{table}\n\n"
        f"Total {built.tokens}; stable prefix {built.stable_prefix_tokens}; "
        f"{built.redactions} secrets redacted."
    )
    if built.left_out:
        shown += "\n\nLeft out: " + "; ".join(built.left_out)
    return shown

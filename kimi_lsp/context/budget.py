"""How many input tokens one prompt may use.

The model's context window must hold the prompt and the answer, and the account's TPM
admission charges every input token, so the budget is the smaller of what fits and a
configured cap: ``min(cap, context - output budget - margin)``.
"""

from __future__ import annotations

SAFETY_MARGIN = 0.05  # of the context: local estimates are estimates
MIN_MARGIN = 256
DEFAULT_CAP = 12_000  # Settings.context_budget's default: generous, not wasteful


def prompt_budget(
    model_context: int,
    output_budget: int,
    *,
    cap: int | None = DEFAULT_CAP,
    margin: int | None = None,
) -> int:
    """Input tokens a prompt may use; never negative. ``margin`` defaults to 5% of the
    context (at least 256 tokens)."""
    if margin is None:
        margin = max(MIN_MARGIN, int(SAFETY_MARGIN * model_context))
    room = model_context - output_budget - margin
    if cap is not None:
        room = min(room, cap)
    return max(0, room)

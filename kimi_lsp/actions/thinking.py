"""The thinking policy: per action, whether Kimi thinks and how many tokens it may think.

Reasoning counts against ``max_completion_tokens`` like any output, and TPM admission charges
input + max (kimi-api.md §2-3, §6). So every request asks for ``allowance + answer`` tokens:

- mechanical edits (names, type hints, docstrings, test boilerplate, a workspace refactor's
  per-file rewrite) turn thinking off where the model allows it (K2.5/K2.6), and ask K3 for
  ``reasoning_effort: "low"`` with a smaller allowance;
- explain, fix and free-form refactors may think, within the allowance;
- a model that always thinks (K2.7, K3) gets the allowance always.

The ``thinking`` setting is ``auto`` (this policy), ``on`` or ``off``, then per-action
overrides: ``auto,explain=off,workspace=on``. ``off`` cannot stop a model that always thinks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from kimi_lsp.config import THINKING_ACTIONS, parse_thinking
from kimi_lsp.llm.models import (
    LOW_EFFORT_SHARE,
    ModelSpec,
    can_disable_thinking,
    has_reasoning_effort,
)

# Rewrites whose answer follows from the code: thinking buys little and costs a lot.
MECHANICAL = frozenset({"names", "types", "docstring", "tests", "workspace"})
# Questions and changes that need judgement: thinking within the allowance.
THOUGHTFUL = frozenset({"explain", "fix", "refactor", "simplify", "idiomatic"})
assert set(THINKING_ACTIONS) == MECHANICAL | THOUGHTFUL


@dataclass(frozen=True)
class ThinkingPlan:
    """How one action's request thinks. ``thinking``/``reasoning_effort`` go into the body as
    they are (None: not sent); ``allowance`` is the reasoning share of the output budget."""

    action: str
    model: str
    thinks: bool
    thinking: bool | None
    reasoning_effort: str | None
    allowance: int
    answer_tokens: int
    can_disable: bool = False

    @property
    def max_completion_tokens(self) -> int:
        return self.allowance + self.answer_tokens

    def fallback(self) -> ThinkingPlan | None:
        """The retry after a reply cut inside its reasoning: thinking off where the model
        allows it, else twice the allowance; None when this plan did not think."""
        if not self.thinks:
            return None
        if self.can_disable:
            return replace(self, thinks=False, thinking=False, allowance=0)
        return replace(self, allowance=max(self.allowance * 2, 1024))

    def retry_words(self) -> str:
        if self.can_disable:
            return "asking again with thinking off"
        return f"asking again with twice the room to think ({self.allowance * 2:,} tokens)"


def plan_thinking(
    action: str, spec: ModelSpec, setting: str, allowance: int, answer_tokens: int
) -> ThinkingPlan:
    """The policy for ``action`` on ``spec`` under the ``thinking`` setting."""
    default, overrides = parse_thinking(setting)
    mode = overrides.get(action, default)
    want = mode == "on" or (mode == "auto" and action not in MECHANICAL)
    base = ThinkingPlan(action, spec.id, False, None, None, 0, answer_tokens)
    if not spec.thinks:
        return base
    if can_disable_thinking(spec):
        if want:
            return replace(base, thinks=True, thinking=True, allowance=allowance, can_disable=True)
        return replace(base, thinking=False)
    if has_reasoning_effort(spec):
        if want:
            return replace(base, thinks=True, allowance=allowance)
        low = max(256, int(allowance * LOW_EFFORT_SHARE))
        return replace(base, thinks=True, reasoning_effort="low", allowance=low)
    # Always thinks and takes no control (K2.7, an unknown reasoning model): room to think.
    return replace(base, thinks=True, allowance=allowance)

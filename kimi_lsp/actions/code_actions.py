"""The Kimi code actions offered at a position: instant, no model call, plain data.

Each offer runs as a command (so it can stream, report progress and be cancelled); the
server turns offers into LSP ``CodeAction``s with the kinds below so editors can filter them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kimi_lsp.context.recipes import FIX_INSTRUCTION

REFACTOR_PRESETS: dict[str, str] = {
    "simplify": "simplify it",
    "names": "improve the names",
    "types": "add type hints",
    "docstring": "add a docstring",
    "idiomatic": "make it idiomatic",
}


def refactor_title(words: str) -> str:
    return f"Kimi: Refactor… {words}"


def preset_list() -> list[dict[str, str]]:
    """The presets as clients list them (``kimi.refactorPresets``): the one list, so the
    editors' pickers need no copy of their own."""
    return [
        {"preset": p, "instruction": words, "title": refactor_title(words)}
        for p, words in REFACTOR_PRESETS.items()
    ]


# Explain and tests are `refactor.*` kinds, not `source.*`: VS Code's lightbulb (Ctrl+.) lists
# quick fixes and refactors and hides source actions under "Source Action…", where nobody
# looked for them. Clients that show every action (Helix, Neovim, eglot) are unaffected.
KIND_EXPLAIN = "refactor.kimi.explain"
KIND_REFACTOR = "refactor.rewrite.kimi"
KIND_TESTS = "refactor.kimi.tests"
KIND_FIX = "quickfix.kimi"


@dataclass(frozen=True)
class Offer:
    title: str
    kind: str
    command: str
    argument: dict[str, Any]
    diagnostic: dict[str, Any] | None = None


def offers(
    uri: str,
    range_: dict[str, Any],
    *,
    diagnostics: list[dict[str, Any]],
    available: set[str],
    has_target: bool,
    cached_explanation: bool = False,
) -> list[Offer]:
    """What to offer; ``available`` names the commands this server provides."""
    if not has_target:
        return []
    base: dict[str, Any] = {"uri": uri, "range": range_}
    if diagnostics:  # the command's view of the editor: they rank the context it sends
        base["diagnostics"] = [d["range"] for d in diagnostics if "range" in d]
    out: list[Offer] = []
    for diag in diagnostics:
        if "kimi.refactor" not in available:
            break
        message = str(diag.get("message", "")).splitlines()[0][:80]
        instruction = FIX_INSTRUCTION.format(message=diag.get("message", ""))
        out.append(
            Offer(
                f"Kimi: Fix “{message}”",
                KIND_FIX,
                "kimi.refactor",
                {**base, "instruction": instruction},
                diag,
            )
        )
    if "kimi.explain" in available:
        out.append(Offer("Kimi: Explain", KIND_EXPLAIN, "kimi.explain", base))
        if cached_explanation:  # the explanation shown is a stored one: ask again, fresh
            out.append(
                Offer(
                    "Kimi: Regenerate explanation",
                    KIND_EXPLAIN,
                    "kimi.explain",
                    {**base, "regenerate": True},
                )
            )
    if "kimi.refactor" in available:
        for preset, words in REFACTOR_PRESETS.items():
            out.append(
                Offer(
                    refactor_title(words),
                    KIND_REFACTOR,
                    "kimi.refactor",
                    {**base, "preset": preset},
                )
            )
    if "kimi.generateTests" in available:
        out.append(Offer("Kimi: Generate tests", KIND_TESTS, "kimi.generateTests", base))
    return out

"""The emulator's model line-up, written independently of kimi_lsp.llm (it is the reference)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class FakeModel:
    """How one model behaves: its context, whether it thinks, what it fixes and accepts."""

    id: str
    context_length: int
    thinks: bool = False
    # k2.5 and newer: temperature/top_p/n/penalties are fixed; other values are a 400.
    fixed_sampling: bool = False
    # "thinking" (k2.5-k2.7), "reasoning_effort" (k3) or None (legacy).
    reasoning_control: str | None = None
    thinking_can_be_disabled: bool = True
    supports_image_in: bool = False
    listed_context: bool = True  # False: /models omits context_length (seen on .ai in 2025)

    def listing(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": self.id,
            "object": "model",
            "created": 1_760_000_000,
            "owned_by": "moonshot",
            "supports_reasoning": self.thinks,
            "supports_image_in": self.supports_image_in,
            "supports_video_in": False,
        }
        if self.listed_context:
            entry["context_length"] = self.context_length
        return entry


def default_models() -> list[FakeModel]:
    """The 2026 line-up from kimi-api.md §2.1 (current models plus one legacy family)."""
    return [
        FakeModel("kimi-k3", 1_048_576, True, True, "reasoning_effort", False, True),
        FakeModel("kimi-k2.7-code", 262_144, True, True, "thinking", False),
        FakeModel("kimi-k2.7-code-highspeed", 262_144, True, True, "thinking", False),
        FakeModel("kimi-k2.6", 262_144, True, True, "thinking", True, True),
        FakeModel("kimi-k2.5", 262_144, True, True, "thinking", True, True),
        FakeModel("moonshot-v1-8k", 8_192),
        FakeModel("moonshot-v1-32k", 32_768),
        FakeModel("moonshot-v1-128k", 131_072),
    ]

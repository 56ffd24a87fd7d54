"""Local token estimates: conservative, so a local "fits" rarely meets a server 400.

The Kimi tokenizer is not available offline (kimi-api.md §8). Like Moonshot's own kimi-cli,
count ASCII at 4 characters per token and every other character as a whole token, plus a few
tokens per message for role markers. For exact numbers ask the API's estimate endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PER_MESSAGE_OVERHEAD = 4
IMAGE_TOKENS = 1_024  # a guess for media parts; the estimate endpoint knows better


def estimate_text_tokens(text: str) -> int:
    ascii_chars = sum(1 for c in text if ord(c) < 128)
    return -(-ascii_chars // 4) + (len(text) - ascii_chars)


def _content_tokens(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return estimate_text_tokens(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                total += estimate_text_tokens(str(part.get("text", "")))
            else:
                total += IMAGE_TOKENS
        return total
    return estimate_text_tokens(str(content))


def estimate_messages_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    total = 0
    for m in messages:
        total += PER_MESSAGE_OVERHEAD + _content_tokens(m.get("content"))
        if m.get("reasoning_content"):
            total += estimate_text_tokens(str(m["reasoning_content"]))
        if m.get("tool_calls"):
            total += estimate_text_tokens(str(m["tool_calls"]))
    return total

"""The emulator's deterministic token counter: 4 characters are one token.

Other tests and benchmarks compare against these numbers, so they are public and stable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CHARS_PER_TOKEN = 4
# A cache hit needs the earlier prompt to be longer than this (kimi-api.md §4, context caching).
CACHE_MIN_PROMPT_TOKENS = 256


def count_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def content_text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                out.append(str(part.get("text", "")))
            elif isinstance(part, Mapping):
                out.append("<|media|>")  # images and video: a fixed placeholder
        return "".join(out)
    return str(content)


def prompt_text(messages: Iterable[Mapping[str, Any]]) -> str:
    """The text the emulator tokenizes: role markers and contents, in order."""
    return "".join(f"<|{m.get('role', '')}|>{content_text(m.get('content'))}" for m in messages)


def count_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    return count_tokens(prompt_text(messages))


def common_prefix_len(a: str, b: str) -> int:
    """Length of the longest common prefix (binary search on C-speed slice compares)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo

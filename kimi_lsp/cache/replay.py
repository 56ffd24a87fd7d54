"""Replaying a cached answer as a stream, so a hit travels the same path as a live answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

REPLAY_CHUNK_CHARS = 64  # small enough to look like a stream, few enough to be instant


async def replay(text: str, *, chunk_chars: int = REPLAY_CHUNK_CHARS) -> AsyncIterator[str]:
    """``text`` in pieces of at most ``chunk_chars`` characters; a piece ends at a line
    break when one falls in its second half, so line-based consumers see whole lines sooner.
    Yields to the event loop between pieces, so a cancelled request stops the replay."""
    if chunk_chars < 1:
        raise ValueError("chunk_chars must be at least 1")
    start = 0
    while start < len(text):
        end = min(len(text), start + chunk_chars)
        if end < len(text):
            newline = text.rfind("\n", start + chunk_chars // 2, end)
            if newline != -1:
                end = newline + 1
        yield text[start:end]
        start = end
        await asyncio.sleep(0)

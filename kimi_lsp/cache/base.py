"""The store interface every backend offers, and the "off" store."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kimi_lsp.cache.key import request_key
from kimi_lsp.cache.model import CachedResponse, CacheStats, TokenUsage

Clock = Callable[[], float]  # seconds since the epoch; entries outlive a process


class ResponseCache(Protocol):
    """A response cache as the actions layer uses it. Every method absorbs store trouble:
    ``get`` answers ``None`` and ``put`` answers ``False`` rather than raise."""

    @property
    def where(self) -> str:
        """Where the entries live (a path or a URL without its password), for status."""
        ...

    @property
    def problem(self) -> str | None:
        """The last trouble the store absorbed, in words for the user; ``None`` when fine."""
        ...

    def key(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        max_completion_tokens: int,
        extra: Mapping[str, Any],
    ) -> str: ...

    async def get(self, key: str, *, record: bool = True) -> CachedResponse | None:
        """The entry, or ``None`` on a miss, an expired or unreadable entry. ``record=False``
        leaves hits and misses uncounted (a hover peeking at the cache is not a saving)."""
        ...

    async def put(self, key: str, response: CachedResponse) -> bool:
        """Store ``response`` stamped with the store's clock; ``False`` when skipped."""
        ...

    async def stats(self) -> CacheStats: ...

    async def clear(self) -> None: ...

    async def aclose(self) -> None: ...


class _KeyMixin:
    def key(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        max_completion_tokens: int,
        extra: Mapping[str, Any],
    ) -> str:
        return request_key(model, messages, max_completion_tokens, extra)


class DisabledCache(_KeyMixin):
    """``cache = off``: every lookup misses, nothing is stored, nothing is counted."""

    def __init__(self, problem: str | None = None) -> None:
        self._problem = problem

    @property
    def where(self) -> str:
        return "off"

    @property
    def problem(self) -> str | None:
        return self._problem

    async def get(self, key: str, *, record: bool = True) -> CachedResponse | None:
        return None

    async def put(self, key: str, response: CachedResponse) -> bool:
        return False

    async def stats(self) -> CacheStats:
        return CacheStats()

    async def clear(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


@dataclass
class PendingCounts:
    """Counts not yet written to a shared store (a busy database defers them)."""

    hits: int = 0
    misses: int = 0
    skipped_writes: int = 0
    saved: dict[str, TokenUsage] = field(default_factory=dict)

    def hit(self, response: CachedResponse) -> None:
        self.hits += 1
        self.saved[response.model] = self.saved.get(response.model, TokenUsage()) + (response.usage)

    def take(self) -> PendingCounts:
        taken = PendingCounts(self.hits, self.misses, self.skipped_writes, dict(self.saved))
        self.hits = self.misses = self.skipped_writes = 0
        self.saved = {}
        return taken

    def give_back(self, taken: PendingCounts) -> None:
        self.hits += taken.hits
        self.misses += taken.misses
        self.skipped_writes += taken.skipped_writes
        for model, usage in taken.saved.items():
            self.saved[model] = self.saved.get(model, TokenUsage()) + usage

    def __bool__(self) -> bool:
        return bool(self.hits or self.misses or self.skipped_writes or self.saved)

    def added_to(self, stats: CacheStats) -> CacheStats:
        saved = dict(stats.saved)
        for model, usage in self.saved.items():
            saved[model] = saved.get(model, TokenUsage()) + usage
        return CacheStats(
            hits=stats.hits + self.hits,
            misses=stats.misses + self.misses,
            saved=saved,
            entries=stats.entries,
            size_bytes=stats.size_bytes,
            skipped_writes=stats.skipped_writes + self.skipped_writes,
        )

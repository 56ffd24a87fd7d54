"""The response cache (``kimi_lsp.cache``) as the answer pipeline's store."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from kimi_lsp.actions.pipeline import CachedAnswer, Message
from kimi_lsp.cache import CachedResponse, ResponseCache, TokenUsage, request_key
from kimi_lsp.llm import Usage, cost_usd

log = logging.getLogger(__name__)

HOVER_PREFIX = "hover:"  # hover's lookups by symbol: not counted as hits or misses
PLAN_PREFIX = "plan:"  # an index-tools exchange's plan (actions/toolloop.py): not counted


class CacheStore:
    """Adapts a ``ResponseCache`` (SQLite, Redis or off) and counts this session's hits."""

    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache
        self.hits = 0
        self.misses = 0
        self.saved_tokens = 0
        self.saved_usd = 0.0

    def key(
        self,
        model: str,
        messages: Sequence[Message],
        max_completion_tokens: int,
        extra: Mapping[str, Any],
    ) -> str:
        return request_key(model, messages, max_completion_tokens, extra)

    async def get(self, key: str) -> CachedAnswer | None:
        counted = not key.startswith((HOVER_PREFIX, PLAN_PREFIX))
        hit = await self.cache.get(key, record=counted)
        if counted:
            if hit is None:
                self.misses += 1
            else:
                self.hits += 1
                self.saved_tokens += hit.usage.total_tokens
        if hit is None:
            return None
        u = hit.usage
        usage = Usage(u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.reasoning_tokens)
        if counted:
            self.saved_usd += cost_usd(hit.model, usage) or 0.0
        return CachedAnswer(hit.text, hit.reasoning, usage, hit.model)

    async def put(self, key: str, answer: CachedAnswer) -> None:
        u = answer.usage
        usage = TokenUsage(
            u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.reasoning_tokens
        )
        stored = await self.cache.put(
            key, CachedResponse(answer.text, answer.reasoning, usage, answer.model)
        )
        if not stored:
            log.debug("cache write skipped for %s", key[:16])

    def stats(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "savedTokens": self.saved_tokens,
            "savedUsd": round(self.saved_usd, 6),
            "where": self.cache.where,
            "problem": self.cache.problem,
        }

    async def aclose(self) -> None:
        await self.cache.aclose()

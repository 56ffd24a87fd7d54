"""``kimi/status`` for rich clients: quota, index, runs and cache, sent when any of it changes
(at most four times a second). Plain clients never get it and lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from kimi_lsp.actions.services import Answerer, QuotaSource
from kimi_lsp.llm import total_cost_usd

STATUS_NOTIFICATION = "kimi/status"
STATUS_DELAY_S = 0.25  # kimi/status at most four times a second


class StatusPublisher:
    def __init__(
        self,
        notify: Callable[[str, dict[str, Any]], None],
        answerer: Callable[[], Answerer | None],
        *,
        runs: Callable[[], int],
        on_quota: Callable[[QuotaSource], None] | None = None,
    ) -> None:
        self._notify, self._answerer, self._runs, self._on_quota = notify, answerer, runs, on_quota
        self.index: dict[str, Any] = {"files": 0, "indexing": False, "done": 0, "total": 0}
        self._pending: asyncio.TimerHandle | None = None

    def index_progress(self, done: int, total: int, *, indexing: bool = True) -> None:
        self.index.update(done=done, total=total, indexing=indexing)
        if not indexing:
            self.index["files"] = total
        self.changed()

    def payload(self) -> dict[str, Any]:
        answerer = self._answerer()
        quota, cache = answerer.status() if answerer is not None else (None, None)
        if answerer is not None and answerer.admission is not None and self._on_quota:
            self._on_quota(answerer.admission)  # the store may have gone, or come back
        if quota is not None:
            quota["todayUsd"] = round(total_cost_usd(quota.get("byModel", {})), 6)
        return {"quota": quota, "index": dict(self.index), "runs": self._runs(), "cache": cache}

    def changed(self) -> None:
        if self._pending is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._pending = loop.call_later(STATUS_DELAY_S, self._send)

    def _send(self) -> None:
        self._pending = None
        with contextlib.suppress(Exception):  # the editor may be gone
            self._notify(STATUS_NOTIFICATION, self.payload())

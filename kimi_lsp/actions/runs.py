"""Running actions: one task each, found by id, by progress token, or by what they work on.

Starting the same action on the same target again cancels the earlier run, so a user who
asks twice gets one answer. ``kimi.cancel``, ``$/cancelRequest`` and
``window/workDoneProgress/cancel`` all end up cancelling the run's task.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Run:
    id: str
    action: str
    target: str
    task: asyncio.Task[Any]
    token: str | None = None


class RunRegistry:
    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self._runs: dict[str, Run] = {}
        self._ids = itertools.count(1)
        self._on_change = on_change or (lambda: None)

    def start(
        self, action: str, target: str, coro: Coroutine[Any, Any, Any], *, token: str | None = None
    ) -> Run:
        """Run ``coro`` as a task; an earlier run of ``action`` on ``target`` is cancelled."""
        return self._add(action, target, asyncio.ensure_future(coro), token)

    def adopt(self, action: str, target: str, *, token: str | None = None) -> Run:
        """Register the *current* task (a request handler) as a run."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("adopt() needs a running task")
        return self._add(action, target, task, token)

    def _add(self, action: str, target: str, task: asyncio.Task[Any], token: str | None) -> Run:
        for earlier in list(self._runs.values()):
            if (earlier.action, earlier.target) == (action, target) and earlier.task is not task:
                earlier.task.cancel()
        run = Run(f"{action}-{next(self._ids)}", action, target, task, token)
        self._runs[run.id] = run

        def done(finished: asyncio.Task[Any]) -> None:
            self._runs.pop(run.id, None)
            if not finished.cancelled() and (exc := finished.exception()) is not None:
                log.warning("%s failed: %s", run.id, exc)
            self._on_change()

        task.add_done_callback(done)
        self._on_change()
        return run

    def by_token(self, token: str) -> Run | None:
        return next((r for r in self._runs.values() if r.token == token), None)

    def cancel(self, run_id: str | None = None) -> int:
        """Cancel one run, or all of them; returns how many were cancelled."""
        runs = list(self._runs.values()) if run_id is None else [self._runs.get(run_id)]
        count = 0
        for run in runs:
            if run is not None and not run.task.done():
                run.task.cancel()
                count += 1
        return count

    def __len__(self) -> int:
        return len(self._runs)

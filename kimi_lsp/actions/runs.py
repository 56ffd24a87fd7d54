"""Running actions: one task each, found by id, by progress token, or by what they work on.

Starting the same action on the same target again cancels the earlier run, so a user who
asks twice gets one answer. ``kimi.cancel``, ``$/cancelRequest`` and
``window/workDoneProgress/cancel`` all end up in ``cancel``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Run:
    id: str
    action: str
    target: str
    task: asyncio.Task[Any]
    token: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


class RunRegistry:
    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self._runs: dict[str, Run] = {}
        self._ids = itertools.count(1)
        self._on_change = on_change or (lambda: None)

    def _add(self, run: Run) -> Run:
        self._runs[run.id] = run

        def done(task: asyncio.Task[Any]) -> None:
            self._runs.pop(run.id, None)
            if not task.cancelled() and (exc := task.exception()) is not None:
                log.warning("%s failed: %s", run.id, exc)
            self._on_change()

        run.task.add_done_callback(done)
        self._on_change()
        return run

    def start(
        self,
        action: str,
        target: str,
        coro: Coroutine[Any, Any, Any],
        *,
        token: str | None = None,
    ) -> Run:
        """Run ``coro`` as a task; an earlier run of ``action`` on ``target`` is cancelled."""
        for earlier in [r for r in self._runs.values() if (r.action, r.target) == (action, target)]:
            earlier.task.cancel()
        run_id = f"{action}-{next(self._ids)}"
        task = asyncio.ensure_future(coro)
        return self._add(Run(id=run_id, action=action, target=target, task=task, token=token))

    def adopt(self, action: str, target: str, *, token: str | None = None) -> Run:
        """Register the *current* task (a request handler) as a run."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("adopt() needs a running task")
        for earlier in [r for r in self._runs.values() if (r.action, r.target) == (action, target)]:
            if earlier.task is not task:
                earlier.task.cancel()
        run_id = f"{action}-{next(self._ids)}"
        return self._add(Run(id=run_id, action=action, target=target, task=task, token=token))

    def get(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

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

    def active(self) -> list[Run]:
        return list(self._runs.values())

"""The first request waits for the index: a prompt built from half a scan is poorer, and
the same request asked again a moment later would carry another prompt (and miss the
cache). An action that needs the workspace waits for the initial scan, bounded by
``indexWaitMs``, saying how far it got; listing features (documentSymbol, hover, code
actions) never call this and answer at once."""

from __future__ import annotations

import asyncio

from kimi_lsp.actions.pipeline import Sink
from kimi_lsp.actions.services import Services
from kimi_lsp.context import member_uses
from kimi_lsp.index import WorkspaceIndex

POLL_S = 0.05  # how often the wait looks at the scan, and updates the progress message


def prepare_for_prompts(index: WorkspaceIndex) -> None:
    """Make what a prompt reads that the scan does not: the name maps and the member uses
    (free once made; the server runs it, in a thread, right after the scan)."""
    index.prepare_queries()
    member_uses(index).sync()


async def wait_for_index(services: Services, sink: Sink) -> bool:
    """Wait until the index's first scan has ended, at most the setting's time; True when it
    has (or there is no index to wait for: no workspace folder)."""
    index = services.index
    if index is None:
        return True
    if index.ready:
        # The server may still be making them: wait in a thread, not on the event loop.
        await asyncio.to_thread(prepare_for_prompts, index)
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + services.settings.index_wait_ms / 1000
    last = None
    while not index.ready and loop.time() < deadline:
        done, total = index.scan_progress
        message = f"waiting for the index: {done:,}/{total:,} files"
        if message != last:
            sink.progress(message)
            last = message
        await asyncio.sleep(POLL_S)
    if not index.ready:
        return False
    # A prompt built before the server made them would make them on the event loop.
    await asyncio.to_thread(prepare_for_prompts, index)
    return True

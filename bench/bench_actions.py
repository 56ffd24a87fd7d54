"""Editor-facing latency through the real server, against the Kimi emulator on loopback.

- code-action listing (no model call), p50/p95 over many requests; goal: under 20 ms;
- hover (index info), p50/p95;
- explain: the first answer (live, streamed from the emulator) against the second, identical
  one (a cache hit replayed through the same stream path); goal: the second under 50 ms and
  nothing sent to the emulator.

The workspace is this repository's own `kimi_lsp/` package (copied), so the index is real.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.table import Row
from tests.e2e.conftest import RawServer
from tests.fake_kimi import FakeKimi

REPO = Path(__file__).resolve().parent.parent
ROUNDS = 200


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(work: Path) -> list[Row]:
    tmp = Path(tempfile.mkdtemp(dir=work))
    project = tmp / "proj"
    shutil.copytree(REPO / "kimi_lsp", project / "kimi_lsp")
    target = project / "kimi_lsp" / "actions" / "pipeline.py"
    text = target.read_text()
    line = next(i for i, ln in enumerate(text.splitlines()) if ln.startswith("async def answer"))
    fake = FakeKimi().start()
    fake.script("It streams one answer into the editor. " * 20, match="answer")
    old_env = dict(os.environ)
    os.environ.update(fake.env())
    os.environ["KIMI_LSP_STATE_DIR"] = str(tmp / "state")
    server = RawServer()
    rows: list[Row] = []
    try:
        root = project.as_uri()
        server.request(
            1,
            "initialize",
            {
                "processId": None,
                "rootUri": root,
                "capabilities": {},
                "workspaceFolders": [{"uri": root, "name": "proj"}],
            },
            timeout=60,
        )
        server.send({"method": "initialized", "params": {}})
        uri = target.as_uri()
        server.send(
            {
                "method": "textDocument/didOpen",
                "params": {
                    "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}
                },
            }
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = server.request(2, "workspace/symbol", {"query": "answer"})["result"]
            if found:
                break
            time.sleep(0.1)
        pos = {"line": line + 2, "character": 4}
        listing, hovering = [], []
        for i in range(ROUNDS):
            t = time.perf_counter()
            reply = server.request(
                100 + i,
                "textDocument/codeAction",
                {
                    "textDocument": {"uri": uri},
                    "range": {"start": pos, "end": pos},
                    "context": {"diagnostics": []},
                },
            )
            listing.append((time.perf_counter() - t) * 1000)
            assert reply["result"], reply
            t = time.perf_counter()
            server.request(
                10_000 + i,
                "textDocument/hover",
                {"textDocument": {"uri": uri}, "position": {"line": line, "character": 10}},
            )
            hovering.append((time.perf_counter() - t) * 1000)
        explain = {"command": "kimi.explain", "arguments": [{"uri": uri, "position": pos}]}
        t = time.perf_counter()
        first = server.request(50_001, "workspace/executeCommand", explain, timeout=60)
        live_ms = (time.perf_counter() - t) * 1000
        sent = len(fake.chat_requests)
        t = time.perf_counter()
        second = server.request(50_002, "workspace/executeCommand", explain, timeout=60)
        cached_ms = (time.perf_counter() - t) * 1000
        assert first["result"]["cached"] is False, first
        assert second["result"]["cached"] is True, second
        quiet = len(fake.chat_requests) == sent
        p95 = _pct(listing, 0.95)
        rows += [
            Row("actions", "code-action listing p50", statistics.median(listing), "ms"),
            Row("actions", "code-action listing p95", p95, "ms", target="< 20 ms", ok=p95 < 20),
            Row("actions", "hover (index info) p50", statistics.median(hovering), "ms"),
            Row("actions", "hover (index info) p95", _pct(hovering, 0.95), "ms"),
            Row(
                "actions",
                "explain, cached (2nd)",
                cached_ms,
                "ms",
                reference=live_ms,
                reference_name="1st, live",
                target="< 50 ms, nothing sent",
                ok=cached_ms < 50 and quiet,
            ),
        ]
    finally:
        server.close()
        fake.stop()
        os.environ.clear()
        os.environ.update(old_env)
        shutil.rmtree(tmp, ignore_errors=True)
    return rows

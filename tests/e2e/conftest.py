"""A real kimi-lsp server as a subprocess, driven by pytest-lsp or by raw JSON-RPC frames."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient

SERVER = [sys.executable, "-m", "kimi_lsp"]


@pytest.fixture(autouse=True)
def _debug_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIMI_LSP_DEBUG_HOOKS", "1")


def client_capabilities() -> T.ClientCapabilities:
    return T.ClientCapabilities(
        workspace=T.WorkspaceClientCapabilities(
            configuration=True,
            apply_edit=True,
            did_change_configuration=T.DidChangeConfigurationClientCapabilities(
                dynamic_registration=True
            ),
        ),
        window=T.WindowClientCapabilities(work_done_progress=True, show_document=None),
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "app.py").write_text("def greet(name):\n    return f'hi {name}'\n")
    return root


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, workspace: Path):  # type: ignore[no-untyped-def]
    lsp_client.set_configuration({"model": "kimi-from-workspace"}, section="kimi")
    await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=client_capabilities(),
            root_uri=workspace.as_uri(),
            workspace_folders=[T.WorkspaceFolder(uri=workspace.as_uri(), name="ws")],
            initialization_options={"tier": 2, "cache": "sometimes"},
        )
    )
    yield
    await lsp_client.shutdown_session()


class RawServer:
    """The server as a subprocess spoken to in raw frames: for what a typed client cannot send."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            SERVER,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        self.inbox: Queue[dict[str, Any]] = Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = 0
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            self.inbox.put(json.loads(out.read(length)))

    def send_bytes(self, body: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_bytes(json.dumps({"jsonrpc": "2.0", **message}).encode())

    def request(self, msg_id: int, method: str, params: Any = None, timeout: float = 10) -> Any:
        self.send({"id": msg_id, "method": method, "params": params})
        return self.wait_for(lambda m: m.get("id") == msg_id and "method" not in m, timeout)

    def wait_for(self, pred: Any, timeout: float = 10) -> dict[str, Any]:
        import time

        deadline = time.monotonic() + timeout
        skipped: list[dict[str, Any]] = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching message; saw {skipped}")
                try:
                    msg = self.inbox.get(timeout=left)
                except Empty:
                    continue
                if pred(msg):
                    return msg
                skipped.append(msg)
        finally:
            for msg in skipped:
                self.inbox.put(msg)

    def initialize(self, process_id: int | None = None) -> dict[str, Any]:
        reply = self.request(
            1, "initialize", {"processId": process_id, "rootUri": None, "capabilities": {}}
        )
        self.send({"method": "initialized", "params": {}})
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    try:
        yield server
    finally:
        server.close()

"""The `kimi-lsp` command as a user runs it: doctor, serve over TCP, unknown input."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

KIMI_LSP = [sys.executable, "-m", "kimi_lsp"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KIMI_LSP, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


class _Models(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.headers.get("Authorization") != "Bearer sk-good":
            body = {"error": {"type": "invalid_authentication_error", "message": "Invalid"}}
            self._send(401, body)
        elif self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": "kimi-k2.6"}, {"id": "kimi-k3"}]})
        else:
            self._send(404, {"error": {"type": "resource_not_found_error", "message": "no"}})

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def models_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_doctor_without_key_fails_and_says_how_to_set_it() -> None:
    result = run("doctor")
    assert result.returncode == 1
    assert "[FAIL] api key: not set" in result.stdout
    assert "MOONSHOT_API_KEY" in result.stdout
    assert "state_dir" in result.stdout
    assert "[environment]" in result.stdout


def test_doctor_with_key_and_answering_api_passes(models_api: str) -> None:
    result = run("doctor", env={"MOONSHOT_API_KEY": "sk-good", "KIMI_LSP_BASE_URL": models_api})
    assert result.returncode == 0, result.stdout
    assert "sk-good" not in result.stdout
    assert "api key: set (from environment)" in result.stdout
    assert "2 models: kimi-k2.6, kimi-k3" in result.stdout
    assert "base_url" in result.stdout
    assert models_api in result.stdout


def test_doctor_json_reports_a_refused_key(models_api: str) -> None:
    result = run(
        "doctor", "--json", env={"KIMI_API_KEY": "sk-bad", "KIMI_LSP_BASE_URL": models_api}
    )
    assert result.returncode == 1
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["api key"]["ok"] is True
    assert checks["api"]["ok"] is False
    assert "refused the key" in checks["api"]["detail"]
    assert report["settings"]["api_key"] == {"value": "(set)", "source": "environment"}
    assert "sk-bad" not in result.stdout


def test_doctor_flags_an_unknown_model_and_bad_settings(models_api: str) -> None:
    env = {
        "MOONSHOT_API_KEY": "sk-good",
        "KIMI_LSP_BASE_URL": models_api,
        "KIMI_LSP_MODEL": "kimi-k9",
        "KIMI_LSP_TIER": "11",
    }
    result = run("doctor", env=env)
    assert result.returncode == 1
    assert "'kimi-k9' is not among them" in result.stdout
    assert "[warn] settings: environment: invalid value '11' for 'tier'" in result.stdout


def test_doctor_unreachable_api(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    result = run(
        "doctor", env={"MOONSHOT_API_KEY": "sk-x", "KIMI_LSP_BASE_URL": f"http://127.0.0.1:{port}"}
    )
    assert result.returncode == 1
    assert "did not answer" in result.stdout


def test_serve_over_tcp_answers_initialize() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [*KIMI_LSP, "serve", "--tcp", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with conn:
            body = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {"processId": None, "rootUri": None, "capabilities": {}},
                }
            ).encode()
            conn.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            conn.settimeout(20)
            data = b""
            while b"serverInfo" not in data or not data.endswith(b"}"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        reply = json.loads(data.split(b"\r\n\r\n", 1)[1])
        assert reply["id"] == 1
        assert reply["result"]["serverInfo"]["name"] == "kimi-lsp"
    finally:
        proc.kill()
        proc.wait(5)


def test_serve_rejects_a_bad_tcp_address() -> None:
    result = run("serve", "--tcp", "nonsense")
    assert result.returncode == 2
    assert "HOST:PORT" in result.stderr


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("kimi-lsp ")


def test_make_run_starts_a_server_that_answers_initialize() -> None:
    """The quick start's `make run`: (set-up, already done by `make test`) then the server."""
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        ["make", "-s", "run"],
        cwd=repo,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"processId": None, "rootUri": None, "capabilities": {}},
            }
        ).encode()
        proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        proc.stdin.flush()
        length = 0
        while (header := proc.stdout.readline()) not in (b"\r\n", b""):
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
        assert length, "no Content-Length header"
        reply = json.loads(proc.stdout.read(length))
        assert reply["result"]["serverInfo"]["name"] == "kimi-lsp"
    finally:
        proc.kill()
        proc.wait(10)


def test_context_prints_the_messages_and_their_token_estimates(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    (root / "calc.py").write_text(
        "def add(a, b):\n    return a + b\n\n\ndef twice(x):\n    return add(x, x)\n"
    )
    (root / "keys.py").write_text("API_TOKEN = 'sk-live-abcdefghijklmnopqrstuvwxyz0123'\n")
    result = run("context", f"{root / 'calc.py'}:6", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert [m["role"] for m in out["messages"]] == ["system", "user"]
    assert "return add(x, x)" in out["messages"][1]["content"]
    assert "return a + b" in out["messages"][1]["content"]  # the definition it uses
    names = [s["name"] for s in out["sections"]]
    assert names[0] == "system + repository map"
    assert "uses add" in names
    # The split: the target file's window apart from what the repository adds.
    assert out["fileWindowTokens"] > 0
    assert 0 < out["repositoryTokens"] < out["tokens"] - out["fileWindowTokens"]
    assert "sk-live" not in result.stdout
    small = run("context", f"{root / 'calc.py'}:6", "--budget", "1000", "--total-budget", "3000")
    assert small.returncode == 0
    assert "total (cap 3000): file window " in small.stdout
    assert "(budget 1000)" in small.stdout
    bad = run("context", "nowhere")
    assert bad.returncode == 2

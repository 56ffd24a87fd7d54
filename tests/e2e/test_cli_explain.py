"""`kimi-lsp explain` and `kimi-lsp context` are the editor's Explain from the command line:
the same messages, the same cache, the same quota ledger, the same privacy rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import RawServer
from tests.fake_kimi import FakeKimi

SECRET = "sk-live-9f8e7d6c5b4a39281716151413121110"
CLIENT = (
    "def helper(x):\n"
    "    return x * 2\n"
    "\n"
    "\n"
    "def call():\n"
    f"    token = '{SECRET}'\n"
    "    return helper(3), token\n"
)


def kimi_lsp(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kimi_lsp", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    (root / "client.py").write_text(CLIENT)
    (root / ".kimiignore").write_text("# kept out of prompts\nprivate.py\n")
    (root / "private.py").write_text("def hidden():\n    return 'INTERNAL-ONLY-HOST'\n")
    return root


def start_server(root: Path, env: dict[str, str]) -> RawServer:
    server = RawServer(env=env)
    server.request(
        1,
        "initialize",
        {
            "processId": None,
            "rootUri": root.as_uri(),
            "capabilities": {},
            "workspaceFolders": [{"uri": root.as_uri(), "name": "proj"}],
        },
        timeout=30,
    )
    server.send({"method": "initialized", "params": {}})
    for i in range(200):
        if server.request(100 + i, "workspace/symbol", {"query": "call"})["result"]:
            break
        time.sleep(0.05)
    return server


def server_explain(
    server: RawServer, msg_id: int, path: Path, line: int, **extra: Any
) -> dict[str, Any]:
    arg = {"uri": path.as_uri(), "position": {"line": line, "character": 4}, **extra}
    return server.request(
        msg_id,
        "workspace/executeCommand",
        {"command": "kimi.explain", "arguments": [arg]},
        timeout=60,
    )


def test_explain_redacts_and_sends_what_the_editor_sends(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    root = project(tmp_path)
    env = fake_kimi.env()
    cli = kimi_lsp("explain", f"{root / 'client.py'}:6", env=env)
    assert cli.returncode == 0, cli.stderr
    assert "Fake Kimi answer" in cli.stdout
    (sent,) = fake_kimi.chat_requests
    assert "return helper(3), token" in str(sent.body)  # the target went
    assert "return x * 2" in str(sent.body)  # and the definition it uses: the context engine
    assert SECRET not in str(sent.body)
    # `kimi-lsp context` shows exactly those messages.
    shown = kimi_lsp("context", f"{root / 'client.py'}:6", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["messages"] == sent.body["messages"]

    server = start_server(root, env)
    try:
        reply = server_explain(server, 5, root / "client.py", 5)
        assert reply["result"]["cached"] is True, reply  # the CLI's answer, from the cache
        assert len(fake_kimi.chat_requests) == 1
        again = server_explain(server, 6, root / "client.py", 5, regenerate=True)
        assert again["result"]["cached"] is False, again
    finally:
        server.close()
    first, second = fake_kimi.chat_requests
    assert json.dumps(second.body["messages"]) == json.dumps(first.body["messages"])


def test_an_ignored_file_is_refused_naming_the_rule(fake_kimi: FakeKimi, tmp_path: Path) -> None:
    root = project(tmp_path)
    env = fake_kimi.env()
    cli = kimi_lsp("explain", f"{root / 'private.py'}:2", env=env)
    assert cli.returncode == 1
    assert ".kimiignore:2 `private.py`" in cli.stderr, cli.stderr
    assert "Traceback" not in cli.stderr
    shown = kimi_lsp("context", f"{root / 'private.py'}:2", env=env)
    assert shown.returncode == 1
    assert ".kimiignore:2" in shown.stderr
    assert "INTERNAL-ONLY-HOST" not in shown.stdout

    server = start_server(root, env)
    try:
        reply = server_explain(server, 5, root / "private.py", 1)
        selected = {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}}
        chosen = server_explain(server, 6, root / "private.py", 1, range=selected)
    finally:
        server.close()
    for r in (reply, chosen):
        assert ".kimiignore:2 `private.py`" in r["error"]["message"], r
    assert fake_kimi.chat_requests == []


def test_context_with_a_tiny_budget_says_why_without_a_traceback(tmp_path: Path) -> None:
    root = project(tmp_path)
    result = kimi_lsp("context", f"{root / 'client.py'}:6", "--total-budget", "40")
    assert result.returncode == 1
    assert result.stderr.startswith("kimi-lsp context: "), result.stderr
    assert "Traceback" not in result.stderr


def test_the_cli_refactor_and_an_editor_share_one_quota_ledger(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    root = project(tmp_path)
    fake_kimi.chunk_delay = 0.2  # ~10 s of streaming: the refactor holds the one open slot
    code = "def helper(x):\n    return x + x\n" + "# unchanged\n" * 25
    fake_kimi.script(f"```python\n{code}```", match="File: client.py", chunk_tokens=2)
    quota_env = {"KIMI_LSP_LIMITS": "concurrency=1", "KIMI_LSP_QUOTA_RESERVE": "0"}
    env = {**os.environ, **fake_kimi.env(), **quota_env}
    refactor = subprocess.Popen(
        [sys.executable, "-m", "kimi_lsp", "refactor", "double by adding", "--scope", "*.py"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server: RawServer | None = None
    try:
        assert fake_kimi.wait_until(lambda: fake_kimi.in_flight() == 1, timeout=60)
        server = start_server(root, {**fake_kimi.env(), **quota_env})
        arg = {"uri": (root / "client.py").as_uri(), "position": {"line": 5, "character": 4}}
        server.send(
            {
                "id": 9,
                "method": "workspace/executeCommand",
                "params": {"command": "kimi.explain", "arguments": [arg]},
            }
        )
        snap: dict[str, Any] = {}
        for _ in range(100):
            quota = kimi_lsp("quota", "--json", env=env)
            snap = json.loads(quota.stdout)
            if snap["queue"]["interactive"] == 1:
                break
            time.sleep(0.1)
        assert snap["queue"]["interactive"] == 1, snap  # the editor waits for the CLI's slot
        assert snap["openRequests"] == 1
        assert fake_kimi.in_flight() == 1  # never two at once: one ledger for both
        reply = server.wait_for(lambda m: m.get("id") == 9, timeout=90)
        assert "result" in reply, reply
    finally:
        if server is not None:
            server.close()
        out, err = refactor.communicate(timeout=90)
    assert refactor.returncode == 0, err
    assert "+    return x + x" in out


def test_a_prompt_too_big_for_context_budget_is_a_readable_error_in_the_editor(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    root = project(tmp_path)
    server = RawServer(env=fake_kimi.env())
    try:
        server.request(
            1,
            "initialize",
            {
                "processId": None,
                "rootUri": root.as_uri(),
                "capabilities": {},
                "initializationOptions": {"contextBudget": 1000},
            },
            timeout=30,
        )
        server.send({"method": "initialized", "params": {}})
        selected = {"start": {"line": 4, "character": 0}, "end": {"line": 7, "character": 0}}
        arg = {
            "uri": (root / "client.py").as_uri(),
            "range": selected,
            "instruction": "rename every variable to something clearer " * 200,
        }
        reply = server.request(
            5,
            "workspace/executeCommand",
            {"command": "kimi.refactor", "arguments": [arg]},
            timeout=60,
        )
    finally:
        server.close()
    assert reply["error"]["code"] != -32603, reply  # not "internal error"
    assert "contextBudget" in reply["error"]["message"], reply
    assert fake_kimi.chat_requests == []

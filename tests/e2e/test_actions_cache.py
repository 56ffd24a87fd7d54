"""The response cache through the server: answers survive a restart; hover finds them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import RawServer
from tests.fake_kimi import FakeKimi

SECRET = "sk-live-" + "Zq7xW2pL9mK4vB8nR3tY6uJ1"
# The secret is redacted from every prompt, the same way after the restart: the cache hits.
SOURCE = f"def add(a, b):\n    return a + b  # billing key {SECRET}\n"


def start(fake: FakeKimi, root: Path) -> RawServer:
    server = RawServer(env=fake.env())
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
    uri = (root / "calc.py").as_uri()
    server.send(
        {
            "method": "textDocument/didOpen",
            "params": {
                "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": SOURCE}
            },
        }
    )
    for i in range(200):
        if server.request(1000 + i, "workspace/symbol", {"query": "add"})["result"]:
            break
        time.sleep(0.05)
    return server


def explain(server: RawServer, root: Path, msg_id: int, **extra: Any) -> dict[str, Any]:
    arg = {"uri": (root / "calc.py").as_uri(), "position": {"line": 1, "character": 4}, **extra}
    reply = server.request(
        msg_id,
        "workspace/executeCommand",
        {"command": "kimi.explain", "arguments": [arg]},
        timeout=30,
    )
    assert "result" in reply, reply
    return reply["result"]  # type: ignore[no-any-return]


def hover(server: RawServer, root: Path, msg_id: int) -> str:
    reply = server.request(
        msg_id,
        "textDocument/hover",
        {
            "textDocument": {"uri": (root / "calc.py").as_uri()},
            "position": {"line": 0, "character": 5},
        },
    )
    return str(reply["result"]["contents"]["value"])


def test_an_answer_survives_a_restart_and_hover_shows_it(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "calc.py").write_text(SOURCE)
    fake_kimi.script("`add` adds its two arguments.", match="add")
    first = start(fake_kimi, root)
    try:
        assert explain(first, root, 10)["cached"] is False
    finally:
        first.close()
    assert len(fake_kimi.chat_requests) == 1

    second = start(fake_kimi, root)
    try:
        assert "adds its two arguments" in hover(second, root, 20)
        pos = {"line": 1, "character": 4}
        listed = second.request(
            23,
            "textDocument/codeAction",
            {
                "textDocument": {"uri": (root / "calc.py").as_uri()},
                "range": {"start": pos, "end": pos},
                "context": {"diagnostics": []},
            },
        )["result"]
        regenerate = [a for a in listed if a["title"] == "Kimi: Regenerate explanation"]
        assert regenerate
        assert regenerate[0]["command"]["arguments"][0]["regenerate"] is True
        again = explain(second, root, 21)
        assert again["cached"] is True
        assert again["text"] == "`add` adds its two arguments."
        assert len(fake_kimi.chat_requests) == 1  # nothing was sent
        fresh = explain(second, root, 22, regenerate=True)
        assert fresh["cached"] is False
        assert len(fake_kimi.chat_requests) == 2
    finally:
        second.close()
    assert all(SECRET not in str(r.body) for r in fake_kimi.chat_requests)


def test_the_cache_can_be_switched_off(
    fake_kimi: FakeKimi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIMI_LSP_CACHE", "off")
    root = tmp_path / "proj"
    root.mkdir()
    (root / "calc.py").write_text(SOURCE)
    fake_kimi.script("`add` adds.", match="add")
    server = start(fake_kimi, root)
    try:
        assert explain(server, root, 10)["cached"] is False
        assert explain(server, root, 11)["cached"] is False
        assert len(fake_kimi.chat_requests) == 2
    finally:
        server.close()

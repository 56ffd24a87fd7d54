"""What leaves the machine: never a secret, never an ignored file."""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.conftest import RawServer
from tests.fake_kimi import FakeKimi

SECRET = "sk-live-9f8e7d6c5b4a39281716151413121110"


def test_planted_secrets_and_ignored_files_never_reach_the_api(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    root = tmp_path / "proj"
    (root / "vendor_private").mkdir(parents=True)
    (root / ".kimiignore").write_text("vendor_private/\n")
    (root / "vendor_private" / "helpers.py").write_text(
        "def connect():\n    return 'INTERNAL-ONLY-HOST'\n"
    )
    (root / "client.py").write_text(
        "from vendor_private.helpers import connect\n\n\n"
        "def call():\n"
        f"    token = '{SECRET}'\n"
        "    url = 'https://admin:Tr0ub4dor&3x@db.internal/x'\n"
        "    return connect(), token, url\n"
    )
    server = RawServer(env=fake_kimi.env())
    try:
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
        uri = (root / "client.py").as_uri()
        reply = server.request(
            5,
            "workspace/executeCommand",
            {
                "command": "kimi.explain",
                "arguments": [{"uri": uri, "position": {"line": 4, "character": 6}}],
            },
            timeout=30,
        )
        assert "result" in reply, reply
    finally:
        server.close()
    (sent,) = fake_kimi.chat_requests
    body = str(sent.body)
    assert "return connect(), token, url" in body  # the target itself went
    assert SECRET not in body
    assert "Tr0ub4dor" not in body
    assert "INTERNAL-ONLY-HOST" not in body
    assert "helpers.py" not in body

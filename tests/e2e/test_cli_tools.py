"""`kimi-lsp context --json` lists the index tools an action offers Kimi."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli import run


def test_context_lists_the_tools_offered(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    env = {"KIMI_LSP_STATE_DIR": str(tmp_path / "state")}
    out = json.loads(run("context", f"{root / 'calc.py'}:1", "--json", env=env).stdout)
    names = [t["function"]["name"] for t in out["tools"]]
    assert names == ["definition", "references", "outline", "read", "search"]
    assert all(t["function"]["parameters"]["type"] == "object" for t in out["tools"])
    off = run("context", f"{root / 'calc.py'}:1", "--json", env={**env, "KIMI_LSP_TOOLS": "off"})
    assert json.loads(off.stdout)["tools"] == []
    text = run("context", f"{root / 'calc.py'}:1", env=env)
    assert "tools offered: definition, references, outline, read, search" in text.stdout

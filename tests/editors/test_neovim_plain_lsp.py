"""A real headless Neovim with no kimi-specific code runs explain, refactor and cancel."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.editors.test_neovim import nvim
from tests.fake_kimi import FakeKimi

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "neovim" / "plain_lsp.lua"
SOURCE = "def add(a, b):\n    return a + b\n\n\ndef twice(x):\n    return add(x, x)\n"
TYPED = "def add(a: int, b: int) -> int:\n    return a + b\n"


def test_plain_neovim_gets_actions_explain_refactor_and_cancel(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / ".git").mkdir()
    source = project / "calc.py"
    source.write_text(SOURCE)
    fake_kimi.script("`add` returns the sum of `a` and `b`.", match="Explain what `add`")
    fake_kimi.script(f"```python\n{TYPED}```", match="add type hints")
    fake_kimi.script("slow " * 400, match="Explain what `twice`", chunk_tokens=1)
    fake_kimi.chunk_delay = 0.02  # the slow answer takes ~10 s; the cancel comes at once
    env = {
        **os.environ,
        **fake_kimi.env(),
        "KIMI_TEST_PY": sys.executable,
        "KIMI_TEST_FILE": str(source),
        "KIMI_LSP_STATE_DIR": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "XDG_STATE_HOME": str(tmp_path / "xdg-state"),
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
    }
    result = subprocess.run(
        [nvim(), "--headless", "--clean", "-l", str(SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "OK" in out
    assert "Kimi: Explain" in out
    assert "explain: `add` returns the sum of `a` and `b`." in out
    assert "refactor applied: true" in out
    assert source.read_text() == TYPED + SOURCE[len("def add(a, b):\n    return a + b\n") :]
    assert "cancelled: 1" in out
    assert "cancel outcome: cancelled" in out
    pieces = int(re.search(r"cancelled after (\d+) pieces", out).group(1))  # type: ignore[union-attr]
    assert pieces < 400  # the slow answer (500 tokens, one a chunk) was cut short
    assert fake_kimi.wait_until(lambda: fake_kimi.in_flight() == 0, timeout=5)

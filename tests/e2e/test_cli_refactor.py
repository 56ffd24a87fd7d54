"""`kimi-lsp refactor`: the same fan-out from the command line, as a unified diff."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fake_kimi import FakeKimi


def test_refactor_prints_a_diff_and_writes_unless_dry_run(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    for name in ("a.py", "b.py"):
        (root / "src" / name).write_text(f"def old_{name[0]}():\n    return 1\n")
        fake_kimi.script(
            f"```python\ndef new_{name[0]}():\n    return 1\n```", match=f"File: src/{name} "
        )
    (root / "src" / "c.txt").write_text("not code")
    env = {**os.environ, **fake_kimi.env()}

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "kimi_lsp",
                "refactor",
                "rename old_ to new_",
                "--scope",
                "src/*.py",
                *extra,
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    dry = run("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "-def old_a():" in dry.stdout
    assert "+def new_b():" in dry.stdout
    assert (root / "src" / "a.py").read_text().startswith("def old_a")  # nothing written
    real = run()
    assert real.returncode == 0, real.stderr
    assert (root / "src" / "a.py").read_text() == "def new_a():\n    return 1\n"
    assert len(fake_kimi.chat_requests) == 2  # the second run was served by the cache


def test_refactor_needs_a_scope() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kimi_lsp", "refactor", "do it"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--scope" in result.stderr

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


def test_refactor_by_symbol_takes_the_files_that_use_it(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    files = {
        "core.py": "def old_name():\n    return 1\n",
        "use.py": "from core import old_name\n\n\ndef twice():\n    return 2 * old_name()\n",
        "other.py": "def unrelated():\n    return 3\n",
    }
    for name, text in files.items():
        (root / "src" / name).write_text(text)
        new = text.replace("old_name", "new_name")
        fake_kimi.script(f"```python\n{new}```", match=f"File: src/{name} ")
    env = {**os.environ, **fake_kimi.env()}
    argv = [sys.executable, "-m", "kimi_lsp", "refactor", "rename old_name to new_name"]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*argv, *extra], cwd=root, env=env, capture_output=True, text=True, timeout=120
        )

    result = run("--symbol", "src/core.py:1:5")
    assert result.returncode == 0, result.stderr
    assert "2 files" in result.stderr
    assert (root / "src" / "core.py").read_text() == "def new_name():\n    return 1\n"
    assert "return 2 * new_name()" in (root / "src" / "use.py").read_text()
    assert (root / "src" / "other.py").read_text() == files["other.py"]
    assert len(fake_kimi.chat_requests) == 2
    # the definition goes with each file
    assert all("def old_name():" in str(r.body) for r in fake_kimi.chat_requests)

    bad = run("--symbol", "src/core.py")
    assert bad.returncode == 2
    assert "FILE:LINE" in bad.stderr

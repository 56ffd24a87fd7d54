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


def _git(root: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=root,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_the_dry_run_diff_applies_with_git_as_the_real_run_writes(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    files = {
        "crm/__init__.py": "from crm.admin import old_name\n",
        "crm/admin.py": "def old_name():\n    return 1\n",
        "crm/models.py": "import crm\n\nX = crm.old_name()\n",
        "crm/views/__init__.py": "from crm.admin import old_name\n\nY = old_name",  # no newline
        "crm/views/list.py": "from crm.admin import old_name\n\n\ndef show():\n    return 0\n",
        "billing/__init__.py": '"""Billing."""\n',
        "billing/admin.py": "def old_name():\n    return 2\n",
        "billing/invoices/make.py": "from billing.admin import old_name\n\nZ = old_name()\n",
        "billing/invoices/send.py": "def send(old_name):\n    return old_name\n",
        "shared/util.py": "def untouched():\n    return 3\n",
        "shared/deep/er/old.py": "old_name = 1\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
        new = text.replace("old_name", "new_name")
        fake_kimi.script(f"```python\n{new.rstrip()}\n```", match=f"File: {name} ")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "start")
    env = {**os.environ, **fake_kimi.env()}
    argv = [sys.executable, "-m", "kimi_lsp", "refactor", "rename old_name", "--scope", "**/*.py"]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*argv, *extra],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    dry = run("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "--- a/crm/admin.py\n+++ b/crm/admin.py\n" in dry.stdout
    assert "--- a/crm/views/__init__.py\n" in dry.stdout  # told apart from crm/__init__.py
    assert "\\ No newline at end of file" in dry.stdout
    assert _git(root, "status", "--porcelain") == ""  # nothing written
    real = run()
    assert real.returncode == 0, real.stderr
    written = {name: (root / name).read_bytes() for name in files}
    assert written["crm/admin.py"] == b"def new_name():\n    return 1\n"
    assert written["shared/util.py"] == files["shared/util.py"].encode()
    _git(root, "checkout", "-q", "--", ".")
    _git(root, "apply", "--check", "-", stdin=dry.stdout)
    _git(root, "apply", "-", stdin=dry.stdout)
    assert {name: (root / name).read_bytes() for name in files} == written
    _git(root, "checkout", "-q", "--", ".")
    subprocess.run(["patch", "-p1", "-s"], cwd=root, input=dry.stdout, text=True, check=True)
    assert {name: (root / name).read_bytes() for name in files} == written


def test_refactor_help_explains_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kimi_lsp", "refactor", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text = " ".join(result.stdout.split())
    for option in ("instruction", "--scope", "--symbol", "--dry-run"):
        assert option in text
    assert text.count("e.g.") >= 4  # an example for each
    assert "git apply" in text

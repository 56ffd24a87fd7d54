"""``git_diff`` prints what ``git diff`` prints, byte for byte, and ``git apply`` takes it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kimi_lsp.actions.diff import NO_NEWLINE, git_diff


def git(root: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["git", "-c", "core.autocrlf=false", *args],
        cwd=root,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def repo(tmp_path: Path) -> Path:
    root = tmp_path / "r"
    root.mkdir()
    git(root, "init", "-q")
    return root


def strip_index(diff: str) -> str:
    """git prints an ``index <old>..<new>`` line we do not (blob ids need the object store)."""
    return "".join(line for line in diff.splitlines(keepends=True) if not line.startswith("index "))


CASES = [
    ("changed", "a\nb\nc\n", "a\nB\nc\n"),
    ("no newline at the end before", "a\nb", "a\nc\n"),
    ("no newline at the end after", "a\nb\n", "a\nb"),
    ("no newline either side", "x = 1", "x = 2"),
    (
        "far apart",
        "".join(f"l{i}\n" for i in range(40)),
        "".join(f"l{i}\n" for i in range(40)).replace("l3\n", "L3\n").replace("l30\n", "L30\n"),
    ),
    ("a line added at the end", "a\n", "a\nb\n"),
]


@pytest.mark.parametrize(("what", "old", "new"), CASES, ids=[c[0] for c in CASES])
def test_the_same_bytes_as_git_diff(tmp_path: Path, what: str, old: str, new: str) -> None:
    root = repo(tmp_path)
    path = root / "crm" / "admin.py"
    path.parent.mkdir()
    path.write_bytes(old.encode())
    git(root, "add", ".")
    path.write_bytes(new.encode())
    expected = strip_index(git(root, "diff", "--no-color", "--no-ext-diff", "-U3"))
    # git names the enclosing function after @@; git apply ignores it, so do we.
    expected = "".join(
        line.split(" @@", 1)[0] + " @@\n" if line.startswith("@@") else line
        for line in expected.splitlines(keepends=True)
    )
    ours = git_diff("crm/admin.py", old, new)
    assert ours == expected
    path.write_bytes(old.encode())
    git(root, "apply", "-", stdin=ours)
    assert path.read_bytes() == new.encode()


def test_a_created_file_comes_from_dev_null(tmp_path: Path) -> None:
    root = repo(tmp_path)
    ours = git_diff("pkg/new.py", None, "one\ntwo")
    assert ours.startswith("diff --git a/pkg/new.py b/pkg/new.py\nnew file mode 100644\n")
    assert "--- /dev/null\n+++ b/pkg/new.py\n@@ -0,0 +1,2 @@\n" in ours
    assert ours.endswith("+two\n" + NO_NEWLINE)
    git(root, "apply", "-", stdin=ours)
    assert (root / "pkg" / "new.py").read_text() == "one\ntwo"


def test_a_deleted_file_goes_to_dev_null(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / "gone.py").write_text("x\n")
    ours = git_diff("gone.py", "x\n", None)
    assert "--- a/gone.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n" in ours
    git(root, "apply", "-", stdin=ours)
    assert not (root / "gone.py").exists()


def test_nothing_changed_prints_nothing() -> None:
    assert git_diff("a.py", "x\n", "x\n") == ""

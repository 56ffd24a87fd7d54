"""`kimi-lsp index PATH [--json]` as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "index" / "langs"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kimi_lsp", "index", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        check=False,
    )


def test_index_builds_then_updates_the_persisted_index(tmp_path: Path) -> None:
    work = tmp_path / "ws"
    shutil.copytree(FIXTURES, work)
    first = run(str(work), "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["files"] == 14
    assert report["parsed"] == 14
    assert report["definitions"] > 100
    assert report["references"] > 100
    assert report["languages"]["python"] == 1
    assert len(report["languages"]) == 14
    assert Path(report["database"]).is_file()
    assert Path(report["database"]).is_relative_to(os.environ["KIMI_LSP_STATE_DIR"])

    (work / "extra.py").write_text("def extra():\n    pass\n")
    second = json.loads(run(str(work), "--json").stdout)
    assert (second["files"], second["parsed"]) == (15, 1)

    text = run(str(work))
    assert text.returncode == 0
    assert "definitions" in text.stdout
    assert "python" in text.stdout
    assert " s" in text.stdout


def test_index_of_a_missing_folder_says_what_to_do(tmp_path: Path) -> None:
    result = run(str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "not a folder" in result.stderr


def test_index_says_which_files_it_skipped_and_why(tmp_path: Path) -> None:
    work = tmp_path / "ws"
    work.mkdir()
    (work / "ok.py").write_text("def ok():\n    pass\n")
    (work / "blob.py").write_bytes(b"x = 1\n\x00\x01\x02" * 50)
    (work / "bundle.min.js").write_text("var a=1;" * 4000)
    report = json.loads(run(str(work), "--json").stdout)
    reasons = {Path(f["path"]).name: f["reason"] for f in report["skipped_files"]}
    assert reasons == {"blob.py": "binary", "bundle.min.js": "minified"}
    assert report["skipped"] == 2
    text = run(str(work)).stdout
    assert f"skipped      {work / 'blob.py'} (binary)" in text

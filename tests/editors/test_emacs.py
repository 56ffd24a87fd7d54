"""The Emacs (eglot) set-up of docs/editors.md, as written, in a real Emacs against the real
server and the emulator: M-x eglot connects, M-x eglot-code-actions offers and runs the Kimi
actions (explain, a refactor applied to the buffer), M-x kimi-cancel stops a run.

Emacs runs as a daemon (not --batch) so that startup is a user's: packages activated, the
doc's block loaded as ~/.emacs.d/init.el. tests/editors/emacs/eglot_flows.el does the steps.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.fake_kimi import FakeKimi

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "editors.md"
DRIVER = Path(__file__).resolve().parent / "emacs" / "eglot_flows.el"

ADD = "def add(a, b):\n    return a + b\n"
TWICE = "def twice(x):\n    return add(x, x)\n"
SOURCE = f"{ADD}\n\n{TWICE}"
TYPED = "def add(a: int, b: int) -> int:\n    return a + b\n"
EXPLANATION = "`add` returns the sum of `a` and `b`."


def emacs() -> str:
    """Emacs with eglot (Debian 12: emacs-nox + elpa-eglot, which `make test` installs)."""
    found = shutil.which("emacs")
    has_eglot = found is not None and (
        subprocess.run(
            [found, "--batch", "--eval", "(progn (package-activate-all) (require 'eglot))"],
            capture_output=True,
            timeout=30,
            check=False,
        ).returncode
        == 0
    )
    if not has_eglot:
        what = "eglot" if found else "emacs"
        if os.environ.get("CI"):
            pytest.fail(f"{what} is not installed (make test installs emacs-nox elpa-eglot)")
        pytest.skip(f"{what} is not installed (run make test)")
    assert found is not None
    return found


def doc_config() -> str:
    """The elisp block of the Emacs section of docs/editors.md, verbatim."""
    section = DOC.read_text().split("## Emacs (eglot)", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```elisp\n(.*?)```", section, re.S)
    assert block, "docs/editors.md: no elisp block in the Emacs section"
    return block.group(1)


def run_emacs(fake: FakeKimi, tmp_path: Path, steps: list[str]) -> tuple[dict[str, Any], Path]:
    """Runs the driver's STEPS on a one-file project; returns its report and the file."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / ".git").mkdir()  # the project root, for project.el as for kimi-lsp
    source = project / "calc.py"
    source.write_text(SOURCE)
    home = tmp_path / "home"
    (home / ".emacs.d").mkdir(parents=True)
    (home / ".emacs.d" / "init.el").write_text(doc_config())
    report = tmp_path / "report.json"
    binary = emacs()
    # The daemon's socket lives in XDG_RUNTIME_DIR; a socket path must stay short.
    runtime = tempfile.mkdtemp(prefix="kimi-emacs-")
    env = {
        **os.environ,
        **fake.env(),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_RUNTIME_DIR": runtime,
        "KIMI_LSP_STATE_DIR": str(tmp_path / "state"),
        "KIMI_TEST_FILE": str(source),
        "KIMI_TEST_STEPS": ",".join(steps),
        "KIMI_TEST_REPORT": str(report),
        # `kimi-lsp` as the doc writes it: the venv's console script
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    proc = subprocess.Popen(
        [binary, "--fg-daemon=kimi-test", "-l", str(DRIVER)],
        env=env,
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a timeout also ends the server Emacs started
    )
    try:
        out, _ = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, _ = proc.communicate()
        pytest.fail(f"Emacs did not finish in 150 s:\n{out}")
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    assert report.exists(), out
    found: dict[str, Any] = json.loads(report.read_text())
    assert "error" not in found, f"{found['error']}\n{out}"
    assert proc.returncode == 0, out
    assert found["steps-done"] == steps, out
    return found, source


def test_documented_eglot_config_explains_refactors_and_cancels(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    fake_kimi.script(EXPLANATION, match="Explain what `add`")
    # the whole answer in one piece: one workspace/applyEdit (several: the test below)
    fake_kimi.script(f"```python\n{TYPED}```", match="add type hints", chunk_tokens=1000)
    slow = "slow " * 400
    fake_kimi.script(slow, match="Explain what `twice`", chunk_tokens=1)
    fake_kimi.chunk_delay = 0.02  # the slow answer takes ~8 s; the cancel comes at once

    report, source = run_emacs(fake_kimi, tmp_path, ["explain", "refactor", "cancel"])

    # M-x eglot started the doc's server for the project, with the doc's settings
    assert report["server"] == "kimi-lsp"
    assert report["project"] == f"{source.parent}/"
    assert report["init-options"] == {"model": "kimi-k2.6"}
    assert report["configuration"] == [{"tier": 1}]  # eglot's answer to workspace/configuration
    assert {r.body["model"] for r in fake_kimi.chat_requests} == {"kimi-k2.6"}
    assert "Kimi: Explain" in report["offered"]
    assert "Kimi: Refactor… add type hints" in report["offered"]
    assert all(title.startswith("Kimi: ") for title in report["offered"])

    # explain: the function (point in its body), shown as a message and written to a file
    (explain_request,) = [r for r in fake_kimi.chat_requests if "Explain what `add`" in str(r.body)]
    assert ADD.rstrip() in explain_request.body["messages"][-1]["content"]
    assert report["explain-symbol"] == "add"
    assert report["explain-text"] == EXPLANATION
    assert "Server reports (type=3): # add" in report["messages"]
    assert EXPLANATION in report["messages"]
    assert EXPLANATION in (tmp_path / "state" / "explanations" / "add.md").read_text()

    # refactor: applied to the buffer through workspace/applyEdit, no prompt, then saved
    assert report["refactor-applied"] is True, report["refactor-reason"]
    assert report["buffer"] == SOURCE.replace(ADD, TYPED)
    assert source.read_text() == SOURCE.replace(ADD, TYPED)
    assert report["prompts"] == []

    # cancel: eglot stopped waiting, the run went on until M-x kimi-cancel stopped it
    assert "Timed out" in report["slow-explain"]
    assert report["cancel"] == {"cancelled": 1}
    assert report["cancel-end"] == "cancelled"
    assert fake_kimi.wait_until(lambda: fake_kimi.in_flight() == 0, timeout=5)
    (slow_request,) = [r for r in fake_kimi.chat_requests if "Explain what `twice`" in str(r.body)]
    assert slow_request.client_closed
    assert slow_request.chunks_sent < 400  # the slow answer (one token a chunk) was cut short
    assert "twice.md" not in os.listdir(tmp_path / "state" / "explanations")


def test_documented_eglot_config_applies_a_refactor_streamed_in_several_edits(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    fake_kimi.script(f"```python\n{TYPED}```", match="add type hints", chunk_tokens=2)
    fake_kimi.chunk_delay = 0.05  # as from the real API: the edits come while eglot waits

    report, source = run_emacs(fake_kimi, tmp_path, ["refactor"])

    assert report["prompts"] == []
    assert source.read_text() == SOURCE.replace(ADD, TYPED)
    assert report["buffer"] == SOURCE.replace(ADD, TYPED)
    assert report["refactor-applied"] is True, report["refactor-reason"]

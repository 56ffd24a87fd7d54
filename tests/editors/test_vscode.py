"""The built .vsix in a real VS Code (code-server) in headless Chromium, against the emulator.

`make test-vscode` installs code-server, Chromium and puppeteer-core (scripts/vscode-deps),
builds the .vsix and runs this with KIMI_VSCODE_UI=1; a plain `pytest` run skips it, so
`make test` does not run it twice. tests/editors/vscode/drive.js does the clicking and prints
one JSON line per step; a step whose server feature does not exist yet is reported as
skipped with the missing command's name, never passed. Screenshots and steps.txt: the test's
tmp_path (artifacts/), kept by pytest for the last runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimi_lsp.config import Settings
from tests.fake_kimi import FakeKimi

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "vscode"
CODE_SERVER = REPO / ".cache" / "code-server" / "node_modules" / ".bin" / "code-server"
VSIX = REPO / "clients" / "vscode" / "kimi-lsp.vsix"
API_KEY = "sk-test"
EXPLANATION = (
    "`add` returns the sum of `a` and `b`. "
    + "It adds its two arguments with the `+` operator and returns the result. " * 6
    + "Explained by the emulator."
)
TYPED = "def add(a: int, b: int) -> int:\n    return a + b\n"
TESTS = "```python\nfrom calc import twice\n\n\ndef test_twice():\n    assert twice(2) == 4\n```"
GREET_NEW = 'def greet(name):\n    return f"Hello, {name}"\n'
MEAN_NEW = "def mean(values):\n    return sum(values) / len(values)\n"
THINKING = "Let me look at what add does with its two arguments. " * 30
# Steps whose server feature may be missing; all others must pass.
MAY_SKIP = {
    "hover",
    "explain-streams-into-panel",
    "hover-shows-cached-explanation",
    "status-bar-quota",
    "refactor-edit-lands",
    "show-context",
    "refactor-workspace",
    "generate-tests",
    "cancel",
    "show-quota",
}

ui_test = pytest.mark.skipif(
    os.environ.get("KIMI_VSCODE_UI") != "1",
    reason="the VS Code UI test runs through `make test-vscode` (it installs code-server)",
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


def test_extension_settings_mirror_the_servers() -> None:
    """Every server setting but the key is a `kimi.*` setting the extension sends, and every
    setting it sends is one the server knows (an unknown one would be reported as a problem)."""
    manifest = json.loads((REPO / "clients" / "vscode" / "package.json").read_text())
    contributed = {
        k.removeprefix("kimi.") for k in manifest["contributes"]["configuration"]["properties"]
    }
    source = (REPO / "clients" / "vscode" / "src" / "settings.ts").read_text()
    block = source.split("export const SERVER_KEYS = [", 1)[1].split("]", 1)[0]
    sent = {k.strip().strip('"') for k in block.split(",") if k.strip()}
    server = {_camel(n) for n in Settings.model_fields if n != "api_key"}
    assert sent == server
    assert server <= contributed
    assert "apiKey" not in contributed  # the key lives in SecretStorage only


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _session_members(sid: int) -> list[int]:
    """Every live process in session `sid`, including orphans re-parented to init (such as
    code-server's fileWatcher)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields: state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def _end_session(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> list[int]:
    """Stop `proc` (a session leader) and every process of its session; return stragglers."""
    sid = proc.pid
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        for pid in _session_members(sid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            proc.poll()
            if not _session_members(sid):
                break
            time.sleep(0.1)
    proc.poll()
    return _session_members(sid)


@pytest.fixture
def trusted() -> bool:
    return True  # a test overrides it with @pytest.mark.parametrize("trusted", [False])


@pytest.fixture
def code_server(
    tmp_path: Path, fake_kimi: FakeKimi, trusted: bool
) -> Iterator[tuple[str, Path, Path, Path]]:
    """code-server with the .vsix installed into throw-away dirs, the fixture workspace open
    (trusted, or in Restricted Mode)."""
    if not CODE_SERVER.exists() or not VSIX.exists():
        pytest.fail("code-server or the .vsix is missing: run `make test-vscode`")
    workspace = tmp_path / "ws"
    shutil.copytree(HERE / "fixture", workspace)
    (workspace / ".git").mkdir()
    user_data, extensions, state = tmp_path / "ud", tmp_path / "exts", tmp_path / "state"
    (user_data / "User").mkdir(parents=True)
    settings = {
        "kimi.pythonPath": sys.executable,
        "kimi.baseUrl": fake_kimi.base_url,
        "kimi.reviewMode": True,  # long refactors: VS Code's Refactor Preview
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "workbench.enableExperiments": False,
        "security.workspace.trust.enabled": not trusted,
        "security.workspace.trust.startupPrompt": "never",  # no modal: stay in Restricted Mode
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
        "telemetry.telemetryLevel": "off",
        "git.enabled": False,
        "chat.commandCenter.enabled": False,
        "editor.hover.delay": 200,
        "editor.minimap.enabled": False,
    }
    (user_data / "User" / "settings.json").write_text(json.dumps(settings, indent=2))
    config = tmp_path / "code-server.yaml"
    port = _free_port()
    config.write_text(f"bind-addr: 127.0.0.1:{port}\nauth: none\ncert: false\n")
    base = [str(CODE_SERVER), "--config", str(config), "--user-data-dir", str(user_data)]
    base += ["--extensions-dir", str(extensions)]
    env = {k: v for k, v in os.environ.items() if k not in ("MOONSHOT_API_KEY", "KIMI_API_KEY")}
    env.update(KIMI_LSP_STATE_DIR=str(state), HOME=str(tmp_path / "home"))
    installed = subprocess.run(
        [*base, "--install-extension", str(VSIX)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    log = (tmp_path / "code-server.log").open("w")
    proc = subprocess.Popen(
        [
            *base,
            "--disable-telemetry",
            "--disable-update-check",
            *(["--disable-workspace-trust"] if trusted else []),
            "--disable-getting-started-override",
            str(workspace),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # one session: the cleanup finds every child and orphan
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"code-server did not start: {(tmp_path / 'code-server.log').read_text()}"
                    )
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", workspace, user_data, state
    finally:
        left = _end_session(proc)
        log.close()
        assert not left, f"processes left running after code-server: {left}"


@ui_test
@pytest.mark.timeout(480)  # a real workbench on a shared machine: minutes, not seconds
def test_vscode_extension_drives_kimi_in_a_real_editor(
    code_server: tuple[str, Path, Path, Path], fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    url, workspace, user_data, state = code_server
    fake_kimi.script(EXPLANATION, match="Explain what `add`", chunk_tokens=1, reasoning=THINKING)
    fake_kimi.script(f"```python\n{MEAN_NEW}```", match="use sum")
    fake_kimi.script(f"```python\n{TYPED}```", match="add type hints")
    fake_kimi.script(f"```python\n{GREET_NEW}```", match="File: greet.py ")
    fake_kimi.script(TESTS, match="Write tests for `twice`")
    fake_kimi.script("slow " * 400, match="Explain what `twice`", chunk_tokens=1)
    fake_kimi.chunk_delay = 0.03  # the explanation streams for a few seconds
    _out, err, steps = _drive(url, workspace, user_data, state, tmp_path)
    summary = "\n".join(f"{s['status']:5} {name}: {s['detail'][:300]}" for name, s in steps.items())
    print(summary)  # shown with -rA / on failure: which steps were skipped and why
    failed = {n: s["detail"] for n, s in steps.items() if s["status"] == "fail"}
    assert not failed, summary + "\n" + err[-3000:]
    for required in (
        "workbench",
        "activation",  # one --stdio in the server's argv
        "set-api-key",
        "lightbulb",  # Explain and Generate tests in Ctrl+.
        "explain-streams-into-panel",  # thinking… N tokens, titled with add, no .md tab
        "refactor-preview",  # Refactor Preview, nothing on disk before Apply
    ):
        assert steps.get(required, {}).get("status") == "pass", summary
    for name, s in steps.items():
        if s["status"] == "skip":
            assert name in MAY_SKIP, f"{name} may not be skipped: {s['detail']}"
            assert "kimi." in s["detail"] or "hoverProvider" in s["detail"], s["detail"]
    shots = sorted(p.name for p in (tmp_path / "artifacts").glob("*.png"))
    for name in ("lightbulb", "explain-thinking", "refactor-preview-pending", "refactor-preview"):
        assert any(f"-{name}.png" in s for s in shots), shots
    # The key came from SecretStorage: the emulator saw it on the explain request.
    if steps.get("cancel", {}).get("status") == "pass":
        assert fake_kimi.wait_until(lambda: fake_kimi.in_flight() == 0, timeout=5)
        slow = [r for r in fake_kimi.chat_requests if "Explain what `twice`" in str(r.body)]
        assert slow
        assert slow[-1].client_closed  # the stream was cut, not run to the end
    assert any(
        r.headers.get("authorization") == f"Bearer {API_KEY}" for r in fake_kimi.chat_requests
    )


@ui_test
@pytest.mark.timeout(300)
@pytest.mark.parametrize("trusted", [False])
def test_restricted_mode_says_why_kimi_is_off_and_starts_nothing(
    code_server: tuple[str, Path, Path, Path], fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    url, workspace, user_data, state = code_server
    manifest = json.loads((REPO / "clients" / "vscode" / "package.json").read_text())
    untrusted = manifest["capabilities"]["untrustedWorkspaces"]
    assert untrusted["supported"] == "limited"
    assert "Restricted Mode" in untrusted["description"]
    assert "kimi.pythonPath" in untrusted["restrictedConfigurations"]
    _out, err, steps = _drive(url, workspace, user_data, state, tmp_path, mode="restricted")
    summary = "\n".join(f"{s['status']:5} {name}: {s['detail'][:300]}" for name, s in steps.items())
    print(summary)
    assert steps.get("trust-message", {}).get("status") == "pass", summary + "\n" + err[-3000:]
    assert list((tmp_path / "artifacts").glob("*-restricted-mode.png"))
    assert not fake_kimi.chat_requests


def test_the_vsix_is_one_bundled_file_under_200_kb() -> None:
    if not VSIX.exists():
        pytest.skip("no .vsix built (make vsix)")
    import zipfile

    with zipfile.ZipFile(VSIX) as z:
        names = z.namelist()
    code = [n for n in names if n.endswith(".js")]
    assert code == ["extension/dist/extension.js"], names
    assert not any("node_modules" in n for n in names), names
    assert VSIX.stat().st_size < 200_000


def _drive(
    url: str, workspace: Path, user_data: Path, state: Path, tmp_path: Path, mode: str = "full"
) -> tuple[str, str, dict[str, dict[str, str]]]:
    """Runs drive.js against code-server; its steps by name, screenshots in tmp_path."""
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "KIMI_UI_URL": url,
        "KIMI_UI_WORKSPACE": str(workspace),
        "KIMI_UI_ARTIFACTS": str(artifacts),
        "KIMI_UI_MODE": mode,
        "KIMI_UI_USER_DATA": str(user_data),
        "KIMI_UI_STATE_DIR": str(state),
        "KIMI_UI_API_KEY": API_KEY,
        "HOME": str(tmp_path / "home"),
    }
    driver = subprocess.Popen(
        ["node", str(HERE / "drive.js")],
        cwd=HERE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Chromium and its helpers live in this session
    )
    try:
        out, err = driver.communicate(timeout=420)
    except subprocess.TimeoutExpired:
        _end_session(driver)
        out, err = driver.communicate()
        pytest.fail(f"the UI driver hung:\n{out}\n{err}")
    finally:
        left = _end_session(driver)
    assert not left, f"Chromium processes left running: {left}"
    steps: dict[str, dict[str, str]] = {}
    for line in out.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            steps[rec["step"]] = rec
    summary = "\n".join(f"{s['status']:5} {name}: {s['detail'][:300]}" for name, s in steps.items())
    (artifacts / "steps.txt").write_text(summary + "\n\n--- stderr ---\n" + err)
    return out, err, steps

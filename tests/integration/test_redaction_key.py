"""Placeholders for secrets are the same bytes in every process of a user, restarts included:
the key that tags them lives in the state dir (so a cached answer for a prompt with a secret
still serves), readable by the user alone, and never in what is sent."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from kimi_lsp.context.redact import KEY_FILE

SECRET = "sk-live-" + "Zq7xW2pL9mK4vB8nR3tY6uJ1"
SCRIPT = f"""
import sys
from pathlib import Path
from kimi_lsp.context import redact, use_key_from
use_key_from(Path(sys.argv[1]))
print(redact('API_KEY = "{SECRET}"\\n')[0], end="")
"""


def start(state: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(state)], stdout=subprocess.PIPE, text=True
    )


def placeholders(*states: Path) -> list[str]:
    """Started together, as editors opening at once do."""
    procs = [start(s) for s in states]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    return outs


def test_processes_of_one_state_dir_agree_now_and_after_a_restart(tmp_path: Path) -> None:
    state, other = tmp_path / "state", tmp_path / "other"
    first = placeholders(state, state, state, state, other)
    assert len(set(first[:4])) == 1  # four at once, one key
    assert "<redacted: " in first[0]
    assert SECRET not in first[0]
    assert first[4] != first[0]  # another user's key tags it differently
    (again,) = placeholders(state)
    assert again == first[0]  # a restart
    key = state / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert SECRET.encode() not in key.read_bytes()
    assert list(state.glob(f".{KEY_FILE}.*")) == []  # no temporary left


def test_a_cut_key_is_replaced_and_an_unusable_state_dir_keeps_a_key_of_its_own(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / KEY_FILE).write_bytes(b"short")
    (out,) = placeholders(state)
    assert len((state / KEY_FILE).read_bytes()) == 32
    assert placeholders(state) == [out]
    blocked = tmp_path / "file"
    blocked.write_text("a file where the state dir should be")
    (own,) = placeholders(blocked)
    assert "<redacted: " in own
    assert SECRET not in own

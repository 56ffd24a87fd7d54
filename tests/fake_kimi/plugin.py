"""pytest fixtures for the emulator (registered from tests/conftest.py).

- ``fake_kimi``: a fresh emulator on a free loopback port for one test, stopped afterwards.
- ``fake_kimi_process``: the same as a subprocess (``python -m tests.fake_kimi``), for tests
  that need it in another process; script it over ``/_fake/*``. Yields its base URL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_kimi.server import FakeKimi

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_kimi() -> Iterator[FakeKimi]:
    fake = FakeKimi().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_kimi_process() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_kimi", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on" not in line:
            pytest.fail(f"fake-kimi did not start: {line!r}")
        yield line.split("listening on ", 1)[1].split()[0]
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()

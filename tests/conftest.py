"""Shared fixtures: an isolated environment for every test, and a real Redis server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent
pytest_plugins = ["tests.fake_kimi.plugin"]  # the Kimi emulator fixtures: fake_kimi, ...


# CI runs the same examples every time (a red build must be reproducible); a developer's run
# explores new ones and finds what CI would not.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _isolated_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads the developer's key, settings or state dir."""
    for key in list(os.environ):
        if key.startswith("KIMI_LSP_") or key in ("MOONSHOT_API_KEY", "KIMI_API_KEY"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("KIMI_LSP_STATE_DIR", str(tmp_path_factory.mktemp("state")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_binary() -> str:
    """Debian's redis-server, which `make test` installs. Without it the Redis tests fail
    under CI and are skipped on a developer machine that lacks it."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (make test installs it)")
        pytest.skip("redis-server is not installed (run make test)")
    return binary


def start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """A real redis-server on 127.0.0.1:``port``, answering PING when this returns."""
    proc = subprocess.Popen(
        [
            redis_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("redis-server did not start")
        time.sleep(0.05)


def stop_redis(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a loopback port for the session; stopped afterwards."""
    redis_binary()
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("redis"))
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_redis(proc)

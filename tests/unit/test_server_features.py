"""The server's features stand alone: one that cannot start leaves the others working, and a
listener of a notification that raises does not stop the next one."""

from __future__ import annotations

import logging

import pytest

from kimi_lsp.server import create_server
from kimi_lsp.server.features import refactor
from kimi_lsp.server.isolation import guarded


def test_every_feature_registers_its_commands() -> None:
    commands = set(create_server().protocol.fm.commands)
    assert {
        "kimi.explain",
        "kimi.refactor",
        "kimi.generateTests",
        "kimi.refactorWorkspace",
        "kimi.showContext",
        "kimi.quota",
        "kimi.cancel",
    } <= commands


def test_a_feature_that_cannot_start_leaves_the_others_working(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(server: object) -> None:
        raise RuntimeError("refactor cannot start")

    monkeypatch.setattr(refactor, "register", broken)
    with caplog.at_level(logging.ERROR):
        server = create_server()
    commands = set(server.protocol.fm.commands)
    assert "kimi.refactor" not in commands
    assert {"kimi.explain", "kimi.generateTests", "kimi.quota"} <= commands
    assert "textDocument/didChange" in server.protocol.fm.features
    assert "refactor cannot start" in caplog.text


def test_a_listener_that_raises_does_not_stop_the_next(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    def first() -> None:
        raise ValueError("first listener broke")

    with caplog.at_level(logging.ERROR):
        ok = guarded("first", first)
        guarded("second", seen.append, "second ran")
    assert ok is False
    assert seen == ["second ran"]
    assert "first listener broke" in caplog.text

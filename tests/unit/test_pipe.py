"""kimi_lsp.pipe: an editor that closes the pipe is one INFO line, and nothing more is sent."""

from __future__ import annotations

import logging
import os

import pytest

from kimi_lsp.pipe import ClientPipe, LenientInput


def test_a_closed_pipe_is_one_info_line_and_later_writes_are_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    read, write = os.pipe()
    os.close(read)  # the editor went away
    out = os.fdopen(write, "wb", buffering=0)
    pipe = ClientPipe(out)
    with caplog.at_level(logging.INFO, logger="kimi_lsp.pipe"):
        pipe.write(b"Content-Length: 2\r\n\r\n{}")
        pipe.write(b"Content-Length: 2\r\n\r\n{}")
        pipe.close()
    assert pipe.gone
    records = [r for r in caplog.records if r.name == "kimi_lsp.pipe"]
    assert [r.levelno for r in records] == [logging.INFO]
    assert "closed the connection" in records[0].getMessage()


def test_writes_reach_an_open_pipe() -> None:
    read, write = os.pipe()
    pipe = ClientPipe(os.fdopen(write, "wb", buffering=0))
    pipe.write(b"hello")
    assert os.read(read, 5) == b"hello"
    assert not pipe.gone
    pipe.close()
    os.close(read)


def test_the_end_of_the_editors_input_is_one_info_line(caplog: pytest.LogCaptureFixture) -> None:
    """An editor that quits after the answer to shutdown, without exit: the server's input
    ends and the server stops; the log says why, once."""
    read, write = os.pipe()
    os.write(write, b"Content-Length: 2\r\n")
    os.close(write)
    stream = LenientInput(os.fdopen(read, "rb"))
    with caplog.at_level(logging.INFO, logger="kimi_lsp.pipe"):
        assert stream.readline() == b"Content-Length: 2\r\n"
        assert stream.readline() == b""
        assert stream.readline() == b""
        stream.close()
    records = [r for r in caplog.records if r.name == "kimi_lsp.pipe"]
    assert [r.getMessage() for r in records] == [
        "the editor closed the connection (end of input); stopping"
    ]

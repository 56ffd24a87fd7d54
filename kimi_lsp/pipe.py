"""The server's side of the pipe to the editor, which may close it at any moment.

An editor that quits (Neovim's ``:qa`` a few seconds after start) closes the pipe while the
server still has answers and notifications to send. pygls logs every failed write as an
ERROR with a traceback and raises again; the editor going away is normal, so this writer
says so once, at INFO, and drops what is still to be sent. An editor that closes its end
after the answer to ``shutdown`` but without ``exit`` ends the server's input: that is one
INFO line too, so the log always says why the server stopped.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

logger = logging.getLogger(__name__)

# What a closed pipe or socket raises on write (ValueError: a write to a closed file).
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ValueError)


class Writer(Protocol):
    def write(self, data: bytes) -> Any: ...

    def close(self) -> Any: ...


class ClientPipe:
    """Wraps pygls's writer: the first write to a vanished client logs one INFO line."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self.gone = False

    def write(self, data: bytes) -> Any:
        if self.gone:
            return None
        try:
            return self._writer.write(data)
        except CLIENT_GONE as exc:
            self.gone = True
            logger.info("the editor closed the connection (%s); not sending any more", exc)
            return None

    def close(self) -> Any:
        try:
            return self._writer.close()
        except CLIENT_GONE:
            return None


class Reader(Protocol):
    def readline(self) -> bytes: ...

    def read(self, n: int) -> bytes: ...


class LenientInput:
    """Wraps the server's stdin: a message body that is not valid UTF-8 is read with its
    invalid bytes kept as lone surrogates (``surrogateescape``), with one WARNING line, instead
    of pygls's "Unable to handle message" traceback and a dropped message (a dropped
    ``didChange`` leaves the server's copy of the document stale for the rest of the session).
    The text then holds the bytes as the editor has them, so positions on it stay right."""

    def __init__(self, stream: Reader) -> None:
        self._stream = stream
        self.ended = False

    def readline(self) -> bytes:  # headers: ASCII, passed as they are
        line = self._stream.readline()
        if not line and not self.ended:  # the server stops on it: say why, once
            self.ended = True
            logger.info("the editor closed the connection (end of input); stopping")
        return line

    def read(self, n: int) -> bytes | str:
        body = self._stream.read(n)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            logger.warning(
                "a message from the editor is not valid UTF-8 (byte 0x%02x at %d of %d); "
                "reading it with the invalid bytes kept as they are",
                body[exc.start],
                exc.start,
                len(body),
            )
            return body.decode("utf-8", "surrogateescape")  # json.loads reads a str as well
        return body

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()

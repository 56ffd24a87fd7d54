"""The server's side of the pipe to the editor, which may close it at any moment.

An editor that quits (Neovim's ``:qa`` a few seconds after start) closes the pipe while the
server still has answers and notifications to send. pygls logs every failed write as an
ERROR with a traceback and raises again; the editor going away is normal, so this writer
says so once, at INFO, and drops what is still to be sent.
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

"""Logging: a rotating file in the state dir, plus warnings and errors to the editor.

The editor side is a plain callback so this module stays free of LSP types; the server passes
one that sends ``window/logMessage``.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
from collections.abc import Callable
from pathlib import Path

LOG_FILE = "kimi-lsp.log"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# window/logMessage types: 1 error, 2 warning, 3 info, 4 log.
_LSP_TYPE = {logging.ERROR: 1, logging.WARNING: 2, logging.INFO: 3}

_file_handler: logging.Handler | None = None
_client_handler: logging.Handler | None = None


class _ClientLogHandler(logging.Handler):
    """Forwards records to the editor; never re-enters itself (sending may log too)."""

    def __init__(self, send: Callable[[int, str], None]) -> None:
        super().__init__(level=logging.WARNING)
        self._send = send
        self._busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._busy, "on", False):
            return
        self._busy.on = True
        try:
            level = _LSP_TYPE.get(record.levelno, 1 if record.levelno > logging.ERROR else 4)
            self._send(level, record.getMessage())
        except Exception:  # the editor may be gone; the file keeps the record
            pass
        finally:
            self._busy.on = False


def log_path(state_dir: Path) -> Path:
    return state_dir / LOG_FILE


def setup_logging(state_dir: Path, level: str = "INFO") -> Path | None:
    """(Re)point the root logger at ``state_dir/kimi-lsp.log``; returns the file, or None.

    Never writes to stdout: on stdio that is the LSP channel.
    """
    global _file_handler
    root = logging.getLogger()
    root.setLevel(level)
    path: Path | None = log_path(state_dir)
    try:
        assert path is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
        )
    except OSError as exc:  # an unwritable state dir must not stop the server
        print(f"kimi-lsp: cannot write the log file {path}: {exc}", file=sys.stderr)
        handler, path = logging.StreamHandler(sys.stderr), None
    handler.setFormatter(logging.Formatter(_FORMAT))
    if _file_handler is not None:
        root.removeHandler(_file_handler)
        _file_handler.close()
    _file_handler = handler
    root.addHandler(handler)
    # pygls logs every message body at DEBUG/INFO; keep that out unless asked for.
    logging.getLogger("pygls").setLevel(level if level == "DEBUG" else "WARNING")
    return path


def attach_client_log(send: Callable[[int, str], None]) -> None:
    """Send warnings and errors to the editor as well (``window/logMessage``)."""
    global _client_handler
    root = logging.getLogger()
    if _client_handler is not None:
        root.removeHandler(_client_handler)
    _client_handler = _ClientLogHandler(send)
    root.addHandler(_client_handler)

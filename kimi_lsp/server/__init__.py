"""The language server: pygls wiring only, as a package of features.

- ``protocol``: JSON-RPC as pygls runs it, fixed to answer every request exactly once;
- ``session``: the server object (settings, the services actions use, spawning, errors);
- ``progress``: the frame of every long command (a run, ``$/progress``, ``kimi/stream``,
  errors the user can read); ``client_edits``: edits, new files and documents shown;
  ``status``: ``kimi/status``; ``convert``: LSP shapes in and out;
- ``features/``: one module per feature, each with ``register(server)`` of short handlers.

The only package that imports pygls (import-linter checks it). Lifecycle rules: see
docs/architecture.md.
"""

from __future__ import annotations

import sys

from kimi_lsp.logs import setup_logging
from kimi_lsp.pipe import LenientInput

from .features import register_all
from .session import KimiLanguageServer

__all__ = ["KimiLanguageServer", "create_server", "serve"]


def create_server() -> KimiLanguageServer:
    """Build the server and register every feature."""
    server = KimiLanguageServer()
    register_all(server)
    return server


def serve(*, tcp: str | None = None, log_level: str | None = None) -> int:
    """Run the server on stdio, or on ``HOST:PORT``; returns the exit code."""
    server = create_server()
    server.log_level_override = log_level
    setup_logging(server.settings.state_dir, log_level or server.settings.log_level)
    if tcp:
        host, _, port = tcp.rpartition(":")
        if not host or not port.isdigit():
            print(f"kimi-lsp: --tcp expects HOST:PORT, got {tcp!r}", file=sys.stderr)
            return 2
        server.start_tcp(host, int(port))
    else:
        server.start_io(LenientInput(sys.stdin.buffer))  # type: ignore[arg-type]
    return 0

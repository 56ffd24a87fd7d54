"""The ``kimi-lsp`` command.

``kimi-lsp`` alone is ``kimi-lsp serve --stdio``. Each subcommand is one small function that
parses its arguments, calls the library that does the work and prints the result; the
libraries never print.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kimi_lsp import __version__


def _cmd_serve(args: argparse.Namespace) -> int:
    from kimi_lsp.server import serve

    return serve(tcp=args.tcp, log_level=args.log_level)


def _cmd_doctor(args: argparse.Namespace) -> int:
    from kimi_lsp.doctor import run_doctor

    return run_doctor(json_output=args.json, out=sys.stdout)


def _not_yet(name: str) -> int:
    print(f"kimi-lsp {name}: not yet available in this version", file=sys.stderr)
    return 2


def _cmd_index(args: argparse.Namespace) -> int:
    return _not_yet("index")


def _cmd_context(args: argparse.Namespace) -> int:
    return _not_yet("context")


def _cmd_explain(args: argparse.Namespace) -> int:
    return _not_yet("explain")


def _cmd_quota(args: argparse.Namespace) -> int:
    return _not_yet("quota")


def _cmd_refactor(args: argparse.Namespace) -> int:
    return _not_yet("refactor")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kimi-lsp", description="Kimi in every LSP editor: a language server and its tools."
    )
    parser.add_argument("--version", action="version", version=f"kimi-lsp {__version__}")
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        default=None,
        help="log file level (default: the log_level setting)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("serve", help="run the language server (default: stdio)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--stdio", action="store_true", help="talk LSP over stdin/stdout (default)")
    mode.add_argument("--tcp", metavar="HOST:PORT", help="listen for one editor on a TCP port")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("doctor", help="check settings, key, state dir and the API")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("index", help="build or update the persisted index of a folder")
    p.add_argument("path", nargs="?", default=".")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("context", help="print exactly the messages an action would send")
    p.add_argument("location", metavar="FILE:LINE[:COL]")
    p.add_argument("--action", default="explain")
    p.add_argument("--budget", type=int, default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_context)

    p = sub.add_parser("explain", help="stream an explanation of the symbol at FILE:LINE")
    p.add_argument("location", metavar="FILE:LINE")
    p.add_argument("--show-reasoning", action="store_true", help="show reasoning on stderr")
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser("quota", help="show limits, usage, queue and cool-down")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_quota)

    p = sub.add_parser("refactor", help="refactor the whole workspace; prints a unified diff")
    p.add_argument("instruction")
    p.add_argument("--scope", action="append", default=None, metavar="GLOB")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=_cmd_refactor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `kimi-lsp` is what editors run: the stdio server
        args.func, args.tcp = _cmd_serve, None
    rc = args.func(args)
    return int(rc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

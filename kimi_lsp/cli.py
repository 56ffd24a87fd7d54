"""The ``kimi-lsp`` command.

``kimi-lsp`` alone is ``kimi-lsp serve --stdio``. Each subcommand is one small function that
parses its arguments, calls the library that does the work and prints the result; the
libraries never print.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kimi_lsp import __version__

if TYPE_CHECKING:
    from pathlib import Path

SKIPPED_SHOWN = 20  # `kimi-lsp index` lists this many skipped files; --json lists all


def _location(text: str) -> tuple[Path, int, int] | None:
    """``FILE:LINE[:COL]`` (1-based, as editors and compilers print them) as a resolved path
    and 0-based line and column; None when it is not one."""
    import re
    from pathlib import Path

    found = re.fullmatch(r"(.+?):(\d+)(?::(\d+))?", text)
    if found is None or int(found.group(2)) < 1:
        return None
    col = max(0, int(found.group(3) or 1) - 1)
    return Path(found.group(1)).resolve(), int(found.group(2)) - 1, col


def _cmd_serve(args: argparse.Namespace) -> int:
    from kimi_lsp.server import serve

    return serve(tcp=args.tcp, log_level=args.log_level)


def _cmd_doctor(args: argparse.Namespace) -> int:
    from kimi_lsp.doctor import run_doctor

    return run_doctor(json_output=args.json, out=sys.stdout)


def _cmd_index(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    from kimi_lsp.config import load_settings
    from kimi_lsp.index import WorkspaceIndex

    root = Path(args.path).resolve()
    if not root.is_dir():
        print(f"kimi-lsp index: {root} is not a folder; pass the workspace folder", file=sys.stderr)
        return 2
    loaded = load_settings()
    for problem in loaded.problems:
        print(f"kimi-lsp index: {problem}", file=sys.stderr)
    settings = loaded.settings
    started = time.perf_counter()
    index = WorkspaceIndex(
        [root], state_dir=settings.state_dir, max_file_bytes=settings.max_file_bytes
    )
    try:
        stats = index.update()
    finally:
        index.close()
    seconds = time.perf_counter() - started
    report = {
        "root": str(root),
        "files": stats.files,
        "definitions": stats.definitions,
        "references": stats.references,
        "languages": stats.languages,
        "parsed": stats.parsed,
        "skipped": stats.skipped,
        "skipped_files": [{"path": str(f.path), "reason": f.reason} for f in index.skipped],
        "seconds": round(seconds, 3),
        "database": str(index.database_path) if index.database_path else None,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"indexed {root}")
    print(f"  files        {stats.files} ({stats.parsed} parsed, {stats.skipped} skipped)")
    print(f"  definitions  {stats.definitions}")
    print(f"  references   {stats.references}")
    for language, count in stats.languages.items():
        print(f"  {language:<12} {count} files")
    print(f"  time         {seconds:.2f} s")
    for f in index.skipped[:SKIPPED_SHOWN]:
        print(f"  skipped      {f.path} ({f.reason})")
    if len(index.skipped) > SKIPPED_SHOWN:
        print(f"  skipped      … {len(index.skipped) - SKIPPED_SHOWN} more (--json lists all)")
    return 0


def _workspace_root(path: Path) -> Path:
    """The workspace a file belongs to, as an editor would open it: the nearest folder
    above it holding ``.git``, else the current folder when the file is inside it, else the
    file's own folder."""
    from pathlib import Path

    repo = next((p for p in [path.parent, *path.parents] if (p / ".git").exists()), None)
    if repo is not None:
        return repo
    cwd = Path.cwd().resolve()
    return cwd if cwd in path.parents else path.parent


def _read_target(command: str, location: str) -> tuple[Path, int, int, str] | None:
    """``FILE:LINE[:COL]`` and the file's text; None (after saying why) when it is not."""
    from kimi_lsp.positions import text_lines

    where = _location(location)
    if where is None:
        print(f"kimi-lsp {command}: expected FILE:LINE[:COL], got {location!r}", file=sys.stderr)
        return None
    path, line, col = where
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"kimi-lsp {command}: cannot read {path}: {exc}", file=sys.stderr)
        return None
    lines = len(text_lines(text))
    if line >= lines:
        print(f"kimi-lsp {command}: {path} has only {lines} lines", file=sys.stderr)
        return None
    return path, line, col, text


def _cmd_context(args: argparse.Namespace) -> int:
    """Print exactly the messages an action would send, with the token estimate per section
    and what did not fit. Nothing is sent."""
    import asyncio
    import json

    from kimi_lsp.actions.errors import user_errors
    from kimi_lsp.actions.factory import open_services
    from kimi_lsp.actions.prompts import INSTRUCTIONS, build
    from kimi_lsp.actions.target import find_target
    from kimi_lsp.actions.toolloop import tools_offered
    from kimi_lsp.config import load_settings

    found = _read_target("context", str(args.location))
    if found is None:
        return 2
    path, line, col, text = found
    if args.action not in INSTRUCTIONS:
        print(f"kimi-lsp context: --action is one of {', '.join(INSTRUCTIONS)}", file=sys.stderr)
        return 2
    settings = load_settings().settings
    # --budget is the room for repository context, the target file's window counted apart (as
    # every engine we compare with reads a budget); --total-budget caps the whole prompt.
    if args.budget:
        settings = settings.model_copy(update={"context_repository_budget": args.budget})
    if args.total_budget:
        settings = settings.model_copy(update={"context_budget": args.total_budget})
    services = open_services(settings, [_workspace_root(path)])
    try:
        target = find_target(services.index, path, text, line, col)
        built = build(services, args.action, target, text)
    except user_errors() as exc:
        print(f"kimi-lsp context: {exc}", file=sys.stderr)
        return 1
    finally:
        asyncio.run(services.aclose())
    if args.json:
        print(
            json.dumps(
                {
                    "messages": built.messages,
                    "sections": [{"name": s.name, "tokens": s.tokens} for s in built.sections],
                    "leftOut": built.left_out,
                    "tokens": built.tokens,
                    "stablePrefixTokens": built.stable_prefix_tokens,
                    "fileWindowTokens": built.file_window_tokens,
                    "repositoryTokens": built.repository_tokens,
                    "redactions": built.redactions,
                    "tools": tools_offered(settings.tools, args.action),
                },
                indent=2,
            )
        )
        return 0
    for m in built.messages:
        print(f"===== {m['role']} =====\n{m['content']}\n")
    print("===== sections (estimated tokens) =====")
    for section in built.sections:
        print(f"  {section.tokens:>7}  {section.name}")
    room = settings.context_repository_budget
    print(
        f"  {built.tokens:>7}  total (cap {settings.context_budget}): file window "
        f"{built.file_window_tokens}, repository {built.repository_tokens} "
        f"(budget {room if room is not None else 'what the cap leaves'}); stable prefix "
        f"{built.stable_prefix_tokens}; {built.redactions} secrets redacted"
    )
    for item in built.left_out:
        print(f"  left out: {item}")
    offered = [t["function"]["name"] for t in tools_offered(settings.tools, args.action)]
    print(f"  tools offered: {', '.join(offered) if offered else 'none'}")
    return 0


class _StdoutSink:
    """An answer as it streams: the text on stdout; progress and (asked for) reasoning on
    stderr, dimmed on a terminal."""

    def __init__(self, *, show_reasoning: bool) -> None:
        self.show_reasoning = show_reasoning
        self.dim = ("\x1b[2m", "\x1b[0m") if sys.stderr.isatty() else ("", "")
        self.reasoned = False
        self.wrote = False

    def progress(self, message: str) -> None:
        if sys.stderr.isatty():
            print(f"\r{self.dim[0]}{message}{self.dim[1]}\x1b[K", end="", file=sys.stderr)

    def text(self, delta: str) -> None:
        if not self.wrote and self.reasoned:
            sys.stderr.write("\n")  # reasoning done: end its line
        elif not self.wrote and sys.stderr.isatty():
            sys.stderr.write("\r\x1b[K")  # the progress line gives way to the answer
        self.wrote = True
        sys.stdout.write(delta)
        sys.stdout.flush()

    def reasoning(self, delta: str) -> None:
        if self.show_reasoning:
            self.reasoned = True
            sys.stderr.write(f"{self.dim[0]}{delta}{self.dim[1]}")
            sys.stderr.flush()


def _cmd_explain(args: argparse.Namespace) -> int:
    """Stream an explanation of the definition at FILE:LINE[:COL]: ``actions.explain``, as
    the editor's Explain runs it (context engine, cache, quota, redaction, ignore rules)."""
    import asyncio

    from kimi_lsp.actions.errors import MissingApiKey, user_errors
    from kimi_lsp.actions.explain import explain
    from kimi_lsp.actions.factory import open_services
    from kimi_lsp.config import load_settings

    found = _read_target("explain", str(args.location))
    if found is None:
        return 2
    path, line, col, text = found
    settings = load_settings().settings
    if not settings.has_api_key:
        print(f"kimi-lsp explain: {MissingApiKey().message}", file=sys.stderr)
        return 2
    sink = _StdoutSink(show_reasoning=args.show_reasoning)

    async def run() -> int:
        services = await asyncio.to_thread(open_services, settings, [_workspace_root(path)])
        try:
            result = await explain(services, path, text, line, col, sink)
        finally:
            await services.aclose()
        sys.stdout.write("\n")
        if result.answer.cached:
            print("(a cached answer: nothing was sent)", file=sys.stderr)
        elif result.answer.finish_reason == "length":
            print("(the answer was cut short at the output budget)", file=sys.stderr)
        return 0

    try:
        return asyncio.run(run())
    except user_errors() as exc:
        if sink.wrote:
            sys.stdout.write("\n")
        print(f"kimi-lsp explain: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _cmd_quota(args: argparse.Namespace) -> int:
    """Limits, usage in the current windows, the queue of waiting requests, cool-down, the
    last day's tokens and cost, and what the response cache saved — as every process of this
    user (or, with Redis, the team) sees them."""
    import asyncio
    import json

    from kimi_lsp.actions.factory import open_governor
    from kimi_lsp.cache import open_cache
    from kimi_lsp.config import load_settings
    from kimi_lsp.llm import total_cost_usd
    from kimi_lsp.quota.report import reserve_tradeoff, tier_advice

    settings = load_settings().settings
    snap = open_governor(settings).snapshot()
    snap["costUsdLastDay"] = round(total_cost_usd(snap["byModel"]), 6)

    async def cache_stats() -> dict[str, object]:
        cache = open_cache(settings.cache, settings.state_dir)
        try:
            stats = await cache.stats()
            saved = {
                m: {
                    "input": u.prompt_tokens,
                    "cached": u.cached_tokens,
                    "output": u.completion_tokens,
                }
                for m, u in stats.saved.items()
            }
            return {
                "where": cache.where,
                "hits": stats.hits,
                "misses": stats.misses,
                "tokensSaved": stats.tokens_saved,
                "usdSaved": round(total_cost_usd(saved), 6),
            }
        finally:
            await cache.aclose()

    try:
        snap["cache"] = asyncio.run(cache_stats())
    except Exception as exc:  # the report is still useful without the cache's part
        snap["cache"] = {"problem": str(exc)}
    if args.json:
        print(json.dumps(snap, indent=2))
        return 0
    lim = snap["limits"]

    def show(v: object) -> str:
        return "unlimited" if v is None else str(v)

    src = snap["sources"]
    print(
        f"tier {settings.tier}"
        + (" (assumed: KIMI_LSP_TIER is not set)" if snap["tierAssumed"] else "")
        + (" (limits shrunk after 429s)" if snap["shrunk"] else "")
        + f" — {snap['store']}"
    )
    if snap["fallback"]:
        print(f"  note: {snap['fallback']}")
    conc = f"{snap['openRequests']} open of {show(lim['concurrency'])}"
    print(f"  concurrency  {conc}  [{src['concurrency']}]")
    rpm = f"{snap['requestsLastMinute']} in the last minute of {show(lim['rpm'])}"
    print(f"  requests     {rpm}  [{src['rpm']}]")
    print(f"  tokens/min   {snap['tokensLastMinute']} of {show(lim['tpm'])}  [{src['tpm']}]")
    print(f"  tokens/day   {snap['tokensLastDay']} of {show(lim['tpd'])}  [{src['tpd']}]")
    if snap["concurrencyProven"] is not None:
        print(
            f"  ramp         {snap['concurrencyProven']} requests at once seen to fit; admission "
            "grows one past that until Kimi states its concurrency"
        )
    if advice := tier_advice(snap):
        print(f"  advice       {advice}")
    print(f"  reserve      {snap['reserve']:.0%} of each limit kept for interactive work")
    if tradeoff := reserve_tradeoff(snap):
        print(f"  trade-off    {tradeoff}")
    queue = snap["queue"]
    line = f"  queue        {queue['interactive']} interactive, {queue['batch']} batch waiting"
    head = queue["head"]
    if head is not None:
        first = "batch" if head["batch"] else "interactive"
        line += f"; the first ({first}) has waited {head['waitedSeconds']:.0f} s"
        if head["waitingFor"]:
            line += f", {head['seconds']:.0f} s more for {head['waitingFor']}"
    print(line)
    if snap["cooldownSeconds"]:
        print(f"  cool-down    {snap['cooldownSeconds']:.0f} s left")
    print(f"  cost         ${snap['costUsdLastDay']:.4f} in the last 24 hours (list prices)")
    cache = snap["cache"]
    print(f"cache: {cache}")
    return 0


def _cmd_refactor(args: argparse.Namespace) -> int:
    """Refactor the files that use the symbol at --symbol (or match --scope) under the current
    folder; print a unified diff and write the files (unless --dry-run)."""
    import asyncio
    from pathlib import Path

    from kimi_lsp.actions.errors import user_errors
    from kimi_lsp.actions.factory import open_services
    from kimi_lsp.actions.workspace import plan_workspace, run_workspace
    from kimi_lsp.config import load_settings
    from kimi_lsp.positions import read_text

    symbol = _location(args.symbol) if args.symbol else None
    if args.symbol and symbol is None:
        print(
            f"kimi-lsp refactor: expected --symbol FILE:LINE[:COL], got {args.symbol!r}",
            file=sys.stderr,
        )
        return 2
    if not args.scope and symbol is None:
        print(
            "kimi-lsp refactor: say which files: --symbol FILE:LINE[:COL] (the symbol there "
            "and every file that uses it) or --scope GLOB (e.g. 'src/**/*.py')",
            file=sys.stderr,
        )
        return 2
    settings = load_settings().settings
    root = Path.cwd()

    def read(path: Path) -> str | None:
        return read_text(path, strict=True)

    class Progress:
        def progress(self, message: str) -> None:
            print(f"\r{message}   ", end="", file=sys.stderr, flush=True)

        def text(self, delta: str) -> None:
            pass

        def reasoning(self, delta: str) -> None:
            pass

    async def run() -> int:
        services = await asyncio.to_thread(open_services, settings, [root])
        try:
            plan = plan_workspace(services, args.instruction, read, scope=args.scope, symbol=symbol)
            cost = plan.cost_usd(settings.model)
            print(
                f"{len(plan.files)} files, ~{plan.tokens} tokens"
                + (f", ~${cost:.2f}" if cost is not None else ""),
                file=sys.stderr,
            )
            result = await run_workspace(services, plan, Progress(), read)
        except user_errors() as exc:
            print(f"\nkimi-lsp refactor: {exc}", file=sys.stderr)
            return 1
        finally:
            await services.aclose()
        print(file=sys.stderr)
        sys.stdout.write(result.diff)
        before = {f.path: f.text for f in plan.files}
        for r in result.results:
            if r.error:
                print(f"failed: {r.path}: {r.error}", file=sys.stderr)
                continue
            changed = r.new_text is not None and r.new_text != before[r.path]
            if changed and r.path not in result.stale and not args.dry_run:
                r.path.write_text(r.new_text or "", encoding="utf-8")
        for path, why in result.stale.items():
            print(f"skipped: {path}: {why}", file=sys.stderr)
        return 1 if any(r.error for r in result.results) else 0

    return asyncio.run(run())


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
    p.add_argument(
        "--budget",
        type=int,
        default=None,
        help="tokens of repository context (the target file's window is counted apart)",
    )
    p.add_argument(
        "--total-budget", type=int, default=None, help="cap on the whole prompt (contextBudget)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_context)

    p = sub.add_parser("explain", help="stream an explanation of the symbol at FILE:LINE")
    p.add_argument("location", metavar="FILE:LINE[:COL]")
    p.add_argument("--show-reasoning", action="store_true", help="show reasoning on stderr")
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser("quota", help="show limits, usage, queue and cool-down")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_quota)

    p = sub.add_parser(
        "refactor",
        help="refactor the whole workspace; prints a unified diff",
        description=(
            "Refactor the files under the current folder that use a symbol (--symbol) or match "
            "globs (--scope): one Kimi request per file, then a unified diff with paths "
            "relative to the current folder, as git diff prints it, on stdout (progress on "
            "stderr). The files are written unless --dry-run; "
            "`kimi-lsp refactor ... --dry-run | git apply` applies the same change later."
        ),
    )
    p.add_argument(
        "instruction",
        help="what to change, in plain words, e.g. 'rename get_user to fetch_user' "
        "or 'add type hints'",
    )
    p.add_argument(
        "--scope",
        action="append",
        default=None,
        metavar="GLOB",
        help="the indexed files matching this glob, relative to the current folder "
        "(repeatable), e.g. --scope 'src/**/*.py' --scope 'tests/*.py'",
    )
    p.add_argument(
        "--symbol",
        metavar="FILE:LINE[:COL]",
        help="the symbol there and every file using it, e.g. --symbol crm/admin.py:12:5",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the diff, write nothing, e.g. kimi-lsp refactor 'add type hints' "
        "--scope 'src/*.py' --dry-run | git apply",
    )
    p.set_defaults(func=_cmd_refactor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from kimi_lsp.runtime import tune_collector

    tune_collector()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `kimi-lsp` is what editors run: the stdio server
        args.func, args.tcp = _cmd_serve, None
    rc = args.func(args)
    return int(rc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

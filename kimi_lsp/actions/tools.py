"""Index tools: functions Kimi may call when the packed context is not enough.

``definition(name)``, ``references(name, limit)``, ``outline(path)``, ``read(path, start_line,
end_line)`` and ``search(text, limit)`` answer from the live ``WorkspaceIndex``. Every result
obeys the same rules as the packed context: an ignored file (gitignore, .kimiignore, vendor)
is never read nor named, every text passes through secret redaction before it leaves, a
result never exceeds its token budget, and every line it quotes names its source
``path:line`` (1-based lines, paths relative to the workspace).

``IndexTools.call(name, arguments)`` never raises for bad input: a model's mistake (an unknown
tool, arguments that are not JSON, a file it may not read) comes back as the tool's text, so
the model can correct itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kimi_lsp.context.redact import redact
from kimi_lsp.index import Definition, WorkspaceIndex
from kimi_lsp.positions import read_text, relative, text_lines

RESULT_TOKENS = 1_500  # one tool result's share of the prompt
READ_MAX_LINES = 200
DEFAULT_LIMIT = 20
MAX_LIMIT = 50

TOOL_NAMES = ("definition", "references", "outline", "read", "search")


def _fn(name: str, description: str, properties: dict[str, Any], required: list[str]) -> Any:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


_NAME = {"type": "string", "description": "a name, bare or qualified (Class.method)"}
_PATH = {"type": "string", "description": "a file path relative to the workspace"}
_LIMIT = {"type": "integer", "description": f"at most this many results (≤ {MAX_LIMIT})"}

TOOL_SPECS: tuple[dict[str, Any], ...] = (
    _fn(
        "definition",
        "The signature, location and body of the definition with this name in the "
        "workspace (the best match), and where the other definitions of the name are.",
        {"name": _NAME},
        ["name"],
    ),
    _fn(
        "references",
        "Where a name is used in the workspace: path:line and the line's code.",
        {"name": _NAME, "limit": _LIMIT},
        ["name"],
    ),
    _fn(
        "outline",
        "The definitions of one file in source order: line, kind, name and signature.",
        {"path": _PATH},
        ["path"],
    ),
    _fn(
        "read",
        f"Lines of a workspace file, 1-based and inclusive (at most {READ_MAX_LINES}).",
        {
            "path": _PATH,
            "start_line": {"type": "integer", "description": "first line, 1-based"},
            "end_line": {"type": "integer", "description": "last line, inclusive"},
        },
        ["path", "start_line", "end_line"],
    ),
    _fn(
        "search",
        "Definitions whose names match a text (exact, prefix, substring, subsequence).",
        {"text": {"type": "string", "description": "part of a name"}, "limit": _LIMIT},
        ["text"],
    ),
)


def tool_specs() -> list[dict[str, Any]]:
    """The function definitions sent as ``tools`` (a fresh copy: callers may keep it)."""
    return json.loads(json.dumps(TOOL_SPECS))  # type: ignore[no-any-return]


@dataclass
class ToolResult:
    """What one tool call returned: the text for the model, the ``path:line`` sources it
    quoted, a one-line summary for the user ("looked up `X` in a.py"), and its size."""

    text: str
    summary: str
    sources: list[str] = field(default_factory=list)
    tokens: int = 0
    redactions: int = 0
    ok: bool = True


class ToolRefused(Exception):
    """A call the tools will not answer (an ignored file, a path outside the workspace)."""


class IndexTools:
    """The five tools over one index. ``estimate(text) -> tokens`` budgets each result."""

    def __init__(
        self,
        index: WorkspaceIndex,
        roots: Sequence[Path],
        estimate: Callable[[str], int],
        *,
        result_tokens: int = RESULT_TOKENS,
    ) -> None:
        self.index = index
        self.roots = [Path(os.path.abspath(r)) for r in roots]
        self.estimate = estimate
        self.result_tokens = result_tokens

    # -- entry point --------------------------------------------------------------------

    def call(self, name: str, arguments: str) -> ToolResult:
        """Run one tool call; a bad call is answered, never raised."""
        try:
            args = json.loads(arguments or "{}")
        except ValueError:
            return self._error(name, f"the arguments are not JSON: {arguments[:200]!r}")
        if not isinstance(args, dict):
            return self._error(name, "the arguments must be a JSON object")
        try:
            if name == "definition":
                return self.definition(_str(args, "name"))
            if name == "references":
                return self.references(_str(args, "name"), _int(args, "limit", DEFAULT_LIMIT))
            if name == "outline":
                return self.outline(_str(args, "path"))
            if name == "read":
                return self.read(
                    _str(args, "path"), _int(args, "start_line", 1), _int(args, "end_line", 1)
                )
            if name == "search":
                return self.search(_str(args, "text"), _int(args, "limit", DEFAULT_LIMIT))
        except (ToolRefused, ValueError) as exc:
            return self._error(name, str(exc))
        return self._error(name, f"there is no tool {name!r}; the tools: {', '.join(TOOL_NAMES)}")

    # -- the tools ----------------------------------------------------------------------

    def definition(self, name: str) -> ToolResult:
        found = self._definitions(name)
        if not found:
            return self._result(f"No definition named `{name}` in the workspace.", [], name, "")
        best = found[0]
        start, end = best.range.start_line, best.range.end_line
        lines = self._lines(best.path)[start : end + 1]
        where = self._loc(best.path, start)
        head = [
            f"{best.kind.value} {best.qualified_name} at {where}",
            f"signature: {best.signature}",
        ]
        body = [f"{start + 1 + i}: {line}" for i, line in enumerate(lines)]
        others = [f"also defined at {self._loc(d.path, d.range.start_line)}" for d in found[1:9]]
        return self._fit(
            head,
            body,
            others,
            sources=[where] + [o.removeprefix("also defined at ") for o in others],
            summary=f"looked up `{best.qualified_name}` in {self._rel(best.path)}",
            origin=best.path,
        )

    def references(self, name: str, limit: int = DEFAULT_LIMIT) -> ToolResult:
        limit = max(1, min(limit, MAX_LIMIT))
        found = self._definitions(name)
        if not found:
            return self._result(f"No definition named `{name}`, so no references.", [], name, "")
        refs = [
            r
            for r in self.index.references_to(found[0])
            if not self.index.is_ignored(r.path) and r.kind != "import"
        ]
        out, sources = [], []
        for r in refs[:limit]:
            src = self._lines(r.path)
            line = src[r.range.start_line].strip() if r.range.start_line < len(src) else ""
            loc = self._loc(r.path, r.range.start_line)
            out.append(f"{loc}: {line}")
            sources.append(loc)
        head = [
            f"{len(refs)} references to {found[0].qualified_name}"
            + (f" (first {limit})" if len(refs) > limit else "")
        ]
        return self._fit(head, out, [], sources=sources, summary=f"looked up the uses of `{name}`")

    def outline(self, path: str) -> ToolResult:
        p = self._path(path)
        defs = self.index.outline(p)
        rel = self._rel(p)
        body = [
            f"{d.range.start_line + 1}: {'  ' * (d.scope.count('.') + 1 if d.scope else 0)}"
            f"{d.kind.value} {d.qualified_name} — {d.signature}"
            for d in defs
        ]
        return self._fit(
            [f"outline of {rel} ({len(defs)} definitions)"],
            body,
            [],
            sources=[f"{rel}:1"],
            summary=f"read the outline of {rel}",
            origin=p,
        )

    def read(self, path: str, start_line: int, end_line: int) -> ToolResult:
        p = self._path(path)
        lines = self._lines(p)
        start = max(1, start_line)
        end = min(max(start, end_line), len(lines), start + READ_MAX_LINES - 1)
        rel = self._rel(p)
        if start > len(lines):
            return self._result(f"{rel} has {len(lines)} lines.", [], rel, "")
        body = [f"{n}: {lines[n - 1]}" for n in range(start, end + 1)]
        note = [] if end >= min(end_line, len(lines)) else [f"(cut at {READ_MAX_LINES} lines)"]
        return self._fit(
            [f"{rel} lines {start}-{end} of {len(lines)}"],
            body,
            note,
            sources=[f"{rel}:{start}"],
            summary=f"read {rel}:{start}-{end}",
            origin=p,
        )

    def search(self, text: str, limit: int = DEFAULT_LIMIT) -> ToolResult:
        limit = max(1, min(limit, MAX_LIMIT))
        found = [
            d for d in self.index.symbols(text, limit * 2) if not self.index.is_ignored(d.path)
        ]
        body, sources = [], []
        for d in found[:limit]:
            loc = self._loc(d.path, d.range.start_line)
            body.append(f"{d.qualified_name} ({d.kind.value}) {loc}")
            sources.append(loc)
        head = [f"{len(body)} names matching `{text}`"]
        return self._fit(
            head, body, [], sources=sources, summary=f"searched the index for `{text}`"
        )

    # -- helpers ------------------------------------------------------------------------

    def _definitions(self, name: str) -> list[Definition]:
        name = name.strip()
        if not name:
            raise ValueError("the name is empty")
        found = [d for d in self.index.definitions(name) if not self.index.is_ignored(d.path)]

        def rank(d: Definition) -> tuple[int, int, str]:
            exact = 0 if d.qualified_name == name or d.name == name else 1
            test = 1 if "test" in d.path.name.lower() else 0
            return exact, test, str(d.path)

        return sorted(found, key=rank)

    def _path(self, path: str) -> Path:
        if not path.strip():
            raise ValueError("the path is empty")
        raw = Path(path)
        candidates = [raw] if raw.is_absolute() else [r / raw for r in self.roots]
        for c in candidates:
            p = Path(os.path.abspath(c))
            if not any(p.is_relative_to(r) for r in self.roots):
                continue
            if self.index.is_ignored(p):
                raise ToolRefused(f"{path} is not available (ignored by the workspace's rules)")
            if self.index.file_info(p) is not None:
                return p
        raise ToolRefused(f"{path} is not a file of the workspace index")

    def _lines(self, path: Path) -> list[str]:
        if self.index.is_ignored(path):  # never reached through the tools; kept as a guard
            return []
        return text_lines(read_text(path, self.index.document_text(path)) or "")

    def _rel(self, path: Path) -> str:
        return relative(path, self.roots)

    def _loc(self, path: Path, line0: int) -> str:
        return f"{self._rel(path)}:{line0 + 1}"

    def _error(self, name: str, message: str) -> ToolResult:
        text = f"error: {message}"
        return ToolResult(text, f"{name}: {message}", [], self.estimate(text), 0, False)

    def _result(self, text: str, sources: list[str], what: str, summary: str) -> ToolResult:
        clean, hidden = redact(text)
        summary = summary or f"looked up `{what}`: nothing found"
        return ToolResult(clean, summary, sources, self.estimate(clean), hidden)

    def _fit(
        self,
        head: list[str],
        body: list[str],
        tail: list[str],
        *,
        sources: list[str],
        summary: str,
        origin: Path | None = None,
    ) -> ToolResult:
        """Redact, then keep as many body lines as the budget allows (head and tail stay)."""
        keep = len(body)
        while True:
            shown = body[:keep]
            extra = [] if keep == len(body) else [f"… {len(body) - keep} more lines cut"]
            text = "\n".join([*head, *shown, *extra, *tail])
            clean, hidden = redact(text, origin)
            tokens = self.estimate(clean)
            if tokens <= self.result_tokens or keep == 0:
                return ToolResult(clean, summary, sources, tokens, hidden)
            keep = max(0, min(keep - 1, keep * self.result_tokens // max(tokens, 1)))


def _str(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str):
        raise ValueError(f"`{key}` must be a string")
    return value


def _int(args: dict[str, Any], key: str, default: int) -> int:
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"`{key}` must be an integer")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"`{key}` must be an integer") from None

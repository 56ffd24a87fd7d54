"""LSP shapes in and out: URIs, command arguments, positions, ranges, outlines.

Positions cross here: the client counts a ``character`` in the negotiated encoding
(``ls.encoding``), the library in UTF-16 (``kimi_lsp.positions``). Every position read from
the client goes through ``column_in`` (with the text of the line it is on), every position
sent through ``edits_out`` / ``range_out``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types as T
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace import Workspace

from kimi_lsp.edits.stream import convert_edits
from kimi_lsp.index import Span
from kimi_lsp.index.model import Definition, DefinitionKind
from kimi_lsp.positions import (
    DEFAULT,
    Encoding,
    convert_column,
    line_text,
    lsp_lines,
    read_text,
    valid_text,
)

from .protocol import RequestFailed

SYMBOL_KINDS = {
    DefinitionKind.CLASS: T.SymbolKind.Class,
    DefinitionKind.INTERFACE: T.SymbolKind.Interface,
    DefinitionKind.STRUCT: T.SymbolKind.Struct,
    DefinitionKind.ENUM: T.SymbolKind.Enum,
    DefinitionKind.TYPE: T.SymbolKind.TypeParameter,
    DefinitionKind.FUNCTION: T.SymbolKind.Function,
    DefinitionKind.METHOD: T.SymbolKind.Method,
    DefinitionKind.CONSTRUCTOR: T.SymbolKind.Constructor,
    DefinitionKind.FIELD: T.SymbolKind.Field,
    DefinitionKind.PROPERTY: T.SymbolKind.Property,
    DefinitionKind.CONSTANT: T.SymbolKind.Constant,
    DefinitionKind.VARIABLE: T.SymbolKind.Variable,
    DefinitionKind.MODULE: T.SymbolKind.Module,
    DefinitionKind.MACRO: T.SymbolKind.Function,
}


def fs_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def workspace_roots(workspace: Workspace) -> list[Path]:
    roots = [p for f in workspace.folders.values() if (p := fs_path(f.uri))]
    if not roots and workspace.root_path:
        roots = [Path(workspace.root_path)]
    return roots


def command_arg(args: tuple[Any, ...]) -> dict[str, Any]:
    """Every kimi command takes one argument, an object (docs/architecture.md)."""
    if not args:
        return {}
    if len(args) == 1 and isinstance(args[0], dict):
        return args[0]
    if len(args) == 1 and args[0] in ([], None):  # Lua's {} is encoded as [] (or omitted)
        return {}
    raise JsonRpcInvalidParams("kimi commands take one argument: an object (see the docs)")


def position(
    params: dict[str, Any], text: str, encoding: Encoding = DEFAULT
) -> tuple[int, int, Span | None]:
    """The cursor and the selection from a command's argument (LSP shapes, counted in the
    client's ``encoding`` on ``text``), in the library's UTF-16 columns."""
    rng = params.get("range")
    pos = params.get("position")
    try:
        selection = None
        if isinstance(rng, dict):
            a, b = rng["start"], rng["end"]
            selection = Span(
                int(a["line"]), int(a["character"]), int(b["line"]), int(b["character"])
            )
            if pos is None:
                pos = a
        if not isinstance(pos, dict):
            raise KeyError("position")
        line, col = int(pos["line"]), int(pos["character"])
    except (KeyError, TypeError, ValueError) as exc:
        raise JsonRpcInvalidParams(
            f"expected {{uri, position}} or {{uri, range}} with LSP positions; missing {exc}"
        ) from exc
    if encoding == DEFAULT:
        return line, col, selection
    lines = lsp_lines(text)
    if selection is not None:
        selection = span_in(lines, selection, encoding)
    return line, column_in(lines, line, col, encoding), selection


@dataclass(frozen=True)
class Where:
    """What a command's argument points at: the document, its text (``valid_text``, for the
    actions), the cursor and the selection in the library's UTF-16 columns."""

    uri: str
    path: Path
    text: str
    line: int
    col: int
    selection: Span | None


def where(workspace: Workspace, params: dict[str, Any], encoding: Encoding) -> Where:
    """``document`` and ``position`` of a command's argument, converted."""
    uri, path, text = document(workspace, params)
    line, col, selection = position(params, text, encoding)
    return Where(uri, path, valid_text(text), line, col, selection)


def column_in(lines: list[str], line: int, character: int, encoding: Encoding) -> int:
    """A column the client sent (on ``lines``, counted in ``encoding``) in UTF-16."""
    return convert_column(line_text(lines, line), character, encoding, DEFAULT)


def span_in(lines: list[str], span: Span, encoding: Encoding) -> Span:
    """A range the client sent as an index ``Span`` (UTF-16 columns)."""
    return Span(
        span.start_line,
        column_in(lines, span.start_line, span.start_col, encoding),
        span.end_line,
        column_in(lines, span.end_line, span.end_col, encoding),
    )


def position_in(text: str, pos: T.Position, encoding: Encoding) -> T.Position:
    """A position the client sent, recounted in UTF-16."""
    if encoding == DEFAULT:
        return pos
    return T.Position(pos.line, column_in(lsp_lines(text), pos.line, pos.character, encoding))


def range_in(text: str, rng: T.Range, encoding: Encoding) -> T.Range:
    """A range the client sent, recounted in UTF-16."""
    if encoding == DEFAULT:
        return rng
    lines = lsp_lines(text)
    return lsp_range(span_in(lines, index_span(rng), encoding))


def edits_out(text: str, edits: list[T.TextEdit], encoding: Encoding) -> list[T.TextEdit]:
    """Edits on ``text`` computed in UTF-16, counted as the client counts."""
    if encoding == DEFAULT:
        return list(edits)
    return convert_edits(text, edits, DEFAULT, encoding)


def range_out(lines: list[str], span: Span, encoding: Encoding) -> T.Range:
    """An index span (UTF-16) on the document of ``lines`` as a range the client reads."""
    if encoding == DEFAULT:
        return lsp_range(span)

    def col(line: int, c: int) -> int:
        return convert_column(line_text(lines, line), c, DEFAULT, encoding)

    return T.Range(
        start=T.Position(line=span.start_line, character=col(span.start_line, span.start_col)),
        end=T.Position(line=span.end_line, character=col(span.end_line, span.end_col)),
    )


def document(workspace: Workspace, params: dict[str, Any]) -> tuple[str, Path, str]:
    """The ``uri`` of a command's argument: the uri, its path and its text as the editor has it."""
    uri = params.get("uri")
    if not isinstance(uri, str):
        raise JsonRpcInvalidParams("missing 'uri'")
    doc = workspace.get_text_document(uri)
    try:
        text = doc.source
    except OSError as exc:
        raise RequestFailed(f"Cannot read {uri}: {exc.strerror or exc}") from exc
    return uri, Path(doc.path), text


def read_current(workspace: Workspace, path: Path) -> str | None:
    """A file as the editor has it: the open buffer, else the disk."""
    doc = workspace.text_documents.get(path.as_uri())
    return read_text(path, None if doc is None else str(doc.source), strict=True)


def lsp_range(span: Span) -> T.Range:
    return T.Range(
        start=T.Position(line=span.start_line, character=span.start_col),
        end=T.Position(line=span.end_line, character=span.end_col),
    )


def index_span(rng: T.Range) -> Span:
    return Span(rng.start.line, rng.start.character, rng.end.line, rng.end.character)


def document_symbols(
    defs: list[Definition], text: str | None = None, encoding: Encoding = DEFAULT
) -> list[T.DocumentSymbol]:
    """The outline (outer definitions first, in source order) nested by ranges, counted in
    ``encoding`` on ``text`` (the document the client has)."""
    lines = lsp_lines(text) if text is not None and encoding != DEFAULT else []
    out: list[T.DocumentSymbol] = []
    stack: list[tuple[Definition, list[T.DocumentSymbol]]] = []  # (definition, its children)
    for d in defs:
        children: list[T.DocumentSymbol] = []
        symbol = T.DocumentSymbol(
            name=d.name,
            kind=SYMBOL_KINDS.get(d.kind, T.SymbolKind.Variable),
            range=range_out(lines, d.range, encoding),
            selection_range=range_out(lines, d.name_range, encoding),
            detail=d.signature,
            children=children,
        )
        while stack and not stack[-1][0].range.encloses(d.range):
            stack.pop()
        (stack[-1][1] if stack else out).append(symbol)
        stack.append((d, children))
    return out


def workspace_symbol(
    d: Definition, lines: list[str] | None = None, encoding: Encoding = DEFAULT
) -> T.WorkspaceSymbol:
    """``lines``: the definition's file as the client has it (needed unless UTF-16)."""
    return T.WorkspaceSymbol(
        name=d.name,
        kind=SYMBOL_KINDS.get(d.kind, T.SymbolKind.Variable),
        location=T.Location(
            uri=d.path.as_uri(), range=range_out(lines or [], d.name_range, encoding)
        ),
        container_name=d.scope,
    )

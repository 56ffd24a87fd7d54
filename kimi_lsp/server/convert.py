"""LSP shapes in and out: URIs, command arguments, positions, ranges, outlines."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types as T
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace import Workspace

from kimi_lsp.index import Span
from kimi_lsp.index.model import Definition, DefinitionKind

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


def position(params: dict[str, Any]) -> tuple[int, int, Span | None]:
    """The cursor and the selection from a command's argument (LSP shapes)."""
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
        return int(pos["line"]), int(pos["character"]), selection
    except (KeyError, TypeError, ValueError) as exc:
        raise JsonRpcInvalidParams(
            f"expected {{uri, position}} or {{uri, range}} with LSP positions; missing {exc}"
        ) from exc


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
    if doc is not None:
        return str(doc.source)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def lsp_range(span: Span) -> T.Range:
    return T.Range(
        start=T.Position(line=span.start_line, character=span.start_col),
        end=T.Position(line=span.end_line, character=span.end_col),
    )


def index_span(rng: T.Range) -> Span:
    return Span(rng.start.line, rng.start.character, rng.end.line, rng.end.character)


def document_symbols(defs: list[Definition]) -> list[T.DocumentSymbol]:
    """The outline (outer definitions first, in source order) nested by ranges."""
    out: list[T.DocumentSymbol] = []
    stack: list[tuple[Definition, list[T.DocumentSymbol]]] = []  # (definition, its children)
    for d in defs:
        children: list[T.DocumentSymbol] = []
        symbol = T.DocumentSymbol(
            name=d.name,
            kind=SYMBOL_KINDS.get(d.kind, T.SymbolKind.Variable),
            range=lsp_range(d.range),
            selection_range=lsp_range(d.name_range),
            detail=d.signature,
            children=children,
        )
        while stack and not stack[-1][0].range.encloses(d.range):
            stack.pop()
        (stack[-1][1] if stack else out).append(symbol)
        stack.append((d, children))
    return out


def workspace_symbol(d: Definition) -> T.WorkspaceSymbol:
    return T.WorkspaceSymbol(
        name=d.name,
        kind=SYMBOL_KINDS.get(d.kind, T.SymbolKind.Variable),
        location=T.Location(uri=d.path.as_uri(), range=lsp_range(d.name_range)),
        container_name=d.scope,
    )

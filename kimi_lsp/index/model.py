"""The index's plain data: what a file defines, refers to and imports.

Everything here is immutable and hashable, so results can be cached, put in sets and used as
graph nodes. Lines and columns are 0-based; columns count UTF-16 code units, as LSP positions
do, so a `Span` can be handed to an editor unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple


class Span(NamedTuple):
    """A range in a file: 0-based lines, UTF-16 columns, end exclusive (LSP style)."""

    start_line: int
    start_col: int
    end_line: int
    end_col: int

    def contains(self, line: int, col: int) -> bool:
        """True when (line, col) lies inside, end included (a cursor after the last char)."""
        if line < self.start_line or line > self.end_line:
            return False
        if line == self.start_line and col < self.start_col:
            return False
        return not (line == self.end_line and col > self.end_col)

    def encloses(self, other: Span) -> bool:
        """True when `other` lies entirely inside this span."""
        return (self.start_line, self.start_col) <= (other.start_line, other.start_col) and (
            other.end_line,
            other.end_col,
        ) <= (self.end_line, self.end_col)


class DefinitionKind(StrEnum):
    """What a definition is. Values are stable strings (stored on disk, shown to users)."""

    CLASS = "class"
    INTERFACE = "interface"
    STRUCT = "struct"
    ENUM = "enum"
    TYPE = "type"  # type aliases, typedefs
    FUNCTION = "function"
    METHOD = "method"
    CONSTRUCTOR = "constructor"
    FIELD = "field"
    PROPERTY = "property"
    CONSTANT = "constant"
    VARIABLE = "variable"
    MODULE = "module"  # modules, namespaces, packages
    MACRO = "macro"


@dataclass(frozen=True, slots=True)
class Definition:
    """A named thing a file defines.

    `range` covers the whole definition (body included), `name_range` only its name.
    `scope` is the qualified name of the enclosing definition (`"Outer.Inner"`), or None at
    the top level; `qualified_name` joins the two. `signature` is the definition's first
    line, stripped. `doc_range` is the docstring or the comment block just above it.
    """

    name: str
    kind: DefinitionKind
    path: Path
    range: Span
    name_range: Span
    signature: str
    scope: str | None
    doc_range: Span | None
    language: str

    @property
    def qualified_name(self) -> str:
        return f"{self.scope}.{self.name}" if self.scope else self.name

    def __hash__(self) -> int:
        # Cheaper than hashing every field; equal definitions share path, name and position.
        return hash((self.path, self.name_range, self.name))


@dataclass(frozen=True, slots=True)
class Reference:
    """A use of a name: a call, a type annotation, a base class, an instantiation...

    `enclosing` is the qualified name of the innermost definition the reference sits in
    (None at the top level of the file). Matching a reference to its definition is by name:
    `WorkspaceIndex.references_to` does it.
    """

    name: str
    kind: str  # "call", "type", "class", "implementation", "attribute", ...
    path: Path
    range: Span
    enclosing: str | None


@dataclass(frozen=True, slots=True)
class Import:
    """An import/include/require/use as written (`module`), resolved later to workspace files."""

    module: str
    path: Path
    range: Span


@dataclass(frozen=True, slots=True)
class FileTags:
    """Everything extracted from one file's content (identified by `content_hash`)."""

    path: Path
    language: str
    content_hash: str
    definitions: tuple[Definition, ...]
    references: tuple[Reference, ...]
    imports: tuple[Import, ...]
    line_count: int
    size: int


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What the index knows about a file without its tags."""

    path: Path
    language: str
    content_hash: str
    size: int
    line_count: int
    definitions: int
    references: int
    source: str  # "disk", or "buffer" while an editor has the file open


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file discovery or indexing left out, and why (for logs and `kimi-lsp index`)."""

    path: Path
    reason: str  # "too large", "binary", "minified", "encoding", "unreadable"


@dataclass(slots=True)
class IndexStats:
    """Counts for `kimi-lsp index` and `kimi/status`."""

    files: int = 0
    definitions: int = 0
    references: int = 0
    languages: dict[str, int] = field(default_factory=dict)
    parsed: int = 0  # files (re)parsed by the last update; the others came from the database
    skipped: int = 0
    seconds: float = 0.0

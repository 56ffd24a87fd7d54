"""The workspace index: every definition, reference and import, live and persisted.

Tree-sitter grammars (one PyPI wheel per language) and tag queries (the grammars' own
``queries/tags.scm`` plus ours in ``kimi_lsp/index/queries/``) turn each file into a
`FileTags`. A `WorkspaceIndex` holds them in memory, keeps them current from editor buffers
(incremental re-parse) and from disk, and persists them in SQLite keyed by content hash.

Conventions: paths are absolute `Path`s; lines and columns are **0-based** and columns count
**UTF-16 code units** (LSP positions), in `Span(start_line, start_col, end_line, end_col)`.

API reference
-------------

``WorkspaceIndex(roots, *, state_dir=None, max_file_bytes=1_000_000, workers=None)``
    ``roots``: workspace folders. ``state_dir``: where ``index.sqlite3`` lives (None: memory
    only). ``workers``: processes for cold indexing (default: all cores).

Building and updating (blocking; the server runs them in a thread):

- ``update(on_progress=None) -> IndexStats``: discover files, load what the database has for
  unchanged content, parse the rest in parallel processes, drop vanished files, persist.
  ``on_progress(done, total)`` is called as files complete. Safe to query meanwhile: answers
  come from what is indexed so far.
- ``open_document(path, text)``, ``change_document(path, changes)``, ``close_document(path)``:
  the editor's buffer becomes the truth for that file. ``changes`` are LSP
  ``TextDocumentContentChangeEvent``s (lsprotocol objects or dicts): ``{"range": {"start":
  {"line", "character"}, "end": {...}}, "text"}`` with UTF-16 characters, or ``{"text"}`` for
  the whole document. Tree-sitter re-parses incrementally; only that file is re-extracted.
- ``file_changed_on_disk(path)``: re-read one closed file (created, changed or deleted).
- ``is_ignored(path) -> bool``: gitignore/.kimiignore/vendor rules; ignored files must never
  enter a prompt. (Also ``IgnoreRules(roots).is_ignored(path)`` on its own.)

Queries (cheap; in-memory):

- ``definitions(name) -> list[Definition]``: every definition named ``name`` (bare name, or a
  qualified ``"Class.method"``; a qualifier matching no definition, such as a module name in
  ``"pricing.price_of"``, falls back to the bare name).
- ``references_to(defn) -> list[Reference]``: uses of ``defn``'s name anywhere (the
  definition's own name excluded); name-based, like ctags and Aider's repo map.
- ``enclosing_definition(path, line, col, *, closed=False) -> Definition | None``: the
  innermost definition whose range contains the position (``closed``: of `closed_outline`).
- ``outline(path) -> list[Definition]``: the file's definitions in source order (nesting via
  ``Definition.scope`` and ranges).
- ``closed_outline(path) -> list[Definition]``: the outline of a brace language's text with
  the brackets it leaves open closed at its end (a function being typed has no ``}`` yet:
  its parse lost it, often with its class); definitions end by the text's end. The outline
  itself when nothing is open.
- ``imports_of(path) -> list[Path]``: workspace files this file imports (resolved).
- ``importers(path) -> list[Path]``: workspace files that import this file.
- ``file_graph() -> dict[Path, dict[Path, float]]``: referencing file -> {defining file:
  weight}; weight = references from the first to names defined in the second (a name defined
  in k files counts 1/k each) plus 1 per import; no self-edges.
- ``definition_graph() -> dict[Definition, dict[Definition, float]]``: enclosing definition
  of a reference -> {definition of the referenced name: weight}, same weighting; a local
  definition of the name wins over other files' ones, and names defined more than 32 times
  (``get``, ``__init__``) link nothing.
- ``files() -> list[Path]``; ``file_info(path) -> FileInfo | None``;
  ``file_tags(path) -> FileTags | None``; ``stats() -> IndexStats``.
- ``symbols(query, limit=100) -> list[Definition]``: name search, exact > prefix > substring >
  subsequence (workspace/symbol).
- ``prepare_queries()``: build the name maps now (the server does it after `update`).
- ``document_text(path) -> str | None``: an open buffer's current text (None when closed).
- Attributes: ``skipped`` (`SkippedFile`s of the last update), ``last_stats``,
  ``database_path``, ``database_rebuilt``, ``generation`` (an int that grows on every change
  to any file's tags: callers cache against it).

Costs: the first name query (``definitions``, ``references_to``, ``symbols``, graphs) builds
the name maps (~0.25 s for Django's 2,900 files); later edits update them incrementally.
``file_graph``, ``imports_of`` and ``importers`` are maintained row by row (an edit costs
its own file's row, ~5 ms on Django); ``definition_graph`` is rebuilt after any change
(~1.5 s on Django), so prefer the file graph on hot paths.
All methods are thread-safe (one re-entrant lock); a graph build holds it while it runs.
The server keeps one instance as ``KimiLanguageServer.index`` (None until `initialized`).

Lower level: ``extract_tags(path, source, language) -> FileTags``, ``language_for(path)``,
``LANGUAGES``, ``discover(roots, ...)``.
"""

from kimi_lsp.index.discovery import IgnoreRules, discover
from kimi_lsp.index.errors import BadDocumentChange, IndexError_, LanguageUnavailable
from kimi_lsp.index.extract import extract_tags
from kimi_lsp.index.languages import LANGUAGES, language_for
from kimi_lsp.index.model import (
    Definition,
    DefinitionKind,
    FileInfo,
    FileTags,
    Import,
    IndexStats,
    Reference,
    SkippedFile,
    Span,
)
from kimi_lsp.index.workspace import ProgressCallback, WorkspaceIndex

__all__ = [
    "LANGUAGES",
    "BadDocumentChange",
    "Definition",
    "DefinitionKind",
    "FileInfo",
    "FileTags",
    "IgnoreRules",
    "Import",
    "IndexError_",
    "IndexStats",
    "LanguageUnavailable",
    "ProgressCallback",
    "Reference",
    "SkippedFile",
    "Span",
    "WorkspaceIndex",
    "discover",
    "extract_tags",
    "language_for",
]

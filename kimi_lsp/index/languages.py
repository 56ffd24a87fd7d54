"""Languages: which grammar wheel parses a file, and the tag query that reads it.

Each language's query is our own ``queries/<lang>.scm`` (methods, constants, type aliases,
imports and references the upstream tags miss) followed by the upstream ``tags.scm`` of the
languages it inherits from and its own. Ours comes first because, when two patterns match
the same name, the earlier pattern decides the kind.
"""

from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass
from pathlib import Path

from tree_sitter import Language, Parser, Query

from kimi_lsp.index.errors import LanguageUnavailable

_QUERIES = Path(__file__).resolve().parent / "queries"


@dataclass(frozen=True, slots=True)
class LanguageSpec:
    """How to load one language: the wheel's module, its entry point, and inheritance."""

    name: str
    module: str
    entry: str
    extensions: tuple[str, ...]
    inherits: tuple[str, ...] = ()
    upstream_tags: bool = True  # the wheel ships queries/tags.scm
    ours: tuple[str, ...] = ()  # our queries/<name>.scm files to load (default: its own)


LANGUAGES: dict[str, LanguageSpec] = {
    spec.name: spec
    for spec in (
        LanguageSpec("python", "tree_sitter_python", "language", (".py", ".pyi")),
        LanguageSpec(
            "javascript",
            "tree_sitter_javascript",
            "language",
            (".js", ".mjs", ".cjs", ".jsx"),
            ours=("javascript", "jsx", "javascript-only"),
        ),
        LanguageSpec(
            "typescript",
            "tree_sitter_typescript",
            "language_typescript",
            (".ts", ".mts", ".cts"),
            inherits=("javascript",),
            ours=("typescript", "javascript"),
        ),
        LanguageSpec(
            "tsx",
            "tree_sitter_typescript",
            "language_tsx",
            (".tsx",),
            inherits=("javascript",),
            ours=("typescript", "javascript", "jsx"),
        ),
        LanguageSpec("go", "tree_sitter_go", "language", (".go",)),
        LanguageSpec("rust", "tree_sitter_rust", "language", (".rs",)),
        LanguageSpec("java", "tree_sitter_java", "language", (".java",)),
        LanguageSpec("c", "tree_sitter_c", "language", (".c", ".h")),
        LanguageSpec(
            "cpp",
            "tree_sitter_cpp",
            "language",
            (".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".h++", ".ipp"),
            inherits=("c",),
            ours=("cpp", "c"),
        ),
        LanguageSpec("ruby", "tree_sitter_ruby", "language", (".rb", ".rake", ".gemspec")),
        LanguageSpec("lua", "tree_sitter_lua", "language", (".lua",)),
        LanguageSpec("c_sharp", "tree_sitter_c_sharp", "language", (".cs",), upstream_tags=False),
        LanguageSpec("php", "tree_sitter_php", "language_php", (".php", ".phtml")),
        LanguageSpec("scala", "tree_sitter_scala", "language", (".scala", ".sc")),
    )
}

_BY_EXTENSION: dict[str, str] = {
    ext: spec.name for spec in LANGUAGES.values() for ext in spec.extensions
}


def language_for(path: str | Path) -> str | None:
    """The language of a file by its extension, or None when the index does not read it."""
    name = str(path)
    dot = name.rfind(".")
    if dot < 0:
        return None
    return _BY_EXTENSION.get(name[dot:].lower())


@functools.cache
def ts_language(name: str) -> Language:
    """The tree-sitter Language for `name` (cached per process)."""
    spec = LANGUAGES[name]
    try:
        module = importlib.import_module(spec.module)
        return Language(getattr(module, spec.entry)())
    except (ImportError, AttributeError, ValueError) as exc:
        raise LanguageUnavailable(name, spec.module, exc) from exc


def new_parser(name: str) -> Parser:
    return Parser(ts_language(name))


def _upstream_tags(name: str) -> str:
    spec = LANGUAGES[name]
    if not spec.upstream_tags:
        return ""
    module = importlib.import_module(spec.module)
    tags = Path(module.__file__ or "").parent / "queries" / "tags.scm"
    return tags.read_text(encoding="utf-8") if tags.is_file() else ""


def _ours(names: tuple[str, ...], suffix: str) -> list[str]:
    files = (_QUERIES / f"{n}{suffix}" for n in names)
    return [f.read_text(encoding="utf-8") for f in files if f.is_file()]


def query_source(name: str) -> str:
    """The tag query for `name`: ours, inherited upstream tags, its own upstream tags, then
    our `.late.scm` fallbacks (patterns that must lose to upstream ones on the same name)."""
    spec = LANGUAGES[name]
    ours = spec.ours or (name,)
    parts = _ours(ours, ".scm")
    parts.extend(_upstream_tags(parent) for parent in spec.inherits)
    parts.append(_upstream_tags(name))
    parts.extend(_ours(ours, ".late.scm"))
    return "\n".join(parts)


_PREDICATE = re.compile(r"\(#[^()]*\)")
_CAPTURE = re.compile(r"@([\w.-]+)")


def capture_names(text: str) -> list[str]:
    """The ``@capture`` names a piece of query text uses, in order (repeats kept)."""
    return _CAPTURE.findall(text)


@functools.cache
def tags_query(name: str) -> Query:
    """The compiled tag query for `name` (cached per process).

    The node a ``@reference.*`` capture marks is never read (a reference is its ``@name``),
    so those captures are disabled, unless a predicate tests them: recording them cost about
    a tenth of the query's time on a big repository.
    """
    source = query_source(name)
    query = Query(ts_language(name), source)
    tested = {c for p in _PREDICATE.findall(source) for c in capture_names(p)}
    for i in range(query.capture_count):
        capture = query.capture_name(i)
        if capture.startswith("reference.") and capture not in tested:
            query.disable_capture(capture)
    return query

"""Which files the index reads: ignore rules, size and content checks, a safe folder walk.

Rules, in order: vendor/generated folders (``node_modules``, ``.git``, ``dist``...), every
``.gitignore`` from the workspace root down to the file's folder, every ``.kimiignore`` (same
syntax; for files a user wants out of prompts but not out of git), ``.git/info/exclude``.
`IgnoreRules.is_ignored` answers the same question for any single path, so the context engine
can refuse ignored files even when they come from somewhere other than the index.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

from kimi_lsp.index.languages import language_for

log = logging.getLogger(__name__)

IGNORE_FILES = (".gitignore", ".kimiignore")
# Folders that are someone else's code or generated output; skipped by default.
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".jj",
        "node_modules",
        "bower_components",
        "jspm_packages",
        "vendor",
        "third_party",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".eggs",
        "site-packages",
        "dist",
        "build",
        "out",
        "target",
        ".next",
        ".nuxt",
        ".svelte-kit",
        ".gradle",
        ".idea",
        ".vscode",
        "Pods",
        "DerivedData",
        "coverage",
        ".cache",
        "generated",
        "__generated__",
    }
)
MINIFIED_SUFFIXES = (".min.js", ".min.mjs", ".min.css", ".bundle.js", "-min.js")
_SNIFF = 8192
_MINIFIED_LINE = 1000  # average line length (bytes) above which a file is minified/generated


@dataclass(frozen=True, slots=True)
class _DirRules:
    directory: Path
    spec: GitIgnoreSpec


class IgnoreRules:
    """Gitignore-style rules of a set of workspace roots; answers `is_ignored(path)`.

    Per-folder rule files are read once and cached; `forget(folder)` drops a folder's cache
    after one of its ignore files changed.
    """

    def __init__(self, roots: Iterable[Path], skipped_dirs: frozenset[str] = SKIPPED_DIRS):
        self.roots = [Path(os.path.abspath(r)) for r in roots]
        self.skipped_dirs = skipped_dirs
        self._cache: dict[Path, _DirRules | None] = {}

    def forget(self, directory: Path | None = None) -> None:
        if directory is None:
            self._cache.clear()
        else:
            self._cache.pop(directory, None)

    def rules_in(self, directory: Path, names: set[str] | None = None) -> _DirRules | None:
        """The rules declared by ignore files in `directory` itself (cached). `names`, the
        folder's entries when the caller has listed it, saves opening absent files."""
        if directory in self._cache:
            return self._cache[directory]
        lines: list[str] = []
        for name in IGNORE_FILES:
            if names is None or name in names:
                lines.extend(_read_lines(directory / name))
        if directory in self.roots:
            lines.extend(_read_lines(directory / ".git" / "info" / "exclude"))
        rules = _DirRules(directory, GitIgnoreSpec.from_lines(lines)) if lines else None
        self._cache[directory] = rules
        return rules

    def root_of(self, path: Path) -> Path | None:
        best: Path | None = None
        for root in self.roots:
            if (path == root or root in path.parents) and (
                best is None or len(root.parts) > len(best.parts)
            ):
                best = root
        return best

    def matches(self, chain: list[_DirRules], path: Path, is_dir: bool) -> bool:
        """Whether the rules of `chain` (outermost first) ignore `path`; inner files win."""
        verdict = False
        for rules in chain:
            rel = path.relative_to(rules.directory).as_posix()
            if is_dir:
                rel += "/"
            result = rules.spec.check_file(rel)
            if result.include is not None:
                verdict = result.include
        return verdict

    def is_ignored(self, path: str | Path) -> bool:
        """True when `path` must stay out of the index and out of every prompt.

        Paths outside every root are not ignored by these rules (the caller decides whether
        to read them); any ignored ancestor folder ignores everything below it.
        """
        p = Path(os.path.abspath(path))
        root = self.root_of(p)
        if root is None:
            return False
        rel_parts = p.relative_to(root).parts
        chain: list[_DirRules] = []
        current = root
        for i, part in enumerate(rel_parts):
            rules = self.rules_in(current)
            if rules is not None:
                chain.append(rules)
            current = current / part
            is_dir = i < len(rel_parts) - 1 or p.is_dir()
            if is_dir and part in self.skipped_dirs:
                return True
            if chain and self.matches(chain, current, is_dir):
                return True
        return False

    def why_ignored(self, path: str | Path) -> str | None:
        """The rule that ignores `path`, for a message (``.kimiignore:2 `secret/` `` or the
        default-skipped folder); None when `path` is not ignored. Reads the rule files again:
        meant for one refusal, not for walks."""
        p = Path(os.path.abspath(path))
        root = self.root_of(p)
        if root is None:
            return None
        rel_parts = p.relative_to(root).parts
        folders: list[Path] = []
        current = root
        for i, part in enumerate(rel_parts):
            if self.rules_in(current) is not None:
                folders.append(current)
            current = current / part
            is_dir = i < len(rel_parts) - 1 or p.is_dir()
            if is_dir and part in self.skipped_dirs:
                return f"the folder {part}/ (skipped by default)"
            found = self._last_rule(folders, current, is_dir)
            if found is not None:
                return found
        return None

    def _last_rule(self, folders: list[Path], path: Path, is_dir: bool) -> str | None:
        """The last rule deciding `path` in `folders` (outermost first) when it ignores."""
        verdict: tuple[bool, str] | None = None
        for folder in folders:
            files = [folder / name for name in IGNORE_FILES]
            if folder in self.roots:
                files.append(folder / ".git" / "info" / "exclude")
            rel = path.relative_to(folder).as_posix() + ("/" if is_dir else "")
            for file in files:
                lines = _read_lines(file)
                result = GitIgnoreSpec.from_lines(lines).check_file(rel) if lines else None
                if result is not None and result.include is not None and result.index is not None:
                    shown = file.relative_to(self.root_of(file) or folder).as_posix()
                    rule = lines[result.index].strip()
                    verdict = (result.include, f"{shown}:{result.index + 1} `{rule}`")
        return verdict[1] if verdict is not None and verdict[0] else None


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def skip_reason(path: Path, size: int, max_file_bytes: int) -> str | None:
    """Reasons known from the name and size alone (before reading)."""
    if size > max_file_bytes:
        return "too large"
    if path.name.endswith(MINIFIED_SUFFIXES):
        return "minified"
    return None


def content_skip_reason(source: bytes) -> str | None:
    """Reasons known from the content: binary (NUL bytes), minified, not UTF-8."""
    if b"\0" in source[:_SNIFF]:
        return "binary"
    if len(source) > _SNIFF:
        lines = source.count(b"\n") + 1
        if len(source) / lines > _MINIFIED_LINE:
            return "minified"
    try:
        source.decode("utf-8")
    except UnicodeDecodeError:
        return "encoding"
    return None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file discovery found: its path, language, size and modification time."""

    path: Path
    language: str
    size: int
    mtime_ns: int


def discover(
    rules: IgnoreRules,
    max_file_bytes: int = 1_000_000,
    skipped: list[tuple[Path, str]] | None = None,
) -> Iterator[Candidate]:
    """Walk every root and yield the files the index should read.

    Real folders and files come first; symlinks are followed afterwards and only to things
    not seen yet (by device and inode), so loops end and aliases do not index a file twice.
    Unreadable folders are logged and skipped. Files over the size limit or named like
    minified bundles are reported in `skipped` (when given) with the reason.
    """
    walk = _Walk(rules, max_file_bytes, skipped)
    for root in rules.roots:
        yield from walk.folder(root, [])
    while walk.deferred:
        path, chain, is_dir = walk.deferred.pop(0)
        if is_dir:
            yield from walk.folder(path, chain)
        else:
            yield from walk.file(path, chain)


class _Walk:
    def __init__(
        self, rules: IgnoreRules, max_file_bytes: int, skipped: list[tuple[Path, str]] | None
    ) -> None:
        self.rules = rules
        self.max_file_bytes = max_file_bytes
        self.skipped = skipped
        self.seen_dirs: set[tuple[int, int]] = set()
        self.seen_files: set[tuple[int, int]] = set()
        self.deferred: list[tuple[Path, list[_DirRules], bool]] = []

    def folder(self, directory: Path, chain: list[_DirRules]) -> Iterator[Candidate]:
        rules = self.rules
        try:
            st = directory.stat()
        except OSError as exc:
            log.warning("index: cannot read folder %s: %s", directory, exc)
            return
        key = (st.st_dev, st.st_ino)
        if key in self.seen_dirs:
            log.debug("index: %s was already walked (symlink loop or alias)", directory)
            return
        self.seen_dirs.add(key)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            log.warning("index: cannot list folder %s: %s", directory, exc)
            return
        own = rules.rules_in(directory, {e.name for e in entries})
        if own is not None:
            chain = [*chain, own]
        subdirs: list[Path] = []
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir()  # follows symlinks; a broken link is neither
                is_link = entry.is_symlink()
            except OSError:
                continue
            if is_dir:
                if name in rules.skipped_dirs:
                    continue
                sub = directory / name
                if chain and rules.matches(chain, sub, True):
                    continue
                if is_link:
                    self.deferred.append((sub, chain, True))
                else:
                    subdirs.append(sub)
                continue
            if language_for(name) is None:
                continue
            if is_link:
                self.deferred.append((directory / name, chain, False))
            else:
                try:
                    est = entry.stat()
                except OSError:
                    continue
                yield from self.file(directory / name, chain, est)
        for sub in subdirs:
            yield from self.folder(sub, chain)

    def file(
        self, path: Path, chain: list[_DirRules], st: os.stat_result | None = None
    ) -> Iterator[Candidate]:
        language = language_for(path.name)
        if language is None:
            return
        if chain and self.rules.matches(chain, path, False):
            return
        if st is None:
            try:
                st = os.stat(path)
            except OSError as exc:
                log.warning("index: cannot stat %s: %s", path, exc)
                return
        if not stat.S_ISREG(st.st_mode):
            return
        key = (st.st_dev, st.st_ino)
        if key in self.seen_files:
            return
        self.seen_files.add(key)
        reason = skip_reason(path, st.st_size, self.max_file_bytes)
        if reason is not None:
            if self.skipped is not None:
                self.skipped.append((path, reason))
            return
        yield Candidate(path, language, st.st_size, st.st_mtime_ns)

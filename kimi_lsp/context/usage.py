"""What the project does with a name: for each receiver name, the members written after it
(``opts.get_field``), counted in files, over the saved files of the workspace in the
languages the type flow types (per family: Python, JavaScript/TypeScript, Java, Go, Rust).

A project's names follow conventions that say what a variable holds: across Django,
``opts.`` is followed by ``get_field``, ``model_name`` and ``app_label``, ``qs.`` by
``filter``, ``order_by`` and ``count``. The type flow types a name no rule types by the class
whose members account for most of what the project does with that name, and the class
outlines rank a class's members by how often the project uses them on the names the code
holds (a class of 300 members shows the dozen the code is likeliest to call next).

One table per index (`member_uses`), made from the files' saved contents (an unsaved buffer
counts as the file on disk): it moves on when a file is saved, not on every keystroke, and
is the same for the same workspace whatever the editor has open. A file's pairs are read
once per content; a save re-reads only the files it changed.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from kimi_lsp.index import WorkspaceIndex

# ``a.b`` where ``a`` is a whole name, not the tail of ``x.a`` (whose receiver is ``x.a``),
# and both are whole ASCII names: ``naïve.x`` and ``x.café`` give no ``ve`` or ``caf``
# (a byte >= 0x80 is part of a non-ASCII letter, since UTF-8 spells one with such bytes).
_PAIR = re.compile(rb"(?<![\w.\x80-\xff])([A-Za-z_]\w*+)\.([A-Za-z_]\w*+)(?![\x80-\xff])")
# The languages counted, each in its family (a TypeScript name's convention is no Python
# name's): what `typeflow` types.
_FAMILY = {
    "python": "python",
    "typescript": "js",
    "tsx": "js",
    "javascript": "js",
    "java": "java",
    "go": "go",
    "rust": "rust",
}
_EMPTY: Mapping[str, int] = {}


def file_pairs(data: bytes) -> frozenset[tuple[str, str]]:
    """The distinct (receiver, member) pairs a source writes, ``self``/``cls``/``this`` and
    dunders left out (the enclosing class says those)."""
    out = set()
    for a, b in set(_PAIR.findall(data)):
        if a in (b"self", b"cls", b"this") or b.startswith(b"__"):
            continue
        out.add((a.decode("ascii"), b.decode("ascii")))
    return frozenset(out)


class MemberUses:
    """(language family, receiver name) -> member -> the number of files that write
    ``receiver.member``."""

    def __init__(self, index: WorkspaceIndex) -> None:
        self.index = index
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._files: dict[Path, tuple[str, str, frozenset[tuple[str, str]]]] = {}
        self._table: dict[tuple[str, str], Counter[str]] = {}
        self.files_read = 0  # by the syncs so far (for tests)

    def of(self, receiver: str, language: str = "python") -> Mapping[str, int]:
        """What the project's files of ``language``'s family write after ``receiver.``, with
        how many files write each."""
        self.sync()
        return self._table.get((_FAMILY.get(language, language), receiver), _EMPTY)

    def sync(self) -> None:
        """Bring the table in line with the saved files (free when none changed)."""
        index = self.index
        with self._lock:
            generation = index.saved_generation
            if generation == self._generation:
                return
            seen: set[Path] = set()
            for path in index.files():
                info = index.file_info(path)
                if info is None or info.language not in _FAMILY:
                    continue
                family = _FAMILY[info.language]
                seen.add(path)
                old = self._files.get(path)
                saved = info.content_hash if info.source == "disk" else None
                if old is not None and saved is not None and old[0] == saved:
                    continue
                try:  # a buffer's file: its saved content, as the ranking counts it
                    data = path.read_bytes()
                except OSError:
                    data = b""
                pairs = file_pairs(data)
                self.files_read += 1
                if old is not None and old[1:] == (family, pairs):
                    self._files[path] = (saved or "", family, pairs)
                    continue
                if old is not None:
                    self._count(old[1], old[2], -1)
                self._count(family, pairs, 1)
                self._files[path] = (saved or "", family, pairs)
            for path in self._files.keys() - seen:
                _, family, pairs = self._files.pop(path)
                self._count(family, pairs, -1)
            self._generation = generation

    def _count(self, family: str, pairs: frozenset[tuple[str, str]], step: int) -> None:
        table = self._table
        for receiver, member in pairs:
            key = (family, receiver)
            members = table.get(key)
            if members is None:
                members = table[key] = Counter()
            members[member] += step
            if members[member] <= 0:
                del members[member]
                if not members:
                    del table[key]


_TABLES: weakref.WeakKeyDictionary[WorkspaceIndex, MemberUses] = weakref.WeakKeyDictionary()
_TABLES_LOCK = threading.Lock()


def member_uses(index: WorkspaceIndex) -> MemberUses:
    """The index's table (made on first use, then kept in step with its saved files)."""
    with _TABLES_LOCK:
        table = _TABLES.get(index)
        if table is None:
            table = _TABLES[index] = MemberUses(index)
        return table

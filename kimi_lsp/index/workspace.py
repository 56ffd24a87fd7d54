"""`WorkspaceIndex`: the resident index of a workspace (see the package docstring for the API).

Per file it keeps the compact tags (a marshal blob from a worker or the database, decoded on
first use), plus name -> files maps for definitions and references, maintained incrementally
once a query has needed them. Open editor buffers override the disk. Every mutation bumps a
generation counter that invalidates the cached import resolution and graphs.
"""

from __future__ import annotations

import gc
import logging
import marshal
import multiprocessing
import os
import threading
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from operator import itemgetter
from pathlib import Path
from typing import Any, cast

from kimi_lsp.index.discovery import (
    IGNORE_FILES,
    Candidate,
    IgnoreRules,
    content_skip_reason,
    discover,
    skip_reason,
)
from kimi_lsp.index.documents import Document
from kimi_lsp.index.extract import (
    BRACKET_LANGUAGES,
    TAG_DEFS,
    TAG_IMPORTS,
    TAG_REFS,
    RawTags,
    close_brackets,
    content_hash,
    decode,
    decode_definitions,
    extract_raw,
    extract_tags,
)
from kimi_lsp.index.languages import language_for
from kimi_lsp.index.model import (
    Definition,
    FileInfo,
    FileTags,
    IndexStats,
    Reference,
    SkippedFile,
    Span,
)
from kimi_lsp.index.resolve import ImportResolver
from kimi_lsp.index.store import IndexStore, StoredFile, database_path
from kimi_lsp.positions import DEFAULT, Encoding, text_lines, utf16_len

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
_BATCH = 48  # files per worker task: big enough to amortise pickling, small for progress
_IN_PROCESS_BELOW = 64  # fewer files than this are parsed here; a pool would cost more
_PARENT_CHECK_S = 0.5  # how often a worker looks whether the process it parses for is alive
# A name defined more often than this (`get`, `__init__`) links nothing in the definition
# graph: its edges would be many and each nearly weightless.
_AMBIGUOUS = 32
_DECODED_FILES = 512  # files whose references stay decoded as objects (an LRU)


@dataclass(slots=True)
class _Entry:
    language: str
    content_hash: str
    size: int
    mtime_ns: int
    blob: bytes | None
    lines: int
    definitions: int
    references: int
    raw: RawTags | None = None
    source: str = "disk"
    # How often each name occurs among the definitions and the references: marshal blobs
    # (from a worker or the database) until a name query decodes them, far smaller than
    # the tags, so the name maps are built without decoding every file's tags.
    def_blob: bytes | None = None
    ref_blob: bytes | None = None
    def_counts: dict[str, int] | None = None
    ref_counts: dict[str, int] | None = None

    @classmethod
    def of(cls, raw: RawTags, size: int, mtime_ns: int, blob: bytes | None) -> _Entry:
        return cls(raw[0], raw[1], size, mtime_ns, blob, raw[2], len(raw[4]), len(raw[5]), raw)

    @classmethod
    def parsed(cls, size: int, mtime_ns: int, tags: _Tags) -> _Entry:
        """What a worker sent (the tags stay a blob until a query needs them)."""
        language, chash, blob, lines, definitions, references, def_blob, ref_blob = tags
        return cls(
            language, chash, size, mtime_ns, blob, lines, definitions, references,
            def_blob=def_blob, ref_blob=ref_blob,
        )  # fmt: skip

    @classmethod
    def loaded(cls, f: StoredFile) -> _Entry:
        return cls(
            f.language, f.content_hash, f.size, f.mtime_ns, f.blob, f.lines, f.definitions,
            f.references, def_blob=f.def_names, ref_blob=f.ref_names,
        )  # fmt: skip

    def stored(self, path: Path) -> StoredFile:
        assert self.blob is not None
        return StoredFile(
            path,
            self.language,
            self.content_hash,
            self.size,
            self.mtime_ns,
            self.blob,
            self.lines,
            self.definitions,
            self.references,
            self.def_blob or marshal.dumps(self.name_counts(TAG_DEFS)),
            self.ref_blob or marshal.dumps(self.name_counts(TAG_REFS)),
        )

    def name_counts(self, field: int) -> dict[str, int]:
        """How often each name occurs among definitions (field TAG_DEFS) or references."""
        if field == TAG_DEFS:
            if self.def_counts is None:
                self.def_counts = self._counts(self.def_blob, TAG_DEFS)
            return self.def_counts
        if self.ref_counts is None:
            self.ref_counts = self._counts(self.ref_blob, TAG_REFS)
        return self.ref_counts

    def _counts(self, blob: bytes | None, field: int) -> dict[str, int]:
        """The stored counts, else counted from the tags (a buffer's entry has no blob)."""
        if blob is not None:
            return cast(dict[str, int], marshal.loads(blob))
        return name_counts(cast(list[tuple[Any, ...]], self.tags()[field]))

    def tags(self) -> RawTags:
        if self.raw is None:
            assert self.blob is not None
            self.raw = marshal.loads(self.blob)
        return self.raw


_first = itemgetter(0)


def name_counts(tags: Sequence[Sequence[Any]]) -> dict[str, int]:
    """How often each name (a raw tag's first field) occurs."""
    return dict(Counter(map(_first, tags)))


# A worker's answer for one file: (path, size, mtime_ns, skip reason, tags) with tags =
# (language, content hash, marshal blob, lines, definitions, references, and the marshalled
# name counts of the definitions and of the references): plain tuples, which pickle several
# times faster than dataclasses. The parent keeps the blobs and never decodes what no query
# asks for.
_Tags = tuple[str, str, bytes, int, int, int, bytes, bytes]
_Parsed = tuple[str, int, int, str | None, _Tags | None]


@dataclass(slots=True)
class _Graphs:
    files_generation: int
    imports: dict[Path, list[Path]]  # resolved imports per file
    rows: dict[Path, dict[Path, float]]  # the file graph
    def_names: dict[Path, frozenset[str]]  # names each file defined when its row was built


def _worker_started(parent: int) -> None:
    # Extraction allocates only acyclic data (tuples, lists, bytes) that reference counting
    # frees; the cyclic collector would re-scan it for nothing (a few % of a worker's time)
    # and, after a fork, write to the pages shared with the parent. A worker lives for one
    # update.
    gc.disable()
    threading.Thread(target=_end_with, args=(parent,), name="watch-parent", daemon=True).start()


def _end_with(parent: int) -> None:
    """End this worker once the process it parses for is gone. A process pool's workers
    outlive a parent that exits without shutting the pool down (the editor closed during
    the first scan, a crash, a kill): each waits on a queue whose writing end it holds
    itself, and holds the forkserver's liveness pipe and the editor's stdout open, so
    neither ever ends and the editor waits on a server that has exited."""
    while True:
        time.sleep(_PARENT_CHECK_S)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:  # alive, another user's (the pid was reused): gone too
            os._exit(0)


def _parse_batch(batch: list[tuple[str, str]]) -> list[_Parsed]:
    """Worker: read, check and extract a batch of files."""
    return [_parse_one(path, language) for path, language in batch]


def _parse_one(path: str, language: str) -> _Parsed:
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            source = f.read()
    except OSError as exc:
        return path, 0, 0, f"unreadable ({exc.strerror})", None
    reason = content_skip_reason(source)
    if reason is not None:
        return path, st.st_size, st.st_mtime_ns, reason, None
    raw = extract_raw(source, language)
    defs, refs = raw[TAG_DEFS], raw[TAG_REFS]
    tags = (
        raw[0], raw[1], marshal.dumps(raw), raw[2], len(defs), len(refs),
        marshal.dumps(name_counts(defs)), marshal.dumps(name_counts(refs)),
    )  # fmt: skip
    return path, st.st_size, st.st_mtime_ns, None, tags


class WorkspaceIndex:
    """The workspace's definitions, references and imports; see `kimi_lsp.index`."""

    def __init__(
        self,
        roots: Iterable[Path | str],
        *,
        state_dir: Path | None = None,
        max_file_bytes: int = 1_000_000,
        workers: int | None = None,
    ) -> None:
        self.roots = [Path(os.path.abspath(r)) for r in roots]
        self.rules = IgnoreRules(self.roots)
        self.max_file_bytes = max_file_bytes
        self.workers = workers or os.cpu_count() or 1
        self.skipped: list[SkippedFile] = []
        self._lock = threading.RLock()
        self._entries: dict[Path, _Entry] = {}
        self._docs: dict[Path, Document] = {}
        # Decoded tags (references included) of recently queried files; bounded, since a
        # graph walk over a big repository would otherwise keep every reference as objects.
        self._decoded: OrderedDict[Path, FileTags] = OrderedDict()
        self._closed: dict[tuple[Path, str], tuple[Definition, ...] | None] = {}  # `closed_outline`
        self._decoded_defs: dict[Path, tuple[Definition, ...]] = {}
        # name -> {file: how often}: built on the first query that needs each, then kept
        # in step file by file.
        self._def_names: dict[str, dict[Path, int]] | None = None
        self._ref_names: dict[str, dict[Path, int]] | None = None
        self._generation = 0  # bumps on every change: caches compare against it
        self._files_generation = 0  # bumps when files come or go
        self._saved_generation = 0  # bumps when saved content changes, or files come or go
        self._saved_hash: dict[Path, str] = {}  # content hash last read from disk, once touched
        self._graph_state: _Graphs | None = None
        self._graph_dirty: set[Path] = set()
        self._cache: dict[str, tuple[int, Any]] = {}
        self._store = IndexStore(database_path(state_dir, self.roots)) if state_dir else None
        self._loaded = False
        self.last_stats = IndexStats()
        self._scanned = threading.Event()  # set when the first `update` ends
        self._scan_progress = (0, 0)

    # ------------------------------------------------------------------ building

    @property
    def ready(self) -> bool:
        """True once the first `update` has ended (a prompt built before sees part of it)."""
        return self._scanned.is_set()

    @property
    def scan_progress(self) -> tuple[int, int]:
        """(files done, files found) of the running or last `update`."""
        return self._scan_progress

    def wait_ready(self, timeout: float) -> bool:
        """Block until the first `update` has ended, at most ``timeout`` seconds."""
        return self._scanned.wait(timeout)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    @property
    def database_path(self) -> Path | None:
        return self._store.path if self._store is not None else None

    @property
    def generation(self) -> int:
        """A counter that grows whenever any file's tags change (an edited buffer, a file read
        from disk, added or dropped): equal values mean the index answers as it did."""
        return self._generation

    @property
    def saved_generation(self) -> int:
        """A counter that grows when what is saved changes (a file's content read from disk,
        a file added or dropped), not while a buffer is edited: for what follows the disk."""
        return self._saved_generation

    @property
    def database_rebuilt(self) -> bool:
        """True when the database on disk was unreadable or outdated and was rebuilt."""
        return self._store is not None and self._store.rebuilt

    def _load_store(self) -> None:
        if self._loaded or self._store is None:
            self._loaded = True
            return
        with self._lock:
            for f in self._store.load():
                if f.path not in self._entries:
                    self._entries[f.path] = _Entry.loaded(f)
        self._loaded = True

    def update(self, on_progress: ProgressCallback | None = None) -> IndexStats:
        """Bring the index in line with the disk (see the package docstring)."""

        def progress(done: int, total: int) -> None:
            self._scan_progress = (done, total)
            if on_progress:
                on_progress(done, total)

        try:
            return self._update(progress)
        finally:
            self._scanned.set()  # also when it failed: nobody should wait for it

    def _update(self, on_progress: ProgressCallback) -> IndexStats:
        started = time.perf_counter()
        self._load_store()
        skipped: list[tuple[Path, str]] = []
        present: set[Path] = set()
        touched: list[Path] = []  # same content, new mtime: the database needs the new stat
        pending: list[tuple[str, str]] = []  # (path, language) to parse, not yet submitted
        paths: dict[str, Path] = {}  # the Path of each str sent to a worker (made once)
        futures: list[Future[list[_Parsed]]] = []
        pool: ProcessPoolExecutor | None = None
        done = parsed = 0
        try:
            # Parsing starts while discovery still walks: batches go to the pool as they fill.
            for c in discover(self.rules, self.max_file_bytes, skipped):
                present.add(c.path)
                if self._unchanged(c, touched):
                    done += 1
                    continue
                path_s = str(c.path)
                paths[path_s] = c.path
                pending.append((path_s, c.language))
                if pool is None and self.workers > 1 and len(pending) >= _IN_PROCESS_BELOW:
                    pool = self._pool()
                if pool is not None and len(pending) >= _BATCH:
                    futures.append(pool.submit(_parse_batch, pending))
                    pending = []
            total = len(present)
            on_progress(done, total)
            for batch in self._results(pool, futures, pending):
                fresh: list[StoredFile] = []
                with self._lock:
                    for path_s, size, mtime_ns, reason, tags in batch:
                        path = paths[path_s]
                        if reason is not None or tags is None:
                            skipped.append((path, reason or "unreadable"))
                            self._drop(path)
                            continue
                        entry = _Entry.parsed(size, mtime_ns, tags)
                        fresh.append(entry.stored(path))
                        if path not in self._docs:  # an open buffer stays the truth
                            self._set(path, entry)
                if self._store is not None:
                    self._store.save(fresh)  # while the workers parse the next batches
                parsed += len(fresh)
                done += len(batch)
                on_progress(done, total)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

        skipped_paths = {p for p, _ in skipped}
        with self._lock:
            removed = [p for p in self._entries if p not in present or p in skipped_paths]
            for p in removed:
                if p not in self._docs:  # an unsaved buffer is indexed though not on disk
                    self._drop(p)
        if self._store is not None:
            stat_only = [
                e.stored(p)
                for p in touched
                if (e := self._entries.get(p)) is not None
                and e.blob is not None
                and e.source == "disk"
            ]
            self._store.save(stat_only, removed)
        for p, reason in skipped:
            log.info("index: skipped %s (%s)", p, reason)
        self.skipped = [SkippedFile(p, r) for p, r in skipped]
        stats = self.stats()
        stats.parsed = parsed
        stats.skipped = len(skipped)
        stats.seconds = time.perf_counter() - started
        self.last_stats = stats
        return stats

    def _unchanged(self, c: Candidate, touched: list[Path]) -> bool:
        """True when the index already holds this content (a changed stat costs a hash)."""
        with self._lock:
            entry = self._entries.get(c.path)
            if entry is None or entry.language != c.language or entry.source != "disk":
                return False
            if (entry.size, entry.mtime_ns) == (c.size, c.mtime_ns):
                return True
            if entry.size != c.size:
                return False
        try:  # a checkout or a `touch`: same bytes, new mtime
            data = c.path.read_bytes()
        except OSError:
            return False
        if content_hash(data) != entry.content_hash:
            return False
        entry.mtime_ns = c.mtime_ns
        touched.append(c.path)
        return True

    def _pool(self) -> ProcessPoolExecutor:
        # Processes, not threads: the bindings' Python glue holds the GIL while extracting.
        # fork is cheapest but unsafe in a process that runs other threads (the server):
        # there, forkserver.
        method = "fork" if threading.active_count() == 1 else "forkserver"
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            # Workers forked from a server that already imported the extractor start parsing
            # at once instead of importing it (and tree-sitter) each, on every update.
            context.set_forkserver_preload([__name__])
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_worker_started,
            initargs=(os.getpid(),),
        )

    @staticmethod
    def _results(
        pool: ProcessPoolExecutor | None,
        futures: list[Future[list[_Parsed]]],
        pending: list[tuple[str, str]],
    ) -> Iterator[list[_Parsed]]:
        if pool is None:
            for i in range(0, len(pending), _BATCH):
                yield _parse_batch(pending[i : i + _BATCH])
            return
        if pending:
            futures.append(pool.submit(_parse_batch, pending))
        for fut in as_completed(futures):
            yield fut.result()

    # ------------------------------------------------------------------ mutation helpers

    def _set(self, path: Path, entry: _Entry) -> None:
        old = self._entries.get(path)
        if old is None:
            self._files_generation += 1
            self._saved_generation += 1
        saved = self._saved_hash.get(path)
        if saved is None and old is not None and old.source == "disk":
            saved = old.content_hash  # loaded from the database, not yet touched
        if entry.source == "disk":
            if old is not None and saved != entry.content_hash:
                self._saved_generation += 1
            self._saved_hash[path] = entry.content_hash
        elif saved is not None:
            self._saved_hash[path] = saved  # a buffer: remember what the disk holds
        self._graph_dirty.add(path)
        self._entries[path] = entry
        self._decoded.pop(path, None)
        self._decoded_defs.pop(path, None)
        self._reindex_names(path, old, entry)
        self._generation += 1

    def _drop(self, path: Path) -> None:
        old = self._entries.pop(path, None)
        self._saved_hash.pop(path, None)
        if old is not None:
            self._files_generation += 1
            self._saved_generation += 1
            self._unindex_names(path, old)
            self._decoded.pop(path, None)
            self._decoded_defs.pop(path, None)
            self._generation += 1

    def _index_names(self, path: Path, entry: _Entry) -> None:
        self._reindex_names(path, None, entry)

    def _unindex_names(self, path: Path, entry: _Entry) -> None:
        self._reindex_names(path, entry, None)

    def _reindex_names(self, path: Path, old: _Entry | None, new: _Entry | None) -> None:
        """Update the name -> files maps for one file, touching only names that changed."""
        for table, field in ((self._def_names, TAG_DEFS), (self._ref_names, TAG_REFS)):
            if table is None:
                continue
            before = old.name_counts(field) if old is not None else {}
            after = new.name_counts(field) if new is not None else {}
            for name in before.keys() - after.keys():
                counter = table.get(name)
                if counter is not None:
                    counter.pop(path, None)
                    if not counter:
                        del table[name]
            for name, n in after.items():
                if before.get(name) != n:
                    counter = table.get(name)
                    if counter is None:
                        table[name] = {path: n}
                    else:
                        counter[path] = n

    def prepare_queries(self) -> None:
        """Build the name maps now (off the editor's thread) rather than on the first query."""
        self._names()

    def _name_map(self, field: int) -> dict[str, dict[Path, int]]:
        table: dict[str, dict[Path, int]] = {}
        for path, entry in self._entries.items():
            for name, n in entry.name_counts(field).items():
                files = table.get(name)
                if files is None:
                    table[name] = {path: n}
                else:
                    files[path] = n
        return table

    def _def_map(self) -> dict[str, dict[Path, int]]:
        """name -> the files that define it (a name query needs no more than this)."""
        with self._lock:
            if self._def_names is None:
                self._def_names = self._name_map(TAG_DEFS)
            return self._def_names

    def _ref_map(self) -> dict[str, dict[Path, int]]:
        """name -> the files that refer to it."""
        with self._lock:
            if self._ref_names is None:
                self._ref_names = self._name_map(TAG_REFS)
            return self._ref_names

    def _names(self) -> tuple[dict[str, dict[Path, int]], dict[str, dict[Path, int]]]:
        with self._lock:
            return self._def_map(), self._ref_map()

    # ------------------------------------------------------------------ editor buffers

    def open_document(self, path: Path | str, text: str) -> None:
        """The editor opened `path`: its buffer is the truth until `close_document`."""
        p = _abs(path)
        language = language_for(p)
        if language is None or self.is_ignored(p):
            return
        doc = Document(p, language, text)
        with self._lock:
            self._docs[p] = doc
            self._set_from_document(p, doc)

    def change_document(
        self, path: Path | str, changes: Iterable[Any], encoding: Encoding = DEFAULT
    ) -> None:
        """Apply LSP content changes (ranges counted in ``encoding``) to an open buffer and
        re-extract that file only."""
        p = _abs(path)
        with self._lock:
            doc = self._docs.get(p)
            if doc is None:
                return
            doc.apply(changes, encoding)
            self._set_from_document(p, doc)

    def close_document(self, path: Path | str) -> None:
        """The editor closed `path`: go back to what is on disk."""
        p = _abs(path)
        with self._lock:
            if self._docs.pop(p, None) is None:
                return
        self.file_changed_on_disk(p)

    def document_text(self, path: Path | str) -> str | None:
        doc = self._docs.get(_abs(path))
        return doc.text if doc is not None else None

    def _set_from_document(self, path: Path, doc: Document) -> None:
        entry = _Entry.of(doc.raw, doc.raw[3], 0, None)
        entry.source = "buffer"
        self._set(path, entry)

    def file_changed_on_disk(self, path: Path | str) -> None:
        """A file was created, changed or deleted on disk (watcher, save, or close)."""
        p = _abs(path)
        if p.name in IGNORE_FILES:
            self.rules.forget(p.parent)
            return
        if p in self._docs:
            return  # the buffer stays the truth while it is open
        language = language_for(p)
        try:
            st = p.stat()
        except OSError:
            st = None
        if (
            language is None
            or st is None
            or self.rules.root_of(p) is None
            or self.is_ignored(p)
            or skip_reason(p, st.st_size, self.max_file_bytes)
        ):
            with self._lock:
                known = p in self._entries
                self._drop(p)
            if known and self._store is not None:
                self._store.save([], [p])
            return
        with self._lock:
            entry = self._entries.get(p)
            if (
                entry is not None
                and entry.source == "disk"
                and (entry.size, entry.mtime_ns) == (st.st_size, st.st_mtime_ns)
            ):
                return
        _, size, mtime_ns, reason, tags = _parse_one(str(p), language)
        if reason is not None or tags is None:
            with self._lock:
                self._drop(p)
            if self._store is not None:
                self._store.save([], [p])
            return
        entry = _Entry.parsed(size, mtime_ns, tags)
        with self._lock:
            self._set(p, entry)
        if self._store is not None:
            self._store.save([entry.stored(p)])

    def is_ignored(self, path: Path | str) -> bool:
        """True when `path` is excluded by ignore rules; such files never enter a prompt."""
        return self.rules.is_ignored(path)

    # ------------------------------------------------------------------ queries

    def files(self) -> list[Path]:
        with self._lock:
            return sorted(self._entries)

    def file_tags(self, path: Path | str) -> FileTags | None:
        p = _abs(path)
        with self._lock:
            tags = self._decoded.get(p)
            if tags is not None:
                self._decoded.move_to_end(p)
                return tags
            entry = self._entries.get(p)
            if entry is None:
                return None
            tags = decode(p, entry.tags(), self._decoded_defs.pop(p, None))
            self._decoded[p] = tags
            if len(self._decoded) > _DECODED_FILES:
                old_path, old_tags = self._decoded.popitem(last=False)
                self._decoded_defs[old_path] = old_tags.definitions
            return tags

    def file_info(self, path: Path | str) -> FileInfo | None:
        p = _abs(path)
        with self._lock:
            entry = self._entries.get(p)
            if entry is None:
                return None
            return FileInfo(
                p,
                entry.language,
                entry.content_hash,
                entry.size,
                entry.lines,
                entry.definitions,
                entry.references,
                entry.source,
            )

    def stats(self) -> IndexStats:
        with self._lock:
            stats = IndexStats(files=len(self._entries))
            languages: Counter[str] = Counter()
            for entry in self._entries.values():
                stats.definitions += entry.definitions
                stats.references += entry.references
                languages[entry.language] += 1
            stats.languages = dict(sorted(languages.items()))
            return stats

    def _definitions_of(self, path: Path) -> tuple[Definition, ...]:
        with self._lock:
            tags = self._decoded.get(path)
            if tags is not None:
                return tags.definitions
            defs = self._decoded_defs.get(path)
            if defs is None:
                entry = self._entries.get(path)
                if entry is None:
                    return ()
                defs = self._decoded_defs[path] = decode_definitions(path, entry.tags())
            return defs

    def outline(self, path: Path | str) -> list[Definition]:
        return list(self._definitions_of(_abs(path)))

    def closed_outline(self, path: Path | str) -> list[Definition]:
        """The outline of the file as it will be once the brackets its text leaves open are
        closed (`close_brackets`: a function being typed in a buffer has no `}` yet, and its
        parse lost it): what the user is writing, each definition ending by the text's end.
        The outline itself when nothing is left open."""
        p = _abs(path)
        info = self.file_info(p)
        if info is None or info.language not in BRACKET_LANGUAGES:
            return self.outline(p)
        key = (p, info.content_hash)
        with self._lock:
            if key in self._closed:
                cached = self._closed[key]
                return list(cached) if cached is not None else self.outline(p)
            doc = self._docs.get(p)
            # A copy: the next edit changes the buffer's tree in place, maybe meanwhile.
            source, tree = (doc.source, doc.tree.copy()) if doc is not None else (None, None)
        try:
            source = source if source is not None else p.read_bytes()
        except OSError:
            return self.outline(p)
        if content_hash(source) != info.content_hash:  # changed meanwhile
            return self.outline(p)
        closed = close_brackets(source, info.language, tree)
        defs: tuple[Definition, ...] | None = None
        if closed is not None:
            lines = text_lines(source.decode("utf-8", "replace")) or [""]
            last, last_col = len(lines) - 1, utf16_len(lines[-1])

            def clamp(s: Span) -> Span:  # the closers' line is not the text's
                if s.end_line <= last:
                    return s
                return Span(s.start_line, s.start_col, last, last_col)

            tags = extract_tags(p, closed, info.language)
            defs = tuple(replace(d, range=clamp(d.range)) for d in tags.definitions)
        with self._lock:
            self._closed = {key: defs}  # one file at a time: the one being typed in
        return list(defs) if defs is not None else self.outline(p)

    def enclosing_definition(
        self, path: Path | str, line: int, col: int, *, closed: bool = False
    ) -> Definition | None:
        """The innermost definition whose range holds the position: of the outline, or,
        ``closed``, of `closed_outline` (what a buffer being typed will hold)."""
        best: Definition | None = None
        for d in self.closed_outline(path) if closed else self.outline(path):
            if d.range.contains(line, col) and (best is None or best.range.encloses(d.range)):
                best = d
        return best

    def definitions(self, name: str) -> list[Definition]:
        bare = name.rsplit(".", 1)[-1] if "." in name else name
        defs = self._def_map()
        with self._lock:
            paths = sorted(defs.get(bare, ()))
        out: list[Definition] = []
        for p in paths:
            for d in self._definitions_of(p):
                if d.name != bare:
                    continue
                q = d.qualified_name
                if name == bare or q == name or q.endswith("." + name):
                    out.append(d)
        if not out and name != bare:  # `pkg.func` written as a dotted name: fall back
            return self.definitions(bare) if bare in defs else []
        return out

    def files_defining(self, name: str) -> frozenset[Path]:
        """The files with a definition named ``name`` (a bare name): what `definitions`
        reads, without decoding any file's definitions."""
        defs = self._def_map()
        with self._lock:
            return frozenset(defs.get(name, ()))

    def files_referencing(self, name: str) -> frozenset[Path]:
        """The files that refer to ``name`` (a bare name), without decoding any file's tags."""
        refs = self._ref_map()
        with self._lock:
            return frozenset(refs.get(name, ()))

    def references_to(self, defn: Definition) -> list[Reference]:
        refs = self._ref_map()
        with self._lock:
            paths = sorted(refs.get(defn.name, ()))
        out: list[Reference] = []
        for p in paths:
            tags = self.file_tags(p)
            if tags is not None:
                out.extend(r for r in tags.references if r.name == defn.name)
        return out

    def symbols(self, query: str, limit: int = 100) -> list[Definition]:
        """Definitions whose name matches `query` (exact, prefix, substring, then fuzzy)."""
        defs = self._def_map()
        q = query.lower()
        with self._lock:
            names = list(defs)
        ranked: list[tuple[int, int, str]] = []
        for n in names:
            low = n.lower()
            if not q:
                rank = 3
            elif low == q:
                rank = 0
            elif low.startswith(q):
                rank = 1
            elif q in low:
                rank = 2
            elif _subsequence(q, low):
                rank = 3
            else:
                continue
            ranked.append((rank, len(n), n))
        ranked.sort()
        out: list[Definition] = []
        for _, _, n in ranked:
            out.extend(self.definitions(n))
            if len(out) >= limit:
                break
        return out[:limit]

    def _resolver(self) -> ImportResolver:
        """Import resolution over the current set of files (rebuilt when files come or go)."""
        with self._lock:
            hit = self._cache.get("resolver")
            if hit is not None and hit[0] == self._files_generation:
                resolver: ImportResolver = hit[1]
                return resolver
            files = [(p, e.language) for p, e in self._entries.items()]
            resolver = ImportResolver(files, self.roots)
            self._cache["resolver"] = (self._files_generation, resolver)
            return resolver

    def _cached(self, key: str, build: Callable[[], Any]) -> Any:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == self._generation:
                return hit[1]
            generation = self._generation
            value = build()
            self._cache[key] = (generation, value)
            return value

    def _imports_of_file(self, resolver: ImportResolver, path: Path) -> list[Path]:
        entry = self._entries.get(path)
        targets: list[Path] = []
        if entry is None:
            return targets
        for imp in entry.tags()[TAG_IMPORTS]:
            for t in resolver.resolve(path, imp[0]):
                if t not in targets and t != path:
                    targets.append(t)
        return targets

    def _file_row(
        self, path: Path, defs: dict[str, dict[Path, int]], imports: list[Path]
    ) -> dict[Path, float]:
        entry = self._entries.get(path)
        edges: defaultdict[Path, float] = defaultdict(float)
        if entry is None:
            return {}
        for name, n in entry.name_counts(TAG_REFS).items():
            definers = defs.get(name)
            if not definers or path in definers:
                continue  # unknown, or defined locally: no edge
            share = n / len(definers)
            for target in definers:
                edges[target] += share
        for target in imports:
            edges[target] += 1.0
        return dict(edges)

    def _graphs(self) -> _Graphs:
        """The import and file graphs, brought up to date row by row.

        A change to one file recomputes that file's row, plus the rows of files that refer to
        a name the change added to or removed from its definitions; files coming or going
        rebuild everything (import resolution depends on the set of files).
        """
        defs, refs = self._names()
        with self._lock:
            g = self._graph_state
            if g is None or g.files_generation != self._files_generation:
                resolver = self._resolver()
                g = _Graphs(self._files_generation, {}, {}, {})
                for path, entry in self._entries.items():
                    g.imports[path] = self._imports_of_file(resolver, path)
                    g.def_names[path] = frozenset(entry.name_counts(TAG_DEFS))
                for path in self._entries:
                    g.rows[path] = self._file_row(path, defs, g.imports[path])
                self._graph_state = g
                self._graph_dirty.clear()
                return g
            if self._graph_dirty:
                resolver = self._resolver()
                dirty, self._graph_dirty = self._graph_dirty, set()
                recompute = set(dirty)
                for path in dirty:
                    current = self._entries.get(path)
                    now = frozenset(current.name_counts(TAG_DEFS)) if current else frozenset()
                    for name in now ^ g.def_names.get(path, frozenset()):
                        recompute.update(refs.get(name, ()))
                    g.def_names[path] = now
                    g.imports[path] = self._imports_of_file(resolver, path)
                for path in recompute:
                    if path in self._entries:
                        g.rows[path] = self._file_row(path, defs, g.imports.get(path, []))
            return g

    def imports_of(self, path: Path | str) -> list[Path]:
        with self._lock:
            return list(self._graphs().imports.get(_abs(path), []))

    def resolve_imports(self, path: Path | str) -> list[Path]:
        """What ``imports_of`` says for one file, without bringing the graph's rows up to date
        (right after an edit that takes ~50 ms on Django): the graph's entry for a file it
        holds as it is now, else resolved from the file's own tags."""
        p = _abs(path)
        with self._lock:
            g = self._graph_state
            fresh = g is not None and g.files_generation == self._files_generation
            if g is not None and fresh and p not in self._graph_dirty and p in g.imports:
                return list(g.imports[p])
            return self._imports_of_file(self._resolver(), p)

    def importers(self, path: Path | str) -> list[Path]:
        p = _abs(path)
        with self._lock:
            imports = self._graphs().imports
            return sorted(src for src, targets in imports.items() if p in targets)

    def file_graph(self) -> dict[Path, dict[Path, float]]:
        with self._lock:
            return {k: dict(v) for k, v in self._graphs().rows.items()}

    def definition_graph(self) -> dict[Definition, dict[Definition, float]]:
        def build() -> dict[Definition, dict[Definition, float]]:
            names = self._def_map()
            graph: dict[Definition, dict[Definition, float]] = {}
            targets_of: dict[str, list[Definition]] = {}
            by_id: dict[int, dict[int, float]] = {}
            keep: dict[int, Definition] = {}  # keeps every counted object alive (ids stay unique)
            for path in self.files():
                with self._lock:
                    entry = self._entries.get(path)
                    refs = entry.tags()[TAG_REFS] if entry is not None else []
                if not refs:
                    continue
                defs = self._definitions_of(path)
                by_qualified = {d.qualified_name: d for d in defs}
                local: defaultdict[str, list[Definition]] = defaultdict(list)
                for d in defs:
                    local[d.name].append(d)
                for r in refs:  # raw: (name, kind, sl, sc, el, ec, enclosing)
                    source = by_qualified.get(r[6]) if r[6] else None
                    if source is None:
                        continue
                    name = r[0]
                    targets = local.get(name)
                    if not targets:
                        if name not in names:
                            continue
                        targets = targets_of.get(name)
                        if targets is None:
                            targets = targets_of[name] = self.definitions(name)
                    if not targets or len(targets) > _AMBIGUOUS:
                        continue
                    share = 1.0 / len(targets)
                    # Accumulate by object identity: hashing a Definition costs far more.
                    edges = by_id.get(id(source))
                    if edges is None:
                        edges = by_id[id(source)] = {}
                        keep[id(source)] = source
                    for t in targets:
                        if t is not source:
                            tid = id(t)
                            edges[tid] = edges.get(tid, 0.0) + share
                            keep[tid] = t
            for sid, edges in by_id.items():
                graph[keep[sid]] = {keep[tid]: w for tid, w in edges.items()}
            return graph

        graph: dict[Definition, dict[Definition, float]] = self._cached("def_graph", build)
        return {k: dict(v) for k, v in graph.items()}


def _abs(path: Path | str) -> Path:
    return path if isinstance(path, Path) and path.is_absolute() else Path(os.path.abspath(path))


def _subsequence(needle: str, hay: str) -> bool:
    it = iter(hay)
    return all(ch in it for ch in needle)

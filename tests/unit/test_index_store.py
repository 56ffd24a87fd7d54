"""The persisted index: warm starts re-read only changed content; bad databases are rebuilt."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from kimi_lsp.index import WorkspaceIndex
from kimi_lsp.index.store import database_path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("def alpha():\n    return beta()\n")
    (root / "pkg" / "b.py").write_text("def beta():\n    return 2\n")
    (root / "c.js").write_text("function gamma() { return 3; }\n")
    return root


def build(root: Path, state: Path) -> WorkspaceIndex:
    index = WorkspaceIndex([root], state_dir=state, workers=1)
    index.update()
    return index


def test_warm_start_parses_nothing_and_answers_the_same(project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = build(project, state)
    assert first.last_stats.parsed == 3
    defs = first.definitions("beta")
    first.close()

    second = WorkspaceIndex([project], state_dir=state, workers=1)
    stats = second.update()
    assert stats.parsed == 0
    assert stats.files == 3
    assert stats.definitions == 3
    assert second.definitions("beta") == defs
    assert second.database_rebuilt is False


def test_a_warm_name_query_decodes_only_the_files_that_define_the_name(
    project: Path, tmp_path: Path
) -> None:
    """The database keeps each file's name counts beside its tags: the first query after a
    warm start reads those, and decodes the tags of the definers alone (issue 21)."""
    state = tmp_path / "state"
    build(project, state).close()
    warm = build(project, state)
    (beta,) = warm.definitions("beta")
    decoded = {p.name for p, e in warm._entries.items() if e.raw is not None}
    assert decoded == {"b.py"}
    assert [r.name for r in warm.references_to(beta)] == ["beta"]  # a.py calls it
    assert warm.symbols("gam")[0].name == "gamma"
    # Maps built one at a time stay in step with a change.
    warm.open_document(project / "pkg" / "a.py", "def beta():\n    return 0\n")
    assert sorted(d.path.name for d in warm.definitions("beta")) == ["a.py", "b.py"]
    assert warm.references_to(beta) == []


def test_only_changed_content_is_reparsed(project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    build(project, state).close()
    a = project / "pkg" / "a.py"
    b = project / "pkg" / "b.py"
    a.write_text("def alpha2():\n    return beta()\n")
    st = b.stat()
    os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched, same content
    (project / "c.js").unlink()

    index = WorkspaceIndex([project], state_dir=state, workers=1)
    stats = index.update()
    assert stats.parsed == 1
    assert [d.name for d in index.outline(a)] == ["alpha2"]
    assert index.files() == [a, b]
    index.close()

    again = WorkspaceIndex([project], state_dir=state, workers=1)
    assert again.update().parsed == 0  # the touch and the deletion were persisted too
    assert again.files() == [a, b]


@pytest.mark.parametrize(
    "garbage",
    [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 5000, b""],
)
def test_corrupt_database_is_rebuilt(project: Path, tmp_path: Path, garbage: bytes) -> None:
    state = tmp_path / "state"
    db = database_path(state, [project])
    db.parent.mkdir(parents=True)
    db.write_bytes(garbage)
    index = WorkspaceIndex([project], state_dir=state, workers=1)
    stats = index.update()
    assert stats.files == 3
    assert stats.parsed == 3
    assert index.definitions("gamma")
    if garbage:
        assert index.database_rebuilt
    index.close()
    assert WorkspaceIndex([project], state_dir=state, workers=1).update().parsed == 0


def test_database_from_another_version_is_rebuilt(project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    build(project, state).close()
    db = database_path(state, [project])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = 'old' WHERE key = 'fingerprint'")
    conn.close()
    index = WorkspaceIndex([project], state_dir=state, workers=1)
    assert index.database_rebuilt
    assert index.update().parsed == 3


def test_the_scan_and_the_watcher_may_save_at_once(tmp_path: Path) -> None:
    """The scan saves its batches in one thread while the file watcher saves a changed file
    in another: both land, neither fails (one connection, two transactions at once)."""
    import marshal
    import threading

    from kimi_lsp.index.store import IndexStore, StoredFile

    store = IndexStore(tmp_path / "index.sqlite3")
    names = marshal.dumps({})
    errors: list[BaseException] = []

    def save(prefix: str) -> None:
        try:
            for i in range(150):
                f = StoredFile(
                    tmp_path / f"{prefix}{i}.py", "python", f"{prefix}{i}", 1, 1,
                    b"tags", 1, 0, 0, names, names,
                )  # fmt: skip
                store.save([f], [tmp_path / f"{prefix}{i - 1}.py"] if i % 3 == 0 else [])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(p,)) for p in ("scan", "watch")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    saved = {f.path.name for f in store.load()}
    assert {"scan149.py", "watch149.py"} <= saved
    store.close()

"""Which files the index reads: ignore rules at every level, vendor folders, size, binary,
minified and non-UTF-8 files, symlink loops."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kimi_lsp.index import IgnoreRules, WorkspaceIndex, discover


def write(path: Path, text: str | bytes = "x = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write(tmp_path / ".gitignore", "*.gen.py\n/build_out/\nsecrets/\n")
    write(tmp_path / "app" / "main.py")
    write(tmp_path / "app" / "schema.gen.py")
    write(tmp_path / "app" / ".gitignore", "local_*.py\n!local_keep.py\n")
    write(tmp_path / "app" / "local_settings.py")
    write(tmp_path / "app" / "local_keep.py")
    write(tmp_path / "app" / "deep" / "local_x.py")  # nested: the app/.gitignore applies
    write(tmp_path / "build_out" / "x.py")
    write(tmp_path / "secrets" / "keys.py")
    write(tmp_path / ".kimiignore", "private/\n*.internal.ts\n")
    write(tmp_path / "private" / "plan.py")
    write(tmp_path / "web" / "a.internal.ts", "export const a = 1;\n")
    write(tmp_path / "web" / "b.ts", "export const b = 1;\n")
    write(tmp_path / "node_modules" / "lib" / "index.js", "module.exports = 1;\n")
    write(tmp_path / "vendor" / "x.go", "package x\n")
    write(tmp_path / "notes.txt", "not code")
    return tmp_path


def found(root: Path, **kw: int) -> set[str]:
    return {c.path.relative_to(root).as_posix() for c in discover(IgnoreRules([root]), **kw)}


def test_ignore_files_at_every_level_and_vendor_dirs(tree: Path) -> None:
    assert found(tree) == {"app/main.py", "app/local_keep.py", "web/b.ts"}


@pytest.mark.parametrize(
    ("rel", "ignored"),
    [
        ("app/main.py", False),
        ("app/schema.gen.py", True),
        ("app/local_settings.py", True),
        ("app/local_keep.py", False),
        ("app/deep/local_x.py", True),
        ("build_out/x.py", True),
        ("secrets/keys.py", True),
        ("private/plan.py", True),
        ("web/a.internal.ts", True),
        ("node_modules/lib/index.js", True),
        ("vendor/x.go", True),
        ("secrets/not-yet-created.py", True),
    ],
)
def test_is_ignored_answers_for_single_paths(tree: Path, rel: str, ignored: bool) -> None:
    assert IgnoreRules([tree]).is_ignored(tree / rel) is ignored
    assert WorkspaceIndex([tree]).is_ignored(str(tree / rel)) is ignored


@pytest.mark.parametrize(
    ("rel", "rule"),
    [
        ("app/main.py", None),
        ("app/local_keep.py", None),  # re-included by `!local_keep.py`
        ("app/schema.gen.py", ".gitignore:1 `*.gen.py`"),
        ("app/deep/local_x.py", "app/.gitignore:1 `local_*.py`"),
        ("secrets/keys.py", ".gitignore:3 `secrets/`"),
        ("private/plan.py", ".kimiignore:1 `private/`"),
        ("web/a.internal.ts", ".kimiignore:2 `*.internal.ts`"),
        ("node_modules/lib/index.js", "the folder node_modules/ (skipped by default)"),
    ],
)
def test_why_ignored_names_the_rule(tree: Path, rel: str, rule: str | None) -> None:
    rules = IgnoreRules([tree])
    assert rules.why_ignored(tree / rel) == rule
    assert (rule is not None) is rules.is_ignored(tree / rel)


def test_paths_outside_the_workspace_are_not_judged(
    tree: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = tmp_path_factory.mktemp("other")
    assert IgnoreRules([tree]).is_ignored(other / "x.py") is False


def test_size_limit_and_minified_names_are_reported(tmp_path: Path) -> None:
    write(tmp_path / "big.py", "x = 1\n" * 400)
    write(tmp_path / "small.py")
    write(tmp_path / "app.min.js", "var a=1;")
    skipped: list[tuple[Path, str]] = []
    got = {c.path.name for c in discover(IgnoreRules([tmp_path]), 1000, skipped)}
    assert got == {"small.py"}
    assert sorted((p.name, r) for p, r in skipped) == [
        ("app.min.js", "minified"),
        ("big.py", "too large"),
    ]


def test_binary_minified_and_non_utf8_files_are_skipped_not_fatal(tmp_path: Path) -> None:
    write(tmp_path / "ok.py", "def ok():\n    pass\n")
    write(tmp_path / "binary.py", b"def x():\n\x00\x01\x02 pass\n")
    write(tmp_path / "bundle.js", ("var a=function(){return 1};" * 400).encode())
    write(tmp_path / "latin1.py", "# caf\xe9\ndef f():\n    pass\n".encode("latin-1"))
    index = WorkspaceIndex([tmp_path], workers=1)
    stats = index.update()
    assert [p.name for p in index.files()] == ["ok.py"]
    assert stats.skipped == 3
    assert sorted((s.path.name, s.reason) for s in index.skipped) == [
        ("binary.py", "binary"),
        ("bundle.js", "minified"),
        ("latin1.py", "encoding"),
    ]


def test_symlink_loops_end_and_files_are_not_indexed_twice(tmp_path: Path) -> None:
    write(tmp_path / "pkg" / "mod.py")
    os.symlink(tmp_path, tmp_path / "pkg" / "loop")  # pkg/loop -> the root itself
    os.symlink(tmp_path / "pkg", tmp_path / "alias")
    os.symlink(tmp_path / "missing", tmp_path / "broken")
    os.symlink(tmp_path / "pkg" / "mod.py", tmp_path / "link.py")
    assert found(tmp_path) == {"pkg/mod.py"}


def test_unlistable_folder_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "a" / "x.py")
    write(tmp_path / "b" / "y.py")
    real_scandir = os.scandir

    def scandir(path: object) -> object:
        if str(path).endswith("/a"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    assert found(tmp_path) == {"b/y.py"}


def test_git_info_exclude_is_honoured(tmp_path: Path) -> None:
    write(tmp_path / ".git" / "info" / "exclude", "scratch_*.py\n")
    write(tmp_path / "scratch_1.py")
    write(tmp_path / "kept.py")
    assert found(tmp_path) == {"kept.py"}
    assert IgnoreRules([tmp_path]).is_ignored(tmp_path / "scratch_2.py")


def test_file_vanishing_before_it_is_read_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kimi_lsp.index.workspace as workspace
    from kimi_lsp.index.discovery import Candidate

    write(tmp_path / "real.py", "def real():\n    pass\n")
    ghost = Candidate(tmp_path / "ghost.py", "python", 10, 1)
    real_discover = workspace.discover

    def with_ghost(*args: object, **kwargs: object) -> object:
        yield from real_discover(*args, **kwargs)  # type: ignore[arg-type]
        yield ghost

    monkeypatch.setattr(workspace, "discover", with_ghost)
    index = WorkspaceIndex([tmp_path], workers=1)
    stats = index.update()
    assert [p.name for p in index.files()] == ["real.py"]
    assert stats.skipped == 1
    assert index.skipped[0].path == ghost.path
    assert index.skipped[0].reason.startswith("unreadable")

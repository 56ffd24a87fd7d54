"""The file graph, kept up to date row by row, equals one built from scratch."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kimi_lsp.index import WorkspaceIndex

NAMES = ["alpha", "beta", "gamma", "delta"]


def source(defines: list[str], calls: list[str], imports: list[str]) -> str:
    lines = [f"from pkg.{m} import x" for m in imports]
    lines += [
        f"def {d}():\n    return {' + '.join(f'{c}()' for c in calls) or '0'}" for d in defines
    ]
    return "\n".join(lines) + "\n"


files = st.tuples(
    st.lists(st.sampled_from(NAMES), max_size=2, unique=True),
    st.lists(st.sampled_from(NAMES), max_size=3),
    st.lists(st.sampled_from(["m0", "m1", "m2"]), max_size=2, unique=True),
)


@settings(max_examples=40, deadline=None)
@given(
    initial=st.lists(files, min_size=3, max_size=3),
    edits=st.lists(st.tuples(st.integers(0, 2), files), max_size=6),
)
def test_incremental_file_graph_equals_a_fresh_one(
    initial: list[tuple[list[str], list[str], list[str]]],
    edits: list[tuple[int, tuple[list[str], list[str], list[str]]]],
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pkg").mkdir()
        paths = [root / "pkg" / f"m{i}.py" for i in range(3)]
        for path, spec in zip(paths, initial, strict=True):
            path.write_text(source(*spec))
        live = WorkspaceIndex([root], workers=1)
        live.update()
        live.file_graph()  # built once, then maintained
        texts = {}
        for i, spec in edits:
            texts[paths[i]] = source(*spec)
            live.open_document(paths[i], texts[paths[i]])
            live.file_graph()
        fresh = WorkspaceIndex([root], workers=1)
        fresh.update()
        for path, text in texts.items():
            fresh.open_document(path, text)
        assert live.file_graph() == fresh.file_graph()
        for p in paths:
            assert live.importers(p) == fresh.importers(p)

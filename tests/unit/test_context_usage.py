"""What the project does with a name (``context.usage``): the table of ``receiver.member``
uses, kept in step with the saved files, and what the type flow and the outlines make of it."""

from __future__ import annotations

from pathlib import Path

from kimi_lsp.context.typeflow import type_flow
from kimi_lsp.context.usage import MemberUses, file_pairs, member_uses
from kimi_lsp.index import WorkspaceIndex
from tests.fixtures.context.explain import explain_definition

MODELS = """\
class Options:
    def get_field(self, name):
        pass

    def app_label(self):
        pass


class Other:
    def get_field(self):
        pass
"""

# Two files that write `opts.` with Options' members: the project's convention for `opts`.
USERS = {
    "admin.py": "def show(opts):\n    return opts.get_field('a'), opts.app_label()\n",
    "forms.py": "def form(model):\n    opts = model.meta\n    return opts.get_field('b')\n",
}

TARGET = '''\
def describe(opts):
    """Say what the options hold."""
    return 1
'''


def indexed(root: Path, files: dict[str, str]) -> WorkspaceIndex:
    for name, text in files.items():
        (root / name).write_text(text)
    index = WorkspaceIndex([root], state_dir=None)
    index.update()
    return index


def test_a_file_counts_each_pair_once_whole_names_only_not_self_or_dunders() -> None:
    source = b"opts.get_field(1)\nopts.get_field(2)\nself.x.y\ncls.z\na.b.c\nt.__class__\n"
    # `self.x.y`: the receiver of `y` is `self.x`, not a name the project's convention
    # could tell; `a.b.c` likewise gives `a.b` alone.
    assert file_pairs(source) == {("opts", "get_field"), ("a", "b")}


def test_non_ascii_names_give_no_pair_cut_out_of_them() -> None:
    source = "naïve.x = 1\ny = x.café\nprice = '€' + total.amount  # — 🍰\nopts.get_field()\n"
    # Not ("ve", "x") nor ("x", "caf"): those names are the tails and heads of others.
    assert file_pairs(source.encode()) == {("total", "amount"), ("opts", "get_field")}


def test_the_table_counts_files_and_follows_saves_and_deletions(tmp_path: Path) -> None:
    index = indexed(tmp_path, {**USERS, "models.py": MODELS})
    uses = MemberUses(index)
    assert dict(uses.of("opts")) == {"get_field": 2, "app_label": 1}
    read = uses.files_read
    assert uses.of("opts")["get_field"] == 2
    assert uses.files_read == read  # nothing saved since: nothing read

    (tmp_path / "admin.py").write_text("def show(opts):\n    return opts.verbose_name\n")
    index.file_changed_on_disk(tmp_path / "admin.py")
    assert dict(uses.of("opts")) == {"get_field": 1, "verbose_name": 1}
    assert uses.files_read == read + 1  # the saved file alone

    (tmp_path / "forms.py").unlink()
    index.update()
    assert dict(uses.of("opts")) == {"verbose_name": 1}


def test_an_unsaved_buffer_counts_as_its_saved_file(tmp_path: Path) -> None:
    index = indexed(tmp_path, {**USERS, "models.py": MODELS})
    index.open_document(tmp_path / "admin.py", "def show(opts):\n    return opts.typed_now\n")
    assert dict(member_uses(index).of("opts")) == {"get_field": 2, "app_label": 1}
    assert member_uses(index) is member_uses(index)  # one table per index


def test_a_name_the_project_uses_with_a_class_members_stands_for_that_class(
    tmp_path: Path,
) -> None:
    index = indexed(tmp_path, {**USERS, "models.py": MODELS, "service.py": TARGET})
    path = tmp_path / "service.py"
    target = next(d for d in index.outline(path) if d.name == "describe")
    flow = type_flow(index, path, TARGET, target.range, target)
    typed = {t.definition.name: t for t in flow.classes}
    assert "Options" in typed  # get_field alone would not tell it from Other
    assert "Other" not in typed
    assert typed["Options"].neighbour  # a convention is a guess, below what rules type
    assert flow.member_uses["get_field"] == 2


def test_without_the_project_uses_the_name_stands_for_nothing(tmp_path: Path) -> None:
    index = indexed(tmp_path, {"models.py": MODELS, "service.py": TARGET})
    path = tmp_path / "service.py"
    target = next(d for d in index.outline(path) if d.name == "describe")
    assert type_flow(index, path, TARGET, target.range, target).classes == []


def test_the_outline_shows_first_the_members_the_project_uses_on_the_code_names(
    tmp_path: Path,
) -> None:
    big = "class Big:\n" + "".join(f"    def m{i:02}(self):\n        pass\n\n" for i in range(80))
    big += "    def rarely_defined_late(self):\n        pass\n"
    files = {
        "big.py": big,
        "service.py": "from big import Big\n\n\ndef go(big: Big):\n    big.m00()\n    return 1\n",
    }
    index = indexed(tmp_path, files)
    path = tmp_path / "service.py"
    target = next(d for d in index.outline(path) if d.name == "go")
    before = explain_definition(index, tmp_path, target, budget=700)
    outlines = next(s for s in before.sections if s.name == "class outlines")
    assert "def m01(self):" in outlines.text  # source order, while nothing else tells
    assert "rarely_defined_late" not in outlines.text

    (tmp_path / "job.py").write_text("def run(big):\n    big.rarely_defined_late()\n")
    index.update()
    after = explain_definition(index, tmp_path, target, budget=700)
    outlines = next(s for s in after.sections if s.name == "class outlines")
    assert "def rarely_defined_late(self):" in outlines.text


def test_each_language_family_keeps_its_own_conventions(tmp_path: Path) -> None:
    index = indexed(
        tmp_path,
        {**USERS, "widget.js": "function paint(opts) {\n  return opts.colour;\n}\n"},
    )
    uses = member_uses(index)
    assert dict(uses.of("opts")) == {"get_field": 2, "app_label": 1}
    assert dict(uses.of("opts", "typescript")) == {"colour": 1}  # .js and .ts: one family


def test_a_typescript_receiver_is_typed_by_what_the_project_does_with_its_name(
    tmp_path: Path,
) -> None:
    uses = "export function {0}(store) {{\n  store.flush();\n  return store.keys();\n}}\n"
    index = indexed(
        tmp_path,
        {
            "models.ts": "export class Store {\n  flush(): void {}\n  keys(): string[] "
            "{ return []; }\n  drop(): void {}\n}\n",
            "a.ts": uses.format("a"),
            "b.ts": uses.format("b"),
            "service.ts": "export function go(store) {\n  return store.size;\n}\n",
        },
    )
    path = tmp_path / "service.ts"
    target = next(d for d in index.outline(path) if d.name == "go")
    built = explain_definition(index, tmp_path, target, budget=2_000, language="typescript")
    outlines = next(s for s in built.sections if s.name == "class outlines")
    assert "export class Store {" in outlines.text
    assert "drop(): void {}" in outlines.text


def test_one_member_however_often_used_tells_no_class(tmp_path: Path) -> None:
    files = {f"user{i}.py": f"def use{i}(opts):\n    return opts.get_field(1)\n" for i in range(4)}
    index = indexed(tmp_path, {**files, "models.py": MODELS, "service.py": TARGET})
    path = tmp_path / "service.py"
    target = next(d for d in index.outline(path) if d.name == "describe")
    assert member_uses(index).of("opts") == {"get_field": 4}
    assert type_flow(index, path, TARGET, target.range, target).classes == []

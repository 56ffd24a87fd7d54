"""Type flow beyond Python (TypeScript, Java, Go, Rust), by names: the classes a function's
code names and the class around it reach the prompt as outlines, with the members the code
does not name yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimi_lsp.context.typeflow import type_flow
from kimi_lsp.index import Definition, WorkspaceIndex
from tests.fixtures.context.explain import explain_definition
from tests.fixtures.workspace import indexed_files

CASES = {
    "typescript": (
        {
            "models.ts": "export class Repo {\n  find(id: string): Item | null { return null; }\n"
            "  purge(): void {}\n}\n\nexport class Item {\n  id(): string { return ''; }\n}\n",
            "service.ts": 'import { Repo } from "./models";\n\n'
            "export function store(repo: Repo, id: string) {\n"
            "  const found = repo.find(id);\n  return found;\n}\n",
        },
        "service.ts",
        "store",
        ["export class Repo {", "purge(): void {}"],
    ),
    "java": (
        {
            "Repo.java": "public class Repo {\n    public Item find(String id) { return null; }\n"
            "    public void purge() {}\n}\n",
            "Service.java": "public class Service {\n"
            "    public Item store(Repo repo, String id) {\n"
            "        Item found = repo.find(id);\n        return found;\n    }\n}\n",
        },
        "Service.java",
        "store",
        ["public class Repo {", "public void purge() {}"],
    ),
    "go": (
        {
            "repo.go": "package store\n\ntype Repo struct {\n\tName string\n}\n",
            # A Go type's methods may live in any file of its package.
            "repo_ops.go": "package store\n\nfunc (r *Repo) Find(id string) int { return 0 }\n\n"
            "func (r *Repo) Purge() {}\n",
            "service.go": "package store\n\nfunc Store(repo *Repo, id string) int {\n"
            "\tfound := repo.Find(id)\n\treturn found\n}\n",
        },
        "service.go",
        "Store",
        ["type Repo struct {", "func (r *Repo) Purge() {}"],
    ),
    "rust": (
        {
            "repo.rs": "pub struct Repo {\n    name: String,\n}\n\nimpl Repo {\n"
            "    pub fn find(&self, id: &str) -> Option<u32> { None }\n"
            "    pub fn purge(&mut self) {}\n}\n",
            "service.rs": "pub fn store(repo: &mut Repo, id: &str) -> Option<u32> {\n"
            "    let found = repo.find(id);\n    found\n}\n",
        },
        "service.rs",
        "store",
        ["pub struct Repo {", "pub fn purge(&mut self) {}"],
    ),
}


def indexed(
    root: Path, files: dict[str, str], file: str, function: str
) -> tuple[WorkspaceIndex, Path, Definition]:
    """The workspace of `files`, indexed; `file`'s path and its definition `function`."""
    index = indexed_files(root, files)
    path = root / file
    return index, path, next(d for d in index.outline(path) if d.name == function)


def outlines_of(root: Path, files: dict[str, str], file: str, function: str, lang: str) -> str:
    index, _, target = indexed(root, files, file, function)
    built = explain_definition(index, root, target, budget=2_000, language=lang)
    return next((s.text for s in built.sections if s.name == "class outlines"), "")


@pytest.mark.parametrize("language", sorted(CASES))
def test_a_class_the_code_names_lends_its_members_to_the_outline(
    tmp_path: Path, language: str
) -> None:
    files, file, function, expected = CASES[language]
    text = outlines_of(tmp_path, files, file, function, language)
    for line in expected:
        assert line in text  # `purge` is named nowhere in the function
    assert f"```{language}\n" in text


def test_this_reaches_the_class_and_its_bases_in_other_files(tmp_path: Path) -> None:
    files = {
        "base.ts": "export class Base {\n  shared(): void {}\n  other(): number { return 1; }\n}\n",
        "child.ts": 'import { Base } from "./base";\n\nexport class Child extends Base {\n'
        "  own(): void {\n    this.shared();\n  }\n}\n",
    }
    text = outlines_of(tmp_path, files, "child.ts", "own", "typescript")
    assert "export class Base {" in text
    assert "other(): number { return 1; }" in text
    assert "class Child" not in text  # its own file is in the prompt already


def test_a_name_that_is_no_project_class_brings_no_outline(tmp_path: Path) -> None:
    files = {
        "service.ts": "export function store(repo: Map<string, number>, id: string) {\n"
        "  return repo.get(id);\n}\n",
    }
    assert outlines_of(tmp_path, files, "service.ts", "store", "typescript") == ""


def flow_of(root: Path, files: dict[str, str], file: str, function: str) -> dict[str, bool]:
    """The classes the type flow gives the function: name -> ruled (not a neighbour)."""
    index, path, target = indexed(root, files, file, function)
    flow = type_flow(index, path, path.read_text(), target.range, target)
    return {c.definition.name: not c.neighbour for c in flow.classes}


def test_a_field_the_class_declares_types_what_the_code_reaches_through_it(
    tmp_path: Path,
) -> None:
    files = {
        "frames.ts": "export class FrameManager {\n  mainFrame(): number { return 0; }\n"
        "  removeBinding(name: string): void {}\n}\n",
        # `#frames` names no class: only its declaration says it holds a FrameManager.
        "page.ts": 'import { FrameManager } from "./frames.js";\n\nexport class Page {\n'
        "  #frames: FrameManager;\n  constructor() {\n    this.#frames = make();\n  }\n"
        "  close(): void {\n    this.#frames.mainFrame();\n  }\n}\n",
    }
    assert flow_of(tmp_path, files, "page.ts", "close").get("FrameManager") is True
    text = outlines_of(tmp_path, files, "page.ts", "close", "typescript")
    assert "removeBinding(name: string): void {}" in text


def test_a_camel_case_receiver_names_its_class_by_its_last_words(tmp_path: Path) -> None:
    files = {
        "RenderObject.js": "export class RenderObject {\n  getMonitor() { return null; }\n"
        "  getNodeBuilderState() { return null; }\n}\n",
        "Nodes.js": "export function update( currentRenderObject ) {\n"
        "  const monitor = currentRenderObject.getMonitor();\n  return monitor;\n}\n",
    }
    assert flow_of(tmp_path, files, "Nodes.js", "update") == {"RenderObject": True}


def test_the_fields_the_class_reaches_elsewhere_are_neighbours(tmp_path: Path) -> None:
    files = {
        "emulation.ts": "export class EmulationManager {\n"
        "  setBackground(): void {}\n  resetBackground(): void {}\n}\n",
        # `screenshot` does not name the emulation manager yet; the class's other methods do.
        "page.ts": "export class Page {\n  #emulation = new EmulationManager();\n"
        "  emulate(): void {\n    this.#emulation.setBackground();\n  }\n"
        "  screenshot(): number {\n    const shot = 1;\n    return shot;\n  }\n}\n",
    }
    text = outlines_of(tmp_path, files, "page.ts", "screenshot", "typescript")
    assert "resetBackground(): void {}" in text


def test_the_methods_a_javascript_constructor_assigns_are_members(tmp_path: Path) -> None:
    files = {
        "Renderer.js": "class Renderer {\n  constructor() {\n"
        "    this.render = function ( scene ) { return scene; };\n"
        "    this.setSize = function ( w, h ) { return w * h; };\n  }\n}\n",
        "app.js": "export function draw( scene ) {\n  const renderer = new Renderer();\n"
        "  renderer.render( scene );\n  return renderer;\n}\n",
    }
    text = outlines_of(tmp_path, files, "app.js", "draw", "javascript")
    assert "this.setSize = function ( w, h ) { return w * h; };" in text


def test_a_rust_field_held_by_reference_is_typed_by_its_struct(tmp_path: Path) -> None:
    """`warnings: &'a CollectWarnings`: a lifetime between the `&` and the type."""
    files = {
        "warnings.rs": "pub struct CollectWarnings {\n    active: bool,\n}\n\n"
        "impl CollectWarnings {\n    pub fn on_fallback(&self, name: &str) {}\n}\n",
        "extra.rs": "pub struct Extra<'a> {\n    pub warnings: &'a CollectWarnings,\n}\n\n"
        "impl<'a> Extra<'a> {\n    pub fn fallback(&self, name: &str) -> u32 {\n"
        "        self.warnings.on_fallback(name);\n        0\n    }\n}\n",
    }
    assert flow_of(tmp_path, files, "extra.rs", "fallback").get("CollectWarnings") is True


GO_SERVER = {
    "repo.go": "package shop\n\ntype Repo struct {\n\tName string\n}\n\n"
    "func (r *Repo) Find(id string) int { return 0 }\n\nfunc (r *Repo) Purge() {}\n",
    "item.go": "package shop\n\ntype Item struct {\n\tID string\n}\n",
    # `db` and `cache` name no class: only the struct says what they hold.
    "server.go": "package shop\n\ntype Server struct {\n\tdb, backup *Repo\n"
    "\tcache map[string]*Item\n\tname string\n}\n\n"
    'func (s *Server) Close() {\n\ts.name = ""\n}\n',
    "handle.go": "package shop\n\nfunc (srv *Server) Handle(id string) int {\n"
    "\treturn srv.db.Find(id)\n}\n",
}


def test_a_go_field_is_typed_by_its_struct_through_the_methods_receiver(tmp_path: Path) -> None:
    """`srv.db.Find(id)` in `func (srv *Server)`: the receiver is Go's `this`, and `db,
    backup *Repo` in the struct says what `db` holds."""
    flow = flow_of(tmp_path, GO_SERVER, "handle.go", "Handle")
    assert flow.get("Repo") is True
    assert "Item" not in flow  # `cache` is not reached


def test_what_the_types_other_methods_reach_through_fields_is_a_neighbour_in_go_and_rust(
    tmp_path: Path,
) -> None:
    """A Go or Rust method is outside its struct: the type's other methods (in any file of a
    Go package, in the `impl`s) say which fields' classes come next."""
    go = tmp_path / "go"
    go.mkdir()
    assert flow_of(go, GO_SERVER, "server.go", "Close").get("Repo") is False  # a neighbour
    rust = tmp_path / "rust"
    rust.mkdir()
    files = {
        "registry.rs": "pub struct Registry {\n    size: u32,\n}\n\n"
        "impl Registry {\n    pub fn fetch(&self, key: &str) -> u32 { 0 }\n}\n",
        "validator.rs": "pub struct Validator {\n    lookup: Registry,\n    strict: bool,\n}\n\n"
        "impl Validator {\n    pub fn check(&self, key: &str) -> u32 {\n"
        "        self.lookup.fetch(key)\n    }\n\n"
        "    pub fn reset(&mut self) {\n        self.strict = false;\n    }\n}\n",
    }
    assert flow_of(rust, files, "validator.rs", "reset").get("Registry") is False


RUST_SPLIT = {
    "src/lib.rs": "mod model;\nmod ops;\nmod service;\nmod other;\n",
    "src/model.rs": "pub struct Repo {\n    name: String,\n}\n",
    # The type's methods are in another module, which brings it in by `use`.
    "src/ops.rs": "use crate::model::Repo;\n\n/// Prüfung — 5 € 🙂\nimpl Repo {\n"
    "    pub fn find(&self, id: &str) -> Option<u32> { None }\n"
    "    pub fn purge(&mut self) {}\n}\n// Ende — € 🙂",  # no newline after the last line
    # A module with a `Repo` of its own: its methods are not the model's.
    "src/other.rs": "pub struct Repo {\n    n: u8,\n}\n\nimpl Repo {\n"
    "    pub fn shrink(&mut self) {}\n}\n",
    "src/service.rs": "use crate::model::Repo;\n\n"
    "pub fn store(repo: &mut Repo, id: &str) -> Option<u32> {\n"
    "    let found = repo.find(id);\n    found\n}\n",
}


def test_a_rust_types_methods_in_another_modules_impl_are_its_members(tmp_path: Path) -> None:
    text = outlines_of(tmp_path, RUST_SPLIT, "src/service.rs", "store", "rust")
    assert "pub struct Repo {" in text
    assert "pub fn purge(&mut self) {}" in text  # named nowhere in `store`, from ops.rs
    assert "shrink" not in text  # the other module's Repo


GO_SESSION = {
    # Unexported types: lowercase names, which are a variable's anywhere but where a type goes.
    "session.go": "package db\n\ntype session struct {\n\tstor *iStorage\n}\n\n"
    "func newSession() *session { return &session{} }\n\n"
    "func openDB(s *session, f *tFile) error {\n\treturn nil\n}\n",
    "session_util.go": "package db\n\nfunc (s *session) version() int { return 0 }\n\n"
    "func (s *session) flushManifest() error { return nil }\n",
    "storage.go": "package db\n\ntype iStorage struct {\n\tn int\n}\n\n"
    "func (c *iStorage) reads() uint64 { return 0 }\n",
    "table.go": "package db\n\ntype tFile struct {\n\tsize int64\n}\n\n"
    "func (t *tFile) overlaps(a, b []byte) bool { return false }\n",
}


def test_go_unexported_types_type_the_code_where_a_type_goes(tmp_path: Path) -> None:
    """`s *session`, `f *tFile` in the header, and a method of `session` (its receiver's
    type): the tags say where a type goes, so a lowercase name there is the type."""
    flow = flow_of(tmp_path, GO_SESSION, "session.go", "openDB")
    assert flow.get("session") is True
    assert flow.get("tFile") is True
    method = flow_of(tmp_path, GO_SESSION, "session_util.go", "flushManifest")
    assert method.get("session") is True  # the receiver's struct, in another file


def test_a_go_struct_in_the_targets_file_lends_the_methods_other_files_define(
    tmp_path: Path,
) -> None:
    """The target's own file is in the prompt already, but a Go type's methods may be in
    any file of its package: those are outlined."""
    text = outlines_of(tmp_path, GO_SESSION, "session.go", "openDB", "go")
    assert "func (s *session) flushManifest() error" in text
    assert "func (t *tFile) overlaps(a, b []byte) bool" in text


def test_a_go_parameters_field_reaches_the_types_a_struct_embeds(tmp_path: Path) -> None:
    """`s.o.GetBlockCacher()` with `s *session`: the session's field `o *cachedOptions`
    says what `o` holds, and `cachedOptions` embeds `*opt.Options`, Go's base: its methods
    are the candidates."""
    files = {
        "opt/options.go": "package opt\n\ntype Options struct {\n\tBlockSize int\n}\n\n"
        "func (o *Options) GetBlockCacher() int { return 0 }\n\n"
        "func (o *Options) GetBlockSize() int { return o.BlockSize }\n",
        "options.go": 'package db\n\nimport "example.com/db/opt"\n\n'
        "type cachedOptions struct {\n\t*opt.Options\n\n\tcompactionTableSize []int\n}\n",
        "session.go": "package db\n\ntype session struct {\n\to *cachedOptions\n}\n",
        "table.go": "package db\n\nfunc newTableOps(s *session) int {\n"
        "\treturn s.o.GetBlockCacher()\n}\n",
    }
    assert flow_of(tmp_path, files, "table.go", "newTableOps").get("cachedOptions") is True
    text = outlines_of(tmp_path, files, "table.go", "newTableOps", "go")
    assert "func (o *Options) GetBlockSize() int" in text

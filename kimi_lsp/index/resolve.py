"""Import strings -> workspace files, by per-language rules and a path-suffix index.

Resolution is a best effort that needs no build system: relative imports are looked up next
to the importing file; absolute ones (``django.db.models``, ``com.x.Foo``,
``example.com/app/store``) by the longest path suffix that names a workspace file or folder.
When several files match, the one sharing the longest folder prefix with the importer wins.

Python's absolute imports name a module from the top of its package: ``typing`` is the
standard library's, not ``sqlalchemy/util/typing.py`` (whose name is
``sqlalchemy.util.typing``: its folders have an ``__init__.py``). So they are matched by the
modules' names worked out from the packages first; a path suffix serves only a dotted name
(a package laid out in a way the workspace's folders do not show), never a bare one.

JavaScript and TypeScript: a relative import with or without its extension (`./page.js`
also as the `./page.ts` it compiles from); the nearest `tsconfig.json`'s `paths`; the
workspace's own npm packages (a monorepo's, named by their `package.json`); an alias (`@/`,
`~/`, `#`) or a base-relative path whose whole path names a file. Anything else is a package
from node_modules, outside the workspace.

Rust: a `use` path walks the crate's module tree (`crate::`, `super::`, `self::`, a group
naming one file per path) from the crate's root: the nearest `lib.rs`/`main.rs` above the
file, or the file of a Cargo target of its own (`src/bin/x.rs`, `examples/x.rs`).
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

_INDEX_STEMS = frozenset({"__init__", "index", "mod", "lib", "main"})
_JS_EXTS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts", ".d.ts")
_JS_FAMILY = frozenset({"javascript", "typescript", "tsx"})
# TypeScript's ES modules import what a file compiles to: `./page.js` names `./page.ts`.
_TS_SOURCES = {
    ".js": (".ts", ".tsx", ".d.ts"),
    ".jsx": (".tsx",),
    ".mjs": (".mts", ".d.mts"),
    ".cjs": (".cts", ".d.cts"),
}
# The first segment of a path alias (tsconfig `paths`, a bundler's): `@/lib/db`, `~/lib/db`,
# `#lib/db` (Node's subpath imports) name the project's own files, never a package.
_ALIAS_MARKS = ("@", "~", "#")
_C_FAMILY = frozenset({"c", "cpp"})
_JVM_FAMILY = frozenset({"java", "scala"})


def _family(language: str) -> frozenset[str]:
    for fam in (_JS_FAMILY, _C_FAMILY, _JVM_FAMILY):
        if language in fam:
            return fam
    return frozenset({language})


def _strip_ext(name: str) -> str:
    if name.endswith(".d.ts"):
        return name[:-5]
    dot = name.rfind(".")
    return name[:dot] if dot > 0 else name


# What `tsconfig.json` allows beyond JSON: comments and trailing commas (strings kept whole).
_JSONC = re.compile(r'("(?:[^"\\\n]|\\.)*")|//[^\n]*|/\*.*?\*/|,(?=\s*[}\]])', re.S)


def _manifest(path: Path, *, lenient: bool = False) -> dict[str, Any]:
    """A `package.json`'s (or, ``lenient``, a `tsconfig.json`'s) fields; empty when there
    is none or it is not a JSON object."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # editors on Windows save a BOM
        if lenient:
            text = _JSONC.sub(lambda m: m.group(1) or "", text)
        data = json.loads(text)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _entries(manifest: dict[str, Any]) -> list[str]:
    """A package's entry points, its source first: `source`, the `.` export's paths,
    `types`, `module`, `main` (a built `dist/index.js` is found only if it is indexed)."""
    out: list[str] = []

    def add(value: Any) -> None:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                add(v)

    add(manifest.get("source"))
    exports = manifest.get("exports")
    add(exports.get(".") if isinstance(exports, dict) and "." in exports else exports)
    for key in ("types", "typings", "module", "main"):
        add(manifest.get(key))
    return list(dict.fromkeys(out))


# One import spec a line, in `import "x"` or an `import (...)` block: `pb "a/b/proto"`.
_GO_IMPORT = re.compile(
    r'^[ \t]*(?:import[ \t]+)?(?:([A-Za-z_]\w*|\.)[ \t]+)?"([^"\n]+)"[ \t]*(?://.*)?$', re.M
)
_GO_MAJOR = re.compile(r"v\d+")


def go_package_names(source: str) -> dict[str, str]:
    """A Go file's imports: the name its code writes for each (the alias, else the path's
    last part, or the one before a major version's `v2`) -> the imported package's folder
    name. Read from the text before the first function (imports come first)."""
    head = source.split("\nfunc ", 1)[0]
    out: dict[str, str] = {}
    for m in _GO_IMPORT.finditer(head):
        parts = [p for p in m.group(2).split("/") if p]
        if len(parts) > 1 and _GO_MAJOR.fullmatch(parts[-1]):
            parts.pop()
        if parts:
            out[m.group(1) or parts[-1]] = parts[-1]
    return out


_RUST_KEYWORDS = frozenset({"crate", "self", "super", "*", "as", ""})
_RUST_ALIAS = re.compile(r"\s+as\s+\w+")
# Beside a package's `src/`, the folders whose every .rs file is a crate of its own (Cargo).
_RUST_TARGETS = frozenset({"examples", "tests", "benches"})


def _rust_paths(module: str) -> list[list[str]]:
    """A `use` argument's paths, groups spread out, aliases and globs dropped:
    `super::{a, b::{C, self}}` -> [super, a], [super, b, C], [super, b]."""
    text = re.sub(r"\s+", "", _RUST_ALIAS.sub("", module))

    def spread(s: str) -> list[list[str]]:
        brace = s.find("{")
        if brace < 0:
            segments = [x for x in s.split("::") if x and x != "*"]
            return [segments] if segments else []
        prefix = [x for x in s[:brace].split("::") if x]
        inner = s[brace + 1 : s.rfind("}")] if "}" in s else s[brace + 1 :]
        parts, depth, start = [], 0, 0
        for i, ch in enumerate(inner):
            depth += ch == "{"
            depth -= ch == "}"
            if ch == "," and depth == 0:
                parts.append(inner[start:i])
                start = i + 1
        parts.append(inner[start:])
        return [prefix + tail for part in parts for tail in spread(part)]

    # `a::{self}` is `a` itself.
    return [p[:-1] if len(p) > 1 and p[-1] == "self" else p for p in spread(text)]


class ImportResolver:
    """Built from the workspace's files (and their languages); answers `resolve`."""

    def __init__(self, files: Iterable[tuple[Path, str]], roots: Iterable[Path]) -> None:
        self._language: dict[Path, str] = {}
        self._by_key: dict[str, list[Path]] = defaultdict(list)  # "a/b/c" (no ext) -> files
        self._by_name: dict[str, list[Path]] = defaultdict(list)  # "a/b/c.h" -> files
        self._dirs: dict[str, list[Path]] = defaultdict(list)  # "a/b" (folder) -> files in it
        roots = [Path(r) for r in roots]
        root_of: dict[Path, Path] = {}
        self._root_of = root_of
        self._packages: dict[str, tuple[Path, list[str]]] | None = None
        self._tsconfigs: dict[Path, tuple[Path, dict[str, list[str]]] | None] = {}
        self._rust_roots: set[Path] = set()  # crate roots: `lib.rs`, `main.rs`
        for path, language in files:
            self._language[path] = language
            if language == "rust" and path.name in ("lib.rs", "main.rs"):
                self._rust_roots.add(path)
            root = root_of[path] = next((r for r in roots if r in path.parents), path.parent)
            parts = path.relative_to(root).parts
            stem = _strip_ext(parts[-1])
            keyed = [*parts[:-1]] if stem in _INDEX_STEMS else [*parts[:-1], stem]
            for i in range(len(parts)):
                self._by_name["/".join(parts[i:])].append(path)
            for i in range(len(keyed)):
                self._by_key["/".join(keyed[i:])].append(path)
            if stem in _INDEX_STEMS and stem != "__init__":
                for i in range(len(parts)):
                    self._by_key["/".join([*parts[i:-1], stem])].append(path)
            folder = parts[:-1]
            for i in range(len(folder)):
                self._dirs["/".join(folder[i:])].append(path)
        # Python modules by the names an absolute import gives them: up the folders while
        # each is a package (has an ``__init__``), the root's own name included when it is one.
        self._modules: dict[str, list[Path]] = defaultdict(list)
        packages = {
            p.parent
            for p, lang in self._language.items()
            if lang == "python" and p.stem == "__init__"
        }
        for path, language in self._language.items():
            if language != "python":
                continue
            root = root_of[path]
            names = [] if path.stem == "__init__" else [path.stem]
            package = path.parent
            while package in packages:
                names.append(package.name)
                if package == root:
                    break
                package = package.parent
            if names:
                self._modules["/".join(reversed(names))].append(path)

    def _pick(self, importer: Path, candidates: list[Path]) -> list[Path]:
        fam = _family(self._language.get(importer, ""))
        same = [c for c in candidates if self._language.get(c) in fam and c != importer]
        if not same:
            return []
        best = max(same, key=lambda c: len(os.path.commonpath([c, importer])))
        return [best]

    def _relative(self, base: Path, rel: str, exts: Iterable[str]) -> list[Path]:
        target = Path(os.path.normpath(base / rel))
        options = [target, *(Path(f"{target}{e}") for e in exts)]
        options += [target / f"index{e}" for e in exts]
        options += [target / "__init__.py", target / "mod.rs"]
        return [o for o in options if o in self._language][:1]

    def _by_keys(
        self,
        importer: Path,
        segments: list[str],
        min_len: int = 1,
        keys: dict[str, list[Path]] | None = None,
    ) -> list[Path]:
        """Longest prefix of `segments` that is a known module key (dropping trailing names)."""
        table = self._by_key if keys is None else keys
        for n in range(len(segments), min_len - 1, -1):
            if n == 0:
                break
            hits = table.get("/".join(segments[:n]))
            if hits:
                picked = self._pick(importer, hits)
                if picked:
                    return picked
        return []

    def _rust_file(self, folder: Path, name: str) -> Path | None:
        """The file of module ``name`` declared in the module owning ``folder``."""
        for option in (folder / f"{name}.rs", folder / name / "mod.rs"):
            if option in self._language:
                return option
        return None

    def _rust_owner(self, folder: Path) -> Path | None:
        """The file of the module whose submodules live in ``folder``."""
        for option in (folder / "mod.rs", folder / "lib.rs", folder / "main.rs"):
            if option in self._language:
                return option
        return self._rust_file(folder.parent, folder.name)

    def _rust_root(self, importer: Path) -> Path | None:
        """The folder of the crate's root module, nearest first: one holding a `lib.rs` or
        `main.rs`, or Cargo's target of one file (`src/bin/x.rs`, `examples/x.rs`: a crate
        of its own, its modules in `src/bin/x/`)."""
        if self._rust_targets(importer.parent) and importer.stem not in ("lib", "main", "mod"):
            return importer.with_suffix("")
        for d in importer.parents:
            if {d / "lib.rs", d / "main.rs"} & self._rust_roots:
                return d
            if self._rust_targets(d.parent) and d.parent / f"{d.name}.rs" in self._language:
                return d
        return None

    def _rust_targets(self, folder: Path) -> bool:
        """Whether each `.rs` file in ``folder`` is a crate of its own: a package's
        `src/bin/`, or its `examples/`, `tests/`, `benches/` beside a `src/` with a root."""
        if folder.name == "bin":
            return folder.parent.name == "src"
        src = folder.parent / "src"
        return folder.name in _RUST_TARGETS and bool(
            {src / "lib.rs", src / "main.rs"} & self._rust_roots
        )

    def _rust(self, importer: Path, module: str) -> list[Path]:
        """The files a `use` (or `mod name;`) names, walked down the crate's module tree:
        `crate::` from the crate's root (`_rust_root`), `super::` from the parent module,
        `self::` and a bare path from this module (a bare path then from the root, as the
        2015 edition reads it); each segment that is a module
        (`a.rs`, `a/mod.rs`) goes one down, and the module reached is the file (what
        follows names its items). A group names one file per path:
        `super::{build_validator, fields::Field}`. Other crates' paths (`std::`, `pyo3::`)
        name none."""
        own = (
            importer.parent if importer.stem in ("mod", "lib", "main") else importer.with_suffix("")
        )
        if "::" not in module and "{" not in module:  # `mod name;`
            found = self._rust_file(own, module)
            return [found] if found is not None else []
        root = self._rust_root(importer)
        out: list[Path] = []
        for segments in _rust_paths(module):
            starts: list[tuple[Path | None, Path]] = []  # (the module's file, its folder)
            head, rest = segments[0], segments[1:]
            if head == "crate":
                starts = [(self._rust_owner(root), root)] if root is not None else []
            elif head == "super":
                folder = own.parent
                while rest[:1] == ["super"]:
                    folder, rest = folder.parent, rest[1:]
                starts = [(self._rust_owner(folder), folder)]
            elif head == "self":
                starts = [(importer, own)]
            else:
                rest = segments
                starts = [(importer, own)]
                if root is not None:
                    starts.append((self._rust_owner(root), root))
            for file, folder in starts:
                reached, walked = file, 0
                for name in rest:
                    sub = self._rust_file(folder, name)
                    if sub is None:
                        break
                    reached, folder, walked = sub, folder / name, walked + 1
                if head not in ("crate", "super", "self") and walked == 0:
                    continue  # a bare path that is no module here: another crate's
                if reached is not None and reached != importer and reached not in out:
                    out.append(reached)
                break  # the first start the path is found from is its meaning
        if not out and root is None:  # no crate root in the workspace: by the path's names
            names = [s for s in re.split(r"::|[{},\s]+", module) if s not in _RUST_KEYWORDS]
            return self._by_keys(importer, [n for n in names if n])
        return out

    def _source_file(self, base: Path, rel: str) -> list[Path]:
        """A JavaScript/TypeScript path relative to ``base``, with or without its extension;
        `./page.js` also as the `./page.ts` it compiles from."""
        found = self._relative(base, rel, _JS_EXTS)
        stem, ext = os.path.splitext(rel)
        for source_ext in _TS_SOURCES.get(ext, ()) if not found else ():
            found = self._relative(base, stem + source_ext, ())
            if found:
                break
        return found

    def _javascript(self, importer: Path, module: str) -> list[Path]:
        if module.startswith("."):
            return self._source_file(importer.parent, module)
        for base, target in self._path_mappings(importer, module):  # tsconfig `paths`
            found = self._source_file(base, f"./{target}")
            if found:
                return found
        segments = [s for s in module.split("/") if s]
        scoped = 2 if module.startswith("@") and not module.startswith("@/") else 1
        package = self._workspace_packages().get("/".join(segments[:scoped]))
        if package is not None:  # a monorepo's own package (npm/pnpm/yarn workspaces)
            return self._package_file(package, "/".join(segments[scoped:]))
        if segments and (segments[0] in _ALIAS_MARKS or segments[0][:1] == "#"):
            segments[0] = segments[0][1:]  # `@/lib/db` -> lib/db, `#lib/db` -> lib/db
            segments = [s for s in segments if s]
        elif len(segments) < 2 or segments[0].startswith("@"):
            return []  # a package from node_modules (`react`, `@scope/pkg`)
        # A path from the project's base (`baseUrl`, an alias): the whole of it must name a
        # file or a folder's index, or it is a package's (`lodash/fp`).
        stem, ext = os.path.splitext(segments[-1]) if segments else ("", "")
        if ext in _TS_SOURCES or ext in _JS_EXTS:
            segments[-1] = stem
        return self._by_keys(importer, segments, min_len=len(segments)) if segments else []

    def _workspace_packages(self) -> dict[str, tuple[Path, list[str]]]:
        """The workspace's own npm packages (a monorepo's `packages/*`): name -> (folder,
        its entry points), from the `package.json` files above the indexed JavaScript and
        TypeScript files; read once, when a bare import first asks."""
        if self._packages is None:
            found: dict[str, tuple[Path, list[str]]] = {}
            seen: set[Path] = set()
            for path, language in sorted(self._language.items()):
                if language not in _JS_FAMILY:
                    continue
                folder, top = path.parent, self._root_of[path]
                while folder not in seen:
                    seen.add(folder)
                    manifest = _manifest(folder / "package.json")
                    name = manifest.get("name")
                    if isinstance(name, str) and name and name not in found:
                        found[name] = (folder, _entries(manifest))
                    if folder == top or folder.parent == folder:
                        break
                    folder = folder.parent
            self._packages = found
        return self._packages

    def _path_mappings(self, importer: Path, module: str) -> list[tuple[Path, str]]:
        """What the nearest `tsconfig.json`'s `compilerOptions.paths` map ``module`` to:
        (the folder a target is relative to, the target), most specific pattern first."""
        config = self._tsconfig(importer.parent, self._root_of.get(importer, importer.parent))
        if config is None:
            return []
        base, paths = config
        out: list[tuple[int, Path, str]] = []
        for pattern, targets in paths.items():
            head, star, tail = pattern.partition("*")
            if star and module.startswith(head) and module.endswith(tail):
                middle = module[len(head) : len(module) - len(tail)]
            elif not star and module == pattern:
                middle = ""
            else:
                continue
            out += [(-len(head), base, t.replace("*", middle)) for t in targets]
        return [(b, t) for _, b, t in sorted(out, key=lambda o: o[0])]

    def _tsconfig(self, folder: Path, top: Path) -> tuple[Path, dict[str, list[str]]] | None:
        """The nearest `tsconfig.json` at or above ``folder`` (up to the root) that maps
        paths: (its base folder, its `paths`); memoised per folder."""
        if folder in self._tsconfigs:
            return self._tsconfigs[folder]
        found: tuple[Path, dict[str, list[str]]] | None = None
        options = _manifest(folder / "tsconfig.json", lenient=True).get("compilerOptions")
        paths = options.get("paths") if isinstance(options, dict) else None
        if isinstance(options, dict) and isinstance(paths, dict):
            base = options.get("baseUrl")
            found = (
                Path(os.path.normpath(folder / base)) if isinstance(base, str) else folder,
                {
                    k: [t for t in v if isinstance(t, str)]
                    for k, v in paths.items()
                    if isinstance(v, list)
                },
            )
        elif folder != top and folder.parent != folder:
            found = self._tsconfig(folder.parent, top)
        self._tsconfigs[folder] = found
        return found

    def _package_file(self, package: tuple[Path, list[str]], sub: str) -> list[Path]:
        """The file a workspace package's import names: its subpath (from the package's
        folder or its `src/`), else its entry points, else its `src/index` or `index`."""
        folder, entries = package
        if sub:
            return self._source_file(folder, f"./{sub}") or self._source_file(
                folder / "src", f"./{sub}"
            )
        for rel in [*entries, "./src/index", "./index"]:
            found = self._source_file(folder, rel if rel.startswith(".") else f"./{rel}")
            if found:
                return found
        return []

    def resolve(self, importer: Path, module: str) -> list[Path]:
        language = self._language.get(importer)
        if language is None or not module:
            return []
        here = importer.parent
        if language == "python":
            if module.startswith("."):
                dots = len(module) - len(module.lstrip("."))
                base = here
                for _ in range(dots - 1):
                    base = base.parent
                rest = module[dots:].replace(".", "/")
                return self._relative(base, rest or ".", (".py", ".pyi"))
            segments = module.split(".")
            found = self._by_keys(importer, segments, keys=self._modules)
            return found or self._by_keys(importer, segments, min_len=2)
        if language in _JS_FAMILY:
            return self._javascript(importer, module)
        if language in _C_FAMILY:
            local = self._relative(here, module, ())
            if local:
                return local
            inc = PurePosixPath(module).parts
            for i in range(len(inc)):
                hits = self._by_name.get("/".join(inc[i:]))
                if hits:
                    return self._pick(importer, hits)
            return []
        if language == "go":
            parts = module.split("/")
            for i in range(len(parts)):
                if len(parts) - i < min(2, len(parts)):
                    break
                hits = self._dirs.get("/".join(parts[i:]))
                if hits:
                    fam = self._language
                    return sorted(h for h in hits if fam.get(h) == "go" and h.parent != here)
            return []
        if language == "rust":
            return self._rust(importer, module)
        if language in ("ruby", "php"):
            if module.endswith((".rb", ".php")) or language == "ruby":
                exts = (".rb",) if language == "ruby" else ()
                local = self._relative(here, module, exts)
                if local:
                    return local
            separator = "\\" if language == "php" else "/"
            return self._by_keys(importer, _strip_ext(module).split(separator))
        if language == "lua":
            return self._by_keys(importer, module.split("."))
        # java, scala, c_sharp: dotted names, the last segment(s) may be classes
        return self._by_keys(importer, module.split("."), min_len=1)

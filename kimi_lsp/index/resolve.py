"""Import strings -> workspace files, by per-language rules and a path-suffix index.

Resolution is a best effort that needs no build system: relative imports are looked up next
to the importing file; absolute ones (``django.db.models``, ``com.x.Foo``, ``crate::a::b``,
``example.com/app/store``) by the longest path suffix that names a workspace file or folder.
When several files match, the one sharing the longest folder prefix with the importer wins.

Python's absolute imports name a module from the top of its package: ``typing`` is the
standard library's, not ``sqlalchemy/util/typing.py`` (whose name is
``sqlalchemy.util.typing``: its folders have an ``__init__.py``). So they are matched by the
modules' names worked out from the packages first; a path suffix serves only a dotted name
(a package laid out in a way the workspace's folders do not show), never a bare one.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

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


class ImportResolver:
    """Built from the workspace's files (and their languages); answers `resolve`."""

    def __init__(self, files: Iterable[tuple[Path, str]], roots: Iterable[Path]) -> None:
        self._language: dict[Path, str] = {}
        self._by_key: dict[str, list[Path]] = defaultdict(list)  # "a/b/c" (no ext) -> files
        self._by_name: dict[str, list[Path]] = defaultdict(list)  # "a/b/c.h" -> files
        self._dirs: dict[str, list[Path]] = defaultdict(list)  # "a/b" (folder) -> files in it
        roots = [Path(r) for r in roots]
        root_of: dict[Path, Path] = {}
        for path, language in files:
            self._language[path] = language
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

    def _javascript(self, importer: Path, module: str) -> list[Path]:
        if module.startswith("."):
            found = self._relative(importer.parent, module, _JS_EXTS)
            stem, ext = os.path.splitext(module)
            for source_ext in _TS_SOURCES.get(ext, ()) if not found else ():
                found = self._relative(importer.parent, stem + source_ext, ())
                if found:
                    break
            return found
        segments = [s for s in module.split("/") if s]
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
            if "::" not in module:  # `mod name;`
                return self._relative(here, module, (".rs",))
            names = [s for s in module.split("::") if s not in ("crate", "self", "super")]
            return self._by_keys(importer, [s.strip("{} ") for s in names if s.strip("{} *")])
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

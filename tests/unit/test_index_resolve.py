"""Import strings resolved to workspace files, per language."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kimi_lsp.index.languages import language_for
from kimi_lsp.index.resolve import ImportResolver

ROOT = Path("/ws")
FILES = [
    "pkg/__init__.py",
    "pkg/db/models.py",
    "pkg/db/__init__.py",
    "pkg/views.py",
    "pkg/util/__init__.py",
    "pkg/util/typing.py",
    "scripts/tool.py",
    "scripts/helpers.py",
    "vendor/lib/extlib/__init__.py",
    "vendor/lib/extlib/core.py",
    "web/src/app.ts",
    "web/src/util/index.ts",
    "web/src/fmt.tsx",
    "web/src/api/page.ts",
    "web/src/api/index.ts",
    "web/src/lib/db.ts",
    "web/src/lib/ui/button.tsx",
    "cmd/main.go",
    "internal/store/store.go",
    "internal/store/cache.go",
    "src/lib.rs",
    "src/config.rs",
    "src/net/mod.rs",
    "include/buffer.h",
    "src/buffer.c",
    "java/com/acme/Account.java",
    "java/com/acme/Main.java",
    "lib/shop/order.rb",
    "lib/shop/item.rb",
    "lua/app/init.lua",
    "lua/app/json.lua",
    "php/App/Models/Product.php",
    "php/App/Cart.php",
    "php/helpers.php",
]


@pytest.fixture(scope="module")
def resolver() -> ImportResolver:
    files = [(ROOT / f, language_for(f) or "") for f in FILES]
    return ImportResolver(files, [ROOT])


@pytest.mark.parametrize(
    ("importer", "module", "expected"),
    [
        ("pkg/views.py", "pkg.db.models", ["pkg/db/models.py"]),
        ("pkg/views.py", "pkg.db.models.Model", ["pkg/db/models.py"]),  # `from x import Name`
        ("pkg/views.py", "pkg.db", ["pkg/db/__init__.py"]),
        ("pkg/db/models.py", ".", ["pkg/db/__init__.py"]),
        ("pkg/db/models.py", "..views", ["pkg/views.py"]),
        ("pkg/views.py", "json", []),  # the standard library is not in the workspace
        # Not pkg/util/typing.py: its name is pkg.util.typing.
        ("pkg/views.py", "typing", []),
        ("pkg/views.py", "typing.Any", []),  # `from typing import Any`
        ("pkg/views.py", "pkg.util.typing", ["pkg/util/typing.py"]),
        ("scripts/tool.py", "helpers", ["scripts/helpers.py"]),  # a folder of scripts
        ("pkg/views.py", "extlib.core", ["vendor/lib/extlib/core.py"]),
        ("web/src/app.ts", "./util", ["web/src/util/index.ts"]),
        ("web/src/app.ts", "./fmt", ["web/src/fmt.tsx"]),
        ("web/src/app.ts", "react", []),
        # TypeScript's ES modules name the compiled file: `./api/page.js` is `./api/page.ts`.
        ("web/src/app.ts", "./api/page.js", ["web/src/api/page.ts"]),
        ("web/src/api/page.ts", "../fmt.js", ["web/src/fmt.tsx"]),
        ("web/src/api/page.ts", "./missing.js", []),
        # Path aliases and base-relative paths name the project's files; packages stay out.
        ("web/src/app.ts", "@/lib/db", ["web/src/lib/db.ts"]),
        ("web/src/app.ts", "~/lib/ui/button", ["web/src/lib/ui/button.tsx"]),
        ("web/src/app.ts", "#lib/db", ["web/src/lib/db.ts"]),
        ("web/src/app.ts", "src/lib/db.js", ["web/src/lib/db.ts"]),
        ("web/src/app.ts", "@/api", ["web/src/api/index.ts"]),
        ("web/src/app.ts", "@/lib/missing", []),
        ("web/src/app.ts", "@acme/lib", []),  # a scoped package
        ("web/src/app.ts", "lodash/fp", []),
        (
            "cmd/main.go",
            "example.com/app/internal/store",
            [
                "internal/store/cache.go",
                "internal/store/store.go",
            ],
        ),
        ("src/lib.rs", "config", ["src/config.rs"]),  # `mod config;`
        ("src/lib.rs", "crate::net::Socket", ["src/net/mod.rs"]),
        ("src/buffer.c", "buffer.h", ["include/buffer.h"]),
        ("src/buffer.c", "stdlib.h", []),
        ("java/com/acme/Main.java", "com.acme.Account", ["java/com/acme/Account.java"]),
        ("lib/shop/order.rb", "item", ["lib/shop/item.rb"]),  # require_relative
        ("lib/shop/order.rb", "shop/item", ["lib/shop/item.rb"]),
        ("lua/app/init.lua", "app.json", ["lua/app/json.lua"]),
        ("php/App/Cart.php", "App\\Models\\Product", ["php/App/Models/Product.php"]),
        ("php/App/Cart.php", "../helpers.php", ["php/helpers.php"]),
    ],
)
def test_resolve(resolver: ImportResolver, importer: str, module: str, expected: list[str]) -> None:
    got = resolver.resolve(ROOT / importer, module)
    assert [p.relative_to(ROOT).as_posix() for p in got] == expected


def resolver_on_disk(
    root: Path, files: dict[str, str], importer: str
) -> Callable[[str], list[str]]:
    """`files` written under `root`, their TypeScript indexed: what `importer` resolves a
    module to, as paths relative to `root`."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    sources = [root / f for f in files if f.endswith(".ts")]
    resolver = ImportResolver([(f, "typescript") for f in sources], [root])
    return lambda module: [
        p.relative_to(root).as_posix() for p in resolver.resolve(root / importer, module)
    ]


def test_a_monorepo_package_is_resolved_to_its_source(tmp_path: Path) -> None:
    """npm/pnpm/yarn workspaces: `@acme/utils` is the workspace's own package, found by
    the `package.json` that names it; its built `dist/` is not indexed, its source is."""
    files = {
        "packages/utils/package.json": '{"name": "@acme/utils", "main": "dist/index.js"}',
        "packages/utils/src/index.ts": "export const x = 1;\n",
        "packages/utils/src/strings.ts": "export const y = 1;\n",
        "packages/ui/package.json": '{"name": "ui", "exports": {".": {"import": "./lib/ui.ts"}}}',
        "packages/ui/lib/ui.ts": "export const z = 1;\n",
        "packages/broken/package.json": "{not json",
        "packages/broken/index.ts": "export const w = 1;\n",
        "apps/web/package.json": '{"name": "web"}',
        "apps/web/src/main.ts": "export const m = 1;\n",
    }
    resolve = resolver_on_disk(tmp_path, files, "apps/web/src/main.ts")

    assert resolve("@acme/utils") == ["packages/utils/src/index.ts"]
    assert resolve("@acme/utils/strings") == ["packages/utils/src/strings.ts"]
    assert resolve("ui") == ["packages/ui/lib/ui.ts"]  # its `exports`
    assert resolve("@acme/other") == []  # from node_modules
    assert resolve("react") == []


def test_tsconfig_paths_map_aliases_to_files(tmp_path: Path) -> None:
    """`compilerOptions.paths` (with `baseUrl`) of the nearest tsconfig.json, which may
    hold comments and trailing commas; `@app/...` looks like a scoped package, but the
    mapping says it is the project's."""
    config = (
        '{\n  // Angular-style aliases\n  "compilerOptions": {\n    "baseUrl": "./src",\n'
        '    "paths": {\n      "@app/*": ["app/*"], /* the app */\n'
        '      "@env": ["environments/environment.ts"],\n'
        '      "@docs/*": ["docs//*"],\n    },\n  },\n}\n'
    )
    files = {
        "tsconfig.json": "\ufeff" + config,  # as Visual Studio saves it, with a BOM
        "src/app/core/auth.ts": "export const a = 1;\n",
        "src/environments/environment.ts": "export const e = 1;\n",
        "src/main.ts": "export const m = 1;\n",
    }
    resolve = resolver_on_disk(tmp_path, files, "src/main.ts")

    assert resolve("@app/core/auth") == ["src/app/core/auth.ts"]
    assert resolve("@env") == ["src/environments/environment.ts"]
    assert resolve("@app/missing") == []
    assert resolve("@angular/core") == []


RUST_CRATE = [
    "core/src/lib.rs",
    "core/src/tools.rs",
    "core/src/errors/mod.rs",
    "core/src/errors/types.rs",
    "core/src/validators/mod.rs",
    "core/src/validators/union.rs",
    "core/src/validators/union/helpers.rs",
    "core/src/helpers.rs",  # a root module sharing a name with union.rs's own
    "core/src/validators/fields.rs",
    "core/src/bin/cli.rs",  # a binary: a crate of its own, its modules in bin/cli/
    "core/src/bin/cli/args.rs",
    "core/src/bin/tool/main.rs",  # a binary of a folder
    "core/src/bin/tool/opts.rs",
]


@pytest.mark.parametrize(
    ("importer", "module", "expected"),
    [
        # `crate::` from the crate's root, down the modules the path names.
        ("validators/union.rs", "crate::errors::types::ErrorType", ["errors/types.rs"]),
        ("validators/union.rs", "crate::errors::ValError", ["errors/mod.rs"]),
        ("validators/union.rs", "crate::tools::SchemaDict", ["tools.rs"]),
        # `super::` is the parent module: a sibling file's parent is its folder's `mod.rs`.
        ("validators/union.rs", "super::Validator", ["validators/mod.rs"]),
        ("validators/union.rs", "super::fields::Field", ["validators/fields.rs"]),
        ("validators/mod.rs", "super::tools::py_err", ["tools.rs"]),
        ("validators/union.rs", "super::super::tools::py_err", ["tools.rs"]),
        # A group names one file per path; `self` in a group is the module itself.
        (
            "validators/union.rs",
            "super::{\n    build_validator, fields::{self, Field}, Validator,\n}",
            ["validators/mod.rs", "validators/fields.rs"],
        ),
        (
            "validators/union.rs",
            "crate::errors::{types::ErrorType as E, ValError}",
            ["errors/types.rs", "errors/mod.rs"],
        ),
        ("lib.rs", "crate::errors::*", ["errors/mod.rs"]),
        # `self::` and a bare path start at this module: `union.rs`'s are in `union/`.
        ("validators/union.rs", "self::helpers::pick", ["validators/union/helpers.rs"]),
        ("validators/union.rs", "helpers::pick", ["validators/union/helpers.rs"]),
        ("validators/mod.rs", "union::UnionValidator", ["validators/union.rs"]),
        ("validators/union.rs", "helpers", ["validators/union/helpers.rs"]),  # `mod helpers;`
        # The module a path finds first is the one: the second path of a group too.
        ("validators/union.rs", "helpers::{pick, Other}", ["validators/union/helpers.rs"]),
        ("validators/mod.rs", "fields", ["validators/fields.rs"]),
        # A binary's `crate::` is the binary, not the library beside it.
        ("bin/cli.rs", "crate::args::Args", ["bin/cli/args.rs"]),
        ("bin/cli/args.rs", "crate::Config", ["bin/cli.rs"]),
        ("bin/cli.rs", "args", ["bin/cli/args.rs"]),  # `mod args;`
        ("bin/tool/opts.rs", "crate::Tool", ["bin/tool/main.rs"]),
        # Another crate's paths are not the workspace's, even where a module shares a name.
        ("validators/union.rs", "std::fmt::Write", []),
        ("validators/union.rs", "pyo3::types::{PyDict, PyList}", []),
        ("validators/mod.rs", "std::fields::X", []),
    ],
)
def test_rust_paths_walk_the_crates_module_tree(
    importer: str, module: str, expected: list[str]
) -> None:
    base = ROOT / "core" / "src"
    resolver = ImportResolver([(ROOT / f, "rust") for f in RUST_CRATE], [ROOT])
    got = resolver.resolve(base / importer, module)
    assert [p.relative_to(base).as_posix() for p in got] == expected


def test_a_rust_example_is_a_crate_but_a_tests_module_inside_src_is_not() -> None:
    """Cargo builds each `.rs` of `examples/`, `tests/` and `benches/` beside `src/` as a
    crate: its `crate::` is itself. A module folder that happens to be named `tests` inside
    `src/` is the library's."""
    files = [
        "pkg/src/lib.rs",
        "pkg/src/util.rs",
        "pkg/src/tests/mod.rs",
        "pkg/src/tests/helpers.rs",
        "pkg/examples/demo.rs",
        "pkg/examples/demo/util.rs",
    ]
    resolver = ImportResolver([(ROOT / f, "rust") for f in files], [ROOT])
    pkg = ROOT / "pkg"

    def names(importer: str, module: str) -> list[str]:
        return [p.relative_to(pkg).as_posix() for p in resolver.resolve(pkg / importer, module)]

    assert names("examples/demo.rs", "crate::util::run") == ["examples/demo/util.rs"]
    assert names("src/tests/helpers.rs", "crate::util::run") == ["src/util.rs"]
    assert names("src/tests/mod.rs", "crate::util::run") == ["src/util.rs"]

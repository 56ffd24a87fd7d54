"""Generate tests: find the project's framework and test file, then stream the tests into it.

Python (pytest or unittest), JavaScript/TypeScript (vitest, jest, or node's test runner), Go
(``go test``), Rust (``cargo test``: a ``tests`` module in the same file) and Java (JUnit,
``src/test/java``). An existing test file gets the new tests appended (streamed like any
edit); a missing one is created (``CreateFile`` + insert in one workspace edit).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kimi_lsp.actions.pipeline import Sink
from kimi_lsp.actions.prompts import OUTPUT_TOKENS, build_messages
from kimi_lsp.actions.readiness import wait_for_index
from kimi_lsp.actions.refactor import AnswerStreamer, EditingSink, Editor
from kimi_lsp.actions.services import Services
from kimi_lsp.actions.target import find_target
from kimi_lsp.edits.answer import code_so_far
from kimi_lsp.edits.stream import RegionWriter, split_lines
from kimi_lsp.index import Span, language_for

TESTS_MAX_TOKENS = OUTPUT_TOKENS["tests"]


@dataclass(frozen=True)
class TestPlan:
    framework: str  # what the prompt names, e.g. "pytest"
    test_file: Path
    exists: bool
    style_example: str  # the start of an existing test file of the project, for its style


def _project_root(path: Path, roots: list[Path]) -> Path:
    for root in roots:
        if path.is_relative_to(root):
            return root
    return path.parent


def _read(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:limit]
    except OSError:
        return ""


def _first_existing(candidates: list[Path]) -> Path | None:
    return next((c for c in candidates if c.is_file()), None)


def _example(root: Path, pattern: str) -> str:
    for found in sorted(root.glob(pattern))[:50]:
        if "node_modules" not in found.parts and ".venv" not in found.parts:
            return _read(found, 1500)
    return ""


def plan_tests(path: Path, roots: list[Path]) -> TestPlan:
    root = _project_root(path, roots)
    lang = language_for(path) or ""
    stem = path.stem
    if lang == "python":
        candidates = [
            root / "tests" / f"test_{stem}.py",
            path.parent / f"test_{stem}.py",
            root / "test" / f"test_{stem}.py",
        ]
        existing = _first_existing(candidates)
        example = _read(existing) if existing else _example(root, "**/test_*.py")
        config = (
            _read(root / "pyproject.toml")
            + _read(root / "setup.cfg")
            + _read(root / "requirements-dev.txt")
        )
        unittest = "import unittest" in example and "pytest" not in config + example
        framework = "unittest" if unittest else "pytest"
        target = existing or (candidates[0] if (root / "tests").is_dir() else candidates[1])
        return TestPlan(framework, target, existing is not None, example)
    if lang in ("javascript", "typescript", "tsx"):
        ext = path.suffix
        candidates = [
            path.with_name(f"{stem}.test{ext}"),
            path.with_name(f"{stem}.spec{ext}"),
            path.parent / "__tests__" / f"{stem}.test{ext}",
        ]
        existing = _first_existing(candidates)
        pkg = _read(root / "package.json", 20000)
        try:
            deps = json.loads(pkg) if pkg else {}
        except ValueError:
            deps = {}
        names = {**deps.get("dependencies", {}), **deps.get("devDependencies", {})}
        framework = (
            "vitest"
            if "vitest" in names
            else "jest"
            if "jest" in names
            else ("node:test (node's built-in test runner)")
        )
        example = _read(existing) if existing else _example(root, f"**/*.test{ext}")
        return TestPlan(framework, existing or candidates[0], existing is not None, example)
    if lang == "go":
        test_file = path.with_name(f"{stem}_test.go")
        return TestPlan(
            "go test (package testing)",
            test_file,
            test_file.is_file(),
            _read(test_file) or _example(root, "**/*_test.go"),
        )
    if lang == "rust":
        return TestPlan(
            "cargo test (a #[cfg(test)] mod tests in this file)",
            path,
            True,
            _example(root, "**/tests/*.rs"),
        )
    if lang == "java":
        text = _read(path)
        package = re.search(r"^\s*package\s+([\w.]+)\s*;", text, re.M)
        rel = Path(*package.group(1).split(".")) if package else Path()
        test_file = root / "src" / "test" / "java" / rel / f"{stem}Test.java"
        return TestPlan(
            "JUnit 5",
            test_file,
            test_file.is_file(),
            _read(test_file) or _example(root, "src/test/**/*Test.java"),
        )
    ext = path.suffix
    test_file = path.with_name(f"test_{stem}{ext}")
    return TestPlan("the project's usual test framework", test_file, test_file.is_file(), "")


@dataclass
class TestsResult:
    test_file: Path
    created: bool
    applied: bool
    reason: str
    cached: bool
    code: str


class Creator(Protocol):
    """Creates a file with its content in one workspace edit (the server implements this)."""

    async def create(self, path: Path, text: str) -> bool: ...


async def generate_tests(
    services: Services,
    path: Path,
    text: str,
    line: int,
    col: int,
    sink: Sink,
    *,
    open_test_file: Callable[[Path], Editor],
    creator: Creator,
    selection: Span | None = None,
    regenerate: bool = False,
) -> TestsResult:
    await wait_for_index(services, sink)  # the prompt sees the whole workspace
    target = find_target(services.index, path, text, line, col, selection)
    plan = plan_tests(path, services.roots)
    where = "appended to" if plan.exists else "the new file"
    extra = f"The tests go into {plan.test_file.name} ({where})."
    if plan.style_example:
        extra += (
            "\n\nAn existing test file of this project, for its style:\n"
            f"```{target.language}\n{plan.style_example.rstrip()}\n```"
        )
    messages = build_messages(
        services, "tests", target, text, framework=plan.framework, extra=extra
    )
    if plan.exists:
        editor = open_test_file(plan.test_file)
        lines = split_lines(editor.text())
        writer = RegionWriter(len(lines), [])
        prefix = ["\n"] if lines and lines[-1].strip() else []
        if lines and not lines[-1].endswith("\n"):
            prefix = ["\n", "\n"]
        streamer = AnswerStreamer(
            editor, writer, [], review=False, prefix=prefix, label="Kimi: generate tests"
        )
        editing: Sink = EditingSink(sink, streamer)
    else:
        streamer = None
        editing = sink
    result = await services.answer(
        messages,
        max_completion_tokens=TESTS_MAX_TOKENS,
        sink=editing,
        regenerate=regenerate,
        language=target.language,
        tools=True,
        action="tests",
    )
    code = "".join(code_so_far(result.text, final=True))
    if not code.strip():
        return TestsResult(
            plan.test_file, False, False, "the answer had no code", result.cached, ""
        )
    if streamer is not None:
        assert isinstance(editing, EditingSink)
        if editing.tasks:
            await asyncio.gather(*editing.tasks)
        streamer.answer = result.text
        await streamer.write(final=True)
        return TestsResult(
            plan.test_file,
            False,
            streamer.stopped is None,
            streamer.stopped or "",
            result.cached,
            code,
        )
    created = await creator.create(plan.test_file, code)
    return TestsResult(
        plan.test_file, created, created, "" if created else "not created", result.cached, code
    )

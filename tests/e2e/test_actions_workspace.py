"""kimi.refactorWorkspace end to end on a 36-file, two-language repository."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient

from kimi_lsp.edits.stream import apply_edits
from tests.e2e.conftest import SERVER
from tests.fake_kimi import FakeKimi

USERS = 14  # python files that call compute_total
CORE = "def compute_total(items):\n    return sum(items)\n"


def user_module(i: int) -> str:
    return (
        "from pkg.core import compute_total\n\n\n"
        f"def report_{i}(rows):\n    return compute_total(rows) * {i}\n"
    )


def make_repo(root: Path) -> None:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "core.py").write_text(CORE)
    for i in range(USERS):
        (root / "pkg" / f"user_{i}.py").write_text(user_module(i))
    (root / "web").mkdir()
    for i in range(20):
        (root / "web" / f"view{i}.ts").write_text(
            f"export function view{i}(n: number): number {{\n  return n + {i};\n}}\n"
        )


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    make_repo(root)
    edits: list[T.ApplyWorkspaceEditParams] = []
    lsp_client.feature(T.WORKSPACE_APPLY_EDIT)(
        lambda params: edits.append(params) or T.ApplyWorkspaceEditResult(applied=True)
    )
    lsp_client.workspace_edits = edits  # type: ignore[attr-defined]
    await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=T.ClientCapabilities(
                workspace=T.WorkspaceClientCapabilities(
                    apply_edit=True,
                    workspace_edit=T.WorkspaceEditClientCapabilities(
                        document_changes=True,
                        change_annotation_support=T.ChangeAnnotationsSupportOptions(
                            groups_on_label=True
                        ),
                    ),
                ),
            ),
            root_uri=root.as_uri(),
            workspace_folders=[T.WorkspaceFolder(uri=root.as_uri(), name="repo")],
            # The account's limits as kimi-lsp knows them: its governor paces the fan-out.
            initialization_options={
                "apiKey": fake_kimi.key,
                "baseUrl": fake_kimi.base_url,
                "limits": "concurrency=4,rpm=40",
            },
        )
    )
    for _ in range(200):
        if await lsp_client.workspace_symbol_async(T.WorkspaceSymbolParams(query="report_13")):
            break
        await asyncio.sleep(0.05)
    yield
    await lsp_client.shutdown_session()


def script_renames(fake: FakeKimi, root: Path) -> None:
    for path in [root / "pkg" / "core.py", *(root / "pkg").glob("user_*.py")]:
        new = path.read_text().replace("compute_total", "sum_items")
        fake.script(f"```python\n{new}```", match=f"File: pkg/{path.name} ")


def command(root: Path, **extra: Any) -> T.ExecuteCommandParams:
    arg = {
        "instruction": "rename compute_total to sum_items",
        "symbol": {
            "uri": (root / "pkg" / "core.py").as_uri(),
            "position": {"line": 0, "character": 6},
        },
        **extra,
    }
    return T.ExecuteCommandParams(command="kimi.refactorWorkspace", arguments=[arg])


async def test_a_rename_touching_many_files_is_one_annotated_edit_and_skips_a_user_edit(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    originals = {p: p.read_text() for p in (root / "pkg").glob("*.py")}
    script_renames(fake_kimi, root)
    fake_kimi.set_limits(concurrency=4, rpm=40)  # the fan-out must queue, not collide
    fake_kimi.chunk_delay = 0.01
    touched = root / "pkg" / "user_3.py"
    original = touched.read_text()
    client.text_document_did_open(
        T.DidOpenTextDocumentParams(
            T.TextDocumentItem(uri=touched.as_uri(), language_id="python", version=1, text=original)
        )
    )
    task = asyncio.ensure_future(client.workspace_execute_command_async(command(root)))
    await asyncio.sleep(0.3)  # the user edits one of the files while the answers come in
    client.text_document_did_change(
        T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=touched.as_uri(), version=2),
            content_changes=[T.TextDocumentContentChangeWholeDocument(text="# mine\n" + original)],
        )
    )
    result = await asyncio.wait_for(task, 60)
    assert result["applied"] is True
    assert len(result["plan"]["files"]) == USERS + 1
    assert str(touched) in result["stale"]
    assert sorted(result["changed"]) == sorted(
        str(p)
        for p in [root / "pkg" / "core.py", *(root / "pkg").glob("user_*.py")]
        if p != touched
    )
    assert not any("web" in f for f in result["plan"]["files"])  # the TS files are untouched
    assert all(r.status != 429 for r in fake_kimi.chat_requests)
    (params,) = client.workspace_edits  # type: ignore[attr-defined]
    edit = params.edit
    assert edit.change_annotations is not None
    assert all(a.needs_confirmation for a in edit.change_annotations.values())
    changes = edit.document_changes or []
    assert len(changes) == USERS  # 15 planned, one left alone
    for change in changes:
        assert isinstance(change, T.TextDocumentEdit)
        path = Path(change.text_document.uri.removeprefix("file://"))
        before = originals[path]
        after = apply_edits(before, list(change.edits))  # type: ignore[arg-type]
        assert after == before.replace("compute_total", "sum_items"), (path, change.edits)
        assert all(isinstance(e, T.AnnotatedTextEdit) for e in change.edits)
    assert "-from pkg.core import compute_total" in result["diff"]


async def test_cancel_in_the_middle_applies_nothing(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    script_renames(fake_kimi, root)
    fake_kimi.chunk_delay = 0.05
    task = asyncio.ensure_future(client.workspace_execute_command_async(command(root)))
    for _ in range(100):
        if fake_kimi.chat_requests:
            break
        await asyncio.sleep(0.05)
    await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="kimi.cancel", arguments=[{}])
    )
    with pytest.raises(Exception, match="cancel"):
        await asyncio.wait_for(task, 30)
    await asyncio.sleep(0.3)
    assert client.workspace_edits == []  # type: ignore[attr-defined]
    assert fake_kimi.wait_until(lambda: fake_kimi.in_flight() == 0, timeout=5)


async def test_plan_only_spends_nothing(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    result = await client.workspace_execute_command_async(command(root, planOnly=True))
    assert len(result["plan"]["files"]) == USERS + 1
    assert result["plan"]["estimatedTokens"] > 0
    assert fake_kimi.chat_requests == []


async def test_every_file_is_sent_with_the_definition_in_a_prefix_kimi_caches(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    """The definition the rename is about goes with each file (the model sees what it renames
    in files that only call it), before the file and byte-identical in every request, so from
    the second request on Kimi serves it from its prefix cache. Its secret stays here."""
    root = tmp_path / "repo"
    core = root / "pkg" / "core.py"
    secret = "sk-live-" + "Zq7xW2pL9mK4vB8nR3tY6uJ1"
    doc = "".join(
        f"    Line {i} of the notes on how totals are kept and checked.\n" for i in range(40)
    )
    long_core = (
        f'def compute_total(items):\n    """Add up the items.\n\n{doc}    """\n'
        f'    audit_key = "{secret}"\n    return sum(items)\n'
    )
    core.write_text(long_core)
    client.text_document_did_open(
        T.DidOpenTextDocumentParams(
            T.TextDocumentItem(uri=core.as_uri(), language_id="python", version=1, text=long_core)
        )
    )
    script_renames(fake_kimi, root)
    fake_kimi.set_limits(concurrency=4, rpm=40)
    result = await asyncio.wait_for(client.workspace_execute_command_async(command(root)), 60)
    assert result["applied"] is True
    prompts = [
        r.body["messages"][-1]["content"] for r in fake_kimi.chat_requests if r.status == 200
    ]
    assert len(prompts) == USERS + 1
    for prompt in prompts:
        before_file = prompt.split("File: pkg/", 1)[0]
        assert "def compute_total(items):" in before_file
        assert "Line 39 of the notes" in before_file
        assert before_file == prompts[0].split("File: pkg/", 1)[0]
        assert secret not in prompt
    assert all(secret not in str(r.body) for r in fake_kimi.chat_requests)
    # all but the first find the shared part in the cache (~650 tokens; the system prompt
    # alone would be ~30)
    cached = sorted(r.cached_tokens for r in fake_kimi.chat_requests if r.status == 200)
    assert min(cached[1:]) > 500, cached


def long_module(uses: list[int], size: int = 900) -> str:
    """A module of ``size`` lines: the import, small functions, and at the lines in ``uses``
    a function that calls compute_total."""
    lines = ["from pkg.core import compute_total\n", "\n"]
    while len(lines) < size:
        i = len(lines)
        if any(i <= u < i + 3 for u in uses):
            lines += [f"def total_{i}(rows):\n", "    return compute_total(rows) + 1\n", "\n"]
        else:
            lines += [f"def filler_{i}(x):\n", f"    return x * {i}\n", "\n"]
    return "".join(lines)


async def test_a_long_file_is_sent_as_the_parts_that_use_the_symbol(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    big, wrong = root / "pkg" / "big.py", root / "pkg" / "wrong.py"
    for path, uses in ((big, [450, 870]), (wrong, [300])):
        text = long_module(uses)
        path.write_text(text)
        client.text_document_did_open(
            T.DidOpenTextDocumentParams(
                T.TextDocumentItem(uri=path.as_uri(), language_id="python", version=1, text=text)
            )
        )
    script_renames(fake_kimi, root)  # the short files, whole
    text = big.read_text()
    lines = text.splitlines(keepends=True)
    calls = [i - 1 for i, ln in enumerate(lines) if "return compute_total" in ln]
    parts = [lines[:1], *(lines[i : i + 2] for i in calls)]  # the import, each function
    answer = "".join(f"```python\n{''.join(p)}```\n\n" for p in parts)
    fake_kimi.script(answer.replace("compute_total", "sum_items"), match="File: pkg/big.py ")
    fake_kimi.script("```python\nfrom pkg.core import sum_items\n```", match="File: pkg/wrong.py ")
    fake_kimi.set_limits(concurrency=4, rpm=40)
    result = await asyncio.wait_for(client.workspace_execute_command_async(command(root)), 60)
    assert str(big) in result["plan"]["files"]
    assert str(big) in result["changed"]
    assert "1 code block(s) for 2 parts" in result["failed"][str(wrong)]
    (prompt,) = [
        r for r in fake_kimi.chat_requests if "File: pkg/big.py " in str(r.body["messages"])
    ]
    sent = prompt.body["messages"][-1]["content"]
    assert "Part 3 (lines" in sent
    assert "Part 4" not in sent
    assert "def filler_600" not in sent  # far from every use
    assert prompt.prompt_tokens < len(text) // 4 // 5  # a fifth of the file, at most
    (params,) = client.workspace_edits  # type: ignore[attr-defined]
    (change,) = [
        c
        for c in params.edit.document_changes or []
        if isinstance(c, T.TextDocumentEdit) and c.text_document.uri == big.as_uri()
    ]
    after = apply_edits(text, list(change.edits))  # type: ignore[arg-type]
    assert after == text.replace("compute_total", "sum_items")

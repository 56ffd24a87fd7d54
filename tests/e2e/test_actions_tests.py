"""kimi.generateTests end to end: the right framework, the right file, streamed or created."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.e2e.conftest import SERVER
from tests.e2e.editor import EditorModel
from tests.fake_kimi import FakeKimi


def capabilities() -> T.ClientCapabilities:
    return T.ClientCapabilities(
        workspace=T.WorkspaceClientCapabilities(
            apply_edit=True,
            workspace_edit=T.WorkspaceEditClientCapabilities(
                document_changes=True, resource_operations=[T.ResourceOperationKind.Create]
            ),
        ),
    )


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "proj"
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "tests" / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    )
    (root / "package.json").write_text('{"devDependencies": {"vitest": "^2.0.0"}}')
    (root / "math.ts").write_text(
        "export function twice(x: number): number {\n  return 2 * x;\n}\n"
    )
    await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=capabilities(),
            root_uri=root.as_uri(),
            workspace_folders=[T.WorkspaceFolder(uri=root.as_uri(), name="proj")],
            initialization_options={"apiKey": fake_kimi.key, "baseUrl": fake_kimi.base_url},
        )
    )
    yield
    await lsp_client.shutdown_session()


async def generate(client: LanguageClient, uri: str, line: int) -> Any:
    await asyncio.sleep(0)
    return await client.workspace_execute_command_async(
        T.ExecuteCommandParams(
            command="kimi.generateTests",
            arguments=[{"uri": uri, "position": {"line": line, "character": 4}}],
        )
    )


async def wait_indexed(client: LanguageClient, name: str) -> None:
    for _ in range(100):
        if await client.workspace_symbol_async(T.WorkspaceSymbolParams(query=name)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never indexed")


async def test_python_tests_are_appended_to_the_existing_pytest_file(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    root = tmp_path / "proj"
    source = root / "calc.py"
    test_file = root / "tests" / "test_calc.py"
    before = test_file.read_text()
    EditorModel(client, source.as_uri(), source.read_text())
    test_doc = EditorModel(client, test_file.as_uri(), before)
    await wait_indexed(client, "add")
    new_tests = "def test_add_negative():\n    assert add(-1, -2) == -3\n"
    fake_kimi.script(f"```python\n{new_tests}```", match="Write tests")
    result = await generate(client, source.as_uri(), 1)
    assert result["applied"] is True
    assert result["created"] is False
    assert result["testUri"] == test_file.as_uri()
    assert test_doc.text == before + "\n" + new_tests
    prompt = fake_kimi.chat_requests[0].body["messages"][-1]["content"]
    assert "pytest" in prompt
    assert "def test_add():" in prompt  # the project's own test file as the style example


async def test_typescript_tests_create_a_vitest_file_beside_the_module(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    root = tmp_path / "proj"
    source = root / "math.ts"
    created: list[T.ApplyWorkspaceEditParams] = []
    client.feature(T.WORKSPACE_APPLY_EDIT)(
        lambda params: created.append(params) or T.ApplyWorkspaceEditResult(applied=True)
    )
    client.text_document_did_open(
        T.DidOpenTextDocumentParams(
            T.TextDocumentItem(
                uri=source.as_uri(), language_id="typescript", version=1, text=source.read_text()
            )
        )
    )
    await wait_indexed(client, "twice")
    code = (
        "import { describe, it, expect } from 'vitest';\nimport { twice } from './math';\n\n"
        "describe('twice', () => {\n  it('doubles', () => expect(twice(2)).toBe(4));\n});\n"
    )
    fake_kimi.script(f"```ts\n{code}```", match="Write tests")
    result = await generate(client, source.as_uri(), 1)
    assert result["created"] is True
    assert result["testUri"] == (root / "math.test.ts").as_uri()
    prompt = fake_kimi.chat_requests[0].body["messages"][-1]["content"]
    assert "vitest" in prompt
    (edit,) = created
    changes = edit.edit.document_changes or []
    assert isinstance(changes[0], T.CreateFile)
    assert changes[0].uri == (root / "math.test.ts").as_uri()
    assert isinstance(changes[1], T.TextDocumentEdit)
    (text_edit,) = changes[1].edits
    assert isinstance(text_edit, T.TextEdit)
    assert text_edit.new_text == code

"""Every package's error reaches the editor as its message, never as "internal error"."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as T
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.e2e.conftest import SERVER
from tests.e2e.editor import EditorModel
from tests.fake_kimi import FakeKimi

SOURCE = "def add(a, b):\n    return a + b\n"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "proj").mkdir()
    await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=T.ClientCapabilities(
                workspace=T.WorkspaceClientCapabilities(apply_edit=True),
                window=T.WindowClientCapabilities(work_done_progress=True),
            ),
            root_uri=(tmp_path / "proj").as_uri(),
            initialization_options={
                "apiKey": fake_kimi.key,
                "baseUrl": fake_kimi.base_url,
                "contextBudget": 1000,  # the smallest valid budget
            },
        )
    )
    yield
    await lsp_client.shutdown_session()


async def test_a_too_small_context_budget_is_a_message_not_an_internal_error(
    client: LanguageClient, fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    path = tmp_path / "proj" / "a.py"
    path.write_text(SOURCE)
    editor = EditorModel(client, path.as_uri(), SOURCE)
    arg = {
        "uri": editor.uri,
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}},
        "instruction": "rename every variable so it says what it holds " * 200,
    }
    with pytest.raises(JsonRpcException) as failed:
        await client.workspace_execute_command_async(
            T.ExecuteCommandParams(command="kimi.refactor", arguments=[arg])
        )
    assert failed.value.code != -32603  # not "internal error"
    assert "contextBudget" in str(failed.value)
    shown = [m.message for m in client.messages if m.type == T.MessageType.Error]
    assert any("raise contextBudget" in m for m in shown)
    assert editor.text == SOURCE
    assert fake_kimi.chat_requests == []  # nothing was sent

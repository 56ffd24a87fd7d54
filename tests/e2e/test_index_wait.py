"""The first request waits for the index: an explain sent right after `initialized` carries
the prompt one sent after the scan does (so the second is a cache hit)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.e2e.conftest import SERVER, client_capabilities
from tests.e2e.test_lifecycle import plain
from tests.fake_kimi import FakeKimi

FILES = 300


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    # Enough code that the cold scan outlasts the first request by far; every file calls
    # `add`, so which of them the prompt names depends on how much is indexed.
    body = "".join(
        f"def helper_{j}(x, y):\n    z = x * {j} + y\n    return add(z, y) - {j}\n\n\n"
        for j in range(15)
    )
    for i in range(FILES - 1):
        (root / f"mod{i:03}.py").write_text(f"from calc import add\n\n\n{body}")
    return root


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, fake_kimi: FakeKimi, project: Path):  # type: ignore[no-untyped-def]
    statuses: list[Any] = []
    lsp_client.feature("kimi/status")(lambda params: statuses.append(params))
    lsp_client.statuses = statuses  # type: ignore[attr-defined]
    yield lsp_client
    await lsp_client.shutdown_session()


async def explain_add(client: LanguageClient, uri: str) -> Any:
    arg = {"uri": uri, "position": {"line": 0, "character": 4}}
    return await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="kimi.explain", arguments=[arg])
    )


def scanned(client: LanguageClient) -> bool:
    for status in client.statuses:  # type: ignore[attr-defined]
        index = plain(status).get("index", {})
        if index.get("indexing") is False and index.get("files", 0) >= FILES:
            return True
    return False


async def test_an_explain_right_after_initialized_carries_the_whole_workspace(
    client: LanguageClient, fake_kimi: FakeKimi, project: Path
) -> None:
    fake_kimi.script("It adds.", match="add")
    await start(client, fake_kimi, project)
    path = project / "calc.py"
    uri = path.as_uri()
    client.text_document_did_open(
        T.DidOpenTextDocumentParams(
            T.TextDocumentItem(uri=uri, language_id="python", version=1, text=path.read_text())
        )
    )
    first = await explain_add(client, uri)
    assert first["cached"] is False
    for _ in range(400):  # the scan has ended (it had, before the prompt was built)
        if scanned(client):
            break
        await asyncio.sleep(0.05)
    assert scanned(client)
    second = await explain_add(client, uri)
    assert second["cached"] is True  # the same prompt: nothing new was sent
    assert len(fake_kimi.chat_requests) == 1
    third = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(
            command="kimi.explain",
            arguments=[{"uri": uri, "position": {"line": 0, "character": 4}, "regenerate": True}],
        )
    )
    assert third["cached"] is False
    first_sent, again = (r.body["messages"] for r in fake_kimi.chat_requests)
    assert first_sent == again  # byte-identical prompts, before and after the scan
    assert "mod" in first_sent[-1]["content"]  # callers from the other files came along


async def start(client: LanguageClient, fake_kimi: FakeKimi, project: Path, **options: Any) -> None:
    """initialize and `initialized`: the cold scan of the 300 files starts now."""
    await client.initialize_session(
        T.InitializeParams(
            capabilities=client_capabilities(),
            root_uri=project.as_uri(),
            workspace_folders=[T.WorkspaceFolder(uri=project.as_uri(), name="proj")],
            initialization_options={
                "apiKey": fake_kimi.key, "baseUrl": fake_kimi.base_url, **options
            },
        )
    )  # fmt: skip


def rename_add(project: Path) -> T.ExecuteCommandParams:
    arg = {
        "instruction": "rename add to plus",
        "symbol": {"uri": (project / "calc.py").as_uri(), "position": {"line": 0, "character": 4}},
        "planOnly": True,
    }
    return T.ExecuteCommandParams(command="kimi.refactorWorkspace", arguments=[arg])


async def test_a_workspace_refactor_right_after_initialized_plans_every_file_that_uses_it(
    client: LanguageClient, fake_kimi: FakeKimi, project: Path
) -> None:
    """A plan made from part of the scan would leave out files that call `add`, and the
    edit would rename it in some files and not in the others."""
    await start(client, fake_kimi, project)
    result = await client.workspace_execute_command_async(rename_add(project))
    plan = result["plan"]
    assert len(plan["files"]) + len(plan["skipped"]) == FILES  # 50 planned, the rest named
    assert all("maxFiles" in why for why in plan["skipped"].values())
    assert fake_kimi.chat_requests == []  # planOnly spends nothing


async def test_a_workspace_refactor_the_scan_outlasts_says_so_and_changes_nothing(
    client: LanguageClient, fake_kimi: FakeKimi, project: Path
) -> None:
    await start(client, fake_kimi, project, indexWaitMs=0)
    with pytest.raises(Exception, match="still scanning"):
        await client.workspace_execute_command_async(rename_add(project))
    assert fake_kimi.chat_requests == []

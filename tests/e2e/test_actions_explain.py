"""kimi.explain end to end: a real server, a real LSP client, the Kimi emulator on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.e2e.conftest import SERVER, client_capabilities
from tests.e2e.test_lifecycle import wait_state
from tests.fake_kimi import FakeKimi

SOURCE = "def add(a, b):\n    return a + b\n\n\ndef twice(x):\n    return add(x, x)\n"


@pytest.fixture
def kimi_env(fake_kimi: FakeKimi) -> FakeKimi:
    # pytest-lsp starts the server before this fixture runs: the key and URL travel the way
    # an editor hands them over, in initializationOptions.
    return fake_kimi


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "calc.py").write_text(SOURCE)
    return root


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, kimi_env: FakeKimi, project: Path):  # type: ignore[no-untyped-def]
    streamed: list[Any] = []
    lsp_client.feature("kimi/stream")(lambda params: streamed.append(params))
    lsp_client.streamed = streamed  # type: ignore[attr-defined]
    await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=client_capabilities(),
            root_uri=project.as_uri(),
            workspace_folders=[T.WorkspaceFolder(uri=project.as_uri(), name="proj")],
            initialization_options={"apiKey": kimi_env.key, "baseUrl": kimi_env.base_url},
        )
    )
    yield
    await lsp_client.shutdown_session()


def open_doc(client: LanguageClient, path: Path) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        T.DidOpenTextDocumentParams(
            T.TextDocumentItem(uri=uri, language_id="python", version=1, text=path.read_text())
        )
    )
    return uri


def selection(uri: str, start: int, end: int) -> dict[str, Any]:
    return {
        "uri": uri,
        "range": {"start": {"line": start, "character": 0}, "end": {"line": end, "character": 0}},
    }


async def execute(client: LanguageClient, command: str, arg: dict[str, Any]) -> Any:
    return await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command=command, arguments=[arg])
    )


async def test_explain_selection_streams_and_reports_progress(
    client: LanguageClient, kimi_env: FakeKimi, project: Path
) -> None:
    kimi_env.script("`add` returns the **sum** of its two arguments.", match="add")
    uri = open_doc(client, project / "calc.py")
    result = await execute(client, "kimi.explain", selection(uri, 0, 2))
    assert result["text"] == "`add` returns the **sum** of its two arguments."
    assert result["cached"] is False
    # What left the machine: the selected code, and nothing else of the file.
    chats = kimi_env.chat_requests
    assert len(chats) == 1
    sent = str(chats[0].body["messages"])
    assert "return a + b" in sent
    assert "return add(x, x)" not in sent
    assert chats[0].body["max_completion_tokens"] <= 2000
    # Rich clients got the text live; every client got progress.
    streamed = client.streamed  # type: ignore[attr-defined]
    kinds = [getattr(p, "kind", None) for p in streamed]
    assert kinds[0] == "start"
    assert kinds[-1] == "end"
    text = "".join(p.text for p in streamed if getattr(p, "kind", None) == "text")
    assert text == result["text"]
    (reports,) = [
        r for r in client.progress_reports.values() if getattr(r[0], "title", "") == "Kimi: Explain"
    ]
    assert reports[0].kind == "begin"
    assert reports[-1].kind == "end"
    # Plain clients (no showDocument) see the answer as a message.
    assert any("sum" in m.message for m in client.messages)


async def test_explain_without_a_symbol_says_what_to_do(
    client: LanguageClient, project: Path
) -> None:
    uri = open_doc(client, project / "calc.py")
    with pytest.raises(Exception, match="Put the cursor") as info:
        await execute(client, "kimi.explain", {"uri": uri, "position": {"line": 3, "character": 0}})
    assert "-32803" in str(info.value) or "Request failed" in str(info.value) or info.value


async def test_explain_with_bad_arguments_is_invalid_params(client: LanguageClient) -> None:
    with pytest.raises(Exception, match="uri"):
        await execute(client, "kimi.explain", {"position": {"line": 0, "character": 0}})


async def test_cancel_stops_the_stream(
    client: LanguageClient, kimi_env: FakeKimi, project: Path
) -> None:
    kimi_env.chunk_delay = 0.2
    kimi_env.script("word " * 200, match="add")
    uri = open_doc(client, project / "calc.py")
    task = asyncio.ensure_future(execute(client, "kimi.explain", selection(uri, 0, 2)))
    streamed = client.streamed  # type: ignore[attr-defined]
    for _ in range(100):
        if any(getattr(p, "kind", None) == "text" for p in streamed):
            break
        await asyncio.sleep(0.05)
    run_id = streamed[0].runId
    cancelled = await execute(client, "kimi.cancel", {"runId": run_id})
    assert cancelled["cancelled"] == 1
    with pytest.raises(Exception, match="cancel"):
        await task
    assert kimi_env.wait_until(lambda: kimi_env.in_flight() == 0, timeout=5)
    assert streamed[-1].kind == "end"


async def test_missing_key_is_a_clear_error(client: LanguageClient, project: Path) -> None:
    client.set_configuration({"apiKey": ""}, section="kimi")
    client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings=None))
    await wait_state(client, lambda s: s["settings"]["api_key"]["value"] == "(not set)")
    uri = open_doc(client, project / "calc.py")
    with pytest.raises(Exception, match="MOONSHOT_API_KEY"):
        await execute(client, "kimi.explain", selection(uri, 0, 2))
    assert any("No Kimi API key" in m.message for m in client.messages)

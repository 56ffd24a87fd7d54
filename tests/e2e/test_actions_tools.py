"""Kimi asks the index, end to end: a real server over pytest-lsp, the emulator over HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.e2e.conftest import SERVER, client_capabilities
from tests.e2e.test_actions_explain import execute, open_doc, wait_indexed
from tests.fake_kimi import FakeKimi

SECRET = "sk-live-0123456789abcdefghijklmnopqrstuv"
# A method too long to travel whole in the packed context (its body is elided there).
RESERVE = (
    "class Inventory:\n"
    "    def reserve(self, sku, n):\n"
    + "".join(f"        step_{i} = {i}  # bookkeeping\n" for i in range(30))
    + "        return n  # RESERVE-BODY-END\n"
)
ORDERS = (
    "from shop.inventory import Inventory\n\n"
    f"PAYMENT_KEY = '{SECRET}'\n\n\n"
    "def place(inv, sku):\n"
    "    return inv.reserve(sku, 1)\n"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "shop").mkdir(parents=True)
    (root / ".gitignore").write_text("private/\n")
    (root / "shop" / "inventory.py").write_text(RESERVE)
    (root / "shop" / "orders.py").write_text(ORDERS)
    (root / "private").mkdir()
    (root / "private" / "vault.py").write_text("def vault():\n    return 'PRIVATE-BODY'\n")
    return root


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, fake_kimi: FakeKimi, project: Path):  # type: ignore[no-untyped-def]
    streamed: list[Any] = []
    lsp_client.feature("kimi/stream")(lambda params: streamed.append(params))
    lsp_client.streamed = streamed  # type: ignore[attr-defined]
    await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=client_capabilities(),
            root_uri=project.as_uri(),
            workspace_folders=[T.WorkspaceFolder(uri=project.as_uri(), name="proj")],
            initialization_options={
                "apiKey": fake_kimi.key,
                "baseUrl": fake_kimi.base_url,
                "toolRounds": 2,
            },
        )
    )
    yield
    await lsp_client.shutdown_session()


def at_place(uri: str) -> dict[str, Any]:
    return {"uri": uri, "position": {"line": 6, "character": 10}}


def progress_messages(client: LanguageClient) -> list[str]:
    return [
        r.message
        for reports in client.progress_reports.values()
        for r in reports
        if getattr(r, "message", None)
    ]


async def ready(client: LanguageClient, project: Path) -> str:
    uri = open_doc(client, project / "shop" / "orders.py")
    await wait_indexed(client, "reserve")
    return uri


async def test_kimi_looks_up_a_definition_the_packed_context_lacks(
    client: LanguageClient, fake_kimi: FakeKimi, project: Path
) -> None:
    def model(messages: list[dict[str, Any]], body: dict[str, Any]) -> Any:
        if messages[-1]["role"] == "tool":
            return "place() reserves one unit through Inventory.reserve."
        return [("definition", {"name": "Inventory.reserve"})]

    fake_kimi.responder = model
    uri = await ready(client, project)
    result = await execute(client, "kimi.explain", at_place(uri))
    assert result["text"] == "place() reserves one unit through Inventory.reserve."
    first, second = (r.body for r in fake_kimi.chat_requests)
    assert "RESERVE-BODY-END" not in json.dumps(first["messages"])  # the context lacked it
    tool_msg = second["messages"][-1]
    assert tool_msg["role"] == "tool"
    assert "RESERVE-BODY-END" in tool_msg["content"]  # the lookup brought it
    assert "looked up `Inventory.reserve` in shop/inventory.py" in progress_messages(client)
    # The explain document ends with the sources it drew on (plain clients get a message).
    doc = next(m.message for m in client.messages if "place() reserves" in m.message)
    assert doc.rstrip().endswith("- `shop/inventory.py:2`")
    assert "## Sources" in doc


async def test_ignored_files_and_secret_lines_are_not_returned(
    client: LanguageClient, fake_kimi: FakeKimi, project: Path
) -> None:
    def nosy(messages: list[dict[str, Any]], body: dict[str, Any]) -> Any:
        if messages[-1]["role"] == "tool":
            return "nothing more to see"
        return [
            ("read", {"path": "private/vault.py", "start_line": 1, "end_line": 2}),
            ("definition", {"name": "vault"}),
            ("read", {"path": "shop/orders.py", "start_line": 1, "end_line": 7}),
        ]

    fake_kimi.responder = nosy
    uri = await ready(client, project)
    await execute(client, "kimi.explain", at_place(uri))
    sent = json.dumps([r.body for r in fake_kimi.chat_requests])
    assert len(fake_kimi.chat_requests) == 2
    assert "PRIVATE-BODY" not in sent
    assert SECRET not in sent
    tools = [m for m in fake_kimi.chat_requests[1].body["messages"] if m["role"] == "tool"]
    assert "ignored" in tools[0]["content"]
    assert "<redacted:" in tools[2]["content"]


async def test_a_model_that_keeps_calling_tools_stops_at_the_round_limit(
    client: LanguageClient, fake_kimi: FakeKimi, project: Path
) -> None:
    from tests.fake_kimi.server import Reply

    fake_kimi.responder = lambda m, b: Reply("", tool_calls=[("search", {"text": "reserve"})])
    real_chat = fake_kimi._chat

    async def ignoring_none(body: Any, *args: Any) -> None:  # a model that ignores "none"
        if isinstance(body, dict) and body.get("tool_choice") == "none":
            body = {**body, "tool_choice": "auto"}
        await real_chat(body, *args)

    fake_kimi._chat = ignoring_none  # type: ignore[method-assign]
    uri = await ready(client, project)
    result = await execute(client, "kimi.explain", at_place(uri))
    assert len(fake_kimi.chat_requests) == 3  # tool_rounds=2, then the last round
    assert "still asked for lookups after 2 rounds" in result["text"]
    assert "tool_rounds" in result["text"]


async def test_cancel_mid_round_ends_everything_cleanly(
    client: LanguageClient, fake_kimi: FakeKimi, project: Path
) -> None:
    def model(messages: list[dict[str, Any]], body: dict[str, Any]) -> Any:
        if messages[-1]["role"] == "tool":
            return "word " * 300
        return [("definition", {"name": "Inventory.reserve"})]

    fake_kimi.responder = model
    fake_kimi.chunk_delay = 0.05
    uri = await ready(client, project)
    task = asyncio.ensure_future(execute(client, "kimi.explain", at_place(uri)))
    assert await asyncio.to_thread(
        fake_kimi.wait_until, lambda: len(fake_kimi.chat_requests) >= 2, 30
    )
    streamed = client.streamed  # type: ignore[attr-defined]
    run_id = streamed[0].runId
    cancelled = await execute(client, "kimi.cancel", {"runId": run_id})
    assert cancelled["cancelled"] == 1
    with pytest.raises(Exception, match="cancel"):
        await task
    assert await asyncio.to_thread(fake_kimi.wait_until, lambda: fake_kimi.in_flight() == 0, 10)
    assert fake_kimi.chat_requests[1].client_closed
    assert len(fake_kimi.chat_requests) == 2  # no round after the cancel
    assert streamed[-1].kind == "end"


async def test_thinking_on_the_second_round_carries_the_first_rounds_reasoning(
    client: LanguageClient, fake_kimi: FakeKimi, project: Path
) -> None:
    reasoning = "I need the body of Inventory.reserve before I can explain place(). " * 12
    fake_kimi.script_tools([("definition", {"name": "Inventory.reserve"})], reasoning=reasoning)
    fake_kimi.script("It reserves stock.")
    uri = await ready(client, project)
    result = await execute(client, "kimi.explain", at_place(uri))
    assert result["text"] == "It reserves stock."
    second = fake_kimi.chat_requests[1]
    assert second.status == 200  # no 400 for a missing reasoning_content
    (call_msg,) = [m for m in second.body["messages"] if m.get("tool_calls")]
    assert call_msg["reasoning_content"] == reasoning
    assert call_msg["tool_calls"][0]["id"] == "functions.definition:0"

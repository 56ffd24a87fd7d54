"""The server's quota: the reserve setting reaches its governor, and `kimi.quota` and
`kimi/status` show the store's queue (another process's waiters too), interactive first."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient

from kimi_lsp.quota import Limits, SqliteLedger, Wait
from kimi_lsp.quota.sqlite import Admitted
from tests.e2e.conftest import SERVER, client_capabilities
from tests.e2e.test_lifecycle import wait_state
from tests.fake_kimi import FakeKimi


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    return root


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, fake_kimi: FakeKimi, project: Path):  # type: ignore[no-untyped-def]
    statuses: list[Any] = []
    lsp_client.feature("kimi/status")(lambda params: statuses.append(params))
    lsp_client.statuses = statuses  # type: ignore[attr-defined]
    await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=client_capabilities(),
            root_uri=project.as_uri(),
            workspace_folders=[T.WorkspaceFolder(uri=project.as_uri(), name="proj")],
            initialization_options={"apiKey": fake_kimi.key, "baseUrl": fake_kimi.base_url},
        )
    )
    yield
    await lsp_client.shutdown_session()


async def execute(client: LanguageClient, command: str, arg: dict[str, Any]) -> Any:
    return await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command=command, arguments=[arg])
    )


def open_add(client: LanguageClient, fake_kimi: FakeKimi, project: Path) -> dict[str, Any]:
    """calc.py open in the editor, Kimi ready to explain `add`: the explain command's argument."""
    fake_kimi.script("It adds.", match="add")
    uri = (project / "calc.py").as_uri()
    client.text_document_did_open(
        T.DidOpenTextDocumentParams(
            T.TextDocumentItem(uri, "python", 1, (project / "calc.py").read_text())
        )
    )
    start, end = {"line": 0, "character": 0}, {"line": 2, "character": 0}
    return {"uri": uri, "range": {"start": start, "end": end}}


async def test_the_reserve_setting_and_the_stores_queue_reach_kimi_quota_and_kimi_status(
    client: LanguageClient, fake_kimi: FakeKimi, project: Path
) -> None:
    client.set_configuration({"quotaReserve": 0.3}, section="kimi")
    client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings=None))
    await wait_state(client, lambda s: s["settings"]["quota_reserve"]["value"] == "0.3")
    quota = await execute(client, "kimi.quota", {})
    assert quota["reserve"] == 0.3
    assert quota["queue"] == {"interactive": 0, "batch": 0, "head": None}

    # Another process (this test) holds a slot of its own and waits with batch work.
    ledger = SqliteLedger(Path(os.environ["KIMI_LSP_STATE_DIR"]) / "quota.sqlite3", queue_ttl=120)
    one = Limits(1, None, None, None)
    held = ledger.try_admit(time.time(), one, 1, model="m", batch=False, reserve=0.1)
    assert isinstance(held, Admitted)
    waiting = ledger.try_admit(time.time(), one, 1, model="m", batch=True, reserve=0.1, join=True)
    assert isinstance(waiting, Wait)

    # The editor's explain is interactive: it goes ahead of the other process's batch work.
    target = open_add(client, fake_kimi, project)
    result = await execute(client, "kimi.explain", target)
    assert result["text"] == "It adds."

    quota = await execute(client, "kimi.quota", {})
    assert quota["waiting"] == 0  # nothing of this editor's waits
    assert (quota["queue"]["interactive"], quota["queue"]["batch"]) == (0, 1)
    assert quota["queue"]["head"]["batch"] is True
    assert quota["queue"]["head"]["waitingFor"] == "concurrency"
    statuses = client.statuses  # type: ignore[attr-defined]
    for _ in range(100):  # kimi/status follows the run's end within a quarter second
        if statuses and statuses[-1].runs == 0 and statuses[-1].quota is not None:
            break
        await asyncio.sleep(0.05)
    assert statuses[-1].quota.queue.batch == 1
    assert statuses[-1].quota.reserve == 0.3
    ledger.leave(waiting.entry)
    ledger.settle(held, None)


async def test_a_team_quota_store_that_stops_answering_is_said_once_and_explain_goes_on(
    client: LanguageClient, fake_kimi: FakeKimi, project: Path, tmp_path: Path
) -> None:
    from tests.conftest import free_port, redis_binary, start_redis, stop_redis

    redis_binary()
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    proc = start_redis(port, tmp_path)
    try:
        client.set_configuration({"quotaStore": url}, section="kimi")
        client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings=None))
        await wait_state(client, lambda s: s["settings"]["quota_store"]["value"] == url)
        target = open_add(client, fake_kimi, project)
        assert (await execute(client, "kimi.explain", target))["text"] == "It adds."
        assert (await execute(client, "kimi.quota", {}))["store"].startswith("redis:")
    finally:
        stop_redis(proc)

    again = await execute(client, "kimi.explain", {**target, "regenerate": True})
    assert again["text"] == "It adds."  # Redis is gone: a local share admitted it
    quota = await execute(client, "kimi.quota", {})
    assert "unreachable" in quota["fallback"]

    def warnings() -> list[str]:
        return [m.message for m in client.messages if "unreachable" in m.message]

    for _ in range(100):  # said with the next kimi/status, a quarter second after the run
        if warnings():
            break
        await asyncio.sleep(0.05)
    await execute(client, "kimi.explain", {**target, "regenerate": True})
    await asyncio.sleep(0.5)
    assert len(warnings()) == 1, warnings()  # once, not per request
    said = [m for m in client.messages if "unreachable" in m.message]
    assert said[0].type == T.MessageType.Warning


async def test_a_limit_kimi_states_in_a_429_reaches_kimi_quota_and_kimi_status_with_its_source(
    client: LanguageClient, fake_kimi: FakeKimi, project: Path
) -> None:
    fake_kimi.fail_next("rate_limit_rpm")  # "... organization max RPM: 3, ... after 1 seconds"
    target = open_add(client, fake_kimi, project)
    assert (await execute(client, "kimi.explain", target))["text"] == "It adds."
    assert [r.status for r in fake_kimi.chat_requests] == [429, 200]
    quota = await execute(client, "kimi.quota", {})
    assert quota["limits"]["rpm"] == 3
    assert quota["sources"]["rpm"].startswith("learned from Kimi at ")
    assert quota["sources"]["tpm"] == "tier 1 table (assumed)"
    assert quota["matchingTiers"] == [0]
    statuses = client.statuses  # type: ignore[attr-defined]
    for _ in range(100):
        if statuses and statuses[-1].quota is not None and statuses[-1].quota.learned:
            break
        await asyncio.sleep(0.05)
    assert statuses[-1].quota.sources.rpm.startswith("learned from Kimi at ")
    assert statuses[-1].quota.learned.rpm.value == 3

"""The spine, end to end: a real server process and a real LSP client over stdio."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as T
from pytest_lsp import LanguageClient

from tests.e2e.conftest import RawServer


def plain(obj: Any) -> Any:
    """pygls's client turns unknown results into namedtuples; turn them back into dicts."""
    if hasattr(obj, "_asdict"):
        return {k: plain(v) for k, v in obj._asdict().items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    return obj


async def server_state(client: LanguageClient) -> dict[str, Any]:
    return plain(await client.protocol.send_request_async("kimi/serverState", None))  # type: ignore[no-any-return]


async def test_initialize_result(lsp_client_raw_init: dict) -> None:  # type: ignore[type-arg]
    caps = lsp_client_raw_init["result"]["capabilities"]
    assert caps["textDocumentSync"]["change"] == T.TextDocumentSyncKind.Incremental.value
    assert caps["textDocumentSync"]["openClose"] is True
    assert lsp_client_raw_init["result"]["serverInfo"]["name"] == "kimi-lsp"


@pytest.fixture
def lsp_client_raw_init(raw_server: RawServer) -> dict:  # type: ignore[type-arg]
    return raw_server.initialize()


async def wait_state(client: LanguageClient, pred: Any) -> dict[str, Any]:
    """The server reads workspace/configuration after `initialized`: poll until it has."""
    for _ in range(100):
        state = await server_state(client)
        if pred(state):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"server state never matched: {state}")


async def test_settings_layers_and_bad_values_reported_once(client: LanguageClient):
    state = await wait_state(
        client, lambda s: s["settings"]["model"]["source"] == "workspace/configuration"
    )
    settings = state["settings"]
    assert settings["tier"] == {"value": "2", "source": "initializationOptions"}
    assert settings["model"] == {
        "value": "kimi-from-workspace",
        "source": "workspace/configuration",
    }
    assert settings["cache"]["value"] == "on"  # the invalid 'sometimes' fell back to the default
    assert settings["api_key"]["value"] == "(not set)"
    await asyncio.sleep(0.2)
    warnings = [m.message for m in client.messages if "cache" in m.message]
    assert len(warnings) == 1, warnings
    assert "'sometimes'" in warnings[0]

    # Re-reading the configuration does not repeat the same warning.
    client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings=None))
    client.set_configuration({"model": "kimi-k2.7-code"}, section="kimi")
    client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings=None))
    await wait_state(client, lambda s: s["settings"]["model"]["value"] == "kimi-k2.7-code")
    assert len([m for m in client.messages if "cache" in m.message]) == 1


async def test_pushed_settings_apply(client: LanguageClient):
    await wait_state(
        client, lambda s: s["settings"]["model"]["source"] == "workspace/configuration"
    )
    client.workspace_did_change_configuration(
        T.DidChangeConfigurationParams(settings={"kimi": {"tier": 4}})
    )
    await wait_state(
        client,
        lambda s: s["settings"]["tier"] == {"value": "4", "source": "workspace/configuration"},
    )


async def test_open_change_close_bookkeeping(client: LanguageClient, workspace: Path):
    uri = (workspace / "app.py").as_uri()
    client.text_document_did_open(
        T.DidOpenTextDocumentParams(
            T.TextDocumentItem(uri=uri, language_id="python", version=1, text="x = 1\n")
        )
    )
    client.text_document_did_change(
        T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                T.TextDocumentContentChangePartial(
                    range=T.Range(T.Position(0, 4), T.Position(0, 5)), text="42"
                )
            ],
        )
    )
    state = await server_state(client)
    assert state["openDocuments"] == [{"uri": uri, "version": 2}]
    client.text_document_did_close(T.DidCloseTextDocumentParams(T.TextDocumentIdentifier(uri)))
    state = await server_state(client)
    assert state["openDocuments"] == []


def test_malformed_params_get_invalid_params_and_server_keeps_serving(raw_server: RawServer):
    raw_server.initialize()
    reply = raw_server.request(7, "textDocument/hover", {"textDocument": 42, "position": "nowhere"})
    assert reply["error"]["code"] == -32602
    assert "textDocument/hover" in reply["error"]["message"]
    # A notification with broken params is dropped with a log line, not a crash.
    raw_server.send({"method": "textDocument/didOpen", "params": {"textDocument": "nope"}})
    # Not JSON at all: a parse error with id null.
    raw_server.send_bytes(b"{this is not json")
    parse_error = raw_server.wait_for(lambda m: m.get("error", {}).get("code") == -32700)
    assert parse_error["id"] is None
    ok = raw_server.request(8, "kimi/serverState", None)
    assert ok["result"]["version"]
    assert raw_server.proc.poll() is None


def test_handler_exception_becomes_error_response(raw_server: RawServer):
    raw_server.initialize()
    reply = raw_server.request(5, "kimi/_raise", None)
    assert reply["error"]["code"] == -32603
    assert "deliberate failure" in reply["error"]["message"]
    again = raw_server.request(6, "kimi/_raise", None)
    assert again["error"]["code"] == -32603
    # Request errors travel in the response: no pop-up for them.
    time.sleep(0.2)
    shown = [m for m in list(raw_server.inbox.queue) if m.get("method") == "window/showMessage"]
    assert shown == []
    assert raw_server.request(9, "kimi/serverState", None)["result"]


def test_unknown_method_gets_method_not_found(raw_server: RawServer):
    raw_server.initialize()
    reply = raw_server.request(3, "kimi/noSuchThing", {})
    assert reply["error"]["code"] == -32601


def test_shutdown_cancels_in_flight_work_then_exit(raw_server: RawServer):
    raw_server.initialize()
    raw_server.send({"id": 20, "method": "kimi/_sleep", "params": None})
    time.sleep(0.3)
    shutdown = raw_server.request(21, "shutdown", None)
    assert shutdown["result"] is None
    cancelled = raw_server.wait_for(lambda m: m.get("id") == 20)
    assert cancelled["error"]["code"] == -32800
    raw_server.send({"method": "exit", "params": None})
    assert raw_server.proc.wait(10) == 0


def test_exit_without_shutdown_is_an_error_exit(raw_server: RawServer):
    raw_server.initialize()
    raw_server.send({"method": "exit", "params": None})
    assert raw_server.proc.wait(10) == 1


def test_server_exits_when_the_editor_process_dies():
    editor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    server = RawServer()
    try:
        server.initialize(process_id=editor.pid)
        assert server.request(2, "kimi/serverState", None)["result"]
        editor.kill()
        editor.wait()
        assert server.proc.wait(15) == 0
    finally:
        editor.kill()
        server.close()


def test_log_file_is_written_in_the_state_dir(raw_server: RawServer):
    raw_server.initialize()
    raw_server.request(7, "textDocument/hover", {"textDocument": 42, "position": "nowhere"})
    log = Path(os.environ["KIMI_LSP_STATE_DIR"]) / "kimi-lsp.log"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if log.exists() and "Invalid params" in log.read_text():
            break
        time.sleep(0.05)
    assert "Invalid params for textDocument/hover" in log.read_text()


def _marked(mark: str) -> list[int]:
    """The live processes whose environment carries ``mark`` (a server's, its children's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"KIMI_LSP_TEST_MARK={mark}".encode() in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_exit_during_the_first_scan_leaves_no_worker_and_closes_stdout(tmp_path: Path) -> None:
    """The editor closes while the index's worker processes parse: they must end with the
    server. A process pool's workers outlive a parent that exits without shutting it down,
    and held the editor's pipe open, so the editor waited on a server that had exited (and
    every such session left three processes behind)."""
    body = "".join(f"def f{j}(x):\n    return g{j}(x) + {j}\n\n\n" for j in range(40))
    for i in range(1500):
        (tmp_path / f"m{i:04}.py").write_text(body)
    mark = os.urandom(6).hex()
    server = RawServer(env={"KIMI_LSP_TEST_MARK": mark})
    try:
        server.request(1, "initialize", {
            "processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {},
            "workspaceFolders": [{"uri": tmp_path.as_uri(), "name": "w"}],
        })  # fmt: skip
        server.send({"method": "initialized", "params": {}})
        # The server, the resource tracker, the forkserver and a worker it forked.
        deadline = time.monotonic() + 60
        while len(_marked(mark)) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(_marked(mark)) >= 4, "the scan's workers never started"
        assert server.request(2, "shutdown", None)["result"] is None
        server.send({"method": "exit", "params": None})
        assert server.proc.wait(10) == 0
        server._reader.join(30)  # stdout's end: every holder of the pipe has closed it
        assert not server._reader.is_alive()
        deadline = time.monotonic() + 30
        while _marked(mark) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _marked(mark) == []
    finally:
        for pid in _marked(mark):
            os.kill(pid, 9)
        server.close()

"""kimi.explain end to end: a real server, a real LSP client, the Kimi emulator on loopback."""

from __future__ import annotations

import asyncio
import itertools
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
    statuses: list[Any] = []
    lsp_client.feature("kimi/stream")(lambda params: streamed.append(params))
    lsp_client.feature("kimi/status")(lambda params: statuses.append(params))
    lsp_client.streamed = streamed  # type: ignore[attr-defined]
    lsp_client.statuses = statuses  # type: ignore[attr-defined]
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
    # What left the machine: the selected code as the target (whole lines marked: it is
    # `add`, whose callers and file outline come along as context), never `twice`'s code.
    chats = kimi_env.chat_requests
    assert len(chats) == 1
    user = chats[0].body["messages"][-1]["content"]
    target = user.split("The code (calc.py, line 1):", 1)[1]
    assert "def add(a, b):\n    return a + b\n```" in target
    assert "def twice(x):\n    return add(x, x)" not in user  # its code never went
    # The answer's budget plus room to think: the emulator's K2.6 reasons first.
    assert chats[0].body["max_completion_tokens"] == 1500 + 4096
    assert chats[0].body["thinking"] == {"type": "enabled"}
    assert chats[0].reasoning_tokens >= 300
    # Rich clients got the text live; every client got progress.
    streamed = client.streamed  # type: ignore[attr-defined]
    kinds = [getattr(p, "kind", None) for p in streamed]
    assert kinds[0] == "start"
    assert kinds[-1] == "end"
    text = "".join(p.text for p in streamed if getattr(p, "kind", None) == "text")
    assert text == result["text"]
    # The reasoning streamed separately, before the answer, for rich clients to fold away.
    assert "reasoning" in kinds
    assert kinds.index("reasoning") < kinds.index("text")
    (reports,) = [
        r for r in client.progress_reports.values() if getattr(r[0], "title", "") == "Kimi: Explain"
    ]
    assert reports[0].kind == "begin"
    assert reports[-1].kind == "end"
    assert "tokens in" in reports[-1].message  # done, with what it cost
    assert any((r.message or "").startswith("thought for ") for r in reports)
    assert "$" in reports[-1].message
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


async def wait_indexed(client: LanguageClient, name: str) -> None:
    for _ in range(100):
        found = await client.workspace_symbol_async(T.WorkspaceSymbolParams(query=name))
        if found:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never indexed")


def hover_text(hover: T.Hover | None) -> str:
    assert hover is not None
    contents = hover.contents
    assert isinstance(contents, T.MarkupContent)
    return contents.value


async def test_hover_shows_index_info_then_the_cached_explanation(
    client: LanguageClient, kimi_env: FakeKimi, project: Path
) -> None:
    uri = open_doc(client, project / "calc.py")
    await wait_indexed(client, "twice")
    at_twice = T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(line=4, character=5))
    before = hover_text(await client.text_document_hover_async(at_twice))
    assert "def twice(x):" in before
    assert "function" in before
    assert "No Kimi explanation yet" in before
    assert kimi_env.chat_requests == []  # hover never spends quota

    kimi_env.script("`twice` doubles a number by adding it to itself.", match="twice")
    result = await execute(
        client, "kimi.explain", {"uri": uri, "position": {"line": 5, "character": 8}}
    )
    assert result["symbol"] == "twice"
    after = hover_text(await client.text_document_hover_async(at_twice))
    assert "doubles a number" in after
    assert len(kimi_env.chat_requests) == 1

    # A call site of `add` shows `add`'s definition.
    at_call = T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(line=5, character=12))
    assert "def add(a, b):" in hover_text(await client.text_document_hover_async(at_call))


async def test_code_actions_are_offered_on_a_symbol_and_run_as_commands(
    client: LanguageClient, project: Path
) -> None:
    uri = open_doc(client, project / "calc.py")
    await wait_indexed(client, "add")
    params = T.CodeActionParams(
        text_document=T.TextDocumentIdentifier(uri),
        range=T.Range(T.Position(1, 4), T.Position(1, 4)),
        context=T.CodeActionContext(diagnostics=[]),
    )
    actions = await client.text_document_code_action_async(params)
    assert actions is not None
    titles = [a.title for a in actions]
    assert titles, actions
    assert "Kimi: Explain" in titles
    # pytest-lsp's converter reads these CodeActions as the Command of the result union (and
    # stringifies the nested command), so check the text; the raw shape is checked in Neovim.
    explain_action = next(a for a in actions if a.title == "Kimi: Explain")
    assert "kimi.explain" in str(explain_action.command)
    # Outside any definition there is nothing to offer.
    params.range = T.Range(T.Position(3, 0), T.Position(3, 0))
    assert not await client.text_document_code_action_async(params)


async def test_code_actions_are_offered_in_a_function_being_typed(
    client: LanguageClient, project: Path
) -> None:
    """A bracket left open at the end of the buffer loses the function to the parse; the
    offers follow what the action will work on, not the parse."""
    uri = open_doc(client, project / "calc.py")
    await wait_indexed(client, "add")
    typing = SOURCE + "\n\nclass K:\n    def m(self, x):\n        y = 1\n\n        if (\n"
    client.text_document_did_change(
        T.DidChangeTextDocumentParams(
            T.VersionedTextDocumentIdentifier(uri=uri, version=2),
            [T.TextDocumentContentChangeWholeDocument(text=typing)],
        )
    )
    params = T.CodeActionParams(
        text_document=T.TextDocumentIdentifier(uri),
        range=T.Range(T.Position(12, 12), T.Position(12, 12)),  # in `if (`
        context=T.CodeActionContext(diagnostics=[]),
    )
    actions = await client.text_document_code_action_async(params)
    assert "Kimi: Explain" in [a.title for a in actions or []]


async def test_a_repeated_explain_is_replayed_without_a_request_unless_regenerated(
    client: LanguageClient, kimi_env: FakeKimi, project: Path
) -> None:
    kimi_env.script("It adds.", match="add")
    uri = open_doc(client, project / "calc.py")
    first = await execute(client, "kimi.explain", selection(uri, 0, 2))
    second = await execute(client, "kimi.explain", selection(uri, 0, 2))
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["text"] == first["text"] == "It adds."
    assert len(kimi_env.chat_requests) == 1
    third = await execute(client, "kimi.explain", {**selection(uri, 0, 2), "regenerate": True})
    assert third["cached"] is False
    assert len(kimi_env.chat_requests) == 2


async def test_show_context_returns_exactly_what_explain_sends_and_sends_nothing(
    client: LanguageClient, kimi_env: FakeKimi, project: Path
) -> None:
    uri = open_doc(client, project / "calc.py")
    await wait_indexed(client, "twice")  # the outline is part of the prompt
    shown = await execute(client, "kimi.showContext", selection(uri, 0, 2))
    assert kimi_env.chat_requests == []
    assert "return a + b" in shown["text"]
    await execute(client, "kimi.explain", selection(uri, 0, 2))
    (sent,) = kimi_env.chat_requests
    assert sent.body["messages"] == shown["messages"]


async def test_status_notifications_report_index_runs_and_cache(
    client: LanguageClient, kimi_env: FakeKimi, project: Path
) -> None:
    statuses = client.statuses  # type: ignore[attr-defined]
    uri = open_doc(client, project / "calc.py")
    await wait_indexed(client, "twice")
    for _ in range(100):
        if any(not s.index.indexing and s.index.files == 1 for s in statuses):
            break
        await asyncio.sleep(0.05)
    assert any(not s.index.indexing and s.index.files == 1 for s in statuses), statuses
    kimi_env.chunk_delay = 0.1
    kimi_env.script("slowly " * 10, match="add")
    await execute(client, "kimi.explain", selection(uri, 0, 2))
    await execute(client, "kimi.explain", selection(uri, 0, 2))
    await asyncio.sleep(0.6)
    assert any(s.runs == 1 for s in statuses)
    assert statuses[-1].runs == 0
    assert statuses[-1].cache.hits == 1
    assert statuses[-1].cache.savedTokens > 0
    assert statuses[-1].cache.savedUsd > 0  # kimi-k2.6 list prices
    assert statuses[-1].quota.todayUsd > 0


async def test_hover_may_wait_for_a_fresh_explanation_when_the_user_opts_in(
    client: LanguageClient, kimi_env: FakeKimi, project: Path
) -> None:
    client.set_configuration({"hoverWaitMs": 5000}, section="kimi")
    client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings=None))
    await wait_state(client, lambda s: s["settings"]["hover_wait_ms"]["value"] == "5000")
    kimi_env.script("`add` sums two values.", match="add")
    uri = open_doc(client, project / "calc.py")
    await wait_indexed(client, "add")
    at_add = T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(line=0, character=5))
    assert "sums two values" in hover_text(await client.text_document_hover_async(at_add))
    assert len(kimi_env.chat_requests) == 1


async def _start_slow_explain(
    client: LanguageClient, kimi_env: FakeKimi, project: Path, msg_id: int
) -> tuple[asyncio.Task[Any], str]:
    kimi_env.chunk_delay = 0.2
    kimi_env.script("word " * 200, match="add")
    uri = open_doc(client, project / "calc.py")
    params = T.ExecuteCommandParams(command="kimi.explain", arguments=[selection(uri, 0, 2)])
    task = asyncio.ensure_future(
        client.protocol.send_request_async(T.WORKSPACE_EXECUTE_COMMAND, params, msg_id=msg_id)
    )
    streamed = client.streamed  # type: ignore[attr-defined]
    for _ in range(100):
        if any(getattr(p, "kind", None) == "text" for p in streamed):
            break
        await asyncio.sleep(0.05)
    return task, uri


async def test_cancel_request_closes_the_stream(
    client: LanguageClient, kimi_env: FakeKimi, project: Path
) -> None:
    task, _ = await _start_slow_explain(client, kimi_env, project, 901)
    client.protocol.notify(T.CANCEL_REQUEST, T.CancelParams(id=901))
    with pytest.raises(Exception, match="cancel"):
        await asyncio.wait_for(task, 10)
    assert kimi_env.wait_until(lambda: kimi_env.in_flight() == 0, timeout=5)


async def test_progress_cancel_closes_the_stream(
    client: LanguageClient, kimi_env: FakeKimi, project: Path
) -> None:
    task, _ = await _start_slow_explain(client, kimi_env, project, 902)
    (token,) = [
        t
        for t, r in client.progress_reports.items()
        if getattr(r[0], "title", "") == "Kimi: Explain"
    ]
    client.protocol.notify(
        T.WINDOW_WORK_DONE_PROGRESS_CANCEL, T.WorkDoneProgressCancelParams(token=token)
    )
    with pytest.raises(Exception, match="cancel"):
        await asyncio.wait_for(task, 10)
    assert kimi_env.wait_until(lambda: kimi_env.in_flight() == 0, timeout=5)


async def test_the_same_action_on_the_same_target_replaces_the_earlier_run(
    client: LanguageClient, kimi_env: FakeKimi, project: Path
) -> None:
    first, uri = await _start_slow_explain(client, kimi_env, project, 903)
    kimi_env.chunk_delay = 0.0
    kimi_env.script("short answer", match="add")
    second = await execute(client, "kimi.explain", selection(uri, 0, 2))
    assert second["text"] in ("short answer", "word " * 200)
    with pytest.raises(Exception, match="cancel"):
        await asyncio.wait_for(first, 10)


async def test_a_rate_limit_answer_is_retried_after_the_time_it_names_and_counted(
    client: LanguageClient, kimi_env: FakeKimi, project: Path
) -> None:
    kimi_env.fail_next("rate_limit_rpm", retry_after=1)
    kimi_env.script("It adds.", match="add")
    uri = open_doc(client, project / "calc.py")
    result = await execute(client, "kimi.explain", selection(uri, 0, 2))
    assert result["text"] == "It adds."
    (reports,) = [
        r for r in client.progress_reports.values() if getattr(r[0], "title", "") == "Kimi: Explain"
    ]
    messages = [getattr(r, "message", "") or "" for r in reports]
    assert any("retrying in 1 s" in m for m in messages), messages
    quota = await execute(client, "kimi.quota", {})
    assert quota["limits"]["rpm"] == 3  # what the 429 stated, not tier 1's 200 (the default)
    assert quota["sources"]["rpm"].startswith("learned from Kimi at ")
    assert [r.status for r in kimi_env.chat_requests] == [429, 200]
    assert quota["requestsLastMinute"] == 1  # the refused try counts for nothing, as at Kimi


async def test_a_request_that_does_not_fit_waits_and_says_for_what(
    client: LanguageClient, kimi_env: FakeKimi, project: Path
) -> None:
    client.set_configuration({"limits": "concurrency=1"}, section="kimi")
    client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings=None))
    await wait_state(client, lambda s: s["settings"]["limits"]["value"] == "concurrency=1")
    kimi_env.chunk_delay = 0.05
    kimi_env.script("word " * 40, match="return")
    uri = open_doc(client, project / "calc.py")
    first = asyncio.ensure_future(execute(client, "kimi.explain", selection(uri, 0, 2)))
    await asyncio.sleep(0.2)
    second = await execute(client, "kimi.explain", selection(uri, 4, 6))
    await first
    assert second["cached"] is False
    messages = [
        getattr(r, "message", "") or "" for rs in client.progress_reports.values() for r in rs
    ]
    assert any(m.startswith("waiting") and "concurrency" in m for m in messages), messages
    for reports in client.progress_reports.values():  # each re-check is not a new report
        said = [getattr(r, "message", "") or "" for r in reports]
        repeated = [a for a, b in itertools.pairwise(said) if a == b and a.startswith("waiting")]
        assert not repeated, said
    assert max(r.at for r in kimi_env.chat_requests[:1]) <= min(
        r.at for r in kimi_env.chat_requests[1:]
    )

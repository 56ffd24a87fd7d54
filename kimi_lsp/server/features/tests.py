"""``kimi.generateTests``: tests streamed onto the end of the test file (created where there
is none), which is then shown."""

from __future__ import annotations

from typing import Any

from lsprotocol import types as T

from kimi_lsp.actions.testgen import generate_tests

from ..client_edits import LspEditor, LspFileCreator, show_document
from ..convert import where
from ..progress import LspSink, run_command
from ..session import KimiLanguageServer


def register(server: KimiLanguageServer) -> None:
    @server.command("kimi.generateTests")
    async def cmd_generate_tests(ls: KimiLanguageServer, *args: Any) -> dict[str, Any]:
        async def work(params: dict[str, Any], sink: LspSink) -> dict[str, Any]:
            w = where(ls.workspace, params, ls.encoding)
            path, text, line, col, selection = w.path, w.text, w.line, w.col, w.selection
            result = await generate_tests(
                ls.action_services(params), path, text, line, col, sink,
                open_test_file=lambda p: LspEditor(ls, p.as_uri()),
                creator=LspFileCreator(ls),
                selection=selection,
                regenerate=bool(params.get("regenerate")),
            )  # fmt: skip
            test_uri = result.test_file.as_uri()
            if result.applied:
                await show_document(ls, test_uri)
            else:
                ls.show(f"Kimi: the tests were not written: {result.reason}", T.MessageType.Warning)
            return {
                "testUri": test_uri,
                "created": result.created,
                "applied": result.applied,
                "reason": result.reason,
                "cached": result.cached,
            }

        return await run_command(ls, "tests", "Kimi: Generate tests", args, work)

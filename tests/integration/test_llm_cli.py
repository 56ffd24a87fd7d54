"""`kimi-lsp explain` and `kimi-lsp doctor` as a user runs them, against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kimi_lsp.context.recipes import OUTPUT_TOKENS
from tests.fake_kimi import FakeKimi

SOURCE = """import os


class Greeter:
    def greet(self, name):
        msg = f"hi {name}"
        return msg

    def other(self):
        pass


def top():
    return 1
"""


def kimi_lsp(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kimi_lsp", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )


@pytest.fixture
def app(tmp_path: Path) -> Path:
    path = tmp_path / "app.py"
    path.write_text(SOURCE)
    return path


def test_explain_streams_the_answer_and_sends_the_enclosing_definition(
    fake_kimi: FakeKimi, app: Path
) -> None:
    fake_kimi.script("greet builds a greeting.", match="greet", reasoning="Look at greet.")
    result = kimi_lsp("explain", f"{app}:6", env=fake_kimi.env())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "greet builds a greeting.\n"
    assert "Look at greet." not in result.stderr  # reasoning only with --show-reasoning
    (request,) = fake_kimi.chat_requests
    prompt = request.body["messages"][-1]["content"]
    assert "def greet(self, name):" in prompt
    assert '    msg = f"hi {name}"\n        return msg' in prompt  # the definition, whole
    assert "Explain what `greet` does" in prompt  # the editor's recipe
    assert request.body["model"] == "kimi-k2.6"
    # the answer's size plus the thinking policy's reasoning allowance (kimi-k2.6 thinks)
    assert request.body["max_completion_tokens"] == OUTPUT_TOKENS["explain"] + 4096
    assert request.body["prompt_cache_key"].startswith("kimi-lsp-")


def test_explain_shows_reasoning_on_stderr_when_asked(fake_kimi: FakeKimi, app: Path) -> None:
    fake_kimi.script("It returns one.", match="top", reasoning="Trivial function.")
    result = kimi_lsp("explain", f"{app}:14", "--show-reasoning", env=fake_kimi.env())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "It returns one.\n"
    assert "Trivial function." in result.stderr


def test_explain_without_a_key_says_how_to_set_it(app: Path) -> None:
    result = kimi_lsp("explain", f"{app}:6", env={})
    assert result.returncode == 2
    assert "MOONSHOT_API_KEY" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("location", ["nowhere.py:3", "app.py", "app.py:0", "app.py:99"])
def test_explain_rejects_bad_locations(fake_kimi: FakeKimi, app: Path, location: str) -> None:
    result = kimi_lsp("explain", str(app.parent / location), env=fake_kimi.env())
    assert result.returncode == 2
    assert result.stderr.startswith("kimi-lsp explain:")
    assert fake_kimi.chat_requests == []


def test_explain_reports_api_errors_clearly(fake_kimi: FakeKimi, app: Path) -> None:
    fake_kimi.fail_next("quota")
    result = kimi_lsp("explain", f"{app}:6", env=fake_kimi.env())
    assert result.returncode == 1
    assert "Recharge" in result.stderr
    assert fake_kimi.chat_requests[0].request_id in result.stderr


def test_doctor_reports_models_and_balance(fake_kimi: FakeKimi) -> None:
    result = kimi_lsp("doctor", "--json", env=fake_kimi.env())
    assert result.returncode == 0, result.stdout
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    account = checks["account"]
    assert account["ok"] is True
    assert "balance 49.59 USD available" in account["detail"]
    assert "kimi-k2.6: context 262,144, thinks" in account["detail"]
    assert "kimi-k3" in account["data"]["models"]
    paths = {r.path for r in fake_kimi.requests}
    assert {"/v1/models", "/v1/users/me/balance"} <= paths


def test_doctor_warns_about_an_empty_balance(fake_kimi: FakeKimi) -> None:
    fake_kimi.balance = {"available_balance": 0.0, "voucher_balance": 0.0, "cash_balance": -2.0}
    result = kimi_lsp("doctor", env=fake_kimi.env())
    assert result.returncode == 0  # advisory: the setup itself is fine
    assert "[warn] account: balance 0.00 USD available" in result.stdout
    assert "recharge" in result.stdout

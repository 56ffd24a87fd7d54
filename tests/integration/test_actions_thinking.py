"""The thinking policy and the pipeline's never-empty answer, against the emulator."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from kimi_lsp.actions.errors import ThinkingBudgetSpent
from kimi_lsp.actions.pipeline import answer
from kimi_lsp.actions.stores import CacheStore
from kimi_lsp.actions.thinking import plan_thinking
from kimi_lsp.cache import open_cache
from kimi_lsp.config import load_settings, parse_thinking
from kimi_lsp.llm import KimiClient
from kimi_lsp.llm.models import infer_spec
from tests.fake_kimi import FakeKimi

MESSAGES = [{"role": "user", "content": "Explain what `add` does."}]


class RecordingSink:
    def __init__(self) -> None:
        self.said: list[str] = []
        self.reasoned: list[str] = []
        self.answered: list[str] = []

    def progress(self, message: str) -> None:
        self.said.append(message)

    def text(self, delta: str) -> None:
        self.answered.append(delta)

    def reasoning(self, delta: str) -> None:
        self.reasoned.append(delta)


def test_the_policy_turns_thinking_off_for_mechanical_edits_where_the_model_allows() -> None:
    k26, k27, k3 = (infer_spec(m) for m in ("kimi-k2.6", "kimi-k2.7-code", "kimi-k3"))
    explain = plan_thinking("explain", k26, "auto", 4096, 1500)
    assert (explain.thinking, explain.max_completion_tokens) == (True, 4096 + 1500)
    names = plan_thinking("names", k26, "auto", 4096, 1500)
    assert (names.thinking, names.max_completion_tokens) == (False, 1500)
    # K2.7 always thinks: never `disabled`, always the allowance.
    always = plan_thinking("workspace", k27, "off", 4096, 200)
    assert (always.thinking, always.allowance, always.thinks) == (None, 4096, True)
    # K3: low effort and a smaller allowance for mechanical work.
    low = plan_thinking("types", k3, "auto", 4096, 1000)
    assert (low.reasoning_effort, low.thinking) == ("low", None)
    assert 0 < low.allowance < 4096
    assert plan_thinking("explain", k3, "auto", 4096, 1000).reasoning_effort is None
    # Per-action overrides beat the default.
    assert plan_thinking("explain", k26, "auto,explain=off", 4096, 1500).thinking is False
    assert plan_thinking("tests", k26, "off,tests=on", 4096, 1500).thinking is True
    legacy = plan_thinking("explain", infer_spec("moonshot-v1-8k"), "on", 4096, 1500)
    assert (legacy.thinking, legacy.max_completion_tokens) == (None, 1500)


def test_the_thinking_setting_parses_from_every_layer_and_rejects_nonsense() -> None:
    assert parse_thinking("auto, explain=off ,workspace=on") == (
        "auto",
        {"explain": "off", "workspace": "on"},
    )
    loaded = load_settings({"KIMI_LSP_THINKING": "off,explain=on"}, {"thinkingAllowance": 8192})
    assert loaded.settings.thinking == "off,explain=on"
    assert loaded.settings.thinking_allowance == 8192
    loaded = load_settings({}, None, {"thinking": "sometimes"})
    assert loaded.settings.thinking == "auto"
    assert any("thinking" in p for p in loaded.problems)
    with pytest.raises(ValueError, match="unknown action"):
        parse_thinking("auto,rename=off")


async def test_progress_counts_the_reasoning_while_it_streams(fake_kimi: FakeKimi) -> None:
    fake_kimi.script("It adds.", reasoning_tokens=1_240)
    plan = plan_thinking("explain", infer_spec("kimi-k2.6"), "auto", 4096, 500)
    sink = RecordingSink()
    async with KimiClient(fake_kimi.base_url, fake_kimi.key) as client:
        result = await answer(
            client, MESSAGES, model="kimi-k2.6", max_completion_tokens=0, sink=sink, plan=plan
        )
    assert result.text == "It adds."
    assert result.usage.reasoning_tokens == 1_240
    thinking = [m for m in sink.said if m.startswith("thinking…")]
    assert thinking[0] == "thinking… 256 tokens"  # the emulator thinks in 256-token deltas
    assert "thought for 1,240 tokens; answering" in sink.said
    counts = [int(m.split()[1].replace(",", "")) for m in thinking]
    assert all(b - a >= 250 for a, b in itertools.pairwise(counts))
    (request,) = fake_kimi.chat_requests
    assert request.body["max_completion_tokens"] == 4096 + 500


async def test_a_reply_cut_in_its_reasoning_is_retried_once_with_thinking_off(
    fake_kimi: FakeKimi,
) -> None:
    fake_kimi.script("It adds.", match="add", reasoning_tokens=9_000)
    plan = plan_thinking("explain", infer_spec("kimi-k2.6"), "auto", 4096, 500)
    sink = RecordingSink()
    async with KimiClient(fake_kimi.base_url, fake_kimi.key) as client:
        result = await answer(
            client, MESSAGES, model="kimi-k2.6", max_completion_tokens=0, sink=sink, plan=plan
        )
    assert result.text == "It adds."
    first, second = fake_kimi.chat_requests
    assert (first.finish_reason, first.reasoning_tokens) == ("length", 4096 + 500)
    assert second.body["thinking"] == {"type": "disabled"}
    assert any("asking again with thinking off" in m for m in sink.said)


async def test_a_reply_cut_in_its_reasoning_twice_says_so_in_words(fake_kimi: FakeKimi) -> None:
    fake_kimi.script("It adds.", match="add", reasoning_tokens=90_000)
    plan = plan_thinking("explain", infer_spec("kimi-k2.7-code"), "auto", 1024, 500)
    sink = RecordingSink()
    async with KimiClient(fake_kimi.base_url, fake_kimi.key) as client:
        with pytest.raises(ThinkingBudgetSpent) as info:
            await answer(
                client,
                MESSAGES,
                model="kimi-k2.7-code",
                max_completion_tokens=0,
                sink=sink,
                plan=plan,
            )
    assert "whole output budget (2,548 tokens) thinking" in info.value.message
    assert "thinkingAllowance" in info.value.message
    sizes = [r.body["max_completion_tokens"] for r in fake_kimi.chat_requests]
    assert sizes == [1524, 2548]  # the retry had twice the allowance


async def test_without_a_plan_a_reasoning_only_reply_is_an_error_not_an_empty_answer(
    fake_kimi: FakeKimi,
) -> None:
    fake_kimi.script("It adds.", reasoning_tokens=3_000)
    async with KimiClient(fake_kimi.base_url, fake_kimi.key) as client:
        with pytest.raises(ThinkingBudgetSpent):
            await answer(
                client, MESSAGES, model="kimi-k2.6", max_completion_tokens=500, sink=RecordingSink()
            )


async def test_the_cache_key_covers_the_thinking_choice(
    fake_kimi: FakeKimi, tmp_path: Path
) -> None:
    fake_kimi.script("It adds.", match="add", reasoning_tokens=300)
    store = CacheStore(open_cache("on", tmp_path))
    k26 = infer_spec("kimi-k2.6")
    async with KimiClient(fake_kimi.base_url, fake_kimi.key) as client:
        for setting in ("on", "off", "on", "off"):
            plan = plan_thinking("explain", k26, setting, 4096, 500)
            await answer(
                client,
                MESSAGES,
                model="kimi-k2.6",
                max_completion_tokens=0,
                sink=RecordingSink(),
                store=store,
                plan=plan,
            )
    thinking = [r.body["thinking"]["type"] for r in fake_kimi.chat_requests]
    assert thinking == ["enabled", "disabled"]  # each choice asked once, then served cached

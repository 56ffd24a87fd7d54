"""The model table and request shaping follow kimi-api.md §2 and §3.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimi_lsp.llm import ModelTable, estimate_messages_tokens, estimate_text_tokens, infer_spec
from kimi_lsp.llm.client import currency_for
from kimi_lsp.llm.models import SAFE_CONTEXT, shape_request

MSGS = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("model", "context", "thinks", "fixed", "control", "optional"),
    [
        ("kimi-k3", 1_048_576, True, True, "reasoning_effort", False),
        ("kimi-k2.7-code", 262_144, True, True, "thinking", False),
        ("kimi-k2.6", 262_144, True, True, "thinking", True),
        ("kimi-k2.5", 262_144, True, True, "thinking", True),
        ("moonshot-v1-32k", 32_768, False, False, None, True),
        ("kimi-k2-0905-preview", 262_144, False, False, None, True),
    ],
)
def test_builtin_specs(
    model: str, context: int, thinks: bool, fixed: bool, control: str | None, optional: bool
) -> None:
    spec = ModelTable.builtin().get(model)
    assert (spec.context_length, spec.thinks, spec.fixed_sampling) == (context, thinks, fixed)
    assert spec.reasoning_control == control
    assert spec.thinking_optional is optional


def test_unknown_model_gets_safe_defaults() -> None:
    spec = ModelTable.builtin().get("mystery-model")
    assert spec.known is False
    assert spec.fixed_sampling is True  # omitting sampling parameters is always accepted
    assert spec.reasoning_control is None
    assert spec.context_length == SAFE_CONTEXT
    assert infer_spec("mystery", {"context_length": 4096}).context_length == 4096


def test_listing_refresh_and_cache_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state" / "models.json"
    table = ModelTable.builtin(path=path)
    table.update_from_listing(
        [
            {"id": "kimi-k2.6", "context_length": 200_000, "supports_reasoning": True},
            {"id": "kimi-k3"},  # no context_length (seen on .ai): keep the known one
            {"id": "kimi-k4-preview", "context_length": 2_000_000, "supports_reasoning": True},
        ]
    )
    table.save()
    loaded = ModelTable.load(path)
    assert loaded.listed == ["kimi-k2.6", "kimi-k3", "kimi-k4-preview"]
    assert loaded.get("kimi-k2.6").context_length == 200_000
    assert loaded.get("kimi-k3").context_length == 1_048_576
    assert loaded.get("kimi-k4-preview").thinks is True
    assert loaded.fits_context("kimi-k2.6", 199_000, 1_000)
    assert not loaded.fits_context("kimi-k2.6", 199_001, 1_000)


def test_corrupt_cache_falls_back_to_builtin(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text("{not json")
    assert ModelTable.load(path).get("kimi-k3").context_length == 1_048_576


def test_shaping_never_sends_both_controls_or_fixed_sampling() -> None:
    table = ModelTable.builtin()
    k3 = shape_request(table.get("kimi-k3"), MSGS, max_completion_tokens=10, reasoning_effort="max")
    assert k3["reasoning_effort"] == "max"
    assert "thinking" not in k3
    k26 = shape_request(
        table.get("kimi-k2.6"), MSGS, max_completion_tokens=10, thinking=True, temperature=0.1
    )
    assert k26["thinking"] == {"type": "enabled"}
    assert "temperature" not in k26
    assert "reasoning_effort" not in k26
    with pytest.raises(ValueError, match="not `reasoning_effort`"):
        shape_request(
            table.get("kimi-k2.6"), MSGS, max_completion_tokens=10, reasoning_effort="low"
        )
    with pytest.raises(ValueError, match="always thinks"):
        shape_request(table.get("kimi-k3"), MSGS, max_completion_tokens=10, thinking=False)
    with pytest.raises(ValueError, match="low"):
        shape_request(table.get("kimi-k3"), MSGS, max_completion_tokens=10, reasoning_effort="x")


def test_local_estimate_is_conservative() -> None:
    assert estimate_text_tokens("abcd" * 10) == 10
    assert estimate_text_tokens("中文") == 2
    assert estimate_messages_tokens(MSGS) == 4 + 1


def test_currency_by_host() -> None:
    assert currency_for("https://api.moonshot.ai/v1") == "USD"
    assert currency_for("https://api.moonshot.cn/v1") == "CNY"

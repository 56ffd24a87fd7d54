"""Settings: precedence of the four layers, bad values, and the key never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimi_lsp.config import Settings, load_settings, parse_limits


def test_defaults_when_nothing_is_set() -> None:
    loaded = load_settings(environ={})
    s = loaded.settings
    assert s.base_url == "https://api.moonshot.ai/v1"
    assert s.model == "kimi-k2.6"
    assert s.quota_store == "sqlite"
    assert s.tier == 1
    assert s.cache == "on"
    assert not s.has_api_key
    assert set(loaded.sources.values()) == {"default"}
    assert loaded.problems == []


def test_precedence_env_then_init_options_then_workspace() -> None:
    loaded = load_settings(
        environ={"KIMI_LSP_MODEL": "env-model", "KIMI_LSP_TIER": "3", "KIMI_LSP_CACHE": "off"},
        init_options={"model": "init-model", "tier": 4},
        workspace={"model": "ws-model"},
    )
    s = loaded.settings
    assert (s.model, loaded.sources["model"]) == ("ws-model", "workspace/configuration")
    assert (s.tier, loaded.sources["tier"]) == (4, "initializationOptions")
    assert (s.cache, loaded.sources["cache"]) == ("off", "environment")


def test_camel_case_and_nested_kimi_section_are_accepted() -> None:
    loaded = load_settings(
        environ={},
        init_options={"kimi": {"baseUrl": "http://127.0.0.1:9/v1/", "hoverWaitMs": 250}},
    )
    assert loaded.settings.base_url == "http://127.0.0.1:9/v1"
    assert loaded.settings.hover_wait_ms == 250


@pytest.mark.parametrize(
    ("key", "env_value"),
    [("MOONSHOT_API_KEY", "sk-moon"), ("KIMI_API_KEY", "sk-kimi"), ("KIMI_LSP_API_KEY", "sk-own")],
)
def test_api_key_from_each_env_name(key: str, env_value: str) -> None:
    s = load_settings(environ={key: env_value}).settings
    assert s.api_key is not None
    assert s.api_key.get_secret_value() == env_value


def test_api_key_never_in_repr_or_report() -> None:
    loaded = load_settings(environ={"MOONSHOT_API_KEY": "sk-very-secret"})
    assert "sk-very-secret" not in repr(loaded.settings)
    assert "sk-very-secret" not in str(loaded.settings)
    assert "sk-very-secret" not in str(loaded.report())
    assert loaded.report()["api_key"] == {"value": "(set)", "source": "environment"}


def test_invalid_value_falls_back_to_the_layer_below_and_is_named() -> None:
    loaded = load_settings(
        environ={"KIMI_LSP_TIER": "2"},
        init_options={"tier": 9},
        workspace={"quotaStore": "postgres://x", "logLevel": "loud"},
    )
    s = loaded.settings
    assert s.tier == 2
    assert loaded.sources["tier"] == "environment"
    assert s.quota_store == "sqlite"
    assert loaded.sources["quota_store"] == "default"
    assert s.log_level == "INFO"
    text = "\n".join(loaded.problems)
    assert "'tier'" in text
    assert "9" in text
    assert "'quota_store'" in text
    assert "redis://" in text
    assert "'log_level'" in text
    assert len(loaded.problems) == 3


def test_invalid_key_value_is_reported_without_echoing_it() -> None:
    loaded = load_settings(environ={}, init_options={"apiKey": ["not", "a", "string"]})
    assert not loaded.settings.has_api_key
    assert any("'api_key'" in p and "(hidden)" in p for p in loaded.problems)


def test_unknown_keys_are_reported_not_fatal() -> None:
    loaded = load_settings(environ={}, init_options={"modle": "typo"})
    assert loaded.problems == ["initializationOptions: unknown setting 'modle' ignored"]


def test_non_object_settings_are_reported() -> None:
    loaded = load_settings(environ={}, workspace=["nope"])  # type: ignore[arg-type]
    assert loaded.problems
    assert "must be an object" in loaded.problems[0]


def test_state_dir_from_env(tmp_path: Path) -> None:
    s = load_settings(environ={"KIMI_LSP_STATE_DIR": str(tmp_path)}).settings
    assert s.state_dir == tmp_path


@pytest.mark.parametrize("value", ["on", "off", "redis://127.0.0.1:6379/1", "TRUE"])
def test_cache_values(value: str) -> None:
    assert Settings(cache=value).cache in ("on", "off", value)


def test_limits_parse_and_reject() -> None:
    assert parse_limits("concurrency=3, rpm=60,tpm=100000,tpd=unlimited") == {
        "concurrency": 3,
        "rpm": 60,
        "tpm": 100000,
        "tpd": None,
    }
    assert parse_limits("") == {}
    for bad in ("rpm", "rpm=x", "speed=3", "rpm=1,rpm=2", "tpm=0"):
        with pytest.raises(ValueError):  # noqa: PT011 - the message is checked below
            parse_limits(bad)
    loaded = load_settings(environ={"KIMI_LSP_LIMITS": "rpm=fast"})
    assert loaded.settings.limits == ""
    assert "NAME=NUMBER" in loaded.problems[0]

"""Settings: one model, four layers.

Precedence, lowest first: defaults < environment (``KIMI_LSP_*``, ``MOONSHOT_API_KEY``,
``KIMI_API_KEY``) < ``initializationOptions`` < the ``kimi`` section of
``workspace/configuration``. A value that fails validation is dropped from its layer, so the
key falls back to the layer below (in the end, the default), and the problem is reported once,
naming the key and the reason. The API key is a ``SecretStr``: it never appears in a repr, a
log line or the doctor's output.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "KIMI_LSP_"
API_KEY_ENV = ("KIMI_LSP_API_KEY", "MOONSHOT_API_KEY", "KIMI_API_KEY")
CONFIG_SECTION = "kimi"
LIMIT_NAMES = ("concurrency", "rpm", "tpm", "tpd")

_LIMITS_RE = re.compile(r"^\s*(concurrency|rpm|tpm|tpd)\s*=\s*(\d+|unlimited)\s*$")


def default_state_dir() -> Path:
    return Path(platformdirs.user_cache_dir("kimi-lsp", appauthor=False))


def parse_limits(text: str) -> dict[str, int | None]:
    """Parse ``concurrency=…,rpm=…,tpm=…,tpd=…`` (any subset; ``unlimited`` → None)."""
    out: dict[str, int | None] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = _LIMITS_RE.match(part)
        if not m:
            raise ValueError(
                f"{part!r} is not NAME=NUMBER with NAME one of {', '.join(LIMIT_NAMES)}"
            )
        name, value = m.group(1), m.group(2)
        if name in out:
            raise ValueError(f"{name} is given twice")
        out[name] = None if value == "unlimited" else int(value)
        if out[name] == 0:
            raise ValueError(f"{name} must be at least 1 (or 'unlimited')")
    return out


ThinkingMode = Literal["auto", "on", "off"]
THINKING_MODES: tuple[ThinkingMode, ...] = ("auto", "on", "off")
# The actions the thinking policy (actions/thinking.py) tells apart.
THINKING_ACTIONS = (
    "explain",
    "fix",
    "refactor",
    "simplify",
    "idiomatic",
    "names",
    "types",
    "docstring",
    "tests",
    "workspace",
)
_THINKING_PAIR_RE = re.compile(r"^([a-z]+)\s*=\s*([a-z]+)$")


def parse_thinking(text: str) -> tuple[ThinkingMode, dict[str, ThinkingMode]]:
    """Parse ``auto|on|off`` then ``ACTION=MODE`` pairs, comma-separated (each optional)."""
    default: ThinkingMode = "auto"
    overrides: dict[str, ThinkingMode] = {}
    for i, part in enumerate(p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        if i == 0 and part in THINKING_MODES:
            default = part
            continue
        m = _THINKING_PAIR_RE.match(part)
        if not m or m.group(2) not in THINKING_MODES:
            raise ValueError(f"{part!r} is not MODE or ACTION=MODE (MODE: auto, on or off)")
        if m.group(1) not in THINKING_ACTIONS:
            raise ValueError(f"unknown action {m.group(1)!r}; one of {', '.join(THINKING_ACTIONS)}")
        overrides[m.group(1)] = m.group(2)  # type: ignore[assignment]
    return default, overrides


class Settings(BaseSettings):
    """Everything a user can set. Field descriptions become docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", validate_default=True, populate_by_name=True
    )

    api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("api_key", "apiKey", *API_KEY_ENV),
        description=(
            "The Moonshot API key. Read from `MOONSHOT_API_KEY` (or `KIMI_API_KEY`, or "
            "`KIMI_LSP_API_KEY`); editors may pass it as `apiKey` in initializationOptions. "
            "Never logged or shown."
        ),
    )
    base_url: str = Field(
        default="https://api.moonshot.ai/v1",
        description="The API's base URL (`https://api.moonshot.cn/v1` for the China platform).",
    )
    model: str = Field(default="kimi-k2.6", description="The model every action uses.")
    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Where the index, cache and quota databases and the log file live.",
    )
    quota_store: str = Field(
        default="sqlite",
        description=(
            "Where the shared quota lives: `sqlite` (one file in the state dir, shared by "
            "every process of this user) or a `redis://` URL (shared by a team)."
        ),
    )
    tier: int = Field(
        default=1,
        ge=0,
        le=5,
        description="The account's Moonshot rate-limit tier (0-5); it sets the four limits.",
    )
    limits: str = Field(
        default="",
        description=(
            "Explicit overrides of the tier's limits: `concurrency=…,rpm=…,tpm=…,tpd=…` "
            "(any subset; `unlimited` allowed)."
        ),
    )
    quota_reserve: float = Field(
        default=0.1,
        ge=0,
        le=0.5,
        description=(
            "The share of every limit (0-0.5) that batch work (a workspace refactor's fan-out) "
            "leaves to interactive requests, so they find room while batch work runs. At Tier "
            "0's 3 RPM the ends differ most: `0` lets batch work use every request (all of "
            "RPM used, interactive requests wait their turn: p95 ~40 s in the quota bench), "
            "`0.5` keeps half (about half of RPM used, interactive p95 ~5 s); the default "
            "keeps one request a minute (docs/quota-and-caching.md)."
        ),
    )
    cache: str = Field(
        default="on",
        description=(
            "The response cache: `on` (SQLite in the state dir), `off`, or a `redis://` URL "
            "to share answers with a team."
        ),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Level of the log file in the state dir."
    )
    review_mode: bool = Field(
        default=True,
        description="Write refactors longer than a few lines as a preview to accept or reject.",
    )
    hover_wait_ms: int = Field(
        default=0,
        ge=0,
        le=60_000,
        description=(
            "How long hover may wait for a fresh explanation (spends quota); 0 shows only "
            "what is cached."
        ),
    )
    context_budget: int = Field(
        default=12_000,
        ge=1_000,
        description=(
            "Most input tokens one action's prompt may use (TPM admission charges every one); "
            "the model's context minus the answer's budget caps it too."
        ),
    )
    index_wait_ms: int = Field(
        default=10_000,
        ge=0,
        le=600_000,
        description=(
            "How long an action that needs the workspace (explain, refactor, tests) waits "
            "for the first index scan before it builds its prompt from what is indexed; a "
            "workspace refactor waits as long, then refuses rather than miss files."
        ),
    )
    context_repository_budget: int | None = Field(
        default=None,
        ge=500,
        description=(
            "Room for repository context in one prompt (the map, the definitions the code "
            "uses, class outlines, callers), the target file's window counted apart; "
            "contextBudget still caps the whole prompt. Unset: what contextBudget leaves."
        ),
    )
    workspace_confirm_usd: float = Field(
        default=0.5,
        ge=0,
        description=(
            "A workspace-wide refactor estimated to cost more than this (USD, list prices) "
            "asks before it starts."
        ),
    )
    max_file_bytes: int = Field(
        default=1_000_000, ge=1_000, description="Files larger than this are not indexed."
    )
    thinking: str = Field(
        default="auto",
        description=(
            "Whether Kimi thinks before answering: `auto` (mechanical edits such as names, "
            "types, docstrings, tests and a workspace refactor's files without thinking where "
            "the model allows it; explain, fix and free-form refactors with it), `on` or `off`, "
            "then per-action overrides, e.g. `auto,explain=off,workspace=on`. Actions: "
            + ", ".join(THINKING_ACTIONS)
            + ". Models that always think (kimi-k2.7-code, kimi-k3) think anyway."
        ),
    )
    thinking_allowance: int = Field(
        default=4096,
        ge=256,
        le=131_072,
        description=(
            "Reasoning tokens a thinking request may spend before its answer; they are added "
            "to the answer's output budget (and to what TPM admission charges)."
        ),
    )
    request_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="Longest silence allowed between two chunks of a streamed answer.",
    )
    tools: Literal["on", "off"] = Field(
        default="on",
        description=(
            "Index tools: on explain, fix, refactor with your own instruction and generate "
            "tests, Kimi may look up definitions, references, outlines and file lines in the "
            "workspace index when the packed context is not enough (ignored files and secrets "
            "stay out, as in the packed context). `off`: the packed context alone."
        ),
    )
    tool_rounds: int = Field(
        default=3,
        ge=1,
        le=10,
        description=(
            "Most rounds of lookups one action may make before Kimi must answer with what it has."
        ),
    )
    tool_tokens: int = Field(
        default=60_000,
        ge=1_000,
        description=(
            "Most tokens (input and output, every round together) one action with index tools "
            "may be charged; when the next round would exceed it, Kimi answers at once."
        ),
    )

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http(s) URL")
        return v.rstrip("/")

    @field_validator("quota_store")
    @classmethod
    def _check_quota_store(cls, v: str) -> str:
        if v != "sqlite" and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be 'sqlite' or a redis:// URL")
        return v

    @field_validator("cache")
    @classmethod
    def _check_cache(cls, v: str) -> str:
        low = v.strip().lower()
        if low in ("on", "off", "true", "false", "1", "0"):
            return "on" if low in ("on", "true", "1") else "off"
        if v.startswith(("redis://", "rediss://", "unix://")):
            return v
        raise ValueError("must be 'on', 'off' or a redis:// URL")

    @field_validator("thinking")
    @classmethod
    def _check_thinking(cls, v: str) -> str:
        parse_thinking(v)
        return v.strip().lower()

    @field_validator("limits")
    @classmethod
    def _check_limits(cls, v: str) -> str:
        parse_limits(v)
        return v

    @field_validator("tools", mode="before")
    @classmethod
    def _on_off_tools(cls, v: Any) -> Any:
        if isinstance(v, bool):
            return "on" if v else "off"
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Layering is done by load_settings(); the model itself only validates what it is given.
        return (init_settings,)

    @property
    def parsed_limits(self) -> dict[str, int | None]:
        return parse_limits(self.limits)

    @property
    def has_api_key(self) -> bool:
        return self.api_key is not None and bool(self.api_key.get_secret_value().strip())


# Keys users may spell in camelCase in editor settings, mapped to field names.
_FIELD_BY_KEY: dict[str, str] = {}
for _name in Settings.model_fields:
    _FIELD_BY_KEY[_name] = _name
    _FIELD_BY_KEY[re.sub(r"_(\w)", lambda m: m.group(1).upper(), _name)] = _name
_FIELD_BY_KEY.update({"apiKey": "api_key", "api_key": "api_key"})


@dataclass
class LoadedSettings:
    """The effective settings, where each value came from, and what was wrong."""

    settings: Settings
    sources: dict[str, str]
    problems: list[str] = field(default_factory=list)

    def report(self) -> dict[str, dict[str, str]]:
        """Each setting's value (the key only as set / not set) and where it came from."""
        out: dict[str, dict[str, str]] = {}
        for name, value in self.settings.model_dump().items():
            if name == "api_key":
                value = "(set)" if self.settings.has_api_key else "(not set)"
            out[name] = {"value": str(value), "source": self.sources.get(name, "default")}
        return out


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in Settings.model_fields:
        if name == "api_key":
            continue
        key = ENV_PREFIX + name.upper()
        if key in environ:
            out[name] = environ[key]
    for key in API_KEY_ENV:
        if environ.get(key):
            out["api_key"] = environ[key]
            break
    return out


def _editor_layer(options: Mapping[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """Normalise editor-supplied options: accept a nested ``kimi`` section and camelCase."""
    if not options:
        return {}, []
    if not isinstance(options, Mapping):
        return {}, [f"settings must be an object, got {type(options).__name__}"]
    if isinstance(options.get(CONFIG_SECTION), Mapping):
        options = {**options, **options[CONFIG_SECTION]}
    out: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in options.items():
        if key == CONFIG_SECTION:
            continue
        name = _FIELD_BY_KEY.get(key)
        if name is None:
            unknown.append(key)
        elif value is not None:
            out[name] = value
    problems = [f"unknown setting {k!r} ignored" for k in sorted(unknown)]
    return out, problems


def load_settings(
    environ: Mapping[str, str] | None = None,
    init_options: Mapping[str, Any] | None = None,
    workspace: Mapping[str, Any] | None = None,
) -> LoadedSettings:
    """Merge the layers; drop each invalid value with a problem naming the key and reason."""
    env = dict(os.environ if environ is None else environ)
    layers: list[tuple[str, dict[str, Any]]] = [("environment", _env_layer(env))]
    problems: list[str] = []
    for source, raw in (
        ("initializationOptions", init_options),
        ("workspace/configuration", workspace),
    ):
        values, found = _editor_layer(raw)
        layers.append((source, values))
        problems.extend(f"{source}: {p}" for p in found)

    while True:
        merged: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for source, values in layers:
            for name, value in values.items():
                merged[name] = value
                sources[name] = source
        try:
            settings = Settings(**merged)
        except ValidationError as exc:
            dropped = False
            for err in exc.errors():
                name = str(err["loc"][0]) if err["loc"] else ""
                if name not in sources:
                    continue
                source = sources[name]
                for layer_source, values in layers:
                    if layer_source == source and name in values:
                        bad = values.pop(name)
                        shown = "(hidden)" if name == "api_key" else repr(bad)
                        reason = err["msg"].removeprefix("Value error, ")
                        problems.append(
                            f"{source}: invalid value {shown} for '{name}': {reason}; "
                            "using the default instead"
                        )
                        dropped = True
            if not dropped:  # an error we cannot attribute: never loop forever
                raise
            continue
        for name in Settings.model_fields:
            sources.setdefault(name, "default")
        return LoadedSettings(settings=settings, sources=sources, problems=problems)


__all__ = [
    "API_KEY_ENV",
    "CONFIG_SECTION",
    "ENV_PREFIX",
    "LoadedSettings",
    "Settings",
    "default_state_dir",
    "load_settings",
    "parse_limits",
    "parse_thinking",
]

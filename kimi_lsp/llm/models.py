"""The model table: what each model accepts, which decides how requests are shaped.

Built-in rows come from kimi-api.md §2 (Aug 2026). ``GET /v1/models`` refreshes them (the
line-up rotates) and the result is cached as JSON in the state dir. A model the table does not
know gets safe defaults: sampling parameters omitted, no reasoning control sent, and the
context from ``/models`` (or a conservative 131,072).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

ReasoningControl = Literal["thinking", "reasoning_effort"]
SAFE_CONTEXT = 131_072
CACHE_FILE = "kimi-models.json"


@dataclass(frozen=True)
class ModelSpec:
    """One model's contract.

    ``fixed_sampling``: the model fixes temperature/top_p/n/penalties (k2.5 and newer), so
    they are never sent. ``reasoning_control``: ``thinking`` (k2.5-k2.7) or
    ``reasoning_effort`` (k3), never both. ``thinking_optional``: thinking may be disabled.
    """

    id: str
    context_length: int = SAFE_CONTEXT
    thinks: bool = False
    fixed_sampling: bool = True
    reasoning_control: ReasoningControl | None = None
    thinking_optional: bool = True
    known: bool = True  # False: safe defaults for a model we know nothing about


_K2_NEW = re.compile(r"^kimi-k2\.(\d+)")

# Thinking (kimi-api.md §2-3): reasoning counts against max_completion_tokens, so a thinking
# request asks for this many tokens of reasoning on top of its answer. K2.6 spends hundreds to
# a few thousand on a code question; K3 at reasoning_effort "low" a fraction of that.
REASONING_ALLOWANCE = 4096
LOW_EFFORT_SHARE = 0.5  # the allowance kept for K3 at reasoning_effort "low"


def can_disable_thinking(spec: ModelSpec) -> bool:
    """Whether ``thinking: {"type": "disabled"}`` is accepted (K2.5/K2.6, not K2.7)."""
    return spec.thinks and spec.reasoning_control == "thinking" and spec.thinking_optional


def has_reasoning_effort(spec: ModelSpec) -> bool:
    """Whether the model always thinks but takes ``reasoning_effort`` (K3)."""
    return spec.thinks and spec.reasoning_control == "reasoning_effort"


def infer_spec(model_id: str, listing: Mapping[str, Any] | None = None) -> ModelSpec:
    """A spec from the model's name and (optionally) its ``/models`` entry."""
    listing = listing or {}
    ctx = listing.get("context_length")
    context = int(ctx) if isinstance(ctx, int) and ctx > 0 else None
    reasons = listing.get("supports_reasoning")
    if model_id.startswith("kimi-k3"):
        return ModelSpec(model_id, context or 1_048_576, True, True, "reasoning_effort", False)
    m = _K2_NEW.match(model_id)
    if m and int(m.group(1)) >= 5:
        minor = int(m.group(1))
        return ModelSpec(model_id, context or 262_144, True, True, "thinking", minor < 7)
    if model_id.startswith("moonshot-v1-"):
        size = re.search(r"-(\d+)k", model_id)
        legacy_ctx = int(size.group(1)) * 1024 if size else 8_192
        return ModelSpec(model_id, context or legacy_ctx, False, False, None)
    if model_id.startswith("kimi-k2"):  # discontinued K2 previews: sampling settable
        return ModelSpec(model_id, context or 262_144, "thinking" in model_id, False, None)
    return ModelSpec(model_id, context or SAFE_CONTEXT, bool(reasons), True, None, known=False)


BUILTIN: tuple[str, ...] = (
    "kimi-k3",
    "kimi-k2.7-code",
    "kimi-k2.7-code-highspeed",
    "kimi-k2.6",
    "kimi-k2.5",
    "moonshot-v1-8k",
    "moonshot-v1-32k",
    "moonshot-v1-128k",
)


class ModelTable:
    """Specs by model id; refreshed from ``/models`` and cached in a JSON file."""

    def __init__(self, specs: Iterable[ModelSpec] = (), *, path: Path | None = None) -> None:
        self._specs: dict[str, ModelSpec] = {s.id: s for s in specs}
        self.path = path
        self.listed: list[str] = []  # the ids /models last returned (empty: never refreshed)

    @classmethod
    def builtin(cls, *, path: Path | None = None) -> ModelTable:
        return cls((infer_spec(m) for m in BUILTIN), path=path)

    @classmethod
    def load(cls, path: Path | None) -> ModelTable:
        """The built-in table, overlaid with the cached refresh at ``path`` if readable."""
        table = cls.builtin(path=path)
        if path is None or not path.exists():
            return table
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            for entry in raw.get("models", []):
                table._specs[entry["id"]] = ModelSpec(**entry)
            table.listed = [str(x) for x in raw.get("listed", [])]
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # A corrupt cache costs one refresh, never a failure.
            log.warning("ignoring unreadable model cache %s: %s", path, exc)
        return table

    def get(self, model_id: str) -> ModelSpec:
        return self._specs.get(model_id) or infer_spec(model_id)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._specs

    @property
    def ids(self) -> list[str]:
        return list(self._specs)

    def update_from_listing(self, data: Iterable[Mapping[str, Any]]) -> None:
        """Merge a ``/models`` answer: its context lengths win over the built-in ones."""
        listed = []
        for entry in data:
            mid = entry.get("id")
            if not isinstance(mid, str):
                continue
            listed.append(mid)
            spec = infer_spec(mid, entry)
            if not isinstance(entry.get("context_length"), int) and mid in self._specs:
                spec = replace(spec, context_length=self._specs[mid].context_length)
            self._specs[mid] = spec
        self.listed = listed

    def save(self) -> None:
        """Write the table atomically (a reader never sees half a file)."""
        if self.path is None:
            return
        payload = {"listed": self.listed, "models": [asdict(s) for s in self._specs.values()]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".models-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(payload, f, indent=1)
            os.replace(tmp, self.path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            raise

    def fits_context(self, model_id: str, input_tokens: int, max_completion_tokens: int) -> bool:
        return input_tokens + max_completion_tokens <= self.get(model_id).context_length


def shape_request(
    spec: ModelSpec,
    messages: list[dict[str, Any]],
    *,
    max_completion_tokens: int,
    thinking: bool | None = None,
    reasoning_effort: str | None = None,
    temperature: float | None = None,
    prompt_cache_key: str | None = None,
    stream: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body for ``/chat/completions``, following the model's contract.

    Raises ``ValueError`` for a combination the model rejects (the client turns it into an
    ``InvalidRequest`` before anything is sent).
    """
    body: dict[str, Any] = {
        "model": spec.id,
        "messages": messages,
        "max_completion_tokens": max_completion_tokens,  # always explicit (§3.1)
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if spec.reasoning_control == "thinking":
        if reasoning_effort is not None:
            raise ValueError(f"{spec.id} takes `thinking`, not `reasoning_effort`")
        if thinking is False and not spec.thinking_optional:
            raise ValueError(f"{spec.id} always thinks; thinking cannot be disabled")
        if thinking is not None:
            body["thinking"] = {"type": "enabled" if thinking else "disabled"}
    elif spec.reasoning_control == "reasoning_effort":
        if thinking is False:
            raise ValueError(f"{spec.id} always thinks; use reasoning_effort='low' instead")
        if reasoning_effort is not None:
            if reasoning_effort not in ("low", "high", "max"):
                raise ValueError("reasoning_effort must be 'low', 'high' or 'max'")
            body["reasoning_effort"] = reasoning_effort
    elif reasoning_effort is not None or thinking:
        raise ValueError(f"{spec.id} has no reasoning control")
    if temperature is not None and not spec.fixed_sampling:
        body["temperature"] = temperature
    if prompt_cache_key:
        body["prompt_cache_key"] = prompt_cache_key
    if extra:
        body.update(extra)
    return body

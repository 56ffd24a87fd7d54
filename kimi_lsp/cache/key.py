"""The cache key: a hash of everything that shapes the answer.

The model, every byte of every message, the requested ``max_completion_tokens`` and the
reasoning settings (``extra``) go into one canonical JSON document, hashed with SHA-256. Any
change in the code a prompt carries, or in the instruction, changes the key; the order of keys
inside a mapping does not (it does not change the request Kimi sees).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

# Bump when the key's recipe changes: old entries then simply miss.
KEY_VERSION = 1


def _canonical(value: Any) -> Any:
    """JSON-able form of ``value``; unknown types keep their type name so that two different
    objects with the same ``str`` never share a key."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return {"$set": sorted((_canonical(v) for v in value), key=repr)}
    if isinstance(value, Sequence):
        return [_canonical(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"$" + type(value).__qualname__: _canonical(dataclasses.asdict(value))}
    return {"$" + type(value).__qualname__: repr(value)}


def request_key(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    max_completion_tokens: int,
    extra: Mapping[str, Any],
) -> str:
    """The hex SHA-256 of the shaped request (see the module docstring)."""
    doc = {
        "v": KEY_VERSION,
        "model": model,
        "messages": [_canonical(m) for m in messages],
        "max_completion_tokens": max_completion_tokens,
        "extra": _canonical(extra),
    }
    # ensure_ascii=False keeps every character as itself; surrogatepass keeps even lone
    # surrogates distinct instead of failing.
    blob = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

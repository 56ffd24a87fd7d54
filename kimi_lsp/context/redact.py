"""Secrets never leave the machine: they are replaced before any text enters a prompt.

Two sources of patterns: detect-secrets' maintained detectors (every regex-based plugin it
ships: AWS, Azure, GitHub, GitLab, Slack, Stripe, Twilio, JWTs, basic auth in URLs, ...),
and ours for what it leaves to its slower line-by-line scanners — whole private-key blocks,
``sk-`` style API keys, tokens in URL query strings, values in ``.env`` files, and
high-entropy strings assigned to names like ``password``, ``secret`` or ``token``. Each
replacement names what it hid, and the count is reported to the user.

A placeholder is ``<redacted: what tag>``, the tag a keyed hash of the secret under a key
that never leaves the machine (``use_key_from``: a file in the state dir, readable by the
user alone; a process without one keeps its own): the same secret gets the same placeholder
in every prompt, after restarts too (so the prompt's bytes, and the response cache, stay
stable), different secrets get different ones, and ``restore`` puts the secrets back into an
answer that rewrote the code (a refactor must not write placeholders over the user's keys).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import math
import os
import re
import secrets
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# detect-secrets plugins left out: "Private Key" matches only the BEGIN line (ours hides the
# block), and "Public IP" is not a secret. The keyword and entropy plugins are line scanners
# (~0.3 ms a line); our assignment rule covers them.
_SKIPPED_DETECTORS = {"Private Key", "Public IP (ipv4)"}


def _maintained_patterns() -> list[tuple[re.Pattern[str], str]]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    found: list[tuple[re.Pattern[str], str]] = []
    mapping: dict[str, type[Any]] = dict(get_mapping_from_secret_type_to_class())
    for secret_type, cls in sorted(mapping.items()):
        if secret_type in _SKIPPED_DETECTORS or not issubclass(cls, RegexBasedDetector):
            continue
        detector: RegexBasedDetector = cls()  # concrete plugin classes
        found.extend((p, secret_type) for p in detector.denylist)
    return found


_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----"
        ),
        "private key",
    ),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "AWS access key"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), "GitHub token"),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{30,}\b"), "GitHub token"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"), "Slack token"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), "Google API key"),
    (re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b"), "API key"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b"), "JWT"),
]
# user:password@ in URLs, and ?token=... style query parameters.
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/\s:@'\"]+:[^/\s@'\"]+(?=@)")
_URL_TOKEN = re.compile(
    r"(?i)([?&](?:token|access_token|api_key|apikey|key|secret|sig)=)[^&\s'\"]+"
)
_ASSIGNMENT = re.compile(
    r"(?i)\b([A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|"
    r"access[_-]?key|private[_-]?key|credential)s?[A-Za-z0-9_]*)(\s*[:=]\s*|\s*=>\s*)"
    # a quoted literal, or a bare config value (no call, no expression)
    r"(?:(['\"])([^'\"\s]{8,})\3|()([A-Za-z0-9_\-./+=]{16,})(?=\s|$))"
)
ENTROPY_MIN = 3.0  # bits per character: real secrets are random; 'changeme' is not
# A bare value made of SCREAMING_SNAKE words is a constant's name in code, not a secret (a
# random key mixes cases; a snake_case one may be a passphrase in a config file: hidden).
_CODE_NAME = re.compile(r"_*[A-Z][A-Z0-9]*(?:_+[A-Z0-9]+)+_*")


def entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


_MAINTAINED = _maintained_patterns()


def _hide_maintained(text: str, pattern: re.Pattern[str], hide: Callable[[str], str]) -> str:
    """The secret part of each match: the longest group when it is a real value (the
    basic-auth password), else the whole match (a GitHub token's group is just ``ghp``)."""

    def one(m: re.Match[str]) -> str:
        groups = [i for i in range(1, (m.lastindex or 0) + 1) if m.group(i)]
        best = max(groups, key=lambda i: len(m.group(i)), default=0)
        if best and len(m.group(best)) >= 8:
            start, end = m.start(best) - m.start(), m.end(best) - m.start()
            whole = m.group(0)
            return whole[:start] + hide(m.group(best)) + whole[end:]
        return hide(m.group(0))

    return pattern.sub(one, text)


_KEY = secrets.token_bytes(32)  # tags placeholders; never leaves the machine
KEY_FILE = "redaction.key"
_KEY_BYTES = 32


def use_key_from(state_dir: Path) -> None:
    """Tag placeholders with the key kept in ``state_dir`` (made on first use, mode 0600),
    so a prompt with a secret is the same bytes after a restart and its cached answer still
    serves. Processes starting together agree on one key; an unreadable state dir leaves
    this process its own (answers for prompts with secrets then miss after a restart)."""
    global _KEY
    path = state_dir / KEY_FILE
    try:
        key = path.read_bytes() if path.exists() else b""
        if len(key) != _KEY_BYTES:  # none yet, or cut short: a new one, whole or not at all
            state_dir.mkdir(parents=True, exist_ok=True)
            tmp = state_dir / f".{KEY_FILE}.{os.getpid()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(_KEY_BYTES))
            try:
                if key:
                    os.replace(tmp, path)
                else:
                    os.link(tmp, path)  # fails if another process made it meanwhile
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
            key = path.read_bytes()
    except OSError as exc:
        log.warning("redaction key in %s unusable (%s); this process keeps its own", path, exc)
        return
    if len(key) == _KEY_BYTES and key != _KEY:
        _KEY = key
        _redact.cache_clear()
        _redact_fragment.cache_clear()


def _placeholder(what: str, secret: str) -> str:
    tag = hmac.new(_KEY, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return f"<redacted: {what} {tag[:6]}>"


def redact(text: str, path: Path | None = None) -> tuple[str, int]:
    """``text`` with secrets replaced by ``<redacted: what tag>``, and how many were replaced."""
    out, count, _ = _redact(text, _is_env(path))
    return out, count


def redact_fragment(text: str) -> tuple[str, int]:
    """`redact` for a short piece of code that recurs across requests (a line of the ranked
    skeleton), cached apart from whole texts so that they do not push it out."""
    return _redact_fragment(text)


@functools.lru_cache(maxsize=1 << 15)
def _redact_fragment(text: str) -> tuple[str, int]:
    out, count, _ = _redact.__wrapped__(text, False)
    return out, count


def restore(answer: str, original: str, path: Path | None = None) -> str:
    """``answer`` (the model's rewrite of ``original``) with the placeholders that redacting
    ``original`` made turned back into the secrets they hid."""
    _, _, hidden = _redact(original, _is_env(path))
    for placeholder, secret in hidden:
        answer = answer.replace(placeholder, secret)
    return answer


def _is_env(path: Path | None) -> bool:
    return path is not None and (path.name == ".env" or path.name.startswith(".env."))


@functools.lru_cache(maxsize=4096)  # the same files' text recurs in every request
def _redact(text: str, is_env: bool) -> tuple[str, int, tuple[tuple[str, str], ...]]:
    count = 0
    hidden: dict[str, str] = {}

    def hide(what: str, secret: str) -> str:
        nonlocal count
        count += 1
        placeholder = _placeholder(what, secret)
        hidden[placeholder] = secret
        return placeholder

    if is_env:
        lines = []
        for line in text.splitlines(keepends=True):
            key, eq, value = line.partition("=")
            if eq and value.strip() and not key.lstrip().startswith("#"):
                line = f"{key}={hide('.env value', value.rstrip(chr(10)))}\n"
            lines.append(line)
        text = "".join(lines)
    for pattern, what in _PATTERNS:
        text = pattern.sub(lambda m, w=what: hide(w, m.group(0)), text)  # type: ignore[misc]
    for pattern, what in _MAINTAINED:
        text = _hide_maintained(text, pattern, functools.partial(hide, what))
    text = _URL_CREDENTIALS.sub(lambda m: hide("credentials in URL", m.group(0)), text)
    text = _URL_TOKEN.sub(
        lambda m: m.group(1) + hide("token in URL", m.group(0)[len(m.group(1)) :]), text
    )

    def assignment(m: re.Match[str]) -> str:
        quote = m.group(3) or ""
        value = m.group(4) if m.group(4) is not None else m.group(6)
        if value.startswith("<redacted") or entropy(value) < ENTROPY_MIN:
            return m.group(0)
        if not quote and _CODE_NAME.fullmatch(value):
            return m.group(0)  # `_ACCEPTED_TOKENS = _UNPREFIXED_TOKENS | ...`: a name
        return f"{m.group(1)}{m.group(2)}{quote}{hide(m.group(1), value)}{quote}"

    text = _ASSIGNMENT.sub(assignment, text)
    return text, count, tuple(hidden.items())

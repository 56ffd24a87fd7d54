"""Token estimates: fast and local, calibrated from what the API reports, exact near a limit.

Kimi's tokenizer is not available offline, so a prompt is estimated from its characters:
``tokens ≈ a·ascii + b·other + c·messages`` with per-language weights. The defaults (4 ASCII
characters a token, one token per other character, 4 per message) are Moonshot's own rule of
thumb; every response's ``prompt_tokens`` is an observation that refits the weights (a small
ridge regression pulled towards the defaults, so a few odd observations cannot run away),
and the fitted weights persist in a JSON file in the state directory.

When an estimate lands within 10% of a limit the estimate is not good enough to decide: the
caller's exact counter (e.g. the API's ``/tokenizers/estimate-token-count``) settles it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CALIBRATION_FILE = "token-calibration.json"
DEFAULT_WEIGHTS = (0.25, 1.0, 4.0)  # per ASCII char, per other char, per message
PRIOR_SIZE = (200, 50, 1)  # the defaults weigh like one observation of this many chars/messages
DECAY = 0.98  # per observation: the tokenizer of the model in use matters, not last month's
EXACT_WITHIN = 0.10  # ask the exact counter when an estimate is this close to a limit
ALL = "*"  # the weights fitted on every observation, for languages seen too rarely
MIN_OBSERVATIONS = 3

Messages = Iterable[Mapping[str, Any]]
ExactCounter = Callable[[list[dict[str, Any]]], Awaitable[int]]


def features(text: str, messages: int = 0) -> tuple[int, int, int]:
    """(ASCII characters, other characters, messages): what the estimate is linear in."""
    ascii_chars = len(text) if text.isascii() else len(text.encode("ascii", "ignore"))
    return ascii_chars, len(text) - ascii_chars, messages


def message_text(messages: Messages) -> tuple[str, int]:
    parts: list[str] = []
    n = 0
    for m in messages:
        n += 1
        content = m.get("content")
        if isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        elif content is not None:
            parts.append(str(content))
    return "".join(parts), n


class _Fit:
    """Sufficient statistics of a decayed ridge regression (3 features, no intercept)."""

    def __init__(
        self, xtx: list[list[float]] | None = None, xty: list[float] | None = None, n: int = 0
    ) -> None:
        self.xtx = np.array(xtx if xtx is not None else np.zeros((3, 3)), dtype=float)
        self.xty = np.array(xty if xty is not None else np.zeros(3), dtype=float)
        self.n = n

    def add(self, x: tuple[int, int, int], y: float) -> None:
        v = np.array(x, dtype=float)
        self.xtx = DECAY * self.xtx + np.outer(v, v)
        self.xty = DECAY * self.xty + v * y
        self.n += 1

    def weights(self) -> tuple[float, float, float]:
        prior = np.array(DEFAULT_WEIGHTS)
        # Ridge towards the defaults: as strong as one observation of PRIOR_SIZE per feature.
        reg = np.diag(np.array(PRIOR_SIZE, dtype=float) ** 2)
        w = np.linalg.solve(self.xtx + reg, self.xty + reg @ prior)
        w = np.clip(w, [0.05, 0.05, 0.0], [2.0, 4.0, 64.0])
        return float(w[0]), float(w[1]), float(w[2])

    def to_json(self) -> dict[str, Any]:
        return {"xtx": self.xtx.tolist(), "xty": self.xty.tolist(), "n": self.n}


class TokenEstimator:
    """Estimates tokens per language; learns from reported usage; persists what it learned.

    Call it like a function (``estimator(text)``) where a ``Callable[[str], int]`` is wanted.
    ``path`` is the calibration file (None: in memory only). Thread-safe.
    """

    def __init__(self, path: Path | None = None, *, exact: ExactCounter | None = None) -> None:
        self.path = path
        self.exact = exact
        self._lock = threading.Lock()
        self._fits: dict[str, _Fit] = {}
        self._weights: dict[str, tuple[float, float, float]] = {}
        if path is not None:
            self._load(path)

    @classmethod
    def in_state_dir(cls, state_dir: Path, *, exact: ExactCounter | None = None) -> TokenEstimator:
        return cls(state_dir / CALIBRATION_FILE, exact=exact)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for lang, fit in data.get("fits", {}).items():
                self._fits[lang] = _Fit(fit["xtx"], fit["xty"], int(fit["n"]))
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # A corrupt calibration only costs accuracy: start again from the defaults.
            log.warning("token calibration %s unreadable (%s); starting afresh", path, exc)
            self._fits.clear()

    def weights(self, language: str | None = None) -> tuple[float, float, float]:
        key = language or ALL
        with self._lock:
            if key not in self._weights:
                fit = self._fits.get(key)
                if fit is None or fit.n < MIN_OBSERVATIONS:
                    fit = self._fits.get(ALL)
                self._weights[key] = (
                    fit.weights() if fit and fit.n >= MIN_OBSERVATIONS else DEFAULT_WEIGHTS
                )
            return self._weights[key]

    def estimate(self, text: str, language: str | None = None, *, messages: int = 0) -> int:
        a, b, c = self.weights(language)
        x = features(text, messages)
        return int(a * x[0] + b * x[1] + c * x[2] + 0.999)

    def __call__(self, text: str) -> int:
        return self.estimate(text)

    def estimate_messages(self, messages: Messages, language: str | None = None) -> int:
        text, n = message_text(messages)
        return self.estimate(text, language, messages=n)

    def observe(self, messages: Messages, prompt_tokens: int, language: str | None = None) -> None:
        """One response's reported ``prompt_tokens`` for the messages that were sent."""
        if prompt_tokens <= 0:
            return
        text, n = message_text(messages)
        x = features(text, n)
        with self._lock:
            for key in {ALL, language or ALL}:
                self._fits.setdefault(key, _Fit()).add(x, float(prompt_tokens))
            self._weights.clear()

    def observe_text(self, text: str, prompt_tokens: int, language: str | None = None) -> None:
        self.observe([{"role": "user", "content": text}], prompt_tokens, language)

    def save(self) -> None:
        """Write the calibration atomically (a crash leaves the old file, never half a file)."""
        if self.path is None:
            return
        with self._lock:
            data = {"version": 1, "fits": {k: f.to_json() for k, f in self._fits.items()}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".calibration-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def near_limit(estimate: int, limit: int) -> bool:
        """True when ``estimate`` is within 10% of ``limit`` (either side): too close to call."""
        return abs(limit - estimate) <= EXACT_WITHIN * limit

    async def count(
        self, messages: list[dict[str, Any]], limit: int, language: str | None = None
    ) -> tuple[int, bool]:
        """(tokens, exact): the estimate, or the exact counter's answer when the estimate is
        within 10% of ``limit`` and a counter was given (its answer also calibrates)."""
        estimate = self.estimate_messages(messages, language)
        if self.exact is None or not self.near_limit(estimate, limit):
            return estimate, False
        exact = await self.exact(messages)
        self.observe(messages, exact, language)
        return exact, True

"""A faithful Kimi API emulator on 127.0.0.1 for tests and benchmarks (see README.md)."""

from tests.fake_kimi.models import FakeModel, default_models
from tests.fake_kimi.server import (
    DEFAULT_ACCOUNT,
    DEFAULT_KEY,
    FAULT_KINDS,
    TIERS,
    FakeKimi,
    Fault,
    ManualClock,
    Reply,
    RequestRecord,
)
from tests.fake_kimi.tokens import (
    CACHE_MIN_PROMPT_TOKENS,
    CHARS_PER_TOKEN,
    count_prompt_tokens,
    count_tokens,
    prompt_text,
)

__all__ = [
    "CACHE_MIN_PROMPT_TOKENS",
    "CHARS_PER_TOKEN",
    "DEFAULT_ACCOUNT",
    "DEFAULT_KEY",
    "FAULT_KINDS",
    "TIERS",
    "FakeKimi",
    "FakeModel",
    "Fault",
    "ManualClock",
    "Reply",
    "RequestRecord",
    "count_prompt_tokens",
    "count_tokens",
    "default_models",
    "prompt_text",
]

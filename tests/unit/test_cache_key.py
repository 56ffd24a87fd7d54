"""The cache key changes with every byte that shapes the answer, and only with those."""

from __future__ import annotations

import pytest

from kimi_lsp.cache import request_key

MESSAGES = [
    {"role": "system", "content": "You explain code."},
    {"role": "user", "content": "def foo(x):\n    return x + 1\n\nExplain foo."},
]
EXTRA = {"thinking": None, "continue_rounds": 3}


def key(**over: object) -> str:
    args: dict[str, object] = {
        "model": "kimi-k2.6",
        "messages": MESSAGES,
        "max_completion_tokens": 1500,
        "extra": EXTRA,
    }
    args.update(over)
    return request_key(**args)  # type: ignore[arg-type]


def test_same_request_same_key() -> None:
    assert key() == key(messages=[dict(m) for m in MESSAGES], extra=dict(EXTRA))


def test_mapping_order_does_not_matter() -> None:
    reordered = [{"content": m["content"], "role": m["role"]} for m in MESSAGES]
    assert key() == key(messages=reordered, extra={"continue_rounds": 3, "thinking": None})


@pytest.mark.parametrize(
    "change",
    [
        {"model": "kimi-k2.5"},
        {"max_completion_tokens": 1501},
        {"extra": {"thinking": True, "continue_rounds": 3}},
        {"extra": {"thinking": None, "continue_rounds": 2}},
        {"extra": {"thinking": None}},
        {"messages": MESSAGES[:1]},
        {"messages": [MESSAGES[0], {**MESSAGES[1], "content": MESSAGES[1]["content"] + " "}]},
        {"messages": [MESSAGES[0], {**MESSAGES[1], "content": "def foo(x):\n\treturn x + 1\n"}]},
        {"messages": [MESSAGES[0], {**MESSAGES[1], "role": "assistant"}]},
        {"messages": [MESSAGES[0], {**MESSAGES[1], "partial": True}]},
        {"messages": [*MESSAGES, {"role": "user", "content": ""}]},
    ],
)
def test_any_change_in_the_shaped_request_misses(change: dict[str, object]) -> None:
    assert key(**change) != key()


def test_every_code_byte_counts() -> None:
    code = MESSAGES[1]["content"]
    seen = {key()}
    for i in range(len(code)):
        flipped = code[:i] + chr(ord(code[i]) ^ 1) + code[i + 1 :]
        seen.add(key(messages=[MESSAGES[0], {"role": "user", "content": flipped}]))
    assert len(seen) == len(code) + 1


def test_values_that_print_alike_stay_apart() -> None:
    assert key(extra={"thinking": 1}) != key(extra={"thinking": "1"})
    assert key(extra={"thinking": True}) != key(extra={"thinking": 1})
    assert key(extra={"t": b"ab"}) != key(extra={"t": "ab"})

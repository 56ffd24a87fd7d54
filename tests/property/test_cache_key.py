"""Properties of the cache key and of replaying a hit."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from kimi_lsp.cache import replay, request_key

message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(max_size=40)}
)
request = st.tuples(
    st.sampled_from(["kimi-k2.6", "kimi-k2.5"]),
    st.lists(message, max_size=4),
    st.integers(1, 5),
    st.fixed_dictionaries({"thinking": st.sampled_from([None, True, False])}),
)


@given(request, request)
def test_keys_equal_exactly_when_requests_equal(a: tuple, b: tuple) -> None:  # type: ignore[type-arg]
    assert (request_key(*a) == request_key(*b)) == (a == b)


@given(st.text(max_size=400), st.integers(1, 80))
def test_replay_yields_the_text_in_small_pieces(text: str, size: int) -> None:
    async def collect() -> list[str]:
        return [piece async for piece in replay(text, chunk_chars=size)]

    pieces = asyncio.run(collect())
    assert "".join(pieces) == text
    assert all(0 < len(p) <= size for p in pieces)

"""The Kimi API client: model table and request shaping, SSE streaming, errors, retries and
continuation after truncation. A leaf: it imports nothing else from kimi_lsp but the version.

Public surface::

    async with KimiClient(base_url, api_key, model_table_path=state_dir / "kimi-models.json",
                          timeout=60.0, max_retries=4, prompt_cache_key=workspace_id) as client:
        async with client.stream_chat(messages, model="kimi-k2.6", max_completion_tokens=2048,
                                      thinking=None, reasoning_effort=None,
                                      continue_rounds=3, on_request=hook) as stream:
            async for event in stream:      # ContentDelta | ReasoningDelta | UsageReport | Finished
                ...
        stream.text, stream.delivered, stream.usage, stream.request_ids
        result = await client.chat(messages, model=..., max_completion_tokens=...)  # ChatResult
        specs = await client.list_models()          # refreshes and caches the ModelTable
        money = await client.balance()              # Balance(available, voucher, cash, currency)
        n = client.estimate_tokens(messages)        # local, conservative
        n = await client.count_tokens(messages, model)   # exact, from the API
        n = await client.check_context(messages, model, max_completion_tokens)  # or ContextOverflow

- ``on_request(RequestStart)`` is awaited before every HTTP request (first try, retries and
  continuation rounds): the place for quota admission. Each request's usage arrives as its
  own ``UsageReport`` (settle there). ``on_retry(error, delay)`` is awaited before each
  retry's wait (record a shared cool-down there; raise to stop retrying).
- Errors (``kimi_lsp.llm.errors``) carry ``retryable``, ``request_id``, ``delivered_text``;
  ``RateLimited.retry_after`` and ``.limit`` feed a shared cool-down; ``QuotaExceeded`` is
  never retried. A retry never re-asks for text already delivered: it continues in partial
  mode.
- Cancelling the consuming task (or leaving ``async with stream``) closes the HTTP stream.
"""

from kimi_lsp.llm.client import ChatStream, KimiClient
from kimi_lsp.llm.errors import (
    AuthenticationError,
    ConnectionFailed,
    ContentFiltered,
    ContextOverflow,
    EngineOverloaded,
    InvalidRequest,
    KimiError,
    ModelNotFound,
    PermissionDenied,
    ProtocolError,
    QuotaExceeded,
    RateLimited,
    ServerError,
    StatedLimit,
    StreamTimeout,
)
from kimi_lsp.llm.events import (
    Balance,
    ChatResult,
    ContentDelta,
    Finished,
    ReasoningDelta,
    RequestStart,
    StreamEvent,
    ToolCall,
    ToolCalls,
    Usage,
    UsageReport,
)
from kimi_lsp.llm.models import CACHE_FILE, ModelSpec, ModelTable, infer_spec, shape_request
from kimi_lsp.llm.prices import PRICES, Price, cost_usd, total_cost_usd
from kimi_lsp.llm.tokens import estimate_messages_tokens, estimate_text_tokens

__all__ = [
    "CACHE_FILE",
    "PRICES",
    "AuthenticationError",
    "Balance",
    "ChatResult",
    "ChatStream",
    "ConnectionFailed",
    "ContentDelta",
    "ContentFiltered",
    "ContextOverflow",
    "EngineOverloaded",
    "Finished",
    "InvalidRequest",
    "KimiClient",
    "KimiError",
    "ModelNotFound",
    "ModelSpec",
    "ModelTable",
    "PermissionDenied",
    "Price",
    "ProtocolError",
    "QuotaExceeded",
    "RateLimited",
    "ReasoningDelta",
    "RequestStart",
    "ServerError",
    "StatedLimit",
    "StreamEvent",
    "StreamTimeout",
    "ToolCall",
    "ToolCalls",
    "Usage",
    "UsageReport",
    "cost_usd",
    "estimate_messages_tokens",
    "estimate_text_tokens",
    "infer_spec",
    "shape_request",
    "total_cost_usd",
]

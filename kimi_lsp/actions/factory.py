"""Where ``Services`` are made: one place, from the settings and the workspace roots.

The server and every CLI command open their services here, so an answer from the command
line goes through the same context engine, response cache, quota governor, redaction and
ignore rules as one from the editor. The pieces (``open_store``, ``open_governor``,
``open_index``) are public for the server, which keeps the index it updates as files change
and reopens the store or the governor when their settings change.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kimi_lsp.actions.services import Answerer, EditorView, Services
from kimi_lsp.actions.stores import CacheStore
from kimi_lsp.cache import DisabledCache, ResponseCache, open_cache
from kimi_lsp.config import Settings
from kimi_lsp.index import WorkspaceIndex
from kimi_lsp.quota import QuotaGovernor, limits_for

log = logging.getLogger(__name__)


def quota_key(settings: Settings) -> tuple[object, ...]:
    """The settings the governor is built from: a change of any of them opens a new one."""
    s = settings
    tier_set = "tier" in s.model_fields_set
    return (s.tier, tier_set, s.limits, str(s.state_dir), s.quota_store, s.quota_reserve)


def open_governor(settings: Settings) -> QuotaGovernor:
    """The quota governor every process of this user (or, with Redis, the team) shares."""
    return QuotaGovernor.from_setting(
        settings.quota_store,
        settings.state_dir,
        limits_for(
            settings.tier,
            settings.parsed_limits,
            assumed="tier" not in settings.model_fields_set,  # the default: maybe not the account's
        ),
        reserve=settings.quota_reserve,
    )


def open_store(settings: Settings) -> CacheStore:
    """The response cache the setting names; a cache that cannot open is reported, not fatal."""
    try:
        cache: ResponseCache = open_cache(settings.cache, settings.state_dir)
    except Exception as exc:
        log.warning("the response cache is off: %s", exc)
        cache = DisabledCache(problem=str(exc))
    return CacheStore(cache)


def open_index(settings: Settings, roots: list[Path]) -> WorkspaceIndex:
    """The persisted index of ``roots``, brought up to date (reads changed files only)."""
    index = WorkspaceIndex(
        roots, state_dir=settings.state_dir, max_file_bytes=settings.max_file_bytes
    )
    index.update()
    return index


def open_services(
    settings: Settings,
    roots: list[Path],
    *,
    with_index: bool = True,
    editor_view: EditorView | None = None,
) -> Services:
    """Everything an action needs: the index of ``roots`` (opened and updated here
    ``with_index``), the response cache, the quota governor and, on first use, the client.
    ``editor_view`` is what the editor shows (nothing, for the command line). Close with
    ``await services.aclose()``."""
    owns_index = with_index and bool(roots)
    return Services(
        settings,
        list(roots),
        open_index(settings, roots) if owns_index else None,
        editor_view or EditorView(),
        open_answerer(settings, roots),
        owns_index,
    )


def open_answerer(settings: Settings, roots: list[Path]) -> Answerer:
    """The long-lived part: cache store and quota governor now, the client on first use."""
    return Answerer(settings, roots, store=open_store(settings), admission=open_governor(settings))

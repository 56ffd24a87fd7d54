"""What every action needs, built once from the settings and rebuilt when they change."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from kimi_lsp.actions.errors import MissingApiKey
from kimi_lsp.actions.pipeline import Admission, Answer, AnswerStore, Sink, answer
from kimi_lsp.actions.thinking import ThinkingPlan, plan_thinking
from kimi_lsp.actions.toolloop import Exchange, answer_with_tools
from kimi_lsp.actions.tools import IndexTools
from kimi_lsp.config import Settings
from kimi_lsp.context import RepoMap, TokenEstimator, use_key_from
from kimi_lsp.index import Span, WorkspaceIndex
from kimi_lsp.llm import CACHE_FILE, KimiClient
from kimi_lsp.llm.models import ModelTable
from kimi_lsp.llm.tokens import estimate_text_tokens

log = logging.getLogger(__name__)


def workspace_id(roots: list[Path]) -> str:
    """A stable id per workspace: Kimi's prefix cache key, so repeated prompts hit."""
    joined = "\n".join(sorted(str(r) for r in roots))
    return "kimi-lsp-" + hashlib.sha256(joined.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class EditorView:
    """A snapshot of what the editor shows besides the target, for ranking: the open
    documents, and the diagnostics the client sent with the request for each (standard LSP
    gives a server no other view of another server's diagnostics). Taken per request."""

    open_documents: tuple[Path, ...] = ()
    diagnostics: Mapping[Path, Sequence[Span]] = field(default_factory=dict)

    @classmethod
    def for_request(
        cls,
        open_documents: Sequence[Path],
        path: Path | None = None,
        diagnostics: Sequence[Mapping[str, Any]] = (),
    ) -> EditorView:
        """The snapshot for one request: the open documents now, and the diagnostics the
        request carries for its file (a code action passes them on to its command)."""
        shown = {path: spans_of(diagnostics)} if path is not None and diagnostics else {}
        return cls(tuple(open_documents), shown)

    def diagnostics_in(self, path: Path, span: Span) -> list[tuple[Path, Span]]:
        return [
            (path, d)
            for d in self.diagnostics.get(path, [])
            if d.start_line <= span.end_line and d.end_line >= span.start_line
        ]


class QuotaSource(Admission, Protocol):
    """The quota governor as status readers see it: no downcast needed."""

    @property
    def fallback(self) -> str:
        """Why a local ledger stands in for the configured one ("" when it does not)."""
        ...

    def snapshot(self) -> dict[str, Any]: ...


class CountingStore(AnswerStore, Protocol):
    """The response cache as status readers see it."""

    def stats(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


def spans_of(ranges: Sequence[Mapping[str, Any]]) -> tuple[Span, ...]:
    """LSP ranges (``{"start": {"line", "character"}, "end": ...}``) as spans; malformed
    ones are dropped (they only rank context)."""
    out = []
    for r in ranges:
        try:
            start, end = r["start"], r["end"]
            out.append(Span(start["line"], start["character"], end["line"], end["character"]))
        except (KeyError, TypeError):
            continue
    return tuple(out)


class Answerer:
    """What outlives a request: the client (one connection pool), the response cache, the
    quota governor, the token calibration and the model table. The server keeps one and
    swaps its parts when their settings change; a CLI command opens one."""

    def __init__(
        self,
        settings: Settings,
        roots: Sequence[Path] = (),
        *,
        store: CountingStore | None = None,
        admission: QuotaSource | None = None,
    ) -> None:
        self.settings = settings
        self.roots = list(roots)
        self.store = store
        self.admission = admission
        self._client: KimiClient | None = None
        self._repo_map: RepoMap | None = None
        self._estimator: TokenEstimator | None = None
        self._calibration: TokenEstimator | None = None
        self._models: ModelTable | None = None
        self._tools_refused = False  # this model/endpoint refused tools: do not ask again
        # Placeholders for secrets stay the same bytes across restarts (cache hits).
        use_key_from(settings.state_dir)

    def repo_map(self, index: WorkspaceIndex, roots: list[Path]) -> RepoMap:
        """The repository map for ``index`` (it caches its own rendering)."""
        if self._repo_map is None or self._repo_map.index is not index:
            self._repo_map = RepoMap(index, roots, estimate_text_tokens)
        return self._repo_map

    def estimator(self) -> TokenEstimator:
        """Token estimates for building prompts: the calibration as it was when this server
        started, so the same request builds the same bytes (and hits the response cache)
        all session long. What answers teach goes to ``observe`` for the next start."""
        if self._estimator is None:
            self._estimator = TokenEstimator.in_state_dir(self.settings.state_dir)
        return self._estimator

    def observe(
        self, messages: Sequence[Mapping[str, Any]], prompt_tokens: int, language: str | None
    ) -> None:
        """One answer's reported ``prompt_tokens`` for exactly these messages: refits the
        persisted per-language calibration (never fatal: it only costs accuracy)."""
        if self._calibration is None:
            self._calibration = TokenEstimator.in_state_dir(self.settings.state_dir)
        self._calibration.observe(messages, prompt_tokens, language)
        try:
            self._calibration.save()
        except OSError as exc:
            log.warning("cannot save the token calibration: %s", exc)

    def model_context(self) -> int:
        """The configured model's context length (from the client's table when there is a
        client, else the built-in table with the cached ``/models`` refresh)."""
        if self._client is not None:
            return self._client.models.get(self.settings.model).context_length
        if self._models is None:
            self._models = ModelTable.load(self.settings.state_dir / CACHE_FILE)
        return self._models.get(self.settings.model).context_length

    def thinking_plan(self, action: str, answer_tokens: int) -> ThinkingPlan:
        """The thinking policy's plan for ``action`` with the configured model."""
        s = self.settings
        if self._client is not None:
            spec = self._client.models.get(s.model)
        else:
            if self._models is None:
                self._models = ModelTable.load(s.state_dir / CACHE_FILE)
            spec = self._models.get(s.model)
        return plan_thinking(action, spec, s.thinking, s.thinking_allowance, answer_tokens)

    def client(self) -> KimiClient:
        """The shared client (one connection pool); raises MissingApiKey with what to do."""
        if self._client is None:
            s = self.settings
            if not s.has_api_key or s.api_key is None:
                raise MissingApiKey()
            self._client = KimiClient(
                s.base_url,
                s.api_key.get_secret_value(),
                model_table_path=s.state_dir / CACHE_FILE,
                timeout=s.request_timeout_s,
                prompt_cache_key=workspace_id(self.roots),
            )
        return self._client

    def reconfigure(self, settings: Settings) -> KimiClient | None:
        """New settings: the next request builds a new client. Returns the old client, which
        the caller closes once the runs using it are done."""
        old, self.settings = self._client, settings
        self._client = None
        self._tools_refused = False  # another model or endpoint may take them
        return old

    async def answer(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        max_completion_tokens: int,
        sink: Sink,
        regenerate: bool = False,
        batch: bool = False,
        language: str | None = None,
        tools: IndexTools | None = None,
        action: str | None = None,
        exchange: Exchange | None = None,
    ) -> Answer:
        """One answer with this workspace's client, model, cache and quota; a live answer
        of one request calibrates the token estimates for ``language``. With ``action`` the
        thinking policy decides whether to think, and ``max_completion_tokens`` (the answer's
        size) gets the reasoning allowance on top. With ``tools`` Kimi may call the index
        tools in rounds (``actions/toolloop.py``)."""
        plan = None if action is None else self.thinking_plan(action, max_completion_tokens)
        common: dict[str, Any] = {
            "model": self.settings.model,
            "max_completion_tokens": max_completion_tokens,
            "sink": sink,
            "store": self.store,
            "admission": self.admission,
            "regenerate": regenerate,
            "batch": batch,
            "plan": plan,
        }
        if tools is not None and not self._tools_refused:
            s = self.settings
            result = await answer_with_tools(
                self.client(), messages, tools, **common,
                rounds=s.tool_rounds, token_allowance=s.tool_tokens, exchange=exchange,
            )  # fmt: skip
            if result.tools_refused:
                log.info("%s refused index tools; later answers use the packed context", s.model)
                self._tools_refused = True
        else:
            result = await answer(self.client(), messages, **common)
        if result.first_prompt_tokens and not result.cached:
            await asyncio.to_thread(self.observe, messages, result.first_prompt_tokens, language)
        return result

    def status(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The quota governor's snapshot and the cache's counts (None where there is none)."""
        quota = self.admission.snapshot() if self.admission is not None else None
        return quota, self.store.stats() if self.store is not None else None

    async def aclose(self) -> None:
        """Close the client and the store."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        closing = getattr(self.store, "aclose", None)
        if closing is not None:
            await closing()


@dataclass(frozen=True)
class Services:
    """One request's inputs (settings, roots, index, the editor view's snapshot) and the
    long-lived ``Answerer`` that answers it. Built by ``factory.open_services`` (CLI) or
    per request by the server; ``with_view`` gives a request its own editor snapshot."""

    settings: Settings
    roots: list[Path] = field(default_factory=list)
    index: WorkspaceIndex | None = None
    editor: EditorView = field(default_factory=EditorView)
    answerer: Answerer | None = None  # None: a fresh one for these settings and roots
    owns_index: bool = False  # opened by ``factory.open_services``: closed with the services

    def __post_init__(self) -> None:
        if self.answerer is None:
            object.__setattr__(self, "answerer", Answerer(self.settings, self.roots))

    @property
    def answers(self) -> Answerer:
        assert self.answerer is not None  # set in __post_init__
        return self.answerer

    @property
    def store(self) -> CountingStore | None:
        return self.answers.store

    @property
    def admission(self) -> QuotaSource | None:
        return self.answers.admission

    def with_view(self, editor: EditorView) -> Services:
        """The same request inputs and answerer with another editor snapshot."""
        return replace(self, editor=editor, owns_index=False)

    def repo_map(self) -> RepoMap:
        """The repository map for the current index (it caches its own rendering)."""
        assert self.index is not None
        return self.answers.repo_map(self.index, self.roots)

    def estimator(self) -> TokenEstimator:
        return self.answers.estimator()

    def observe(
        self, messages: Sequence[Mapping[str, Any]], prompt_tokens: int, language: str | None
    ) -> None:
        self.answers.observe(messages, prompt_tokens, language)

    def model_context(self) -> int:
        return self.answers.model_context()

    def client(self) -> KimiClient:
        return self.answers.client()

    def thinking_plan(self, action: str, answer_tokens: int) -> ThinkingPlan:
        return self.answers.thinking_plan(action, answer_tokens)

    def index_tools(self) -> IndexTools | None:
        """The index tools over this request's index (results budgeted like the context),
        when the ``tools`` setting is on and there is an index."""
        if self.settings.tools != "on" or self.index is None:
            return None
        return IndexTools(self.index, self.roots, self.estimator())

    async def answer(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        max_completion_tokens: int,
        sink: Sink,
        regenerate: bool = False,
        batch: bool = False,
        language: str | None = None,
        tools: bool = False,
        action: str | None = None,
    ) -> Answer:
        """``tools``: the action may let Kimi call the index tools (when the setting is on);
        ``action``: the thinking policy sizes and shapes the request."""
        return await self.answers.answer(
            messages,
            max_completion_tokens=max_completion_tokens,
            sink=sink,
            regenerate=regenerate,
            batch=batch,
            language=language,
            tools=self.index_tools() if tools else None,
            action=action,
        )

    async def aclose(self) -> None:
        """Close the answerer and (when this opened it) the index."""
        await self.answers.aclose()
        if self.owns_index and self.index is not None:
            self.index.close()

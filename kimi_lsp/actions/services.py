"""What every action needs, built once from the settings and rebuilt when they change."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kimi_lsp.actions.errors import MissingApiKey
from kimi_lsp.actions.pipeline import Admission, Answer, AnswerStore, Sink, answer
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


def _no_documents() -> Sequence[Path]:
    return ()


@dataclass
class EditorView:
    """What the editor shows besides the target, for ranking: the open documents, and the
    diagnostics the client last sent with a code-action request for each (standard LSP
    gives a server no other view of another server's diagnostics)."""

    open_documents: Callable[[], Sequence[Path]] = _no_documents
    diagnostics: dict[Path, list[Span]] = field(default_factory=dict)

    def diagnostics_in(self, path: Path, span: Span) -> list[tuple[Path, Span]]:
        return [
            (path, d)
            for d in self.diagnostics.get(path, [])
            if d.start_line <= span.end_line and d.end_line >= span.start_line
        ]


@dataclass
class Services:
    settings: Settings
    roots: list[Path] = field(default_factory=list)
    index: WorkspaceIndex | None = None
    store: AnswerStore | None = None
    admission: Admission | None = None
    editor: EditorView = field(default_factory=EditorView)
    _client: KimiClient | None = None
    _repo_map: RepoMap | None = None
    _estimator: TokenEstimator | None = None
    _calibration: TokenEstimator | None = None
    _models: ModelTable | None = None
    _tools_refused: bool = False  # this model/endpoint refused tools: do not ask again

    def __post_init__(self) -> None:
        # Placeholders for secrets stay the same bytes across restarts (cache hits).
        use_key_from(self.settings.state_dir)

    def repo_map(self) -> RepoMap:
        """The repository map for the current index (it caches its own rendering)."""
        assert self.index is not None
        if self._repo_map is None or self._repo_map.index is not self.index:
            self._repo_map = RepoMap(self.index, self.roots, estimate_text_tokens)
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
        tools: bool = False,
    ) -> Answer:
        """One answer with this workspace's client, model, cache and quota; a live answer
        of one request calibrates the token estimates for ``language``. ``tools``: the
        action may let Kimi call the index tools (when the ``tools`` setting is on)."""
        if (
            tools
            and self.settings.tools == "on"
            and self.index is not None
            and not self._tools_refused
        ):
            return await self.answer_with_tools(
                messages,
                max_completion_tokens=max_completion_tokens,
                sink=sink,
                regenerate=regenerate,
                batch=batch,
                language=language,
            )
        result = await answer(
            self.client(),
            messages,
            model=self.settings.model,
            max_completion_tokens=max_completion_tokens,
            sink=sink,
            store=self.store,
            admission=self.admission,
            regenerate=regenerate,
            batch=batch,
        )
        if result.first_prompt_tokens and not result.cached:
            await asyncio.to_thread(self.observe, messages, result.first_prompt_tokens, language)
        return result

    def index_tools(self) -> IndexTools:
        """The index tools over this workspace's index (results budgeted like the context)."""
        assert self.index is not None
        return IndexTools(self.index, self.roots, self.estimator())

    async def answer_with_tools(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        max_completion_tokens: int,
        sink: Sink,
        regenerate: bool = False,
        batch: bool = False,
        language: str | None = None,
        exchange: Exchange | None = None,
    ) -> Answer:
        """``answer`` in rounds where Kimi may look things up (``actions/toolloop.py``)."""
        s = self.settings
        result = await answer_with_tools(
            self.client(),
            messages,
            self.index_tools(),
            model=s.model,
            max_completion_tokens=max_completion_tokens,
            sink=sink,
            store=self.store,
            admission=self.admission,
            regenerate=regenerate,
            batch=batch,
            rounds=s.tool_rounds,
            token_allowance=s.tool_tokens,
            exchange=exchange,
        )
        if result.tools_refused:
            log.info("%s refused index tools; later answers use the packed context", s.model)
            self._tools_refused = True
        if result.first_prompt_tokens and not result.cached:
            await asyncio.to_thread(self.observe, messages, result.first_prompt_tokens, language)
        return result

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

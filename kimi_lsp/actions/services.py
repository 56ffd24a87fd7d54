"""What every action needs, built once from the settings and rebuilt when they change."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kimi_lsp.actions.errors import MissingApiKey
from kimi_lsp.actions.pipeline import Admission, Answer, AnswerStore, Sink, answer
from kimi_lsp.config import Settings
from kimi_lsp.context import RepoMap
from kimi_lsp.index import WorkspaceIndex
from kimi_lsp.llm import CACHE_FILE, KimiClient
from kimi_lsp.llm.tokens import estimate_text_tokens

log = logging.getLogger(__name__)


def workspace_id(roots: list[Path]) -> str:
    """A stable id per workspace: Kimi's prefix cache key, so repeated prompts hit."""
    joined = "\n".join(sorted(str(r) for r in roots))
    return "kimi-lsp-" + hashlib.sha256(joined.encode()).hexdigest()[:16]


@dataclass
class Services:
    settings: Settings
    roots: list[Path] = field(default_factory=list)
    index: WorkspaceIndex | None = None
    store: AnswerStore | None = None
    admission: Admission | None = None
    _client: KimiClient | None = None
    _repo_map: RepoMap | None = None

    def repo_map(self) -> RepoMap:
        """The repository map for the current index (it caches its own rendering)."""
        assert self.index is not None
        if self._repo_map is None or self._repo_map.index is not self.index:
            self._repo_map = RepoMap(self.index, self.roots, estimate_text_tokens)
        return self._repo_map

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
        return old

    async def answer(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        max_completion_tokens: int,
        sink: Sink,
        regenerate: bool = False,
        batch: bool = False,
    ) -> Answer:
        """One answer with this workspace's client, model, cache and quota."""
        return await answer(
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

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

"""The context engine: the smallest prompt that carries what the model needs.

- ``build_context(index, roots, repo_map, estimate, *, system, path, language, target_span,
  target_code, target_definition, instruction, budget, extra="") -> BuiltContext``:
  ``messages`` (system: instructions + repository map, the stable prefix; user: the
  definitions the target uses, its callers, the file outline, the target, the instruction),
  ``sections`` with token estimates, ``left_out``, ``stable_prefix_tokens``, ``redactions``.
- ``RepoMap(index, roots, estimate).render(budget)``: PageRank-ranked definitions,
  signatures only, fitted to the budget by binary search; cached per index state.
- ``redact(text, path) -> (text, count)``: secrets replaced before anything leaves.

Reads the index; never the network. Not built yet: calibration of the token estimate from
real usage, personalised ranking of the whole graph per request, and the recall benchmark.
"""

from kimi_lsp.context.build import BuiltContext, Section, build_context, used_definitions
from kimi_lsp.context.redact import redact
from kimi_lsp.context.repomap import RepoMap, pagerank

__all__ = [
    "BuiltContext",
    "RepoMap",
    "Section",
    "build_context",
    "pagerank",
    "redact",
    "used_definitions",
]

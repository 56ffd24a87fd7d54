"""The context engine: the smallest prompt that carries what the model needs.

Reads the index (``kimi_lsp.index``); never the network, never the Kimi client: the model's
context length, the action's output budget and any exact token counter are parameters.

Building a prompt
-----------------

- ``build_context(index, roots, repo_map, estimate, *, system, path, language,
  target_span, target_code, target_definition, instruction, budget, extra="",
  action="explain", selection=None, open_documents=(), diagnostics=()) -> BuiltContext``:
  the one entry, for a target ``actions`` found; ``action`` is one of ``ACTIONS`` (explain,
  refactor, tests); 0-based positions; ``diagnostics`` are ``(path, span)`` pairs. Its one
  caller is ``actions.prompts.build`` (with ``prompt_at`` for a file position): the prompt a
  test or a benchmark builds is the one a user's request sends. The words around the
  context (system text, instruction, output size per action, the quick fix's and the
  workspace refactor's per-file words) are the recipes' (``recipes``).
  ``repository_budget=N`` makes ``N`` the room for repository context (the map and the parts
  about other code), the target's window counted apart; ``budget`` still caps the total.
- ``BuiltContext``: ``file_window_tokens`` and ``repository_tokens`` split ``tokens``;
  ``messages`` (system: instructions + repository map = the stable prefix,
  byte-identical for an unchanged repository whatever the request; user: the recipe's parts,
  then the target, then the instruction), ``sections`` (name, text, token estimate),
  ``left_out``, ``stable_prefix_tokens``, ``redactions``, ``tokens`` (≤ ``budget``).
- ``prompt_budget(model_context, output_budget, *, cap=12_000, margin=None) -> int``.

Policies worth knowing
----------------------

- The repository map gets 3/4 of the budget beyond 6k tokens (up to 6k): none at small
  budgets, ~60% of a typical prompt at the default 12k, where the prefix cache pays.
- The ranked skeleton gets at least 2.5k tokens plus twice what of 4k the map does not take
  (a small budget has no map, so the skeleton takes all the room left; at 12k it keeps
  2.5k, so the cached map stays most of the prompt); the target's code at most half the
  room, cut to a window around the cursor beyond that.
- Type flow (``typeflow``): the classes the target's names stand for come as class outlines.
  In Python, by a parse: ``self`` and its bases in MRO order, annotated parameters and
  attributes, constructors, return annotations, properties, ``super()``. In TypeScript,
  JavaScript, Java, Go and Rust, by the names the code writes: the class around it and its
  ``extends``, the project classes it names, its receivers by the project's conventions.
  An outline is the class line, then the signatures of its members, ranked by evidence,
  the file's PageRank and kind, and by what the project does with the code's names
  (``usage``: ``opts.get_field`` in other files puts ``get_field`` first, and types an
  ``opts`` no rule types as the class defining them).
- The file graph and the map follow saved files and the set of files, not open buffers, so
  typing neither re-ranks nor changes the stable prefix; the focus file's own references
  are read fresh from its buffer on every request.

Parts
-----

- ``TokenEstimator(path=None, *, exact=None)`` (or ``.in_state_dir(state_dir)``): per-language
  estimate, ``observe(messages, prompt_tokens, language)`` calibrates, ``save()`` persists,
  ``await count(messages, limit)`` asks ``exact`` when within 10% of ``limit``; callable as
  ``estimator(text) -> int``.
- ``redact(text, path=None) -> (text, count)``: secrets replaced before anything leaves;
  ``restore(answer, original, path=None)`` puts them back into a rewrite of ``original``;
  ``use_key_from(state_dir)`` keeps placeholders the same across restarts.
- ``RepoMap(index, roots, estimate).render(budget)``: the global map, cached per index state;
  ``.ranker`` is the resident ``FileRanker`` (personalised PageRank, numpy).
- ``member_uses(index)``: the index's ``MemberUses`` (receiver -> member -> files, over the
  saved files, per language family); ``.sync()`` makes it now (the server does it after
  the scan), ``.of(name, language="python")``.
- ``pagerank(graph, personalization=None)``, ``ResidentGraph``, ``Focus``,
  ``score_definitions``, ``render_skeleton``, ``fit_skeleton``, ``used_definitions``.
- Errors (``kimi_lsp.context.errors``): ``ContextError`` > ``UnknownAction``.
"""

from kimi_lsp.context.budget import prompt_budget
from kimi_lsp.context.build import (
    ACTIONS,
    BuiltContext,
    Section,
    build_context,
    used_definitions,
)
from kimi_lsp.context.errors import ContextError, UnknownAction
from kimi_lsp.context.ranking import (
    FileRanker,
    Focus,
    ResidentGraph,
    pagerank,
    score_definitions,
)
from kimi_lsp.context.redact import redact, restore, use_key_from
from kimi_lsp.context.repomap import RepoMap, fit_skeleton, render_skeleton
from kimi_lsp.context.tokens import TokenEstimator
from kimi_lsp.context.usage import MemberUses, member_uses

__all__ = [
    "ACTIONS",
    "BuiltContext",
    "ContextError",
    "FileRanker",
    "Focus",
    "MemberUses",
    "RepoMap",
    "ResidentGraph",
    "Section",
    "TokenEstimator",
    "UnknownAction",
    "build_context",
    "fit_skeleton",
    "member_uses",
    "pagerank",
    "prompt_budget",
    "redact",
    "render_skeleton",
    "restore",
    "score_definitions",
    "use_key_from",
    "used_definitions",
]

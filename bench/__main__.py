"""`make bench`: run every bench/bench_*.py module and print one table.

`python -m bench [NAME ...]` runs only the named modules (e.g. `index`, `quota`).
Corpora and throw-away venvs live in bench/.work (git-ignored).
"""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path

from bench.table import Row, render

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    work = HERE / ".work"
    work.mkdir(exist_ok=True)
    names = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    chosen = [n for n in names if not argv or n in argv]
    rows: list[Row] = []
    failed = False
    for name in chosen:
        print(f"== bench {name}", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"bench.bench_{name}")
            rows.extend(module.run(work))
        except Exception:
            failed = True
            traceback.print_exc()
            rows.append(Row(bench=name, metric="(failed; see above)", value="error", ok=False))
    print(render(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

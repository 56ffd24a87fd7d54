"""Settings of the Python process itself, the same for every door: the server, the CLI, and
the benchmarks that measure them.

The workspace index keeps millions of long-lived objects (a large project's definitions and
references). With CPython's default collector thresholds (700, 10, 10) a full collection,
which walks every one of them, ran about every eighth prompt build on Django and took
80-180 ms: it landed inside a build or a hover and set the p95. Young collections every
10,000 allocations instead of 700, and full ones after 100 middle ones instead of 10, keep
what the young ones find (cycles die young) and make the full walk rare.
"""

from __future__ import annotations

import gc

COLLECTOR_THRESHOLDS = (10_000, 20, 100)


def tune_collector() -> None:
    """Set the cyclic collector's thresholds for a process that holds an index."""
    gc.set_threshold(*COLLECTOR_THRESHOLDS)

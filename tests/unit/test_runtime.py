"""Every kimi-lsp process runs with the collector tuned for an index's long-lived heap."""

from __future__ import annotations

import subprocess
import sys

from kimi_lsp.runtime import COLLECTOR_THRESHOLDS

PROBE = """
import gc
from kimi_lsp.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
print(gc.get_threshold())
"""


def test_the_cli_and_so_the_server_set_the_collector_thresholds() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == str(COLLECTOR_THRESHOLDS)
    assert COLLECTOR_THRESHOLDS[0] > 700  # not the defaults (700, 10, 10)
    assert COLLECTOR_THRESHOLDS[2] > 10

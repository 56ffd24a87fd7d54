"""``python -m kimi_lsp`` is the ``kimi-lsp`` command (editors may start it this way)."""

import sys

from kimi_lsp.cli import main

sys.exit(main())

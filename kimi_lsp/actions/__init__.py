"""kimi_lsp.actions (in progress)."""

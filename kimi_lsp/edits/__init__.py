"""kimi_lsp.edits: not built yet (see the open issue); the package exists so the import contracts can name it."""

"""kimi_lsp.cache: not built yet (see its open issue).

The package exists so the import contracts in pyproject.toml can name it.
"""

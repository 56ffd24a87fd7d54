"""kimi-lsp: a language server that brings Kimi into every LSP editor."""

__version__ = "0.1.0"

"""kimi_lsp.actions: what the user asks Kimi for (explain, refactor, tests, workspace
refactor, hover, code actions), the one answer pipeline they share, and the factory
(``factory.open_services``) through which the server and every CLI command open it."""

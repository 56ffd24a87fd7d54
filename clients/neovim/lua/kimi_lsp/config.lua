-- Defaults and the merged options of require("kimi_lsp").setup().
local M = {}

-- Neovim filetypes of the languages the server's index reads (kimi_lsp/index/languages.py).
M.filetypes = {
  "python", "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "rust",
  "java", "c", "cpp", "ruby", "lua", "cs", "php", "scala",
}

M.root_markers = {
  ".git", ".hg", "pyproject.toml", "setup.py", "package.json", "go.mod", "Cargo.toml",
  "pom.xml", "build.gradle", "Gemfile", "composer.json", "build.sbt", "Makefile",
}

-- The variables the server reads the key from, in its order (kimi_lsp/config.py).
M.key_env = { "KIMI_LSP_API_KEY", "MOONSHOT_API_KEY", "KIMI_API_KEY" }

M.defaults = {
  -- How to run the server; `{ "python", "-m", "kimi_lsp" }` works too.
  cmd = { "kimi-lsp" },
  filetypes = M.filetypes,
  root_markers = M.root_markers,
  -- Server settings (docs/configuration.md): camelCase or snake_case, e.g. { model = "kimi-k2.6",
  -- tier = 1 }. Sent as initializationOptions and as the `kimi` section of
  -- workspace/configuration. Never put the key here: the server reads it from the environment.
  settings = {},
  -- Extra environment for the server process (e.g. { KIMI_LSP_LOG_LEVEL = "DEBUG" }).
  cmd_env = nil,
  -- Start the server for the filetypes above (false: only the commands and the handlers).
  autostart = true,
  -- Buffer-local keymaps where the server attaches; false turns them all off, and a single
  -- entry set to false turns off that one.
  keymaps = {
    explain = "<leader>ke",
    refactor = "<leader>kr",
    tests = "<leader>kt",
    workspace = "<leader>kw",
    context = "<leader>kc",
    cancel = "<leader>kx",
    quota = "<leader>kq",
  },
  -- The floating window of kimi/stream.
  float = {
    width = 0.6, -- of the editor's columns (or an absolute number of columns when > 1)
    height = 0.5,
    border = "rounded",
    -- The actions whose stream opens the float; the others only show in the statusline.
    actions = { explain = true, workspace = true },
    show_reasoning = true,
  },
  -- Glob patterns for `:KimiWorkspaceRefactor!` (without the bang: the symbol under the cursor).
  workspace_scope = { "**/*" },
}

M.options = vim.deepcopy(M.defaults)

function M.merge(opts)
  M.options = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  -- Lists replace the defaults rather than merging index by index.
  for _, key in ipairs({ "cmd", "filetypes", "root_markers", "workspace_scope" }) do
    if opts and opts[key] then
      M.options[key] = opts[key]
    end
  end
  if opts and opts.keymaps == false then
    M.options.keymaps = false
  end
  return M.options
end

return M

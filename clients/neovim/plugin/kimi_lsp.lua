-- Nothing starts until require("kimi_lsp").setup() (lazy.nvim calls it for `opts = {}`).
if vim.g.loaded_kimi_lsp then
  return
end
vim.g.loaded_kimi_lsp = 1
if vim.fn.has("nvim-0.10") == 0 then
  vim.notify_once("kimi_lsp needs Neovim 0.10 or newer", vim.log.levels.WARN)
end

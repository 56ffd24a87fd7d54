-- kimi-lsp for Neovim: starts the server for the supported filetypes, adds the :Kimi* commands,
-- a live float of kimi/stream, a statusline component and :checkhealth kimi_lsp.
--
--   require("kimi_lsp").setup({ settings = { model = "kimi-k2.6" } })
local config = require("kimi_lsp.config")

local M = {}

M.name = "kimi_lsp"

--- The client configuration (the same table for vim.lsp.config and vim.lsp.start).
---@return vim.lsp.ClientConfig
function M.client_config()
  local o = config.options
  local stream = require("kimi_lsp.stream")
  local status = require("kimi_lsp.status")
  local commands = require("kimi_lsp.commands")
  local messages = require("kimi_lsp.messages")
  return {
    name = M.name,
    cmd = o.cmd,
    cmd_env = o.cmd_env,
    filetypes = o.filetypes,
    root_markers = o.root_markers,
    -- Both routes in: the server reads initializationOptions at start and asks for the
    -- `kimi` section of workspace/configuration (Neovim answers it from `settings`).
    init_options = vim.deepcopy(o.settings),
    settings = { kimi = vim.deepcopy(o.settings) },
    handlers = {
      ["kimi/stream"] = stream.handler,
      ["kimi/status"] = status.handler,
      ["window/showDocument"] = commands.show_document,
      ["window/showMessage"] = messages.show_message,
      ["workspace/applyEdit"] = messages.apply_edit,
    },
  }
end

local function root_dir(bufnr)
  local markers = config.options.root_markers
  if vim.fs.root then
    return vim.fs.root(bufnr, markers)
  end
  local found = vim.fs.find(markers, { path = vim.fs.dirname(vim.api.nvim_buf_get_name(bufnr)), upward = true })[1]
  return found and vim.fs.dirname(found) or nil
end

--- Starts (or reuses) the server for `bufnr`: what vim.lsp.enable does on 0.11, for 0.10.
function M.start(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if vim.bo[bufnr].buftype ~= "" then
    return nil
  end
  local cfg = M.client_config()
  cfg.root_dir = root_dir(bufnr) or vim.fs.dirname(vim.api.nvim_buf_get_name(bufnr))
  return vim.lsp.start(cfg, { bufnr = bufnr })
end

local group = vim.api.nvim_create_augroup("kimi_lsp", { clear = true })

---@param opts table? see config.lua (`:help kimi_lsp-setup`)
function M.setup(opts)
  config.merge(opts)
  vim.api.nvim_clear_autocmds({ group = group })
  require("kimi_lsp.commands").create()
  vim.api.nvim_create_autocmd("LspAttach", {
    group = group,
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if client and client.name == M.name then
        require("kimi_lsp.commands").keymaps(ev.buf)
      end
    end,
  })
  if vim.lsp.config and vim.lsp.enable then
    vim.lsp.config(M.name, M.client_config())
    vim.lsp.enable(M.name, config.options.autostart ~= false)
  elseif config.options.autostart ~= false then
    vim.api.nvim_create_autocmd("FileType", {
      group = group,
      pattern = config.options.filetypes,
      callback = function(ev)
        M.start(ev.buf)
      end,
    })
    -- Buffers opened before setup().
    for _, buf in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(buf) and vim.tbl_contains(config.options.filetypes, vim.bo[buf].filetype) then
        M.start(buf)
      end
    end
  end
end

--- For the statusline: `Kimi`, `Kimi explain… · 3% TPM`, or "" where no kimi-lsp is attached.
---@return string
function M.status()
  return require("kimi_lsp.status").text()
end

M.explain = function(opts)
  require("kimi_lsp.commands").explain(opts or {})
end
M.refactor = function(opts)
  require("kimi_lsp.commands").refactor(opts or {})
end
M.cancel = function()
  require("kimi_lsp.commands").cancel()
end

return M

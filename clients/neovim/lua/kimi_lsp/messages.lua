-- window/showMessage and workspace/applyEdit, the way a stream needs them.
--
-- Neovim's own showMessage handler echoes "LSP[kimi_lsp][Warning] …\n": a message with a
-- newline is a `Press ENTER` prompt that freezes the screen while the answer streams. Here it
-- goes to vim.notify (nvim-notify, fidget, … where installed) as one line that fits the
-- command line; the whole text stays in :messages.
--
-- A refactor streams its text as many workspace/applyEdit requests, each its own undo step:
-- the ones of one run are joined (undojoin), so one `u` undoes the action.
local M = {}

local LEVELS = { vim.log.levels.ERROR, vim.log.levels.WARN, vim.log.levels.INFO, vim.log.levels.DEBUG }

--- One line no wider than the command line can show without a prompt.
---@param msg string
---@return string
function M.one_line(msg)
  local line = vim.trim((msg:gsub("%s*\n%s*", " · ")))
  local room = math.max(20, (vim.v.echospace > 0 and vim.v.echospace or vim.o.columns) - 1)
  if vim.fn.strdisplaywidth(line) > room then
    line = vim.fn.strcharpart(line, 0, room - 1) .. "…"
  end
  return line
end

function M.show_message(_, params)
  if type(params) ~= "table" or type(params.message) ~= "string" then
    return vim.NIL
  end
  local level = LEVELS[params.type] or vim.log.levels.INFO
  vim.schedule(function()
    vim.notify(M.one_line(params.message), level, { title = "Kimi" })
  end)
  return vim.NIL
end

---@type table<integer, {run: string, label: string?, tick: integer}> the last joined edit per buffer
M.last_edit = {}

local function buffers_of(edit)
  local bufs = {}
  for uri in pairs(edit.changes or {}) do
    bufs[#bufs + 1] = vim.uri_to_bufnr(uri)
  end
  for _, change in ipairs(edit.documentChanges or {}) do
    if change.textDocument then
      bufs[#bufs + 1] = vim.uri_to_bufnr(change.textDocument.uri)
    end
  end
  return bufs
end

function M.apply_edit(err, result, ctx, cfg)
  local run = require("kimi_lsp.stream").running_for(ctx.client_id)
  local bufs = (type(result) == "table" and type(result.edit) == "table") and buffers_of(result.edit) or {}
  if run then
    for _, buf in ipairs(bufs) do
      local last = M.last_edit[buf]
      -- Only onto this run's own last edit: never join with something the user typed.
      if last and last.run == run and last.label == result.label and vim.api.nvim_buf_is_loaded(buf)
        and last.tick == vim.api.nvim_buf_get_changedtick(buf) then
        vim.api.nvim_buf_call(buf, function()
          pcall(vim.cmd.undojoin)
        end)
      end
    end
  end
  local answer
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if client and type(result) == "table" and type(result.edit) == "table" then
    -- Neovim's handler, without its `print("Workspace edit", label)` for every streamed chunk
    -- (a pile of echoes is a Press ENTER prompt too).
    local ok, why = pcall(vim.lsp.util.apply_workspace_edit, result.edit, client.offset_encoding)
    answer = { applied = ok, failureReason = not ok and tostring(why) or nil }
  else
    answer = vim.lsp.handlers["workspace/applyEdit"](err, result, ctx, cfg)
  end
  for _, buf in ipairs(bufs) do
    if run and vim.api.nvim_buf_is_loaded(buf) then
      M.last_edit[buf] = { run = run, label = result.label, tick = vim.api.nvim_buf_get_changedtick(buf) }
    else
      M.last_edit[buf] = nil
    end
  end
  return answer
end

return M

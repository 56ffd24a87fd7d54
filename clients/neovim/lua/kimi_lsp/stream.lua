-- kimi/stream: every run's text as it arrives, rendered live as Markdown in a floating
-- window. Closing the window never cancels the run; `<C-c>` in it (or :KimiCancel) does.
local config = require("kimi_lsp.config")
local status = require("kimi_lsp.status")

local M = {}

---@class kimi_lsp.Run
---@field id string
---@field action string
---@field title string
---@field client_id integer
---@field text string
---@field reasoning string
---@field state "running"|"done"|"cancelled"|"error"
---@field message string?
---@field buf integer?
---@field seq integer the order the runs started in

---@type table<string, kimi_lsp.Run>
M.runs = {}
---@type string? the run the float shows (or showed last)
M.current = nil
---@type integer?
M.win = nil

local pending = false

local function float_options(run)
  local o = config.options.float
  local function size(v, total)
    return v > 1 and math.min(v, total - 4) or math.max(10, math.floor(total * v))
  end
  local width, height = size(o.width, vim.o.columns), size(o.height, vim.o.lines)
  local label = run.state == "running" and "" or (" (" .. (run.message or run.state) .. ")")
  local win_opts = {
    relative = "editor",
    width = width,
    height = height,
    row = math.floor((vim.o.lines - height) / 2) - 1,
    col = math.floor((vim.o.columns - width) / 2),
    style = "minimal",
    border = o.border,
    title = " " .. run.title .. label .. " ",
    title_pos = "center",
  }
  if vim.fn.has("nvim-0.10") == 1 then
    win_opts.footer = " q close · <C-c> cancel "
    win_opts.footer_pos = "right"
  end
  return win_opts
end

local function lines_of(run)
  local out = {}
  if run.text == "" and run.reasoning ~= "" and config.options.float.show_reasoning then
    for _, l in ipairs(vim.split(run.reasoning, "\n", { plain = true })) do
      out[#out + 1] = "> " .. l
    end
  else
    out = vim.split(run.text, "\n", { plain = true })
  end
  if run.state == "error" then
    vim.list_extend(out, { "", "**Error:** " .. (run.message or "the run failed") })
  elseif run.state == "cancelled" then
    vim.list_extend(out, { "", "_cancelled_" })
  end
  return out
end

local function ensure_buf(run)
  if run.buf and vim.api.nvim_buf_is_valid(run.buf) then
    return run.buf
  end
  local buf = vim.api.nvim_create_buf(false, true)
  vim.bo[buf].bufhidden = "hide"
  vim.bo[buf].filetype = "markdown"
  vim.api.nvim_buf_set_name(buf, "kimi://" .. run.action .. "/" .. run.id)
  local function close()
    M.close()
  end
  vim.keymap.set("n", "q", close, { buffer = buf, nowait = true, desc = "Close (the run goes on)" })
  vim.keymap.set("n", "<Esc>", close, { buffer = buf, nowait = true, desc = "Close" })
  vim.keymap.set("n", "<C-c>", function()
    M.cancel(run.id)
  end, { buffer = buf, nowait = true, desc = "Cancel this Kimi run" })
  run.buf = buf
  return buf
end

local function render(run)
  local buf = ensure_buf(run)
  local lines = lines_of(run)
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  if M.win and vim.api.nvim_win_is_valid(M.win) and vim.api.nvim_win_get_buf(M.win) == buf then
    vim.api.nvim_win_set_config(M.win, float_options(run))
    -- Follow the stream unless the user moved up to read.
    local cursor = vim.api.nvim_win_get_cursor(M.win)[1]
    if run.state ~= "running" or cursor >= #lines - 1 or cursor == 1 then
      vim.api.nvim_win_set_cursor(M.win, { #lines, 0 })
    end
  end
end

local function schedule_render()
  if pending then
    return
  end
  pending = true
  vim.schedule(function()
    pending = false
    local run = M.current and M.runs[M.current]
    if run then
      render(run)
    end
  end)
end

--- Shows run `id` (default: the latest) in the float, focused.
---@param id string?
---@return integer? win
function M.open(id)
  local run = M.runs[id or M.current or ""]
  if not run then
    vim.notify("Kimi: nothing streamed yet", vim.log.levels.INFO)
    return nil
  end
  M.current = run.id
  local buf = ensure_buf(run)
  render(run)
  if M.win and vim.api.nvim_win_is_valid(M.win) then
    vim.api.nvim_win_set_buf(M.win, buf)
    vim.api.nvim_win_set_config(M.win, float_options(run))
    vim.api.nvim_set_current_win(M.win)
  else
    M.win = vim.api.nvim_open_win(buf, true, float_options(run))
    vim.wo[M.win].wrap = true
    vim.wo[M.win].linebreak = true
    vim.wo[M.win].conceallevel = 2
  end
  render(run)
  return M.win
end

--- Closes the float; the run keeps streaming into its buffer (:KimiStream shows it again).
function M.close()
  if M.win and vim.api.nvim_win_is_valid(M.win) then
    vim.api.nvim_win_close(M.win, true)
  end
  M.win = nil
end

function M.is_open()
  return M.win ~= nil and vim.api.nvim_win_is_valid(M.win)
end

--- Cancels run `id` on its server (kimi.cancel with the runId).
function M.cancel(id)
  local run = M.runs[id]
  if not run then
    return
  end
  local client = vim.lsp.get_client_by_id(run.client_id)
  if client then
    require("kimi_lsp.commands").execute(client, "kimi.cancel", { runId = id }, function() end)
  end
end

--- The run client `client_id` streams now (the latest started), or nil.
---@param client_id integer
---@return string?
function M.running_for(client_id)
  local found
  for id, run in pairs(M.runs) do
    if run.client_id == client_id and run.state == "running" and (found == nil or run.seq > M.runs[found].seq) then
      found = id
    end
  end
  return found
end

local seq = 0

--- The kimi/stream handler: {runId, action, kind, text?, title?, cached?, uri?, message?}.
function M.handler(_, result, ctx)
  if type(result) ~= "table" or type(result.runId) ~= "string" then
    return
  end
  local id = result.runId
  local run = M.runs[id]
  if result.kind == "start" or not run then
    run = {
      id = id,
      action = result.action or "run",
      title = result.title or ("Kimi: " .. tostring(result.action)),
      client_id = ctx.client_id,
      text = "",
      reasoning = "",
      state = "running",
      seq = seq,
    }
    seq = seq + 1
    M.runs[id] = run
    status.run_started(id, run.action)
    if config.options.float.actions[run.action] then
      vim.schedule(function()
        M.current = id
        M.open(id)
      end)
    end
  end
  if result.kind == "text" then
    run.text = run.text .. (result.text or "")
  elseif result.kind == "reasoning" then
    run.reasoning = run.reasoning .. (result.text or "")
  elseif result.kind == "end" then
    run.state = result.message == "cancelled" and "cancelled" or "done"
    run.message = result.message
    status.run_ended(id)
  elseif result.kind == "error" then
    run.state, run.message = "error", result.message
    status.run_ended(id)
  end
  vim.api.nvim_exec_autocmds("User", { pattern = "KimiStream", data = result, modeline = false })
  if M.current == id then
    schedule_render()
  end
end

return M

-- The statusline component, fed by kimi/status (quota, index, runs, cache) and by the runs
-- seen on kimi/stream. `require("kimi_lsp").status()` returns a short string.
local M = {}

---@type table? the last kimi/status payload
M.last = nil
---@type table<string, string> runId -> action, for the runs streaming now
M.running = {}

local function refresh()
  vim.schedule(function()
    pcall(vim.api.nvim_exec_autocmds, "User", { pattern = "KimiStatus", modeline = false })
    -- `!`: every window's; with the focus in the float, the source window's is the one to redraw.
    vim.cmd("redrawstatus!")
  end)
end

--- The kimi/status handler: {quota, index: {files, indexing, done, total}, runs, cache}.
function M.handler(_, result)
  if type(result) == "table" then
    M.last = result
    refresh()
  end
end

function M.run_started(id, action)
  M.running[id] = action
  refresh()
end

function M.run_ended(id)
  M.running[id] = nil
  refresh()
end

local function num(v)
  return type(v) == "number" and v or nil
end

--- The part of the quota worth a glance: the per-minute token use and any waiting.
---@param quota table
---@return string[]
function M.quota_parts(quota)
  local parts = {}
  local used = num(quota.tokensLastMinute)
  local limit = type(quota.limits) == "table" and num(quota.limits.tpm) or nil
  if used and limit and limit > 0 then
    local pct = 100 * used / limit
    parts[#parts + 1] = (pct > 0 and pct < 1) and "<1% TPM" or string.format("%d%% TPM", pct + 0.5)
  end
  local cooldown = num(quota.cooldownSeconds) or 0
  if quota.waiting == true or (num(quota.waiting) or 0) > 0 then
    local why = quota.waitingFor
    parts[#parts + 1] = (type(why) == "string" and why ~= "") and ("waiting for " .. why) or "waiting"
  elseif cooldown > 0 then
    parts[#parts + 1] = string.format("cooling down %ds", math.ceil(cooldown))
  end
  return parts
end

local function attached(bufnr)
  local get = vim.lsp.get_clients or vim.lsp.get_active_clients
  return #get({ name = "kimi_lsp", bufnr = bufnr }) > 0
end

--- `Kimi`, `Kimi explain… · 3% TPM`, `Kimi indexing 12/40`; "" where no kimi-lsp is attached.
---@param bufnr integer?
---@return string
function M.text(bufnr)
  if not attached(bufnr or vim.api.nvim_get_current_buf()) then
    return ""
  end
  local parts = {}
  local actions = {}
  for _, action in pairs(M.running) do
    actions[#actions + 1] = action
  end
  table.sort(actions)
  local head = #actions > 0 and ("Kimi " .. table.concat(actions, ",") .. "…") or "Kimi"
  local s = M.last or {}
  if type(s.quota) == "table" then
    vim.list_extend(parts, M.quota_parts(s.quota))
  end
  if type(s.index) == "table" and s.index.indexing then
    parts[#parts + 1] = string.format("indexing %d/%d", s.index.done or 0, s.index.total or 0)
  end
  if #parts == 0 then
    return head
  end
  return head .. " · " .. table.concat(parts, " · ")
end

return M

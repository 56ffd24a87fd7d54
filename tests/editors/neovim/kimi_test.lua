-- Shared by the plugin scenarios: load the plugin from the checkout, start it on the test file,
-- wait for the server, and report to the pytest driver one line per step on stdout.
-- Exit codes: 0 ok, 1 failure, 77 the server lacks a command the scenario needs (a skip).
local T = {}

T.py = assert(os.getenv("KIMI_TEST_PY"))
T.file = assert(os.getenv("KIMI_TEST_FILE"))
T.plugin = assert(os.getenv("KIMI_TEST_PLUGIN"))

function T.log(s)
  io.stdout:write(s .. "\n")
  io.stdout:flush()
end

function T.fail(s)
  T.log("FAIL: " .. s)
  os.exit(1)
end

-- Every wait is bounded; a hang becomes a failure naming the step.
function T.wait(what, ms, cond)
  if not vim.wait(ms, cond, 20) then
    T.fail("timed out waiting for " .. what)
  end
end

-- vim.notify messages, so the driver can see what the user would see.
T.notes = {}
vim.notify = function(msg, level)
  T.notes[#T.notes + 1] = msg
  T.log("notify[" .. tostring(level) .. "]: " .. msg)
end

function T.setup(opts)
  vim.opt.runtimepath:prepend(T.plugin)
  vim.cmd("runtime plugin/kimi_lsp.lua")
  if os.getenv("KIMI_TEST_AS_NVIM_010") then
    -- Neovim 0.10 has neither: the plugin must fall back to vim.lsp.start on FileType.
    vim.lsp.config, vim.lsp.enable = nil, nil
  end
  opts = vim.tbl_deep_extend("force", { cmd = { T.py, "-m", "kimi_lsp" } }, opts or {})
  require("kimi_lsp").setup(opts)
  vim.cmd.edit(T.file)
  T.buf = vim.api.nvim_get_current_buf()
  T.win = vim.api.nvim_get_current_win()
  T.uri = vim.uri_from_bufnr(T.buf)
  local client
  T.wait("the client", 20000, function()
    client = vim.lsp.get_clients({ name = "kimi_lsp", bufnr = T.buf })[1]
    return client ~= nil and client.initialized
  end)
  T.client = client
  T.log("attached: " .. client.name)
  return client
end

-- The scenario needs these server commands; without them it is skipped, never faked.
function T.require_commands(names)
  local have = vim.tbl_get(T.client.server_capabilities, "executeCommandProvider", "commands") or {}
  for _, name in ipairs(names) do
    if not vim.tbl_contains(have, name) then
      T.log("MISSING: " .. name)
      os.exit(77)
    end
  end
end

function T.wait_indexed(query)
  T.wait("the index", 20000, function()
    local r = T.client:request_sync("workspace/symbol", { query = query or "add" }, 2000, T.buf)
    return r ~= nil and r.result ~= nil and #r.result > 0
  end)
end

function T.stream()
  return require("kimi_lsp.stream")
end

-- A run of `action` (seen on kimi/stream) for which `pred` holds, or nil.
function T.find_run(action, pred)
  for _, run in pairs(T.stream().runs) do
    if run.action == action and (pred == nil or pred(run)) then
      return run
    end
  end
  return nil
end

function T.wait_run(action, ms, pred)
  local found
  T.wait(action .. " run", ms, function()
    found = T.find_run(action, pred)
    return found ~= nil
  end)
  return found
end

function T.float_text()
  local s = T.stream()
  if not s.is_open() then
    return nil
  end
  return table.concat(vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(s.win), 0, -1, false), "\n")
end

-- The component as a real statusline of the source window draws it.
function T.statusline()
  local expr = "%{%v:lua.require'kimi_lsp'.status()%}"
  return vim.api.nvim_eval_statusline(expr, { winid = T.win }).str
end

function T.finish()
  T.client:stop()
  vim.wait(3000, function()
    return vim.lsp.get_client_by_id(T.client.id) == nil
  end, 50)
  T.log("OK")
  vim.cmd("qa!")
end

return T

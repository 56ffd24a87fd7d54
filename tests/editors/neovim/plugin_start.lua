-- The plugin starts the server with its settings, maps its keys, feeds the statusline from
-- kimi/status, and :checkhealth kimi_lsp reports on server, version, key and doctor.
local T = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/kimi_test.lua")
local client = T.setup({ settings = { model = "kimi-k2.6", contextBudget = 12345 } })
T.log("root: " .. tostring(client.root_dir))
T.log("started by: " .. (vim.lsp.config and "vim.lsp.enable" or "vim.lsp.start"))
local cmds = vim.tbl_get(client.server_capabilities, "executeCommandProvider", "commands") or {}
T.log("commands: " .. table.concat(cmds, "|"))

local state = client:request_sync("kimi/serverState", vim.empty_dict(), 5000, T.buf)
if not state or state.err then
  T.fail("serverState: " .. vim.inspect(state))
end
local budget = state.result.settings.context_budget
T.log("context_budget: " .. tostring(budget.value) .. " from " .. tostring(budget.source))

for _, name in ipairs({ "KimiExplain", "KimiRefactor", "KimiTests", "KimiWorkspaceRefactor",
  "KimiContext", "KimiCancel", "KimiQuota" }) do
  if vim.fn.exists(":" .. name) ~= 2 then
    T.fail("no command " .. name)
  end
end
T.log("keymap <leader>ke: " .. vim.fn.maparg("<leader>ke", "n"))

T.wait("kimi/status", 10000, function()
  return require("kimi_lsp.status").last ~= nil
end)
T.log("status: " .. T.statusline())

vim.cmd("checkhealth kimi_lsp")
local report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
T.log("HEALTH-BEGIN\n" .. report .. "\nHEALTH-END")
T.finish()

-- :KimiCancel stops a slow stream: the run ends "cancelled" long before the answer would.
local T = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/kimi_test.lua")
T.setup()
T.require_commands({ "kimi.explain", "kimi.cancel" })
T.wait_indexed()
local s = T.stream()

vim.api.nvim_win_set_cursor(0, { 6, 6 }) -- inside twice()
vim.cmd("KimiExplain")
local run
T.wait("the slow stream", 20000, function()
  run = T.find_run("explain")
  return run ~= nil and #run.text > 0
end)
T.log("status while streaming: " .. T.statusline())
vim.cmd("KimiCancel")
T.wait("the cancel", 10000, function()
  return run.state ~= "running"
end)
vim.wait(200, function() return false end)
T.log("cancel outcome: " .. run.state .. " after " .. #run.text .. " chars")
T.log("float says: " .. ((T.float_text() or ""):match("_cancelled_") or "?"))
T.log("status after: " .. T.statusline())
T.finish()

-- :KimiTests writes a test file; :KimiWorkspaceRefactor changes the symbol and its uses in
-- every file (:wall writes them); a keymap switched off in setup() is not mapped.
local T = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/kimi_test.lua")
T.setup({ keymaps = { tests = false, explain = "<leader>E" } })
T.require_commands({ "kimi.generateTests", "kimi.refactorWorkspace" })
T.wait_indexed()
T.log("keymap tests: [" .. vim.fn.maparg("<leader>kt", "n") .. "]")
T.log("keymap explain: [" .. vim.fn.maparg("<leader>E", "n") .. "]")

vim.api.nvim_win_set_cursor(0, { 2, 6 }) -- inside add()
vim.cmd("KimiTests")
local run = T.wait_run("tests", 20000, function(r)
  return r.state ~= "running"
end)
T.log("tests state: " .. run.state)
local written
T.wait("the tests notice", 10000, function()
  for _, n in ipairs(T.notes) do
    written = n:match("^Kimi: tests written to (.+)$") or written
  end
  return written ~= nil
end)
-- The test file may be an unsaved buffer (CreateFile + edit) or already on disk.
local tbuf = vim.fn.bufnr(written)
if tbuf ~= -1 and vim.bo[tbuf].modified then
  vim.api.nvim_buf_call(tbuf, function() vim.cmd.write() end)
end
T.log("TESTS-BEGIN\n" .. table.concat(vim.fn.readfile(written), "\n") .. "\nTESTS-END")

vim.api.nvim_set_current_win(T.win)
vim.api.nvim_set_current_buf(T.buf)
vim.api.nvim_win_set_cursor(0, { 1, 4 }) -- on add
vim.cmd("KimiWorkspaceRefactor rename add to plus")
local ws = T.wait_run("workspace", 30000, function(r)
  return r.state ~= "running"
end)
T.log("workspace state: " .. ws.state .. " (" .. tostring(ws.message) .. ")")
T.wait("the workspace notice", 10000, function()
  for _, n in ipairs(T.notes) do
    if n:match("^Kimi: changed") or n:match("^Kimi: workspace refactor applied nothing") then
      return true
    end
  end
  return false
end)
vim.cmd("silent! wall")
T.finish()

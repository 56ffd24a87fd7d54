-- :KimiTests on a file whose test file exists: the tests stream onto its end (the server
-- loads it into a buffer through workspace/applyEdit) and :wall writes it.
local T = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/kimi_test.lua")
T.setup()
T.require_commands({ "kimi.generateTests" })
T.wait_indexed()

vim.api.nvim_win_set_cursor(0, { 6, 6 }) -- inside twice()
vim.cmd("KimiTests")
local run = T.wait_run("tests", 20000, function(r)
  return r.state ~= "running"
end)
T.log("tests state: " .. run.state .. " (" .. tostring(run.message) .. ")")
T.wait("the tests notice", 10000, function()
  for _, n in ipairs(T.notes) do
    if n:match("^Kimi: tests ") then
      return true
    end
  end
  return false
end)
vim.wait(300, function() return false end)
vim.cmd("silent! wall")
T.finish()

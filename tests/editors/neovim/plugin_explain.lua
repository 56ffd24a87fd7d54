-- :KimiExplain opens the float and streams the answer into it as Markdown; closing the float
-- (q) leaves a slow run going to its end; :KimiStream shows it again; :KimiQuota and
-- :KimiContext open their Markdown too.
local T = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/kimi_test.lua")
T.setup()
T.require_commands({ "kimi.explain", "kimi.quota", "kimi.showContext" })
T.wait_indexed()
local wins_before = #vim.api.nvim_list_wins()

vim.api.nvim_win_set_cursor(0, { 2, 6 }) -- inside add()
vim.cmd("KimiExplain")
local s = T.stream()
T.wait("the float", 10000, function()
  return s.is_open()
end)
T.log("float filetype: " .. vim.bo[vim.api.nvim_win_get_buf(s.win)].filetype)
T.log("float focused: " .. tostring(vim.api.nvim_get_current_win() == s.win))
local run = T.wait_run("explain", 20000, function(r)
  return r.state ~= "running"
end)
vim.wait(200, function() return false end) -- let the last render land
T.log("explain state: " .. run.state)
T.log("FLOAT-BEGIN\n" .. (T.float_text() or "<closed>") .. "\nFLOAT-END")
T.log("title: " .. vim.api.nvim_win_get_config(s.win).title[1][1])
vim.api.nvim_feedkeys("q", "x", false)
T.log("closed by q: " .. tostring(not s.is_open()))
T.log("windows after explain: " .. (#vim.api.nvim_list_wins() - wins_before))

-- A slow answer: close the float while it streams; the run must still finish.
vim.api.nvim_set_current_buf(T.buf)
vim.api.nvim_win_set_cursor(0, { 6, 6 }) -- inside twice()
vim.cmd("KimiExplain")
local slow
T.wait("the slow stream", 20000, function()
  slow = T.find_run("explain", function(r)
    return r ~= run and #r.text > 0
  end)
  return slow ~= nil
end)
vim.api.nvim_feedkeys("q", "x", false)
T.log("closed while streaming: " .. tostring(not s.is_open()) .. " state " .. slow.state)
T.wait("the slow run's end", 30000, function()
  return slow.state ~= "running"
end)
T.log("slow state after close: " .. slow.state .. " chars " .. #slow.text)
vim.cmd("KimiStream")
T.log("reopened: " .. tostring(s.is_open()) .. " lines " .. vim.api.nvim_buf_line_count(vim.api.nvim_win_get_buf(s.win)))
s.close()

vim.api.nvim_set_current_buf(T.buf)
vim.api.nvim_win_set_cursor(0, { 2, 6 })
vim.cmd("KimiQuota")
T.wait("the quota float", 10000, function()
  return s.is_open()
end)
T.log("QUOTA-BEGIN\n" .. T.float_text() .. "\nQUOTA-END")
s.close()

vim.api.nvim_set_current_buf(T.buf)
vim.cmd("KimiContext")
T.wait("the context float", 10000, function()
  return s.is_open() and (T.float_text() or ""):find("## system") ~= nil
end)
local ctx = T.float_text()
T.log("context has user message: " .. tostring(ctx:find("## user") ~= nil))
s.close()
T.log("windows at the end: " .. (#vim.api.nvim_list_wins() - wins_before))
T.finish()

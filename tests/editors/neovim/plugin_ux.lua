-- What a user meets around the runs: the documented statusline snippet, Explain from the
-- code-action menu (the float only, no split), a warning during a stream (vim.notify, one
-- line, no Press ENTER), and the status after a run that ended with the focus in the float.
local T = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/kimi_test.lua")
T.setup()
T.require_commands({ "kimi.explain", "kimi.refactor" })
T.wait_indexed()
local s = T.stream()
local snippet = assert(os.getenv("KIMI_TEST_STATUSLINE"))
local function statusline()
  return vim.api.nvim_eval_statusline(snippet, { winid = T.win }).str
end
local wins_before = #vim.api.nvim_list_wins()

-- Explain from the code-action menu, as vim.lsp.buf.code_action() runs it.
vim.api.nvim_win_set_cursor(0, { 2, 6 }) -- inside add()
vim.lsp.buf.code_action({
  filter = function(a)
    return a.title == "Kimi: Explain"
  end,
  apply = true,
})
T.wait("the float", 10000, function()
  return s.is_open()
end)
T.log("status while streaming: " .. statusline())
local run = T.wait_run("explain", 20000, function(r)
  return r.state ~= "running"
end)
vim.wait(300, function() return false end) -- the showDocument ask and the last render
T.log("explain state: " .. run.state)
T.log("focus in the float: " .. tostring(vim.api.nvim_get_current_win() == s.win))
T.log("windows besides the float: " .. (#vim.api.nvim_list_wins() - wins_before - 1))
T.wait("the quota status", 10000, function()
  return statusline():find("TPM") ~= nil
end)
T.log("status after the run: " .. statusline())
s.close()

-- A refactor whose answer does not parse: the server warns while the stream ends.
vim.api.nvim_set_current_win(T.win)
vim.api.nvim_win_set_cursor(0, { 6, 6 }) -- inside twice()
local notes_before = #T.notes
vim.cmd("KimiRefactor break it")
T.wait_run("refactor", 20000, function(r)
  return r.state ~= "running"
end)
T.wait("the warning", 5000, function()
  for i = notes_before + 1, #T.notes do
    if T.notes[i]:find("does not parse") then
      return true
    end
  end
  return false
end)
for i = notes_before + 1, #T.notes do
  if T.notes[i]:find("does not parse") then
    T.log("warning lines: " .. #vim.split(T.notes[i], "\n", { plain = true }))
    T.log("warning fits: " .. tostring(vim.fn.strdisplaywidth(T.notes[i]) < vim.o.columns))
  end
end
T.log("blocking: " .. tostring(vim.api.nvim_get_mode().blocking))
T.finish()

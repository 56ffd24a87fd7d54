-- :'<,'>KimiRefactor {instruction} streams the edit into the buffer (workspace/applyEdit) and
-- :write writes it; :KimiRefactor with no argument asks with vim.ui.input.
local T = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/kimi_test.lua")
T.setup()
T.require_commands({ "kimi.refactor" })
T.wait_indexed()
local s = T.stream()

local edits = 0
vim.api.nvim_buf_attach(T.buf, false, {
  on_lines = function()
    edits = edits + 1
  end,
})

vim.cmd("normal! ggVj\27") -- lines 1-2 (add), then leave visual mode: '< and '> stay
vim.cmd("'<,'>KimiRefactor add type hints")
local first = T.wait_run("refactor", 20000, function(r)
  return r.state ~= "running"
end)
T.log("refactor state: " .. first.state .. " (" .. tostring(first.message) .. ")")
T.log("buffer changes: " .. edits)
vim.cmd.write()

-- No argument: the instruction comes from vim.ui.input.
local asked
vim.ui.input = function(opts, on_confirm)
  asked = opts.prompt
  on_confirm("use an f-string")
end
vim.api.nvim_win_set_cursor(0, { 10, 6 }) -- inside greet()
vim.cmd("KimiRefactor")
T.log("asked: " .. tostring(asked))
T.wait_run("refactor", 20000, function(r)
  return r ~= first and r.state ~= "running"
end)
vim.wait(300, function() return false end)
vim.cmd.write()
T.log("FILE-BEGIN\n" .. table.concat(vim.fn.readfile(T.file), "\n") .. "\nFILE-END")
T.finish()

-- :'<,'>KimiRefactor {preset} streams the edit into the buffer (workspace/applyEdit) and
-- :write writes it; :KimiRefactor with no argument asks with vim.ui.input. The presets (for
-- the completion and to tell a preset from an instruction) come from the server.
local T = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/kimi_test.lua")
T.setup()
T.require_commands({ "kimi.refactor" })
T.wait_indexed()
local s = T.stream()

-- A script runs as one command, so Neovim never closes an undo block between the edits;
-- between two RPC messages the main loop does. Do what it does before each edit arrives.
local handler = T.client.handlers["workspace/applyEdit"]
T.client.handlers["workspace/applyEdit"] = function(...)
  vim.cmd("let &g:undolevels = &g:undolevels")
  return handler(...)
end

local edits = 0
vim.api.nvim_buf_attach(T.buf, false, {
  on_lines = function()
    edits = edits + 1
  end,
})

T.log("presets: " .. table.concat(vim.fn.getcompletion("KimiRefactor ", "cmdline"), ","))
vim.cmd("normal! ggVj\27") -- lines 1-2 (add), then leave visual mode: '< and '> stay
vim.cmd("'<,'>KimiRefactor types") -- the preset: "add type hints"
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
local before_second = vim.api.nvim_buf_get_lines(T.buf, 0, -1, false)
local edits_before_second = edits
vim.cmd("KimiRefactor")
T.log("asked: " .. tostring(asked))
T.wait_run("refactor", 20000, function(r)
  return r ~= first and r.state ~= "running"
end)
vim.wait(300, function() return false end)
T.log("second refactor buffer changes: " .. (edits - edits_before_second))
-- One action, one undo step, however many edits it streamed.
local after_second = vim.api.nvim_buf_get_lines(T.buf, 0, -1, false)
vim.cmd("undo")
T.log("one undo restores: " .. tostring(vim.deep_equal(vim.api.nvim_buf_get_lines(T.buf, 0, -1, false), before_second)))
vim.cmd("redo")
T.log("redo restores: " .. tostring(vim.deep_equal(vim.api.nvim_buf_get_lines(T.buf, 0, -1, false), after_second)))
vim.cmd.write()
T.log("FILE-BEGIN\n" .. table.concat(vim.fn.readfile(T.file), "\n") .. "\nFILE-END")
T.finish()

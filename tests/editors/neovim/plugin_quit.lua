-- The user quits Neovim a moment after it started (the server still indexing and sending
-- kimi/status): Neovim closes the pipes without a shutdown; the server must go quietly.
local T = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/kimi_test.lua")
T.setup()
vim.wait(tonumber(os.getenv("KIMI_TEST_QUIT_AFTER_MS") or "1500"), function() return false end)
T.log("OK")
-- What :qa does when the user quits: no explicit client:stop() first.
vim.cmd("qa!")

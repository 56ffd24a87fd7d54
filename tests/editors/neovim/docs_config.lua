-- The plain `vim.lsp.config` block of docs/editors.md, run as written (no plugin): the user's
-- code actions (vim.lsp.buf.code_action) explain with progress and an opened document, and
-- refactor through workspace/applyEdit.
local py = assert(os.getenv("KIMI_TEST_PY"))
local file = assert(os.getenv("KIMI_TEST_FILE"))
local snippet = assert(os.getenv("KIMI_TEST_SNIPPET"))
local function log(s) io.stdout:write(s .. "\n") io.stdout:flush() end
local function fail(s) log("FAIL: " .. s) os.exit(1) end
local function wait(what, ms, cond)
  if not vim.wait(ms, cond, 20) then fail("timed out waiting for " .. what) end
end
local _ = py

dofile(snippet)
vim.cmd.edit(file)
local buf = vim.api.nvim_get_current_buf()
local client
wait("the client", 20000, function()
  client = vim.lsp.get_clients({ name = "kimi_lsp", bufnr = buf })[1]
  return client ~= nil and client.initialized
end)
log("attached: " .. client.name .. " root " .. tostring(client.root_dir))
wait("the index", 20000, function()
  local r = client:request_sync("workspace/symbol", { query = "add" }, 2000, buf)
  return r ~= nil and r.result ~= nil and #r.result > 0
end)

local progress = {}
vim.api.nvim_create_autocmd("LspProgress", {
  callback = function(ev)
    local v = ev.data.params.value
    progress[#progress + 1] = v.kind .. ":" .. (v.title or v.message or "")
  end,
})
local function ended()
  for _, p in ipairs(progress) do
    if p:match("^end:") then return true end
  end
  return false
end

vim.api.nvim_win_set_cursor(0, { 2, 6 }) -- inside add()
vim.lsp.buf.code_action({ apply = true, filter = function(a) return a.title == "Kimi: Explain" end })
wait("the explain progress to end", 20000, ended)
local doc
wait("the explanation document", 10000, function()
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(b):match("/explanations/.+%.md$") then
      doc = b
      return true
    end
  end
  return false
end)
vim.fn.bufload(doc)
log("progress: " .. table.concat(progress, " | "))
log("DOC-BEGIN\n" .. table.concat(vim.api.nvim_buf_get_lines(doc, 0, -1, false), "\n") .. "\nDOC-END")

progress = {}
vim.api.nvim_set_current_win(vim.fn.bufwinid(buf))
vim.api.nvim_win_set_cursor(0, { 2, 6 })
vim.lsp.buf.code_action({
  apply = true,
  filter = function(a)
    return a.command ~= nil and a.command.arguments[1].preset == "types"
  end,
})
wait("the refactor progress to end", 20000, ended)
wait("the edit", 5000, function()
  return vim.api.nvim_buf_get_lines(buf, 0, 1, false)[1]:match("a: int") ~= nil
end)
vim.api.nvim_buf_call(buf, function() vim.cmd.write() end)
log("FILE-BEGIN\n" .. table.concat(vim.fn.readfile(file), "\n") .. "\nFILE-END")
client:stop()
vim.wait(3000, function() return vim.lsp.get_client_by_id(client.id) == nil end, 50)
log("OK")
vim.cmd("qa!")

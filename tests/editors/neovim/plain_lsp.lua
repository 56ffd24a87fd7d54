-- A Neovim with no kimi-specific code (just vim.lsp.start) drives kimi-lsp: code actions,
-- explain, a refactor applied through workspace/applyEdit, and a cancel. Prints one line per
-- step for the pytest driver; exits non-zero on failure.
local py = assert(os.getenv("KIMI_TEST_PY"))
local file = assert(os.getenv("KIMI_TEST_FILE"))
local function log(s) io.stdout:write(s .. "\n") io.stdout:flush() end
local function fail(s) log("FAIL: " .. s) os.exit(1) end

vim.cmd.edit(file)
local buf = vim.api.nvim_get_current_buf()
local uri = vim.uri_from_bufnr(buf)
local progress, streamed, ended = 0, 0, nil
local client_id = vim.lsp.start({
  name = "kimi-lsp",
  cmd = { py, "-m", "kimi_lsp" },
  root_dir = vim.fs.dirname(file),
  handlers = {
    ["$/progress"] = function() progress = progress + 1 end,
    ["kimi/stream"] = function(_, result)
      if result.kind == "text" then streamed = streamed + 1 end
      if result.kind == "end" then ended = result.message end
    end,
  },
}, { bufnr = buf })
local client = vim.lsp.get_client_by_id(client_id) or fail("no client")
if not vim.wait(20000, function() return client.initialized end, 50) then fail("initialize") end
log("initialized")

local indexed = vim.wait(20000, function()
  local r = client:request_sync("workspace/symbol", { query = "add" }, 2000, buf)
  return r ~= nil and r.result ~= nil and #r.result > 0
end, 100)
if not indexed then fail("index") end

local at = { line = 1, character = 6 }
local r = client:request_sync("textDocument/codeAction", {
  textDocument = { uri = uri },
  range = { start = at, ["end"] = at },
  context = { diagnostics = {} },
}, 5000, buf)
local titles = {}
for _, a in ipairs((r and r.result) or {}) do titles[#titles + 1] = a.title end
log("actions: " .. table.concat(titles, "|"))

local e = client:request_sync("workspace/executeCommand", {
  command = "kimi.explain", arguments = { { uri = uri, position = at } },
}, 20000, buf)
if not e or e.err then fail("explain: " .. vim.inspect(e)) end
log("explain: " .. e.result.text)

local f = client:request_sync("workspace/executeCommand", {
  command = "kimi.refactor",
  arguments = { { uri = uri, range = { start = { line = 0, character = 0 },
                                       ["end"] = { line = 2, character = 0 } }, preset = "types" } },
}, 20000, buf)
if not f or f.err then fail("refactor: " .. vim.inspect(f)) end
vim.cmd.write()
log("refactor applied: " .. tostring(f.result.applied))
log("file: " .. table.concat(vim.fn.readfile(file), "\\n"))

-- A slow explain, cancelled with kimi.cancel once text streams.
streamed, ended = 0, nil
client:request("workspace/executeCommand", {
  command = "kimi.explain", arguments = { { uri = uri, position = { line = 5, character = 6 } } },
}, function() end, buf)
if not vim.wait(20000, function() return streamed > 0 end, 20) then fail("no stream") end
local c = client:request_sync("workspace/executeCommand", {
  command = "kimi.cancel", arguments = { {} },
}, 5000, buf)
log("cancelled: " .. tostring(c and c.result and c.result.cancelled))
-- Neovim mutes RequestCancelled answers; the run's end is visible in kimi/stream.
if not vim.wait(10000, function() return ended ~= nil end, 20) then fail("no end after cancel") end
log("cancel outcome: " .. tostring(ended) .. " after " .. streamed .. " pieces")
log("progress notifications: " .. progress)
client:stop()
vim.wait(3000, function() return vim.lsp.get_client_by_id(client_id) == nil end, 50)
log("OK")
vim.cmd("qa!")

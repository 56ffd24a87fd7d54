-- A refactor of the file's last function, written as a review block, then rejected and, on a
-- second run, accepted, with "€", "—", "“”", "🙂" and CJK in and around it. Neovim negotiates
-- UTF-8 positions: every column the server sends must count bytes, or an edit cuts a
-- character in two. The driver compares the written files byte for byte.
local T = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/kimi_test.lua")
T.setup()
T.require_commands({ "kimi.refactor" })
T.wait_indexed("total")
T.log("encoding: " .. T.client.offset_encoding)

local function line_of(pattern)
  for i, l in ipairs(vim.api.nvim_buf_get_lines(T.buf, 0, -1, false)) do
    if l:find(pattern, 1, true) then
      return i
    end
  end
  return nil
end

local runs = 0
local function refactor()
  local before = T.find_run("refactor", nil)
  vim.api.nvim_win_set_cursor(0, { assert(line_of("s = 0")), 4 }) -- inside total()
  vim.cmd("KimiRefactor use sum()")
  local run = T.wait_run("refactor", 20000, function(r)
    return r ~= before and r.state ~= "running"
  end)
  runs = runs + 1
  T.log("refactor " .. runs .. ": " .. run.state .. " (" .. tostring(run.message) .. ")")
  T.log("review block: " .. tostring(line_of("<<<<<<< original") ~= nil))
end

local function review(title)
  local at = assert(line_of("<<<<<<< original"), "no review block") - 1
  local params = {
    textDocument = { uri = T.uri },
    range = { start = { line = at, character = 0 }, ["end"] = { line = at, character = 0 } },
    context = { diagnostics = {} },
  }
  local reply = T.client:request_sync("textDocument/codeAction", params, 5000, T.buf)
  for _, action in ipairs((reply and reply.result) or {}) do
    if action.title == title then
      vim.lsp.util.apply_workspace_edit(action.edit, T.client.offset_encoding)
      T.log(title .. " applied")
      return
    end
  end
  T.fail("no code action " .. title)
end

refactor()
review("Kimi: Reject")
vim.cmd.write()
vim.uv.fs_copyfile(T.file, T.file .. ".rejected")
refactor()
review("Kimi: Accept")
vim.cmd.write()
-- The server's copy of the buffer stayed right all along: it still finds the function.
local r = T.client:request_sync("textDocument/documentSymbol", { textDocument = { uri = T.uri } }, 5000, T.buf)
local names = {}
for _, s in ipairs((r and r.result) or {}) do
  names[#names + 1] = s.name .. "@" .. s.selectionRange.start.line .. ":" .. s.selectionRange.start.character
end
T.log("symbols: " .. table.concat(names, ","))
T.finish()

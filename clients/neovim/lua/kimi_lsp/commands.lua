-- The user commands: each sends one `workspace/executeCommand` with one object argument
-- (docs/architecture.md, "Commands and notifications") for the visual selection or the cursor.
local config = require("kimi_lsp.config")
local stream = require("kimi_lsp.stream")

local M = {}

local has_011 = vim.fn.has("nvim-0.11") == 1

local function get_clients(filter)
  return (vim.lsp.get_clients or vim.lsp.get_active_clients)(filter)
end

--- The kimi-lsp client of `bufnr` (else any running one), or nil with a message.
---@param bufnr integer?
function M.client(bufnr)
  local clients = get_clients({ name = "kimi_lsp", bufnr = bufnr or vim.api.nvim_get_current_buf() })
  if #clients == 0 then
    clients = get_clients({ name = "kimi_lsp" })
  end
  if #clients == 0 then
    vim.notify("Kimi: kimi-lsp is not running for this buffer (:checkhealth kimi_lsp)", vim.log.levels.WARN)
    return nil
  end
  return clients[1]
end

local function request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

--- Runs server command `name` with `arg`; `done(err, result)` gets the answer.
---@param client vim.lsp.Client
---@param name string
---@param arg table
---@param done fun(err: table?, result: any)
function M.execute(client, name, arg, done)
  local commands = vim.tbl_get(client.server_capabilities or {}, "executeCommandProvider", "commands") or {}
  -- `done` is called exactly once, also when nothing was sent (callers count pending runs).
  if not vim.tbl_contains(commands, name) then
    return done({ message = "this kimi-lsp has no command " .. name .. " (update it)" }, nil)
  end
  -- vim.empty_dict() so that `{}` goes out as an object, not as an array.
  local argument = next(arg) == nil and vim.empty_dict() or arg
  local sent = request(client, "workspace/executeCommand", { command = name, arguments = { argument } }, function(err, result)
    done(err, result)
  end, vim.api.nvim_get_current_buf())
  if not sent then
    done({ message = "kimi-lsp is not running (:checkhealth kimi_lsp)" }, nil)
  end
end

--- `{uri, range}` for a range command run from visual mode (or with a line range), else
--- `{uri, position}` at the cursor; LSP positions in the client's encoding.
---@param client vim.lsp.Client
---@param opts table? the user command's opts (range, line1, line2)
function M.target(client, opts)
  local bufnr = vim.api.nvim_get_current_buf()
  local enc = client.offset_encoding or "utf-16"
  local uri = vim.uri_from_bufnr(bufnr)
  if opts and opts.range and opts.range > 0 then
    local s = vim.api.nvim_buf_get_mark(bufnr, "<")
    local e = vim.api.nvim_buf_get_mark(bufnr, ">")
    local from_visual = s[1] == opts.line1 and e[1] == opts.line2
    local last = vim.api.nvim_buf_get_lines(bufnr, opts.line2 - 1, opts.line2, false)[1] or ""
    if from_visual and vim.fn.visualmode() == "v" and e[2] < #last then
      local params = vim.lsp.util.make_given_range_params(s, e, bufnr, enc)
      return { uri = uri, range = params.range }
    end
    -- Whole lines: from the first line's start to the start of the line after the last.
    local count = vim.api.nvim_buf_line_count(bufnr)
    local stop = opts.line2 < count and { line = opts.line2, character = 0 }
      or { line = opts.line2 - 1, character = vim.lsp.util.character_offset(bufnr, opts.line2 - 1, #last, enc) }
    return { uri = uri, range = { start = { line = opts.line1 - 1, character = 0 }, ["end"] = stop } }
  end
  local pos = vim.lsp.util.make_position_params(0, enc).position
  return { uri = uri, position = pos }
end

local function notify_error(name, err)
  vim.notify("Kimi: " .. name .. " failed: " .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
end

-- window/showDocument asks are skipped while one of these runs: the float already shows it.
M.shown_in_float = 0

local function in_float(action, fn)
  local floated = config.options.float.actions[action]
  if floated then
    M.shown_in_float = M.shown_in_float + 1
  end
  return function(...)
    if floated then
      M.shown_in_float = M.shown_in_float - 1
    end
    return fn(...)
  end
end

--- Opens `text` in a scratch Markdown float (quota, context).
function M.show_markdown(title, text)
  local run = {
    id = "view-" .. title,
    action = "view",
    title = title,
    client_id = 0,
    text = text,
    reasoning = "",
    state = "running",
  }
  local old = stream.runs[run.id]
  if old and old.buf and vim.api.nvim_buf_is_valid(old.buf) then
    vim.api.nvim_buf_delete(old.buf, { force = true })
  end
  stream.runs[run.id] = run
  return stream.open(run.id)
end

function M.explain(opts)
  local client = M.client()
  if not client then
    return
  end
  M.execute(client, "kimi.explain", M.target(client, opts), in_float("explain", function(err, result)
    if err then
      return notify_error("explain", err)
    end
    if not config.options.float.actions.explain and result and result.text then
      M.show_markdown("Kimi: Explain", result.text)
    end
  end))
end

local presets_of = {} -- client id -> the preset names its server listed

--- The refactor presets the server knows (`kimi.refactorPresets`: the one list, in
--- kimi_lsp/actions/code_actions.py), asked once per client; `:KimiRefactor types` sends one
--- as `preset`. Empty when the server is older or does not answer within a second.
---@param client vim.lsp.Client?
---@return string[]
function M.presets(client)
  if not client then
    return {}
  end
  if presets_of[client.id] then
    return presets_of[client.id]
  end
  local commands = vim.tbl_get(client.server_capabilities or {}, "executeCommandProvider", "commands") or {}
  if not vim.tbl_contains(commands, "kimi.refactorPresets") then
    return {}
  end
  local params = { command = "kimi.refactorPresets", arguments = { vim.empty_dict() } }
  local reply
  if has_011 then
    reply = client:request_sync("workspace/executeCommand", params, 1000, vim.api.nvim_get_current_buf())
  else
    reply = client.request_sync("workspace/executeCommand", params, 1000, vim.api.nvim_get_current_buf())
  end
  local names = {}
  for _, p in ipairs(vim.tbl_get(reply or {}, "result", "presets") or {}) do
    table.insert(names, p.preset)
  end
  if #names > 0 then
    presets_of[client.id] = names
  end
  return names
end

local function is_preset(client, s)
  return vim.tbl_contains(M.presets(client), s)
end

local function ask(prompt, fn)
  vim.ui.input({ prompt = prompt }, function(answer)
    if answer and vim.trim(answer) ~= "" then
      fn(vim.trim(answer))
    end
  end)
end

function M.refactor(opts)
  local client = M.client()
  if not client then
    return
  end
  local arg = M.target(client, opts)
  local function run(instruction)
    if is_preset(client, instruction) then
      arg.preset = instruction
    else
      arg.instruction = instruction
    end
    M.execute(client, "kimi.refactor", arg, function(err, result)
      if err then
        return notify_error("refactor", err)
      end
      if result and not result.applied and result.reason then
        vim.notify("Kimi: refactor not applied: " .. tostring(result.reason), vim.log.levels.WARN)
      end
    end)
  end
  if opts.args and vim.trim(opts.args) ~= "" then
    run(vim.trim(opts.args))
  else
    ask("Kimi refactor: ", run)
  end
end

function M.tests(opts)
  local client = M.client()
  if not client then
    return
  end
  M.execute(client, "kimi.generateTests", M.target(client, opts), function(err, result)
    if err then
      return notify_error("tests", err)
    end
    if result and result.applied and result.testUri then
      vim.notify("Kimi: tests written to " .. vim.uri_to_fname(result.testUri), vim.log.levels.INFO)
    end
  end)
end

function M.workspace(opts)
  local client = M.client()
  if not client then
    return
  end
  local arg = {}
  if opts.bang then
    arg.scope = config.options.workspace_scope
  else
    local t = M.target(client, nil)
    arg.symbol = { uri = t.uri, position = t.position }
  end
  local function run(instruction)
    arg.instruction = instruction
    M.execute(client, "kimi.refactorWorkspace", arg, in_float("workspace", function(err, result)
      if err then
        return notify_error("workspace refactor", err)
      end
      result = result or {}
      local changed = type(result.changed) == "table" and #result.changed or 0
      local msg = result.applied
          and string.format("Kimi: changed %d file(s); :wall saves them", changed)
        or ("Kimi: workspace refactor applied nothing" .. (result.reason and (" (" .. tostring(result.reason) .. ")") or ""))
      vim.notify(msg, vim.log.levels.INFO)
    end))
  end
  if opts.args and vim.trim(opts.args) ~= "" then
    run(vim.trim(opts.args))
  else
    ask("Kimi workspace refactor: ", run)
  end
end

function M.context(opts)
  local client = M.client()
  if not client then
    return
  end
  local t = M.target(client, opts)
  if opts.args and opts.args ~= "" then
    t.action = opts.args
  end
  M.shown_in_float = M.shown_in_float + 1
  M.execute(client, "kimi.showContext", t, function(err, result)
    M.shown_in_float = M.shown_in_float - 1
    if err then
      return notify_error("context", err)
    end
    M.show_markdown("Kimi: Context", result.text or "")
  end)
end

function M.cancel()
  local client = M.client()
  if not client then
    return
  end
  M.execute(client, "kimi.cancel", {}, function(err, result)
    if err then
      return notify_error("cancel", err)
    end
    vim.notify(string.format("Kimi: cancelled %d run(s)", (result or {}).cancelled or 0), vim.log.levels.INFO)
  end)
end

--- The quota snapshot as Markdown.
function M.quota_markdown(q)
  local out = { "# Kimi quota", "" }
  if type(q.limits) == "table" then
    vim.list_extend(out, { "| limit | value |", "|---|---|" })
    for _, k in ipairs({ "concurrency", "rpm", "tpm", "tpd" }) do
      out[#out + 1] = string.format("| %s | %s |", k, tostring(q.limits[k] or "–"))
    end
    out[#out + 1] = ""
  end
  local fields = {
    { "tokensLastMinute", "tokens in the last minute" },
    { "tokensLastDay", "tokens in the last day" },
    { "requestsLastMinute", "requests in the last minute" },
    { "openRequests", "open requests" },
    { "waiting", "waiting" },
    { "cooldownSeconds", "cool-down (s)" },
    { "store", "store" },
  }
  for _, f in ipairs(fields) do
    if q[f[1]] ~= nil then
      out[#out + 1] = string.format("- %s: %s", f[2], tostring(q[f[1]]))
    end
  end
  if type(q.cache) == "table" then
    out[#out + 1] = string.format(
      "- cache: %s hits, %s misses, $%.2f saved",
      tostring(q.cache.hits or 0),
      tostring(q.cache.misses or 0),
      tonumber(q.cache.savedUsd) or 0
    )
  end
  return table.concat(out, "\n")
end

function M.quota()
  local client = M.client()
  if not client then
    return
  end
  M.execute(client, "kimi.quota", {}, function(err, result)
    if err then
      return notify_error("quota", err)
    end
    M.show_markdown("Kimi: Quota", M.quota_markdown(result or {}))
  end)
end

--- The window/showDocument handler: skips the explanation/context documents the float shows,
--- however the run was started (:KimiExplain, `<leader>ke` or the code-action menu).
function M.show_document(err, params, ctx, cfg)
  local quiet = params and not params.takeFocus and not params.external
  local run = stream.runs[stream.running_for(ctx.client_id) or ""]
  if quiet and (M.shown_in_float > 0 or (run and config.options.float.actions[run.action])) then
    return { success = true }
  end
  return vim.lsp.handlers["window/showDocument"](err, params, ctx, cfg)
end

function M.create()
  local defs = {
    KimiExplain = { M.explain, { range = true, desc = "Kimi: explain the selection or the symbol at the cursor" } },
    KimiRefactor = {
      M.refactor,
      {
        range = true,
        nargs = "*",
        desc = "Kimi: refactor the selection or the symbol ({instruction} or a preset)",
        complete = function()
          return M.presets(get_clients({ name = "kimi_lsp" })[1])
        end,
      },
    },
    KimiTests = { M.tests, { range = true, desc = "Kimi: generate tests for the selection or the symbol" } },
    KimiWorkspaceRefactor = {
      M.workspace,
      { nargs = "*", bang = true, desc = "Kimi: refactor the symbol and its uses (! = the workspace scope)" },
    },
    KimiContext = {
      M.context,
      {
        range = true,
        nargs = "?",
        desc = "Kimi: show the exact messages an action would send",
        complete = function()
          return { "explain", "refactor", "tests" }
        end,
      },
    },
    KimiCancel = { M.cancel, { desc = "Kimi: cancel every running action" } },
    KimiQuota = { M.quota, { desc = "Kimi: show the quota snapshot" } },
    KimiStream = {
      function()
        if stream.is_open() then
          stream.close()
        else
          stream.open()
        end
      end,
      { desc = "Kimi: show or hide the last stream" },
    },
  }
  for name, def in pairs(defs) do
    vim.api.nvim_create_user_command(name, def[1], def[2])
  end
end

--- Buffer-local keymaps (normal and visual) where kimi-lsp attaches.
function M.keymaps(bufnr)
  local maps = config.options.keymaps
  if not maps then
    return
  end
  local function map(key, modes, rhs, desc)
    if maps[key] then
      vim.keymap.set(modes, maps[key], rhs, { buffer = bufnr, desc = desc, silent = true })
    end
  end
  map("explain", { "n", "x" }, ":KimiExplain<CR>", "Kimi: explain")
  map("refactor", { "n", "x" }, ":KimiRefactor<CR>", "Kimi: refactor")
  map("tests", { "n", "x" }, ":KimiTests<CR>", "Kimi: generate tests")
  map("workspace", "n", "<Cmd>KimiWorkspaceRefactor<CR>", "Kimi: workspace refactor")
  map("context", { "n", "x" }, ":KimiContext<CR>", "Kimi: show context")
  map("cancel", "n", "<Cmd>KimiCancel<CR>", "Kimi: cancel")
  map("quota", "n", "<Cmd>KimiQuota<CR>", "Kimi: quota")
end

return M

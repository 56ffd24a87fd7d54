-- :checkhealth kimi_lsp — the server is found and runs, its version, the key is set, and
-- what `kimi-lsp doctor --json` says about settings, state dir and the API.
local config = require("kimi_lsp.config")

local M = {}

local h = vim.health

local function run(argv, timeout_ms)
  local ok, proc = pcall(vim.system, argv, { text = true, env = config.options.cmd_env })
  if not ok then
    return nil, tostring(proc)
  end
  local res = proc:wait(timeout_ms)
  if res.signal ~= 0 and res.code ~= 0 and (res.stdout or "") == "" then
    return nil, "timed out or killed after " .. timeout_ms .. " ms"
  end
  return res, nil
end

local function with(argv, extra)
  local out = vim.list_extend({}, argv)
  return vim.list_extend(out, extra)
end

function M.check()
  local o = config.options
  h.start("kimi_lsp: Neovim")
  if vim.fn.has("nvim-0.10") == 1 then
    h.ok("Neovim " .. tostring(vim.version()) .. (vim.lsp.config and " (vim.lsp.config/enable)" or ""))
  else
    h.error("Neovim 0.10 or newer is needed")
  end

  h.start("kimi_lsp: server")
  local exe = o.cmd[1]
  if vim.fn.executable(exe) ~= 1 then
    h.error(
      "server not found: " .. exe,
      { "install it (pipx install kimi-lsp, or make run in a checkout)", "or set cmd in setup({ cmd = { '/path/to/kimi-lsp' } })" }
    )
    return
  end
  h.ok("server found: " .. vim.fn.exepath(exe))
  local res, err = run(with(o.cmd, { "--version" }), 15000)
  if res and res.code == 0 then
    h.ok("version: " .. vim.trim(res.stdout ~= "" and res.stdout or res.stderr))
  else
    h.error("`" .. table.concat(o.cmd, " ") .. " --version` failed: " .. (err or vim.trim(res.stderr or "")))
  end
  local clients = (vim.lsp.get_clients or vim.lsp.get_active_clients)({ name = "kimi_lsp" })
  if #clients > 0 then
    h.ok(string.format("running: %d client(s), root %s", #clients, tostring(clients[1].root_dir)))
  else
    h.info("not running in this session (it starts for: " .. table.concat(o.filetypes, ", ") .. ")")
  end

  h.start("kimi_lsp: API key")
  local from
  for _, name in ipairs(config.key_env) do
    local v = (o.cmd_env and o.cmd_env[name]) or vim.env[name]
    if v and vim.trim(v) ~= "" then
      from = name
      break
    end
  end
  if from then
    h.ok("key set (" .. from .. ")")
  elseif o.settings.apiKey or o.settings.api_key then
    h.warn("key set in setup() settings", { "prefer the environment: export MOONSHOT_API_KEY=sk-..." })
  else
    h.error("key not set", { "export MOONSHOT_API_KEY=sk-... before starting Neovim" })
  end

  h.start("kimi_lsp: kimi-lsp doctor")
  res, err = run(with(o.cmd, { "doctor", "--json" }), 30000)
  if not res then
    h.error("doctor did not run: " .. tostring(err))
    return
  end
  local ok, report = pcall(vim.json.decode, res.stdout or "")
  if not ok or type(report) ~= "table" then
    h.error("doctor gave no JSON report: " .. vim.trim((res.stderr or "") .. (res.stdout or "")))
    return
  end
  for _, c in ipairs(report.checks or {}) do
    local line = c.name .. ": " .. tostring(c.detail)
    local advice = (c.fix and c.fix ~= "") and { c.fix } or nil
    if c.ok then
      h.ok(line)
    elseif c.required then
      h.error(line, advice)
    else
      h.warn(line, advice)
    end
  end
  if report.ok then
    h.ok("doctor: everything needed is in place")
  end
end

return M

// Which server to start, and the `kimi.*` settings as the server reads them.
import * as fs from "fs";
import * as path from "path";
import * as vscode from "vscode";

export const SECTION = "kimi";

// Why nothing runs in Restricted Mode (package.json's untrustedWorkspaces says the same).
export const RESTRICTED =
  "Kimi is off in Restricted Mode: it would start the kimi-lsp program the workspace's settings name and send this workspace's code to the Kimi API. Trust the workspace to turn it on.";

// Keys only the extension uses: never sent to the server (it would report them as unknown).
const CLIENT_ONLY = new Set(["serverPath", "pythonPath", "refactorScope", "trace"]);

// The server's settings (kimi_lsp/config.py, camelCase). Only values the user actually set
// are sent, so the server's environment (KIMI_LSP_*) still wins over our defaults.
export const SERVER_KEYS = [
  "model",
  "baseUrl",
  "tier",
  "limits",
  "quotaStore",
  "quotaReserve",
  "cache",
  "reviewMode",
  "hoverWaitMs",
  "contextBudget",
  "workspaceConfirmUsd",
  "stateDir",
  "logLevel",
  "maxFileBytes",
  "requestTimeoutS",
  "indexWaitMs",
  "contextRepositoryBudget",
  "thinking",
  "thinkingAllowance",
  "tools",
  "toolRounds",
  "toolTokens",
] as const;

export interface ServerCommand {
  command: string;
  args: string[];
  origin: string;
}

/** The settings the user set for the server (workspace-folder > workspace > user). */
export function serverSettings(scope?: vscode.ConfigurationScope): Record<string, unknown> {
  const cfg = vscode.workspace.getConfiguration(SECTION, scope);
  const out: Record<string, unknown> = {};
  for (const key of SERVER_KEYS) {
    if (CLIENT_ONLY.has(key)) continue;
    const found = cfg.inspect(key);
    const value = found?.workspaceFolderValue ?? found?.workspaceValue ?? found?.globalValue;
    if (value === undefined || value === "") continue;
    out[key] = value;
  }
  return out;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** `kimi-lsp` on PATH, the way a shell would find it. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const exts = process.platform === "win32" ? (env.PATHEXT ?? ".EXE;.CMD;.BAT").split(";") : [""];
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext);
      if (isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

function expandHome(p: string): string {
  return p.startsWith("~/") ? path.join(process.env.HOME ?? "", p.slice(2)) : p;
}

/**
 * How to start the server: `kimi.serverPath`, else `kimi.pythonPath -m kimi_lsp`, else
 * `kimi-lsp` from PATH. Undefined when none is available.
 */
export function resolveServerCommand(): ServerCommand | undefined {
  const cfg = vscode.workspace.getConfiguration(SECTION);
  const serverPath = cfg.get<string>("serverPath", "").trim();
  if (serverPath) {
    return { command: expandHome(serverPath), args: ["serve"], origin: "kimi.serverPath" };
  }
  const python = cfg.get<string>("pythonPath", "").trim();
  if (python) {
    return { command: expandHome(python), args: ["-m", "kimi_lsp", "serve"], origin: "kimi.pythonPath" };
  }
  const onPath = findOnPath("kimi-lsp");
  if (onPath) return { command: onPath, args: ["serve"], origin: "PATH" };
  return undefined;
}

/** Settings whose change needs a new server process rather than a didChangeConfiguration. */
export function needsRestart(e: vscode.ConfigurationChangeEvent): boolean {
  return ["serverPath", "pythonPath", "stateDir"].some((k) => e.affectsConfiguration(`${SECTION}.${k}`));
}

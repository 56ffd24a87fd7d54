// The kimi-lsp process and the LSP client talking to it.
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ResponseError,
  ServerOptions,
  State,
  TransportKind,
} from "vscode-languageclient/node";
import { AnswerPanel, StreamEvent, explainTitle } from "./panel";
import { RESTRICTED, SECTION, resolveServerCommand, serverSettings } from "./settings";
import { KimiStatus, StatusBar } from "./status";

export const SECRET_KEY = "kimi.apiKey";
// The server reads this one first (kimi_lsp/config.py API_KEY_ENV), so the stored key wins
// over a MOONSHOT_API_KEY the editor inherited; the environment keeps it out of LSP traces.
const KEY_ENV = "KIMI_LSP_API_KEY";

// Languages the server's index reads (kimi_lsp/index/languages.py), by VS Code language id.
export const LANGUAGES = [
  "python",
  "javascript",
  "javascriptreact",
  "typescript",
  "typescriptreact",
  "go",
  "rust",
  "java",
  "c",
  "cpp",
  "ruby",
  "lua",
  "csharp",
  "php",
  "scala",
];

// Errors the server has already shown to the user with window/showMessage.
const RequestFailed = -32803;
const RequestCancelled = -32800;

export class MissingServerCommand extends Error {
  constructor(command: string) {
    super(`The running kimi-lsp does not offer \`${command}\` yet; update kimi-lsp (git pull and make install in its clone).`);
  }
}

export class KimiServer implements vscode.Disposable {
  client: LanguageClient | undefined;
  lastStatus: KimiStatus = {};
  private starting: Promise<void> | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly output: vscode.LogOutputChannel,
    private readonly status: StatusBar,
    private readonly panel: AnswerPanel,
  ) {}

  async start(): Promise<void> {
    if (this.starting) return this.starting;
    this.starting = this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async doStart(): Promise<void> {
    if (!vscode.workspace.isTrusted) return; // activate() shows why; trust starts it
    const cmd = resolveServerCommand();
    if (!cmd) {
      const msg =
        "Kimi: cannot find kimi-lsp. Run `make install` in your kimi-lsp clone and set kimi.serverPath to its .venv/bin/kimi-lsp (or kimi.pythonPath).";
      this.status.stopped(msg);
      const choice = await vscode.window.showErrorMessage(msg, "Open Settings");
      if (choice) await vscode.commands.executeCommand("workbench.action.openSettings", "kimi.");
      return;
    }
    const env: NodeJS.ProcessEnv = { ...process.env };
    const key = await this.context.secrets.get(SECRET_KEY);
    if (key) env[KEY_ENV] = key;
    const stateDir = vscode.workspace.getConfiguration(SECTION).get<string>("stateDir", "");
    if (stateDir) env.KIMI_LSP_STATE_DIR = stateDir;
    // TransportKind.stdio appends `--stdio` itself.
    this.output.info(`starting ${cmd.command} ${cmd.args.join(" ")} --stdio (from ${cmd.origin})`);
    const serverOptions: ServerOptions = {
      command: cmd.command,
      args: cmd.args,
      transport: TransportKind.stdio,
      options: { env },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: LANGUAGES.map((language) => ({ scheme: "file", language })),
      outputChannel: this.output,
      initializationOptions: () => serverSettings(),
      middleware: {
        // Code actions run the server's commands through here: note Explain's symbol so its
        // panel entry is titled with it from the first streamed token.
        executeCommand: async (command, args: unknown[], next) => {
          if (command === "kimi.explain") this.panel.expect("explain", explainTitle(symbolAt(args[0])));
          const result: unknown = await next(command, args);
          if (command === "kimi.explain") this.retitleExplain(result);
          return result;
        },
        window: {
          // One Explain view: the panel. The explanation's Markdown file would replace the
          // user's preview tab; the other documents (tests, context, quota) open as asked.
          showDocument: async (params, token, next) => {
            if (!params.takeFocus && !params.external && this.panel.streaming("explain")) return { success: true };
            return next(params, token);
          },
        },
        workspace: {
          // Answer `workspace/configuration` for `kimi` with what the user set, nothing else.
          configuration: (params): unknown[] =>
            params.items.map((item): unknown => {
              const scope = item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined;
              if (item.section === SECTION) return serverSettings(scope);
              if (!item.section) return null;
              return vscode.workspace.getConfiguration(undefined, scope).get<unknown>(item.section) ?? null;
            }),
        },
      },
    };
    const client = new LanguageClient("kimi", "Kimi", serverOptions, clientOptions);
    client.onNotification("kimi/status", (status: KimiStatus) => {
      this.lastStatus = status;
      this.status.update(status);
    });
    client.onNotification("kimi/stream", (event: StreamEvent) => {
      if (event.kind === "start") this.status.runStarted(event.runId);
      if (event.kind === "end" || event.kind === "error") this.status.runEnded(event.runId);
      this.panel.handle(event, event.action === "explain");
    });
    client.onDidChangeState((e) => {
      if (e.newState === State.Stopped) this.status.stopped("Kimi: the server stopped (Kimi: Restart Server).");
      void vscode.commands.executeCommand("setContext", "kimi.active", e.newState === State.Running);
    });
    this.client = client;
    try {
      await client.start();
      this.status.update(this.lastStatus);
      const hover = Boolean(client.initializeResult?.capabilities.hoverProvider);
      this.output.info(`kimi-lsp started; hover: ${hover ? "yes" : "no"}; commands: ${this.commands().join(", ")}`);
    } catch (err) {
      this.status.stopped(`Kimi: the server did not start: ${String(err)}`);
      void vscode.window.showErrorMessage(`Kimi: kimi-lsp did not start (${String(err)}). See Kimi: Show Server Log.`);
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client && client.state !== State.Stopped) await client.stop(5000).catch(() => undefined);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Tell the running server the settings changed (it re-reads them, no restart). */
  settingsChanged(): void {
    if (this.client?.state !== State.Running) return;
    void this.client.sendNotification(DidChangeConfigurationNotification.type, {
      settings: { [SECTION]: serverSettings() },
    });
  }

  /** The commands the running server offers (`executeCommandProvider.commands`). */
  commands(): string[] {
    return this.client?.initializeResult?.capabilities.executeCommandProvider?.commands ?? [];
  }

  async ready(): Promise<LanguageClient> {
    if (!vscode.workspace.isTrusted) throw new Error(RESTRICTED);
    if (this.starting) await this.starting;
    if (!this.client || this.client.state !== State.Running) await this.start();
    if (!this.client || this.client.state !== State.Running) throw new Error("Kimi: the server is not running.");
    return this.client;
  }

  /** The explained symbol as the server's result names it (`{runId, symbol}`). */
  retitleExplain(result: unknown): void {
    const r = result as { runId?: string; symbol?: string } | undefined;
    if (r && typeof r.symbol === "string") this.panel.retitle(r.runId, explainTitle(r.symbol));
  }

  /** `workspace/executeCommand` with the contract's single object argument. */
  async execute<R>(command: string, arg: object, token?: vscode.CancellationToken): Promise<R | undefined> {
    const client = await this.ready();
    if (!this.commands().includes(command)) throw new MissingServerCommand(command);
    try {
      return (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [arg] }, token)) as R;
    } catch (err) {
      if (err instanceof ResponseError && (err.code === RequestFailed || err.code === RequestCancelled)) {
        return undefined; // the server told the user already, or the user cancelled
      }
      throw err;
    }
  }

  dispose(): void {
    void this.stop();
  }
}

/** The identifier at a command argument's `position` (or its range's start), if open. */
export function symbolAt(arg: unknown): string | undefined {
  const a = arg as { uri?: string; position?: { line: number; character: number }; range?: { start: { line: number; character: number } } } | undefined;
  const pos = a?.position ?? a?.range?.start;
  if (!a?.uri || !pos) return undefined;
  const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === a.uri);
  if (!doc) return undefined;
  const at = new vscode.Position(pos.line, pos.character);
  const word = doc.getWordRangeAtPosition(at);
  return word ? doc.getText(word) : undefined;
}

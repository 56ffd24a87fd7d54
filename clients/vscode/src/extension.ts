// Entry point: the status bar, the answers panel, the server and the commands.
import * as vscode from "vscode";
import { registerCommands } from "./commands";
import { AnswerPanel } from "./panel";
import { KimiServer } from "./server";
import { SECTION, needsRestart } from "./settings";
import { StatusBar } from "./status";

let server: KimiServer | undefined;

export interface KimiApi {
  server: KimiServer;
  panel: AnswerPanel;
}

export async function activate(context: vscode.ExtensionContext): Promise<KimiApi> {
  const output = vscode.window.createOutputChannel("Kimi", { log: true });
  const status = new StatusBar();
  const panel = new AnswerPanel();
  server = new KimiServer(context, output, status, panel);
  context.subscriptions.push(output, status, panel, server);
  registerCommands(context, server, panel);
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(SECTION) || !server) return;
      if (needsRestart(e)) void server.restart();
      else server.settingsChanged();
    }),
  );
  await server.start();
  return { server, panel };
}

export async function deactivate(): Promise<void> {
  await server?.stop();
  server = undefined;
}

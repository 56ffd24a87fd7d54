// Entry point: the status bar, the answers panel, the server and the commands.
import * as vscode from "vscode";
import { registerCommands } from "./commands";
import { AnswerPanel } from "./panel";
import { KimiServer } from "./server";
import { RESTRICTED, SECTION, needsRestart } from "./settings";
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
    vscode.commands.registerCommand("kimi.client.whyOff", () =>
      vscode.window.showInformationMessage(
        vscode.workspace.isTrusted ? "Kimi is on: this workspace is trusted." : RESTRICTED,
      ),
    ),
  );
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(SECTION) || !server) return;
      if (needsRestart(e)) void server.restart();
      else server.settingsChanged();
    }),
  );
  if (!vscode.workspace.isTrusted) {
    // Nothing starts: the workspace's settings could name the program to run, and its code
    // would go to the API. The status item and a message say why; trusting turns Kimi on.
    status.restricted(RESTRICTED);
    output.warn(RESTRICTED);
    void vscode.window.showWarningMessage(RESTRICTED, "Manage Workspace Trust").then((choice) => {
      if (choice) void vscode.commands.executeCommand("workbench.trust.manage");
    });
    context.subscriptions.push(
      vscode.workspace.onDidGrantWorkspaceTrust(() => {
        status.trusted();
        void server?.start();
      }),
    );
    return { server, panel };
  }
  await server.start();
  return { server, panel };
}

export async function deactivate(): Promise<void> {
  await server?.stop();
  server = undefined;
}

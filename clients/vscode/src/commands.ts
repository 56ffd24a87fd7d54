// The palette and context-menu commands: each gathers its argument object and calls the
// server's command of the same name (docs/architecture.md, "Commands and notifications").
import * as vscode from "vscode";
import { AnswerPanel, explainTitle } from "./panel";
import { KimiServer, MissingServerCommand, SECRET_KEY, symbolAt } from "./server";

const RECENT_KEY = "kimi.recentInstructions";
const RECENT_MAX = 10;

/** A refactor preset as the server lists it (`kimi.refactorPresets`). */
interface Preset {
  preset: string;
  instruction: string;
}

let presetList: Preset[] | undefined;

/** The server's refactor presets (the one list, kimi_lsp/actions/code_actions.py), asked
 * once; none from a server that does not offer the command. */
async function presets(server: KimiServer): Promise<Preset[]> {
  if (presetList) return presetList;
  if (!server.commands().includes("kimi.refactorPresets")) return [];
  const reply = await server.execute<{ presets?: Preset[] }>("kimi.refactorPresets", {});
  presetList = reply?.presets ?? [];
  return presetList;
}

function sentence(words: string): string {
  return words.charAt(0).toUpperCase() + words.slice(1);
}

interface LspPosition {
  line: number;
  character: number;
}
interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

function lspPosition(p: vscode.Position): LspPosition {
  return { line: p.line, character: p.character };
}

function lspRange(r: vscode.Range): LspRange {
  return { start: lspPosition(r.start), end: lspPosition(r.end) };
}

/** `{uri, position, range?}` for the active editor (range only when something is selected). */
export function editorTarget(editor: vscode.TextEditor): { uri: string; position: LspPosition; range?: LspRange } {
  const sel = editor.selection;
  const out: { uri: string; position: LspPosition; range?: LspRange } = {
    uri: editor.document.uri.toString(),
    position: lspPosition(sel.active),
  };
  if (!sel.isEmpty) out.range = lspRange(sel);
  return out;
}

function activeEditor(): vscode.TextEditor | undefined {
  const editor = vscode.window.activeTextEditor;
  if (!editor) void vscode.window.showWarningMessage("Kimi: open a file and put the cursor on some code first.");
  return editor;
}

async function openText(content: string, language: string): Promise<void> {
  const doc = await vscode.workspace.openTextDocument({ content, language });
  await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: true });
}

interface RefactorChoice {
  instruction?: string;
  preset?: string;
}

/** A quick pick: type an instruction, or take a recent one or a preset. */
async function askInstruction(
  recent: string[],
  title: string,
  offered: Preset[],
): Promise<RefactorChoice | undefined> {
  type Item = vscode.QuickPickItem & RefactorChoice;
  const fixed: Item[] = [
    ...(recent.length ? [{ label: "recent", kind: vscode.QuickPickItemKind.Separator } as Item] : []),
    ...recent.map((instruction) => ({ label: instruction, instruction, description: "recent" })),
    ...(offered.length ? [{ label: "presets", kind: vscode.QuickPickItemKind.Separator } as Item] : []),
    ...offered.map(({ preset, instruction }) => ({ label: sentence(instruction), preset, description: preset })),
  ];
  const qp = vscode.window.createQuickPick<Item>();
  qp.title = title;
  qp.placeholder = "Type an instruction (e.g. 'use pathlib'), or pick one";
  qp.items = fixed;
  qp.onDidChangeValue((value) => {
    const typed = value.trim();
    qp.items = typed ? [{ label: typed, instruction: typed, description: "instruction", alwaysShow: true }, ...fixed] : fixed;
  });
  try {
    return await new Promise<RefactorChoice | undefined>((resolve) => {
      qp.onDidAccept(() => {
        const item = qp.selectedItems[0];
        const typed = qp.value.trim();
        resolve(item ? { instruction: item.instruction, preset: item.preset } : typed ? { instruction: typed } : undefined);
        qp.hide();
      });
      qp.onDidHide(() => resolve(undefined));
      qp.show();
    });
  } finally {
    qp.dispose();
  }
}

export function registerCommands(context: vscode.ExtensionContext, server: KimiServer, panel: AnswerPanel): void {
  const recent = (): string[] => context.globalState.get<string[]>(RECENT_KEY, []);
  const remember = async (instruction: string): Promise<void> => {
    const list = [instruction, ...recent().filter((s) => s !== instruction)].slice(0, RECENT_MAX);
    await context.globalState.update(RECENT_KEY, list);
  };

  // Each command reports its own failures; a missing server command is named, never hidden.
  const register = (id: string, fn: (...args: unknown[]) => Promise<unknown>): void => {
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async (...args: unknown[]) => {
        try {
          return await fn(...args);
        } catch (err) {
          const msg = err instanceof MissingServerCommand ? err.message : `Kimi: ${err instanceof Error ? err.message : String(err)}`;
          server.output.error(msg);
          void vscode.window.showErrorMessage(msg);
          return undefined;
        }
      }),
    );
  };

  register("kimi.client.explain", async () => {
    const editor = activeEditor();
    if (!editor) return undefined;
    panel.show(true);
    const target = editorTarget(editor);
    panel.expect("explain", explainTitle(symbolAt(target)));
    const result = await server.execute<{ text?: string; runId?: string; symbol?: string }>("kimi.explain", target);
    server.retitleExplain(result);
    return result;
  });

  register("kimi.client.refactor", async (given?: unknown) => {
    const editor = activeEditor();
    if (!editor) return undefined;
    // Tests and keybindings may pass the instruction; otherwise ask.
    const choice: RefactorChoice | undefined =
      typeof given === "string" && given
        ? { instruction: given }
        : await askInstruction(recent(), "Kimi: Refactor", await presets(server));
    if (!choice) return undefined;
    if (choice.instruction) await remember(choice.instruction);
    const target = editorTarget(editor);
    const range = target.range ?? { start: target.position, end: target.position };
    return server.execute("kimi.refactor", { ...target, range, ...choice });
  });

  register("kimi.client.generateTests", async () => {
    const editor = activeEditor();
    if (!editor) return undefined;
    return server.execute("kimi.generateTests", editorTarget(editor));
  });

  register("kimi.client.refactorWorkspace", async () => {
    if (!server.commands().includes("kimi.refactorWorkspace")) throw new MissingServerCommand("kimi.refactorWorkspace");
    const offered = await presets(server);
    const choice = await askInstruction(recent(), "Kimi: Refactor Workspace — instruction", offered);
    const instruction = choice?.instruction ?? offered.find((p) => p.preset === choice?.preset)?.instruction;
    if (!instruction) return undefined;
    await remember(instruction);
    const editor = vscode.window.activeTextEditor;
    const scope = await vscode.window.showInputBox({
      title: "Kimi: Refactor Workspace — scope",
      prompt: editor
        ? "Files to change (globs, comma-separated); empty: the files that use the symbol under the cursor"
        : "Files to change (globs, comma-separated)",
      value: vscode.workspace.getConfiguration("kimi").get<string>("refactorScope", "**/*"),
    });
    if (scope === undefined) return undefined;
    const globs = scope.split(",").map((s) => s.trim()).filter(Boolean);
    const arg: Record<string, unknown> = { instruction };
    if (globs.length) arg.scope = globs;
    else if (editor) arg.symbol = { uri: editor.document.uri.toString(), position: lspPosition(editor.selection.active) };
    else return undefined;
    // The edit comes back as one WorkspaceEdit whose files need confirmation: VS Code shows
    // it in its Refactor Preview before anything changes.
    const result = await server.execute<{ applied?: boolean; changed?: unknown; failed?: unknown; reason?: string }>(
      "kimi.refactorWorkspace",
      arg,
    );
    if (result) {
      const count = (v: unknown): number =>
        Array.isArray(v) ? v.length : v && typeof v === "object" ? Object.keys(v).length : 0;
      void vscode.window.showInformationMessage(
        result.applied
          ? `Kimi: workspace refactor changed ${count(result.changed)} file(s); ${count(result.failed)} failed.`
          : `Kimi: workspace refactor applied nothing${result.reason ? ` (${result.reason})` : ""}.`,
      );
    }
    return result;
  });

  register("kimi.client.showContext", async () => {
    const editor = activeEditor();
    if (!editor) return undefined;
    const action = await vscode.window.showQuickPick(["explain", "refactor", "tests"], {
      title: "Kimi: Show Context — for which action?",
    });
    if (!action) return undefined;
    const { uri, position, range } = editorTarget(editor);
    const result = await server.execute<{ uri?: string | null; text?: string }>("kimi.showContext", {
      uri,
      position,
      range,
      action,
    });
    // The server opens it with window/showDocument; open it here when it could not.
    if (result && !result.uri && result.text) await openText(result.text, "markdown");
    return result;
  });

  register("kimi.client.cancel", async (runId?: unknown) => {
    const id = typeof runId === "string" ? runId : undefined;
    const result = await server.execute<{ cancelled?: number }>("kimi.cancel", id ? { runId: id } : {});
    void vscode.window.setStatusBarMessage(`Kimi: cancelled ${result?.cancelled ?? 0} run(s)`, 4000);
    return result;
  });

  register("kimi.client.showQuota", async () => {
    if (!server.commands().includes("kimi.quota")) {
      // An older server: show what its kimi/status said, and name what is missing.
      await openText(
        `// The running kimi-lsp does not offer kimi.quota yet; its last kimi/status:\n${JSON.stringify(server.lastStatus, null, 2)}\n`,
        "jsonc",
      );
      return server.lastStatus;
    }
    const snapshot = await server.execute<unknown>("kimi.quota", {});
    await openText(JSON.stringify(snapshot, null, 2), "json");
    return snapshot;
  });

  register("kimi.client.setApiKey", async (given?: unknown) => {
    const key =
      typeof given === "string"
        ? given
        : await vscode.window.showInputBox({
            title: "Kimi: Set API Key",
            prompt: "Your Moonshot API key (platform.moonshot.ai → API keys). Kept in VS Code's secret storage.",
            password: true,
            ignoreFocusOut: true,
            validateInput: (v) => (v.trim() ? undefined : "The key cannot be empty"),
          });
    if (!key?.trim()) return undefined;
    await context.secrets.store(SECRET_KEY, key.trim());
    await server.restart(); // the key goes to the new process's environment
    void vscode.window.setStatusBarMessage("Kimi: API key saved", 4000);
    return true;
  });

  register("kimi.client.clearApiKey", async () => {
    await context.secrets.delete(SECRET_KEY);
    await server.restart();
    void vscode.window.setStatusBarMessage("Kimi: API key removed", 4000);
    return true;
  });

  register("kimi.client.showPanel", () => {
    panel.show(false);
    return Promise.resolve(true);
  });

  register("kimi.client.showLog", () => {
    server.output.show(true);
    return Promise.resolve(true);
  });

  register("kimi.client.restartServer", () => server.restart());
}

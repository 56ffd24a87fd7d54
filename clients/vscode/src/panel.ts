// The side panel where answers stream live: a webview fed by the server's `kimi/stream`.
import * as crypto from "crypto";
import * as vscode from "vscode";

export interface StreamEvent {
  runId: string;
  action: string;
  kind: "start" | "text" | "reasoning" | "end" | "error";
  text?: string;
  title?: string;
  cached?: boolean;
  uri?: string | null;
  message?: string;
}

type RunState = "streaming" | "done" | "error";

interface Run {
  id: string;
  action: string;
  title: string;
  uri?: string;
  text: string;
  reasoning: string;
  reasoningTokens: number; // kimi/stream `reasoning` events seen: one per streamed token
  state: RunState;
  message?: string;
  cached: boolean;
  html?: string; // rendered once the run is over
}

const MAX_RUNS = 20;
const RENDER_INTERVAL_MS = 100;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);
}

/** Markdown through VS Code's own renderer (the built-in Markdown extension); plain text if absent. */
async function renderMarkdown(text: string): Promise<string> {
  try {
    const html = await vscode.commands.executeCommand<string>("markdown.api.render", text);
    if (typeof html === "string") return html;
  } catch {
    // the Markdown extension is disabled: fall through
  }
  return `<pre>${escapeHtml(text)}</pre>`;
}

/** `Explain \`add\``: the panel's title for an explanation of `symbol`. */
export function explainTitle(symbol: string | undefined): string {
  return symbol ? `Explain \`${symbol}\`` : "Explain";
}

export class AnswerPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private readonly runs: Run[] = [];
  // Titles for the next runs of an action, noted when the command is sent (the stream's
  // `start` names only the action).
  private readonly expected = new Map<string, string[]>();

  /** The next run of `action` to start is titled `title` (e.g. the symbol it explains). */
  expect(action: string, title: string): void {
    const queue = this.expected.get(action) ?? [];
    queue.push(title);
    this.expected.set(action, queue);
  }

  /** Once the result names it: the run's real title (the server's target may be wider). */
  retitle(runId: string | undefined, title: string): void {
    const run = this.runs.find((r) => r.id === runId);
    if (!run || run.title === title) return;
    run.title = title;
    run.html = undefined;
    this.schedule();
  }

  /** Is a run of `action` streaming now? (its window/showDocument is the panel's to show) */
  streaming(action: string): boolean {
    return this.runs.some((r) => r.action === action && r.state === "streaming");
  }
  private timer: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  /** The run that is streaming right now, if any (the target of `Kimi: Cancel`). */
  activeRunId(): string | undefined {
    return this.runs.find((r) => r.state === "streaming")?.id;
  }

  /** Everything shown, as plain text (for the Copy command and troubleshooting). */
  text(): string {
    return this.runs.map((r) => `# ${r.title}\n\n${r.text}`).join("\n\n");
  }

  handle(event: StreamEvent, reveal: boolean): void {
    let run = this.runs.find((r) => r.id === event.runId);
    if (!run) {
      run = {
        id: event.runId,
        action: event.action,
        title: this.expected.get(event.action)?.shift() ?? event.title ?? event.action,
        text: "",
        reasoning: "",
        reasoningTokens: 0,
        state: "streaming",
        cached: false,
      };
      this.runs.unshift(run);
      this.runs.splice(MAX_RUNS);
    }
    switch (event.kind) {
      case "start":
        run.uri = event.uri ?? undefined;
        if (reveal) this.show(true);
        break;
      case "text":
        run.text += event.text ?? "";
        break;
      case "reasoning":
        run.reasoning += event.text ?? "";
        run.reasoningTokens += 1;
        break;
      case "end":
        run.state = "done";
        run.cached = Boolean(event.cached);
        run.message = event.message;
        break;
      case "error":
        run.state = "error";
        run.message = event.message;
        break;
    }
    this.schedule();
  }

  show(preserveFocus = false): void {
    if (this.panel) {
      this.panel.reveal(vscode.ViewColumn.Beside, preserveFocus);
      return;
    }
    this.panel = vscode.window.createWebviewPanel(
      "kimi.answers",
      "Kimi",
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus },
      { enableScripts: true, retainContextWhenHidden: true, localResourceRoots: [] },
    );
    this.panel.webview.html = this.shell(this.panel.webview);
    this.panel.webview.onDidReceiveMessage(
      (msg: { type?: string; runId?: string }) => {
        if (msg.type === "ready") this.schedule(0);
        if (msg.type === "cancel" && msg.runId) {
          void vscode.commands.executeCommand("kimi.client.cancel", msg.runId);
        }
      },
      undefined,
      this.disposables,
    );
    this.panel.onDidDispose(() => (this.panel = undefined), undefined, this.disposables);
    this.schedule(0);
  }

  private schedule(delay = RENDER_INTERVAL_MS): void {
    if (!this.panel || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.push();
    }, delay);
  }

  private async push(): Promise<void> {
    const panel = this.panel;
    if (!panel) return;
    const parts: string[] = [];
    for (const run of this.runs) {
      let body = run.html;
      if (body === undefined) {
        const thinking = `<p class="thinking">thinking… ${run.reasoningTokens} tokens</p>`;
        body =
          run.text || run.state !== "streaming"
            ? await renderMarkdown(run.text)
            : run.reasoningTokens > 0
              ? thinking
              : `<p class="thinking">waiting for the model…</p>`;
        if (run.state !== "streaming") run.html = body;
      }
      const reasoning = run.reasoning
        ? `<details class="reasoning"><summary>Reasoning</summary><pre>${escapeHtml(run.reasoning)}</pre></details>`
        : "";
      const badge =
        run.state === "streaming"
          ? `<span class="badge live">streaming</span> <a href="#" data-cancel="${escapeHtml(run.id)}">cancel</a>`
          : run.state === "error"
            ? `<span class="badge error">${escapeHtml(run.message ?? "failed")}</span>`
            : `<span class="badge">${run.cached ? "cached" : escapeHtml(run.message ?? "done")}</span>`;
      parts.push(
        `<section class="run ${run.state}" data-run="${escapeHtml(run.id)}" data-action="${escapeHtml(run.action)}">` +
          `<h2>${escapeHtml(run.title)} ${badge}</h2>${reasoning}<div class="answer">${body}</div></section>`,
      );
    }
    const html = parts.join("") || `<p class="empty">Answers from Kimi stream here.</p>`;
    const latest = this.runs[0]?.title;
    panel.title = !latest ? "Kimi" : latest.startsWith("Kimi") ? latest : `Kimi: ${latest}`;
    await panel.webview.postMessage({ type: "render", html });
  }

  private shell(webview: vscode.Webview): string {
    const nonce = crypto.randomBytes(16).toString("base64");
    const csp = `default-src 'none'; img-src ${webview.cspSource} https: data:; style-src 'unsafe-inline'; script-src 'nonce-${nonce}';`;
    return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<style>
  body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); }
  .run { border-bottom: 1px solid var(--vscode-panel-border); padding-bottom: .5em; }
  h2 { font-size: 1.1em; }
  .badge { font-size: .8em; padding: 0 .4em; border-radius: 3px; background: var(--vscode-badge-background); color: var(--vscode-badge-foreground); }
  .badge.live { background: var(--vscode-progressBar-background); }
  .badge.error { background: var(--vscode-inputValidation-errorBackground); }
  .reasoning { opacity: .7; }
  .thinking { opacity: .8; font-style: italic; }
  pre, code { font-family: var(--vscode-editor-font-family); }
  pre { white-space: pre-wrap; }
</style></head>
<body><main id="kimi-answers"><p class="empty">Answers from Kimi stream here.</p></main>
<script nonce="${nonce}">
  const vscode = acquireVsCodeApi();
  const main = document.getElementById("kimi-answers");
  window.addEventListener("message", (e) => { if (e.data && e.data.type === "render") main.innerHTML = e.data.html; });
  main.addEventListener("click", (e) => {
    const id = e.target && e.target.getAttribute && e.target.getAttribute("data-cancel");
    if (id) { e.preventDefault(); vscode.postMessage({ type: "cancel", runId: id }); }
  });
  vscode.postMessage({ type: "ready" });
</script></body></html>`;
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.panel?.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

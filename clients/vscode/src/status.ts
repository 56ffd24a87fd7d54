// The status bar item, driven by the server's `kimi/status` and the runs seen on `kimi/stream`.
import * as vscode from "vscode";

export interface KimiStatus {
  quota?: Record<string, unknown> | null;
  index?: { files?: number; indexing?: boolean; done?: number; total?: number } | null;
  runs?: number;
  cache?: { hits?: number; misses?: number; savedUsd?: number } | null;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === "object" ? (v as Record<string, unknown>) : undefined;
}

/** The per-minute token limit's use, as a percentage, when the quota says. */
export function tpmPercent(quota: Record<string, unknown>): number | undefined {
  const direct = num(quota.tpmPercent) ?? num(obj(quota.percent)?.tpm);
  if (direct !== undefined) return direct;
  const tpm = obj(quota.tpm);
  const used = num(quota.tokensLastMinute) ?? num(tpm?.used);
  const limit = num(obj(quota.limits)?.tpm) ?? num(tpm?.limit);
  if (used !== undefined && limit) return (100 * used) / limit;
  return undefined;
}

/** Money spent today, when the quota reports it. */
export function spentToday(quota: Record<string, unknown>): number | undefined {
  return num(quota.todayUsd) ?? num(quota.spentTodayUsd) ?? num(obj(quota.today)?.usd);
}

/** True while a request waits for quota (queued, or cooling down after a 429). */
export function waiting(quota: Record<string, unknown>): boolean {
  const queued = typeof quota.waiting === "boolean" ? Number(quota.waiting) : (num(quota.waiting) ?? num(quota.queued) ?? 0);
  return queued > 0 || (num(quota.cooldownSeconds) ?? num(quota.coolDownS) ?? 0) > 0;
}

function percent(p: number): string {
  return p > 0 && p < 1 ? "<1%" : `${Math.round(p)}%`;
}

/** `Kimi 42% TPM · $0.31 today`, or what is known of it. */
export function statusText(status: KimiStatus, streaming: boolean): string {
  const parts: string[] = [];
  const quota = obj(status.quota);
  if (quota) {
    const pct = tpmPercent(quota);
    if (pct !== undefined) parts.push(`${percent(pct)} TPM`);
    const usd = spentToday(quota);
    if (usd !== undefined) parts.push(`$${usd.toFixed(2)} today`);
    if (waiting(quota)) parts.push(`waiting${typeof quota.waitingFor === "string" && quota.waitingFor ? ` for ${quota.waitingFor}` : ""}`);
  }
  const index = status.index;
  if (index?.indexing) parts.push(`indexing ${index.done ?? 0}/${index.total ?? "?"}`);
  const head = streaming ? "$(sync~spin) Kimi" : "$(sparkle) Kimi";
  return parts.length ? `${head} ${parts.join(" · ")}` : head;
}

export function statusTooltip(status: KimiStatus): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, true);
  md.appendMarkdown("**Kimi**\n\n");
  const quota = obj(status.quota);
  if (quota) {
    for (const [k, v] of Object.entries(quota)) md.appendMarkdown(`- quota ${k}: \`${JSON.stringify(v)}\`\n`);
  } else {
    md.appendMarkdown("- quota: not reported by this server\n");
  }
  if (status.index) md.appendMarkdown(`- index: ${status.index.files ?? 0} files${status.index.indexing ? " (indexing)" : ""}\n`);
  md.appendMarkdown(`- runs: ${status.runs ?? 0}\n`);
  if (status.cache) {
    md.appendMarkdown(
      `- cache: ${status.cache.hits ?? 0} hits, ${status.cache.misses ?? 0} misses, $${(status.cache.savedUsd ?? 0).toFixed(2)} saved\n`,
    );
  }
  md.appendMarkdown("\n[Show quota](command:kimi.client.showQuota) · [Cancel runs](command:kimi.client.cancel)");
  return md;
}

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private status: KimiStatus = {};
  private readonly streaming = new Set<string>();

  constructor() {
    this.item = vscode.window.createStatusBarItem("kimi.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "Kimi";
    this.item.command = "kimi.client.showQuota";
    this.render();
    this.item.show();
  }

  update(status: KimiStatus): void {
    this.status = status;
    this.render();
  }

  runStarted(runId: string): void {
    this.streaming.add(runId);
    this.render();
  }

  runEnded(runId: string): void {
    this.streaming.delete(runId);
    this.render();
  }

  stopped(message: string): void {
    this.streaming.clear();
    this.item.text = "$(circle-slash) Kimi";
    this.item.tooltip = message;
    this.item.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
  }

  /** Restricted Mode: Kimi does not start; the item says so and opens the trust editor. */
  restricted(why: string): void {
    this.streaming.clear();
    this.item.text = "$(shield) Kimi: off in Restricted Mode";
    this.item.tooltip = new vscode.MarkdownString(`${why}\n\n[Manage Workspace Trust](command:workbench.trust.manage)`, true);
    this.item.command = "workbench.trust.manage";
    this.item.backgroundColor = new vscode.ThemeColor("statusBarItem.warningBackground");
  }

  trusted(): void {
    this.item.command = "kimi.client.showQuota";
    this.render();
  }

  private render(): void {
    const busy = this.streaming.size > 0 || (this.status.runs ?? 0) > 0;
    this.item.text = statusText(this.status, busy);
    this.item.tooltip = statusTooltip(this.status);
    const quota = obj(this.status.quota);
    this.item.backgroundColor =
      quota && waiting(quota) ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
    void vscode.commands.executeCommand("setContext", "kimi.running", busy);
  }

  dispose(): void {
    this.item.dispose();
  }
}

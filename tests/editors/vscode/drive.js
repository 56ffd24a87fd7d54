// Drives a running code-server with the kimi-lsp extension installed, in headless Chromium.
// One JSON line per step on stdout: {"step", "status": "pass"|"fail"|"skip", "detail"}.
// tests/editors/test_vscode.py starts code-server and the Kimi emulator, runs this, reads the
// lines, and cleans every process up. Screenshots of each step go to $KIMI_UI_ARTIFACTS.
"use strict";
const fs = require("fs");
const path = require("path");
const puppeteer = require("puppeteer-core");

const URL_BASE = process.env.KIMI_UI_URL; // http://127.0.0.1:PORT
const WORKSPACE = process.env.KIMI_UI_WORKSPACE;
const ARTIFACTS = process.env.KIMI_UI_ARTIFACTS;
const USER_DATA = process.env.KIMI_UI_USER_DATA;
const STATE_DIR = process.env.KIMI_UI_STATE_DIR;
const API_KEY = process.env.KIMI_UI_API_KEY;
const CHROMIUM = process.env.KIMI_UI_CHROMIUM || "/usr/bin/chromium";
// "restricted": the workspace is not trusted; only check that Kimi says why it is off.
const MODE = process.env.KIMI_UI_MODE || "full";

// The code editor of the active editor group (not the answers panel or another group).
const EDITOR = ".editor-group-container.active .editor-instance .monaco-editor";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const report = (step, status, detail = "") => console.log(JSON.stringify({ step, status, detail }));
let shot = 0;

async function screenshot(page, name) {
  shot += 1;
  const file = path.join(ARTIFACTS, `${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file }).catch(() => undefined);
}

async function waitFor(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await fn().catch(() => undefined);
    if (last) return last;
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
}

function walk(dir, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

/** The extension's own log (its LogOutputChannel "Kimi"), written under the user-data dir. */
function extensionLog() {
  const files = walk(path.join(USER_DATA, "logs")).filter((f) => /Kimi\.log$/.test(f));
  return files.map((f) => fs.readFileSync(f, "utf8")).join("\n");
}

function serverLog() {
  try {
    return fs.readFileSync(path.join(STATE_DIR, "kimi-lsp.log"), "utf8");
  } catch {
    return "";
  }
}

/** The editor's lines in line order (innerText of .view-lines is in DOM order). */
async function editorText(page) {
  return page.$$eval(`${EDITOR} .view-lines .view-line`, (lines) =>
    lines
      .map((l) => ({ top: parseFloat(l.style.top || "0"), text: l.textContent.replace(/\u00a0/g, " ") }))
      .sort((a, b) => a.top - b.top)
      .map((l) => l.text)
      .join("\n"),
  );
}

/** The screen box of `word` on the first editor line that contains `lineText`. */
async function wordBox(page, lineText, word) {
  return page.evaluate(
    (editor, lineText, word) => {
      const lines = [...document.querySelectorAll(`${editor} .view-lines .view-line`)];
      const line = lines.find((l) => l.textContent.replace(/\u00a0/g, " ").includes(lineText));
      if (!line) return null;
      const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
      let node;
      while ((node = walker.nextNode())) {
        const i = node.textContent.indexOf(word);
        if (i >= 0) {
          const r = document.createRange();
          r.setStart(node, i);
          r.setEnd(node, i + word.length);
          const b = r.getBoundingClientRect();
          return { x: b.x + b.width / 2, y: b.y + b.height / 2 };
        }
      }
      return null;
    },
    EDITOR,
    lineText,
    word,
  );
}

/** Run a palette command by its exact title (so "Kimi: Refactor…" is not "Kimi: Refactor Workspace…"). */
async function runCommand(page, title) {
  await page.keyboard.press("Escape");
  await page.keyboard.press("F1");
  await page.waitForSelector(".quick-input-widget .quick-input-box input", { visible: true, timeout: 10000 });
  await page.keyboard.type(title, { delay: 5 });
  const row = await waitFor(async () => {
    for (const r of await page.$$(".quick-input-list .monaco-list-row")) {
      const label = await r.evaluate((el) => ((el.querySelector(".label-name") || el).textContent || "").trim());
      if (label === title) return r;
    }
    return null;
  }, 10000, `"${title}" in the command palette`);
  await row.click();
}

/** Quick Open (the palette without its ">") a file of the workspace and wait for its text. */
async function openFile(page, name, expect) {
  await page.keyboard.press("Escape");
  // Its tab, when it has one (the webview panel may hold the keyboard focus).
  const tabs = await page.$$(".tabs-container .tab");
  for (const tab of tabs) {
    const label = await tab.evaluate((t) => (t.querySelector(".label-name") || t).textContent.trim());
    if (label === name) {
      await tab.click();
      await waitFor(async () => (await editorText(page)).includes(expect), 45000, `${name} in the editor`);
      return;
    }
  }
  await page.keyboard.press("F1");
  await page.waitForSelector(".quick-input-widget .quick-input-box input", { visible: true, timeout: 10000 });
  await page.keyboard.press("Backspace");
  await page.keyboard.type(name, { delay: 5 });
  await waitFor(
    () => page.$$eval(".quick-input-list .monaco-list-row", (rows, name) => rows.some((r) => r.textContent.includes(name)), name),
    10000,
    `${name} in Quick Open`,
  );
  await page.keyboard.press("Enter");
  await waitFor(async () => (await editorText(page)).includes(expect), 45000, `${name} in the editor`);
}

async function statusBarKimi(page) {
  return page.$$eval(".statusbar-item", (items) => {
    const it = items.find((i) => /kimi\.status$/.test(i.id));
    const label = it && it.querySelector(".statusbar-item-label");
    return label ? label.textContent.replace(/\s+/g, " ").trim() : null;
  });
}

/** The text of the Kimi answers webview (it lives in nested iframes). */
async function panelText(page) {
  for (const frame of page.frames()) {
    const text = await frame
      .evaluate(() => {
        const m = document.querySelector("#kimi-answers");
        return m ? m.innerText : null;
      })
      .catch(() => null);
    if (text !== null) return text;
  }
  return null;
}

async function hoverText(page) {
  return page.$$eval(".monaco-hover", (els) => els.map((e) => e.innerText).filter(Boolean).join("\n"));
}

/** The argv of every kimi-lsp server process on this machine started from this state dir. */
function serverArgvs() {
  const out = [];
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
      const env = fs.readFileSync(`/proc/${pid}/environ`, "utf8");
      if (argv.includes("kimi_lsp") && argv.includes("serve") && env.includes(`KIMI_LSP_STATE_DIR=${STATE_DIR}`)) out.push(argv);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}

/** The labels of the code-action menu (Ctrl+.) that is open. */
async function actionMenuLabels(page) {
  return page.$$eval(">>> .action-widget .monaco-list-row", (rows) =>
    rows.map((r) => (r.querySelector(".title") || r).textContent.trim()).filter(Boolean),
  );
}

async function tabLabels(page) {
  return page.$$eval(".tabs-container .tab", (tabs) => tabs.map((t) => (t.querySelector(".label-name") || t).textContent.trim()));
}

function parseCapabilities(log) {
  const lines = log.split("\n").filter((l) => l.includes("kimi-lsp started;"));
  const last = lines[lines.length - 1] || "";
  const m = /hover: (yes|no); commands: (.*)$/.exec(last);
  return { starts: lines.length, hover: m ? m[1] === "yes" : false, commands: m ? m[2].split(", ").filter(Boolean) : [] };
}

async function main() {
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--no-first-run", "--disable-dev-shm-usage", "--window-size=1400,900"],
    defaultViewport: { width: 1400, height: 900 },
  });
  const failures = [];
  const step = async (name, fn) => {
    try {
      const detail = await fn();
      if (detail && detail.skip) report(name, "skip", detail.skip);
      else report(name, "pass", detail || "");
    } catch (err) {
      failures.push(name);
      await screenshot(page, `FAILED-${name}`);
      await page.keyboard.press("Escape").catch(() => undefined); // leave no menu or picker open
      await page.keyboard.press("Escape").catch(() => undefined);
      report(name, "fail", String(err && err.stack ? err.stack : err).slice(0, 1500));
    }
  };
  const page = await browser.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e).slice(0, 200)));
  let caps = { starts: 0, hover: false, commands: [] };

  await step("workbench", async () => {
    await page.goto(`${URL_BASE}/?folder=${encodeURIComponent(WORKSPACE)}`, { waitUntil: "domcontentloaded", timeout: 60000 });
    await page.waitForSelector(".monaco-workbench", { timeout: 60000 });
    await page.waitForSelector('.explorer-folders-view .monaco-list-row[aria-label*="calc.py"]', { timeout: 60000 });
    await openFile(page, "calc.py", "def add");
    await screenshot(page, "workbench");
    return "calc.py open";
  });

  if (MODE === "restricted") {
    await step("trust-message", async () => {
      const text = await waitFor(async () => {
        const t = await statusBarKimi(page);
        return t && /Restricted Mode/.test(t) ? t : null;
      }, 90000, "the Kimi status item saying Restricted Mode");
      const toast = await waitFor(async () => {
        const msgs = await page.$$eval(".notifications-toasts .notification-list-item-message", (els) => els.map((e) => e.textContent));
        return msgs.find((m) => m.includes("Kimi is off in Restricted Mode")) || null;
      }, 20000, "the notification saying why Kimi is off");
      await screenshot(page, "restricted-mode");
      await sleep(1000);
      if (serverArgvs().length) throw new Error("kimi-lsp was started in Restricted Mode");
      if (serverLog()) throw new Error("the server wrote a log in Restricted Mode");
      return `status bar "${text}"; notification "${toast.slice(0, 120)}"`;
    });
    report("page-errors", "pass", JSON.stringify(pageErrors.slice(0, 5)));
    await browser.close();
    process.exitCode = failures.length ? 1 : 0;
    return;
  }

  await step("activation", async () => {
    const text = await waitFor(() => statusBarKimi(page), 90000, "the Kimi status bar item");
    caps = await waitFor(async () => {
      const c = parseCapabilities(extensionLog());
      return c.starts > 0 ? c : null;
    }, 90000, "'kimi-lsp started' in the extension's log");
    const log = await waitFor(async () => (serverLog().includes("initialize") ? serverLog() : null), 15000, "the server's log file");
    await screenshot(page, "activated");
    const argvs = await waitFor(async () => (serverArgvs().length ? serverArgvs() : null), 10000, "the kimi-lsp process");
    const doubled = argvs.filter((a) => a.filter((x) => x === "--stdio").length !== 1);
    if (doubled.length) throw new Error(`kimi-lsp started with ${JSON.stringify(doubled[0])}`);
    return `status bar "${text}"; server ${argvs[0].slice(1).join(" ")}; server log ${log.length} bytes; hover=${caps.hover}; commands=${caps.commands.join(",")}`;
  });

  await step("set-api-key", async () => {
    await runCommand(page, "Kimi: Set API Key");
    await page.waitForSelector('.quick-input-widget input[type="password"]', { visible: true, timeout: 10000 });
    await page.keyboard.type(API_KEY, { delay: 5 });
    await screenshot(page, "set-api-key");
    await page.keyboard.press("Enter");
    caps = await waitFor(async () => {
      const c = parseCapabilities(extensionLog());
      return c.starts >= 2 ? c : null;
    }, 60000, "the server restarted with the key");
    const leaked = walk(USER_DATA).filter((f) => /\.json$/.test(f) && fs.readFileSync(f, "utf8").includes(API_KEY));
    if (leaked.length) throw new Error(`the API key was written to ${leaked.join(", ")}`);
    return "key stored in SecretStorage; no settings file holds it";
  });

  const clickWord = async (lineText, word) => {
    const box = await waitFor(() => wordBox(page, lineText, word), 10000, `"${word}" on screen`);
    await page.mouse.click(box.x, box.y);
    return box;
  };

  await step("context-menu", async () => {
    const box = await clickWord("def add", "add");
    const menuItem = async (label) => {
      // Context menus live in a shadow root: ">>>" pierces it.
      for (const item of await page.$$(">>> .monaco-menu .action-item")) {
        const t = await item.evaluate((el) => (el.querySelector(".action-label") || el).textContent.trim());
        if (t === label) return item;
      }
      return null;
    };
    // A busy workbench may drop a right-click (the menu never opens, or opens before the
    // editor's menu contributions are in): ask again, as a user would, a few times.
    let kimi = null;
    for (let attempt = 1; attempt <= 3 && !kimi; attempt++) {
      await page.mouse.click(box.x, box.y, { button: "right" });
      const what = `the Kimi submenu in the editor's context menu (right-click ${attempt} of 3)`;
      kimi = await waitFor(() => menuItem("Kimi"), 10000, what).catch((e) => {
        if (attempt === 3) throw e;
        return null;
      });
      if (!kimi) {
        await page.keyboard.press("Escape");
        await page.mouse.click(box.x, box.y);
      }
    }
    await kimi.hover();
    await waitFor(() => menuItem("Explain"), 10000, "Explain in the Kimi submenu");
    const labels = await page.$$eval(">>> .monaco-menu .action-label", (els) => els.map((e) => e.textContent.trim()));
    await screenshot(page, "context-menu");
    await page.keyboard.press("Escape");
    await page.keyboard.press("Escape");
    const ours = ["Explain", "Refactor…", "Generate Tests", "Show Context"].filter((l) => labels.includes(l));
    if (ours.length !== 4) throw new Error(`the Kimi submenu lacks some commands: ${labels.join(", ")}`);
    return ours.join(", ");
  });

  await step("lightbulb", async () => {
    await page.keyboard.press("Escape");
    await clickWord("def add", "add");
    await page.keyboard.down("Control");
    await page.keyboard.press("Period");
    await page.keyboard.up("Control");
    const labels = await waitFor(async () => {
      const ls = await actionMenuLabels(page);
      return ls.includes("Kimi: Explain") ? ls : null;
    }, 15000, "Kimi: Explain in the Ctrl+. menu");
    await screenshot(page, "lightbulb");
    await page.keyboard.press("Escape");
    if (!labels.includes("Kimi: Generate tests")) throw new Error(`no Generate tests in Ctrl+.: ${labels.join(", ")}`);
    return labels.filter((l) => l.startsWith("Kimi")).join(", ");
  });

  await step("hover", async () => {
    if (!caps.hover) return { skip: "the server has no hoverProvider" };
    const box = await clickWord("def add", "add");
    await page.mouse.move(box.x + 200, box.y + 200);
    await sleep(200);
    await page.mouse.move(box.x, box.y);
    const text = await waitFor(async () => {
      const t = await hoverText(page);
      return t.includes("defined at") ? t : null;
    }, 15000, "a hover with the index's information");
    await screenshot(page, "hover");
    if (!/calc\.py:1/.test(text)) throw new Error(`hover does not name calc.py:1: ${text}`);
    return text.replace(/\s+/g, " ").slice(0, 200);
  });

  await step("explain-streams-into-panel", async () => {
    if (!caps.commands.includes("kimi.explain")) return { skip: "the server does not offer kimi.explain" };
    await page.keyboard.press("Escape");
    await clickWord("def add", "add");
    const tabsBefore = await tabLabels(page);
    await runCommand(page, "Kimi: Explain");
    // The model reasons first: the panel counts its tokens live instead of showing "…".
    const thinking = await waitFor(async () => {
      const t = await panelText(page);
      const m = t && /thinking… (\d+) tokens/.exec(t);
      return m && Number(m[1]) > 0 ? m[0] : null;
    }, 30000, "thinking… N tokens in the Kimi panel");
    await screenshot(page, "explain-thinking");
    // Mid-stream: part of the answer is there while the run is still streaming.
    const partial = await waitFor(async () => {
      const t = await panelText(page);
      return t && /streaming/.test(t) && t.includes("sum") ? t : null;
    }, 30000, "a partial answer in the Kimi panel while it streams");
    const spinning = await page.$$eval(".statusbar-item", (items) =>
      items.some((i) => /kimi\.status$/.test(i.id) && i.querySelector(".codicon-modifier-spin")),
    );
    await screenshot(page, "explain-streaming");
    if (!spinning) throw new Error("the status bar shows no spinner while the answer streams");
    const done = await waitFor(async () => {
      const t = await panelText(page);
      return t && t.includes("Explained by the emulator.") && !/streaming/.test(t) ? t : null;
    }, 60000, "the whole answer in the Kimi panel");
    await screenshot(page, "explain-done");
    if (!done.includes("Explain `add`") && !done.includes("Explain add")) throw new Error(`the panel entry does not name add:\n${done.slice(0, 300)}`);
    await sleep(1000); // the server's window/showDocument ask has come and gone
    const opened = (await tabLabels(page)).filter((l) => !tabsBefore.includes(l));
    // One place: the panel (its tab), no Markdown document replacing the preview tab.
    if (opened.some((l) => /\.md$/.test(l))) throw new Error(`Explain opened a document too: ${opened.join(", ")}`);
    const panelTab = opened.find((l) => l.startsWith("Kimi"));
    if (panelTab !== undefined && !panelTab.includes("add")) throw new Error(`the panel's tab does not name add: ${panelTab}`);
    return `${thinking}; partial ${partial.length} chars, final ${done.length} chars; new tabs: ${opened.join(", ")}`;
  });

  await step("hover-shows-cached-explanation", async () => {
    if (!caps.hover || !caps.commands.includes("kimi.explain")) {
      return { skip: "needs hoverProvider and kimi.explain" };
    }
    // The explanation was also opened as a document; go back to calc.py.
    await openFile(page, "calc.py", "def add");
    const box = await clickWord("def add", "add");
    await page.mouse.move(box.x + 200, box.y + 200);
    await sleep(200);
    await page.mouse.move(box.x, box.y);
    const text = await waitFor(async () => {
      const t = await hoverText(page);
      return t.includes("sum of") ? t : null;
    }, 15000, "the cached explanation in the hover");
    await screenshot(page, "hover-cached");
    return text.replace(/\s+/g, " ").slice(0, 200);
  });

  await step("status-bar-quota", async () => {
    const text = await statusBarKimi(page);
    await screenshot(page, "status-bar");
    if (!caps.commands.includes("kimi.quota")) {
      return { skip: `the server does not offer kimi.quota (its kimi/status has no quota yet); status bar: "${text}"` };
    }
    const withQuota = await waitFor(async () => {
      const t = await statusBarKimi(page);
      return t && /\d+% TPM/.test(t) ? t : null;
    }, 15000, "the quota in the status bar");
    return withQuota;
  });

  await step("refactor-edit-lands", async () => {
    if (!caps.commands.includes("kimi.refactor")) return { skip: "the server does not offer kimi.refactor" };
    await openFile(page, "calc.py", "def add");
    await clickWord("def add", "add");
    await runCommand(page, "Kimi: Refactor…");
    await page.waitForSelector(".quick-input-widget .quick-input-box input", { visible: true, timeout: 10000 });
    // The presets come from the server (kimi.refactorPresets), not from a copy in the extension.
    await waitFor(
      () => page.$$eval(".quick-input-list .monaco-list-row", (rows) => rows.some((r) => r.textContent.includes("Make it idiomatic"))),
      10000,
      "the server's presets in the quick pick",
    );
    await page.keyboard.type("add type hints", { delay: 5 });
    await sleep(300);
    await page.keyboard.press("Enter");
    const text = await waitFor(async () => {
      const t = await editorText(page);
      return t.includes("def add(a: int, b: int) -> int:") ? t : null;
    }, 60000, "the refactored code in the editor");
    await screenshot(page, "refactor");
    if (!text.includes("def twice(x):")) throw new Error(`the rest of the file is gone:\n${text}`);
    return text.split("\n")[0];
  });

  await step("refactor-preview", async () => {
    if (!caps.commands.includes("kimi.refactor")) return { skip: "the server does not offer kimi.refactor" };
    const file = path.join(WORKSPACE, "stats.py");
    const before = fs.readFileSync(file, "utf8");
    await openFile(page, "stats.py", "def mean");
    await clickWord("def mean", "mean");
    await runCommand(page, "Kimi: Refactor…");
    await page.waitForSelector(".quick-input-widget .quick-input-box input", { visible: true, timeout: 10000 });
    await page.keyboard.type("use sum", { delay: 5 });
    await sleep(300);
    await page.keyboard.press("Enter");
    // A long target: one needsConfirmation edit, shown in VS Code's Refactor Preview.
    const apply = await waitFor(async () => {
      for (const b of await page.$$(".monaco-button")) {
        const t = await b.evaluate((el) => el.textContent.trim());
        if (t === "Apply") return b;
      }
      return null;
    }, 60000, "the Refactor Preview's Apply button");
    await sleep(500);
    const shown = await editorText(page);
    const onDisk = fs.readFileSync(file, "utf8");
    await screenshot(page, "refactor-preview-pending");
    if (onDisk !== before) throw new Error(`stats.py changed on disk before Apply:\n${onDisk}`);
    if (/<<<<<<<|>>>>>>>/.test(shown) || /<<<<<<<|>>>>>>>/.test(onDisk)) throw new Error("conflict markers in the file");
    const box = await waitFor(async () => {
      for (const row of await page.$$(".monaco-list-row")) {
        const hit = await row.evaluate((el) => el.textContent.includes("stats.py") && !!el.querySelector(".monaco-custom-toggle, input[type=checkbox]"));
        if (hit) return row.$(".monaco-custom-toggle, input[type=checkbox]");
      }
      return null;
    }, 10000, "stats.py's checkbox in the Refactor Preview");
    const checked = await box.evaluate((el) => el.classList.contains("checked") || el.checked === true);
    if (!checked) await box.click();
    await sleep(300);
    await screenshot(page, "refactor-preview");
    await apply.click();
    await openFile(page, "stats.py", "def mean");
    const text = await waitFor(async () => {
      const t = await editorText(page);
      return t.includes("return sum(values) / len(values)") ? t : null;
    }, 20000, "the accepted refactor in stats.py");
    await screenshot(page, "refactor-preview-applied");
    if (/<<<<<<<|>>>>>>>/.test(text)) throw new Error("conflict markers after Apply");
    return `disk unchanged until Apply; then: ${text.split("\n")[1].trim()}`;
  });

  await step("show-context", async () => {
    if (!caps.commands.includes("kimi.showContext")) return { skip: "the server does not offer kimi.showContext" };
    await openFile(page, "calc.py", "def twice");
    await clickWord("def twice", "twice");
    await runCommand(page, "Kimi: Show Context");
    await page.waitForSelector(".quick-input-widget .quick-input-box input", { visible: true, timeout: 10000 });
    await page.keyboard.type("explain", { delay: 5 });
    await sleep(300);
    await page.keyboard.press("Enter");
    const text = await waitFor(async () => {
      const t = await editorText(page);
      return t.includes("## system") && t.includes("twice") ? t : null;
    }, 20000, "the prompt document");
    await screenshot(page, "show-context");
    return `${text.split("\n").length} lines shown`;
  });

  await step("refactor-workspace", async () => {
    if (!caps.commands.includes("kimi.refactorWorkspace")) return { skip: "the server does not offer kimi.refactorWorkspace" };
    await openFile(page, "calc.py", "def twice");
    await runCommand(page, "Kimi: Refactor Workspace…");
    await page.waitForSelector(".quick-input-widget .quick-input-box input", { visible: true, timeout: 10000 });
    await page.keyboard.type("use an f-string", { delay: 5 });
    await sleep(300);
    await page.keyboard.press("Enter");
    // The scope box comes pre-filled and selected: typing replaces it.
    await waitFor(
      () => page.$eval(".quick-input-widget .quick-input-title", (el) => el.textContent.includes("scope")),
      10000,
      "the scope input",
    );
    await page.keyboard.type("greet.py", { delay: 5 });
    await page.keyboard.press("Enter");
    // needsConfirmation annotations: VS Code's Refactor Preview shows the change first.
    const apply = await waitFor(async () => {
      for (const b of await page.$$(".refactor-preview .monaco-button, .monaco-button")) {
        const t = await b.evaluate((el) => el.textContent.trim());
        if (t === "Apply") return b;
      }
      return null;
    }, 60000, "the Refactor Preview's Apply button");
    // Edits that need confirmation start unchecked: tick the file, as a user would.
    const box = await waitFor(async () => {
      for (const row of await page.$$(".monaco-list-row")) {
        const hit = await row.evaluate((el) => el.textContent.includes("greet.py") && !!el.querySelector(".monaco-custom-toggle, input[type=checkbox]"));
        if (hit) return row.$(".monaco-custom-toggle, input[type=checkbox]");
      }
      return null;
    }, 10000, "greet.py's checkbox in the Refactor Preview");
    await box.click();
    await sleep(300);
    await screenshot(page, "refactor-preview");
    await apply.click();
    await openFile(page, "greet.py", "def greet");
    const text = await waitFor(async () => {
      const t = await editorText(page);
      return t.includes('f"Hello, {name}"') ? t : null;
    }, 20000, "the workspace edit in greet.py");
    await screenshot(page, "refactor-workspace");
    return text.split("\n")[1].trim();
  });

  await step("generate-tests", async () => {
    if (!caps.commands.includes("kimi.generateTests")) return { skip: "the server does not offer kimi.generateTests" };
    await openFile(page, "calc.py", "def twice");
    await clickWord("def twice", "twice");
    await runCommand(page, "Kimi: Generate Tests");
    await waitFor(
      async () => (await page.$$eval(".tabs-container .tab .label-name", (ls) => ls.some((l) => l.textContent.trim() === "test_calc.py"))),
      60000,
      "test_calc.py opened by the server",
    );
    await openFile(page, "test_calc.py", "def test_twice");
    await screenshot(page, "generate-tests");
    return "test_calc.py holds test_twice";
  });

  await step("cancel", async () => {
    if (!caps.commands.includes("kimi.cancel")) return { skip: "the server does not offer kimi.cancel" };
    await openFile(page, "calc.py", "def twice");
    await clickWord("def twice", "twice");
    await runCommand(page, "Kimi: Explain");
    await waitFor(async () => {
      const t = await panelText(page);
      return t && /Explain `twice` streaming/.test(t) && t.includes("slow") ? t : null;
    }, 30000, "the slow answer streaming");
    await runCommand(page, "Kimi: Cancel");
    const text = await waitFor(async () => {
      const t = await panelText(page);
      return t && /Explain `twice` cancelled/.test(t) ? t : null;
    }, 20000, "the run marked cancelled in the panel");
    await screenshot(page, "cancel");
    const words = (text.split("Explain `twice` cancelled")[1] || "").split("Kimi:")[0].match(/slow/g) || [];
    return `cancelled after ${words.length} of 400 pieces`;
  });

  await step("show-quota", async () => {
    if (!caps.commands.includes("kimi.quota")) return { skip: "the server does not offer kimi.quota" };
    await runCommand(page, "Kimi: Show Quota");
    const text = await waitFor(async () => {
      const t = await editorText(page);
      return t.includes('"limits"') && t.includes('"tpm"') ? t : null;
    }, 15000, "the quota snapshot as a document");
    await screenshot(page, "show-quota");
    return `${text.split("\n").length} lines`;
  });

  report("page-errors", "pass", JSON.stringify(pageErrors.slice(0, 5)));
  await browser.close();
  process.exitCode = failures.length ? 1 : 0;
}

main().catch((err) => {
  report("driver", "fail", String(err && err.stack ? err.stack : err));
  process.exit(2);
});

// Helpers of the browser suite: start the real `switchboard` binary serving the built console
// (web-agent/dist), a tiny "customer site" that embeds the widget snippet, and Debian's Chromium
// through playwright-core. Every process and browser started here is stopped at the end, even
// when a test fails.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..');
export const BIN = process.env.SWITCHBOARD_BIN || path.join(REPO, 'target', 'debug', 'switchboard');
export const WEB_DIR = process.env.SWITCHBOARD_WEB_DIR || path.join(REPO, 'web-agent', 'dist');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const ARTIFACTS = path.join(here, 'artifacts');
export const ADMIN_EMAIL = 'admin@example.com';
export const ADMIN_PASSWORD = 'browser-admin-password-123';

const running = new Set();
const cleanups = [];

export const rand = (n = 6) => randomBytes(n).toString('hex');
export const log = (...args) => console.log('   [browser]', ...args);
/** Resolves after `ms`: only used to let a stray duplicate show up, never as an assertion. */
export const settle = (ms) => new Promise((r) => setTimeout(r, ms));

export function tempDir(prefix = 'sb-browser-') {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts `switchboard serve` on 127.0.0.1:0 (embedded SQLite) and resolves once it printed its address. */
export async function startServer() {
  if (!existsSync(BIN)) throw new Error(`server binary not found at ${BIN}: cargo build -p switchboard-server --bin switchboard`);
  if (!existsSync(path.join(WEB_DIR, 'index.html'))) throw new Error(`no built console in ${WEB_DIR}: npm run build in web-agent/`);
  const dataDir = tempDir();
  const proc = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    env: {
      ...process.env,
      SWITCHBOARD_BOOTSTRAP__ADMIN_PASSWORD: ADMIN_PASSWORD,
      SWITCHBOARD_WEB_DIR: WEB_DIR,
      SWITCHBOARD_LOG: process.env.SWITCHBOARD_LOG || 'info,sqlx=warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  proc.on('exit', () => running.delete(proc));
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; if (process.env.BROWSER_VERBOSE) process.stdout.write(`[server] ${d}`); });
  await new Promise((resolve, reject) => {
    const ready = () => /Switchboard is running at (http:\/\/\S+)/.test(stdout) && /API docs:/.test(stdout);
    const timer = setTimeout(() => done(new Error(`server did not print its address within 60 s\n${stdout}\n${stderr.slice(-3000)}`)), 60_000);
    const onData = () => { if (ready()) done(); };
    const onExit = (code) => done(new Error(`server exited before starting (code ${code})\n${stdout}\n${stderr.slice(-3000)}`));
    function done(err) {
      clearTimeout(timer);
      proc.stdout.off('data', onData);
      proc.off('exit', onExit);
      if (err) reject(err); else resolve();
    }
    proc.stdout.on('data', onData);
    proc.on('exit', onExit);
    onData();
  });
  const url = /Switchboard is running at (http:\/\/\S+)/.exec(stdout)[1].replace(/\/$/, '');
  const widget = /Widget demo: \S+\?inbox=(\d+)&key=(\S+)/.exec(stdout);
  if (!widget) throw new Error(`the server did not print the widget inbox:\n${stdout}`);
  return { url, inboxId: Number(widget[1]), widgetKey: widget[2], proc, get stderr() { return stderr; } };
}

// ---------------------------------------------------------------------------------------------
// REST

export async function api(url, token, method, p, body) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${url}/api/v1${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p} → ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

export async function login(url, email, password) {
  return (await api(url, null, 'POST', '/auth/login', { email, password })).token;
}

/** Creates an agent (as admin): {user, email, password}. */
export async function createAgent(url, adminToken, { name, capacity = 5, role = 'agent' } = {}) {
  const email = `agent-${rand()}@example.com`;
  const password = `pw-${rand(8)}`;
  const user = await api(url, adminToken, 'POST', '/users', { email, name, role, password, capacity });
  return { user, email, password };
}

// ---------------------------------------------------------------------------------------------
// the customer's site

/** A page on another origin that embeds the widget exactly as a customer's site would. */
export async function startCustomerSite(server, { lang } = {}) {
  const snippet = `<script src="${server.url}/widget.js" data-inbox="${server.inboxId}" data-key="${server.widgetKey}"${lang ? ` data-lang="${lang}"` : ''} async></script>`;
  const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme Outdoor — Store</title>
<style>
  body { margin: 0; font: 16px/1.5 Georgia, serif; color: #222; background: #faf7f2; }
  header { background: #2f4f3a; color: #fff; padding: 18px 40px; font: 700 22px system-ui, sans-serif; }
  main { max-width: 720px; padding: 30px 40px; }
  .card { background: #fff; border: 1px solid #e6e0d6; border-radius: 8px; padding: 18px 22px; margin: 16px 0; }
</style></head>
<body>
<header>Acme Outdoor</header>
<main>
  <h1>Trail Tent 2P</h1>
  <p>A light two-person tent for three seasons. Questions about sizes, shipping or returns? Chat with us.</p>
  <div class="card"><strong>$249</strong> · Free shipping over $100 · 30-day returns</div>
  <div class="card">In stock: forest green, sand.</div>
</main>
${snippet}
</body></html>`;
  const site = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page);
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => site.close(() => r())));
  return { url: `http://127.0.0.1:${site.address().port}/`, snippet };
}

// ---------------------------------------------------------------------------------------------
// the browser

/**
 * Launches Debian's Chromium headless. playwright-core gives each launch a fresh temporary
 * profile (its own --user-data-dir), removed when the browser closes.
 */
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (tests/browser/run.sh does it)`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  cleanups.push(() => browser.close());
  return browser;
}

/** Logs into the console at `url` (`/`, `/#wallboard`, `/#admin`) and waits for its socket;
 * with `available`, then sets the agent available. */
export async function signIn(page, url, email, password, { available = false } = {}) {
  await page.goto(url);
  await page.locator('input[name=email]').fill(email);
  await page.locator('input[name=password]').fill(password);
  await page.locator('form.login-card button[type=submit]').click();
  await page.locator('.conn-pill[data-connection=connected]').waitFor({ timeout: 15_000 });
  if (available) {
    await page.locator('.status-select').selectOption('available');
    await page.locator('.status-select[data-status=available]').waitFor();
  }
}

/** A customer's message through the API channel inbox `inbox` ({id, inbound_token}); returns the
 * conversation id it went to. */
export async function apiChannelSays(url, inbox, messageId, contact, text) {
  const res = await fetch(`${url}/api/v1/channels/api/${inbox.id}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${inbox.inbound_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ message_id: messageId, contact, text }),
  });
  const raw = await res.text();
  if (!res.ok) throw new Error(`inbound: ${res.status} ${raw}`);
  return JSON.parse(raw).conversation_id;
}

/** Saves a screenshot under artifacts/ and, if `docsName` is given, copies it to docs/screenshots/. */
export async function screenshot(page, name, docsName) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file });
  if (docsName) {
    const docs = path.join(REPO, 'docs', 'screenshots');
    mkdirSync(docs, { recursive: true });
    copyFileSync(file, path.join(docs, docsName));
  }
  return file;
}

/** Stops everything this file started. Call from `after` hooks. */
export async function cleanupAll() {
  while (cleanups.length) {
    const f = cleanups.pop();
    try { await f(); } catch (e) { log('cleanup failed:', e.message); }
  }
  for (const proc of [...running]) {
    try { proc.kill('SIGTERM'); } catch { /* gone */ }
  }
}

process.on('exit', () => {
  for (const proc of running) {
    try { proc.kill('SIGKILL'); } catch { /* gone */ }
  }
});

// Shared helpers of the end-to-end suite: start the real `switchboard` binary, talk to it over
// REST (Node's fetch) and Socket.IO (the official socket.io-client), and receive its signed
// webhooks. Every process started here is killed at the end, even when a test fails.

import { spawn, execFileSync } from 'node:child_process';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..');
export const BIN = process.env.SWITCHBOARD_BIN || path.join(REPO, 'target', 'debug', 'switchboard');
export const ADMIN_EMAIL = 'admin@example.com';
export const ADMIN_PASSWORD = 'e2e-admin-password-123';
export const PG_HOST = process.env.SWITCHBOARD_TEST_PG_HOST || '127.0.0.1';
export const PG_USER = process.env.SWITCHBOARD_TEST_PG_USER || 'postgres';
export const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL || 'redis://127.0.0.1:6379';

const stripAnsi = (t) => t.replace(/\x1b\[[0-9;]*m/g, '');
const running = new Set(); // child processes still alive
const cleanups = []; // other resources (receivers, sockets, temp dirs, databases)

export const rand = (n = 6) => randomBytes(n).toString('hex');
export const log = (...args) => console.log('   [e2e]', ...args);

// ---------------------------------------------------------------------------------------------
// waiting

/** Polls `predicate` (sync or async) until it returns a truthy value; throws after `ms`. */
export async function waitFor(predicate, ms = 10_000, what = 'condition') {
  const deadline = Date.now() + ms;
  let lastError;
  for (;;) {
    try {
      const v = await predicate();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}${lastError ? ` (last error: ${lastError.message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Resolves after `ms`: only ever used to let a stray duplicate show up, never as an assertion. */
export const settle = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// server processes

export function tempDir(prefix = 'sb-e2e-') {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Starts `switchboard serve` on 127.0.0.1:0 and resolves once it printed its address.
 * opts: {db: 'sqlite'|'postgres', dataDir?, dbName?, redis?: bool, redisPrefix?, env?}
 */
export async function startServer(opts = {}) {
  if (!existsSync(BIN)) throw new Error(`server binary not found at ${BIN}: cargo build -p switchboard-server --bin switchboard`);
  const db = opts.db || 'sqlite';
  const dataDir = opts.dataDir || tempDir();
  const args = ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir];
  if (db === 'postgres') {
    if (!opts.dbName) throw new Error('postgres needs dbName (see createPgDatabase)');
    args.push('--database-url', `postgres://${PG_USER}@${PG_HOST}:5432/${opts.dbName}`);
  }
  if (opts.redis) args.push('--redis-url', REDIS_URL);
  const redisPrefix = opts.redisPrefix || `sbe2e:${rand()}:`;
  if (opts.redis) dropRedisPrefixAtCleanup(redisPrefix);
  const env = {
    ...process.env,
    SWITCHBOARD_BOOTSTRAP__ADMIN_PASSWORD: ADMIN_PASSWORD,
    // One inbox-secrets key for every node of a test (each has its own data dir).
    SWITCHBOARD_SECURITY__SECRETS_KEY: 'ZTJlLXRlc3Qtc2VjcmV0cy1rZXktMzItYnl0ZXMhISE=',
    SWITCHBOARD_REDIS_PREFIX: redisPrefix,
    SWITCHBOARD_LOG: process.env.SWITCHBOARD_LOG || 'info,sqlx=warn',
    ...(opts.env || {}),
  };
  const proc = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  const name = opts.name || `server-${proc.pid}`;
  let stdout = '';
  let stderr = '';
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      running.delete(proc);
      resolve({ code, signal });
    });
  });
  proc.stdout.on('data', (d) => { stdout += d; if (process.env.E2E_VERBOSE) process.stdout.write(`[${name} out] ${d}`); });
  proc.stderr.on('data', (d) => { stderr += d; if (process.env.E2E_VERBOSE) process.stdout.write(`[${name} err] ${d}`); });

  // Event-driven (no polling loop left behind when the process dies first).
  await new Promise((resolve, reject) => {
    const ready = () => /Switchboard is running at (http:\/\/[^\s]+)/.test(stdout) && /API docs:/.test(stdout);
    const timer = setTimeout(() => finish(new Error(`${name} did not print its address within 60 s\nstdout:\n${stdout}\nstderr (tail):\n${stripAnsi(stderr).slice(-4000)}`)), 60_000);
    const onData = () => { if (ready()) finish(); };
    const onExit = (code, signal) => finish(new Error(`${name} exited before starting (code ${code}, signal ${signal})\nstdout:\n${stdout}\nstderr (tail):\n${stripAnsi(stderr).slice(-4000)}`));
    function finish(err) {
      clearTimeout(timer);
      proc.stdout.off('data', onData);
      proc.off('exit', onExit);
      if (err) {
        proc.kill('SIGKILL');
        reject(err);
      } else {
        resolve();
      }
    }
    proc.stdout.on('data', onData);
    proc.on('exit', onExit);
    onData();
  });
  const url = /Switchboard is running at (http:\/\/[^\s]+)/.exec(stdout)[1].replace(/\/$/, '');
  const port = Number(new URL(url).port);
  const widget = /Widget demo: \S+\?inbox=(\d+)&key=(\S+)/.exec(stdout);
  const server = {
    name,
    url,
    port,
    dataDir,
    inboxId: widget ? Number(widget[1]) : undefined,
    widgetKey: widget ? widget[2] : undefined,
    proc,
    exited,
    get stdout() { return stdout; },
    get stderr() { return stderr; },
    /** Graceful stop: SIGTERM, then wait for exit (SIGKILL after 15 s). */
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
    /** Crash: SIGKILL, then wait for exit. */
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      return exited;
    },
  };
  return server;
}

/** Kills every process and frees every resource this file started. Call from `after` hooks. */
export async function cleanupAll() {
  for (const proc of [...running]) {
    try { proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
  await waitFor(() => running.size === 0, 10_000, 'server processes to exit').catch(() => {});
  while (cleanups.length) {
    const f = cleanups.pop();
    try { await f(); } catch (e) { log('cleanup failed:', e.message); }
  }
}

process.on('exit', () => {
  for (const proc of running) {
    try { proc.kill('SIGKILL'); } catch { /* gone */ }
  }
});

// ---------------------------------------------------------------------------------------------
// databases

/** Creates a fresh Postgres database (trust auth) and drops it at cleanup. */
export function createPgDatabase(name = `sb_e2e_${rand()}`) {
  psql(`CREATE DATABASE ${name}`);
  cleanups.push(() => psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  return name;
}

const redisPrefixes = new Set();
/** Deletes every Redis key under `prefix` at cleanup (presence entries outlive killed nodes). */
function dropRedisPrefixAtCleanup(prefix) {
  if (redisPrefixes.has(prefix)) return;
  redisPrefixes.add(prefix);
  const { hostname, port } = new URL(REDIS_URL);
  cleanups.push(() => {
    const keys = execFileSync('redis-cli', ['-h', hostname, '-p', port || '6379', '--scan', '--pattern', `${prefix}*`]).toString().split('\n').filter(Boolean);
    if (keys.length) execFileSync('redis-cli', ['-h', hostname, '-p', port || '6379', 'DEL', ...keys]);
  });
}

function psql(sql) {
  execFileSync('psql', ['-h', PG_HOST, '-U', PG_USER, '-v', 'ON_ERROR_STOP=1', '-qc', sql], { stdio: ['ignore', 'pipe', 'pipe'] });
}

// ---------------------------------------------------------------------------------------------
// REST

/** One REST call; resolves {status, body, text, headers} (body is parsed JSON or null). */
export async function api(url, token, method, p, body, { headers = {}, raw } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let payload;
  if (raw !== undefined) {
    payload = raw;
    h['content-type'] ??= 'application/json';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    h['content-type'] = 'application/json';
  }
  const res = await fetch(`${url}/api/v1${p}`, { method, headers: h, body: payload });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, body: json, text, headers: res.headers };
}

/** Like `api` but throws unless the status is one of `expected`. Returns the parsed body. */
export async function apiOk(url, token, method, p, body, expected = [200, 201]) {
  const r = await api(url, token, method, p, body);
  if (!expected.includes(r.status)) {
    throw new Error(`${method} ${p} → ${r.status} ${r.text.slice(0, 500)} (expected ${expected.join('/')})`);
  }
  return r.body;
}

export async function login(url, email, password, tenant) {
  const body = { email, password };
  if (tenant) body.tenant = tenant;
  const r = await apiOk(url, null, 'POST', '/auth/login', body, [200]);
  if (!r || typeof r.token !== 'string') throw new Error(`login answered without a token: ${JSON.stringify(r)}`);
  return r.token;
}

/** Creates a user (as admin) and logs them in: {user, token}. */
export async function createAgent(url, adminToken, { role = 'agent', capacity = 5, name } = {}) {
  const email = `agent-${rand()}@example.com`;
  const password = `pw-${rand(8)}`;
  const user = await apiOk(url, adminToken, 'POST', '/users', { email, name: name || `Agent ${email}`, role, password, capacity }, [201]);
  const token = await login(url, email, password);
  return { user, token, email, password };
}

/** Finds a key anywhere in a (nested) JSON value. */
export function findKey(value, key) {
  if (value && typeof value === 'object') {
    if (Object.hasOwn(value, key)) return value[key];
    for (const v of Object.values(value)) {
      const found = findKey(v, key);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** Creates an API inbox pointing at `webhookUrl`: {inbox, inboundToken, webhookSecret, raw}. */
export async function createApiInbox(url, adminToken, webhookUrl, name = `API ${rand(3)}`) {
  const raw = await apiOk(url, adminToken, 'POST', '/inboxes', { name, kind: 'api', settings: { webhook_url: webhookUrl } }, [201]);
  const inboundToken = findKey(raw, 'inbound_token');
  const webhookSecret = findKey(raw, 'webhook_secret');
  if (typeof inboundToken !== 'string' || typeof webhookSecret !== 'string') {
    throw new Error(`inbox creation answer lacks inbound_token / webhook_secret: ${JSON.stringify(raw)}`);
  }
  const inbox = raw.inbox && raw.inbox.id ? raw.inbox : raw;
  return { inbox, inboundToken, webhookSecret, raw };
}

/** Posts to the API channel's ingestion endpoint. */
export function postInbound(url, inboxId, token, body, opts = {}) {
  return api(url, token, 'POST', `/channels/api/${inboxId}/messages`, body, opts);
}

// ---------------------------------------------------------------------------------------------
// Socket.IO

/**
 * Connects a socket.io-client to `namespace` and records every server event.
 * Resolves once connected (rejects on connect_error). Returns
 * {socket, events: {name: [payload...]}, all: [[name, payload]...], request(event, data), next(event, pred, ms), close()}.
 */
export async function connectSocket(url, namespace, auth, { transports, timeoutMs = 10_000 } = {}) {
  const socket = io(`${url}${namespace}`, {
    auth,
    transports,
    reconnection: false,
    forceNew: true,
    timeout: timeoutMs,
  });
  const client = wrapSocket(socket);
  cleanups.push(() => socket.close());
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${namespace}: no connect within ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => { clearTimeout(t); resolve(); });
    socket.once('connect_error', (e) => { clearTimeout(t); reject(new Error(`${namespace}: connect_error: ${e.message}`)); });
  });
  return client;
}

function wrapSocket(socket) {
  const events = {};
  const all = [];
  socket.onAny((name, payload) => {
    (events[name] ??= []).push(payload);
    all.push([name, payload]);
  });
  return {
    socket,
    events,
    all,
    /** Emits with an acknowledgement; resolves the ack payload (rejects after `ms`). */
    async request(event, data, ms = 10_000) {
      return socket.timeout(ms).emitWithAck(event, data);
    },
    /** Waits for an event (already received or future) matching `pred`. */
    next(event, pred = () => true, ms = 10_000) {
      return waitFor(() => (events[event] || []).find(pred), ms, `socket event '${event}'`);
    },
    count(event, pred = () => true) {
      return (events[event] || []).filter(pred).length;
    },
    close() {
      socket.close();
    },
  };
}

export function connectAgent(url, token, opts) {
  return connectSocket(url, '/agent', { token }, opts);
}

export function connectWidget(url, inboxId, widgetKey, session, opts) {
  const auth = { inbox_id: inboxId, widget_key: widgetKey };
  if (session) auth.session = session;
  return connectSocket(url, '/widget', auth, opts);
}

/** Connects an agent and sets them available; resolves the socket client once acked. */
export async function availableAgent(url, token, opts) {
  const agent = await connectAgent(url, token, opts);
  await agent.next('hello');
  const ack = await agent.request('status', { status: 'available' });
  if (!ack || ack.ok !== true) throw new Error(`status available refused: ${JSON.stringify(ack)}`);
  return agent;
}

// ---------------------------------------------------------------------------------------------
// webhook receiver

/**
 * A local HTTP server standing in for a business system's webhook endpoint. It verifies every
 * delivery's signature (HMAC-SHA256 over `timestamp.body`, compared with timingSafeEqual) once
 * `secret` is set, and records each attempt. `respond(attempt)` decides the status code.
 */
export async function startReceiver({ respond = () => 200 } = {}) {
  const receiver = {
    secret: undefined,
    respond,
    attempts: [], // every request: {deliveryId, timestamp, signature, raw, body, verified, status, at}
    badSignatures: [],
    get acknowledged() { return this.attempts.filter((a) => a.status >= 200 && a.status < 300); },
    attemptsFor(id) { return this.attempts.filter((a) => a.deliveryId === id); },
    url: '',
    close: () => new Promise((r) => server.close(() => r())),
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const deliveryId = req.headers['x-switchboard-delivery'];
      const timestamp = req.headers['x-switchboard-timestamp'];
      const signature = req.headers['x-switchboard-signature'];
      let body = null;
      try { body = JSON.parse(raw.toString('utf8')); } catch { /* recorded as null */ }
      const verified = verifySignature(receiver.secret, timestamp, raw, signature);
      const attempt = { deliveryId, timestamp, signature, raw: raw.toString('utf8'), body, verified, method: req.method, path: req.url, at: Date.now() };
      if (!verified) {
        receiver.badSignatures.push(attempt);
        attempt.status = 401;
      } else {
        attempt.status = receiver.respond(attempt, receiver.attemptsFor(deliveryId).length + 1);
      }
      receiver.attempts.push(attempt);
      res.writeHead(attempt.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ received: attempt.status < 300 }));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  receiver.url = `http://127.0.0.1:${server.address().port}/hooks/switchboard`;
  receiver.server = server;
  cleanups.push(() => receiver.close());
  return receiver;
}

/** True when `signature` is `v1=` + hex HMAC-SHA256(secret, timestamp + "." + raw). */
export function verifySignature(secret, timestamp, raw, signature) {
  if (!secret || typeof timestamp !== 'string' || typeof signature !== 'string') return false;
  if (!/^\d+$/.test(timestamp)) return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const expected = Buffer.from(`v1=${createHmac('sha256', secret).update(`${timestamp}.`).update(raw).digest('hex')}`);
  const got = Buffer.from(signature);
  return expected.length === got.length && timingSafeEqual(expected, got);
}

// Shared pieces of the fault suite: a realistic load (customers on the widget and on the API
// channel, agents on Socket.IO who resync from their last seen message id after any gap), private
// Redis and PostgreSQL instances a test may restart at will, SQL checks and the report every test
// prints. Server processes, REST, sockets and webhook receivers come from the end-to-end
// harness (tests/e2e/harness.mjs), which also kills everything at the end.
//
// FAULTS_LONG=1 selects the long form: more customers and agents, longer load and longer outages.

import { execFile, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  PG_HOST, PG_USER, cleanupAll, connectAgent, connectWidget, postInbound, settle, waitFor,
} from '../e2e/harness.mjs';

const execFileP = promisify(execFile);

export const LONG = process.env.FAULTS_LONG === '1';
/** Picks the short or the long form of a size. */
export const size = (short, long) => (LONG ? long : short);
export const flog = (...args) => console.log('   [faults]', ...args);

const cleanups = [];
let aborted = false; // set at cleanup: every customer loop ends, acknowledged or not
/** Stops this file's processes (private Redis / Postgres), then everything the harness started. */
export async function cleanupFaults() {
  aborted = true;
  // Server processes first (the harness), so nothing is writing while the databases stop.
  await cleanupAll();
  while (cleanups.length) {
    const f = cleanups.pop();
    try { await f(); } catch (e) { flog('cleanup failed:', e.message); }
  }
}

/** A TCP port nobody listens on right now. */
export async function freePort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/** VmRSS of a process in kB. */
export function rssKb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

// ---------------------------------------------------------------------------------------------
// SQL

/** Runs one query through psql; resolves rows as arrays of tab-separated fields. */
export async function sql({ host = PG_HOST, port = 5432, db }, query) {
  const { stdout } = await execFileP('psql', ['-h', host, '-p', String(port), '-U', PG_USER, '-d', db, '-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-c', query], { maxBuffer: 256 * 1024 * 1024 });
  return stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

// ---------------------------------------------------------------------------------------------
// private Redis

/** A redis-server of this test alone on a free port; `stop()` and `start()` restart it there. */
export async function privateRedis() {
  const port = await freePort();
  let proc = null;
  const cli = (...args) => execFileP('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args]).then((r) => r.stdout.trim());
  const redis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    cli,
    async start() {
      proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      const p = proc;
      p.exited = new Promise((r) => p.on('exit', r));
      await waitFor(async () => (await cli('ping')) === 'PONG', 10_000, `redis-server on ${port}`);
    },
    /** Stops it like a crash (SIGKILL): connections drop, nothing is saved. */
    async stop() {
      if (!proc) return;
      const p = proc;
      proc = null;
      p.kill('SIGKILL');
      await p.exited;
    },
  };
  await redis.start();
  cleanups.push(() => redis.stop());
  return redis;
}

// ---------------------------------------------------------------------------------------------
// private PostgreSQL

// Debian keeps the server binaries per major version; the newest installed wins.
const pgVersions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)).sort((x, y) => y - x) : [];
const PG_BIN = [...pgVersions.map((v) => `/usr/lib/postgresql/${v}/bin`), '/usr/local/bin', '/usr/bin']
  .find((d) => existsSync(path.join(d, 'pg_ctl')) && existsSync(path.join(d, 'initdb')));

/**
 * A PostgreSQL cluster of this test alone: initdb into a temp dir, started on a free port with
 * its socket in /tmp. Run as the `postgres` user when we are root (initdb refuses root).
 */
export async function privatePostgres() {
  if (!PG_BIN) throw new Error('pg_ctl and initdb not found in /usr/lib/postgresql/*/bin, /usr/local/bin or /usr/bin');
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'sb-faults-pg-'));
  const asRoot = process.getuid && process.getuid() === 0;
  if (asRoot) {
    const { stdout } = await execFileP('id', ['-u', 'postgres']);
    const { stdout: gid } = await execFileP('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const run = (bin, args) => (asRoot
    ? execFileP('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, bin), ...args])
    : execFileP(path.join(PG_BIN, bin), args));
  const data = path.join(dir, 'data');
  await run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  const opts = `-p ${port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const pg = {
    port,
    dir,
    url: (db) => `postgres://postgres@127.0.0.1:${port}/${db}`,
    async start() {
      await run('pg_ctl', ['-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', 'start']);
    },
    /** `immediate` is a crash stop: backends are cut off mid-transaction, recovery replays WAL. */
    async stop(mode = 'immediate') {
      await run('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
    },
    async createDb(name) {
      await sql({ port, db: 'postgres' }, `CREATE DATABASE ${name}`);
      return name;
    },
  };
  await pg.start();
  cleanups.push(async () => {
    await pg.stop('immediate').catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });
  return pg;
}

// ---------------------------------------------------------------------------------------------
// load: customers

/** Counters every test prints. */
export function newTally() {
  return { sent: 0, acknowledged: 0, attempts: 0, statuses: {}, networkErrors: 0, unexpected: [] };
}

/**
 * An API-channel customer (a platform, really): posts messages one after another and retries each
 * until it gets a 2xx — on a network error or 503 like a platform redelivers, on another node
 * when one is gone. Anything other than 2xx / 503 / a network error is recorded as unexpected.
 */
export function apiCustomer({ tag, index, inboxId, token, nodes, tally, acked, pauseMs = 50, pad = '' }) {
  let stopping = false;
  let i = 0;
  const contact = `${tag}-api-${index}`;
  const loop = (async () => {
    while (!stopping && !aborted) {
      const key = `${contact}-m${i}`;
      const text = `${tag} api ${index} #${i}${pad}`;
      tally.sent++;
      let attempt = 0;
      for (;;) {
        if (aborted) return;
        const alive = nodes();
        const node = alive[(index + attempt) % alive.length];
        attempt++;
        tally.attempts++;
        let r;
        try {
          r = await postInbound(node.url, inboxId, token, { message_id: key, contact: { id: contact }, text });
        } catch {
          tally.networkErrors++;
          await settle(200);
          continue;
        }
        tally.statuses[r.status] = (tally.statuses[r.status] || 0) + 1;
        if (r.status === 200 || r.status === 201) {
          tally.acknowledged++;
          acked.push({ channel: 'api', key, text, conversationId: r.body.conversation_id, messageId: r.body.message.id });
          break;
        }
        if (r.status !== 503) tally.unexpected.push(`${r.status} ${r.text.slice(0, 200)}`);
        await settle(200);
      }
      i++;
      await settle(pauseMs);
    }
  })();
  return { contact, stop: () => { stopping = true; return loop; } };
}

/**
 * A widget customer: keeps a session, sends messages one after another and waits for each ack;
 * on a dropped socket, an error ack or no ack it reconnects (to a node still up) with its session
 * and sends the same client_message_id again.
 */
export function widgetCustomer({ tag, index, inboxId, widgetKey, nodes, tally, acked, pauseMs = 50, ackMs = 5_000 }) {
  let stopping = false;
  let session;
  let client = null;
  let i = 0;
  const connect = async (attempt) => {
    const alive = nodes();
    const node = alive[(index + attempt) % alive.length];
    const c = await connectWidget(node.url, inboxId, widgetKey, session);
    const s = await c.next('session', () => true, ackMs);
    session = s.session;
    return c;
  };
  const loop = (async () => {
    let attempt = 0;
    while (!stopping && !aborted) {
      const key = `${tag}-w${index}-m${i}`;
      const text = `${tag} widget ${index} #${i}`;
      tally.sent++;
      for (;;) {
        if (aborted) break;
        tally.attempts++;
        try {
          if (!client || !client.socket.connected) {
            client?.close();
            client = null;
            client = await connect(attempt++);
          }
          const ack = await client.request('message', { client_message_id: key, text }, ackMs);
          if (ack && ack.ok === true) {
            tally.acknowledged++;
            tally.statuses.ack = (tally.statuses.ack || 0) + 1;
            acked.push({ channel: 'widget', key, text, conversationId: ack.conversation_id ?? ack.message.conversation_id, messageId: ack.message.id });
            break;
          }
          const code = ack?.error?.code ?? ack?.code ?? JSON.stringify(ack).slice(0, 80);
          tally.statuses[`ack-${code}`] = (tally.statuses[`ack-${code}`] || 0) + 1;
          if (code !== 'unavailable') tally.unexpected.push(`widget ack ${JSON.stringify(ack).slice(0, 200)}`);
        } catch {
          tally.networkErrors++;
          client?.close();
          client = null;
        }
        await settle(200);
      }
      i++;
      await settle(pauseMs);
    }
    client?.close();
  })();
  return { stop: () => { stopping = true; return loop; } };
}

// ---------------------------------------------------------------------------------------------
// load: agents

/**
 * An agent on the /agent namespace who keeps, per conversation, every message they saw (live
 * `message` pushes, or `sync {after: last seen id}`) and resyncs after any reconnect or new
 * assignment — what the console does. `reconnect` (default on) brings them back on a node
 * still up when their socket drops; `gone()` makes them stay away.
 */
export function agentClient({ user, token, nodes, index, onMessage }) {
  const agent = {
    user,
    id: user.id,
    index,
    client: null,
    reconnect: true,
    held: new Set(), // conversations they hold, as far as their pushes told them
    seen: new Map(), // conversation id -> Map(message id -> {via})
    lastSeen: new Map(), // conversation id -> highest message id seen
    live: 0,
    viaSync: 0,
    reconnects: 0,
    errors: [],
  };
  const record = (conversationId, m, via) => {
    let msgs = agent.seen.get(conversationId);
    if (!msgs) agent.seen.set(conversationId, (msgs = new Map()));
    if (msgs.has(m.id)) return false;
    msgs.set(m.id, via);
    if (via === 'live') agent.live++; else agent.viaSync++;
    if (!(agent.lastSeen.get(conversationId) >= m.id)) agent.lastSeen.set(conversationId, m.id);
    return true;
  };
  /**
   * `sync {conversation_id, after}` until nothing more comes back: from the last seen id after a
   * gap in a conversation they held, from the start (`full`) for one newly theirs — a live push
   * of a later message may have arrived before the assignment did, so the last seen id says
   * nothing about what came before.
   */
  agent.resync = async (conversationId, full = false, from = undefined) => {
    let after = full ? 0 : from ?? agent.lastSeen.get(conversationId) ?? 0;
    for (;;) {
      const c = agent.client;
      if (!c || !c.socket.connected) return;
      let ack;
      try {
        ack = await c.request('sync', { conversation_id: conversationId, after, limit: 500 }, 15_000);
      } catch { return; }
      if (!ack || ack.ok !== true) return; // no longer theirs (forbidden) or unavailable: the next resync retries
      for (const m of ack.messages) record(conversationId, m, 'sync');
      if (ack.messages.length < 500) return;
      after = ack.messages[ack.messages.length - 1].id;
    }
  };
  const attach = (c) => {
    c.socket.on('message', (m) => {
      if (m && m.conversation_id != null && record(m.conversation_id, m, 'live')) onMessage?.(agent, m);
    });
    c.socket.on('conversation', (conv) => {
      if (!conv) return;
      if (conv.assignee_id === agent.id && !agent.held.has(conv.id)) {
        agent.held.add(conv.id);
        agent.resync(conv.id, true);
      } else if (conv.assignee_id !== agent.id) {
        agent.held.delete(conv.id);
      }
    });
    // The node lost bus events on their way to this socket (its Redis was down): catch up on
    // everything held, from the last seen id — what the console does (it reconnects).
    c.socket.on('resync', () => {
      agent.resyncs = (agent.resyncs ?? 0) + 1;
      for (const id of [...agent.held]) agent.resync(id);
    });
    c.socket.on('disconnect', () => {
      if (agent.reconnect && !aborted) setTimeout(() => agent.connect().catch((e) => agent.errors.push(e.message)), 100).unref();
    });
  };
  agent.connect = async (attempt = 0) => {
    if (!agent.reconnect || aborted) return;
    const alive = nodes();
    const node = alive[(index + attempt) % alive.length];
    let c;
    try {
      c = await connectAgent(node.url, token);
      agent.node = node;
      // Where each conversation stood when the gap began: live pushes on the new socket may
      // arrive before the resync runs and move `lastSeen` past what was missed.
      const cursors = new Map(agent.lastSeen);
      attach(c);
      agent.client = c;
      // `hello` may have arrived with the connect itself, before any listener: the harness
      // recorded it.
      const hello = await c.next('hello', () => true, 15_000);
      for (const conv of hello.conversations || []) {
        const known = agent.held.has(conv.id);
        agent.held.add(conv.id);
        await agent.resync(conv.id, !known, cursors.get(conv.id) ?? 0);
      }
      const ack = await c.request('status', { status: 'available' }, 15_000);
      if (!ack || ack.ok !== true) throw new Error(`status refused: ${JSON.stringify(ack)}`);
      if (attempt > 0 || agent.connectedOnce) agent.reconnects++;
      agent.connectedOnce = true;
    } catch (e) {
      c?.close();
      if (!agent.reconnect || aborted) return;
      if (attempt > 200) throw e;
      await settle(250);
      return agent.connect(attempt + 1);
    }
  };
  /** Resyncs every conversation this agent has seen (e.g. after an outage). */
  agent.resyncAll = async () => {
    for (const id of [...agent.seen.keys()]) await agent.resync(id);
  };
  /** Resyncs the conversations the database says they hold; new ones from the start. */
  agent.resyncHeld = async (ids) => {
    for (const id of ids) {
      const known = agent.held.has(id);
      agent.held.add(id);
      await agent.resync(id, !known);
    }
  };
  /** Stays away: no reconnect, socket closed (or already cut by a killed node). */
  agent.gone = () => {
    agent.reconnect = false;
    agent.client?.close();
  };
  return agent;
}

// ---------------------------------------------------------------------------------------------
// checks

/**
 * What every test checks of the messages the customers were acknowledged: stored (by id, with
 * its text, in its conversation), exactly once (by dedupe key), and seen by the agent holding the
 * conversation at the end. Returns the report lines' numbers; the caller asserts.
 */
export async function checkMessages({ db, acked, agents, tenantInboxIds }) {
  const rows = await sql(db, `SELECT id, conversation_id, text, COALESCE(platform_message_id, ''), COALESCE(client_message_id, '') FROM messages WHERE direction = 'inbound' AND inbox_id IN (${tenantInboxIds.join(',')})`);
  const byId = new Map(rows.map(([id, conv, text, pmid, cmid]) => [Number(id), { conv: Number(conv), text, pmid, cmid }]));
  const keyCount = new Map();
  for (const r of byId.values()) {
    const k = r.pmid || r.cmid;
    if (k) keyCount.set(k, (keyCount.get(k) || 0) + 1);
  }
  const missing = [];
  const corrupt = [];
  for (const a of acked) {
    const r = byId.get(a.messageId);
    if (!r) missing.push(a.key);
    else if (r.text !== a.text || r.conv !== a.conversationId) corrupt.push(`${a.key}: ${JSON.stringify(r)}`);
  }
  const duplicates = [...keyCount.entries()].filter(([, n]) => n > 1).map(([k, n]) => `${k}×${n}`);
  const ackedTwice = acked.length - new Set(acked.map((a) => a.key)).size;
  const holders = new Map((await sql(db, `SELECT id, COALESCE(assignee_id, 0), state FROM conversations`)).map(([id, a, s]) => [Number(id), { assignee: Number(a), state: s }]));
  const byAgent = new Map(agents.map((a) => [a.id, a]));
  const notDelivered = [];
  let delivered = 0;
  for (const a of acked) {
    const h = holders.get(a.conversationId);
    const agent = h && byAgent.get(h.assignee);
    if (!agent) { notDelivered.push(`${a.key} (conversation ${a.conversationId} ${h ? h.state : 'missing'}, holder ${h?.assignee})`); continue; }
    if (agent.seen.get(a.conversationId)?.has(a.messageId)) delivered++;
    else {
      const ids = [...(agent.seen.get(a.conversationId)?.entries() || [])].map(([id, via]) => `${id}${via === 'sync' ? 's' : ''}`);
      notDelivered.push(`${a.key} (#${a.messageId}) → agent ${agent.id}: held ${agent.held.has(a.conversationId)}, last seen ${agent.lastSeen.get(a.conversationId)}, reconnects ${agent.reconnects}, seen ${ids.slice(-12).join(',')}`);
    }
  }
  return { stored: acked.length - missing.length, missing, corrupt, duplicates, ackedTwice, delivered, notDelivered, storedRows: rows.length };
}

/**
 * Replays `conversation_events` in id order: no conversation may be taken (assigned / offered)
 * by someone while another agent holds it, and at the end every agent's held conversations fit
 * their capacity and equal `users.active_load`.
 */
export async function checkAssignments(db) {
  const events = await sql(db, `SELECT conversation_id, kind, COALESCE(actor_user_id, 0) FROM conversation_events ORDER BY id`);
  const TAKES = new Set(['assigned', 'offered']);
  const RELEASES = new Set(['requeued', 'resolved', 'reassigned_no_reply', 'offer_rejected', 'offer_expired', 'offer_withdrawn']);
  const holder = new Map();
  const doubles = [];
  for (const [conv, kind, actor] of events) {
    if (TAKES.has(kind)) {
      const h = holder.get(conv);
      if (h && h !== actor) doubles.push(`conversation ${conv}: ${kind} to ${actor} while held by ${h}`);
      holder.set(conv, actor);
    } else if (RELEASES.has(kind)) {
      holder.delete(conv);
    }
  }
  const held = await sql(db, `SELECT u.id, u.capacity, u.active_load, u.status, (SELECT COUNT(*) FROM conversations c WHERE c.assignee_id = u.id AND c.state IN ('offered', 'assigned', 'waiting_on_customer')) FROM users u`);
  const overCapacity = [];
  const loadMismatch = [];
  for (const [id, capacity, load, , n] of held) {
    if (Number(n) > Number(capacity)) overCapacity.push(`agent ${id}: ${n} > ${capacity}`);
    if (Number(n) !== Number(load)) loadMismatch.push(`agent ${id}: active_load ${load}, holds ${n}`);
  }
  const kinds = {};
  for (const [, kind] of events) kinds[kind] = (kinds[kind] || 0) + 1;
  return { events: events.length, kinds, doubles, overCapacity, loadMismatch, users: held };
}

/** One report line per number, so the log shows what was checked. */
export function report(title, fields) {
  flog(`${title}:`);
  for (const [k, v] of Object.entries(fields)) flog(`  ${k.padEnd(28)} ${typeof v === 'object' ? JSON.stringify(v) : v}`);
}


// ---------------------------------------------------------------------------------------------
// a raw, stallable Socket.IO client

/**
 * A Socket.IO client spoken by hand over a raw TCP socket (WebSocket transport, Engine.IO v4),
 * so it can stop reading at will — what a frozen browser tab or a dead mobile link does. Connects
 * to `/agent` with `auth`, answers pings and acks until `stall()`; `resume()` reads again and
 * counts what had been queued for it.
 */
export async function rawAgentSocket(url, auth) {
  const { hostname, port } = new URL(url);
  const sock = net.connect(Number(port), hostname);
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  const key = Buffer.from(Array.from({ length: 16 }, () => Math.floor(Math.random() * 256))).toString('base64');
  sock.write(`GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  const raw = {
    sock,
    packets: [], // every text packet received
    counts: {}, // event name -> count
    bytes: 0,
    closed: false,
    stalled: false,
    send(text) {
      const payload = Buffer.from(text);
      const mask = Buffer.from([1, 2, 3, 4]);
      let header;
      if (payload.length < 126) header = Buffer.from([0x81, 0x80 | payload.length]);
      else if (payload.length < 65536) { header = Buffer.alloc(4); header[0] = 0x81; header[1] = 0x80 | 126; header.writeUInt16BE(payload.length, 2); }
      else { header = Buffer.alloc(10); header[0] = 0x81; header[1] = 0x80 | 127; header.writeBigUInt64BE(BigInt(payload.length), 2); }
      const masked = Buffer.alloc(payload.length);
      for (let i = 0; i < payload.length; i++) masked[i] = payload[i] ^ mask[i % 4];
      sock.write(Buffer.concat([header, mask, masked]));
    },
    stall() { raw.stalled = true; sock.pause(); },
    resume() { raw.stalled = false; sock.resume(); },
    close() { sock.destroy(); },
  };
  let buf = Buffer.alloc(0);
  let upgraded = false;
  const onPacket = (text) => {
    raw.packets.push(text);
    if (text === '2') { if (!raw.stalled) raw.send('3'); return; }
    const m = /^42\/agent,(?:\d+)?\["([^"]+)"/.exec(text);
    if (m) raw.counts[m[1]] = (raw.counts[m[1]] || 0) + 1;
  };
  sock.on('data', (chunk) => {
    raw.bytes += chunk.length;
    buf = Buffer.concat([buf, chunk]);
    if (!upgraded) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString();
      if (!/^HTTP\/1\.1 101/.test(head)) { raw.error = head; sock.destroy(); return; }
      upgraded = true;
      buf = buf.subarray(end + 4);
    }
    for (;;) {
      if (buf.length < 2) return;
      const opcode = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      if (buf.length < off + len) return;
      const payload = buf.subarray(off, off + len);
      buf = buf.subarray(off + len);
      if (opcode === 0x1) onPacket(payload.toString('utf8'));
      else if (opcode === 0x8) { raw.closed = true; sock.destroy(); return; }
      else if (opcode === 0x9) { /* ping frame: the server uses Engine.IO pings */ }
    }
  });
  sock.on('close', () => { raw.closed = true; });
  sock.on('error', () => { raw.closed = true; });
  cleanups.push(() => sock.destroy());
  await waitFor(() => raw.packets.some((p) => p.startsWith('0{')) || raw.error, 10_000, 'the Engine.IO open packet');
  if (raw.error) throw new Error(`raw socket upgrade refused: ${raw.error}`);
  raw.send(`40/agent,${JSON.stringify(auth)}`);
  await waitFor(() => raw.packets.find((p) => p.startsWith('40/agent,') || p.startsWith('44/agent,')), 10_000, 'the /agent connect answer');
  const answer = raw.packets.find((p) => p.startsWith('40/agent,') || p.startsWith('44/agent,'));
  if (answer.startsWith('44')) throw new Error(`raw socket refused: ${answer}`);
  /** Emits with an ack id; resolves the ack's payload. */
  let ackId = 0;
  raw.request = async (event, data) => {
    const id = ++ackId;
    raw.send(`42/agent,${id}${JSON.stringify([event, data])}`);
    const prefix = `43/agent,${id}[`;
    const p = await waitFor(() => raw.packets.find((x) => x.startsWith(prefix)), 10_000, `ack of ${event}`);
    return JSON.parse(p.slice(prefix.length - 1))[0];
  };
  return raw;
}

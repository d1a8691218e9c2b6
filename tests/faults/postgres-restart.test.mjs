// Fault 3: PostgreSQL goes down hard (`pg_ctl stop -m immediate`: backends cut off
// mid-transaction, WAL recovery on start) and comes back, under load on two nodes. A private
// cluster of this test (initdb into a temp dir, a free port): the shared 5432 is never touched.
//
// Checked: while the database is away, ingestion answers 503 (widget acks `unavailable`), never
// a 2xx for something it could not commit and never another error; `/readyz` says 503 too; the
// same processes serve again once the database is back (no restart); the customers retry what
// was refused, like platforms redeliver, and in the end every message is stored exactly once,
// as sent, and reached its agent.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, createAgent, createApiInbox, login, rand, settle, startReceiver, startServer, waitFor,
} from '../e2e/harness.mjs';
import {
  agentClient, apiCustomer, checkAssignments, checkMessages, cleanupFaults, flog, newTally, privatePostgres, report, size,
  sql, widgetCustomer,
} from './lib.mjs';

after(cleanupFaults);

const AGENTS = size(4, 20);
const API_CUSTOMERS = size(9, 60);
const WIDGET_CUSTOMERS = size(4, 20);
const PHASE_MS = size(3_000, 20_000);
// Longer than the store's wait for a connection (10 s): a shorter blip is ridden out — requests
// wait for the database and then succeed — so 503 is only seen past it.
const PG_DOWN_MS = size(12_000, 45_000);

test(`PostgreSQL restarted mid-load: ${AGENTS} agents, ${API_CUSTOMERS} API + ${WIDGET_CUSTOMERS} widget customers, 2 nodes`, { timeout: 600_000 }, async () => {
  const pg = await privatePostgres();
  const dbName = await pg.createDb(`sb_fault_${rand()}`);
  const db = { port: pg.port, db: dbName };
  const common = {
    // `db: 'sqlite'` only means the harness passes no --database-url: the environment names
    // the private cluster.
    db: 'sqlite', redis: true, redisPrefix: `sbfault:${rand()}:`,
    env: {
      SWITCHBOARD_DATABASE_URL: pg.url(dbName),
      SWITCHBOARD_OUTBOX__POLL_INTERVAL_MS: '200',
      SWITCHBOARD_AGENTS__SWEEP_INTERVAL_MS: '500',
    },
  };
  const a = await startServer({ ...common, name: 'A' });
  const b = await startServer({ ...common, name: 'B' });
  const alive = [a, b];
  const nodes = () => alive;
  const receiver = await startReceiver();
  const adminToken = await login(a.url, ADMIN_EMAIL, ADMIN_PASSWORD);
  const { inbox, inboundToken, webhookSecret } = await createApiInbox(a.url, adminToken, receiver.url);
  receiver.secret = webhookSecret;
  const agents = [];
  for (let i = 0; i < AGENTS; i++) {
    const { user, token } = await createAgent(a.url, adminToken, { capacity: 100 });
    agents.push(agentClient({ user, token, nodes, index: i }));
  }
  await Promise.all(agents.map((ag) => ag.connect()));

  const tag = rand(3);
  const tally = newTally();
  const acked = [];
  const customers = [
    ...Array.from({ length: API_CUSTOMERS }, (_, i) => apiCustomer({ tag, index: i, inboxId: inbox.id, token: inboundToken, nodes, tally, acked })),
    ...Array.from({ length: WIDGET_CUSTOMERS }, (_, i) => widgetCustomer({ tag, index: i, inboxId: a.inboxId, widgetKey: a.widgetKey, nodes, tally, acked })),
  ];
  await settle(PHASE_MS);

  const before = { acked: acked.length, s503: tally.statuses[503] || 0 };
  await pg.stop('immediate');
  const downAt = Date.now();
  flog(`PostgreSQL stopped (immediate) with ${before.acked} messages acknowledged`);
  // /readyz asked every half second meanwhile (answers may take a while: the pool waits for a
  // connection before giving up).
  const readyDuring = []; // answers received before the restart
  const polls = [];
  let restarted = false;
  while (Date.now() - downAt < PG_DOWN_MS) {
    for (const n of alive) polls.push(fetch(`${n.url}/readyz`).then((r) => (restarted ? null : readyDuring.push(r.status)), () => readyDuring.push('error')));
    await settle(500);
  }
  const ackedWhileDown = acked.length - before.acked;
  const refusedWhileDown = (tally.statuses[503] || 0) - before.s503;
  restarted = true;
  await pg.start();
  await Promise.all(polls);
  flog(`PostgreSQL back after ${Date.now() - downAt} ms; ${refusedWhileDown} 503s meanwhile`);
  const recovered = await waitFor(async () => {
    const rs = await Promise.all(alive.map((n) => fetch(`${n.url}/readyz`).then((r) => r.status).catch(() => 0)));
    return rs.every((s) => s === 200) ? rs : null;
  }, 60_000, 'both nodes ready again');
  const ackedAtRecovery = acked.length;
  await settle(PHASE_MS);
  await Promise.all(customers.map((cu) => cu.stop()));
  flog(`load stopped: ${tally.sent} sent, ${tally.acknowledged} acknowledged`);

  await waitFor(async () => {
    const [[queued]] = await sql(db, `SELECT COUNT(*) FROM conversations WHERE state = 'queued'`);
    return Number(queued) === 0;
  }, 30_000, 'every conversation routed');
  await Promise.all(agents.map((ag) => ag.resyncAll()));
  for (const ag of agents) {
    await ag.resyncHeld((await sql(db, `SELECT id FROM conversations WHERE assignee_id = ${ag.id}`)).map(([id]) => Number(id)));
  }
  const m = await checkMessages({ db, acked, agents, tenantInboxIds: [inbox.id, a.inboxId] });
  const as = await checkAssignments(db);
  const [[rows]] = await sql(db, `SELECT COUNT(*) FROM messages WHERE direction = 'inbound'`);
  report('PostgreSQL restart', {
    'messages sent': tally.sent,
    'acknowledged (2xx / ack)': tally.acknowledged,
    'statuses seen': tally.statuses,
    'network errors (retried)': tally.networkErrors,
    '503 while down': refusedWhileDown,
    '/readyz while down': [...new Set(readyDuring)],
    'acks arriving during the outage': ackedWhileDown,
    'acked after recovery': acked.length - ackedAtRecovery,
    'stored': `${m.stored} of ${acked.length} (inbound rows ${rows})`,
    'missing / corrupt': `${m.missing.length} / ${m.corrupt.length}`,
    'duplicates stored': m.duplicates.length,
    'reached the holding agent': `${m.delivered} of ${acked.length}`,
    'double holders / over capacity': `${as.doubles.length} / ${as.overCapacity.length}`,
    'server processes restarted': alive.filter((n) => n.proc.exitCode !== null || n.proc.signalCode !== null).length,
  });

  assert.deepEqual(tally.unexpected, [], 'only 2xx, 503 (widget: unavailable) or network errors');
  assert.ok(refusedWhileDown > 0, 'ingestion answered 503 while the database was down');
  assert.ok(readyDuring.includes(503), `/readyz answered 503 while down: ${readyDuring}`);
  assert.deepEqual(recovered, [200, 200]);
  assert.ok(acked.length > ackedAtRecovery, 'messages are acknowledged again after the restart');
  assert.equal(alive.filter((n) => n.proc.exitCode !== null || n.proc.signalCode !== null).length, 0, 'no node restarted');
  assert.equal(acked.length, tally.sent, 'every message sent was eventually acknowledged (retries)');
  assert.deepEqual(m.missing, [], 'every acknowledged message is stored');
  assert.deepEqual(m.corrupt, [], 'stored as sent');
  assert.deepEqual(m.duplicates, [], 'stored once');
  assert.equal(Number(rows), acked.length, 'no row that nobody was told about, none lost');
  assert.deepEqual(m.notDelivered, [], 'every acknowledged message reached the agent holding its conversation');
  assert.deepEqual(as.doubles, [], 'no conversation held by two agents');
  assert.deepEqual(as.loadMismatch, [], 'active_load agrees with what agents hold');
});

// Fault 2: Redis loses everything (FLUSHALL), then goes down and comes back empty (a restart
// without persistence), under load on two nodes sharing it. A private redis-server on a free
// port: the shared one on 6379 is never touched.
//
// Checked: routing keeps going (conversations arriving after the restart are assigned), presence
// is rebuilt from the live connections (every connected agent has a presence entry again, and no
// connected agent is marked offline or loses conversations because their entry vanished), every
// acknowledged message is stored once and reaches its agent (after a resync), and the database's
// own record shows no conversation held by two agents and nobody over capacity.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, createAgent, createApiInbox, createPgDatabase, login, rand, settle, startReceiver,
  startServer, waitFor,
} from '../e2e/harness.mjs';
import {
  agentClient, apiCustomer, checkAssignments, checkMessages, cleanupFaults, flog, newTally, privateRedis, report, size, sql,
  widgetCustomer,
} from './lib.mjs';

after(cleanupFaults);

const AGENTS = size(6, 30);
const API_CUSTOMERS = size(9, 60);
const WIDGET_CUSTOMERS = size(4, 20);
const PHASE_MS = size(3_000, 20_000);
const REDIS_DOWN_MS = size(2_000, 30_000);
const PRESENCE_TTL_SECS = 3;

test(`Redis FLUSHALL then restart mid-load: ${AGENTS} agents, ${API_CUSTOMERS} API + ${WIDGET_CUSTOMERS} widget customers, 2 nodes`, { timeout: 600_000 }, async () => {
  const redis = await privateRedis();
  const prefix = `sbfault:${rand()}:`;
  const dbName = createPgDatabase();
  const db = { db: dbName };
  const common = {
    db: 'postgres', dbName,
    env: {
      SWITCHBOARD_REDIS_URL: redis.url,
      SWITCHBOARD_REDIS_PREFIX: prefix,
      SWITCHBOARD_AGENTS__DISCONNECT_GRACE_SECS: '1',
      SWITCHBOARD_AGENTS__PRESENCE_TTL_SECS: String(PRESENCE_TTL_SECS),
      SWITCHBOARD_AGENTS__SWEEP_INTERVAL_MS: '500',
      SWITCHBOARD_OUTBOX__POLL_INTERVAL_MS: '200',
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
  const presenceKeys = async () => (await redis.cli('--scan', '--pattern', `${prefix}presence:*`)).split('\n').filter(Boolean).length;
  await waitFor(async () => (await presenceKeys()) >= AGENTS, 10_000, 'a presence entry per agent');

  const tag = rand(3);
  const tally = newTally();
  const acked = [];
  let customers = [
    ...Array.from({ length: API_CUSTOMERS }, (_, i) => apiCustomer({ tag, index: i, inboxId: inbox.id, token: inboundToken, nodes, tally, acked })),
    ...Array.from({ length: WIDGET_CUSTOMERS }, (_, i) => widgetCustomer({ tag, index: i, inboxId: a.inboxId, widgetKey: a.widgetKey, nodes, tally, acked })),
  ];

  await settle(PHASE_MS);
  assert.equal(await redis.cli('FLUSHALL'), 'OK');
  const afterFlush = await presenceKeys();
  const ackedAtFlush = acked.length;
  flog(`FLUSHALL with ${ackedAtFlush} messages acknowledged; presence keys right after: ${afterFlush}`);
  await settle(PHASE_MS);
  await redis.stop();
  const ackedAtStop = acked.length;
  flog(`redis-server killed with ${ackedAtStop} messages acknowledged; down for ${REDIS_DOWN_MS} ms`);
  await settle(REDIS_DOWN_MS);
  await redis.start();
  const ackedAtRestart = acked.length;
  flog('redis-server back, empty');
  // New customers after the restart: their conversations must be routed too.
  const late = Array.from({ length: API_CUSTOMERS }, (_, i) => apiCustomer({ tag: `${tag}-late`, index: i, inboxId: inbox.id, token: inboundToken, nodes, tally, acked }));
  customers = customers.concat(late);
  await settle(PHASE_MS);
  await Promise.all(customers.map((cu) => cu.stop()));
  flog(`load stopped: ${tally.sent} sent, ${tally.acknowledged} acknowledged`);

  // Presence rebuilt from the live connections (each node refreshes its sockets' entries).
  const rebuilt = await waitFor(async () => {
    const n = await presenceKeys();
    return n >= AGENTS ? n : null;
  }, 30_000, 'presence entries of every connected agent again');
  await waitFor(async () => {
    const [[queued]] = await sql(db, `SELECT COUNT(*) FROM conversations WHERE state = 'queued'`);
    return Number(queued) === 0;
  }, 30_000, 'every conversation routed');
  // Longer than the presence TTL + grace + a sweep: a connected agent wrongly judged absent
  // (their entry flushed) would have been marked offline by now.
  await settle((PRESENCE_TTL_SECS + 2) * 1000);
  await Promise.all(agents.map((ag) => ag.resyncAll()));
  for (const ag of agents) {
    await ag.resyncHeld((await sql(db, `SELECT id FROM conversations WHERE assignee_id = ${ag.id}`)).map(([id]) => Number(id)));
  }

  const m = await checkMessages({ db, acked, agents, tenantInboxIds: [inbox.id, a.inboxId] });
  const as = await checkAssignments(db);
  const lateConvs = new Set(acked.filter((x) => x.key.includes('-late-')).map((x) => x.conversationId));
  const [[lateAssigned]] = await sql(db, `SELECT COUNT(*) FROM conversations WHERE id IN (${[...lateConvs].join(',') || 0}) AND assignee_id IS NOT NULL`);
  const statuses = await sql(db, `SELECT status, COUNT(*) FROM users WHERE role = 'agent' GROUP BY status`);
  report('Redis FLUSHALL + restart', {
    'messages sent': tally.sent,
    'acknowledged (2xx / ack)': tally.acknowledged,
    'acknowledged at flush / at kill': `${ackedAtFlush} / ${ackedAtStop}`,
    'acknowledged while down / after': `${ackedAtRestart - ackedAtStop} / ${acked.length - ackedAtRestart}`,
    'statuses seen': tally.statuses,
    'network errors (retried)': tally.networkErrors,
    'stored': `${m.stored} of ${acked.length}`,
    'missing / corrupt': `${m.missing.length} / ${m.corrupt.length}`,
    'duplicates stored': m.duplicates.length,
    'reached the holding agent': `${m.delivered} of ${acked.length}`,
    'resync notices received by agents': agents.reduce((s, ag) => s + (ag.resyncs ?? 0), 0),
    'agent deliveries live / by sync': `${agents.reduce((s, ag) => s + ag.live, 0)} / ${agents.reduce((s, ag) => s + ag.viaSync, 0)}`,
    'presence keys flushed → rebuilt': `${afterFlush} → ${rebuilt}`,
    'agents by status': Object.fromEntries(statuses),
    'conversations after restart routed': `${lateAssigned} of ${lateConvs.size}`,
    'conversation events': as.kinds,
    'double holders / over capacity': `${as.doubles.length} / ${as.overCapacity.length}`,
  });

  assert.deepEqual(tally.unexpected, [], 'only 2xx, 503 or network errors');
  assert.ok(ackedAtStop > ackedAtFlush && acked.length > ackedAtStop, 'the load ran through every phase');
  assert.deepEqual(m.missing, [], 'every acknowledged message is stored');
  assert.deepEqual(m.corrupt, [], 'stored as sent');
  assert.deepEqual(m.duplicates, [], 'stored once');
  assert.deepEqual(m.notDelivered, [], 'every acknowledged message reached the agent holding its conversation');
  assert.ok(lateConvs.size > 0);
  assert.equal(Number(lateAssigned), lateConvs.size, 'conversations arriving after the restart are routed');
  assert.deepEqual(Object.fromEntries(statuses), { available: String(AGENTS) }, 'no connected agent was marked offline');
  assert.deepEqual(as.kinds.requeued ?? 0, 0, 'no connected agent lost a conversation');
  assert.deepEqual(as.doubles, [], 'no conversation held by two agents');
  assert.deepEqual(as.overCapacity, []);
  assert.deepEqual(as.loadMismatch, [], 'active_load agrees with what agents hold');
});

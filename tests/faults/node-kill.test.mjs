// Fault 1: `kill -9` of one of three server nodes (Postgres + Redis) in the middle of a load of
// widget and API-channel customers and agents replying.
//
// Checked: every message a customer got a 2xx / an ack for is stored once, with its text, and
// reached the agent holding its conversation (live, or by `sync {after: last seen}` after the
// agent reconnected to a surviving node); every reply an agent got an ack for — most of them
// committed while the business system was refusing deliveries, some leased by the killed node —
// is delivered once the receiver is back, once; the agent who does NOT come back after the crash
// is marked offline and their conversations go back to the queue and on to the others; no
// conversation was ever held twice and nobody holds more than their capacity.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, createAgent, createApiInbox, createPgDatabase, login, rand, settle, startReceiver,
  startServer, waitFor,
} from '../e2e/harness.mjs';
import {
  agentClient, apiCustomer, checkAssignments, checkMessages, cleanupFaults, flog, newTally, report, size, sql, widgetCustomer,
} from './lib.mjs';

after(cleanupFaults);

const AGENTS = size(6, 30);
const API_CUSTOMERS = size(9, 60);
const WIDGET_CUSTOMERS = size(6, 30);
const BEFORE_KILL_MS = size(4_000, 30_000);
const AFTER_KILL_MS = size(4_000, 30_000);
const PRESENCE_TTL_SECS = 3;
const GRACE_SECS = 1;

test(`kill -9 of a node mid-load: ${AGENTS} agents, ${API_CUSTOMERS} API + ${WIDGET_CUSTOMERS} widget customers, 3 nodes`, { timeout: 600_000 }, async () => {
  const dbName = createPgDatabase();
  const db = { db: dbName };
  const common = {
    db: 'postgres', dbName, redis: true, redisPrefix: `sbfault:${rand()}:`,
    env: {
      SWITCHBOARD_AGENTS__DISCONNECT_GRACE_SECS: String(GRACE_SECS),
      SWITCHBOARD_AGENTS__PRESENCE_TTL_SECS: String(PRESENCE_TTL_SECS),
      SWITCHBOARD_AGENTS__SWEEP_INTERVAL_MS: '500',
      SWITCHBOARD_OUTBOX__BASE_BACKOFF_MS: '200',
      SWITCHBOARD_OUTBOX__MAX_BACKOFF_MS: '1000',
      SWITCHBOARD_OUTBOX__POLL_INTERVAL_MS: '200',
      // A lease held by the killed node runs out quickly; nothing may be dead-lettered here.
      SWITCHBOARD_OUTBOX__LEASE_MS: '2000',
      SWITCHBOARD_OUTBOX__MAX_ATTEMPTS: '10000',
    },
  };
  const a = await startServer({ ...common, name: 'A' });
  const b = await startServer({ ...common, name: 'B' });
  const c = await startServer({ ...common, name: 'C' });
  let alive = [a, b, c];
  const nodes = () => alive;

  let receiverDown = true;
  const receiver = await startReceiver({ respond: () => (receiverDown ? 503 : 200) });
  const adminToken = await login(a.url, ADMIN_EMAIL, ADMIN_PASSWORD);
  const { inbox, inboundToken, webhookSecret } = await createApiInbox(a.url, adminToken, receiver.url);
  receiver.secret = webhookSecret;

  // Agents reply to every third API-channel message they see.
  const replies = []; // acked replies: {messageId, conversationId, beforeKill}
  const replyErrors = [];
  let unacked = 0;
  let killed = false;
  let seenApi = 0;
  const onMessage = (agent, m) => {
    if (m.direction !== 'inbound' || m.inbox_id !== inbox.id || ++seenApi % 3 !== 0) return;
    agent.client.request('reply', { conversation_id: m.conversation_id, text: `reply to ${m.id}`, client_message_id: `r-${m.id}` }, 15_000)
      .then((ack) => {
        if (ack?.ok) replies.push({ messageId: ack.message.id, conversationId: m.conversation_id, beforeKill: !killed });
        else replyErrors.push(JSON.stringify(ack));
      })
      // No ack at all: the agent's node died with the request (or it timed out); the reply may
      // or may not be committed, and the agent would send it again. Counted, not checked.
      .catch(() => { unacked++; });
  };
  const agents = [];
  for (let i = 0; i < AGENTS; i++) {
    const { user, token } = await createAgent(a.url, adminToken, { capacity: 100 });
    agents.push(agentClient({ user, token, nodes, index: i, onMessage }));
  }
  await Promise.all(agents.map((ag) => ag.connect()));
  flog(`nodes ${alive.map((n) => n.url).join(' ')}; ${agents.length} agents available`);

  const tag = rand(3);
  const tally = newTally();
  const acked = [];
  const customers = [
    ...Array.from({ length: API_CUSTOMERS }, (_, i) => apiCustomer({ tag, index: i, inboxId: inbox.id, token: inboundToken, nodes, tally, acked })),
    ...Array.from({ length: WIDGET_CUSTOMERS }, (_, i) => widgetCustomer({ tag, index: i, inboxId: a.inboxId, widgetKey: a.widgetKey, nodes, tally, acked })),
  ];

  await settle(BEFORE_KILL_MS);
  // C's agents: the first stays away for good, the others come back on A or B and resync.
  const victims = agents.filter((ag) => ag.node === c);
  assert.ok(victims.length >= 2, 'C has agents to lose');
  const goneAgent = victims[0];
  goneAgent.reconnect = false;
  const [heldAtKill] = await sql(db, `SELECT COUNT(*) FROM conversations WHERE assignee_id = ${goneAgent.id} AND state IN ('offered', 'assigned', 'waiting_on_customer')`);
  const ackedBeforeKill = acked.length;
  const repliesBeforeKill = replies.length;
  killed = true;
  alive = [a, b];
  const exit = await c.kill();
  assert.equal(exit.signal, 'SIGKILL');
  flog(`killed C with ${ackedBeforeKill} messages acknowledged and ${repliesBeforeKill} replies committed (receiver refusing); agent ${goneAgent.id} held ${heldAtKill[0]} and stays away`);
  assert.ok(Number(heldAtKill[0]) > 0, 'the agent who stays away held conversations at the crash');
  await settle(1_000);
  receiverDown = false;
  await settle(AFTER_KILL_MS);
  await Promise.all(customers.map((cu) => cu.stop()));
  flog(`load stopped: ${tally.sent} sent, ${tally.acknowledged} acknowledged`);

  // The absent agent: offline, and nothing of theirs is left with them.
  const goneOffline = await waitFor(async () => {
    const [[status, held]] = await sql(db, `SELECT status, (SELECT COUNT(*) FROM conversations WHERE assignee_id = ${goneAgent.id} AND state IN ('offered', 'assigned', 'waiting_on_customer')) FROM users WHERE id = ${goneAgent.id}`);
    return status === 'offline' && Number(held) === 0 ? { status, held } : null;
  }, 60_000, 'the dead node\'s absent agent to be offline with their conversations requeued');
  const [[requeuedFromGone]] = await sql(db, `SELECT COUNT(*) FROM conversation_events WHERE kind = 'requeued' AND actor_user_id = ${goneAgent.id}`);
  // Everyone else's conversations are all held again (capacity is ample): nothing stuck queued.
  await waitFor(async () => {
    const [[queued]] = await sql(db, `SELECT COUNT(*) FROM conversations WHERE state = 'queued'`);
    return Number(queued) === 0;
  }, 60_000, 'no conversation left queued');
  // Every acked reply delivered.
  const delivered = (id) => receiver.acknowledged.some((d) => d.body?.message?.id === id);
  await waitFor(() => replies.every((r) => delivered(r.messageId)), 60_000, 'every acknowledged reply delivered');
  await settle(1_000); // a stray duplicate delivery would show up meanwhile
  // Agents resync every conversation from their last seen id (what the console does after a gap).
  const present = agents.filter((ag) => ag !== goneAgent);
  await Promise.all(present.map((ag) => ag.resyncAll()));
  for (const ag of present) {
    await ag.resyncHeld((await sql(db, `SELECT id FROM conversations WHERE assignee_id = ${ag.id}`)).map(([id]) => Number(id)));
  }

  const m = await checkMessages({ db, acked, agents: present, tenantInboxIds: [inbox.id, a.inboxId] });
  const as = await checkAssignments(db);
  const ackedPerDelivery = new Map();
  for (const d of receiver.acknowledged) ackedPerDelivery.set(d.deliveryId, (ackedPerDelivery.get(d.deliveryId) || 0) + 1);
  const replyDuplicates = [...ackedPerDelivery.values()].filter((n) => n > 1).length;
  const replyIds = new Set(replies.map((r) => r.messageId));
  const deliveredReplies = receiver.acknowledged.filter((d) => replyIds.has(d.body?.message?.id)).length;
  report('kill -9 of node C', {
    'messages sent': tally.sent,
    'acknowledged (2xx / ack)': tally.acknowledged,
    'acknowledged before the kill': ackedBeforeKill,
    'statuses seen': tally.statuses,
    'network errors (retried)': tally.networkErrors,
    'stored': `${m.stored} of ${acked.length}`,
    'missing / corrupt': `${m.missing.length} / ${m.corrupt.length}`,
    'duplicates stored': m.duplicates.length,
    'reached the holding agent': `${m.delivered} of ${acked.length}`,
    'agent deliveries live / by sync': `${present.reduce((s, ag) => s + ag.live, 0)} / ${present.reduce((s, ag) => s + ag.viaSync, 0)}`,
    'agent reconnects': present.reduce((s, ag) => s + ag.reconnects, 0),
    'replies acked (before kill)': `${replies.length} (${repliesBeforeKill})`,
    'replies never acked (node died)': unacked,
    'replies delivered (acks)': deliveredReplies,
    'reply deliveries acked twice': replyDuplicates,
    'absent agent': `${goneAgent.id}: ${goneOffline.status}, ${requeuedFromGone} conversation(s) requeued`,
    'conversation events': as.kinds,
    'double holders / over capacity': `${as.doubles.length} / ${as.overCapacity.length}`,
  });

  assert.deepEqual(tally.unexpected, [], 'only 2xx, 503 or network errors');
  assert.deepEqual(m.missing, [], 'every acknowledged message is stored');
  assert.deepEqual(m.corrupt, [], 'stored as sent');
  assert.deepEqual(m.duplicates, [], 'stored once');
  assert.equal(m.ackedTwice, 0);
  assert.deepEqual(m.notDelivered, [], 'every acknowledged message reached the agent holding its conversation');
  assert.deepEqual(replyErrors, [], 'agents\' replies acked');
  assert.ok(repliesBeforeKill > 0, 'replies were committed before the crash');
  assert.equal(deliveredReplies, replies.length, 'each acked reply delivered');
  assert.equal(replyDuplicates, 0, 'no delivery acknowledged twice');
  assert.equal(receiver.badSignatures.length, 0);
  assert.ok(Number(requeuedFromGone) >= Number(heldAtKill[0]), 'the absent agent\'s conversations went back to the queue');
  assert.deepEqual(as.doubles, [], 'no conversation held by two agents');
  assert.deepEqual(as.overCapacity, []);
  assert.deepEqual(as.loadMismatch, [], 'active_load agrees with what agents hold');
  const [[pendingOutbox]] = await sql(db, `SELECT COUNT(*) FROM outbox WHERE status <> 'delivered'`);
  assert.equal(Number(pendingOutbox), 0, 'nothing left in the outbox');
});

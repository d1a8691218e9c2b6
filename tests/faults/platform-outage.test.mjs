// Fault 4: the receiving platform (the API channel's webhook: a business system, standing in for
// any platform API) is down, slow and rate-limiting for a while, on two nodes.
//
// The receiver answers, while the outage lasts, a mix of 503, 429 with Retry-After, and replies
// slower than `outbox.request_timeout_ms`; after it every delivery is accepted, except those of
// one "broken" contact, refused for good. Checked: every acknowledged reply of the other contacts
// is delivered, and acknowledged once (by delivery id); no entry is dead-lettered before
// `outbox.max_attempts`, the broken contact's entries are, after exactly that many attempts; each
// retry comes no sooner than the backoff (base × 2^(n-1), capped) after the previous attempt;
// retrying a dead letter (`POST /outbox/{id}/retry`) delivers it once the receiver accepts.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, apiOk, availableAgent, createAgent, createApiInbox, createPgDatabase, login, postInbound,
  rand, settle, startReceiver, startServer, waitFor,
} from '../e2e/harness.mjs';
import { cleanupFaults, flog, report, size, sql } from './lib.mjs';

after(cleanupFaults);

const CONTACTS = size(4, 10);
const REPLIES_PER_CONTACT = size(4, 10);
const OUTAGE_MS = size(4_000, 120_000);
const BASE_BACKOFF_MS = size(200, 1_000);
const MAX_BACKOFF_MS = size(1_000, 15_000);
const MAX_ATTEMPTS = size(8, 16);
const REQUEST_TIMEOUT_MS = 1_000;

test(`platform down / slow / 429 for ${OUTAGE_MS} ms: backoff, nothing lost, dead letters after ${MAX_ATTEMPTS} attempts`, { timeout: 900_000 }, async () => {
  const dbName = createPgDatabase();
  const common = {
    db: 'postgres', dbName, redis: true, redisPrefix: `sbfault:${rand()}:`,
    env: {
      SWITCHBOARD_OUTBOX__BASE_BACKOFF_MS: String(BASE_BACKOFF_MS),
      SWITCHBOARD_OUTBOX__MAX_BACKOFF_MS: String(MAX_BACKOFF_MS),
      SWITCHBOARD_OUTBOX__MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      SWITCHBOARD_OUTBOX__REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      SWITCHBOARD_OUTBOX__POLL_INTERVAL_MS: '100',
    },
  };
  const a = await startServer({ ...common, name: 'A' });
  const b = await startServer({ ...common, name: 'B' });

  // The receiver's behaviour: an outage (a mix of refusals), then healthy; the broken contact is
  // refused always until `brokenFixed`.
  let outageUntil = Infinity;
  let brokenFixed = false;
  const kinds = { 503: 0, 429: 0, slow: 0, broken: 0, ok: 0 };
  const receiver = await startReceiver({
    respond: (attempt, n) => {
      if (attempt.body?.contact?.id === 'broken' && !brokenFixed) { kinds.broken++; return 503; }
      if (Date.now() < outageUntil) {
        const k = n % 3;
        if (k === 0) { kinds.slow++; return 'slow'; }
        if (k === 1) { kinds[429]++; return 429; }
        kinds[503]++;
        return 503;
      }
      kinds.ok++;
      return 200;
    },
  });
  // Slow answers: held past the server's request timeout, then a 503 (never a late success).
  const origEmit = receiver.server.emit.bind(receiver.server);
  receiver.server.emit = (event, req, res, ...rest) => {
    if (event === 'request') {
      const origWriteHead = res.writeHead.bind(res);
      res.writeHead = (status, headers) => {
        if (status === 'slow') {
          res.writeHead = origWriteHead;
          const origEnd = res.end.bind(res);
          res.end = (body) => setTimeout(() => { origWriteHead(503, headers); origEnd(body); }, REQUEST_TIMEOUT_MS + 500);
          return res;
        }
        if (status === 429) return origWriteHead(429, { ...headers, 'retry-after': '1' });
        return origWriteHead(status, headers);
      };
    }
    return origEmit(event, req, res, ...rest);
  };

  const adminToken = await login(a.url, ADMIN_EMAIL, ADMIN_PASSWORD);
  const { inbox, inboundToken, webhookSecret } = await createApiInbox(a.url, adminToken, receiver.url);
  receiver.secret = webhookSecret;
  const agent = await createAgent(a.url, adminToken, { capacity: 100 });
  const agentSock = await availableAgent(b.url, agent.token);

  const contacts = [...Array.from({ length: CONTACTS }, (_, i) => `c${i}`), 'broken'];
  const conversations = {};
  for (const contact of contacts) {
    const r = await postInbound(a.url, inbox.id, inboundToken, { message_id: `in-${contact}`, contact: { id: contact }, text: `hello from ${contact}` });
    assert.equal(r.status, 201, r.text);
    conversations[contact] = r.body.conversation_id;
    await agentSock.next('conversation', (c) => c.id === r.body.conversation_id && c.assignee_id === agent.user.id, 15_000);
  }

  outageUntil = Date.now() + OUTAGE_MS;
  const replies = []; // {contact, id}
  for (let i = 0; i < REPLIES_PER_CONTACT; i++) {
    for (const contact of contacts) {
      const ack = await agentSock.request('reply', { conversation_id: conversations[contact], text: `reply ${i} to ${contact}`, client_message_id: `r-${contact}-${i}` });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      replies.push({ contact, id: ack.message.id });
    }
  }
  flog(`${replies.length} replies acknowledged; receiver failing for ${OUTAGE_MS} ms`);
  const healthy = replies.filter((r) => r.contact !== 'broken');
  const broken = replies.filter((r) => r.contact === 'broken');
  const attemptsOf = (id) => receiver.attempts.filter((x) => x.body?.message?.id === id);
  const deliveredOnce = (id) => receiver.acknowledged.filter((x) => x.body?.message?.id === id).length;

  // While the outage lasts, nothing may be dead-lettered before its attempts are spent.
  const early = [];
  while (Date.now() < outageUntil) {
    const dead = await apiOk(a.url, adminToken, 'GET', '/outbox?status=dead');
    for (const e of dead) {
      const n = receiver.attempts.filter((x) => x.deliveryId === String(e.id)).length;
      if (e.attempts < MAX_ATTEMPTS || n < MAX_ATTEMPTS) early.push(`${e.id}: ${e.attempts} attempts (${n} seen)`);
    }
    await settle(500);
  }
  await waitFor(() => healthy.every((r) => deliveredOnce(r.id) >= 1), 300_000, 'every healthy reply delivered after the outage');
  const deadLetters = await waitFor(async () => {
    const dead = await apiOk(a.url, adminToken, 'GET', '/outbox?status=dead');
    return dead.length >= broken.length ? dead : null;
  }, 300_000, 'the broken contact\'s entries dead-lettered');
  await settle(1_000);

  // Backoff: each retry of one delivery no sooner than the backoff after the previous attempt
  // started (the failure is recorded after the attempt ends, so the real gap is larger).
  const tooSoon = [];
  const byDelivery = new Map();
  for (const x of receiver.attempts) {
    if (!byDelivery.has(x.deliveryId)) byDelivery.set(x.deliveryId, []);
    byDelivery.get(x.deliveryId).push(x.at);
  }
  for (const [id, ats] of byDelivery) {
    for (let n = 1; n < ats.length; n++) {
      const backoff = Math.min(BASE_BACKOFF_MS * 2 ** (n - 1), MAX_BACKOFF_MS);
      if (ats[n] - ats[n - 1] < backoff - 20) tooSoon.push(`${id}: attempt ${n + 1} ${ats[n] - ats[n - 1]} ms after ${n} (backoff ${backoff})`);
    }
  }
  const deadIds = new Set(deadLetters.map((e) => e.id));
  const brokenDeliveryIds = new Set(broken.map((r) => attemptsOf(r.id)[0]?.deliveryId));
  const wrongDead = deadLetters.filter((e) => !brokenDeliveryIds.has(String(e.id)));
  const brokenAttempts = broken.map((r) => attemptsOf(r.id).length);
  const dupes = healthy.filter((r) => deliveredOnce(r.id) !== 1).map((r) => `${r.id}×${deliveredOnce(r.id)}`);

  // Replay: the broken contact's system is fixed; retrying each dead letter delivers it.
  brokenFixed = true;
  for (const e of deadLetters) await apiOk(a.url, adminToken, 'POST', `/outbox/${e.id}/retry`, undefined, [200, 202, 204]);
  await waitFor(() => broken.every((r) => deliveredOnce(r.id) >= 1), 60_000, 'replayed dead letters delivered');
  await settle(1_000);
  const [[left]] = await sql({ db: dbName }, `SELECT COUNT(*) FROM outbox WHERE status <> 'delivered'`);
  const maxAttempts = Math.max(...[...byDelivery.values()].map((v) => v.length));

  report('platform down / slow / 429', {
    'replies acknowledged': replies.length,
    'receiver answers': kinds,
    'healthy replies delivered': `${healthy.filter((r) => deliveredOnce(r.id) === 1).length} of ${healthy.length}`,
    'acknowledged more than once': dupes.length,
    'dead letters (expected)': `${deadLetters.length} (${broken.length})`,
    'attempts per dead letter': brokenAttempts,
    'most attempts of any delivery': maxAttempts,
    'dead-lettered early': early.length,
    'retries sooner than backoff': tooSoon.length,
    'replayed dead letters delivered': `${broken.filter((r) => deliveredOnce(r.id) === 1).length} of ${broken.length}`,
    'outbox entries not delivered': left,
  });
  assert.ok(kinds.slow > 0 && kinds[429] > 0 && kinds[503] > 0, 'the outage showed every failure kind');
  assert.deepEqual(early, [], 'nothing dead-lettered before max_attempts');
  assert.deepEqual(dupes, [], 'each healthy reply acknowledged once');
  assert.deepEqual(wrongDead.map((e) => e.id), [], 'only the broken contact\'s entries are dead letters');
  assert.equal(deadIds.size, broken.length);
  assert.deepEqual(brokenAttempts, broken.map(() => MAX_ATTEMPTS), `dead after exactly ${MAX_ATTEMPTS} attempts`);
  assert.ok(maxAttempts <= MAX_ATTEMPTS + 1, 'no delivery tried past the limit (+1 replay)');
  assert.deepEqual(tooSoon, [], 'retries back off');
  assert.deepEqual(broken.map((r) => deliveredOnce(r.id)), broken.map(() => 1), 'replayed dead letters delivered once');
  assert.equal(Number(left), 0, 'the outbox is empty at the end');
  assert.equal(receiver.badSignatures.length, 0);
});

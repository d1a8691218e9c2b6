// A committed reply survives a crash (embedded SQLite): the webhook receiver is down, the agent's
// reply is acknowledged, the server is killed with SIGKILL, the receiver comes back, and the
// restarted server delivers the reply — under the same delivery id, acknowledged once.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, apiOk, availableAgent, cleanupAll, createAgent, createApiInbox, log, login, postInbound,
  settle, startReceiver, startServer, tempDir, waitFor,
} from './harness.mjs';

after(cleanupAll);

test('outbox: reply committed before kill -9 is delivered after restart', { timeout: 60_000 }, async () => {
  const dataDir = tempDir();
  const env = {
    SWITCHBOARD_OUTBOX__BASE_BACKOFF_MS: '300',
    SWITCHBOARD_OUTBOX__MAX_BACKOFF_MS: '1000',
    SWITCHBOARD_OUTBOX__POLL_INTERVAL_MS: '200',
    // A lease held by the killed process must not hold the entry for the default 30 s.
    SWITCHBOARD_OUTBOX__LEASE_MS: '2000',
  };
  const receiver = await startReceiver({ respond: () => 503 });
  let server = await startServer({ db: 'sqlite', dataDir, env, name: 'first' });
  const adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
  const { inbox, inboundToken, webhookSecret } = await createApiInbox(server.url, adminToken, receiver.url);
  receiver.secret = webhookSecret;
  const agent = await createAgent(server.url, adminToken);
  const agentSock = await availableAgent(server.url, agent.token);

  const inbound = await postInbound(server.url, inbox.id, inboundToken, { message_id: 'crash-1', contact: { id: 'cust-crash' }, text: 'hello?' });
  assert.equal(inbound.status, 201, inbound.text);
  const conversationId = inbound.body.conversation_id;
  await agentSock.next('conversation', (c) => c.id === conversationId && c.assignee_id === agent.user.id);

  const ack = await agentSock.request('reply', { conversation_id: conversationId, text: 'survives the crash', client_message_id: 'crash-r1' });
  assert.equal(ack.ok, true, JSON.stringify(ack));
  const replyId = ack.message.id;

  // The worker tried and the receiver refused: the entry is pending, with a known delivery id.
  const refused = await waitFor(() => receiver.attempts.find((a) => a.body?.message?.id === replyId), 10_000, 'a first (refused) attempt');
  assert.equal(refused.status, 503);
  assert.ok(refused.verified, 'the refused attempt was properly signed');
  const deliveryId = refused.deliveryId;
  log(`delivery ${deliveryId} refused ${receiver.attemptsFor(deliveryId).length} time(s) before the crash`);

  agentSock.close();
  const exit = await server.kill();
  assert.equal(exit.signal, 'SIGKILL');
  const beforeRestart = receiver.attempts.length;

  receiver.respond = () => 200;
  server = await startServer({ db: 'sqlite', dataDir, env, name: 'restarted' });
  assert.match(server.stdout, /Log in as admin@example\.com/, 'the restart reuses the existing database');

  const delivered = await waitFor(() => receiver.acknowledged.find((a) => a.body?.message?.id === replyId), 20_000, 'delivery after restart');
  assert.equal(delivered.deliveryId, deliveryId, 'the delivery id is stable across the crash');
  assert.ok(delivered.verified, 'signed with the same secret after restart');
  assert.equal(delivered.body.message.text, 'survives the crash');
  assert.equal(delivered.body.contact.id, 'cust-crash');
  assert.ok(receiver.attempts.indexOf(delivered) >= beforeRestart, 'delivered by the restarted process');

  const token = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
  const entry = await waitFor(async () => {
    const list = await apiOk(server.url, token, 'GET', '/outbox?status=delivered');
    return list.find((e) => String(e.id) === deliveryId);
  }, 10_000, 'the entry to be recorded as delivered');
  log(`entry ${entry.id}: status ${entry.status}, attempts ${entry.attempts}`);
  // Once recorded as delivered nothing may resend it; give a stray retry the time of two polls to show.
  await settle(600);
  const acked = receiver.acknowledged.filter((a) => a.deliveryId === deliveryId);
  assert.equal(acked.length, 1, `acknowledged once: ${acked.length}`);
  assert.equal(receiver.badSignatures.length, 0);
  const all = await apiOk(server.url, token, 'GET', `/conversations/${conversationId}/messages`);
  assert.equal(all.filter((m) => m.text === 'survives the crash').length, 1, 'the reply is stored once');
  const pending = await apiOk(server.url, token, 'GET', '/outbox?status=pending');
  assert.equal(pending.filter((e) => String(e.id) === deliveryId).length, 0, 'nothing left pending');
});

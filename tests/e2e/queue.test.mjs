// The queue as customers and supervisors see it, with real socket.io-clients: a waiting
// customer hears their position; an agent who vanishes past the grace period gives their
// conversations back to the queue (same place), and the next agent with room takes them.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, apiOk, availableAgent, cleanupAll, connectWidget, createAgent, log, login, startServer, waitFor,
} from './harness.mjs';

describe('queue positions and requeue on disconnect (SQLite)', { timeout: 60_000 }, () => {
  let server, adminToken;

  before(async () => {
    server = await startServer({ db: 'sqlite', env: { SWITCHBOARD_AGENTS__DISCONNECT_GRACE_SECS: '1' } });
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
  });

  after(cleanupAll);

  it('an absent agent\'s conversation goes back to the queue and to the next agent', async () => {
    const first = await createAgent(server.url, adminToken, { capacity: 2 });
    const firstSock = await availableAgent(server.url, first.token);

    const customer = await connectWidget(server.url, server.inboxId, server.widgetKey);
    await customer.next('session');
    const sent = await customer.request('message', { client_message_id: 'r-1', text: 'help please' });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    const assigned = await firstSock.next('conversation', (c) => c.id === sent.conversation_id && c.assignee_id === first.user.id);
    const queuedAt = assigned.queued_at;

    // The agent's browser vanishes. After the 1 s grace the conversation is queued again, with
    // its original queued_at (its place), and the customer is told where they stand.
    firstSock.close();
    const requeued = await waitFor(async () => {
      const c = await apiOk(server.url, adminToken, 'GET', `/conversations/${sent.conversation_id}`);
      return c.state === 'queued' && c;
    }, 10_000, 'the conversation to be requeued');
    assert.equal(requeued.assignee_id, null);
    assert.equal(requeued.queued_at, queuedAt, 'requeued at its original place');
    const position = await customer.next('queue', (q) => q.conversation_id === sent.conversation_id, 10_000);
    log(`customer queue event: ${JSON.stringify(position)}`);
    assert.equal(position.position, 1);
    const agentRow = await apiOk(server.url, adminToken, 'GET', `/users/${first.user.id}`);
    assert.equal(agentRow.status, 'offline');
    assert.equal(agentRow.active_load, 0, 'the slot was released');

    // The next agent with room takes it at once.
    const second = await createAgent(server.url, adminToken, { capacity: 1 });
    const secondSock = await availableAgent(server.url, second.token);
    const taken = await secondSock.next('conversation', (c) => c.id === sent.conversation_id && c.assignee_id === second.user.id, 10_000);
    assert.equal(taken.state, 'assigned');
    const reply = await secondSock.request('reply', { conversation_id: sent.conversation_id, text: 'I am here', client_message_id: 'r-a1' });
    assert.equal(reply.ok, true, JSON.stringify(reply));
    const got = await customer.next('message', (m) => m.text === 'I am here');
    assert.equal(got.id, reply.message.id);
  });

  it('supervisors receive the queue snapshot on their socket', async () => {
    const sup = await createAgent(server.url, adminToken, { role: 'supervisor', capacity: 1 });
    const supSock = await availableAgent(server.url, sup.token);
    await supSock.request('status', { status: 'away' });
    const customer = await connectWidget(server.url, server.inboxId, server.widgetKey);
    await customer.next('session');
    const sent = await customer.request('message', { client_message_id: 's-1', text: 'queue me' });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    const snap = await supSock.next('queue', (s) => (s.queues || []).some((q) => q.waiting.some((w) => w.conversation_id === sent.conversation_id)), 10_000);
    assert.ok(snap.agents.some((a) => a.user_id === sup.user.id && a.status === 'away'), JSON.stringify(snap.agents));
  });
});

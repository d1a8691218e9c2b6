// Two server processes on one Postgres database and one Redis prefix: a customer on node A's
// widget and an agent on node B's console still meet, and messages and typing notices flow both
// ways.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, apiOk, availableAgent, cleanupAll, connectWidget, createAgent, createApiInbox,
  createPgDatabase, log, login, postInbound, rand, startReceiver, startServer, waitFor,
} from './harness.mjs';

after(cleanupAll);

test('multi-node: widget on A, agent on B (Postgres + Redis)', { timeout: 60_000 }, async () => {
  const dbName = createPgDatabase();
  const redisPrefix = `sbe2e:${rand()}:`;
  const common = { db: 'postgres', dbName, redis: true, redisPrefix };
  // A first: it migrates and bootstraps the empty database; B joins an initialised one.
  const a = await startServer({ ...common, name: 'A' });
  const b = await startServer({ ...common, name: 'B' });
  log(`A ${a.url}, B ${b.url}, database ${dbName}, redis prefix ${redisPrefix}`);
  assert.notEqual(a.port, b.port);
  assert.equal(b.inboxId, a.inboxId, 'both nodes see the same bootstrap inbox');
  assert.equal(b.widgetKey, a.widgetKey);

  const adminToken = await login(a.url, ADMIN_EMAIL, ADMIN_PASSWORD);
  const agent = await createAgent(a.url, adminToken);
  // A session created through A is valid on B (shared database).
  const me = await apiOk(b.url, agent.token, 'GET', '/me', undefined, [200]);
  assert.equal(me.id, agent.user.id);

  const agentSock = await availableAgent(b.url, agent.token);
  const customer = await connectWidget(a.url, a.inboxId, a.widgetKey);
  await customer.next('session');

  const sent = await customer.request('message', { client_message_id: 'mn-1', text: 'hello from node A' });
  assert.equal(sent.ok, true, JSON.stringify(sent));
  const conversationId = sent.conversation_id;

  const conv = await agentSock.next('conversation', (c) => c.id === conversationId && c.assignee_id === agent.user.id, 10_000);
  assert.equal(conv.state, 'assigned');
  // Visible on B's REST immediately (same database).
  const onB = await apiOk(b.url, adminToken, 'GET', `/conversations/${conversationId}/messages`);
  assert.deepEqual(onB.map((m) => m.id), [sent.message.id]);

  // Agent on B → customer on A.
  const reply = await agentSock.request('reply', { conversation_id: conversationId, text: 'hello from node B', client_message_id: 'mn-r1' });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  const got = await customer.next('message', (m) => m.id === reply.message.id, 10_000);
  assert.equal(got.text, 'hello from node B');
  assert.equal(got.direction, 'outbound');

  // Customer on A → agent on B, live (the conversation is assigned now).
  const second = await customer.request('message', { client_message_id: 'mn-2', text: 'second from node A' });
  assert.equal(second.ok, true, JSON.stringify(second));
  const live = await agentSock.next('message', (m) => m.id === second.message.id, 10_000);
  assert.equal(live.text, 'second from node A');
  assert.equal(live.direction, 'inbound');

  // Typing, both ways across the nodes (ephemeral: relayed through the bus, never stored).
  const typed = await customer.request('typing');
  assert.equal(typed.ok, true, JSON.stringify(typed));
  assert.equal(typed.relayed, true);
  const seen = await agentSock.next('typing', (n) => n.conversation_id === conversationId, 10_000);
  assert.equal(seen.sender, 'contact');
  const agentTyped = await agentSock.request('typing', { conversation_id: conversationId });
  assert.equal(agentTyped.relayed, true, JSON.stringify(agentTyped));
  const shown = await customer.next('typing', (n) => n.sender === 'agent', 10_000);
  assert.equal(shown.conversation_id, conversationId);
  // A second notice within the second is dropped by the server, not relayed.
  assert.equal((await customer.request('typing')).relayed, false);
  assert.equal(customer.count('typing', (n) => n.sender === 'contact'), 0, 'the customer does not hear their own typing');

  // No duplicate pushes across nodes: each message reached each client at most once.
  const dupes = (events) => events.length - new Set(events.map((m) => m.id)).size;
  log(`agent got ${agentSock.count('message')} message event(s), customer got ${customer.count('message')}`);
  assert.equal(dupes(agentSock.events.message || []), 0, 'no message pushed twice to the agent');
  assert.equal(dupes(customer.events.message || []), 0, 'no message pushed twice to the customer');
});

test('multi-node: two nodes started at once on an EMPTY database both come up, one bootstrap', { timeout: 60_000 }, async () => {
  const dbName = createPgDatabase();
  const common = { db: 'postgres', dbName, redis: true, redisPrefix: `sbe2e:${rand()}:` };
  const results = await Promise.allSettled([startServer({ ...common, name: 'C1' }), startServer({ ...common, name: 'C2' })]);
  const failed = results.filter((r) => r.status === 'rejected').map((r) => r.reason.message.slice(0, 3000));
  assert.deepEqual(failed, [], 'both nodes start');
  const [c1, c2] = results.map((r) => r.value);
  assert.equal(c1.inboxId, c2.inboxId, 'both print the same bootstrap inbox');
  const created = [c1, c2].filter((s) => /First start: created/.test(s.stdout)).length;
  log(`nodes that bootstrapped: ${created}`);
  assert.equal(created, 1, 'exactly one node bootstrapped the tenant');
  const token = await login(c2.url, ADMIN_EMAIL, ADMIN_PASSWORD);
  const inboxes = await apiOk(c1.url, token, 'GET', '/inboxes');
  assert.equal(inboxes.length, 1, `one bootstrap inbox: ${JSON.stringify(inboxes.map((i) => i.id))}`);
  const users = await apiOk(c1.url, token, 'GET', '/users');
  assert.equal(users.length, 1, 'one admin');
});

test('multi-node: API channel races and webhook delivery across two nodes (Postgres)', { timeout: 60_000 }, async () => {
  const dbName = createPgDatabase();
  const common = {
    db: 'postgres', dbName, redis: true, redisPrefix: `sbe2e:${rand()}:`,
    env: { SWITCHBOARD_OUTBOX__BASE_BACKOFF_MS: '200', SWITCHBOARD_OUTBOX__POLL_INTERVAL_MS: '100' },
  };
  const a = await startServer({ ...common, name: 'A' });
  const b = await startServer({ ...common, name: 'B' });
  const receiver = await startReceiver();
  const adminToken = await login(a.url, ADMIN_EMAIL, ADMIN_PASSWORD);
  const { inbox, inboundToken, webhookSecret } = await createApiInbox(a.url, adminToken, receiver.url);
  receiver.secret = webhookSecret;
  const agent = await createAgent(a.url, adminToken);
  const agentSock = await availableAgent(b.url, agent.token);

  // The same new message of a new contact, posted 5× to each node at once.
  const body = { message_id: 'pg-race', contact: { id: 'pg-cust' }, text: 'postgres race' };
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => postInbound(i % 2 ? b.url : a.url, inbox.id, inboundToken, body)));
  const statuses = results.map((r) => r.status);
  log(`same-id race across nodes: ${statuses.join(',')}`);
  assert.equal(statuses.filter((s) => s === 201).length, 1, `exactly one 201: ${statuses} ${results.find((r) => r.status >= 300)?.text ?? ''}`);
  assert.equal(statuses.filter((s) => s === 200).length, 9, `nine duplicates: ${statuses}`);

  // Ten different messages of another new contact, split across nodes: one conversation.
  const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => postInbound(i % 2 ? b.url : a.url, inbox.id, inboundToken,
    { message_id: `pg-burst-${i}`, contact: { id: 'pg-burst' }, text: `burst ${i}` })));
  const burstStatuses = burst.map((r) => r.status);
  log(`new-contact burst across nodes: ${burstStatuses.join(',')}`);
  assert.deepEqual(burstStatuses, Array(10).fill(201), burst.filter((r) => r.status !== 201).map((r) => r.text).join(' | '));
  const convIds = new Set(burst.map((r) => r.body.conversation_id));
  assert.equal(convIds.size, 1, `one conversation, got ${[...convIds]}`);
  const burstMsgs = await apiOk(a.url, adminToken, 'GET', `/conversations/${[...convIds][0]}/messages?limit=500`);
  assert.equal(burstMsgs.length, 10);

  // The reply is delivered once although both nodes run an outbox worker.
  const conversationId = results[0].body.conversation_id;
  await agentSock.next('conversation', (c) => c.id === conversationId && c.assignee_id === agent.user.id, 10_000);
  const replies = [];
  for (let i = 0; i < 5; i++) {
    const ack = await agentSock.request('reply', { conversation_id: conversationId, text: `pg reply ${i}`, client_message_id: `pg-r${i}` });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    replies.push(ack.message.id);
  }
  await waitFor(() => replies.every((id) => receiver.acknowledged.some((d) => d.body?.message?.id === id)), 15_000, 'all 5 deliveries');
  await waitFor(async () => {
    const delivered = await apiOk(a.url, adminToken, 'GET', '/outbox?status=delivered');
    return delivered.length >= 5;
  }, 10_000, 'five entries marked delivered');
  const perReply = replies.map((id) => receiver.attempts.filter((d) => d.body?.message?.id === id).length);
  log(`deliveries per reply: ${perReply.join(',')}`);
  assert.deepEqual(perReply, [1, 1, 1, 1, 1], 'each reply delivered exactly once across two workers');
  assert.equal(receiver.badSignatures.length, 0);
});

// A customer on the web widget and an agent on the console, both real socket.io-clients against
// the real server (embedded SQLite): assignment, messages both ways, reconnect + resync on both
// sides, and idempotent sends.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, apiOk, availableAgent, cleanupAll, connectAgent, connectSocket, connectWidget, createAgent,
  log, login, startServer, waitFor,
} from './harness.mjs';

const connectSocketNoAuth = (url) => connectSocket(url, '/agent', {});

const ids = (messages) => messages.map((m) => m.id);

describe('web widget ↔ agent console (SQLite)', { timeout: 60_000 }, () => {
  let server, adminToken, agent, agentSock, customer;
  let session, conversationId, firstMessage, firstReply, lastCustomerSeen, lastAgentSeen;

  before(async () => {
    server = await startServer({ db: 'sqlite', env: { SWITCHBOARD_AGENTS__DISCONNECT_GRACE_SECS: '30' } });
    log(`server at ${server.url}; widget inbox ${server.inboxId}`);
    assert.ok(server.inboxId > 0 && server.widgetKey, `bootstrap printed the widget inbox and key:\n${server.stdout}`);
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    agent = await createAgent(server.url, adminToken, { capacity: 5 });
  });

  after(cleanupAll);

  it('agent connects, gets hello, goes available', async () => {
    agentSock = await connectAgent(server.url, agent.token);
    const hello = await agentSock.next('hello');
    assert.equal(hello.user.id, agent.user.id);
    assert.deepEqual(hello.conversations, [], 'a new agent holds no conversations');
    const ack = await agentSock.request('status', { status: 'available' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.equal(ack.user.status, 'available');
  });

  it('customer message: ack after commit, visible over REST, assigned to the agent', async () => {
    customer = await connectWidget(server.url, server.inboxId, server.widgetKey);
    const s = await customer.next('session');
    assert.match(s.session, /^sbw_/);
    assert.equal(s.conversation_id, null, 'a new customer has no conversation yet');
    session = s.session;

    const ack = await customer.request('message', { client_message_id: 'c-1', text: 'Hello, I need help' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.equal(ack.duplicate, false);
    assert.equal(ack.message.text, 'Hello, I need help');
    assert.equal(ack.message.direction, 'inbound');
    conversationId = ack.conversation_id;
    firstMessage = ack.message;
    assert.equal(firstMessage.conversation_id, conversationId);

    // The ack came after the commit: the message must be readable right now.
    const stored = await apiOk(server.url, adminToken, 'GET', `/conversations/${conversationId}/messages`);
    assert.deepEqual(ids(stored), [firstMessage.id], 'REST shows exactly the acked message');

    const conv = await agentSock.next('conversation', (c) => c.id === conversationId && c.assignee_id === agent.user.id);
    assert.equal(conv.state, 'assigned');
    assert.equal(conv.inbox.id, server.inboxId);
    assert.ok(conv.contact && conv.contact.id, 'the view carries the contact');
  });

  it('the agent receives the customer\'s first message as a `message` event', async () => {
    const m = await agentSock.next('message', (x) => x.id === firstMessage.id, 5_000);
    assert.equal(m.direction, 'inbound');
    assert.equal(m.text, 'Hello, I need help');
  });

  it('agent reply reaches the customer', async () => {
    const ack = await agentSock.request('reply', { conversation_id: conversationId, text: 'Hi! How can I help?', client_message_id: 'a-1' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    firstReply = ack.message;
    assert.equal(firstReply.direction, 'outbound');
    assert.equal(firstReply.sender_kind, 'agent');
    const got = await customer.next('message', (m) => m.id === firstReply.id);
    assert.equal(got.text, 'Hi! How can I help?');
    assert.equal(got.conversation_id, conversationId);
    lastCustomerSeen = got.id;
  });

  it('a second customer message (conversation already assigned) reaches the agent live', async () => {
    const ack = await customer.request('message', { client_message_id: 'c-2', text: 'My order is late' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.equal(ack.conversation_id, conversationId, 'same conversation');
    const m = await agentSock.next('message', (x) => x.id === ack.message.id);
    assert.equal(m.text, 'My order is late');
    assert.equal(m.direction, 'inbound');
    lastAgentSeen = m.id;
    lastCustomerSeen = ack.message.id; // the customer knows its own acked message
  });

  it('customer reconnect with the same session resyncs exactly the missed replies', async () => {
    customer.close();
    await waitFor(() => !customer.socket.connected, 5_000, 'customer disconnect');
    const r2 = await agentSock.request('reply', { conversation_id: conversationId, text: 'missed reply one', client_message_id: 'a-2' });
    const r3 = await agentSock.request('reply', { conversation_id: conversationId, text: 'missed reply two', client_message_id: 'a-3' });
    assert.equal(r2.ok, true, JSON.stringify(r2));
    assert.equal(r3.ok, true, JSON.stringify(r3));
    assert.ok(r3.message.id > r2.message.id && r2.message.id > lastCustomerSeen, 'message ids increase');

    customer = await connectWidget(server.url, server.inboxId, server.widgetKey, session);
    const s = await customer.next('session');
    assert.equal(s.session, session, 'the session is resumed, not replaced');
    assert.equal(s.conversation_id, conversationId, 'the resumed session knows its conversation');

    const sync = await customer.request('sync', { after: lastCustomerSeen });
    assert.equal(sync.ok, true, JSON.stringify(sync));
    assert.equal(sync.conversation_id, conversationId);
    log(`customer resync after ${lastCustomerSeen}: ${sync.messages.length} message(s)`);
    assert.deepEqual(ids(sync.messages), [r2.message.id, r3.message.id], 'exactly the two missed replies, in order');
    assert.deepEqual(sync.messages.map((m) => m.text), ['missed reply one', 'missed reply two']);
    lastCustomerSeen = r3.message.id;
  });

  it('agent reconnect: hello lists the conversation and sync returns the missed message', async () => {
    lastAgentSeen = Math.max(lastAgentSeen, ...agentSock.events.message.map((m) => m.id));
    agentSock.close();
    await waitFor(() => !agentSock.socket.connected, 5_000, 'agent disconnect');
    const sent = await customer.request('message', { client_message_id: 'c-3', text: 'are you still there?' });
    assert.equal(sent.ok, true, JSON.stringify(sent));

    agentSock = await connectAgent(server.url, agent.token);
    const hello = await agentSock.next('hello');
    const listed = hello.conversations.find((c) => c.id === conversationId);
    assert.ok(listed, `hello lists conversation ${conversationId}: ${JSON.stringify(hello.conversations.map((c) => c.id))}`);
    assert.equal(listed.assignee_id, agent.user.id);
    assert.equal(hello.user.status, 'available', 'reconnecting within the grace period keeps the agent available');

    const sync = await agentSock.request('sync', { conversation_id: conversationId, after: lastAgentSeen });
    assert.equal(sync.ok, true, JSON.stringify(sync));
    log(`agent resync after ${lastAgentSeen}: ${sync.messages.length} message(s)`);
    assert.deepEqual(ids(sync.messages), [sent.message.id], 'exactly the missed customer message');
    assert.equal(sync.messages[0].text, 'are you still there?');
  });

  it('the same client_message_id twice stores one message (widget and agent)', async () => {
    const first = await customer.request('message', { client_message_id: 'dup-1', text: 'sent twice' });
    const second = await customer.request('message', { client_message_id: 'dup-1', text: 'sent twice' });
    assert.equal(first.ok, true, JSON.stringify(first));
    assert.equal(second.ok, true, JSON.stringify(second));
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true, 'the resend is recognised');
    assert.equal(second.message.id, first.message.id, 'the resend answers with the stored message');

    const a1 = await agentSock.request('reply', { conversation_id: conversationId, text: 'reply sent twice', client_message_id: 'a-dup' });
    const a2 = await agentSock.request('reply', { conversation_id: conversationId, text: 'reply sent twice', client_message_id: 'a-dup' });
    assert.equal(a1.ok, true, JSON.stringify(a1));
    assert.equal(a2.ok, true, JSON.stringify(a2));
    assert.equal(a2.message.id, a1.message.id, 'the agent resend answers with the stored message');

    const all = await apiOk(server.url, adminToken, 'GET', `/conversations/${conversationId}/messages?limit=500`);
    log(`conversation ${conversationId} holds ${all.length} messages`);
    assert.equal(all.filter((m) => m.text === 'sent twice').length, 1, 'one customer message stored');
    assert.equal(all.filter((m) => m.text === 'reply sent twice').length, 1, 'one agent reply stored');
    // Everything this test sent, once each: c-1, a-1, c-2, a-2, a-3, c-3, dup-1, a-dup.
    assert.equal(all.length, 8, `messages: ${JSON.stringify(all.map((m) => [m.id, m.text]))}`);
    const sorted = [...ids(all)].sort((x, y) => x - y);
    assert.deepEqual(ids(all), sorted, 'REST lists messages in id order');
  });

  it('an agent may not reply in a conversation not assigned to them', async () => {
    const other = await createAgent(server.url, adminToken);
    const sock = await availableAgent(server.url, other.token);
    const ack = await sock.request('reply', { conversation_id: conversationId, text: 'not mine', client_message_id: 'x-1' });
    assert.equal(ack.ok, false, JSON.stringify(ack));
    assert.equal(ack.error.code, 'forbidden');
    const all = await apiOk(server.url, adminToken, 'GET', `/conversations/${conversationId}/messages?limit=500`);
    assert.equal(all.filter((m) => m.text === 'not mine').length, 0, 'nothing stored');
    sock.close();
  });

  it('resolve closes the conversation and the customer learns the state', async () => {
    const ack = await agentSock.request('resolve', { conversation_id: conversationId, reason: 'resolved' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.equal(ack.conversation.state, 'resolved');
    await customer.next('conversation', (c) => c.id === conversationId && c.state === 'resolved');
  });
});

describe('socket authentication and presence (SQLite)', { timeout: 60_000 }, () => {
  let server, adminToken;

  before(async () => {
    server = await startServer({ db: 'sqlite', env: { SWITCHBOARD_AGENTS__DISCONNECT_GRACE_SECS: '1' } });
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
  });

  after(cleanupAll);

  it('refuses a wrong widget key, an unknown inbox and a bad agent token', async () => {
    await assert.rejects(connectWidget(server.url, server.inboxId, 'wk_wrong'), /connect_error/);
    await assert.rejects(connectWidget(server.url, 987654, server.widgetKey), /connect_error/);
    await assert.rejects(connectAgent(server.url, 'sbs_not-a-session'), /connect_error/);
    await assert.rejects(connectSocketNoAuth(server.url), /connect_error/);
  });

  it('a forged session token does not reach someone else\'s conversation', async () => {
    const alice = await connectWidget(server.url, server.inboxId, server.widgetKey);
    const { session } = await alice.next('session');
    const sent = await alice.request('message', { client_message_id: 'alice-1', text: 'alice private' });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    const mallory = await connectWidget(server.url, server.inboxId, server.widgetKey, `${session}x`);
    const s = await mallory.next('session');
    assert.notEqual(s.conversation_id, sent.conversation_id);
    const sync = await mallory.request('sync', { after: 0 });
    assert.equal(sync.ok, true, JSON.stringify(sync));
    assert.ok(!sync.messages.some((m) => m.text === 'alice private'), 'no access to alice\'s messages');
    alice.close();
    mallory.close();
  });

  it('an agent gone past the grace period is marked offline; coming back available takes the queued work', async () => {
    const agent = await createAgent(server.url, adminToken);
    let sock = await availableAgent(server.url, agent.token);
    sock.close();
    const offline = await waitFor(async () => {
      const u = await apiOk(server.url, adminToken, 'GET', `/users/${agent.user.id}`);
      return u.status === 'offline' && u;
    }, 8_000, 'the agent to be marked offline after the 1 s grace');
    assert.equal(offline.status, 'offline');

    const customer = await connectWidget(server.url, server.inboxId, server.widgetKey);
    await customer.next('session');
    const sent = await customer.request('message', { client_message_id: 'q-1', text: 'anyone there?' });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    const queued = await apiOk(server.url, adminToken, 'GET', `/conversations/${sent.conversation_id}`);
    assert.equal(queued.state, 'queued', 'nobody is available: the conversation waits');
    assert.equal(queued.assignee_id, null);

    sock = await availableAgent(server.url, agent.token);
    const conv = await sock.next('conversation', (c) => c.id === sent.conversation_id && c.assignee_id === agent.user.id, 10_000);
    assert.equal(conv.state, 'assigned');
    const sync = await sock.request('sync', { conversation_id: sent.conversation_id, after: 0 });
    assert.deepEqual(sync.messages.map((m) => m.id), [sent.message.id], 'the agent reads the waiting message');
  });

  it('SIGTERM with connected clients: the server drains, disconnects them and exits 0', async () => {
    const agent = await createAgent(server.url, adminToken);
    const sock = await availableAgent(server.url, agent.token);
    const customer = await connectWidget(server.url, server.inboxId, server.widgetKey);
    await customer.next('session');
    const t0 = Date.now();
    const exit = await server.stop();
    log(`graceful stop took ${Date.now() - t0} ms: ${JSON.stringify(exit)}`);
    assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}; stderr tail: ${server.stderr.slice(-1500)}`);
    assert.ok(Date.now() - t0 < 10_000, 'stopping does not hang on open sockets');
    await waitFor(() => !sock.socket.connected && !customer.socket.connected, 5_000, 'clients to be disconnected');
  });
});

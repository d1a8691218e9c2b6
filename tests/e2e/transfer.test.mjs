// Transfer with an internal note, on the real server (embedded SQLite) with real socket.io-clients:
// agent A hands a widget customer's conversation to agent B with a note; B's console hears of it
// live and sees the note; the customer never receives the note — neither pushed nor on resync.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, api, apiOk, availableAgent, cleanupAll, connectWidget, createAgent, log, login, startServer,
} from './harness.mjs';

const NOTE = 'Refund already approved by finance — just confirm the address';

describe('transfer to another agent with a note (SQLite)', { timeout: 60_000 }, () => {
  let server, adminToken, ann, bob, annSock, bobSock, customer, conversationId, note;

  before(async () => {
    server = await startServer({ db: 'sqlite' });
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    ann = await createAgent(server.url, adminToken, { capacity: 3, name: 'Ann' });
    bob = await createAgent(server.url, adminToken, { capacity: 3, name: 'Bob' });
  });

  after(cleanupAll);

  it('the customer writes and the conversation goes to A', async () => {
    annSock = await availableAgent(server.url, ann.token);
    customer = await connectWidget(server.url, server.inboxId, server.widgetKey);
    await customer.next('session');
    const ack = await customer.request('message', { client_message_id: 'c-1', text: 'Where is my refund?' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    conversationId = ack.conversation_id;
    await annSock.next('conversation', (c) => c.id === conversationId && c.assignee_id === ann.user.id);
    // B comes online only now, so the conversation is A's to hand over.
    bobSock = await availableAgent(server.url, bob.token);
  });

  it('B may not take it by transferring it to themselves', async () => {
    const r = await api(server.url, bob.token, 'POST', `/conversations/${conversationId}/transfer`, { to: { agent: bob.user.id } });
    assert.equal(r.status, 403, JSON.stringify(r.body));
  });

  it('A transfers to B with a note; B gets the conversation and the note live', async () => {
    const moved = await apiOk(server.url, ann.token, 'POST', `/conversations/${conversationId}/transfer`, {
      to: { agent: bob.user.id },
      note: NOTE,
    });
    assert.equal(moved.conversation.assignee_id, bob.user.id);
    assert.equal(moved.conversation.state, 'assigned');
    note = moved.note;
    assert.equal(note.private, true);
    assert.equal(note.text, NOTE);

    const conv = await bobSock.next('conversation', (c) => c.id === conversationId && c.assignee_id === bob.user.id);
    assert.equal(conv.state, 'assigned');
    // A hears that it left them (the previous assignee's room gets the update too).
    await annSock.next('conversation', (c) => c.id === conversationId && c.assignee_id === bob.user.id);
    const pushed = await bobSock.next('message', (m) => m.id === note.id);
    assert.equal(pushed.private, true);
    assert.equal(pushed.text, NOTE);

    // B's resync shows the note in the history; the slot moved from A to B.
    const sync = await bobSock.request('sync', { conversation_id: conversationId, after: null });
    assert.equal(sync.ok, true, JSON.stringify(sync));
    assert.deepEqual(sync.messages.map((m) => [m.text, m.private]), [['Where is my refund?', false], [NOTE, true]]);
    const a = await apiOk(server.url, adminToken, 'GET', `/users/${ann.user.id}`);
    const b = await apiOk(server.url, adminToken, 'GET', `/users/${bob.user.id}`);
    assert.deepEqual([a.active_load, b.active_load], [0, 1]);
    const events = await apiOk(server.url, bob.token, 'GET', `/conversations/${conversationId}/events`);
    const transferred = events.filter((e) => e.kind === 'transferred');
    assert.equal(transferred.length, 1);
    assert.equal(transferred[0].actor_user_id, ann.user.id);
    assert.deepEqual(JSON.parse(transferred[0].detail).to, { agent: bob.user.id });
  });

  it('B answers; the customer gets the answer but never the note', async () => {
    const ack = await bobSock.request('reply', { conversation_id: conversationId, text: 'Hi, Bob here. Which address?', client_message_id: 'b-1' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    // The bus delivers in order: the note was published before this reply.
    await customer.next('message', (m) => m.id === ack.message.id);
    const seen = customer.events.message || [];
    log(`customer received ${seen.length} message event(s)`);
    assert.ok(seen.every((m) => m.id !== note.id && m.private !== true && m.text !== NOTE), `the note reached the customer: ${JSON.stringify(seen)}`);

    const sync = await customer.request('sync', { after: null });
    assert.equal(sync.ok, true, JSON.stringify(sync));
    assert.deepEqual(sync.messages.map((m) => m.text), ['Where is my refund?', 'Hi, Bob here. Which address?']);
    assert.ok(!JSON.stringify(sync).includes(NOTE), 'the resync does not carry the note');
  });
});

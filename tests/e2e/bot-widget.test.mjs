// The auto-responder on the web widget, with real socket.io-clients against the real server:
// the bot's greeting and menu arrive on the customer's socket, an invalid answer re-prompts, a
// collected field is validated, and the handoff reaches an available agent with the bot
// transcript — while the agent was never offered the conversation during the bot's part.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, apiOk, availableAgent, cleanupAll, connectWidget, createAgent, log, login, startServer, settle,
} from './harness.mjs';

const FLOW = {
  steps: [
    { type: 'greeting', id: 'hi', text: 'Welcome to Acme!', next: 'menu' },
    { type: 'menu', id: 'menu', prompt: 'What do you need?', options: [
      { key: '1', label: 'Billing', route: { priority: 5, tags: ['billing'] }, next: 'email' },
      { key: '2', label: 'Other', reply: 'Someone will help you.' },
    ] },
    { type: 'collect', id: 'email', next: 'bye', fields: [
      { name: 'email', prompt: 'Your e-mail address?', validate: 'email' },
    ] },
    { type: 'handoff', id: 'bye', text: 'Thanks, passing you to billing ({email}).' },
  ],
};

describe('auto-responder on the web widget (SQLite)', { timeout: 60_000 }, () => {
  let server, adminToken, agent, agentSock, customer, conversationId;
  const botTexts = () => (customer.events.message || []).filter((m) => m.sender_kind === 'bot').map((m) => m.text);
  const waitBot = async (n) => {
    await customer.next('message', () => botTexts().length >= n, 10_000);
    return botTexts();
  };

  before(async () => {
    server = await startServer({ db: 'sqlite' });
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    await apiOk(server.url, adminToken, 'PUT', `/inboxes/${server.inboxId}/flow`, { flow: FLOW });
    agent = await createAgent(server.url, adminToken, { capacity: 3 });
    agentSock = await availableAgent(server.url, agent.token);
    log(`server at ${server.url}; widget inbox ${server.inboxId} has a flow`);
  });

  after(cleanupAll);

  it('the first message is acked at once and the bot answers on the socket', async () => {
    customer = await connectWidget(server.url, server.inboxId, server.widgetKey);
    await customer.next('session');
    const ack = await customer.request('message', { client_message_id: 'b-1', text: 'hello' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    conversationId = ack.conversation_id;
    assert.equal(ack.conversation.state, 'bot');
    const said = await waitBot(2);
    assert.equal(said[0], 'Welcome to Acme!');
    assert.match(said[1], /^What do you need\?\n1 Billing\n2 Other$/);
  });

  it('an invalid menu answer re-prompts; a collected field is validated', async () => {
    await customer.request('message', { client_message_id: 'b-2', text: 'dunno' });
    assert.match((await waitBot(3))[2], /^Sorry/);
    await customer.request('message', { client_message_id: 'b-3', text: 'billing' });
    assert.equal((await waitBot(4))[3], 'Your e-mail address?');
    await customer.request('message', { client_message_id: 'b-4', text: 'not an address' });
    await waitBot(5);
    // While the bot has it, the available agent is not offered the conversation.
    await settle(300);
    assert.equal(agentSock.count('conversation', (c) => c.id === conversationId && c.assignee_id === agent.user.id), 0);
  });

  it('handoff: queued with the routing, assigned to the agent, the transcript visible', async () => {
    await customer.request('message', { client_message_id: 'b-5', text: 'Ada@Example.com' });
    const said = await waitBot(6);
    assert.equal(said[5], 'Thanks, passing you to billing (ada@example.com).');
    const conv = await agentSock.next('conversation', (c) => c.id === conversationId && c.assignee_id === agent.user.id);
    assert.equal(conv.state, 'assigned');
    assert.equal(conv.priority, 5);
    assert.deepEqual(conv.tags, ['billing']);
    assert.equal(conv.attributes.email, 'ada@example.com');
    const messages = await apiOk(server.url, agent.token, 'GET', `/conversations/${conversationId}/messages`);
    assert.equal(messages.filter((m) => m.sender_kind === 'bot').length, 6, 'the agent sees the bot transcript');
    assert.equal(messages.filter((m) => m.direction === 'inbound').length, 5);
    // Once handed off the bot says nothing more; the agent talks.
    await customer.request('message', { client_message_id: 'b-6', text: 'still there?' });
    await agentSock.next('message', (m) => m.text === 'still there?');
    await settle(300);
    assert.equal(botTexts().length, 6);
  });
});

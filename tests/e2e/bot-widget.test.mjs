// The auto-responder on the web widget, with real socket.io-clients against the real server:
// the bot's greeting and menu arrive on the customer's socket, an invalid answer re-prompts, a
// collected field is validated, and the handoff reaches an available agent with the bot
// transcript — while the agent was never offered the conversation during the bot's part.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, apiOk, availableAgent, cleanupAll, connectWidget, createAgent, log, login, startServer, settle,
} from './harness.mjs';

// Every step type: greeting, menu, collect, handoff here; FAQ, message, business hours (closed,
// callback), close and the decision hook (none configured: its fallback) behind options 2–4.
const FLOW = {
  calendars: { never: { time_zone: 'America/New_York', weekly: [] } },
  steps: [
    { type: 'greeting', id: 'hi', text: 'Welcome to Acme!', next: 'menu' },
    { type: 'menu', id: 'menu', prompt: 'What do you need?', options: [
      { key: '1', label: 'Billing', route: { priority: 5, tags: ['billing'] }, next: 'email' },
      { key: '2', label: 'Questions', next: 'faq' },
      { key: '3', label: 'Phone', next: 'hours' },
      { key: '4', label: 'Account', next: 'crm' },
    ] },
    { type: 'collect', id: 'email', next: 'bye', fields: [
      { name: 'email', prompt: 'Your e-mail address?', validate: 'email' },
    ] },
    { type: 'handoff', id: 'bye', text: 'Thanks, passing you to billing ({email}).' },
    { type: 'faq', id: 'faq', prompt: 'Ask away.', entries: [{ keywords: ['refund'], answer: 'Refunds take 5 days.' }],
      resolved_next: 'done' },
    { type: 'message', id: 'done', text: 'Happy to help.', next: 'close' },
    { type: 'close', id: 'close', text: 'Goodbye!' },
    { type: 'business_hours', id: 'hours', calendar: 'never', next: 'menu', out_of_office: 'The phone line is closed.',
      when_closed: 'callback', callback_text: 'We will call you.' },
    { type: 'decision_hook', id: 'crm', timeout_ms: 500, next: 'bye', fallback: 'crm_down' },
    { type: 'message', id: 'crm_down', text: 'Account lookup is down.', next: 'to_agent' },
    { type: 'handoff', id: 'to_agent' },
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
    assert.match(said[1], /^What do you need\?\n1 Billing\n2 Questions\n3 Phone\n4 Account$/);
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

  // Another customer per path: each gets its own conversation and bot session.
  async function newCustomer() {
    const c = await connectWidget(server.url, server.inboxId, server.widgetKey);
    await c.next('session');
    const texts = () => (c.events.message || []).filter((m) => m.sender_kind === 'bot').map((m) => m.text);
    let n = 0;
    return {
      texts,
      async say(text) {
        const ack = await c.request('message', { client_message_id: `x-${(n += 1)}`, text });
        assert.equal(ack.ok, true, JSON.stringify(ack));
        return ack.conversation_id;
      },
      async waitBot(count) {
        await c.next('message', () => texts().length >= count, 10_000);
        return texts();
      },
    };
  }

  it('FAQ → message → close', async () => {
    const c = await newCustomer();
    const id = await c.say('hi');
    await c.waitBot(2);
    await c.say('2');
    assert.equal((await c.waitBot(3))[2], 'Ask away.');
    await c.say('how long does a refund take?');
    const said = await c.waitBot(5);
    assert.deepEqual(said.slice(3), ['Refunds take 5 days.', 'Did that help? (yes / no)']);
    await c.say('yes');
    assert.deepEqual((await c.waitBot(7)).slice(5), ['Happy to help.', 'Goodbye!']);
    const conv = await apiOk(server.url, adminToken, 'GET', `/conversations/${id}`);
    assert.equal(conv.state, 'resolved');
  });

  it('business hours closed → callback close', async () => {
    const c = await newCustomer();
    const id = await c.say('hi');
    await c.waitBot(2);
    await c.say('Phone');
    assert.deepEqual((await c.waitBot(4)).slice(2), ['The phone line is closed.', 'We will call you.']);
    const conv = await apiOk(server.url, adminToken, 'GET', `/conversations/${id}`);
    assert.equal(conv.state, 'closed');
    assert.equal(conv.attributes.callback_requested, true);
  });

  it('decision hook without a hook configured → fallback → handoff', async () => {
    const c = await newCustomer();
    const id = await c.say('hi');
    await c.waitBot(2);
    await c.say('4');
    assert.equal((await c.waitBot(3))[2], 'Account lookup is down.');
    const conv = await agentSock.next('conversation', (x) => x.id === id && x.assignee_id === agent.user.id);
    assert.equal(conv.state, 'assigned');
    const calls = await apiOk(server.url, adminToken, 'GET', `/inboxes/${server.inboxId}/decision-hook-calls`);
    assert.equal(calls[0].outcome, 'not_configured');
    assert.equal(calls[0].conversation_id, id);
  });
});

// Attachments end to end with the real server (embedded SQLite, media on local disk): a
// customer uploads through the widget route and sends the file in a socket `message`; the agent
// receives it live and downloads it with the signed URL; the agent uploads over REST and replies
// over the socket; the customer receives the reply and downloads the file.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, availableAgent, cleanupAll, connectWidget, createAgent, login, startServer,
} from './harness.mjs';

// A PNG signature and header chunk, then filler: sniffed as image/png by the server.
const png = (n, seed) => {
  const head = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52];
  return Buffer.from([...head, ...Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff)]);
};

const form = (bytes, name) => {
  const f = new FormData();
  f.append('file', new Blob([bytes]), name);
  return f;
};

async function download(base, url) {
  const r = await fetch(new URL(url, base));
  return { status: r.status, type: r.headers.get('content-type'), body: Buffer.from(await r.arrayBuffer()) };
}

const attachmentOf = (u) => ({ kind: u.kind, url: u.url, name: u.name, mime: u.mime, size: u.size });

describe('attachments between the widget and the console (SQLite, local media)', { timeout: 60_000 }, () => {
  let server, agent, agentSock, customer, session, conversationId;

  before(async () => {
    server = await startServer({ db: 'sqlite' });
    const admin = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    agent = await createAgent(server.url, admin, { capacity: 5 });
    agentSock = await availableAgent(server.url, agent.token);
  });

  after(cleanupAll);

  it('a customer uploads through the widget route and the agent receives a working link', async () => {
    customer = await connectWidget(server.url, server.inboxId, server.widgetKey);
    session = (await customer.next('session')).session;
    const bytes = png(5000, 3);
    const r = await fetch(`${server.url}/api/v1/widget/uploads`, {
      method: 'POST',
      headers: { 'x-widget-inbox': String(server.inboxId), 'x-widget-key': server.widgetKey, 'x-widget-session': session },
      body: form(bytes, 'receipt.png'),
    });
    const uploaded = await r.json();
    assert.equal(r.status, 201, JSON.stringify(uploaded));
    assert.equal(uploaded.mime, 'image/png');

    const ack = await customer.request('message', { client_message_id: 'media-1', text: '', attachments: [attachmentOf(uploaded)] });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.equal(ack.message.text, null, 'an attachment alone needs no text');
    conversationId = ack.conversation_id;

    const m = await agentSock.next('message', (x) => x.id === ack.message.id);
    assert.equal(m.attachments.length, 1);
    const got = await download(server.url, m.attachments[0].url);
    assert.equal(got.status, 200);
    assert.equal(got.type, 'image/png');
    assert.ok(got.body.equals(bytes), 'the agent downloads the customer\'s bytes');
  });

  it('the agent uploads over REST, replies over the socket, and the customer downloads it', async () => {
    await agentSock.next('conversation', (c) => c.id === conversationId && c.assignee_id === agent.user.id);
    const doc = Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n');
    const r = await fetch(`${server.url}/api/v1/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agent.token}` },
      body: form(doc, 'quote.pdf'),
    });
    const uploaded = await r.json();
    assert.equal(r.status, 201, JSON.stringify(uploaded));

    const ack = await agentSock.request('reply', { conversation_id: conversationId, text: 'your quote', client_message_id: 'r-media-1', attachments: [attachmentOf(uploaded)] });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    const m = await customer.next('message', (x) => x.id === ack.message.id);
    assert.equal(m.attachments[0].name, 'quote.pdf');
    const got = await download(server.url, m.attachments[0].url);
    assert.equal(got.status, 200);
    assert.equal(got.type, 'application/pdf');
    assert.ok(got.body.equals(doc), 'the customer downloads the agent\'s bytes');

    // A tampered link is refused.
    const bad = await download(server.url, m.attachments[0].url.replace(/sig=./, 'sig=x'));
    assert.equal(bad.status, 403);
  });
});

// The API channel end to end (embedded SQLite): a business system posts customer messages with
// the inbox token, an agent answers on the console, and the reply comes back as a signed webhook
// to a local receiver — including retries after the receiver fails.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, api, apiOk, availableAgent, cleanupAll, createAgent, createApiInbox, log, login,
  postInbound, startReceiver, startServer, verifySignature, waitFor,
} from './harness.mjs';

/** Sends a body of `size` bytes with node:http; resolves {status, body} even if the server stops reading early. */
function postLarge(url, p, token, size) {
  return new Promise((resolve, reject) => {
    const filler = 'x'.repeat(size);
    const payload = Buffer.from(JSON.stringify({ message_id: 'big-1', contact: { id: 'cust-big' }, text: filler }));
    const req = http.request(`${url}/api/v1${p}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': payload.length, authorization: `Bearer ${token}` },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body = null;
        try { body = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, body, text, sent: payload.length });
      });
    });
    req.on('error', (e) => reject(new Error(`oversize request failed without an HTTP answer: ${e.message}`)));
    req.end(payload);
  });
}

describe('API channel + signed webhooks (SQLite)', { timeout: 60_000 }, () => {
  let server, receiver, adminToken, agent, agentSock, inbox, inboundToken;
  let conversationId;
  const countMessages = async (pred) => {
    const all = await apiOk(server.url, adminToken, 'GET', `/conversations/${conversationId}/messages?limit=500`);
    return all.filter(pred).length;
  };

  before(async () => {
    receiver = await startReceiver();
    server = await startServer({
      db: 'sqlite',
      env: { SWITCHBOARD_OUTBOX__BASE_BACKOFF_MS: '200', SWITCHBOARD_OUTBOX__POLL_INTERVAL_MS: '200' },
    });
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    const created = await createApiInbox(server.url, adminToken, receiver.url);
    log('inbox creation answer:', JSON.stringify(created.raw));
    inbox = created.inbox;
    inboundToken = created.inboundToken;
    receiver.secret = created.webhookSecret;
    assert.equal(inbox.kind, 'api');
    assert.ok(!JSON.stringify(await apiOk(server.url, adminToken, 'GET', `/inboxes/${inbox.id}`)).includes(created.webhookSecret),
      'the webhook secret is never shown again');
    agent = await createAgent(server.url, adminToken);
    agentSock = await availableAgent(server.url, agent.token);
  });

  after(cleanupAll);

  it('new message → 201; same message_id again → 200 duplicate', async () => {
    const body = { message_id: 'ext-1', contact: { id: 'cust-1', name: 'Carol' }, text: 'Where is my parcel?' };
    const r1 = await postInbound(server.url, inbox.id, inboundToken, body);
    assert.equal(r1.status, 201, r1.text);
    assert.equal(r1.body.duplicate, false);
    assert.equal(r1.body.message.text, 'Where is my parcel?');
    conversationId = r1.body.conversation_id;
    assert.ok(conversationId > 0);

    const r2 = await postInbound(server.url, inbox.id, inboundToken, body);
    assert.equal(r2.status, 200, r2.text);
    assert.equal(r2.body.duplicate, true);
    assert.equal(r2.body.message.id, r1.body.message.id);
    assert.equal(r2.body.conversation_id, conversationId);
    assert.equal(await countMessages((m) => m.text === 'Where is my parcel?'), 1);

    const conv = await agentSock.next('conversation', (c) => c.id === conversationId && c.assignee_id === agent.user.id);
    assert.equal(conv.inbox.kind, 'api');
  });

  it('10 concurrent posts of one new message_id store exactly one message', async () => {
    const body = { message_id: 'ext-2', contact: { id: 'cust-1' }, text: 'concurrent redelivery' };
    const results = await Promise.all(Array.from({ length: 10 }, () => postInbound(server.url, inbox.id, inboundToken, body)));
    const statuses = results.map((r) => r.status);
    log(`concurrent statuses: ${statuses.join(',')}`);
    assert.equal(statuses.filter((s) => s === 201).length, 1, `exactly one 201: ${statuses} ${results.find((r) => r.status >= 300)?.text ?? ''}`);
    assert.equal(statuses.filter((s) => s === 200).length, 9, `nine 200 duplicates: ${statuses}`);
    assert.equal(new Set(results.map((r) => r.body?.message?.id)).size, 1, 'every answer names the same message');
    assert.ok(results.every((r) => r.body.conversation_id === conversationId));
    const stored = await countMessages((m) => m.text === 'concurrent redelivery');
    log(`stored copies of ext-2: ${stored}`);
    assert.equal(stored, 1);
  });

  it('10 concurrent first messages of a NEW contact → one contact, one conversation, ten messages', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => postInbound(server.url, inbox.id, inboundToken,
      { message_id: `burst-${i}`, contact: { id: 'cust-burst', name: 'Burst' }, text: `burst ${i}` })));
    const statuses = results.map((r) => r.status);
    log(`new-contact burst statuses: ${statuses.join(',')}`);
    assert.deepEqual(statuses, Array(10).fill(201), results.filter((r) => r.status !== 201).map((r) => r.text).join(' | '));
    const convIds = new Set(results.map((r) => r.body.conversation_id));
    assert.equal(convIds.size, 1, `one conversation for one contact, got ${[...convIds]}`);
    const [burstConv] = convIds;
    const msgs = await apiOk(server.url, adminToken, 'GET', `/conversations/${burstConv}/messages?limit=500`);
    assert.equal(msgs.length, 10, `ten messages stored: ${msgs.map((m) => m.text)}`);
    const convs = await apiOk(server.url, adminToken, 'GET', `/conversations?inbox_id=${inbox.id}`);
    assert.equal(convs.filter((c) => c.id === burstConv).length, 1);
    assert.equal(convs.length, 2, `two conversations on the inbox (cust-1, cust-burst): ${convs.map((c) => c.id)}`);
  });

  it('10 concurrent posts of one message_id from a NEW contact → one message', async () => {
    const body = { message_id: 'first-contact', contact: { id: 'cust-race' }, text: 'first contact race' };
    const results = await Promise.all(Array.from({ length: 10 }, () => postInbound(server.url, inbox.id, inboundToken, body)));
    const statuses = results.map((r) => r.status);
    log(`new-contact same-id statuses: ${statuses.join(',')}`);
    assert.equal(statuses.filter((s) => s === 201).length, 1, `exactly one 201: ${statuses} ${results.find((r) => r.status >= 300)?.text ?? ''}`);
    assert.equal(statuses.filter((s) => s === 200).length, 9, `nine duplicates: ${statuses}`);
    assert.equal(new Set(results.map((r) => r.body?.message?.id)).size, 1);
    const convId = results[0].body.conversation_id;
    const msgs = await apiOk(server.url, adminToken, 'GET', `/conversations/${convId}/messages`);
    assert.deepEqual(msgs.map((m) => m.text), ['first contact race']);
  });

  it('wrong or missing token → 401, nothing stored', async () => {
    const body = { message_id: 'ext-bad', contact: { id: 'cust-forged' }, text: 'forged message' };
    const wrong = await postInbound(server.url, inbox.id, 'sbi_not-the-token', body);
    assert.equal(wrong.status, 401, wrong.text);
    assert.equal(wrong.body?.error?.code, 'unauthorized');
    const missing = await postInbound(server.url, inbox.id, null, body);
    assert.equal(missing.status, 401, missing.text);
    const adminAsInbound = await postInbound(server.url, inbox.id, adminToken, body);
    assert.equal(adminAsInbound.status, 401, `a user session is not the inbox token: ${adminAsInbound.text}`);
    assert.equal(await countMessages((m) => m.text === 'forged message'), 0);
    const convs = await apiOk(server.url, adminToken, 'GET', `/conversations?inbox_id=${inbox.id}`);
    assert.ok(convs.every((c) => !(c.contact.identifiers || []).includes('cust-forged')), 'no conversation was created either');
  });

  it('malformed JSON → 400 malformed_json', async () => {
    const r = await postInbound(server.url, inbox.id, inboundToken, undefined, { raw: '{"message_id": "m", "contact": ' });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body?.error?.code, 'malformed_json');
    assert.equal(typeof r.body.error.message, 'string');
  });

  it('missing fields → 422 invalid_body', async () => {
    for (const body of [
      { message_id: 'ext-3', text: 'no contact' },
      { contact: { id: 'cust-1' }, text: 'no message id' },
      { message_id: 'ext-4', contact: { id: 'cust-1' } }, // neither text nor attachment
      { message_id: '', contact: { id: 'cust-1' }, text: 'empty id' },
    ]) {
      const r = await postInbound(server.url, inbox.id, inboundToken, body);
      assert.equal(r.status, 422, `${JSON.stringify(body)} → ${r.status} ${r.text}`);
      assert.equal(r.body?.error?.code, 'invalid_body', r.text);
    }
    assert.equal(await countMessages((m) => ['no contact', 'no message id', 'empty id'].includes(m.text)), 0);
  });

  it('unknown inbox → 404', async () => {
    const r = await postInbound(server.url, 987654, inboundToken, { message_id: 'ext-5', contact: { id: 'c' }, text: 'hi' });
    assert.equal(r.status, 404, r.text);
    assert.equal(r.body?.error?.code, 'not_found');
    // A web inbox is not an API inbox either.
    const web = await postInbound(server.url, server.inboxId, inboundToken, { message_id: 'ext-5', contact: { id: 'c' }, text: 'hi' });
    assert.equal(web.status, 404, web.text);
  });

  it('oversize body (> 1 MiB) → 413 payload_too_large', async () => {
    const r = await postLarge(server.url, `/channels/api/${inbox.id}/messages`, inboundToken, 1024 * 1024 + 10);
    log(`oversize: sent ${r.sent} bytes → ${r.status}`);
    assert.equal(r.status, 413, r.text);
    assert.equal(r.body?.error?.code, 'payload_too_large');
    assert.equal(await countMessages((m) => (m.text || '').length > 1000), 0);
  });

  it('agent reply → exactly one signed webhook delivery with the right content', async () => {
    const ack = await agentSock.request('reply', { conversation_id: conversationId, text: 'It ships tomorrow.', client_message_id: 'r-1' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    const reply = ack.message;
    const delivery = await waitFor(() => receiver.acknowledged.find((a) => a.body?.message?.id === reply.id), 10_000, 'the webhook delivery');
    assert.equal(receiver.badSignatures.length, 0, `bad signatures: ${JSON.stringify(receiver.badSignatures)}`);
    assert.ok(delivery.verified);
    assert.equal(delivery.method, 'POST');
    assert.equal(delivery.body.event, 'message.created');
    assert.equal(String(delivery.body.delivery_id), delivery.deliveryId, 'body and header name the same delivery');
    assert.equal(delivery.body.inbox_id, inbox.id);
    assert.equal(delivery.body.conversation_id, conversationId);
    assert.equal(delivery.body.contact.id, 'cust-1', 'the contact is named by the business system\'s own id');
    assert.equal(delivery.body.message.text, 'It ships tomorrow.');
    assert.equal(delivery.body.message.direction, 'outbound');

    // The worker recorded it as delivered: no further attempt can come.
    const entry = await waitFor(async () => {
      const list = await apiOk(server.url, adminToken, 'GET', '/outbox?status=delivered');
      return list.find((e) => String(e.id) === delivery.deliveryId);
    }, 10_000, 'the outbox entry to be marked delivered');
    assert.equal(entry.attempts, 1);
    const forReply = receiver.attempts.filter((a) => a.body?.message?.id === reply.id);
    log(`deliveries for reply ${reply.id}: ${forReply.length}`);
    assert.equal(forReply.length, 1, 'exactly one delivery');
  });

  it('the receiver\'s verifier rejects tampering (so the checks above can fail)', async () => {
    const d = receiver.acknowledged.at(-1);
    assert.ok(d, 'a delivery was recorded');
    assert.equal(verifySignature(receiver.secret, d.timestamp, Buffer.from(d.raw), d.signature), true);
    assert.equal(verifySignature(receiver.secret, d.timestamp, Buffer.from(d.raw.replace('It ships', 'It sinks')), d.signature), false);
    assert.equal(verifySignature('whsec_wrong', d.timestamp, Buffer.from(d.raw), d.signature), false);
    assert.equal(verifySignature(receiver.secret, String(Number(d.timestamp) + 1), Buffer.from(d.raw), d.signature), false);
  });

  it('receiver fails twice (500) → delivered on the 3rd attempt with the same delivery id', async () => {
    receiver.respond = (attempt, n) => (attempt.body?.message?.text === 'retry me' && n <= 2 ? 500 : 200);
    const ack = await agentSock.request('reply', { conversation_id: conversationId, text: 'retry me', client_message_id: 'r-2' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    const ok = await waitFor(() => receiver.acknowledged.find((a) => a.body?.message?.id === ack.message.id), 20_000, 'the 3rd attempt');
    const tries = receiver.attempts.filter((a) => a.body?.message?.id === ack.message.id);
    log(`attempts for reply ${ack.message.id}: ${tries.map((t) => `${t.status}@${t.at - tries[0].at}ms`).join(', ')}`);
    assert.deepEqual(tries.map((t) => t.status), [500, 500, 200]);
    assert.ok(tries.every((t) => t.deliveryId === ok.deliveryId), `one delivery id across retries: ${tries.map((t) => t.deliveryId)}`);
    assert.ok(tries.every((t) => t.verified), 'every attempt is signed');
    assert.equal(receiver.badSignatures.length, 0);
    const entry = await waitFor(async () => {
      const list = await apiOk(server.url, adminToken, 'GET', '/outbox?status=delivered');
      return list.find((e) => String(e.id) === ok.deliveryId);
    }, 10_000, 'the outbox entry to be marked delivered');
    assert.equal(entry.attempts, 3);
  });

  it('REST reply (agent) with client_message_id: stored once, delivered once, listed by ?after=', async () => {
    const before = await apiOk(server.url, adminToken, 'GET', `/conversations/${conversationId}/messages?limit=500`);
    const lastId = before.at(-1).id;
    const body = { text: 'sent over REST', client_message_id: 'rest-1' };
    const r1 = await api(server.url, agent.token, 'POST', `/conversations/${conversationId}/messages`, body);
    assert.ok([200, 201].includes(r1.status), `${r1.status} ${r1.text}`);
    const r2 = await api(server.url, agent.token, 'POST', `/conversations/${conversationId}/messages`, body);
    assert.ok([200, 201].includes(r2.status), `${r2.status} ${r2.text}`);
    const id1 = r1.body.id ?? r1.body.message?.id;
    const id2 = r2.body.id ?? r2.body.message?.id;
    assert.ok(id1 > lastId, `a new message id: ${r1.text}`);
    assert.equal(id2, id1, 'the resend answers with the stored message');
    const after = await apiOk(server.url, adminToken, 'GET', `/conversations/${conversationId}/messages?after=${lastId}`);
    assert.deepEqual(after.map((m) => m.id), [id1], 'after= lists exactly the newer message');
    await waitFor(() => receiver.acknowledged.find((d) => d.body?.message?.id === id1), 10_000, 'the REST reply webhook');
    await waitFor(async () => (await apiOk(server.url, adminToken, 'GET', '/outbox?status=delivered'))
      .some((e) => e.message_id === id1), 10_000, 'its outbox entry delivered');
    assert.equal(receiver.attempts.filter((d) => d.body?.message?.id === id1).length, 1);
  });

  it('permanent failure (410) → dead letter → admin retry → delivered with the same delivery id', async () => {
    receiver.respond = (attempt) => (attempt.body?.message?.text === 'dead then alive' ? 410 : 200);
    const ack = await agentSock.request('reply', { conversation_id: conversationId, text: 'dead then alive', client_message_id: 'r-dead' });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    const dead = await waitFor(async () => (await apiOk(server.url, adminToken, 'GET', '/outbox?status=dead'))
      .find((e) => e.message_id === ack.message.id), 10_000, 'the entry to be dead-lettered');
    log(`dead letter ${dead.id}: attempts ${dead.attempts}, last_error ${dead.last_error}`);
    assert.equal(dead.attempts, 1, 'a permanent failure is not retried');
    assert.ok(dead.last_error && dead.last_error.includes('410'), `last_error names the answer: ${dead.last_error}`);
    const refused = receiver.attempts.filter((d) => d.body?.message?.id === ack.message.id);
    assert.equal(refused.length, 1);

    receiver.respond = () => 200;
    const retried = await apiOk(server.url, adminToken, 'POST', `/outbox/${dead.id}/retry`, undefined, [200]);
    assert.equal(retried.status, 'pending');
    const ok = await waitFor(() => receiver.acknowledged.find((d) => d.body?.message?.id === ack.message.id), 10_000, 'the replayed delivery');
    assert.equal(ok.deliveryId, refused[0].deliveryId, 'same delivery id after the replay');
    assert.equal(String(dead.id), ok.deliveryId);
    await waitFor(async () => (await apiOk(server.url, adminToken, 'GET', '/outbox?status=delivered')).some((e) => e.id === dead.id), 10_000, 'delivered status');
    const again2 = await api(server.url, adminToken, 'POST', `/outbox/${dead.id}/retry`);
    assert.equal(again2.status, 409, `retrying a delivered entry is refused: ${again2.status} ${again2.text}`);
  });

  it('outbox listing is admin-only', async () => {
    const r = await api(server.url, agent.token, 'GET', '/outbox?status=dead');
    assert.equal(r.status, 403, r.text);
  });
});

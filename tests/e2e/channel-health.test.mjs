// Provider health on the supervisor stream: every few seconds each node sends the supervisors
// connected to it `channels [health per platform inbox]` for their tenant — the view of
// GET /api/v1/supervisor/channels. Agents do not get it. Nothing is sent to the platform here, so
// the Telegram inbox's circuit is closed with no sends observed.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, apiOk, cleanupAll, connectAgent, createAgent, login, startServer } from './harness.mjs';

describe('channel health on the supervisor stream', { timeout: 60_000 }, () => {
  let server, adminToken, telegram;

  before(async () => {
    server = await startServer({ db: 'sqlite' });
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    telegram = await apiOk(server.url, adminToken, 'POST', '/inboxes', {
      name: 'Telegram bot', kind: 'telegram',
      settings: { api_base_url: 'http://127.0.0.1:9/telegram', mode: 'webhook' },
      secrets: { bot_token: '1:T', webhook_secret_token: 'tg-secret' },
    }, [201]);
  });

  after(cleanupAll);

  it('supervisors receive `channels` with each platform inbox\'s health; agents do not', async () => {
    const inboxId = telegram.inbox?.id ?? telegram.id;
    const supervisor = await createAgent(server.url, adminToken, { role: 'supervisor' });
    const agent = await createAgent(server.url, adminToken, { role: 'agent' });
    const sup = await connectAgent(server.url, supervisor.token);
    const ag = await connectAgent(server.url, agent.token);
    const pushed = await sup.next('channels', (views) => Array.isArray(views) && views.length > 0, 15_000);
    const view = pushed.find((v) => v.inbox_id === inboxId);
    assert.ok(view, `the Telegram inbox ${inboxId} is in ${JSON.stringify(pushed)}`);
    assert.equal(view.state, 'closed');
    assert.equal(view.sends_observed, 0);
    // Only platform inboxes: the bootstrap's web inbox has no provider to watch.
    assert.ok(!pushed.some((v) => v.inbox_id === server.inboxId), 'the web inbox is not listed');
    // The same view as the REST endpoint.
    const rest = await apiOk(server.url, supervisor.token, 'GET', '/supervisor/channels');
    assert.deepEqual(pushed.map((v) => v.inbox_id).sort(), rest.map((v) => v.inbox_id).sort());
    // The agent's socket, connected as long as the supervisor's, got none.
    await assert.rejects(ag.next('channels', () => true, 6_000), /timed out|timeout/i);
  });
});

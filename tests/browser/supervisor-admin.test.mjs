// The supervisor wallboard, the admin screens and typing indicators, in Chromium against the real
// server (embedded SQLite): a widget customer's message raises the wallboard's waiting count live
// and the agent going available moves it to them (their load changes live); a supervisor forces an
// agent's status and the agent's console follows; typing shows both ways and expires; an admin
// creates and edits an inbox and sees its webhook URL, edits a team's routing policy and an
// inbox's auto-responder flow (server validation errors shown with their JSON paths), creates a
// user and changes their capacity; the wallboard renders in Simplified Chinese.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, api, cleanupAll, createAgent, launchBrowser, log, login, rand, screenshot, settle,
  startCustomerSite, startServer, signIn,
} from './harness.mjs';

const WAIT = 15_000;

/** Polls `probe` (async) until it returns a truthy value; fails after `ms`. */
async function until(probe, what, ms = WAIT) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await settle(100);
  }
}

const tileValue = (page, metric) => page.locator(`.tile[data-metric=${metric}] .tile-value`);

describe('wallboard, admin screens and typing indicators in Chromium', { timeout: 170_000 }, () => {
  let server, adminToken, agent, supervisor, site, browser;
  let supPage, agentPage, customerPage, adminPage;

  before(async () => {
    server = await startServer();
    log(`server at ${server.url}; widget inbox ${server.inboxId}`);
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    agent = await createAgent(server.url, adminToken, { name: 'Ana Reyes', capacity: 5 });
    supervisor = await createAgent(server.url, adminToken, { name: 'Sam Okafor', capacity: 3, role: 'supervisor' });
    site = await startCustomerSite(server);
    browser = await launchBrowser();
    const page = async (who, opts) => {
      const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1360, height: 820 }, ...opts });
      const p = await ctx.newPage();
      p.setDefaultTimeout(WAIT);
      p.on('pageerror', (e) => log(`${who} page error: ${e.message}`));
      return p;
    };
    supPage = await page('supervisor');
    agentPage = await page('agent');
    customerPage = await page('customer', { viewport: { width: 1024, height: 720 } });
    adminPage = await page('admin');
  });

  after(cleanupAll);

  it('the wallboard shows a waiting customer live, then the agent taking them and their load', async () => {
    await signIn(agentPage, `${server.url}/`, agent.email, agent.password);
    await agentPage.locator('.status-select').selectOption('away');
    await agentPage.locator('.status-select[data-status=away]').waitFor();

    await signIn(supPage, `${server.url}/#wallboard`, supervisor.email, supervisor.password);
    await supPage.locator('main[data-view=wallboard]').waitFor();
    await tileValue(supPage, 'waiting').filter({ hasText: /^0$/ }).waitFor();
    const agentRow = supPage.locator(`.agent-row[data-agent="${agent.user.id}"]`);
    await agentRow.locator('[data-field=load]').filter({ hasText: /^0 \/ 5$/ }).waitFor();
    assert.equal(await agentRow.locator('.force-status').inputValue(), 'away');

    await customerPage.goto(site.url);
    await customerPage.locator('#switchboard-widget .launcher').click();
    await customerPage.locator('#switchboard-widget .status[data-connection=online]').waitFor();
    await customerPage.locator('#switchboard-widget textarea').fill('Hello, is my order #4411 shipped?');
    await customerPage.locator('#switchboard-widget textarea').press('Enter');
    await customerPage.locator('#switchboard-widget .msg.mine[data-message-id]').filter({ hasText: 'order #4411' }).waitFor();

    // Live, from the `queue` event: no reload.
    await tileValue(supPage, 'waiting').filter({ hasText: /^1$/ }).waitFor();
    await supPage.locator('.queue-row [data-field=waiting]').filter({ hasText: /^1$/ }).waitFor();
    await supPage.locator('.waiting-row').first().waitFor();
    const first = await tileValue(supPage, 'longest').textContent();
    await settle(2_200);
    const later = await tileValue(supPage, 'longest').textContent();
    assert.notEqual(later, first, `the longest wait ticks (${first} → ${later})`);
    assert.match(later, /^\d+s$|^\d+m \d{2}s$/);
    assert.ok(Number(await supPage.locator('svg.chart').getAttribute('data-points')) >= 2, 'the chart has the 0 and the 1');
    await screenshot(supPage, 'wallboard.png', 'wallboard.png');

    await agentPage.locator('.status-select').selectOption('available');
    await agentPage.locator('.conv-item').first().waitFor();
    await tileValue(supPage, 'waiting').filter({ hasText: /^0$/ }).waitFor();
    await agentRow.locator('[data-field=load]').filter({ hasText: /^1 \/ 5$/ }).waitFor();
    await supPage.locator(`.agent-group[data-status=available] .agent-row[data-agent="${agent.user.id}"]`).waitFor();
    assert.equal(await supPage.locator('.waiting-row').count(), 0);
    const asa = await tileValue(supPage, 'asa').textContent();
    assert.match(asa, /^\d+s$|^\d+m \d{2}s$/, `average speed of answer shown once someone was answered (${asa})`);
    assert.equal(await tileValue(supPage, 'longest').textContent(), '–', 'no longest wait with nobody waiting');
    await screenshot(supPage, 'wallboard-answered.png');
  });

  it('typing shows in the console and in the widget, and goes away', async () => {
    await agentPage.locator('.log .msg.inbound').filter({ hasText: 'order #4411' }).waitFor();
    assert.equal(await agentPage.locator('.typing-line').textContent(), '');
    await customerPage.locator('#switchboard-widget textarea').pressSequentially('Also, can I ', { delay: 30 });
    await agentPage.locator('.typing-line').filter({ hasText: 'Customer is typing…' }).waitFor();
    // Expires about 5 s after the last notice (the customer stopped typing).
    await agentPage.locator('.typing-line').filter({ hasText: 'Customer is typing…' }).waitFor({ state: 'detached', timeout: 9_000 });

    const typingLine = customerPage.locator('#switchboard-widget .typing');
    assert.equal(await typingLine.isVisible(), false);
    await agentPage.locator('.reply-form textarea').pressSequentially('Let me check', { delay: 30 });
    await typingLine.filter({ hasText: 'Agent is typing…' }).waitFor();
    await screenshot(customerPage, 'widget-typing.png');
    await agentPage.locator('.reply-form textarea').press('Enter');
    // The reply itself ends the indicator at once.
    await customerPage.locator('#switchboard-widget .msg.theirs[data-message-id]').filter({ hasText: 'Let me check' }).waitFor();
    await typingLine.waitFor({ state: 'hidden', timeout: 2_000 });
  });

  it('a supervisor forces the agent\'s status and the agent\'s console follows', async () => {
    const row = supPage.locator(`.agent-row[data-agent="${agent.user.id}"]`);
    await row.locator('.force-status').selectOption('away');
    await agentPage.locator('.status-select[data-status=away]').waitFor();
    await supPage.locator(`.agent-group[data-status=away] .agent-row[data-agent="${agent.user.id}"]`).waitFor();
    const stored = await api(server.url, adminToken, 'GET', `/users/${agent.user.id}`);
    assert.equal(stored.status, 'away');
    await supPage.locator(`.agent-row[data-agent="${agent.user.id}"] .force-status`).selectOption('available');
    await agentPage.locator('.status-select[data-status=available]').waitFor();
  });

  it('an admin creates an inbox, sees its webhook URL and edits its settings', async () => {
    await signIn(adminPage, `${server.url}/#admin`, ADMIN_EMAIL, ADMIN_PASSWORD);
    await adminPage.locator('main[data-view=admin]').waitFor();
    await adminPage.locator('.new-inbox').click();
    const form = adminPage.locator('form.inbox-form');
    await form.locator('select[name=kind]').selectOption('telegram');
    const name = `Telegram ${rand(3)}`;
    await form.locator('input[name=name]').fill(name);
    await form.locator('[data-secrets=bot_token]').fill('123456:ABC-test-token');
    await form.locator('[data-secrets=webhook_secret_token]').fill('s3cret_token');
    await form.locator('button[type=submit]').click();

    const url = adminPage.locator('[data-testid=webhook-url]');
    await url.waitFor();
    const inboxes = await api(server.url, adminToken, 'GET', '/inboxes');
    const created = inboxes.find((i) => i.name === name);
    assert.ok(created, 'the inbox exists on the server');
    assert.equal(created.kind, 'telegram');
    assert.equal(await url.inputValue(), `${server.url}/webhooks/${created.id}`);
    assert.equal(await adminPage.locator(`.admin-item.active[data-inbox="${created.id}"]`).count(), 1);
    // The copy button puts the URL on the clipboard.
    await adminPage.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    await adminPage.locator('.endpoint button.copy').click();
    await adminPage.locator('.endpoint button.copy').filter({ hasText: 'Copied' }).waitFor();
    assert.equal(await adminPage.evaluate(() => navigator.clipboard.readText()), `${server.url}/webhooks/${created.id}`);

    await adminPage.locator('form.inbox-form [data-settings=mode]').selectOption('polling');
    await adminPage.locator('form.inbox-form button[type=submit]').click();
    await adminPage.locator('form.inbox-form [data-settings=mode]').filter({ has: adminPage.locator('option:checked[value=polling]') }).waitFor();
    const edited = await api(server.url, adminToken, 'GET', `/inboxes/${created.id}`);
    assert.equal(edited.settings.mode, 'polling');
    await adminPage.evaluate(() => document.querySelector('main.page')?.scrollTo(0, 0));
    await screenshot(adminPage, 'admin.png', 'admin.png');
  });

  it('an admin edits an inbox\'s auto-responder flow; the server\'s errors show with their paths', async () => {
    const item = adminPage.locator('.admin-item.active');
    const inboxId = Number(await item.getAttribute('data-inbox'));
    const editor = adminPage.locator('.flow-editor');
    await editor.locator('.editor-status').filter({ hasText: 'No flow' }).waitFor();
    const bad = { start: 'hello', steps: [{ type: 'greeting', id: 'hello', text: 'Hi!', next: 'nowhere' }] };
    await editor.locator('textarea').fill(JSON.stringify(bad, null, 2));
    await editor.locator('.flow-save').click();
    await editor.locator('.path-errors code').filter({ hasText: 'steps[0].next' }).waitFor();
    assert.equal((await api(server.url, adminToken, 'GET', `/inboxes/${inboxId}/flow`)).flow, null, 'a refused flow changes nothing');

    await editor.locator('textarea').fill('{"start": ');
    await editor.locator('.flow-save').click();
    await editor.locator('.editor-status .error').filter({ hasText: 'Not valid JSON' }).waitFor();

    const good = { start: 'hello', steps: [{ type: 'greeting', id: 'hello', text: 'Hi!', next: 'agent' }, { type: 'handoff', id: 'agent', text: 'One moment.' }] };
    await editor.locator('textarea').fill(JSON.stringify(good));
    await editor.locator('.flow-save').click();
    await editor.locator('.editor-status .ok').waitFor();
    const stored = await api(server.url, adminToken, 'GET', `/inboxes/${inboxId}/flow`);
    assert.equal(stored.flow.start, 'hello');
    assert.equal(stored.flow.steps.length, 2);
    await screenshot(adminPage, 'admin-flow.png');

    await editor.locator('.flow-delete').click();
    await editor.locator('.editor-status .ok').filter({ hasText: 'Flow removed' }).waitFor();
    assert.equal((await api(server.url, adminToken, 'GET', `/inboxes/${inboxId}/flow`)).flow, null);
  });

  it('an admin creates a team, adds a member and edits its routing policy (invalid JSON and invalid policies refused)', async () => {
    await adminPage.locator('.tab[data-tab=teams]').click();
    const teamName = `Returns ${rand(3)}`;
    await adminPage.locator('form.new-team input').fill(teamName);
    await adminPage.locator('form.new-team button[type=submit]').click();
    const detail = adminPage.locator('.team-detail');
    await detail.locator('h2').filter({ hasText: teamName }).waitFor();
    const teamId = Number(await detail.getAttribute('data-team'));

    await detail.locator('form.add-member select').selectOption(String(agent.user.id));
    await detail.locator('form.add-member button').click();
    await detail.locator(`.members li[data-user="${agent.user.id}"]`).waitFor();
    const members = await api(server.url, adminToken, 'GET', `/teams/${teamId}/members`);
    assert.deepEqual(members.map((u) => u.id), [agent.user.id]);

    const area = detail.locator('.policy-editor textarea');
    await until(async () => (await area.inputValue()).includes('"strategy"'), 'the policy in the editor');
    const policy = JSON.parse(await area.inputValue());
    await area.fill(JSON.stringify({ ...policy, strategy: 'coin_flip' }));
    await detail.locator('.policy-save').click();
    await detail.locator('.policy-editor .error').filter({ hasText: /policy/ }).waitFor();
    const unchanged = await api(server.url, adminToken, 'GET', `/teams/${teamId}/policy`);
    assert.equal(unchanged.strategy, policy.strategy);

    await area.fill(JSON.stringify({ ...policy, strategy: 'round_robin' }));
    await detail.locator('.policy-save').click();
    await detail.locator('.policy-editor .ok').waitFor();
    assert.equal((await api(server.url, adminToken, 'GET', `/teams/${teamId}/policy`)).strategy, 'round_robin');
  });

  it('an admin creates a user and changes their role and capacity', async () => {
    await adminPage.locator('.tab[data-tab=users]').click();
    const email = `new-${rand()}@example.com`;
    const form = adminPage.locator('form.new-user');
    await form.locator('input[name=email]').fill(email);
    await form.locator('input[name=name]').fill('Li Wei');
    await form.locator('input[name=password]').fill('a-long-password-123');
    await form.locator('select[name=role]').selectOption('agent');
    await form.locator('input[name=capacity]').fill('4');
    await form.locator('button[type=submit]').click();
    const user = await until(async () => (await api(server.url, adminToken, 'GET', '/users')).find((u) => u.email === email), 'the new user on the server');
    assert.equal(user.capacity, 4);
    const row = adminPage.locator(`.users-table tr[data-user="${user.id}"]`);
    await row.waitFor();
    await row.locator('input[name=capacity]').fill('7');
    await row.locator('select[name=role]').selectOption('supervisor');
    await row.locator('.user-save').click();
    const updated = await until(async () => {
      const u = await api(server.url, adminToken, 'GET', `/users/${user.id}`);
      return u.capacity === 7 ? u : null;
    }, 'the capacity change on the server');
    // The table is redrawn from the server's answer.
    assert.equal(await adminPage.locator(`.users-table tr[data-user="${user.id}"] input[name=capacity]`).inputValue(), '7');
    assert.equal(updated.role, 'supervisor');
  });

  it('agents see no wallboard or admin views', async () => {
    assert.equal(await agentPage.locator('.views').count(), 0);
    await agentPage.goto(`${server.url}/#wallboard`);
    await agentPage.locator('main[data-view=conversations]').waitFor();
    assert.equal(await supPage.locator('[data-view-link=admin]').count(), 0, 'supervisors have no admin view');
    assert.equal(await supPage.locator('[data-view-link=wallboard]').count(), 1);
  });

  it('the wallboard speaks Simplified Chinese', async () => {
    const ctx = await browser.newContext({ locale: 'zh-CN', viewport: { width: 1360, height: 820 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    await signIn(page, `${server.url}/#wallboard`, supervisor.email, supervisor.password);
    await page.locator('main[data-view=wallboard] h1').filter({ hasText: '监控大屏' }).waitFor();
    assert.equal(await page.locator('.tile[data-metric=waiting] .tile-label').textContent(), '排队人数');
    assert.equal(await page.locator('.tile[data-metric=service-level] .tile-label').textContent(), '服务水平');
    assert.equal(await page.locator('[data-view-link=wallboard]').textContent(), '监控大屏');
    const row = page.locator(`.agent-row[data-agent="${agent.user.id}"]`);
    await row.locator('[data-field=load]').filter({ hasText: /^1 \/ 5$/ }).waitFor();
    assert.equal(await row.locator('.force-status option:checked').textContent(), '在线');
    await screenshot(page, 'wallboard-zh-CN.png');
    await ctx.close();
  });
});

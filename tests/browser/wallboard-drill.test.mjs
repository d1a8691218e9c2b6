// The wallboard beyond the queue table, in Chromium: service level, speed of answer and the
// waiting chart filled from live data; a supervisor drills into an agent, opens their
// conversation read only, sees the customer's next message arrive live, and reassigns it to
// another agent, whose console gets it.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, api, cleanupAll, createAgent, launchBrowser, log, login, screenshot, startServer, signIn, apiChannelSays,
} from './harness.mjs';

const WAIT = 15_000;

describe('wallboard drill-down, watch and reassign, in Chromium', { timeout: 150_000 }, () => {
  let server, adminToken, ann, bob, inbox, browser, annPage, bobPage, supPage, conversationId;

  const customerSays = (messageId, text) =>
    apiChannelSays(server.url, inbox, messageId, { id: 'watched-1', name: 'Linus T' }, text);

  before(async () => {
    server = await startServer();
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    ann = await createAgent(server.url, adminToken, { name: 'Ann Lee', capacity: 2 });
    bob = await createAgent(server.url, adminToken, { name: 'Bob Stone', capacity: 2 });
    inbox = await api(server.url, adminToken, 'POST', '/inboxes', { name: 'Backend', kind: 'api', settings: { webhook_url: 'http://127.0.0.1:9/hook' } });
    browser = await launchBrowser();
    const pages = [];
    for (const who of ['ann', 'bob', 'supervisor']) {
      const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1360, height: 860 } });
      const page = await ctx.newPage();
      page.setDefaultTimeout(WAIT);
      page.on('pageerror', (e) => log(`${who} page error: ${e.message}`));
      pages.push(page);
    }
    [annPage, bobPage, supPage] = pages;
  });

  after(cleanupAll);

  it('the wallboard shows service level, speed of answer and the chart from live data', async () => {
    await signIn(supPage, `${server.url}/#wallboard`, ADMIN_EMAIL, ADMIN_PASSWORD);
    await supPage.locator('.wb-tiles [data-metric=waiting] .tile-value').waitFor();
    await signIn(annPage, `${server.url}/`, ann.email, ann.password, { available: true });
    conversationId = await customerSays('w-1', 'Kernel panic on boot');
    await annPage.locator(`.conv-item[data-conversation="${conversationId}"]`).waitFor();
    await signIn(bobPage, `${server.url}/`, bob.email, bob.password, { available: true });
    // Answered at once: service level 100 %, a speed of answer in seconds.
    await supPage.locator('.wb-tiles [data-metric=service-level] .tile-value').filter({ hasText: /^100\s?%$/ }).waitFor();
    const asa = await supPage.locator('.wb-tiles [data-metric=asa] .tile-value').textContent();
    assert.match(asa, /^\d+ ?s$/, `ASA ${asa}`);
    assert.equal(await supPage.locator('.wb-tiles [data-metric=abandonment] .tile-value').textContent(), '–', 'nothing ended yet');
    // Per queue too: the inboxes' no-team queue answered its one customer in time.
    const row = supPage.locator('.queue-row[data-team=none]');
    await row.locator('[data-field=service-level]').filter({ hasText: /^100\s?%$/ }).waitFor();
    assert.match(await row.locator('[data-field=asa]').textContent(), /^\d+ ?s$/);
    assert.equal(await row.locator('[data-field=abandonment]').textContent(), '–');
    const points = Number(await supPage.locator('svg.chart').getAttribute('data-points'));
    assert.ok(points >= 1, `chart points ${points}`);
    log(`wallboard: SL ${await supPage.locator('.wb-tiles [data-metric=service-level] .tile-value').textContent()}, ASA ${asa}, chart points ${points}`);
  });

  it('drill into Ann, open her conversation read only, and watch it live', async () => {
    await supPage.locator(`.agent-row[data-agent="${ann.user.id}"] .agent-name`).click();
    const open = supPage.locator(`.agent-drill[data-drill="${ann.user.id}"] [data-watch-open="${conversationId}"]`);
    await open.waitFor();
    assert.match(await open.textContent(), new RegExp(`^#${conversationId} · Linus T · assigned$`));
    await open.click();
    const dialog = supPage.locator(`dialog.watch-dialog[data-watch="${conversationId}"]`);
    await dialog.locator('.msg.inbound').filter({ hasText: 'Kernel panic' }).waitFor();
    assert.equal(await dialog.locator('[data-field=holder]').textContent(), 'Ann Lee');
    assert.equal(await dialog.locator('textarea').count(), 0, 'no reply box: read only');
    // The customer writes again: it appears in the supervisor's dialog without a reload.
    await customerSays('w-2', 'It happens after the update');
    await dialog.locator('.msg.inbound').filter({ hasText: 'after the update' }).waitFor();
    // Ann answers in her console: the supervisor sees that too.
    await annPage.locator('.reply-form textarea').fill('Try booting the previous kernel');
    await annPage.locator('.reply-form textarea').press('Enter');
    await dialog.locator('.msg.outbound').filter({ hasText: 'previous kernel' }).waitFor();
    await screenshot(supPage, 'wallboard-watch.png', 'wallboard-watch.png');
  });

  it('reassign from the dialog: the conversation moves to Bob', async () => {
    const dialog = supPage.locator(`dialog.watch-dialog[data-watch="${conversationId}"]`);
    await dialog.locator('select.reassign-select').selectOption(`agent:${bob.user.id}`);
    await dialog.locator('button.reassign-button').click();
    await dialog.locator('[data-field=holder]').filter({ hasText: 'Bob Stone' }).waitFor();
    await bobPage.locator(`.conv-item[data-conversation="${conversationId}"]`).waitFor();
    await annPage.locator(`.conv-item[data-conversation="${conversationId}"]`).waitFor({ state: 'detached' });
    const conv = await api(server.url, adminToken, 'GET', `/conversations/${conversationId}`);
    assert.equal(conv.assignee_id, bob.user.id);
    await dialog.locator('.watch-close').click();
    await dialog.waitFor({ state: 'detached' });
  });
});

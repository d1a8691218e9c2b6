// The widget outside business hours, in Chromium: the web inbox's auto-responder checks its
// calendar (here one that is never open) and the customer sees the out-of-hours message and the
// callback promise in the widget, then the conversation closes with a callback requested. No agent
// is involved; the customer's typed text is kept.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, api, cleanupAll, launchBrowser, log, login, screenshot, startCustomerSite, startServer,
} from './harness.mjs';

const WAIT = 15_000;

const FLOW = {
  calendars: { never: { time_zone: 'Europe/Berlin', weekly: [] } },
  steps: [
    { type: 'business_hours', id: 'hours', calendar: 'never', next: 'agent',
      out_of_office: 'We are closed right now: our team answers Monday to Friday, 9:00–18:00.',
      when_closed: 'callback', callback_text: 'Leave your question here and we will call you back.' },
    { type: 'handoff', id: 'agent' },
  ],
};

describe('widget out of business hours, in Chromium', { timeout: 120_000 }, () => {
  let server, adminToken, site, browser, customerPage;

  before(async () => {
    server = await startServer();
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    await api(server.url, adminToken, 'PUT', `/inboxes/${server.inboxId}/flow`, { flow: FLOW });
    site = await startCustomerSite(server);
    browser = await launchBrowser();
    const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 800 } });
    customerPage = await ctx.newPage();
    customerPage.setDefaultTimeout(WAIT);
    customerPage.on('pageerror', (e) => log(`customer page error: ${e.message}`));
  });

  after(cleanupAll);

  it('the customer writes and sees the out-of-hours message and the callback promise', async () => {
    await customerPage.goto(site.url);
    await customerPage.locator('#switchboard-widget .launcher').click();
    await customerPage.locator('#switchboard-widget .status[data-connection=online]').waitFor();
    await customerPage.locator('#switchboard-widget textarea').fill('Can I change my delivery address?');
    await customerPage.locator('#switchboard-widget textarea').press('Enter');
    await customerPage.locator('#switchboard-widget .msg.mine[data-message-id]').filter({ hasText: 'delivery address' }).waitFor();
    const theirs = customerPage.locator('#switchboard-widget .msg.theirs[data-message-id]');
    await theirs.filter({ hasText: 'We are closed right now' }).waitFor();
    await theirs.filter({ hasText: 'we will call you back' }).waitFor();
    // In order: the out-of-hours notice, then the callback promise.
    const texts = await theirs.allTextContents();
    const closedAt = texts.findIndex((t) => t.includes('We are closed right now'));
    const callbackAt = texts.findIndex((t) => t.includes('we will call you back'));
    assert.ok(closedAt >= 0 && callbackAt > closedAt, `bot messages in order: ${JSON.stringify(texts)}`);
    await screenshot(customerPage, 'widget-out-of-hours.png');

    // The server's record: closed by the bot with a callback requested, never queued.
    const list = await api(server.url, adminToken, 'GET', `/conversations?inbox_id=${server.inboxId}`);
    const items = list.items ?? list.conversations ?? list;
    assert.equal(items.length, 1, `one conversation: ${JSON.stringify(items)}`);
    const conv = await api(server.url, adminToken, 'GET', `/conversations/${items[0].id}`);
    assert.equal(conv.state, 'closed');
    assert.equal(conv.attributes.callback_requested, true);
    assert.equal(conv.assignee_id ?? null, null);
  });
});

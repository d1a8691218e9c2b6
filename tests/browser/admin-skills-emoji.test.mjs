// Admin → Users skills and per-channel caps, and the reply box's emoji picker, in Chromium against
// the real server (embedded SQLite): an admin gives an agent skills (billing 4, french 2) and a
// WhatsApp cap of 2 in the UI and the server stores exactly that; a proficiency of 9 shows the
// server's 422 message and changes nothing; removing a row removes the skill. The agent, holding a
// widget customer's conversation, opens the emoji picker, inserts an emoji at the caret (Escape and
// a click outside close the picker) and sends the reply; the customer receives it.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, api, cleanupAll, createAgent, launchBrowser, log, login, screenshot, settle,
  signIn, startCustomerSite, startServer,
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

describe('admin skills & channel caps, and the emoji picker, in Chromium', { timeout: 170_000 }, () => {
  let server, adminToken, agent, site, browser;
  let adminPage, agentPage, customerPage;

  before(async () => {
    server = await startServer();
    log(`server at ${server.url}; widget inbox ${server.inboxId}`);
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    agent = await createAgent(server.url, adminToken, { name: 'Noor Haddad', capacity: 5 });
    site = await startCustomerSite(server);
    browser = await launchBrowser();
    const page = async (who, opts) => {
      const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1360, height: 820 }, ...opts });
      const p = await ctx.newPage();
      p.setDefaultTimeout(WAIT);
      p.on('pageerror', (e) => log(`${who} page error: ${e.message}`));
      return p;
    };
    adminPage = await page('admin');
    agentPage = await page('agent');
    customerPage = await page('customer', { viewport: { width: 1024, height: 720 } });
  });

  after(cleanupAll);

  const editor = () => adminPage.locator(`form.skills-form[data-user="${agent.user.id}"]`);

  it('an admin sets an agent\'s skills and a WhatsApp cap; the server stores them', async () => {
    await signIn(adminPage, `${server.url}/#admin`, ADMIN_EMAIL, ADMIN_PASSWORD);
    await adminPage.locator('main[data-view=admin]').waitFor();
    await adminPage.locator('.tab[data-tab=users]').click();
    const row = adminPage.locator(`.users-table tr[data-user="${agent.user.id}"]`);
    await row.locator('.user-skills').click();
    const form = editor();
    await form.waitFor();
    assert.equal(await form.locator('.skill-row').count(), 0);
    await form.locator('.skills-empty').waitFor();
    assert.equal(await form.locator('[data-channel-cap]').count(), 8, 'one cap field per channel kind');

    for (const [name, level] of [['billing', '4'], ['french', '2'], ['spanish', '3']]) {
      await form.locator('.skill-add').click();
      const r = form.locator('.skill-row').last();
      await r.locator('input[name=skill-name]').fill(name);
      await r.locator('input[name=skill-level]').fill(level);
    }
    // Rows can be removed before saving too.
    await form.locator('.skill-row').filter({ has: adminPage.locator('input[name=skill-name]') }).nth(2).locator('.skill-remove').click();
    assert.equal(await form.locator('.skill-row').count(), 2);
    await form.locator('[data-channel-cap=whatsapp]').fill('2');
    await form.locator('.skills-save').click();

    const stored = await until(async () => {
      const u = await api(server.url, adminToken, 'GET', `/users/${agent.user.id}`);
      return Object.keys(u.skills).length ? u : null;
    }, 'the skills on the server');
    assert.deepEqual(stored.skills, { billing: 4, french: 2 });
    assert.deepEqual(stored.channel_capacity, { whatsapp: 2 });
    // The editor is redrawn from the server's answer and stays open.
    await editor().locator('.skills-status .ok').waitFor();
    assert.equal(await editor().locator('.skill-row').count(), 2);
    assert.equal(await editor().locator('[data-channel-cap=whatsapp]').inputValue(), '2');
    assert.equal(await editor().locator('[data-channel-cap=telegram]').inputValue(), '');
    await screenshot(adminPage, 'admin-skills.png');
  });

  it('a proficiency of 9 shows the server\'s error and changes nothing', async () => {
    const form = editor();
    const billing = form.locator('.skill-row').filter({ has: adminPage.locator('input[name=skill-name]') }).first();
    assert.equal(await billing.locator('input[name=skill-name]').inputValue(), 'billing');
    await billing.locator('input[name=skill-level]').fill('9');
    await form.locator('[data-channel-cap=telegram]').fill('1');
    await form.locator('.skills-save').click();
    const error = form.locator('.skills-status .error');
    await error.waitFor();
    assert.match(await error.textContent(), /skills\.billing: proficiency must be 1 to 5/);
    await settle(300);
    const u = await api(server.url, adminToken, 'GET', `/users/${agent.user.id}`);
    assert.deepEqual(u.skills, { billing: 4, french: 2 }, 'a refused edit changes no skill');
    assert.deepEqual(u.channel_capacity, { whatsapp: 2 }, 'a refused edit changes no cap');

    // Removing a row and clearing the cap removes them on the server.
    await billing.locator('input[name=skill-level]').fill('5');
    await form.locator('[data-channel-cap=telegram]').fill('');
    await form.locator('.skill-row').nth(1).locator('.skill-remove').click();
    await form.locator('.skills-save').click();
    const after = await until(async () => {
      const v = await api(server.url, adminToken, 'GET', `/users/${agent.user.id}`);
      return v.skills.billing === 5 ? v : null;
    }, 'the corrected skills on the server');
    assert.deepEqual(after.skills, { billing: 5 });
    assert.deepEqual(after.channel_capacity, { whatsapp: 2 });
  });

  it('the agent inserts an emoji at the caret from the picker and sends it', async () => {
    await signIn(agentPage, `${server.url}/`, agent.email, agent.password);
    await agentPage.locator('.status-select').selectOption('available');
    await agentPage.locator('.status-select[data-status=available]').waitFor();

    await customerPage.goto(site.url);
    await customerPage.locator('#switchboard-widget .launcher').click();
    await customerPage.locator('#switchboard-widget .status[data-connection=online]').waitFor();
    await customerPage.locator('#switchboard-widget textarea').fill('Hello, where is my parcel?');
    await customerPage.locator('#switchboard-widget textarea').press('Enter');
    await agentPage.locator('.log .msg.inbound').filter({ hasText: 'where is my parcel' }).waitFor();

    const box = agentPage.locator('.reply-form textarea');
    const button = agentPage.locator('.reply-form .emoji-button');
    const grid = agentPage.locator('.reply-form .emoji-grid');
    assert.equal(await button.getAttribute('aria-label'), 'Insert emoji');
    assert.equal(await button.getAttribute('title'), 'Insert emoji');

    // Escape closes; so does a click outside.
    await button.click();
    await grid.waitFor({ state: 'visible' });
    assert.ok(await grid.locator('.emoji').count() >= 40, 'about forty emoji');
    await agentPage.keyboard.press('Escape');
    await grid.waitFor({ state: 'hidden' });
    await button.click();
    await grid.waitFor({ state: 'visible' });
    await agentPage.locator('.log').click({ position: { x: 20, y: 20 } });
    await grid.waitFor({ state: 'hidden' });

    // Inserted at the caret, not at the end.
    await box.fill('It ships today  thanks for waiting');
    await box.evaluate((el) => { el.focus(); el.setSelectionRange(15, 15); });
    await button.click();
    await grid.waitFor({ state: 'visible' });
    await screenshot(agentPage, 'console-emoji.png');
    await grid.locator('.emoji[data-emoji="🚚"]').click();
    await grid.waitFor({ state: 'hidden' });
    assert.equal(await box.inputValue(), 'It ships today 🚚 thanks for waiting');
    assert.equal(await box.evaluate((el) => el.selectionStart), 15 + '🚚'.length, 'the caret follows the emoji');
    assert.ok(await box.evaluate((el) => document.activeElement === el), 'the textarea keeps the focus');

    await box.press('Enter');
    await customerPage.locator('#switchboard-widget .msg.theirs[data-message-id]').filter({ hasText: 'It ships today 🚚 thanks for waiting' }).waitFor();
    await agentPage.locator('.log .msg[data-message-id]').filter({ hasText: '🚚' }).waitFor();
  });
});

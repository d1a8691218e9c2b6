// Transfer with an internal note in Chromium: agent A (one browser context) writes an internal
// note and transfers the widget customer's conversation to agent B (a second context) with
// another note; B's console gets the conversation live with both notes shown as notes (yellow);
// the customer's widget (a third context) never shows either, before or after a reload.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, api, cleanupAll, createAgent, launchBrowser, log, login, screenshot, settle,
  startCustomerSite, startServer, signIn,
} from './harness.mjs';

const WAIT = 15_000;
const OWN_NOTE = 'Customer already waited two days for the refund';
const TRANSFER_NOTE = 'Refund approved by finance, please confirm the shipping address';

const widgetTexts = (page) => page.locator('#switchboard-widget .msg[data-message-id] .bubble').allTextContents();

describe('transfer to another agent with a note, in Chromium', { timeout: 150_000 }, () => {
  let server, adminToken, ann, bob, site, browser;
  let annPage, bobPage, customerPage, conversationId;

  before(async () => {
    server = await startServer();
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    ann = await createAgent(server.url, adminToken, { name: 'Ann Lee', capacity: 3 });
    bob = await createAgent(server.url, adminToken, { name: 'Bob Chen', capacity: 3 });
    site = await startCustomerSite(server);
    browser = await launchBrowser();
    const pages = [];
    for (const who of ['ann', 'bob', 'customer']) {
      const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 760 } });
      const page = await ctx.newPage();
      page.setDefaultTimeout(WAIT);
      page.on('pageerror', (e) => log(`${who} page error: ${e.message}`));
      pages.push(page);
    }
    [annPage, bobPage, customerPage] = pages;
  });

  after(cleanupAll);

  it('the customer writes; A gets the conversation', async () => {
    await signIn(annPage, `${server.url}/`, ann.email, ann.password, { available: true });
    await customerPage.goto(site.url);
    await customerPage.locator('#switchboard-widget .launcher').click();
    await customerPage.locator('#switchboard-widget .status[data-connection=online]').waitFor();
    await customerPage.locator('#switchboard-widget textarea').fill('Where is my refund?');
    await customerPage.locator('#switchboard-widget textarea').press('Enter');
    const item = annPage.locator('.conv-item');
    await item.first().waitFor();
    conversationId = Number(await item.first().getAttribute('data-conversation'));
    await annPage.locator('.log .msg.inbound').filter({ hasText: 'Where is my refund?' }).waitFor();
    // B comes online only now, so the conversation is A's.
    await signIn(bobPage, `${server.url}/`, bob.email, bob.password, { available: true });
  });

  it('A adds an internal note; it shows as a note', async () => {
    await annPage.locator('.note-input').fill(OWN_NOTE);
    await annPage.locator('.note-form button[type=submit]').click();
    const note = annPage.locator('.log .msg.note[data-private=true]').filter({ hasText: OWN_NOTE });
    await note.waitFor();
    assert.match(await note.locator('.meta').textContent(), /^Internal note · You · /);
  });

  it('A transfers to B with a note; the conversation leaves A and reaches B with both notes', async () => {
    await annPage.locator('.conv-head [data-action=transfer]').click();
    const dialog = annPage.locator('dialog.transfer-dialog');
    await dialog.locator('select.transfer-target option[data-agent]').first().waitFor({ state: 'attached' });
    const options = await dialog.locator('select.transfer-target option').allTextContents();
    assert.ok(options.some((o) => o.startsWith('Bob Chen — Available · 0 / 3')), `B is offered with status and load: ${options}`);
    assert.ok(!options.some((o) => o.startsWith('Ann Lee')), 'A is not offered to herself');
    await dialog.locator('select.transfer-target').selectOption(`agent:${bob.user.id}`);
    await dialog.locator('textarea.transfer-note').fill(TRANSFER_NOTE);
    await screenshot(annPage, 'console-transfer-dialog.png');
    await dialog.locator('button[type=submit]').click();
    await dialog.waitFor({ state: 'detached' });
    await annPage.locator(`.conv-item[data-conversation="${conversationId}"]`).waitFor({ state: 'detached' });
    assert.equal(await annPage.locator('[data-testid=load]').textContent(), '0 / 3 chats');

    const item = bobPage.locator(`.conv-item[data-conversation="${conversationId}"]`);
    await item.waitFor();
    await item.click();
    await bobPage.locator('.log .msg.inbound').filter({ hasText: 'Where is my refund?' }).waitFor();
    const note = bobPage.locator('.log .msg.note').filter({ hasText: TRANSFER_NOTE });
    await note.waitFor();
    await bobPage.locator('.log .msg.note').filter({ hasText: OWN_NOTE }).waitFor();
    assert.match(await note.locator('.meta').textContent(), /^Internal note · Agent · /);
    const background = await note.locator('.bubble').evaluate((el) => getComputedStyle(el).backgroundColor);
    assert.equal(background, 'rgb(255, 248, 197)', 'notes are drawn yellow');
    assert.equal(await bobPage.locator('[data-testid=load]').textContent(), '1 / 3 chats');
    await screenshot(bobPage, 'console-transferred.png');
  });

  it('B replies; the customer gets the reply and never a note, even after a reload', async () => {
    const box = bobPage.locator('.reply-form textarea');
    await box.fill('Hi, Bob here. Which address should we ship to?');
    await box.press('Enter');
    await customerPage.locator('#switchboard-widget .msg.theirs[data-message-id]').filter({ hasText: 'Bob here' }).waitFor();
    await settle(500);
    let texts = await widgetTexts(customerPage);
    assert.deepEqual(texts, ['Where is my refund?', 'Hi, Bob here. Which address should we ship to?']);
    // The reloaded widget restores its history with a resync from the server.
    await customerPage.reload();
    await customerPage.locator('#switchboard-widget .status[data-connection=online]').waitFor();
    await customerPage.locator('#switchboard-widget .msg.theirs[data-message-id]').filter({ hasText: 'Bob here' }).waitFor();
    texts = await widgetTexts(customerPage);
    assert.deepEqual(texts, ['Where is my refund?', 'Hi, Bob here. Which address should we ship to?'], 'no note on resync');
    const events = await api(server.url, adminToken, 'GET', `/conversations/${conversationId}/events`);
    assert.equal(events.filter((e) => e.kind === 'transferred').length, 1);
  });
});

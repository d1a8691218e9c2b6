// Canned responses, the customer's previous conversations, resolve with a wrap-up form, and the
// console's first meaningful paint, in Chromium against the real server:
// - the admin adds a canned response and the team's wrap-up form in the Admin view (a bad form
//   shows the server's errors with their paths);
// - the agent types `/gre`, picks the canned response with the keyboard, and it is sent with the
//   customer's and the agent's names filled in;
// - the customer panel lists the customer's earlier conversation; it opens read only with its
//   messages and wrap-up;
// - resolving refuses to send without the required fields, then stores the form on the
//   conversation (read back over REST);
// - a reload prints first-contentful-paint and the "conversation list drawn" mark (printed, never
//   asserted on: timing goes to numbers, not pass/fail).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, api, cleanupAll, createAgent, launchBrowser, log, login, screenshot, startServer, signIn, apiChannelSays,
} from './harness.mjs';

const WAIT = 15_000;
const TEMPLATE = {
  fields: [
    { key: 'topic', label: 'Topic', kind: 'select', options: ['billing', 'shipping', 'other'], required: true },
    { key: 'summary', label: 'Summary', kind: 'text', required: true },
    { key: 'callback', label: 'Call the customer back', kind: 'checkbox' },
  ],
};

describe('canned responses, history and resolve with wrap-up, in Chromium', { timeout: 170_000 }, () => {
  let server, adminToken, ann, team, inbox, browser, adminPage, annPage;
  let firstId, secondId;

  /** A customer message through the API channel (the team's inbox). */
  const customerSays = (messageId, text) =>
    apiChannelSays(server.url, inbox, messageId, { id: 'grace-1', name: 'Grace Hopper' }, text);

  before(async () => {
    server = await startServer();
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    ann = await createAgent(server.url, adminToken, { name: 'Ann Lee', capacity: 3 });
    team = await api(server.url, adminToken, 'POST', '/teams', { name: 'Care' });
    await api(server.url, adminToken, 'POST', `/teams/${team.id}/members`, { user_id: ann.user.id });
    inbox = await api(server.url, adminToken, 'POST', '/inboxes', {
      name: 'Shop backend', kind: 'api', team_id: team.id, settings: { webhook_url: 'http://127.0.0.1:9/hook' },
    });
    browser = await launchBrowser();
    const pages = [];
    for (const who of ['admin', 'ann']) {
      const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 800 } });
      const page = await ctx.newPage();
      page.setDefaultTimeout(WAIT);
      page.on('pageerror', (e) => log(`${who} page error: ${e.message}`));
      pages.push(page);
    }
    [adminPage, annPage] = pages;
  });

  after(cleanupAll);

  it('the admin adds a canned response and the team wrap-up form in the Admin view', async () => {
    await signIn(adminPage, `${server.url}/#admin`, ADMIN_EMAIL, ADMIN_PASSWORD);
    await adminPage.locator('.tabs [data-tab=canned]').click();
    const form = adminPage.locator('form.canned-new');
    await form.locator('input[name=shortcut]').fill('Bad Shortcut');
    await form.locator('input[name=title]').fill('Greeting');
    await form.locator('textarea[name=body]').fill('Hello {{contact.name}}, this is {{agent.name}}. How can I help?');
    await form.locator('button.canned-create').click();
    await form.locator('.form-error .error').filter({ hasText: /shortcut must be/ }).waitFor();
    await form.locator('input[name=shortcut]').fill('greet');
    await form.locator('button.canned-create').click();
    await adminPage.locator('form.canned-row[data-canned=greet]').waitFor();
    const listed = await api(server.url, adminToken, 'GET', '/canned-responses');
    assert.deepEqual(listed.map((c) => c.shortcut), ['greet']);

    await adminPage.locator('.tabs [data-tab=teams]').click();
    await adminPage.locator(`.admin-list button[data-team="${team.id}"]`).click();
    const editor = adminPage.locator('.wrapup-editor');
    await editor.locator('textarea.wrapup-json').fill(JSON.stringify({ fields: [{ key: 'Topic!', label: '', kind: 'radio' }] }));
    await editor.locator('button.wrapup-save').click();
    const paths = editor.locator('.path-errors li code');
    await paths.first().waitFor();
    assert.deepEqual(await paths.allTextContents(), ['fields[0].key', 'fields[0].label', 'fields[0].kind']);
    await editor.locator('textarea.wrapup-json').fill(JSON.stringify(TEMPLATE, null, 2));
    await editor.locator('button.wrapup-save').click();
    await editor.locator('.wrapup-status .ok').waitFor();
    const stored = await api(server.url, adminToken, 'GET', `/teams/${team.id}/wrap-up-template`);
    assert.deepEqual(stored.template.fields.map((f) => f.key), ['topic', 'summary', 'callback']);
  });

  it('an earlier conversation of the customer is resolved with its wrap-up', async () => {
    firstId = await customerSays('m-1', 'My invoice shows the wrong amount');
    // An admin resolving as "resolved" must fill the form in too.
    await assert.rejects(api(server.url, adminToken, 'POST', `/conversations/${firstId}/resolve`, { reason: 'resolved' }), /422.*invalid_wrap_up/);
    await api(server.url, adminToken, 'POST', `/conversations/${firstId}/resolve`, {
      reason: 'resolved', wrap_up: { topic: 'billing', summary: 'Invoice corrected' },
    });
  });

  it('the agent inserts a canned response with /gre and the keyboard', async () => {
    await signIn(annPage, `${server.url}/`, ann.email, ann.password);
    await annPage.locator('.status-select').selectOption('available');
    await annPage.locator('.status-select[data-status=available]').waitFor();
    secondId = await customerSays('m-2', 'Hi again, where is my parcel?');
    await annPage.locator(`.conv-item[data-conversation="${secondId}"]`).click();
    await annPage.locator('.log .msg.inbound').filter({ hasText: 'where is my parcel' }).waitFor();

    const box = annPage.locator('.reply-form textarea');
    await box.click();
    await box.pressSequentially('/gre');
    const item = annPage.locator('.canned-picker .canned-item[data-shortcut=greet]');
    await item.waitFor();
    assert.equal(await annPage.locator('.canned-picker .canned-item.selected').getAttribute('data-shortcut'), 'greet');
    await screenshot(annPage, 'console-canned-picker.png');
    await box.press('Enter');
    await annPage.locator('.canned-picker').waitFor({ state: 'hidden' });
    const expected = 'Hello Grace Hopper, this is Ann Lee. How can I help?';
    assert.equal(await box.inputValue(), expected);
    await box.press('Enter');
    await annPage.locator('.log .msg.outbound[data-message-id] .bubble').filter({ hasText: expected }).waitFor();
    const messages = await api(server.url, adminToken, 'GET', `/conversations/${secondId}/messages`);
    assert.ok(messages.some((m) => m.direction === 'outbound' && m.text === expected), JSON.stringify(messages));

    // A slash that matches nothing says so, and Escape leaves the text alone.
    await box.pressSequentially('/zzz');
    await annPage.locator('.canned-picker .canned-empty').waitFor();
    await box.press('Escape');
    await annPage.locator('.canned-picker').waitFor({ state: 'hidden' });
    assert.equal(await box.inputValue(), '/zzz');
    await box.fill('');
  });

  it('the customer panel lists the earlier conversation and opens it read only', async () => {
    const entry = annPage.locator(`.customer .history-item[data-history="${firstId}"]`);
    await entry.waitFor();
    assert.match(await entry.textContent(), new RegExp(`^#${firstId} · resolved · `));
    assert.equal(await annPage.locator(`.customer .history-item[data-history="${secondId}"]`).count(), 0, 'the open one is not "previous"');
    await entry.click();
    const dialog = annPage.locator(`dialog.history-dialog[data-readonly="${firstId}"]`);
    await dialog.locator('.msg.inbound').filter({ hasText: 'wrong amount' }).waitFor();
    assert.deepEqual((await dialog.locator('.wrap-up-summary dd').allTextContents()).sort(), ['summary: Invoice corrected', 'topic: billing']);
    assert.equal(await dialog.locator('textarea, input, form').count(), 0, 'nothing to edit in a read-only view');
    await screenshot(annPage, 'console-history.png');
    await dialog.locator('.dialog-actions button').click();
    await dialog.waitFor({ state: 'detached' });
  });

  it('resolve with wrap-up: required fields are enforced, then the form is stored', async () => {
    await annPage.locator('.conv-head [data-action=resolve]').click();
    const dialog = annPage.locator('dialog.resolve-dialog');
    await dialog.locator('[data-wrap-field=topic]').waitFor();
    assert.deepEqual(await dialog.locator('[data-wrap-field=topic] option').allTextContents(), ['Choose…', 'billing', 'shipping', 'other']);
    await dialog.locator('.reason-select').selectOption('resolved');
    await dialog.locator('button[type=submit]').click();
    await dialog.locator('.field-error[data-error-for=topic]').filter({ hasText: 'Please fill this in.' }).waitFor();
    await dialog.locator('.field-error[data-error-for=summary]').filter({ hasText: 'Please fill this in.' }).waitFor();
    assert.equal((await api(server.url, adminToken, 'GET', `/conversations/${secondId}`)).state, 'assigned', 'nothing was sent');

    await dialog.locator('[data-wrap-field=topic]').selectOption('shipping');
    await dialog.locator('[data-wrap-field=summary]').fill('Parcel delayed at customs; tracking link sent');
    await dialog.locator('[data-wrap-field=callback]').check();
    await screenshot(annPage, 'console-resolve-wrap-up.png', 'console-resolve.png');
    await dialog.locator('button[type=submit]').click();
    await dialog.waitFor({ state: 'detached' });
    await annPage.locator(`.conv-item[data-conversation="${secondId}"]`).waitFor({ state: 'detached' });
    const conv = await api(server.url, adminToken, 'GET', `/conversations/${secondId}`);
    assert.equal(conv.state, 'resolved');
    assert.equal(conv.close_reason, 'resolved');
    assert.deepEqual(conv.attributes.wrap_up, { topic: 'shipping', summary: 'Parcel delayed at customs; tracking link sent', callback: true });
  });

  it('prints the console\'s first meaningful paint (never asserted)', async () => {
    const third = await customerSays('m-3', 'One more thing');
    await annPage.locator(`.conv-item[data-conversation="${third}"]`).waitFor();
    const samples = [];
    for (let i = 0; i < 3; i++) {
      await annPage.reload();
      await annPage.locator(`.conv-item[data-conversation="${third}"]`).waitFor();
      await annPage.waitForFunction(() => performance.getEntriesByName('switchboard:conversations-rendered').length > 0);
      samples.push(await annPage.evaluate(() => {
        const paint = Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, Math.round(p.startTime)]));
        const nav = performance.getEntriesByType('navigation')[0];
        return {
          fcp: paint['first-contentful-paint'],
          list: Math.round(performance.getEntriesByName('switchboard:conversations-rendered')[0].startTime),
          domContentLoaded: Math.round(nav?.domContentLoadedEventEnd ?? 0),
        };
      }));
    }
    for (const s of samples) log(`console paint: first-contentful-paint ${s.fcp} ms, conversation list drawn ${s.list} ms, DOMContentLoaded ${s.domContentLoaded} ms`);
    assert.ok(samples.every((s) => Number.isFinite(s.list) && s.list > 0), JSON.stringify(samples));
  });
});

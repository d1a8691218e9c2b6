// The widget's pre-chat form in Chromium: the web inbox asks for name, optional email and a
// department (two teams); the customer fills it in on a customer's site, writes, and the
// conversation lands in the chosen team's queue — with the one agent who serves that team — whose
// customer panel shows the name, email and department. After a reload the form is not asked again.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, api, cleanupAll, createAgent, launchBrowser, log, login, screenshot, startCustomerSite, startServer,
} from './harness.mjs';

const WAIT = 15_000;

describe('widget pre-chat form, in Chromium', { timeout: 150_000 }, () => {
  let server, adminToken, sales, support, ann, site, browser, agentPage, customerPage, adminPage, conversationId;

  before(async () => {
    server = await startServer();
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    sales = await api(server.url, adminToken, 'POST', '/teams', { name: 'Sales' });
    support = await api(server.url, adminToken, 'POST', '/teams', { name: 'Support' });
    ann = await createAgent(server.url, adminToken, { name: 'Ann Lee', capacity: 3 });
    await api(server.url, adminToken, 'POST', `/teams/${support.id}/members`, { user_id: ann.user.id });
    site = await startCustomerSite(server);
    browser = await launchBrowser();
    const pages = [];
    for (const who of ['agent', 'customer', 'admin']) {
      const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 800 } });
      const page = await ctx.newPage();
      page.setDefaultTimeout(WAIT);
      page.on('pageerror', (e) => log(`${who} page error: ${e.message}`));
      pages.push(page);
    }
    [agentPage, customerPage, adminPage] = pages;
  });

  after(cleanupAll);

  it('the admin turns the form on for the web inbox (a malformed setting is refused)', async () => {
    await assert.rejects(
      api(server.url, adminToken, 'PATCH', `/inboxes/${server.inboxId}`, { settings: { prechat: { enabled: 'yes' } } }),
      /422.*settings\.prechat\.enabled/,
    );
    // In the Admin view: the web inbox's pre-chat settings.
    await adminPage.goto(`${server.url}/#admin`);
    await adminPage.locator('input[name=email]').fill(ADMIN_EMAIL);
    await adminPage.locator('input[name=password]').fill(ADMIN_PASSWORD);
    await adminPage.locator('form.login-card button[type=submit]').click();
    await adminPage.locator(`.admin-list [data-inbox="${server.inboxId}"]`).click();
    const fs = adminPage.locator('fieldset.prechat-settings');
    await fs.locator('[data-prechat=enabled]').check();
    await fs.locator(`[data-prechat-team="${sales.id}"]`).check();
    await fs.locator(`[data-prechat-team="${support.id}"]`).check();
    await adminPage.locator('form.inbox-form button[type=submit]').click();
    await adminPage.waitForFunction(async ([url, token, inbox]) => {
      const r = await fetch(`${url}/api/v1/inboxes/${inbox}`, { headers: { authorization: `Bearer ${token}` } });
      return (await r.json()).settings?.prechat?.enabled === true;
    }, [server.url, adminToken, server.inboxId]);
    const inbox = await api(server.url, adminToken, 'GET', `/inboxes/${server.inboxId}`);
    assert.deepEqual(inbox.settings.prechat, { enabled: true, require_email: false, departments: [sales.id, support.id] });
  });

  it('the customer answers the form and writes; the chosen team\'s agent gets it', async () => {
    await agentPage.goto(`${server.url}/`);
    await agentPage.locator('input[name=email]').fill(ann.email);
    await agentPage.locator('input[name=password]').fill(ann.password);
    await agentPage.locator('form.login-card button[type=submit]').click();
    await agentPage.locator('.conn-pill[data-connection=connected]').waitFor();
    await agentPage.locator('.status-select').selectOption('available');
    await agentPage.locator('.status-select[data-status=available]').waitFor();

    await customerPage.goto(site.url);
    await customerPage.locator('#switchboard-widget .launcher').click();
    const form = customerPage.locator('#switchboard-widget form.prechat');
    await form.waitFor();
    assert.ok(await customerPage.locator('#switchboard-widget form.composer').isHidden(), 'no composer before the form');
    assert.deepEqual(await form.locator('select[name=department] option').allTextContents(), ['Choose…', 'Sales', 'Support']);
    assert.equal(await form.locator('input[name=email]').getAttribute('required'), null, 'email is optional here');
    // The browser refuses an empty name: nothing is sent, the form stays.
    await form.locator('button.prechat-start').click();
    assert.ok(await form.isVisible());
    await form.locator('input[name=name]').fill('Grace Hopper');
    await form.locator('input[name=email]').fill('grace@example.com');
    await form.locator('select[name=department]').selectOption({ label: 'Support' });
    await screenshot(customerPage, 'widget-prechat.png', 'widget-prechat.png');
    await form.locator('button.prechat-start').click();
    await form.waitFor({ state: 'detached' });
    await customerPage.locator('#switchboard-widget textarea').fill('My compiler has a bug');
    await customerPage.locator('#switchboard-widget textarea').press('Enter');
    await customerPage.locator('#switchboard-widget .msg.mine[data-message-id]').filter({ hasText: 'compiler' }).waitFor();

    const item = agentPage.locator('.conv-item');
    await item.first().waitFor();
    conversationId = Number(await item.first().getAttribute('data-conversation'));
    await agentPage.locator('.log .msg.inbound').filter({ hasText: 'compiler' }).waitFor();
    assert.equal(await agentPage.locator('.customer [data-field=name]').textContent(), 'Grace Hopper');
    assert.equal(await agentPage.locator('.customer [data-field=email]').textContent(), 'grace@example.com');
    assert.equal(await agentPage.locator('.customer [data-field=department]').textContent(), 'Support');
    const conv = await api(server.url, adminToken, 'GET', `/conversations/${conversationId}`);
    assert.equal(conv.team_id, support.id, 'routed to the chosen department');
    assert.equal(conv.assignee_id, ann.user.id);
    assert.deepEqual(conv.attributes.prechat, { name: 'Grace Hopper', email: 'grace@example.com', department: { id: support.id, name: 'Support' } });
    assert.equal(conv.contact.name, 'Grace Hopper');
  });

  it('after a reload the form is not asked again', async () => {
    await customerPage.reload();
    await customerPage.locator('#switchboard-widget .status[data-connection=online]').waitFor();
    await customerPage.locator('#switchboard-widget .msg.mine[data-message-id]').filter({ hasText: 'compiler' }).waitFor();
    assert.equal(await customerPage.locator('#switchboard-widget form.prechat').count(), 0);
    assert.ok(await customerPage.locator('#switchboard-widget form.composer').isVisible());
  });

  it('the form speaks Simplified Chinese for a zh-CN visitor', async () => {
    const ctx = await browser.newContext({ locale: 'zh-CN' });
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    await page.goto(site.url);
    await page.locator('#switchboard-widget .launcher').click();
    const form = page.locator('#switchboard-widget form.prechat');
    await form.waitFor();
    assert.deepEqual(await form.locator('.prechat-field > span').allTextContents(), ['您的姓名', '邮箱（选填）', '咨询部门']);
    assert.equal(await form.locator('button.prechat-start').textContent(), '开始咨询');
    assert.equal(await form.locator('select[name=department] option').first().textContent(), '请选择…');
    await ctx.close();
  });

  it('a department that is not offered is refused by the server', async () => {
    // A fresh customer whose stored answers name a team the inbox does not offer.
    const ctx = await browser.newContext({ locale: 'en-US' });
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    await page.goto(site.url);
    await page.evaluate((inbox) => localStorage.setItem(`switchboard.widget.${inbox}.prechat`, JSON.stringify({ name: 'Eve', team_id: 999999 })), server.inboxId);
    await page.reload();
    await page.locator('#switchboard-widget .launcher').click();
    const error = page.locator('#switchboard-widget .prechat-error');
    await error.filter({ hasText: 'not one of the departments' }).waitFor();
    assert.ok(await page.locator('#switchboard-widget form.composer').isHidden());
    await ctx.close();
  });
});

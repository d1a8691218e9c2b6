// A customer on a third-party page with the embedded widget and an agent in the console, each in
// their own browser context of one headless Chromium, against the real server (embedded SQLite):
// messages both ways; a reply typed and sent while the agent's browser is offline is queued,
// sent on reconnect and reaches the customer exactly once; the widget resumes its session after
// a reload; the console renders in Simplified Chinese.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, api, cleanupAll, createAgent, launchBrowser, log, login, screenshot, settle,
  startCustomerSite, startServer, signIn,
} from './harness.mjs';

const WAIT = 15_000;

/** Texts of the stored (acknowledged) messages in the widget. */
const widgetTexts = (page) => page.locator('#switchboard-widget .msg[data-message-id] .bubble').allTextContents();
/** Texts of the stored messages in the console's open conversation. */
const consoleTexts = (page) => page.locator('.log .msg[data-message-id] .bubble').allTextContents();
const count = (list, text) => list.filter((t) => t === text).length;

describe('console ↔ widget in Chromium', { timeout: 150_000 }, () => {
  let server, adminToken, agent, site, browser;
  let agentCtx, agentPage, customerCtx, customerPage, conversationId;

  before(async () => {
    server = await startServer();
    log(`server at ${server.url}; widget inbox ${server.inboxId}`);
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    agent = await createAgent(server.url, adminToken, { name: 'Mei Lin', capacity: 5 });
    site = await startCustomerSite(server);
    browser = await launchBrowser();
    agentCtx = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 760 } });
    agentPage = await agentCtx.newPage();
    customerCtx = await browser.newContext({ locale: 'en-US', viewport: { width: 1024, height: 720 } });
    customerPage = await customerCtx.newPage();
    for (const [who, page] of [['agent', agentPage], ['customer', customerPage]]) {
      page.setDefaultTimeout(WAIT);
      page.on('pageerror', (e) => log(`${who} page error: ${e.message}`));
    }
  });

  after(cleanupAll);

  it('the agent signs in and goes available', async () => {
    await signIn(agentPage, `${server.url}/`, agent.email, agent.password);
    await agentPage.locator('.status-select').selectOption('available');
    await agentPage.locator('.status-select[data-status=available]').waitFor();
    assert.equal(await agentPage.locator('[data-testid=load]').textContent(), '0 / 5 chats');
    assert.match(await agentPage.locator('.conv-list').textContent(), /No open conversations/);
  });

  it('a customer writes from the widget; the agent gets the conversation live', async () => {
    await customerPage.goto(site.url);
    await customerPage.locator('#switchboard-widget .launcher').click();
    await customerPage.locator('#switchboard-widget .status[data-connection=online]').waitFor();
    await customerPage.locator('#switchboard-widget textarea').fill('Hi, does the Trail Tent fit two adults?');
    await customerPage.locator('#switchboard-widget textarea').press('Enter');
    // Shown as stored only once acknowledged: the stored bubble carries the server's id.
    await customerPage.locator('#switchboard-widget .msg.mine[data-message-id]').filter({ hasText: 'fit two adults' }).waitFor();
    await customerPage.locator('#switchboard-widget .msg.pending').waitFor({ state: 'detached' });

    const item = agentPage.locator('.conv-item');
    await item.first().waitFor();
    conversationId = Number(await item.first().getAttribute('data-conversation'));
    assert.ok(conversationId > 0);
    await agentPage.locator('.log .msg.inbound').filter({ hasText: 'fit two adults' }).waitFor();
    assert.equal(await agentPage.locator('[data-testid=load]').textContent(), '1 / 5 chats');
    // Channel icon and customer panel.
    assert.equal(await item.first().locator('.channel-badge').getAttribute('data-channel'), 'web');
    assert.match(await agentPage.locator('.customer').textContent(), /Anonymous visitor/);
    assert.match(await item.first().locator('.conv-name').textContent(), /^Visitor #\d+$/);
    assert.ok(await agentPage.locator('.customer [data-field=identifiers] li').count() >= 1, 'the customer panel lists the identifiers the server sent');
  });

  it('the agent replies; the customer sees it', async () => {
    const box = agentPage.locator('.reply-form textarea');
    await box.fill('Yes! It sleeps two adults comfortably, 210 × 130 cm inside.');
    await box.press('Enter');
    await customerPage.locator('#switchboard-widget .msg.theirs[data-message-id]').filter({ hasText: '210 × 130 cm' }).waitFor();
    await customerPage.locator('#switchboard-widget textarea').fill('Great, and is shipping free?');
    await customerPage.locator('#switchboard-widget textarea').press('Enter');
    await agentPage.locator('.log .msg.inbound').filter({ hasText: 'shipping free' }).waitFor();
  });

  it('a reply sent while offline is queued, sent on reconnect and arrives exactly once', async () => {
    const text = 'Shipping is free over $100, so yes — your tent ships free.';
    await agentCtx.setOffline(true);
    await agentPage.locator('.banner[data-connection=offline]').waitFor();
    const box = agentPage.locator('.reply-form textarea');
    await box.fill(text);
    await box.press('Enter');
    const pending = agentPage.locator('.log .msg.pending').filter({ hasText: text });
    await pending.waitFor();
    assert.match(await pending.textContent(), /Queued/);
    await screenshot(agentPage, 'console-offline.png');
    await settle(1_500);
    assert.equal(count(await widgetTexts(customerPage), text), 0, 'nothing leaves an offline browser');

    await agentCtx.setOffline(false);
    await customerPage.locator('#switchboard-widget .msg.theirs[data-message-id]').filter({ hasText: text }).waitFor();
    await agentPage.locator('.conn-pill[data-connection=connected]').waitFor();
    await agentPage.locator('.log .msg.pending').filter({ hasText: text }).waitFor({ state: 'detached' });
    await settle(2_000); // room for a duplicate to show up, if the client were to send one
    assert.equal(count(await widgetTexts(customerPage), text), 1, 'the customer sees the reply once');
    assert.equal(count(await consoleTexts(agentPage), text), 1, 'the console shows the reply once');
    const stored = await api(server.url, adminToken, 'GET', `/conversations/${conversationId}/messages`);
    assert.equal(stored.filter((m) => m.text === text).length, 1, 'the server stored the reply once');
    assert.equal(await agentPage.locator('.banner').count(), 0, 'the banner is gone once connected');
  });

  it('the widget resumes the same conversation after a reload', async () => {
    const before = await widgetTexts(customerPage);
    await customerPage.reload();
    await customerPage.locator('#switchboard-widget .status[data-connection=online]').waitFor();
    await customerPage.locator('#switchboard-widget .msg[data-message-id]').nth(before.length - 1).waitFor();
    assert.deepEqual(await widgetTexts(customerPage), before, 'history restored from the kept session, each message once');
    await customerPage.locator('#switchboard-widget textarea').fill('Thanks! Ordering now.');
    await customerPage.locator('#switchboard-widget textarea').press('Enter');
    await agentPage.locator('.log .msg.inbound').filter({ hasText: 'Ordering now' }).waitFor();
    await customerPage.locator('#switchboard-widget .msg.pending').waitFor({ state: 'detached' });
    assert.equal(count(await widgetTexts(customerPage), 'Thanks! Ordering now.'), 1);
    assert.equal(await agentPage.locator('.conv-item').count(), 1, 'still one conversation');
    await screenshot(customerPage, 'widget.png', 'widget.png');
    await screenshot(agentPage, 'console.png', 'console.png');
  });

  it('a second customer\'s conversation shows up with an unread count until opened', async () => {
    const ctx = await browser.newContext({ locale: 'en-US' });
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    await page.goto(site.url);
    await page.locator('#switchboard-widget .launcher').click();
    for (const text of ['Hello?', 'Do you ship to Canada?']) {
      await page.locator('#switchboard-widget textarea').fill(text);
      await page.locator('#switchboard-widget textarea').press('Enter');
      await page.locator('#switchboard-widget .msg.mine[data-message-id]').filter({ hasText: text }).waitFor();
    }
    const second = agentPage.locator('.conv-item').filter({ hasText: 'ship to Canada' });
    await second.locator('.unread').filter({ hasText: '2' }).waitFor();
    assert.equal(await agentPage.locator('.conv-item.active').getAttribute('data-conversation'), String(conversationId), 'the open conversation stays open');
    await agentPage.locator('[data-testid=load]').filter({ hasText: '2 / 5 chats' }).waitFor();
    await second.click();
    await second.locator('.unread').waitFor({ state: 'detached' });
    await agentPage.locator('.log .msg.inbound').filter({ hasText: 'ship to Canada' }).waitFor();
    await agentPage.locator(`.conv-item[data-conversation="${conversationId}"]`).click();
    await ctx.close();
  });

  it('resolving with a reason closes the conversation on both sides', async () => {
    await agentPage.locator('.conv-head [data-action=resolve]').click();
    await agentPage.locator('dialog.resolve-dialog .reason-select').selectOption('resolved');
    await agentPage.locator('dialog.resolve-dialog button[type=submit]').click();
    await agentPage.locator(`.conv-item[data-conversation="${conversationId}"]`).waitFor({ state: 'detached' });
    await agentPage.locator('[data-testid=load]').filter({ hasText: '1 / 5 chats' }).waitFor();
    await customerPage.locator('#switchboard-widget .queue').filter({ hasText: 'closed' }).waitFor();
    const conv = await api(server.url, adminToken, 'GET', `/conversations/${conversationId}`);
    assert.equal(conv.state ?? conv.conversation?.state, 'resolved');
  });

  it('the console speaks Simplified Chinese (browser locale and the switch)', async () => {
    const ctx = await browser.newContext({ locale: 'zh-CN', viewport: { width: 1280, height: 760 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    await page.goto(`${server.url}/`);
    await page.getByText('登录坐席控制台').waitFor();
    assert.equal(await page.locator('form.login-card button[type=submit]').textContent(), '登录');
    await page.locator('input[name=email]').fill(agent.email);
    await page.locator('input[name=password]').fill(agent.password);
    await page.locator('form.login-card button[type=submit]').click();
    await page.locator('.conn-pill[data-connection=connected]').waitFor();
    assert.equal(await page.locator('.conn-pill').textContent(), '已连接');
    assert.equal(await page.locator('.sidebar .section-title').first().textContent(), '我的会话');
    assert.equal(await page.locator('[data-testid=load]').textContent(), '1 / 5 个会话');
    // The newer parts too: the resolve dialog, the picker hint and the customer's history.
    assert.match(await page.locator('.reply-form textarea').getAttribute('placeholder'), /输入 \/ 使用快捷回复/);
    assert.equal(await page.locator('.customer .history .field-label').textContent(), '历史会话');
    await page.locator('.conv-head [data-action=resolve]').click();
    await page.locator('dialog.resolve-dialog h2').filter({ hasText: /^结束会话 #\d+$/ }).waitFor();
    assert.equal(await page.locator('dialog.resolve-dialog button[type=submit]').textContent(), '结束会话');
    assert.equal(await page.locator('dialog.resolve-dialog .form-label').textContent(), '结束原因');
    await page.locator('dialog.resolve-dialog button[type=button]').click();
    await page.locator('dialog.resolve-dialog').waitFor({ state: 'detached' });
    await screenshot(page, 'console-zh-CN.png');

    // The switch, in the English console: every visible string follows.
    await agentPage.locator('.topbar .lang-select').selectOption('zh-CN');
    await agentPage.locator('.conn-pill').filter({ hasText: '已连接' }).waitFor();
    assert.equal(await agentPage.locator('.logout, .topbar button.ghost').textContent(), '退出登录');
    await agentPage.locator('.topbar .lang-select').selectOption('en');
    await agentPage.locator('.conn-pill').filter({ hasText: 'Connected' }).waitFor();
    await ctx.close();
  });

  it('a customer waiting in the queue sees their place in line', async () => {
    await agentPage.locator('.status-select').selectOption('away');
    await agentPage.locator('.status-select[data-status=away]').waitFor();
    const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1024, height: 720 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    await page.goto(site.url);
    await page.locator('#switchboard-widget .launcher').click();
    await page.locator('#switchboard-widget textarea').fill('Is anyone there?');
    await page.locator('#switchboard-widget textarea').press('Enter');
    await page.locator('#switchboard-widget .msg.mine[data-message-id]').filter({ hasText: 'anyone there' }).waitFor();
    // `queue {position, eta_secs}` from the server; without it the widget says it is waiting.
    await page.locator('#switchboard-widget .queue').filter({ hasText: /number 1 in line|Waiting for an agent/ }).waitFor();
    log(`queue line: ${await page.locator('#switchboard-widget .queue').textContent()}`);
    await screenshot(page, 'widget-queued.png');
    await ctx.close();
  });
});

// A conversation with 5,000 messages in Chromium: the console loads only the newest page and
// draws only the rows in view (the DOM holds far fewer than 5,000 message nodes), opens at the
// newest message, scrolling to the top loads older pages until the first message (and still
// draws only a window), and a new message while the agent reads the latest keeps the view at the
// bottom. Seeded through the API channel.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, api, cleanupAll, createAgent, launchBrowser, log, login, startServer } from './harness.mjs';

const WAIT = 20_000;
const TOTAL = Number(process.env.BROWSER_LONG_MESSAGES || 5000);
const PARALLEL = 8;

describe(`a conversation with ${TOTAL} messages, in Chromium`, { timeout: 400_000 }, () => {
  let server, adminToken, agent, inbox, browser, page, conversationId;

  const say = async (n) => {
    const res = await fetch(`${server.url}/api/v1/channels/api/${inbox.id}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${inbox.inbound_token}`, 'content-type': 'application/json' },
      // Every 7th message is long, so rows have different heights.
      body: JSON.stringify({ message_id: `long-${n}`, contact: { id: 'reader-1', name: 'Long Talker' }, text: `message ${n}${n % 7 === 0 ? ` ${'and more words '.repeat(25)}` : ''}` }),
    });
    const raw = await res.text();
    assert.ok(res.ok, `message ${n}: ${res.status} ${raw}`);
    return JSON.parse(raw).conversation_id;
  };

  before(async () => {
    server = await startServer();
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    agent = await createAgent(server.url, adminToken, { name: 'Reader', capacity: 2 });
    inbox = await api(server.url, adminToken, 'POST', '/inboxes', { name: 'Backend', kind: 'api', settings: { webhook_url: 'http://127.0.0.1:9/hook' } });
    const started = Date.now();
    conversationId = await say(1);
    let next = 2;
    await Promise.all(Array.from({ length: PARALLEL }, async () => {
      while (next <= TOTAL) {
        const n = next++;
        const id = await say(n);
        assert.equal(id, conversationId);
      }
    }));
    log(`seeded ${TOTAL} messages in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    browser = await launchBrowser();
    const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 800 } });
    page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    page.on('pageerror', (e) => log(`page error: ${e.message}`));
  });

  after(cleanupAll);

  const drawn = () => page.locator('.log [data-message-id]').count();
  const inView = (text) => page.evaluate((t) => {
    const log = document.querySelector('.log');
    const box = log.getBoundingClientRect();
    return [...log.querySelectorAll('[data-message-id] .bubble')].some((b) => {
      const r = b.getBoundingClientRect();
      return b.textContent.trim() === t && r.bottom > box.top && r.top < box.bottom;
    });
  }, text);

  it('opens at the newest message with only a window of rows in the DOM', async () => {
    await page.goto(`${server.url}/`);
    await page.locator('input[name=email]').fill(agent.email);
    await page.locator('input[name=password]').fill(agent.password);
    await page.locator('form.login-card button[type=submit]').click();
    await page.locator('.conn-pill[data-connection=connected]').waitFor();
    await page.locator('.status-select').selectOption('available');
    await page.locator(`.conv-item[data-conversation="${conversationId}"]`).click();
    // The newest page is loaded, and the view sits at the bottom.
    const newest = `message ${TOTAL}${TOTAL % 7 === 0 ? ` ${'and more words '.repeat(25)}`.trimEnd() : ''}`;
    await page.locator('.log .msg.inbound .bubble').filter({ hasText: new RegExp(`^message ${TOTAL}\\b`) }).waitFor({ timeout: 60_000 });
    await page.waitForFunction((t) => {
      const log = document.querySelector('.log');
      return log.scrollHeight - log.scrollTop - log.clientHeight < 80 && [...log.querySelectorAll('.bubble')].some((b) => b.textContent.trim() === t);
    }, newest);
    assert.ok(await inView(newest), 'the newest message is visible');
    const count = await drawn();
    log(`rows in the DOM at the bottom: ${count} of ${TOTAL}`);
    assert.ok(count > 0 && count < 200, `only a window is drawn (${count})`);
    // Only the newest page is loaded: older ones come when scrolling up.
    assert.equal(await page.locator('.log').getAttribute('data-history'), 'more');
    const height = await page.evaluate(() => document.querySelector('.log').scrollHeight);
    assert.ok(height < TOTAL * 20, `scroll height ${height}: not every message is laid out`);
  });

  it('scrolling to the top loads older pages until the first message, still drawing a window', async () => {
    // Scroll up with the wheel, as a reader would: the first older page arrives.
    for (let i = 0; i < 5; i++) {
      await page.mouse.move(640, 400);
      await page.mouse.wheel(0, -4000);
    }
    // An older page arrived: messages from before the newest page are drawn.
    await page.waitForFunction((newestPage) => [...document.querySelectorAll('.log .bubble')]
      .some((b) => { const m = /^message (\d+)/.exec(b.textContent.trim()); return m && Number(m[1]) <= newestPage; }), TOTAL - 100);
    // Keep going to the top until the very first message is there (a page of 100 each time).
    await page.waitForFunction(() => {
      const log = document.querySelector('.log');
      log.scrollTop = 0;
      return [...log.querySelectorAll('.bubble')].some((b) => b.textContent.trim() === 'message 1');
    }, null, { polling: 250, timeout: 120_000 });
    assert.equal(await page.locator('.log').getAttribute('data-history'), 'complete');
    await page.waitForFunction(() => document.querySelector('.log').scrollTop < 5);
    assert.ok(await inView('message 1'), 'the first message is visible at the top');
    const count = await drawn();
    log(`rows in the DOM at the top: ${count}`);
    assert.ok(count < 200, `only a window is drawn (${count})`);
    assert.equal(await page.locator('.log .bubble').filter({ hasText: new RegExp(`^message ${TOTAL}\\b`) }).count(), 0, 'the newest is not drawn up here');
  });

  it('a new message while reading the latest keeps the view at the bottom', async () => {
    await page.evaluate(() => { const l = document.querySelector('.log'); l.scrollTop = l.scrollHeight; });
    await page.locator('.log .msg .bubble').filter({ hasText: new RegExp(`^message ${TOTAL}\\b`) }).waitFor();
    await say(TOTAL + 1);
    await page.locator('.log .msg .bubble').filter({ hasText: new RegExp(`^message ${TOTAL + 1}$`) }).waitFor();
    await page.waitForFunction(() => { const l = document.querySelector('.log'); return l.scrollHeight - l.scrollTop - l.clientHeight < 80; });
    assert.ok(await inView(`message ${TOTAL + 1}`), 'the new message is in view');
  });
});

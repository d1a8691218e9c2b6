// Offers and attachments in Chromium, against the real server (embedded SQLite).
//
// A team whose routing policy has `auto_accept: false` offers each conversation to one agent at
// a time; its web inbox (`team_id`) brings widget customers to it. (a) The agent sees the offer
// card with the first message and a live countdown, a notification is raised and a beep played,
// the reply box is locked; they accept, reply, and the customer gets the reply. (b) A second
// customer's conversation is offered; the agent who gets it rejects it and the other agent, in a
// second browser context, gets the offer next; an offer withdrawn because its agent went away
// leaves their screen and goes to the other agent too. (c) Attachments both ways: the customer attaches
// an image in the widget, the agent sees the thumbnail and its bytes download unchanged; the
// agent attaches a file, the customer downloads it from the link, bytes equal; refused uploads
// say "type not allowed" (415) and "file too large" (413).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, api, cleanupAll, createAgent, launchBrowser, log, login, screenshot, settle,
  startCustomerSite, startServer, signIn,
} from './harness.mjs';

const WAIT = 15_000;
// Small enough that the 413 path is cheap to reach; the test image and file are far below it.
const MAX_UPLOAD = 300_000;

/** Records notifications and oscillators the page starts (the offer's sound and notification). */
function recordAlerts() {
  window.__alerts = { notifications: [], tones: 0 };
  const N = function Notification(title, options) {
    window.__alerts.notifications.push({ title, body: options?.body ?? '' });
    this.close = () => {};
  };
  N.permission = 'granted';
  N.requestPermission = () => Promise.resolve('granted');
  window.Notification = N;
  const create = AudioContext.prototype.createOscillator;
  AudioContext.prototype.createOscillator = function (...args) {
    const osc = create.apply(this, args);
    const start = osc.start.bind(osc);
    osc.start = (...a) => { window.__alerts.tones++; return start(...a); };
    return osc;
  };
}

async function customerWrites(page, siteUrl, text) {
  await page.goto(siteUrl);
  await page.locator('#switchboard-widget .launcher').click();
  await page.locator('#switchboard-widget .status[data-connection=online]').waitFor();
  await page.locator('#switchboard-widget textarea').fill(text);
  await page.locator('#switchboard-widget textarea').press('Enter');
  await page.locator('#switchboard-widget .msg.mine[data-message-id]').filter({ hasText: text }).waitFor();
}

/** The seconds a countdown shows ("27 s to answer" → 27). */
async function secondsLeft(card) {
  const text = await card.locator('.offer-countdown').textContent();
  const m = /(\d+) s to answer/.exec(text);
  assert.ok(m, `countdown text: ${text}`);
  return Number(m[1]);
}

/** Bytes of a URL fetched by the page itself (its own origin and cookies). */
async function bytesInPage(page, url) {
  return Buffer.from(await page.evaluate(async (u) => {
    const res = await fetch(u);
    if (!res.ok) throw new Error(`GET ${u} → ${res.status}`);
    return Array.from(new Uint8Array(await res.arrayBuffer()));
  }, url));
}

describe('offers and attachments in Chromium', { timeout: 170_000 }, () => {
  let server, adminToken, agentA, agentB, team, inbox, site, browser;
  let ctxA, pageA, ctxB, pageB, cust1Ctx, cust1, cust2Ctx, cust2, conv1;

  before(async () => {
    process.env.SWITCHBOARD_MEDIA__MAX_BYTES = String(MAX_UPLOAD);
    server = await startServer();
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    agentA = await createAgent(server.url, adminToken, { name: 'Mei Lin', capacity: 5 });
    agentB = await createAgent(server.url, adminToken, { name: 'Ravi Kumar', capacity: 5 });
    team = await api(server.url, adminToken, 'POST', '/teams', { name: 'Offers desk' });
    await api(server.url, adminToken, 'PUT', `/teams/${team.id}/policy`, { auto_accept: false, offer_timeout_ms: 30_000 });
    await api(server.url, adminToken, 'POST', `/teams/${team.id}/members`, { user_id: agentA.user.id });
    inbox = await api(server.url, adminToken, 'POST', '/inboxes', { name: 'Shop chat (offers)', kind: 'web', team_id: team.id });
    assert.ok(inbox.settings.widget_key, 'a web inbox gets a widget key');
    site = await startCustomerSite({ ...server, inboxId: inbox.id, widgetKey: inbox.settings.widget_key });
    log(`server at ${server.url}; team ${team.id} (auto_accept false); inbox ${inbox.id}`);
    browser = await launchBrowser();
    ctxA = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 760 } });
    await ctxA.addInitScript(recordAlerts);
    pageA = await ctxA.newPage();
    ctxB = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 760 } });
    pageB = await ctxB.newPage();
    cust1Ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1024, height: 720 } });
    cust1 = await cust1Ctx.newPage();
    cust2Ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1024, height: 720 } });
    cust2 = await cust2Ctx.newPage();
    for (const [who, page] of [['agent A', pageA], ['agent B', pageB], ['customer 1', cust1], ['customer 2', cust2]]) {
      page.setDefaultTimeout(WAIT);
      page.on('pageerror', (e) => log(`${who} page error: ${e.message}`));
    }
  });

  after(cleanupAll);

  it('(a) an offer shows with a countdown; the agent accepts, replies, the customer gets it', async () => {
    await signIn(pageA, `${server.url}/`, agentA.email, agentA.password, { available: true });
    await customerWrites(cust1, site.url, 'Hello, is the Trail Tent waterproof?');

    const card = pageA.locator('.offers .offer-card');
    await card.waitFor();
    conv1 = Number(await card.getAttribute('data-offer'));
    const stored = await api(server.url, adminToken, 'GET', `/conversations/${conv1}`);
    assert.equal(stored.state, 'offered');
    assert.equal(stored.assignee_id, agentA.user.id);
    assert.match(await card.locator('.offer-name').textContent(), /^Visitor #\d+$/);
    assert.match(await card.textContent(), /Web chat · Shop chat \(offers\)/);
    await card.locator('[data-field=preview]').filter({ hasText: 'is the Trail Tent waterproof?' }).waitFor();
    const first = await secondsLeft(card);
    assert.ok(first > 20 && first <= 30, `countdown starts near 30 s, got ${first}`);
    await settle(2_200);
    const later = await secondsLeft(card);
    assert.ok(later < first, `the countdown ticks (${first} → ${later})`);
    // The offer holds a slot; the reply box waits for the accept.
    assert.equal(await pageA.locator('[data-testid=load]').textContent(), '1 / 5 chats');
    assert.equal(await pageA.locator('.conv-item .offer-flag').count(), 1);
    assert.ok(await pageA.locator('.reply-form textarea').isDisabled(), 'no reply before accepting');
    assert.ok(await pageA.locator('.composer [data-locked=offer]').isVisible());
    const alerts = await pageA.evaluate(() => window.__alerts);
    assert.equal(alerts.notifications.length, 1, 'one browser notification');
    assert.match(alerts.notifications[0].title, /New chat offered: Visitor #\d+/);
    assert.match(alerts.notifications[0].body, /waterproof/);
    assert.ok(alerts.tones >= 1, 'a beep was played');
    await screenshot(pageA, 'console-offer.png', 'console-offer.png');

    await card.locator('.offer-accept').click();
    await card.waitFor({ state: 'detached' });
    assert.equal((await api(server.url, adminToken, 'GET', `/conversations/${conv1}`)).state, 'assigned');
    assert.equal(await pageA.locator('.conv-item .offer-flag').count(), 0);
    const box = pageA.locator('.reply-form textarea');
    assert.ok(await box.isEnabled(), 'the reply box opens once accepted');
    await box.fill('Yes — fully taped seams, 3000 mm hydrostatic head.');
    await box.press('Enter');
    await cust1.locator('#switchboard-widget .msg.theirs[data-message-id]').filter({ hasText: '3000 mm' }).waitFor();
    assert.equal(await pageA.locator('[data-testid=load]').textContent(), '1 / 5 chats');
  });

  it('(b) a rejected offer goes to the other agent, in a second browser context', async () => {
    await api(server.url, adminToken, 'POST', `/teams/${team.id}/members`, { user_id: agentB.user.id });
    await signIn(pageB, `${server.url}/`, agentB.email, agentB.password, { available: true });
    await customerWrites(cust2, site.url, 'Do you ship to Norway?');

    // Whichever agent the router picks first rejects; the other must get the offer next.
    const cardOf = (page) => page.locator('.offers .offer-card').filter({ hasText: 'ship to Norway' });
    const firstPage = await Promise.any([
      cardOf(pageA).waitFor().then(() => pageA),
      cardOf(pageB).waitFor().then(() => pageB),
    ]);
    const [secondPage, secondAgent] = firstPage === pageA ? [pageB, agentB] : [pageA, agentA];
    log(`offered first to ${firstPage === pageA ? 'A' : 'B'}`);
    const conv2 = Number(await cardOf(firstPage).getAttribute('data-offer'));
    assert.notEqual(conv2, conv1);
    await cardOf(firstPage).locator('.offer-reject').click();
    await cardOf(firstPage).waitFor({ state: 'detached' });
    await cardOf(secondPage).waitFor();
    const c = await api(server.url, adminToken, 'GET', `/conversations/${conv2}`);
    assert.equal(c.state, 'offered');
    assert.equal(c.assignee_id, secondAgent.user.id);
    assert.equal(await firstPage.locator(`.conv-item[data-conversation="${conv2}"]`).count(), 0, 'gone from the rejecting agent\'s list');
    assert.ok(await secondsLeft(cardOf(secondPage)) > 20, 'a fresh countdown for the next agent');
    await cardOf(secondPage).locator('.offer-accept').click();
    await cardOf(secondPage).waitFor({ state: 'detached' });
    assert.equal((await api(server.url, adminToken, 'GET', `/conversations/${conv2}`)).assignee_id, secondAgent.user.id);
  });

  it('(b) an offer withdrawn when its agent goes away leaves their screen and goes to the other', async () => {
    const cust3Ctx = await browser.newContext({ locale: 'en-US' });
    const cust3 = await cust3Ctx.newPage();
    cust3.setDefaultTimeout(WAIT);
    await customerWrites(cust3, site.url, 'Can I return a used tent?');
    const cardOf = (page) => page.locator('.offers .offer-card').filter({ hasText: 'return a used tent' });
    const firstPage = await Promise.any([cardOf(pageA).waitFor().then(() => pageA), cardOf(pageB).waitFor().then(() => pageB)]);
    const [secondPage, secondAgent] = firstPage === pageA ? [pageB, agentB] : [pageA, agentA];
    const conv3 = Number(await cardOf(firstPage).getAttribute('data-offer'));
    await firstPage.locator('.status-select').selectOption('away');
    await cardOf(firstPage).waitFor({ state: 'detached' });
    await cardOf(secondPage).waitFor();
    assert.equal((await api(server.url, adminToken, 'GET', `/conversations/${conv3}`)).assignee_id, secondAgent.user.id);
    await cardOf(secondPage).locator('.offer-accept').click();
    await cardOf(secondPage).waitFor({ state: 'detached' });
    await firstPage.locator('.status-select').selectOption('available');
    await firstPage.locator('.status-select[data-status=available]').waitFor();
    await cust3Ctx.close();
  });

  it('(c) attachments both ways: image from the widget, file from the console', async () => {
    // Back to A's first conversation.
    await pageA.locator(`.conv-item[data-conversation="${conv1}"]`).click();
    await pageA.locator('.log .msg.inbound').filter({ hasText: 'waterproof' }).waitFor();

    // The customer attaches a picture (a real PNG: the server sniffs content, not names).
    const png = await cust1.screenshot({ clip: { x: 0, y: 0, width: 160, height: 90 } });
    await cust1.locator('#switchboard-widget input[type=file]').setInputFiles({ name: 'tent-seam.png', mimeType: 'image/png', buffer: png });
    const sentImage = cust1.locator('#switchboard-widget .msg.mine[data-message-id] .attachment.image img');
    await sentImage.waitFor();
    const thumb = pageA.locator('.log .msg.inbound .attachment.image img.thumb');
    await thumb.waitFor();
    await pageA.waitForFunction(() => {
      const img = document.querySelector('.log .msg.inbound .attachment.image img.thumb');
      return img && img.complete && img.naturalWidth === 160;
    });
    const imageHref = await pageA.locator('.log .msg.inbound a.attachment.image').getAttribute('href');
    assert.match(imageHref, /\/media\/\d+\/[0-9a-f]{64}\?/);
    assert.ok(png.equals(await bytesInPage(pageA, imageHref)), 'the agent downloads the exact bytes');

    // The agent attaches a file and sends it with a line of text.
    const pdf = Buffer.from('%PDF-1.4\n% Trail Tent 2P size guide\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
    await pageA.locator('.reply-form input[type=file]').setInputFiles({ name: 'size-guide.pdf', mimeType: 'application/pdf', buffer: pdf });
    await pageA.locator('.attach-tray .tray-item[data-upload-state=ready]').filter({ hasText: 'size-guide.pdf' }).waitFor();
    await pageA.locator('.reply-form textarea').fill('Here is the size guide.');
    await pageA.locator('.reply-form textarea').press('Enter');
    await pageA.locator('.attach-tray .tray-item').waitFor({ state: 'detached' });
    await pageA.locator('.log .msg.outbound[data-message-id] a.attachment.file').filter({ hasText: 'size-guide.pdf' }).waitFor();
    const link = cust1.locator('#switchboard-widget .msg.theirs[data-message-id] a.attachment.file').filter({ hasText: 'size-guide.pdf' });
    await link.waitFor();
    const bubble = cust1.locator('#switchboard-widget .msg.theirs[data-message-id]').filter({ has: cust1.locator('a.attachment.file') });
    assert.match(await bubble.textContent(), /Here is the size guide\./);
    const [download] = await Promise.all([cust1.waitForEvent('download'), link.click()]);
    assert.equal(download.suggestedFilename(), 'size-guide.pdf');
    assert.ok(pdf.equals(readFileSync(await download.path())), 'the customer downloads the exact bytes');
    await screenshot(cust1, 'widget-attachments.png');

    // A file dropped onto the conversation and an image pasted into the reply box go together,
    // without text.
    await pageA.evaluate((pngBytes) => {
      const dropped = new DataTransfer();
      dropped.items.add(new File(['Pitch the tent with the door downwind.\n'], 'pitching-tips.txt', { type: 'text/plain' }));
      const section = document.querySelector('.conversation');
      for (const type of ['dragenter', 'dragover', 'drop']) {
        section.dispatchEvent(new DragEvent(type, { dataTransfer: dropped, bubbles: true, cancelable: true }));
      }
      const pasted = new DataTransfer();
      pasted.items.add(new File([new Uint8Array(pngBytes)], 'image.png', { type: 'image/png' }));
      document.querySelector('.reply-form textarea').dispatchEvent(new ClipboardEvent('paste', { clipboardData: pasted, bubbles: true, cancelable: true }));
    }, [...png]);
    await pageA.locator('.attach-tray .tray-item[data-upload-state=ready]').filter({ hasText: 'pitching-tips.txt' }).waitFor();
    await pageA.locator('.attach-tray .tray-item[data-upload-state=ready]').filter({ hasText: 'image.png' }).waitFor();
    await pageA.locator('.reply-form button[type=submit]').click();
    const both = cust1.locator('#switchboard-widget .msg.theirs[data-message-id]')
      .filter({ has: cust1.locator('a.attachment.file', { hasText: 'pitching-tips.txt' }) })
      .filter({ has: cust1.locator('a.attachment.image img') });
    await both.waitFor();
    assert.equal(await both.locator('.bubble').count(), 0, 'an attachment-only message has no text bubble');

    // Refusals are named: HTML is not allowed (415), a file over the limit is too large (413).
    await pageA.locator('.reply-form input[type=file]').setInputFiles([
      { name: 'page.html', mimeType: 'text/html', buffer: Buffer.from('<!doctype html><html><body><script>alert(1)</script></body></html>') },
      { name: 'huge.txt', mimeType: 'text/plain', buffer: Buffer.alloc(MAX_UPLOAD + 50_000, 'a') },
    ]);
    await pageA.locator('.tray-item[data-upload-state=failed]').filter({ hasText: 'page.html' }).filter({ hasText: 'Type not allowed' }).waitFor();
    await pageA.locator('.tray-item[data-upload-state=failed]').filter({ hasText: 'huge.txt' }).filter({ hasText: 'File too large' }).waitFor();
    await screenshot(pageA, 'console-attachments.png');
    // The new words exist in Simplified Chinese too.
    await pageA.locator('.topbar .lang-select').selectOption('zh-CN');
    await pageA.locator('.tray-item[data-upload-state=failed]').filter({ hasText: '不允许的文件类型' }).waitFor();
    assert.equal(await pageA.locator('.attach-button').getAttribute('title'), '添加附件');
    assert.equal(await pageA.locator('.log a.attachment.file .file-action').first().textContent(), '下载');
    await pageA.locator('.topbar .lang-select').selectOption('en');
    const stored = await api(server.url, adminToken, 'GET', `/conversations/${conv1}/messages`);
    const images = stored.filter((m) => m.attachments.some((a) => a.kind === 'image'));
    assert.deepEqual(images.map((m) => m.direction), ['inbound', 'outbound'], "the customer's picture and the pasted one");
    assert.equal(stored.filter((m) => m.attachments.length === 2 && m.text === null).length, 1, 'dropped + pasted, no text');
    assert.equal(stored.filter((m) => m.attachments.some((a) => a.name === 'size-guide.pdf')).length, 1);
  });
});

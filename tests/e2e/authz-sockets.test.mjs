// The Socket.IO half of issue #8's authorization matrix (the REST half is server/tests/it/authz.rs):
// every event the `/agent` and `/widget` namespaces handle × every kind of caller → the expected
// allow / deny, against the real server binary (embedded SQLite) with the official socket.io-client.
//
// Read MATRIX below as a table: one row per namespace event + target, one column per caller.
// A cell is the expected outcome of that caller sending that event:
//   ok            the ack is {ok: true} (and, for reads/writes, only about the target — checked per row)
//   forbidden / not_found / conflict / invalid_body   the ack is {ok: false, error: {code}}
//   refused       the connection itself is refused (connect_error), so no event can be sent
//   -             not applicable (an agent's login is not a widget identity and vice versa)
//
// Callers:
//   none        no credentials (no token on /agent, no inbox/key on /widget)
//   agentA      agent of tenant A holding C1 (and C2, and the conversations resolved below)
//   agentB      agent of tenant A holding nothing
//   sup         supervisor of tenant A          admin    admin of tenant A
//   otherAdmin  admin of tenant B (a second tenant: there is no public API to create a tenant, so
//               the test inserts tenant B and its admin into the SQLite file, as authz.rs does
//               through the store; everything after that goes through REST / Socket.IO)
//   custX       widget customer of C1 (tenant A's bootstrap inbox)
//   custY       widget customer of C2 (same inbox)
//   custZ       widget customer of CB (tenant B's web inbox)
//
// Targets: C1 (held by agentA), CB (tenant B, queued), C404 (an id that exists nowhere), FRESH (a
// conversation of its own per cell, held by agentA: for state-changing events such as resolve),
// OFFER1 / OFFER2 (offered to agentA, not yet accepted; made when their first row runs).
//
// REVOKED (further down) covers rights taken away while a socket is open: a supervisor demoted
// to agent, then logged out. The server closes the sockets that hold the old rights (bus event
// `AccessChanged`), and a new connect is authorized afresh.
//
// A last test greps `s.on("…")` (and the offer loop) in server/src/realtime/{agent,widget}.rs so
// an event added there without a row here fails.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, REPO, apiOk, cleanupAll, connectAgent, connectSocket, connectWidget, createAgent,
  findKey, log, login, settle, startServer, waitFor,
} from './harness.mjs';

const AGENT_CALLERS = ['none', 'agentA', 'agentB', 'sup', 'admin', 'otherAdmin'];
const WIDGET_CALLERS = ['custX', 'custY', 'custZ'];
const CALLERS = [...AGENT_CALLERS, ...WIDGET_CALLERS];

// prettier-ignore
const MATRIX = [
  //  ns        event           target         none        agentA       agentB       sup          admin        otherAdmin   custX        custY        custZ
  ['/widget', 'connect',       'own inbox',   'refused', '-',         '-',         '-',         '-',         '-',         'ok',        'ok',        'ok'],
  ['/widget', 'connect',       'wrong key',   'refused', '-',         '-',         '-',         '-',         '-',         'refused',   'refused',   'refused'],
  ['/widget', 'connect',       'unknown inbox', 'refused', '-',       '-',         '-',         '-',         '-',         'refused',   'refused',   'refused'],
  ['/widget', 'connect',       'other inbox key', 'refused', '-',     '-',         '-',         '-',         '-',         'refused',   'refused',   'refused'],
  ['/widget', 'sync',          'own session', 'refused', '-',         '-',         '-',         '-',         '-',         'ok',        'ok',        'ok'],
  ['/widget', 'sync',          'other conversation_id in body', 'refused', '-', '-',   '-',         '-',         '-',         'ok',        'ok',        'ok'],
  ['/widget', 'message',       'own session', 'refused', '-',         '-',         '-',         '-',         '-',         'ok',        'ok',        'ok'],
  ['/widget', 'typing',        'own session', 'refused', '-',         '-',         '-',         '-',         '-',         'ok',        'ok',        'ok'],
  ['/widget', 'prechat',       'own session', 'refused', '-',         '-',         '-',         '-',         '-',         'conflict',  'conflict',  'conflict'],

  ['/agent',  'connect',       'self',        'refused', 'ok',        'ok',        'ok',        'ok',        'ok',        'refused',   'refused',   'refused'],
  ['/agent',  'sync',          'C1',          'refused', 'ok',        'forbidden', 'ok',        'ok',        'not_found', 'refused',   'refused',   'refused'],
  ['/agent',  'sync',          'CB',          'refused', 'not_found', 'not_found', 'not_found', 'not_found', 'ok',        'refused',   'refused',   'refused'],
  ['/agent',  'sync',          'C404',        'refused', 'not_found', 'not_found', 'not_found', 'not_found', 'not_found', 'refused',   'refused',   'refused'],
  ['/agent',  'reply',         'C1',          'refused', 'ok',        'forbidden', 'ok',        'ok',        'not_found', 'refused',   'refused',   'refused'],
  ['/agent',  'reply',         'CB',          'refused', 'not_found', 'not_found', 'not_found', 'not_found', 'ok',        'refused',   'refused',   'refused'],
  ['/agent',  'reply',         'C404',        'refused', 'not_found', 'not_found', 'not_found', 'not_found', 'not_found', 'refused',   'refused',   'refused'],
  ['/agent',  'watch',         'C1',          'refused', 'forbidden', 'forbidden', 'ok',        'ok',        'not_found', 'refused',   'refused',   'refused'],
  ['/agent',  'watch',         'CB',          'refused', 'forbidden', 'forbidden', 'not_found', 'not_found', 'ok',        'refused',   'refused',   'refused'],
  ['/agent',  'watch',         'C404',        'refused', 'forbidden', 'forbidden', 'not_found', 'not_found', 'not_found', 'refused',   'refused',   'refused'],
  ['/agent',  'typing',        'C1',          'refused', 'ok',        'forbidden', 'ok',        'ok',        'not_found', 'refused',   'refused',   'refused'],
  ['/agent',  'typing',        'CB',          'refused', 'not_found', 'not_found', 'not_found', 'not_found', 'ok',        'refused',   'refused',   'refused'],
  ['/agent',  'typing',        'C404',        'refused', 'not_found', 'not_found', 'not_found', 'not_found', 'not_found', 'refused',   'refused',   'refused'],
  // OFFER1 / OFFER2: a conversation offered to agentA (team queue with auto_accept false). In every
  // row the cells expecting a denial run before the ones expecting ok, so a denied call that still
  // took the offer shows up as the holder's ok turning into conflict.
  ['/agent',  'reply',         'OFFER1',      'refused', 'conflict',  'forbidden', 'ok',        'ok',        'not_found', 'refused',   'refused',   'refused'],
  ['/agent',  'offer:accept',  'OFFER1',      'refused', 'ok',        'conflict',  'conflict',  'conflict',  'not_found', 'refused',   'refused',   'refused'],
  ['/agent',  'offer:reject',  'OFFER2',      'refused', 'ok',        'conflict',  'conflict',  'conflict',  'not_found', 'refused',   'refused',   'refused'],
  // C1 is assigned, not offered: nobody can take (or bounce) it through the offer events.
  ['/agent',  'offer:accept',  'C1',          'refused', 'conflict',  'conflict',  'conflict',  'conflict',  'not_found', 'refused',   'refused',   'refused'],
  ['/agent',  'offer:accept',  'CB',          'refused', 'not_found', 'not_found', 'not_found', 'not_found', 'conflict',  'refused',   'refused',   'refused'],
  ['/agent',  'offer:reject',  'C1',          'refused', 'conflict',  'conflict',  'conflict',  'conflict',  'not_found', 'refused',   'refused',   'refused'],
  ['/agent',  'offer:reject',  'CB',          'refused', 'not_found', 'not_found', 'not_found', 'not_found', 'conflict',  'refused',   'refused',   'refused'],
  ['/agent',  'resolve',       'C1',          'refused', '-',         'forbidden', '-',         '-',         'not_found', 'refused',   'refused',   'refused'],
  ['/agent',  'resolve',       'FRESH',       'refused', 'ok',        'forbidden', 'ok',        'ok',        'not_found', 'refused',   'refused',   'refused'],
  ['/agent',  'resolve',       'C404',        'refused', 'not_found', 'not_found', 'not_found', 'not_found', 'not_found', 'refused',   'refused',   'refused'],
  // Status is always one's own (the event has no target user).
  ['/agent',  'status',        'self',        'refused', 'ok',        'ok',        'ok',        'ok',        'ok',        'refused',   'refused',   'refused'],
];

const C404 = 999_999_999;
// One fresh conversation per FRESH cell that gets as far as sending the event.
const FRESH_NEEDED = MATRIX.filter((r) => r[2] === 'FRESH').reduce((n, r) => n + r.slice(3).filter((c) => c !== '-' && c !== 'refused').length, 0);

/** The event names a handler file registers: `s.on("x", …)` plus `for (event, _) in [("a", …), …]` loops. */
function handledEvents(file) {
  const src = readFileSync(path.join(REPO, 'server', 'src', 'realtime', file), 'utf8');
  const names = new Set([...src.matchAll(/\bs\.on\(\s*"([^"]+)"/g)].map((m) => m[1]));
  const dynamic = [...src.matchAll(/\bs\.on\(\s*([^",\s)]+)/g)].map((m) => m[1]);
  for (const v of dynamic) {
    const loop = new RegExp(`for \\(${v}, [^)]*\\) in \\[([^\\]]*)\\]`).exec(src);
    assert.ok(loop, `${file}: s.on(${v}, …) with a non-literal name the test cannot read: give it a literal or a for-loop over literals`);
    for (const m of loop[1].matchAll(/\(\s*"([^"]+)"/g)) names.add(m[1]);
  }
  return names;
}

describe('Socket.IO authorization matrix (SQLite)', { timeout: 120_000 }, () => {
  let server, adminToken, otherAdminToken;
  const users = {}; // caller → {token, user}
  const socks = {}; // caller → connected client (agents and customers)
  const customers = {}; // custX/Y/Z → {inboxId, widgetKey, session, conversationId, ownTexts}
  let widgetB; // {inboxId, widgetKey}
  let widgetOffer; // tenant A's web inbox whose team queue offers (auto_accept false)
  const offers = {}; // OFFER1 / OFFER2 → conversation id, made on first use
  const conv = {}; // C1, C2, CB → id
  const fresh = []; // conversations held by agentA, one per FRESH cell
  const tenantAConversations = new Set();
  let seq = 0;

  /** A new widget customer on an inbox who says something; resolves {client, session, conversationId, text}. */
  async function newCustomer(inboxId, widgetKey, label) {
    const client = await connectWidget(server.url, inboxId, widgetKey);
    const { session } = await client.next('session');
    const text = `${label} says hello ${++seq}`;
    const ack = await client.request('message', { client_message_id: `m-${seq}`, text });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    return { client, session, conversationId: ack.conversation_id, text };
  }

  async function assignedTo(conversationId, userId) {
    await waitFor(async () => {
      const c = await apiOk(server.url, adminToken, 'GET', `/conversations/${conversationId}`);
      return findKey(c, 'assignee_id') === userId;
    }, 10_000, `conversation ${conversationId} assigned to user ${userId}`);
  }

  before(async () => {
    server = await startServer({ db: 'sqlite', env: { SWITCHBOARD_AGENTS__DISCONNECT_GRACE_SECS: '60' } });
    adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    users.admin = { token: adminToken };
    users.agentA = await createAgent(server.url, adminToken, { capacity: 20 });
    users.agentB = await createAgent(server.url, adminToken, { capacity: 20 });
    users.sup = await createAgent(server.url, adminToken, { role: 'supervisor', capacity: 20 });

    // Tenant B and its admin: no public endpoint creates a tenant (bootstrap makes only the first),
    // so write the two rows straight into the database file; the admin reuses admin A's password hash.
    const now = Date.now();
    execFileSync('sqlite3', ['-cmd', '.timeout 5000', path.join(server.dataDir, 'switchboard.db'),
      `INSERT INTO tenants (name, slug, created_at, updated_at) VALUES ('Other', 'other', ${now}, ${now});
       INSERT INTO users (tenant_id, email, name, role, password_hash, status, capacity, created_at, updated_at)
         SELECT (SELECT id FROM tenants WHERE slug = 'other'), 'admin-b@example.com', 'Admin B', 'admin', password_hash, 'offline', 5, ${now}, ${now}
         FROM users WHERE email = '${ADMIN_EMAIL}';`]);
    otherAdminToken = await login(server.url, 'admin-b@example.com', ADMIN_PASSWORD, 'other');
    users.otherAdmin = { token: otherAdminToken };
    const inboxB = await apiOk(server.url, otherAdminToken, 'POST', '/inboxes', { name: 'Web B', kind: 'web', settings: {} }, [201]);
    widgetB = { inboxId: findKey(inboxB, 'id'), widgetKey: findKey(inboxB, 'widget_key') };
    assert.ok(widgetB.inboxId && widgetB.widgetKey, `tenant B's web inbox: ${JSON.stringify(inboxB)}`);

    // A team whose queue offers instead of assigning, with its own web inbox; agentA is its member.
    const team = await apiOk(server.url, adminToken, 'POST', '/teams', { name: 'Offers' }, [201]);
    await apiOk(server.url, adminToken, 'PUT', `/teams/${team.id}/policy`, { auto_accept: false, offer_timeout_ms: 120_000 }, [200]);
    await apiOk(server.url, adminToken, 'POST', `/teams/${team.id}/members`, { user_id: users.agentA.user.id }, [204]);
    const offerInbox = await apiOk(server.url, adminToken, 'POST', '/inboxes', { name: 'Web offers', kind: 'web', settings: {} }, [201]);
    widgetOffer = { inboxId: findKey(offerInbox, 'id'), widgetKey: findKey(offerInbox, 'widget_key') };
    await apiOk(server.url, adminToken, 'PATCH', `/inboxes/${widgetOffer.inboxId}`, { team_id: team.id }, [200]);

    // Agent sockets; only agentA is available, so every tenant-A conversation goes to agentA.
    for (const c of ['agentA', 'agentB', 'sup', 'admin', 'otherAdmin']) {
      socks[c] = await connectAgent(server.url, users[c].token);
      await socks[c].next('hello');
    }
    const st = await socks.agentA.request('status', { status: 'available' });
    assert.equal(st.ok, true, JSON.stringify(st));

    const x = await newCustomer(server.inboxId, server.widgetKey, 'X');
    const y = await newCustomer(server.inboxId, server.widgetKey, 'Y');
    const z = await newCustomer(widgetB.inboxId, widgetB.widgetKey, 'Z');
    conv.C1 = x.conversationId;
    conv.C2 = y.conversationId;
    conv.CB = z.conversationId;
    customers.custX = { inboxId: server.inboxId, widgetKey: server.widgetKey, ...x };
    customers.custY = { inboxId: server.inboxId, widgetKey: server.widgetKey, ...y };
    customers.custZ = { inboxId: widgetB.inboxId, widgetKey: widgetB.widgetKey, ...z };
    for (const c of WIDGET_CALLERS) socks[c] = customers[c].client;
    await assignedTo(conv.C1, users.agentA.user.id);
    await assignedTo(conv.C2, users.agentA.user.id);
    for (let i = 0; i < FRESH_NEEDED; i++) {
      const f = await newCustomer(server.inboxId, server.widgetKey, `F${i}`);
      await assignedTo(f.conversationId, users.agentA.user.id);
      fresh.push(f.conversationId);
    }
    for (const id of [conv.C1, conv.C2, ...fresh]) tenantAConversations.add(id);
    log(`C1=${conv.C1} C2=${conv.C2} CB=${conv.CB} fresh=${fresh.join(',')}`);
  });

  after(cleanupAll);

  /** A new customer on the offering inbox; resolves once its conversation is offered to agentA. */
  async function offeredToAgentA() {
    const n = await newCustomer(widgetOffer.inboxId, widgetOffer.widgetKey, 'offer');
    tenantAConversations.add(n.conversationId);
    await waitFor(async () => {
      const c = await apiOk(server.url, adminToken, 'GET', `/conversations/${n.conversationId}`);
      return findKey(c, 'state') === 'offered' && findKey(c, 'assignee_id') === users.agentA.user.id;
    }, 10_000, `conversation ${n.conversationId} offered to agentA`);
    return n.conversationId;
  }

  /** Tries to connect and reports 'ok' or 'refused' (closing the socket again). */
  async function tryConnect(namespace, auth) {
    try {
      const c = await connectSocket(server.url, namespace, auth, { timeoutMs: 5_000 });
      c.close();
      return 'ok';
    } catch (e) {
      if (/connect_error/.test(e.message)) return 'refused';
      throw e;
    }
  }

  const code = (ack) => (ack && ack.ok === true ? 'ok' : ack?.error?.code ?? `no ack code: ${JSON.stringify(ack)}`);

  /** Runs one cell; resolves the observed outcome, after checking an allowed answer stays on its target. */
  async function runCell(ns, event, target, caller, expected) {
    if (ns === '/widget') {
      const cust = customers[caller];
      if (event === 'connect') {
        if (caller === 'none') return tryConnect('/widget', {});
        const auth = {
          'own inbox': { inbox_id: cust.inboxId, widget_key: cust.widgetKey, session: cust.session },
          'wrong key': { inbox_id: cust.inboxId, widget_key: `${cust.widgetKey}x`, session: cust.session },
          'unknown inbox': { inbox_id: C404, widget_key: cust.widgetKey, session: cust.session },
          // The other tenant's inbox id with this customer's (valid, public) key.
          'other inbox key': { inbox_id: cust.inboxId === widgetB.inboxId ? server.inboxId : widgetB.inboxId, widget_key: cust.widgetKey, session: cust.session },
        }[target];
        assert.ok(auth, `no widget connect target ${target}`);
        return tryConnect('/widget', auth);
      }
      if (caller === 'none') return tryConnect('/widget', {});
      const s = socks[caller];
      let ack;
      if (event === 'sync') {
        const body = { after: 0 };
        if (target === 'other conversation_id in body') body.conversation_id = caller === 'custX' ? conv.C2 : conv.C1;
        ack = await s.request('sync', body);
        if (ack.ok) {
          assert.equal(ack.conversation_id, cust.conversationId, `${caller} synced someone else's conversation`);
          const texts = ack.messages.map((m) => m.text);
          assert.ok(texts.includes(cust.text), `${caller}'s own first message is in its sync: ${JSON.stringify(texts)}`);
          for (const other of WIDGET_CALLERS.filter((o) => o !== caller)) {
            assert.ok(!texts.includes(customers[other].text), `${caller} sees ${other}'s message`);
          }
          assert.ok(ack.messages.every((m) => m.conversation_id === cust.conversationId), `${caller}: a message of another conversation`);
        }
      } else if (event === 'message') {
        ack = await s.request('message', { client_message_id: `matrix-${++seq}`, text: `${caller} again` });
        if (ack.ok) assert.equal(ack.conversation_id, cust.conversationId, `${caller}'s message landed in another conversation`);
      } else if (event === 'typing') {
        await settle(1_100); // one relayed typing notice per second per socket
        ack = await s.request('typing', {});
        if (ack.ok) assert.equal(ack.relayed, true, JSON.stringify(ack));
      } else if (event === 'prechat') {
        ack = await s.request('prechat', { name: 'Matrix' });
      } else {
        throw new Error(`no widget runner for ${event}`);
      }
      return code(ack);
    }

    // /agent
    if (caller === 'none') return tryConnect('/agent', {});
    if (WIDGET_CALLERS.includes(caller)) return tryConnect('/agent', { token: customers[caller].session });
    if (event === 'connect') return tryConnect('/agent', { token: users[caller].token });
    const s = socks[caller];
    let id = { C1: conv.C1, CB: conv.CB, C404 }[target];
    if (target === 'FRESH') id = fresh.shift();
    if (target.startsWith('OFFER')) id = offers[target] ??= await offeredToAgentA();
    assert.ok(id || target === 'self', `no conversation for target ${target}`);
    let ack;
    switch (event) {
      case 'sync':
        ack = await s.request('sync', { conversation_id: id, after: 0 });
        if (ack.ok) {
          assert.ok(ack.messages.length > 0, 'sync of a conversation with messages returned none');
          assert.ok(ack.messages.every((m) => m.conversation_id === id), `${caller}: sync returned another conversation's messages`);
        }
        break;
      case 'reply':
        ack = await s.request('reply', { conversation_id: id, text: `${caller} replies`, client_message_id: `r-${++seq}` });
        if (ack.ok) assert.equal(ack.message.conversation_id, id);
        break;
      case 'watch':
        ack = await s.request('watch', { conversation_id: id });
        break;
      case 'typing':
        await settle(1_100); // one typing notice per second per socket is checked; more answer relayed:false
        ack = await s.request('typing', { conversation_id: id });
        if (ack.ok) assert.equal(ack.relayed, true, JSON.stringify(ack));
        break;
      case 'offer:accept':
      case 'offer:reject':
        ack = await s.request(event, { conversation_id: id });
        if (ack.ok) {
          assert.equal(ack.conversation.id, id);
          if (event === 'offer:accept') assert.deepEqual([ack.conversation.state, ack.conversation.assignee_id], ['assigned', users[caller].user.id]);
          else assert.notEqual(ack.conversation.assignee_id, users[caller].user.id, JSON.stringify(ack.conversation));
        }
        break;
      case 'resolve':
        ack = await s.request('resolve', { conversation_id: id, reason: 'resolved' });
        if (ack.ok) {
          assert.equal(ack.conversation.id, id);
          assert.equal(ack.conversation.state, 'resolved', JSON.stringify(ack.conversation));
        }
        break;
      case 'status':
        ack = await s.request('status', { status: caller === 'agentA' ? 'available' : 'away' });
        if (ack.ok) assert.equal(ack.user.status, caller === 'agentA' ? 'available' : 'away', JSON.stringify(ack.user));
        break;
      default:
        throw new Error(`no agent runner for ${event}`);
    }
    return code(ack);
  }

  it('every cell of the matrix answers as expected', async () => {
    const failures = [];
    let cells = 0;
    for (const [ns, event, target, ...expected] of MATRIX) {
      assert.equal(expected.length, CALLERS.length, `row ${ns} ${event} ${target} has ${expected.length} cells`);
      // Typing is throttled per socket: run a typing row's cells in parallel, one settle for all.
      const run = async (caller, i) => {
        if (expected[i] === '-') return;
        cells++;
        let got;
        try {
          got = await runCell(ns, event, target, caller, expected[i]);
        } catch (e) {
          got = `a failed check: ${e.message}`;
        }
        if (got !== expected[i]) failures.push(`${ns} ${event} ${target} × ${caller}: expected ${expected[i]}, got ${got}`);
      };
      if (event === 'typing') await Promise.all(CALLERS.map(run));
      else {
        const order = [...CALLERS.entries()];
        for (const [i, caller] of [...order.filter(([i]) => expected[i] !== 'ok'), ...order.filter(([i]) => expected[i] === 'ok')]) await run(caller, i);
      }
    }
    log(`${MATRIX.length} rows × ${CALLERS.length} callers: ${cells} cells checked`);
    assert.deepEqual(failures, [], `cells that differ from the matrix:\n${failures.join('\n')}`);
  });

  it('denied callers saw nothing: C1 still open with agentA, no tenant-A conversation reached tenant B or agentB', async () => {
    const c1 = await apiOk(server.url, adminToken, 'GET', `/conversations/${conv.C1}`);
    assert.equal(findKey(c1, 'assignee_id'), users.agentA.user.id, 'C1 still held by agentA');
    assert.equal(findKey(c1, 'state'), 'assigned', 'C1 not resolved (nor offered away) by anyone denied');
    const convIds = (payload) => [payload?.conversation_id, payload?.id, ...(payload?.conversations || []).map((c) => c.id)];
    for (const [name, payload] of socks.otherAdmin.all) {
      if (name === 'agent') continue; // its own status
      for (const id of convIds(payload)) assert.ok(!tenantAConversations.has(id), `tenant B's admin got '${name}' about tenant A's conversation ${id}`);
    }
    for (const [name, payload] of socks.agentB.all) {
      if (name === 'message' || name === 'typing') assert.ok(!tenantAConversations.has(payload?.conversation_id), `agentB got '${name}' of a conversation it does not hold`);
    }
    for (const c of ['custY', 'custZ']) {
      for (const [name, payload] of socks[c].all) {
        if (name === 'message') assert.equal(payload.conversation_id, customers[c].conversationId, `${c} got a message of another conversation`);
      }
    }
  });

  // Rights taken away while a socket is open: a supervisor demoted to agent by an admin, then
  // logged out. Columns: the socket opened before the change, a socket opened after it.
  // prettier-ignore
  const REVOKED = [
    //  change       event      target   socket open before the change   socket opened after it
    ['demoted',   'connect', 'self',   'closed',     'ok'],
    ['demoted',   'sync',    'C1',     'closed',     'forbidden'],
    ['demoted',   'watch',   'C1',     'closed',     'forbidden'],
    ['demoted',   'reply',   'C1',     'closed',     'forbidden'],
    ['demoted',   'live conversation event', 'a new conversation', 'closed', 'denied'],
    ['logged out', 'connect', 'self',  'closed',     'refused'],
    ['logged out', 'sync',    'C1',    'closed',     'refused'],
    ['logged out', 'reply',   'C1',    'closed',     'refused'],
  ];

  it('rights taken away while a socket is open (demotion, logout)', async () => {
    const s2 = await createAgent(server.url, adminToken, { role: 'supervisor', capacity: 5 });
    let open = await connectAgent(server.url, s2.token);
    await open.next('hello');
    const failures = [];
    const check = (row, col, got) => {
      const want = row[col === 'open' ? 3 : 4];
      if (got !== want) failures.push(`${row[0]} ${row[1]} ${row[2]} × ${col} socket: expected ${want}, got ${got}`);
    };
    const act = async (client, event) => {
      if (event === 'sync') return code(await client.request('sync', { conversation_id: conv.C1, after: 0 }));
      if (event === 'watch') return code(await client.request('watch', { conversation_id: conv.C1 }));
      if (event === 'reply') return code(await client.request('reply', { conversation_id: conv.C1, text: 'after the change', client_message_id: `rv-${++seq}` }));
      throw new Error(event);
    };
    // What the socket that was open before the change can still do: nothing, once closed.
    const onOpen = async (fn) => (open.socket.connected ? fn(open) : 'closed');
    let fresh2;
    for (const change of ['demoted', 'logged out']) {
      if (change === 'logged out') open = fresh2; // opened after the demotion, with the same session
      if (change === 'demoted') await apiOk(server.url, adminToken, 'PATCH', `/users/${s2.user.id}`, { role: 'agent' }, [200]);
      else await apiOk(server.url, s2.token, 'POST', '/auth/logout', undefined, [204]);
      // The server closes the open socket through its bus; give that a moment (bounded).
      for (let i = 0; i < 30 && open.socket.connected; i++) await settle(100);
      fresh2 = undefined;
      for (const row of REVOKED.filter((r) => r[0] === change)) {
        const event = row[1];
        if (event === 'connect') {
          check(row, 'open', open.socket.connected ? 'ok' : 'closed');
          try {
            fresh2 = await connectAgent(server.url, s2.token, { timeoutMs: 5_000 });
            await fresh2.next('hello');
            check(row, 'new', 'ok');
          } catch (e) {
            if (!/connect_error/.test(e.message)) throw e;
            check(row, 'new', 'refused');
          }
        } else if (event === 'live conversation event') {
          const n = await newCustomer(server.inboxId, server.widgetKey, 'after demotion');
          tenantAConversations.add(n.conversationId);
          const seen = (c) => c.next('conversation', (x) => x.id === n.conversationId, 2_000).then(() => 'ok', () => 'denied');
          check(row, 'open', await onOpen(seen));
          check(row, 'new', fresh2 ? await seen(fresh2) : 'refused');
        } else {
          check(row, 'open', await onOpen((c) => act(c, event)));
          check(row, 'new', fresh2 ? await act(fresh2, event) : 'refused');
        }
      }
    }
    assert.deepEqual(failures, [], `cells that differ from REVOKED:\n${failures.join('\n')}`);
  });

  it('every event handled in server/src/realtime/{agent,widget}.rs has a row', () => {
    for (const [ns, file] of [['/agent', 'agent.rs'], ['/widget', 'widget.rs']]) {
      const handled = handledEvents(file);
      assert.ok(handled.size >= 3, `${file}: found only ${[...handled]}`);
      const rows = new Set(MATRIX.filter((r) => r[0] === ns).map((r) => r[1]));
      const missing = [...handled].filter((e) => !rows.has(e));
      assert.deepEqual(missing, [], `${ns} events without a row in MATRIX: ${missing.join(', ')}`);
      log(`${ns}: ${[...handled].join(', ')}`);
    }
  });
});

//! The agent / supervisor console: login, status and load, the agent's open conversations with
//! live updates and unread counts, one conversation's history and reply box, resolve with a
//! reason, and the customer panel.
//!
//! Truth comes from the server: every (re)connect starts with `hello` (the conversations held
//! now) and each conversation is synced from the last message id seen, so a dropped connection
//! never leaves the console with a stale or partial view. Messages are keyed by id, so whatever
//! arrives twice (an ack, a live event, a sync) is shown once.

import { io, type Socket } from "socket.io-client";
import { h, replaceChildren } from "../shared/dom";
import { channelBadge } from "../shared/channels";
import { I18n, LOCALES, type Locale } from "../shared/i18n";
import {
  OPEN_STATES, newClientMessageId,
  type Ack, type AgentStatus, type Attachment, type ConversationView, type Message, type User,
} from "../shared/protocol";
import { ReplyOutbox, type PendingReply } from "../shared/outbox";
import { TypingSender, TypingShown } from "../shared/typing";
import type { QueueSnapshot, TypingNotice } from "../shared/protocol";
import { AdminView } from "./admin";
import { Rest } from "./rest";
import { TransferUi, type TransferResult } from "./transfer";
import { AttachTray } from "./attach";
import { OfferDesk, isOfferTo } from "./offers";
import { renderAttachments } from "../shared/attachments";
import { Wallboard } from "./wallboard";
import { CannedPicker } from "./canned";
import { ResolveDialog } from "./wrapup";
import { ContactHistory } from "./history";
import { VirtualLog, type Row } from "./virtual-log";
import { WatchDialog } from "./watch";

type Connection = "connecting" | "connected" | "reconnecting" | "offline";
/** The console's views; the URL hash names the current one (`#wallboard`, `#admin`). */
type View = "conversations" | "wallboard" | "admin";

interface StoredSession {
  token: string;
  user: User;
}

const SESSION_KEY = "switchboard.console.session";
const LOCALE_KEY = "switchboard.locale";
const SYNC_PAGE = 200;
/** Messages per page when paging back through a conversation's history. */
const HISTORY_PAGE = 100;
/** `performance.mark` set when the first server-backed conversation list has been drawn. */
const LIST_MARK = "switchboard:conversations-rendered";
/** States in which a conversation holds one unit of its agent's capacity (core's `holds_agent_slot`; an offer holds one too). */
const SLOT_STATES: ReadonlySet<string> = new Set(["offered", "assigned", "waiting_on_customer"]);
const CONNECTION_LABEL = {
  connecting: "conn.connecting", connected: "conn.connected", reconnecting: "conn.short.reconnecting", offline: "conn.short.offline",
} as const;

export class ConsoleApp {
  private session: StoredSession | null = loadJson<StoredSession>(SESSION_KEY);
  private socket: Socket | null = null;
  private outbox: ReplyOutbox | null = null;
  private connection: Connection = "connecting";
  private loginError = "";

  private conversations = new Map<number, ConversationView>();
  private messages = new Map<number, Map<number, Message>>();
  private lastSeen = new Map<number, number>();
  private syncing = new Set<number>();
  /** Conversations whose oldest message is loaded, and those loading an older page now. */
  private historyComplete = new Set<number>();
  private loadingOlder = new Set<number>();
  private readUpTo: Record<number, number> = {};
  private drafts = new Map<number, string>();
  private team = new Map<number, User>();
  private active: number | null = null;
  private chosenStatus: AgentStatus | null = null;
  private notice = "";
  private view: View = viewFromHash();
  private readonly rest = new Rest(() => this.session?.token ?? null, () => this.logout(this.i18n.t("login.expired")));
  private wallboard: Wallboard | null = null;
  private transferUi: TransferUi | null = null;
  private admin: AdminView | null = null;
  private offerDesk: OfferDesk | null = null;
  private attachTray: AttachTray | null = null;
  private cannedPicker: CannedPicker | null = null;
  private resolveDialog: ResolveDialog | null = null;
  private contactHistory: ContactHistory | null = null;
  private watchDialog: WatchDialog | null = null;
  /** The windowed message list of the log region, and every row height measured so far. */
  private virtualLog: VirtualLog | null = null;
  private readonly rowHeights = new Map<string, number>();
  /** The conversation the log showed last: opening another one starts at its bottom. */
  private logShows: number | null = null;
  /** This agent's typing, sent at most every 2 s per conversation. */
  private readonly typingOut = new TypingSender<number>((id) => this.socket?.emit("typing", { conversation_id: id }));
  /** Customers typing, per conversation, shown for 5 s after their last notice. */
  private readonly typingIn = new TypingShown<number>((id) => { if (id === this.active) this.renderTyping(); });

  // Regions re-rendered on their own, so typing in the reply box is never interrupted.
  private regions: Record<"topbar" | "banner" | "offers" | "list" | "team" | "head" | "log" | "typing" | "composer" | "customer", HTMLElement> | null = null;

  constructor(private readonly root: HTMLElement, private readonly i18n: I18n) {
    i18n.onChange(() => {
      localStorage.setItem(LOCALE_KEY, i18n.locale);
      document.documentElement.lang = i18n.locale;
      this.renderAll();
    });
    window.addEventListener("offline", () => this.setConnection("offline"));
    window.addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => this.renderList());
    window.addEventListener("hashchange", () => this.showView(viewFromHash()));
  }

  static preferredLocale(): Locale {
    const saved = localStorage.getItem(LOCALE_KEY);
    if (saved && (LOCALES as readonly string[]).includes(saved)) return saved as Locale;
    return navigator.language.toLowerCase().startsWith("zh") ? "zh-CN" : "en";
  }

  start(): void {
    document.documentElement.lang = this.i18n.locale;
    if (this.session) this.connect();
    this.renderAll();
  }

  // ------------------------------------------------------------------------------------------
  // session and connection

  private async login(email: string, password: string, tenant: string): Promise<void> {
    const body: Record<string, string> = { email, password };
    if (tenant) body.tenant = tenant;
    let res: Response;
    try {
      res = await fetch("/api/v1/auth/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    } catch (e) {
      this.loginError = this.i18n.t("login.failed", { message: (e as Error).message });
      this.renderAll();
      return;
    }
    const json = (await res.json().catch(() => null)) as { token?: string; user?: User; error?: { message: string } } | null;
    if (!res.ok || !json?.token || !json.user) {
      this.loginError = this.i18n.t("login.failed", { message: json?.error?.message ?? String(res.status) });
      this.renderAll();
      return;
    }
    this.loginError = "";
    this.session = { token: json.token, user: json.user };
    localStorage.setItem(SESSION_KEY, JSON.stringify(this.session));
    this.connect();
    this.renderAll();
  }

  private logout(message = ""): void {
    const token = this.session?.token;
    if (token && !message) {
      void fetch("/api/v1/auth/logout", { method: "POST", headers: { authorization: `Bearer ${token}` } }).catch(() => {});
    }
    this.socket?.close();
    this.socket = null;
    this.outbox = null;
    this.session = null;
    localStorage.removeItem(SESSION_KEY);
    this.conversations.clear();
    this.messages.clear();
    this.lastSeen.clear();
    this.team.clear();
    this.active = null;
    this.wallboard?.unmount();
    this.admin?.unmount();
    this.wallboard = null;
    this.admin = null;
    this.offerDesk?.render(null, []);
    this.loginError = message;
    this.renderAll();
  }

  private connect(): void {
    const session = this.session;
    if (!session) return;
    const userId = session.user.id;
    this.readUpTo = loadJson<Record<number, number>>(`switchboard.read.${userId}`) ?? {};
    const socket = io("/agent", { auth: { token: session.token }, reconnectionDelayMax: 5_000 });
    this.socket = socket;
    this.outbox = new ReplyOutbox(
      `switchboard.outbox.${userId}`,
      {
        canSend: () => socket.connected && navigator.onLine,
        send: (reply, timeoutMs) => socket.timeout(timeoutMs).emitWithAck("reply", {
          conversation_id: reply.conversation_id, text: reply.text, client_message_id: reply.client_message_id,
          ...(reply.attachments?.length ? { attachments: reply.attachments } : {}),
        }),
      },
      (message) => this.addMessages([message]),
      () => this.renderLog(),
    );
    this.setConnection(navigator.onLine ? "connecting" : "offline");

    socket.on("hello", (hello: { user: User; conversations: ConversationView[] }) => this.onHello(hello));
    // The server lost events on their way to this socket (its bus was down): catch up the way a
    // reconnect does — hello, then sync from the last seen id — a little spread out so a whole
    // node's consoles do not ask at the same instant.
    socket.on("resync", () => setTimeout(() => this.reconnectNow(), Math.random() * 2_000));
    socket.on("conversation", (c: ConversationView) => {
      this.watchDialog?.onConversation(c);
      this.onConversation(c);
    });
    socket.on("message", (m: Message) => {
      this.watchDialog?.onMessage(m);
      // A watched conversation that is not ours is shown by the watch dialog only.
      if (this.conversations.has(m.conversation_id) || !this.watchDialog) this.addMessages([m], true);
    });
    socket.on("agent", (u: User) => this.onAgent(u));
    socket.on("queue", (q: QueueSnapshot) => this.wallboard?.onQueue(q));
    socket.on("typing", (n: TypingNotice) => {
      if (n?.sender === "contact" && typeof n.conversation_id === "number") this.typingIn.notice(n.conversation_id);
    });
    socket.on("disconnect", (reason) => {
      this.setConnection(navigator.onLine ? "reconnecting" : "offline");
      // The server closed us on purpose (e.g. a restart): socket.io-client does not retry that itself.
      if (reason === "io server disconnect") setTimeout(() => socket.connect(), 1_000);
    });
    socket.on("connect_error", (err: Error) => {
      if (err.message.startsWith("unauthorized")) {
        this.logout(this.i18n.t("login.expired"));
        return;
      }
      this.setConnection(navigator.onLine ? "reconnecting" : "offline");
      // A refusal by the connect middleware (e.g. "unavailable") is not retried by the client.
      if (!socket.active) setTimeout(() => socket.connect(), 2_000);
    });
  }

  /** The browser says the network is back: don't wait for a ping timeout, start afresh. */
  private reconnectNow(): void {
    const socket = this.socket;
    if (!socket) return;
    this.setConnection("reconnecting");
    socket.disconnect();
    socket.connect();
  }

  private setConnection(state: Connection): void {
    if (this.connection === state) return;
    this.connection = state;
    this.renderTopbar();
    this.renderBanner();
  }

  // ------------------------------------------------------------------------------------------
  // server events

  private onHello({ user, conversations }: { user: User; conversations: ConversationView[] }): void {
    this.setUser(user);
    this.setConnection("connected");
    const held = new Set(conversations.map((c) => c.id));
    for (const id of [...this.conversations.keys()]) if (!held.has(id)) this.conversations.delete(id);
    for (const c of conversations) this.conversations.set(c.id, c);
    if (this.active !== null && !held.has(this.active)) this.active = null;
    if (this.active === null && conversations.length) this.active = mostRecent(conversations).id;
    // The server marks an agent offline after a long disconnect; restore what they chose here.
    if (this.chosenStatus && user.status !== this.chosenStatus) this.setStatus(this.chosenStatus);
    if (user.role !== "agent") void this.loadTeam();
    this.renderAll();
    // First meaningful paint: the conversation list drawn from the server's answer. Marked once
    // per page load; tests/browser reads it with FCP and prints both (docs: web-agent/README.md).
    if (!performance.getEntriesByName(LIST_MARK).length) requestAnimationFrame(() => performance.mark(LIST_MARK));
    for (const c of conversations) void this.sync(c.id);
    void this.outbox?.flush();
  }

  private onConversation(c: ConversationView): void {
    const me = this.session?.user.id;
    const mine = c.assignee_id === me && OPEN_STATES.has(c.state);
    if (mine) {
      const isNew = !this.conversations.has(c.id);
      this.conversations.set(c.id, { ...this.conversations.get(c.id), ...c });
      if (isNew) void this.sync(c.id);
      if (this.active === null) this.active = c.id;
    } else {
      this.conversations.delete(c.id);
      if (this.active === c.id) this.active = null;
    }
    this.recountLoad();
    this.renderList();
    this.renderConversation();
    this.renderOffers();
  }

  /**
   * The server announces `agent` on status changes, not on every assignment, so the load shown
   * follows the list: the conversations held now that occupy a slot (the server's own rule).
   */
  private recountLoad(): void {
    const user = this.session?.user;
    if (!user) return;
    const held = [...this.conversations.values()].filter((c) => SLOT_STATES.has(c.state)).length;
    if (held !== user.active_load) this.setUser({ ...user, active_load: held });
  }

  private onAgent(u: User): void {
    if (u.id === this.session?.user.id) {
      // Forced by a supervisor (or another tab): what the server says is now the choice.
      if (this.chosenStatus && u.status !== this.chosenStatus) this.chosenStatus = u.status;
      this.setUser(u);
    }
    this.team.set(u.id, u);
    this.renderTeam();
    this.wallboard?.onAgent(u);
  }

  private setUser(user: User): void {
    if (!this.session) return;
    this.session = { ...this.session, user };
    localStorage.setItem(SESSION_KEY, JSON.stringify(this.session));
    this.team.set(user.id, user);
    this.renderTopbar();
  }

  private async loadTeam(): Promise<void> {
    const token = this.session?.token;
    if (!token) return;
    const res = await fetch("/api/v1/users", { headers: { authorization: `Bearer ${token}` } }).catch(() => null);
    if (!res?.ok) return;
    const users = (await res.json()) as User[];
    for (const u of users) if (!this.team.has(u.id) || u.id !== this.session?.user.id) this.team.set(u.id, u);
    this.renderTeam();
  }

  /** Fetches every message after the last one seen, page by page. */
  private async sync(conversationId: number): Promise<void> {
    const socket = this.socket;
    if (!socket || this.syncing.has(conversationId)) return;
    this.syncing.add(conversationId);
    try {
      // Nothing of it here yet: start from the newest page (REST `before`), so a long history
      // costs one page now and the rest as the agent scrolls up (`loadOlder`).
      if (!this.lastSeen.has(conversationId)) {
        try {
          const page = await this.rest.get<Message[]>(`/conversations/${conversationId}/messages?before=${Number.MAX_SAFE_INTEGER}&limit=${HISTORY_PAGE}`);
          if (page.length < HISTORY_PAGE) this.historyComplete.add(conversationId);
          this.addMessages(page);
        } catch {
          // Not readable over REST (e.g. not ours any more): the socket sync below reads from the start.
          this.historyComplete.add(conversationId);
        }
      }
      for (;;) {
        const after = this.lastSeen.get(conversationId) ?? 0;
        const res = (await socket.timeout(10_000).emitWithAck("sync", { conversation_id: conversationId, after })) as Ack<{ messages: Message[] }>;
        if (!res.ok) return;
        this.addMessages(res.messages);
        if (res.messages.length < SYNC_PAGE) return;
      }
    } catch {
      // No ack in time: the next hello syncs again from the same point.
    } finally {
      this.syncing.delete(conversationId);
      if (conversationId === this.active) this.renderLog();
    }
  }

  /** The page before the oldest message held, when the agent scrolls to the top of the log. */
  private async loadOlder(conversationId: number): Promise<void> {
    if (this.historyComplete.has(conversationId) || this.loadingOlder.has(conversationId)) return;
    const held = [...(this.messages.get(conversationId)?.keys() ?? [])];
    if (!held.length) return;
    this.loadingOlder.add(conversationId);
    try {
      const page = await this.rest.get<Message[]>(`/conversations/${conversationId}/messages?before=${Math.min(...held)}&limit=${HISTORY_PAGE}`);
      if (page.length < HISTORY_PAGE) this.historyComplete.add(conversationId);
      this.addMessages(page);
    } catch {
      // Tried again at the next scroll to the top.
    } finally {
      this.loadingOlder.delete(conversationId);
      if (conversationId === this.active) this.renderLog();
    }
  }

  private addMessages(list: Message[], live = false): void {
    let touched = false;
    for (const m of list) {
      let byId = this.messages.get(m.conversation_id);
      if (!byId) this.messages.set(m.conversation_id, (byId = new Map()));
      if (!byId.has(m.id)) touched = true;
      byId.set(m.id, m);
      this.lastSeen.set(m.conversation_id, Math.max(this.lastSeen.get(m.conversation_id) ?? 0, m.id));
      this.outbox?.confirm(m);
      if (live && m.direction === "inbound") this.typingIn.clear(m.conversation_id);
      if (live && !this.conversations.has(m.conversation_id)) void this.sync(m.conversation_id);
    }
    if (!touched) return;
    this.renderList();
    if (list.some((m) => this.conversations.get(m.conversation_id)?.state === "offered")) this.renderOffers();
    if (this.active !== null && list.some((m) => m.conversation_id === this.active)) this.renderLog();
  }

  // ------------------------------------------------------------------------------------------
  // agent actions

  private setStatus(status: AgentStatus): void {
    this.chosenStatus = status;
    this.socket?.timeout(10_000).emit("status", { status }, (err: Error | null, res?: Ack<{ user: User }>) => {
      if (!err && res?.ok) this.setUser(res.user);
      else this.renderTopbar(); // puts the select back to the server's value
    });
  }

  private sendReply(text: string, attachments: Attachment[] = []): void {
    if (this.active === null || !this.outbox) return;
    const reply: PendingReply = {
      client_message_id: newClientMessageId("console"),
      conversation_id: this.active,
      text,
      ...(attachments.length ? { attachments } : {}),
      created_at: Date.now(),
      state: "queued",
    };
    this.outbox.enqueue(reply);
    this.typingOut.reset(this.active);
  }

  /** A transfer went through: the conversation (usually no longer ours) and its note. */
  private onTransferred({ conversation, note }: TransferResult): void {
    this.notice = "";
    if (note) this.addMessages([note]);
    this.onConversation({ ...this.conversations.get(conversation.id), ...conversation });
  }

  private transfer(): TransferUi {
    this.transferUi ??= new TransferUi(this.i18n, this.rest, (r) => this.onTransferred(r), (note) => this.addMessages([note]));
    return this.transferUi;
  }

  /** Offers and attachments (offers.ts, attach.ts), made on first use. */
  private offers(): OfferDesk {
    this.offerDesk ??= new OfferDesk(this.i18n, {
      socket: () => this.socket,
      contactName: (c) => this.contactName(c),
      preview: (id) => {
        const first = [...(this.messages.get(id)?.values() ?? [])].filter((m) => m.direction === "inbound").sort((a, b) => a.id - b.id)[0];
        return first ? this.messageText(first) : null;
      },
      settled: (c, accepted) => {
        this.onConversation({ ...this.conversations.get(c.id), ...c } as ConversationView);
        if (accepted && this.conversations.has(c.id)) this.open(c.id);
      },
    });
    return this.offerDesk;
  }

  /** Canned responses, the resolve dialog and the contact's history (canned.ts, wrapup.ts, history.ts), made on first use. */
  private canned(): CannedPicker {
    this.cannedPicker ??= new CannedPicker(this.i18n, this.rest);
    return this.cannedPicker;
  }

  private resolver(): ResolveDialog {
    this.resolveDialog ??= new ResolveDialog(this.i18n, this.rest, (done) => {
      this.notice = "";
      this.onConversation({ ...this.conversations.get(done.id), ...done });
    });
    return this.resolveDialog;
  }

  private watcher(): WatchDialog {
    this.watchDialog ??= new WatchDialog(this.i18n, this.rest, () => this.socket, () => this.wallboard?.agentLoads() ?? []);
    return this.watchDialog;
  }

  private history(): ContactHistory {
    this.contactHistory ??= new ContactHistory(this.i18n, this.rest);
    return this.contactHistory;
  }

  private tray(): AttachTray {
    this.attachTray ??= new AttachTray(this.i18n, () => this.session?.token ?? null);
    return this.attachTray;
  }

  private renderOffers(): void {
    const me = this.session?.user.id;
    this.offers().render(this.regions?.offers ?? null, [...this.conversations.values()].filter((c) => isOfferTo(c, me)));
  }

  private open(id: number): void {
    if (this.active === id) return;
    this.active = id;
    this.notice = "";
    this.renderList();
    this.renderConversation();
    void this.sync(id);
  }

  // ------------------------------------------------------------------------------------------
  // unread

  private markRead(id: number): void {
    const last = this.lastSeen.get(id) ?? 0;
    if ((this.readUpTo[id] ?? 0) >= last) return;
    this.readUpTo[id] = last;
    if (this.session) localStorage.setItem(`switchboard.read.${this.session.user.id}`, JSON.stringify(this.readUpTo));
  }

  /** Customer messages after both the last one read here and the last reply sent. */
  private unread(id: number): number {
    const msgs = [...(this.messages.get(id)?.values() ?? [])];
    const lastOut = Math.max(0, ...msgs.filter((m) => m.direction === "outbound" && !m.private).map((m) => m.id));
    const floor = Math.max(lastOut, this.readUpTo[id] ?? 0);
    return msgs.filter((m) => m.direction === "inbound" && m.id > floor).length;
  }

  // ------------------------------------------------------------------------------------------
  // rendering

  private renderAll(): void {
    const t = this.i18n.t.bind(this.i18n);
    document.title = t("app.name");
    if (!this.session) {
      this.regions = null;
      replaceChildren(this.root, this.loginView());
      return;
    }
    const region = (cls: string, tag: "div" | "header" | "section" | "aside" = "div") => h(tag, { class: cls });
    this.regions = {
      topbar: region("topbar", "header"),
      banner: region("banner-slot"),
      offers: region("offers"),
      list: region("conv-list"),
      team: region("team"),
      head: region("conv-head"),
      log: region("log"),
      typing: region("typing-line"),
      composer: region("composer"),
      customer: region("customer", "aside"),
    };
    const r = this.regions;
    r.log.setAttribute("aria-live", "polite");
    r.offers.setAttribute("aria-live", "assertive");
    r.offers.setAttribute("aria-label", t("offer.region"));
    r.typing.setAttribute("aria-live", "polite");
    const view = this.allowedView(this.view);
    this.wallboard?.unmount();
    this.admin?.unmount();
    let main: HTMLElement;
    if (view === "wallboard") {
      main = h("main", { class: "page wallboard", "data-view": "wallboard" });
      this.wallboard ??= new Wallboard(this.i18n, this.rest, `switchboard.wallboard.${this.session.user.tenant_id}`, (id) => void this.watcher().open(id));
      this.wallboard.mount(main);
    } else if (view === "admin") {
      main = h("main", { class: "page admin", "data-view": "admin" });
      this.admin ??= new AdminView(this.i18n, this.rest);
      this.admin.mount(main);
    } else {
      main = h("main", { class: "layout", "data-view": "conversations" },
        h("aside", { class: "sidebar" }, h("h2", { class: "section-title" }, t("list.title")), r.list, r.team),
        h("section", { class: "conversation", ...this.dropHandlers() }, r.head, r.log, r.typing, r.composer,
          h("div", { class: "drop-hint", "aria-hidden": "true" }, t("attach.drop"))),
        r.customer,
      );
    }
    replaceChildren(this.root, h("div", { class: "app" }, r.topbar, r.banner, r.offers, main));
    this.renderTopbar();
    this.renderBanner();
    this.renderOffers();
    this.renderList();
    this.renderTeam();
    this.renderConversation();
  }

  private loginView(): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const email = h("input", { name: "email", type: "email", autocomplete: "username", required: true });
    const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
    const tenant = h("input", { name: "tenant", autocomplete: "organization" });
    const submit = h("button", { type: "submit", class: "primary" }, t("login.submit"));
    const form = h("form", {
      class: "login-card",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        submit.disabled = true;
        submit.textContent = t("login.busy");
        void this.login(email.value.trim(), password.value, tenant.value.trim());
      },
    },
      h("div", { class: "login-brand" }, h("span", { class: "logo" }, "S"), t("app.name")),
      h("h1", null, t("login.title")),
      h("label", null, t("login.email"), email),
      h("label", null, t("login.password"), password),
      h("label", null, t("login.tenant"), tenant),
      submit,
      this.loginError ? h("p", { class: "error", role: "alert" }, this.loginError) : null,
      h("div", { class: "login-lang" }, this.languageSelect()),
    );
    return h("div", { class: "login-screen" }, form);
  }

  private languageSelect(): HTMLElement {
    const select = h("select", {
      class: "lang-select",
      "aria-label": this.i18n.t("lang.label"),
      onchange: (ev: Event) => this.i18n.setLocale((ev.target as HTMLSelectElement).value as Locale),
    }, ...LOCALES.map((l) => h("option", { value: l, selected: l === this.i18n.locale }, this.i18n.t(`lang.${l}`))));
    return select;
  }

  private renderTopbar(): void {
    const el = this.regions?.topbar;
    const user = this.session?.user;
    if (!el || !user) return;
    const t = this.i18n.t.bind(this.i18n);
    const statusSelect = h("select", {
      class: "status-select",
      "data-status": user.status,
      "aria-label": t("status.label"),
      onchange: (ev: Event) => {
        this.offers().askPermission(); // a user gesture: the moment to ask for offer notifications
        this.setStatus((ev.target as HTMLSelectElement).value as AgentStatus);
      },
    },
      h("option", { value: "available", selected: user.status === "available" }, t("status.available")),
      h("option", { value: "away", selected: user.status === "away" }, t("status.away")),
      user.status === "offline" ? h("option", { value: "offline", selected: true, disabled: true }, t("status.offline")) : null,
    );
    const views = this.views();
    const current = this.allowedView(this.view);
    replaceChildren(el,
      h("div", { class: "brand" }, h("span", { class: "logo" }, "S"), t("app.name")),
      h("span", { class: `conn-pill conn-${this.connection}`, "data-connection": this.connection },
        h("span", { class: "dot" }), t(CONNECTION_LABEL[this.connection])),
      views.length > 1 ? h("nav", { class: "views", "aria-label": t("nav.label") }, ...views.map((v) => h("a", {
        href: `#${v}`, class: `view-link${v === current ? " active" : ""}`, "data-view-link": v, "aria-current": v === current ? "page" : null,
      }, t(`nav.${v}`)))) : null,
      h("div", { class: "spacer" }),
      h("label", { class: "status" }, h("span", { class: `status-dot s-${user.status}` }), statusSelect),
      h("span", { class: "load", "data-testid": "load" }, t("load", { load: user.active_load, capacity: user.capacity })),
      this.languageSelect(),
      h("span", { class: "me", title: user.email }, user.name),
      h("button", { class: "ghost", onclick: () => this.logout() }, t("logout")),
    );
  }

  private renderBanner(): void {
    const el = this.regions?.banner;
    if (!el) return;
    const t = this.i18n.t.bind(this.i18n);
    if (this.connection === "reconnecting" || this.connection === "offline") {
      replaceChildren(el, h("div", { class: `banner banner-${this.connection}`, role: "status", "data-connection": this.connection },
        t(this.connection === "offline" ? "conn.offline" : "conn.reconnecting")));
    } else {
      replaceChildren(el);
    }
  }

  private renderList(): void {
    const el = this.regions?.list;
    if (!el) return;
    const t = this.i18n.t.bind(this.i18n);
    if (this.active !== null && document.visibilityState === "visible") this.markRead(this.active);
    const convs = [...this.conversations.values()].sort((a, b) => this.lastActivity(b) - this.lastActivity(a));
    let totalUnread = 0;
    const items = convs.map((c) => {
      const unread = c.id === this.active && document.visibilityState === "visible" ? 0 : this.unread(c.id);
      totalUnread += unread;
      const last = this.lastMessage(c.id);
      return h("button", {
        class: `conv-item${c.id === this.active ? " active" : ""}${unread ? " has-unread" : ""}`,
        "data-conversation": c.id,
        onclick: () => this.open(c.id),
      },
        channelBadge(c.inbox.kind, this.i18n),
        h("span", { class: "conv-main" },
          h("span", { class: "conv-top" },
            h("span", { class: "conv-name" }, this.contactName(c)),
            c.state === "offered" ? h("span", { class: "tag offer-flag" }, t("offer.badge")) : null,
            h("span", { class: "conv-time" }, this.i18n.formatTime(last?.created_at ?? c.updated_at))),
          h("span", { class: "conv-bottom" },
            h("span", { class: "conv-preview" }, last ? this.messageText(last) : t("list.noMessages")),
            unread ? h("span", { class: "unread", "aria-label": t("list.unread", { count: unread }) }, unread) : null)),
      );
    });
    replaceChildren(el, ...(items.length ? items : [h("p", { class: "empty" }, t("list.empty"))]));
    document.title = totalUnread ? `(${totalUnread}) ${t("app.name")}` : t("app.name");
  }

  private renderTeam(): void {
    const el = this.regions?.team;
    const me = this.session?.user;
    if (!el || !me) return;
    if (me.role === "agent" || this.team.size === 0) {
      replaceChildren(el);
      return;
    }
    const t = this.i18n.t.bind(this.i18n);
    const agents = [...this.team.values()].sort((a, b) => a.name.localeCompare(b.name));
    replaceChildren(el,
      h("h2", { class: "section-title" }, t("team.title")),
      ...agents.map((u) => h("div", { class: "team-row" },
        h("span", { class: `status-dot s-${u.status}`, title: t(`status.${u.status}`) }),
        h("span", { class: "team-name" }, u.name),
        h("span", { class: "team-load" }, t("load", { load: u.active_load, capacity: u.capacity })))),
    );
  }

  private renderConversation(): void {
    if (!this.regions) return;
    const t = this.i18n.t.bind(this.i18n);
    const c = this.active !== null ? this.conversations.get(this.active) : undefined;
    const { head, composer, customer } = this.regions;
    if (!c) {
      replaceChildren(head);
      replaceChildren(composer);
      replaceChildren(customer);
      this.renderTyping();
      this.renderLog();
      return;
    }
    replaceChildren(head,
      channelBadge(c.inbox.kind, this.i18n),
      h("div", { class: "head-title" },
        h("strong", null, this.contactName(c)),
        h("span", { class: "muted" }, `${t("conv.title", { id: c.id })} · ${c.inbox.name} · ${this.i18n.tDynamic("state", c.state)}`)),
      h("div", { class: "spacer" }),
      this.transfer().button(c),
      this.resolver().button(c),
    );

    // Until an offer is accepted the server refuses replies (409): the box says so.
    const locked = c.state === "offered";
    const textarea = h("textarea", {
      rows: 2,
      disabled: locked,
      placeholder: `${t("reply.placeholder")} · ${t("canned.hint")}`,
      "aria-label": t("reply.placeholder"),
      onpaste: (ev: ClipboardEvent) => this.tray().onPaste(c.id, ev),
      oninput: (ev: Event) => {
        const value = (ev.target as HTMLTextAreaElement).value;
        this.drafts.set(c.id, value);
        if (value.trim()) this.typingOut.poke(c.id);
      },
      onkeydown: (ev: KeyboardEvent) => {
        if (picker.onKeyDown(ev)) return;
        if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
          ev.preventDefault();
          form.requestSubmit();
        }
      },
    });
    textarea.value = this.drafts.get(c.id) ?? "";
    const picker = this.canned().attach(textarea, () => ({
      "contact.name": c.contact.name ?? this.contactName(c),
      "agent.name": this.session?.user.name ?? "",
    }));
    const form = h("form", {
      class: "reply-form",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        if (locked) return;
        const text = textarea.value.trim();
        if (this.tray().uploading(c.id)) {
          this.notice = t("attach.wait");
          this.renderConversation();
          return;
        }
        if (!text && !this.tray().hasReady(c.id)) return;
        textarea.value = "";
        this.drafts.delete(c.id);
        this.sendReply(text, this.tray().take(c.id));
        if (this.notice === t("attach.wait")) {
          this.notice = "";
          composer.querySelector("p.error")?.remove();
        }
        textarea.focus();
      },
    }, this.tray().button(c.id, locked), emojiPicker(textarea, this.i18n, locked), textarea, h("button", { type: "submit", class: "primary", disabled: locked }, t("reply.send")));
    replaceChildren(composer,
      this.notice ? h("p", { class: "error", role: "alert" }, this.notice) : null,
      locked ? h("p", { class: "locked", "data-locked": "offer" }, t("offer.replyLocked")) : null,
      this.tray().element(c.id), picker.popup, form, this.transfer().noteForm(c));
    this.renderTyping();

    const ids = c.contact.identifiers;
    replaceChildren(customer,
      h("h2", { class: "section-title" }, t("customer.title")),
      h("div", { class: "avatar" }, initials(this.contactName(c))),
      field(t("customer.name"), h("span", { "data-field": "name" }, c.contact.name ?? t("customer.anonymous"))),
      field(t("customer.identifiers"), ids.length
        ? h("ul", { class: "identifiers", "data-field": "identifiers" }, ...ids.map((id) => h("li", null, h("code", null, id))))
        : h("span", { class: "muted" }, t("customer.noIdentifiers")),
        c.contact.masked ? h("span", { class: "tag" }, t("customer.masked")) : null),
      field(t("customer.inbox"), h("span", { class: "inbox-line" }, channelBadge(c.inbox.kind, this.i18n), `${c.inbox.name} · ${this.i18n.tDynamic("channel", c.inbox.kind)}`)),
      field(t("customer.state"), this.i18n.tDynamic("state", c.state)),
      field(t("customer.priority"), String(c.priority)),
      field(t("customer.started"), this.i18n.formatTime(c.created_at)),
      ...prechatFields(c, t),
      this.history().section(c),
    );
    this.renderLog();
  }

  private renderLog(): void {
    const el = this.regions?.log;
    if (!el) return;
    const t = this.i18n.t.bind(this.i18n);
    const id = this.active;
    if (id === null || !this.conversations.has(id)) {
      replaceChildren(el, h("p", { class: "empty center" }, t("conv.none")));
      this.logShows = null;
      return;
    }
    if (!this.virtualLog || this.virtualLog.el !== el) {
      this.virtualLog = new VirtualLog(el, this.rowHeights, () => {
        if (this.active !== null) void this.loadOlder(this.active);
      });
    }
    const log = this.virtualLog;
    const opened = this.logShows !== id;
    const stickToBottom = opened || log.atBottom();
    const me = this.session?.user.id;
    const stored = [...(this.messages.get(id)?.values() ?? [])].sort((a, b) => a.id - b.id);
    // Internal notes sit apart from the chat (yellow, labelled): the customer never sees them.
    const bubble = (m: Message) => h("div", { class: `msg ${m.direction}${m.private ? " note" : ""}`, "data-message-id": m.id, "data-private": m.private ? "true" : null },
      m.text || !m.attachments.length ? h("div", { class: "bubble" }, this.messageText(m)) : null,
      renderAttachments(m.attachments, location.href, this.i18n),
      h("div", { class: "meta" }, `${m.private ? `${t("note.label")} · ` : ""}${this.senderLabel(m, me)} · ${this.i18n.formatTime(m.created_at)}`));
    const pendingReplies = this.outbox?.pending(id) ?? [];
    const pending = (r: PendingReply) => h("div", { class: `msg outbound pending pending-${r.state}`, "data-client-message-id": r.client_message_id },
      r.text || !r.attachments?.length ? h("div", { class: "bubble" }, r.text) : null,
      renderAttachments(r.attachments ?? [], location.href, this.i18n),
      h("div", { class: "meta" },
        r.state === "failed" ? t("reply.failed", { message: r.error ?? "" }) : t(r.state === "sending" ? "reply.sending" : "reply.queued"),
        r.state === "failed" ? h("button", { class: "link", onclick: () => this.outbox?.retry(r.client_message_id) }, t("reply.retry")) : null,
        r.state === "failed" ? h("button", { class: "link", onclick: () => this.outbox?.discard(r.client_message_id) }, t("reply.discard")) : null));
    if (!stored.length && !pendingReplies.length) {
      replaceChildren(el, this.syncing.has(id) ? h("p", { class: "empty center" }, t("conv.loading")) : null);
      this.logShows = null;
      return;
    }
    // Only the rows in view are drawn (virtual-log.ts); messages are immutable objects, a
    // pending reply's state changes in place, so it gets a fresh item each time.
    const rows: Row[] = [
      ...stored.map((m) => ({ key: `m${m.id}`, item: m, render: () => bubble(m) })),
      ...pendingReplies.map((r) => ({ key: `p${r.client_message_id}`, item: { ...r }, render: () => pending(r) })),
    ];
    el.dataset.history = this.historyComplete.has(id) ? "complete" : this.loadingOlder.has(id) ? "loading" : "more";
    log.setRows(rows, stickToBottom || pendingReplies.length > 0);
    this.logShows = id;
    if (document.visibilityState === "visible") this.markRead(id);
  }

  /** "Customer is typing…" under the open conversation's messages, while they type. */
  private renderTyping(): void {
    const el = this.regions?.typing;
    if (!el) return;
    const id = this.active;
    if (id !== null && this.typingIn.active(id)) {
      replaceChildren(el, h("span", { class: "typing-dots", "aria-hidden": "true" }, h("span"), h("span"), h("span")), this.i18n.t("typing.customer"));
      el.dataset.typing = String(id);
    } else {
      replaceChildren(el);
      delete el.dataset.typing;
    }
  }

  /** Files dragged onto the open conversation go to its attachments tray. */
  private dropHandlers(): Record<string, (ev: DragEvent) => void> {
    const accepts = (ev: DragEvent) => this.active !== null && [...(ev.dataTransfer?.types ?? [])].includes("Files")
      && this.conversations.get(this.active)?.state !== "offered";
    const section = (ev: DragEvent) => ev.currentTarget as HTMLElement;
    return {
      ondragover: (ev) => {
        if (!accepts(ev)) return;
        ev.preventDefault();
        if (ev.dataTransfer) ev.dataTransfer.dropEffect = "copy";
        section(ev).classList.add("dropping");
      },
      ondragleave: (ev) => {
        if (!section(ev).contains(ev.relatedTarget as Node | null)) section(ev).classList.remove("dropping");
      },
      ondrop: (ev) => {
        section(ev).classList.remove("dropping");
        if (!accepts(ev) || this.active === null) return;
        ev.preventDefault();
        this.tray().add(this.active, [...(ev.dataTransfer?.files ?? [])]);
      },
    };
  }

  // ------------------------------------------------------------------------------------------
  // views

  /** The views this user may open: agents only the conversations. */
  private views(): View[] {
    const role = this.session?.user.role;
    if (role === "admin") return ["conversations", "wallboard", "admin"];
    if (role === "supervisor") return ["conversations", "wallboard"];
    return ["conversations"];
  }

  private allowedView(view: View): View {
    return this.views().includes(view) ? view : "conversations";
  }

  private showView(view: View): void {
    if (view === this.view) return;
    this.view = view;
    this.renderAll();
  }

  // ------------------------------------------------------------------------------------------
  // small helpers

  /** The contact's name; else, for web visitors (whose identifier is an opaque session hash), a numbered visitor; else their first identifier. */
  private contactName(c: ConversationView): string {
    if (c.contact.name) return c.contact.name;
    if (c.inbox.kind === "web") return this.i18n.t("customer.visitor", { id: c.contact.id });
    return c.contact.identifiers[0] ?? this.i18n.t("customer.anonymous");
  }

  private messageText(m: Message): string {
    if (m.text) return m.text;
    const a = m.attachments[0];
    return this.i18n.t("message.attachment", { name: a?.name ?? a?.kind ?? "" });
  }

  private senderLabel(m: Message, me: number | undefined): string {
    if (m.sender_kind === "agent" && m.sender_user_id === me) return this.i18n.t("sender.you");
    return this.i18n.tDynamic("sender", m.sender_kind);
  }

  private lastMessage(id: number): Message | undefined {
    const byId = this.messages.get(id);
    const last = this.lastSeen.get(id);
    return byId && last !== undefined ? byId.get(last) : undefined;
  }

  private lastActivity(c: ConversationView): number {
    return this.lastMessage(c.id)?.created_at ?? c.updated_at;
  }
}

function field(label: string, ...value: Array<Node | string | null>): HTMLElement {
  return h("div", { class: "field" }, h("div", { class: "field-label" }, label), h("div", { class: "field-value" }, ...value));
}

/** The widget's pre-chat answers (`attributes.prechat`): email and department, when given. */
function prechatFields(c: ConversationView, t: I18n["t"]): HTMLElement[] {
  const p = c.attributes?.prechat as { email?: string | null; department?: { name?: string } | null } | undefined;
  const out: HTMLElement[] = [];
  if (p?.email) out.push(field(t("customer.email"), h("span", { "data-field": "email" }, p.email)));
  if (p?.department?.name) out.push(field(t("customer.department"), h("span", { "data-field": "department" }, p.department.name)));
  return out;
}

function initials(name: string): string {
  const letters = name.trim().split(/\s+/).map((w) => [...w.replace(/[^\p{L}\p{N}]/gu, "")][0] ?? "").join("");
  return [...letters].slice(0, 2).join("").toUpperCase() || "?";
}

function mostRecent(list: ConversationView[]): ConversationView {
  return list.reduce((a, b) => (b.updated_at > a.updated_at ? b : a));
}

function viewFromHash(): View {
  const hash = location.hash.replace(/^#/, "");
  return hash === "wallboard" || hash === "admin" ? hash : "conversations";
}

function loadJson<T>(key: string): T | null {
  try {
    const raw = localStorage.getItem(key);
    return raw ? (JSON.parse(raw) as T) : null;
  } catch {
    return null;
  }
}

/** Common emoji offered by the reply box's picker. */
const EMOJI = [
  "😀", "😃", "😄", "😁", "😊", "🙂", "😉", "😍", "🥰", "😘",
  "😅", "😂", "🤣", "😇", "🤔", "😐", "😮", "😢", "😭", "😡",
  "🙏", "👍", "👎", "👌", "👋", "👏", "🙌", "💪", "🤝", "✌️",
  "❤️", "💙", "🎉", "✨", "🔥", "⭐", "✅", "❌", "⚠️", "📦",
  "🚚", "💳", "📞", "📧", "⏰", "☕",
];

/**
 * The reply box's emoji button: opens a grid; a click inserts the emoji at the caret (replacing
 * any selection) as if typed, so the draft is kept. Escape or a click outside closes it.
 */
function emojiPicker(textarea: HTMLTextAreaElement, i18n: I18n, disabled: boolean): HTMLElement {
  const label = i18n.t("emoji.button");
  let onDoc: ((ev: Event) => void) | null = null;
  const close = (refocus = false) => {
    grid.hidden = true;
    button.setAttribute("aria-expanded", "false");
    if (onDoc) {
      document.removeEventListener("pointerdown", onDoc, true);
      document.removeEventListener("keydown", onDoc, true);
      onDoc = null;
    }
    if (refocus) textarea.focus();
  };
  const insert = (emoji: string) => {
    const start = textarea.selectionStart ?? textarea.value.length;
    const end = textarea.selectionEnd ?? start;
    textarea.focus();
    textarea.setRangeText(emoji, start, end, "end");
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
    close(true);
  };
  const grid = h("div", { class: "emoji-grid", role: "dialog", "aria-label": i18n.t("emoji.grid"), hidden: true },
    ...EMOJI.map((e) => h("button", {
      type: "button", class: "emoji", "data-emoji": e, "aria-label": e,
      // Keep the textarea's caret and selection: the button never takes focus from it.
      onmousedown: (ev: MouseEvent) => ev.preventDefault(),
      onclick: () => insert(e),
    }, e)));
  const button = h("button", {
    type: "button", class: "ghost emoji-button", title: label, "aria-label": label, "aria-haspopup": "dialog", "aria-expanded": "false", disabled,
    onmousedown: (ev: MouseEvent) => ev.preventDefault(),
    onclick: () => {
      if (!grid.hidden) return close(true);
      grid.hidden = false;
      button.setAttribute("aria-expanded", "true");
      onDoc = (ev: Event) => {
        if (ev instanceof KeyboardEvent) {
          if (ev.key === "Escape") {
            ev.preventDefault();
            ev.stopPropagation();
            close(true);
          }
        } else if (!wrap.contains(ev.target as Node)) close();
      };
      document.addEventListener("pointerdown", onDoc, true);
      document.addEventListener("keydown", onDoc, true);
    },
  }, "😊");
  const wrap = h("div", { class: "emoji-picker" }, button, grid);
  return wrap;
}

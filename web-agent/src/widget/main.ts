//! The embeddable customer widget. A site adds one tag:
//!
//!   <script src="https://switchboard.example/widget.js" data-inbox="3" data-key="…" async></script>
//!
//! and gets a floating chat button. Optional: `data-lang="zh-CN"`, `data-title`, `data-name`
//! (the customer's name, if the site knows it), `data-server` (when widget.js is not served by
//! the Switchboard node itself), `data-open` (start opened).
//!
//! Guarantees: the session token is kept in localStorage, so a reload or a new tab resumes the
//! same conversation; a message is shown as sent only after the server acknowledged it (after its
//! commit) and is resent with the same `client_message_id` until then (stored once); after every
//! reconnect the widget syncs from the last message id it saw; messages are keyed by id, so
//! nothing shows twice. Everything renders inside a shadow root, so the host page's CSS cannot
//! reach in and ours cannot leak out.
//!
//! Pre-chat form: when the inbox asks for one (`session.prechat`) and there is no conversation
//! yet, the panel shows name, email (optional unless required) and the departments to choose
//! from before the composer; the answers are sent as `prechat` (acked) and kept in localStorage,
//! so after a reload or reconnect they are sent again without asking twice.

import { io, type Socket } from "socket.io-client";
import { h, replaceChildren } from "../shared/dom";
import { I18n, pickLocale, LOCALES, type Locale } from "../shared/i18n";
import { ReplyOutbox } from "../shared/outbox";
import { clipIcon, renderAttachments, uploadErrorText, uploadFile } from "../shared/attachments";
import { newClientMessageId, type Ack, type ConversationState, type Message, type QueueInfo, type TypingNotice } from "../shared/protocol";
import { TypingSender, TypingShown } from "../shared/typing";
import { WIDGET_CSS } from "./style";

interface WidgetConfig {
  inboxId: number;
  key: string;
  server: string;
  locale: Locale;
  title: string | undefined;
  name: string | undefined;
  startOpen: boolean;
}

type Connection = "connecting" | "online" | "reconnecting" | "error";

/** The inbox's pre-chat form, from the `session` event. */
interface PrechatConfig {
  require_email: boolean;
  departments: Array<{ id: number; name: string }>;
}

interface PrechatAnswers {
  name: string;
  email?: string;
  team_id?: number;
}

/** A file on its way to the media store; sent as a message once uploaded. */
interface Upload {
  key: number;
  name: string;
  progress: number;
  /** Why it failed (worded when shown). */
  failure?: unknown;
}

class ChatWidget {
  private socket: Socket | null = null;
  private readonly outbox: ReplyOutbox;
  private readonly seen = new Map<number, Message>();
  private lastId = 0;
  private open = false;
  private unread = 0;
  private connection: Connection = "connecting";
  private connectError = "";
  private state: ConversationState | null = null;
  private queue: QueueInfo | null = null;
  private uploads: Upload[] = [];
  private prechat: PrechatConfig | null = null;
  private conversationId: number | null = null;
  /** The server has this socket's pre-chat answers (or none are asked for). */
  private prechatGiven = false;
  private prechatError = "";
  private readonly prechatSlot: HTMLElement;
  private readonly composer: HTMLFormElement;
  private uploadKey = 0;
  /** The customer's typing, sent at most every 2 s; the agent's, shown for 5 s after each notice. */
  private readonly typingOut = new TypingSender<null>(() => this.socket?.emit("typing"));
  private readonly agentTyping = new TypingShown<null>(() => this.renderTyping());

  private readonly launcher: HTMLButtonElement;
  private readonly panel: HTMLElement;
  private readonly statusLine: HTMLElement;
  private readonly queueLine: HTMLElement;
  private readonly log: HTMLElement;
  private readonly typingLine: HTMLElement;
  private readonly input: HTMLTextAreaElement;
  private readonly sendButton: HTMLButtonElement;
  private readonly fileInput: HTMLInputElement;

  constructor(private readonly cfg: WidgetConfig, private readonly i18n: I18n, shadow: ShadowRoot) {
    const t = i18n.t.bind(i18n);
    this.outbox = new ReplyOutbox(
      this.storageKey("outbox"),
      {
        canSend: () => Boolean(this.socket?.connected) && navigator.onLine,
        send: async (item, timeoutMs) => {
          const socket = this.socket;
          if (!socket) throw new Error("not connected");
          const ack = (await socket.timeout(timeoutMs).emitWithAck("message", {
            client_message_id: item.client_message_id, text: item.text, ...(item.attachments?.length ? { attachments: item.attachments } : {}),
          })) as
            Ack<{ message: Message; conversation?: { id: number; state: ConversationState } }>;
          if (ack.ok && ack.conversation) {
            this.conversationId = ack.conversation.id;
            this.setState(ack.conversation.state);
          }
          return ack;
        },
      },
      (m) => this.show([m]),
      () => this.renderLog(),
    );

    this.launcher = h("button", { class: "launcher", "aria-label": t("widget.open"), onclick: () => this.toggle() });
    this.statusLine = h("div", { class: "status" });
    this.queueLine = h("div", { class: "queue", role: "status" });
    this.log = h("div", { class: "log", "aria-live": "polite" });
    this.typingLine = h("div", { class: "typing", "aria-live": "polite", hidden: true });
    this.input = h("textarea", {
      rows: 1,
      placeholder: t("widget.placeholder"),
      "aria-label": t("widget.placeholder"),
      oninput: () => {
        if (this.input.value.trim()) this.typingOut.poke(null);
      },
      onkeydown: (ev: KeyboardEvent) => {
        if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
          ev.preventDefault();
          this.submit();
        }
      },
    });
    this.sendButton = h("button", { type: "submit", class: "send", "aria-label": t("widget.send"), title: t("widget.send") }, sendIcon());
    this.fileInput = h("input", { type: "file", multiple: true, hidden: true, onchange: () => this.attach() });
    const attachButton = h("button", { type: "button", class: "attach", "aria-label": t("widget.attach"), title: t("widget.attach"), onclick: () => this.fileInput.click() }, clipIcon());
    this.panel = h("div", { class: "panel", role: "dialog", "aria-label": cfg.title ?? t("widget.title"), hidden: true },
      h("div", { class: "header" },
        h("div", { class: "header-text" }, h("div", { class: "title" }, cfg.title ?? t("widget.title")), this.statusLine),
        h("button", { class: "close", "aria-label": t("widget.close"), title: t("widget.close"), onclick: () => this.toggle(false) }, closeIcon())),
      this.queueLine,
      (this.prechatSlot = h("div", { class: "prechat-slot" })),
      this.log,
      this.typingLine,
      (this.composer = h("form", { class: "composer", onsubmit: (ev: Event) => { ev.preventDefault(); this.submit(); } }, this.fileInput, attachButton, this.input, this.sendButton)));
    replaceChildren(shadow, h("style", null, WIDGET_CSS), h("div", { class: "root" }, this.panel, this.launcher));

    window.addEventListener("offline", () => this.setConnection("reconnecting"));
    window.addEventListener("online", () => {
      // Don't wait for a ping timeout: start a fresh connection (hello → sync → flush).
      this.socket?.disconnect();
      this.socket?.connect();
    });
    this.renderAll();
    if (cfg.startOpen || localStorage.getItem(this.storageKey("open")) === "1") this.toggle(true);
  }

  connect(): void {
    const { cfg } = this;
    const socket = io(`${cfg.server}/widget`, {
      // WebSocket only: the widget runs on other sites' origins, and a WebSocket needs no CORS.
      transports: ["websocket"],
      reconnectionDelayMax: 5_000,
      auth: (cb) => {
        const session = localStorage.getItem(this.storageKey("session")) ?? undefined;
        cb({ inbox_id: cfg.inboxId, widget_key: cfg.key, session, name: cfg.name });
      },
    });
    this.socket = socket;
    // The server lost events on their way to this socket (its bus was down): reconnect, which
    // syncs from the last seen message id; spread out so a node's widgets do not ask at once.
    socket.on("resync", () => setTimeout(() => { socket.disconnect(); socket.connect(); }, Math.random() * 2_000));
    socket.on("session", ({ session, conversation_id, prechat }: { session: string; conversation_id: number | null; prechat?: PrechatConfig | null }) => {
      localStorage.setItem(this.storageKey("session"), session);
      this.connectError = "";
      this.prechat = prechat ?? null;
      this.conversationId = conversation_id;
      this.prechatGiven = false;
      const saved = loadAnswers(this.storageKey("prechat"));
      // Answered before (a reload, a reconnect): tell this socket again, without asking.
      if (this.prechat && conversation_id === null && saved) void this.sendPrechat(saved);
      this.renderAll();
      this.setConnection("online");
      void this.sync();
      void this.outbox.flush();
    });
    socket.on("message", (m: Message) => this.show([m], true));
    socket.on("typing", (n: TypingNotice) => {
      if (n?.sender === "agent") this.agentTyping.notice(null);
    });
    socket.on("conversation", (c: { id: number; state: ConversationState }) => this.setState(c.state));
    socket.on("queue", (q: QueueInfo | null) => {
      this.queue = q && q.position > 0 ? q : null;
      this.renderQueue();
    });
    socket.on("disconnect", (reason) => {
      this.setConnection("reconnecting");
      if (reason === "io server disconnect") setTimeout(() => socket.connect(), 1_000);
    });
    socket.on("connect_error", (err: Error) => {
      if (!socket.active) {
        // Refused by the server (bad key, unavailable): show why, and try again later.
        this.connectError = err.message;
        this.setConnection("error");
        setTimeout(() => socket.connect(), 5_000);
      } else {
        this.setConnection("reconnecting");
      }
    });
  }

  toggle(open = !this.open): void {
    this.open = open;
    localStorage.setItem(this.storageKey("open"), open ? "1" : "0");
    if (open) this.unread = 0;
    this.renderAll();
    if (open) {
      this.log.scrollTop = this.log.scrollHeight;
      this.input.focus();
    }
  }

  private async sync(): Promise<void> {
    const socket = this.socket;
    if (!socket) return;
    try {
      for (;;) {
        const res = (await socket.timeout(10_000).emitWithAck("sync", { after: this.lastId })) as Ack<{ messages: Message[] }>;
        if (!res.ok) return;
        this.show(res.messages);
        if (res.messages.length < 200) return;
      }
    } catch {
      // No ack: the next reconnect syncs again.
    }
  }

  /** Sends the pre-chat answers; kept for later sockets once the server took them. */
  private async sendPrechat(answers: PrechatAnswers): Promise<void> {
    const socket = this.socket;
    if (!socket) return;
    try {
      const ack = (await socket.timeout(10_000).emitWithAck("prechat", answers)) as Ack<object>;
      if (ack.ok) {
        localStorage.setItem(this.storageKey("prechat"), JSON.stringify(answers));
        this.prechatGiven = true;
        this.prechatError = "";
      } else {
        localStorage.removeItem(this.storageKey("prechat"));
        this.prechatError = ack.error.message;
      }
    } catch (e) {
      this.prechatError = (e as Error).message;
    }
    this.renderAll();
    if (this.prechatGiven && this.open) this.input.focus();
  }

  /** The form is asked for while the inbox has one, nothing was answered and no conversation exists. */
  private needsPrechat(): boolean {
    return this.prechat !== null && this.conversationId === null && !this.prechatGiven;
  }

  private renderPrechat(): void {
    const need = this.needsPrechat();
    this.prechatSlot.hidden = !need;
    this.log.hidden = need;
    this.composer.hidden = need;
    const config = this.prechat;
    if (!need || !config) {
      replaceChildren(this.prechatSlot);
      return;
    }
    if (this.prechatSlot.firstChild) {
      // Already drawn: keep what the customer typed, refresh only the error line.
      const error = this.prechatSlot.querySelector(".prechat-error");
      if (error) error.textContent = this.prechatError;
      return;
    }
    const t = this.i18n.t.bind(this.i18n);
    const saved = loadAnswers(this.storageKey("prechat"));
    const name = h("input", { name: "name", required: true, maxlength: 200, autocomplete: "name", value: saved?.name ?? this.cfg.name ?? "" });
    const email = h("input", { name: "email", type: "email", required: config.require_email, maxlength: 254, autocomplete: "email", value: saved?.email ?? "" });
    const department = config.departments.length
      ? h("select", { name: "department", required: true },
        h("option", { value: "" }, t("prechat.choose")), ...config.departments.map((d) => h("option", { value: d.id }, d.name)))
      : null;
    const field = (label: string, input: HTMLElement) => h("label", { class: "prechat-field" }, h("span", null, label), input);
    replaceChildren(this.prechatSlot, h("form", {
      class: "prechat",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        const answers: PrechatAnswers = { name: name.value.trim() };
        if (email.value.trim()) answers.email = email.value.trim();
        if (department?.value) answers.team_id = Number(department.value);
        void this.sendPrechat(answers);
      },
    },
      h("p", { class: "prechat-intro" }, t("prechat.intro")),
      field(t("prechat.name"), name),
      field(config.require_email ? t("prechat.email") : t("prechat.emailOptional"), email),
      department ? field(t("prechat.department"), department) : null,
      h("p", { class: "prechat-error", role: "alert" }, this.prechatError),
      h("button", { type: "submit", class: "prechat-start" }, t("prechat.start"))));
  }

  private submit(): void {
    const text = this.input.value.trim();
    if (!text) return;
    this.input.value = "";
    this.typingOut.reset(null);
    this.outbox.enqueue({ client_message_id: newClientMessageId("web"), conversation_id: null, text, created_at: Date.now(), state: "queued" });
  }

  /** Uploads the picked files (`POST /api/v1/widget/uploads`) and sends each as a message. */
  private attach(): void {
    const files = [...(this.fileInput.files ?? [])];
    this.fileInput.value = "";
    const { cfg } = this;
    const session = localStorage.getItem(this.storageKey("session")) ?? "";
    for (const file of files) {
      const up: Upload = { key: ++this.uploadKey, name: file.name || "file", progress: 0 };
      this.uploads.push(up);
      uploadFile(`${cfg.server}/api/v1/widget/uploads`, { "x-widget-inbox": String(cfg.inboxId), "x-widget-key": cfg.key, "x-widget-session": session }, file, up.name, (p) => {
        up.progress = p;
        this.renderLog();
      }).then((attachment) => {
        this.uploads = this.uploads.filter((u) => u !== up);
        this.outbox.enqueue({ client_message_id: newClientMessageId("web"), conversation_id: null, text: "", attachments: [attachment], created_at: Date.now(), state: "queued" });
      }, (e: unknown) => {
        up.failure = e ?? "error";
        this.renderLog();
      });
    }
    this.renderLog();
  }

  private show(list: Message[], live = false): void {
    let added = 0;
    for (const m of list) {
      if (this.seen.has(m.id)) continue;
      this.seen.set(m.id, m);
      this.lastId = Math.max(this.lastId, m.id);
      this.outbox.confirm(m);
      added++;
      if (live && m.direction === "outbound" && !this.open) this.unread++;
      if (m.direction === "outbound" && m.sender_kind === "agent") this.queue = null;
      if (live && m.direction === "outbound") this.agentTyping.clear(null);
    }
    if (added) this.renderAll();
  }

  private setState(state: ConversationState): void {
    this.state = state;
    if (state !== "queued" && state !== "offered" && state !== "bot") this.queue = null;
    this.renderQueue();
  }

  private setConnection(c: Connection): void {
    this.connection = c;
    this.renderStatus();
  }

  private storageKey(what: string): string {
    return `switchboard.widget.${this.cfg.inboxId}.${what}`;
  }

  // ------------------------------------------------------------------------------------------
  // rendering

  private renderAll(): void {
    const t = this.i18n.t.bind(this.i18n);
    this.panel.hidden = !this.open;
    this.launcher.setAttribute("aria-label", t(this.open ? "widget.close" : "widget.open"));
    this.launcher.setAttribute("aria-expanded", String(this.open));
    replaceChildren(this.launcher, this.open ? closeIcon() : chatIcon(), this.unread ? h("span", { class: "badge" }, this.unread) : null);
    this.renderStatus();
    this.renderQueue();
    this.renderPrechat();
    this.renderLog();
  }

  private renderStatus(): void {
    const t = this.i18n.t.bind(this.i18n);
    const text = {
      connecting: t("widget.connecting"),
      online: t("widget.online"),
      reconnecting: t("widget.reconnecting"),
      error: t("widget.cannotConnect", { message: this.connectError }),
    }[this.connection];
    this.statusLine.className = `status status-${this.connection}`;
    this.statusLine.dataset.connection = this.connection;
    replaceChildren(this.statusLine, h("span", { class: "dot" }), text);
  }

  private renderQueue(): void {
    const t = this.i18n.t.bind(this.i18n);
    let text = "";
    if (this.queue) {
      const eta = this.queue.eta_secs;
      const etaText = typeof eta === "number" ? (eta < 60 ? t("widget.queueEtaSoon") : t("widget.queueEta", { minutes: Math.round(eta / 60) })) : "";
      text = [t("widget.queuePosition", { position: this.queue.position }), etaText].filter(Boolean).join(" · ");
    } else if (this.state === "queued" || this.state === "offered") {
      text = t("widget.waiting");
    } else if (this.state === "resolved" || this.state === "closed" || this.state === "abandoned") {
      text = t("widget.resolved");
    }
    this.queueLine.hidden = !text;
    this.queueLine.textContent = text;
  }

  private renderTyping(): void {
    const on = this.agentTyping.active(null);
    this.typingLine.hidden = !on;
    replaceChildren(this.typingLine, on ? this.i18n.t("widget.agentTyping") : null);
  }

  private renderLog(): void {
    const t = this.i18n.t.bind(this.i18n);
    const stick = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 60;
    const stored = [...this.seen.values()].sort((a, b) => a.id - b.id).map((m) =>
      h("div", { class: `msg ${m.direction === "inbound" ? "mine" : "theirs"}`, "data-message-id": m.id },
        m.text || !m.attachments.length ? h("div", { class: "bubble" }, m.text ?? t("message.attachment", { name: m.attachments[0]?.name ?? "" })) : null,
        renderAttachments(m.attachments, `${this.cfg.server}/`, this.i18n),
        h("div", { class: "meta" }, this.i18n.formatTime(m.created_at))));
    const pending = this.outbox.pending(null).map((p) =>
      h("div", { class: "msg mine pending", "data-client-message-id": p.client_message_id },
        p.text || !p.attachments?.length ? h("div", { class: "bubble" }, p.text) : null,
        renderAttachments(p.attachments ?? [], `${this.cfg.server}/`, this.i18n),
        h("div", { class: "meta" }, p.state === "failed" ? t("reply.failed", { message: p.error ?? "" }) : t("widget.sending"))));
    const uploads = this.uploads.map((u) =>
      h("div", { class: `msg mine pending upload${u.failure ? " failed" : ""}`, "data-upload": u.failure ? "failed" : "uploading" },
        h("div", { class: "bubble" }, u.name),
        h("div", { class: "meta", role: u.failure ? "alert" : null },
          u.failure ? uploadErrorText(u.failure, this.i18n) : t("widget.uploading", { percent: Math.round(u.progress * 100) }),
          u.failure ? h("button", { type: "button", class: "dismiss", "aria-label": t("widget.close"), onclick: () => { this.uploads = this.uploads.filter((x) => x !== u); this.renderLog(); } }, "×") : null)));
    replaceChildren(this.log, h("div", { class: "msg theirs welcome" }, h("div", { class: "bubble" }, t("widget.welcome"))), ...stored, ...pending, ...uploads);
    if (stick || pending.length || uploads.length) this.log.scrollTop = this.log.scrollHeight;
  }
}

function loadAnswers(key: string): PrechatAnswers | null {
  try {
    const raw = localStorage.getItem(key);
    const parsed = raw ? (JSON.parse(raw) as PrechatAnswers) : null;
    return parsed && typeof parsed.name === "string" ? parsed : null;
  } catch {
    return null;
  }
}

function svg(path: string): SVGSVGElement {
  const el = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  el.setAttribute("viewBox", "0 0 24 24");
  el.setAttribute("aria-hidden", "true");
  const p = document.createElementNS("http://www.w3.org/2000/svg", "path");
  p.setAttribute("d", path);
  el.appendChild(p);
  return el;
}
const chatIcon = () => svg("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
const closeIcon = () => svg("M6 6l12 12M18 6L6 18");
const sendIcon = () => svg("M3 11l18-8-8 18-2-8-8-2z");

function readConfig(script: HTMLScriptElement | null): WidgetConfig | null {
  if (!script) return null;
  const d = script.dataset;
  const inboxId = Number(d.inbox);
  if (!Number.isInteger(inboxId) || inboxId <= 0 || !d.key) return null;
  const lang = d.lang && (LOCALES as readonly string[]).includes(d.lang) ? (d.lang as Locale) : pickLocale(navigator.languages ?? [navigator.language]);
  return {
    inboxId,
    key: d.key,
    server: (d.server ?? new URL(script.src, location.href).origin).replace(/\/$/, ""),
    locale: lang,
    title: d.title,
    name: d.name,
    startOpen: d.open !== undefined && d.open !== "false",
  };
}

// `document.currentScript` is only set while this script first runs, so read it now.
const currentScript = (document.currentScript as HTMLScriptElement | null)
  ?? document.querySelector<HTMLScriptElement>("script[src*='widget.js'][data-inbox]");
let widget: ChatWidget | null = null;

function boot(): void {
  if (document.getElementById("switchboard-widget")) return; // the snippet was pasted twice
  const cfg = readConfig(currentScript);
  if (!cfg) {
    console.error(new I18n(pickLocale(navigator.languages ?? [])).t("widget.misconfigured"));
    return;
  }
  const host = h("div", { id: "switchboard-widget" });
  document.body.appendChild(host);
  const shadow = host.attachShadow({ mode: "open" });
  widget = new ChatWidget(cfg, new I18n(cfg.locale), shadow);
  widget.connect();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();

/** `SwitchboardWidget.open()` / `.close()` for sites with their own "chat with us" button. */
export function open(): void {
  widget?.toggle(true);
}
export function close(): void {
  widget?.toggle(false);
}

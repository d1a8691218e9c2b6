//! Supervisors watching a conversation from the wallboard: a dialog with the conversation read
//! only (`GET /api/v1/conversations/{id}` and its messages), kept live by joining it over the
//! socket (`watch {conversation_id}`: its `message` and `conversation` events then reach this
//! console), and a reassign control — to an agent with room (`POST .../transfer` for a held
//! conversation, `POST .../assign` for a waiting one) or back to the queue.
//!
//! Owns only the dialog; the console forwards socket events to it.

import type { Socket } from "socket.io-client";
import { h, replaceChildren } from "../shared/dom";
import type { I18n } from "../shared/i18n";
import type { Ack, AgentLoad, ConversationView, Message } from "../shared/protocol";
import type { Rest } from "./rest";

const PAGE = 200;

export class WatchDialog {
  private dialog: HTMLDialogElement | null = null;
  private conversation: ConversationView | null = null;
  private messages = new Map<number, Message>();

  constructor(
    private readonly i18n: I18n,
    private readonly rest: Rest,
    private readonly socket: () => Socket | null,
    /** Agents as the wallboard sees them now (status and load). */
    private readonly agents: () => AgentLoad[],
  ) {}

  async open(conversationId: number): Promise<void> {
    const t = this.i18n.t.bind(this.i18n);
    this.dialog?.close();
    this.messages = new Map();
    this.conversation = null;
    const dialog = h("dialog", { class: "watch-dialog", "data-watch": conversationId, "aria-label": t("watch.title", { id: conversationId }) },
      h("p", { class: "muted" }, t("dialog.loading")));
    this.dialog = dialog;
    document.body.append(dialog);
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (this.dialog === dialog) this.dialog = null;
    });
    dialog.showModal();
    try {
      // Join first, then read: a message in between arrives live and is kept once by id.
      const socket = this.socket();
      if (socket) await socket.timeout(10_000).emitWithAck("watch", { conversation_id: conversationId }).then((a: Ack<object>) => {
        if (!a.ok) throw new Error(a.error.message);
      });
      this.conversation = await this.rest.get<ConversationView>(`/conversations/${conversationId}`);
      for (let after = 0; ;) {
        const page = await this.rest.get<Message[]>(`/conversations/${conversationId}/messages?after=${after}&limit=${PAGE}`);
        for (const m of page) this.messages.set(m.id, m);
        if (page.length < PAGE) break;
        after = page[page.length - 1].id;
      }
      this.render();
    } catch (e) {
      replaceChildren(dialog, h("p", { class: "error", role: "alert" }, t("watch.failed", { message: (e as Error).message })),
        h("div", { class: "dialog-actions" }, h("button", { type: "button", onclick: () => dialog.close() }, t("dialog.close"))));
    }
  }

  /** A `message` event: shown if it belongs to the watched conversation. */
  onMessage(m: Message): void {
    if (!this.dialog || m.conversation_id !== this.conversation?.id) return;
    this.messages.set(m.id, m);
    this.render();
  }

  /** A `conversation` event: its state and holder change in the header. */
  onConversation(c: Partial<ConversationView> & { id: number }): void {
    if (!this.dialog || c.id !== this.conversation?.id) return;
    this.conversation = { ...this.conversation, ...c } as ConversationView;
    this.render();
  }

  private render(): void {
    const dialog = this.dialog;
    const c = this.conversation;
    if (!dialog || !c) return;
    const t = this.i18n.t.bind(this.i18n);
    const holder = this.agents().find((a) => a.user_id === c.assignee_id);
    const log = h("div", { class: "log watch-log" }, ...[...this.messages.values()].sort((a, b) => a.id - b.id).map((m) =>
      h("div", { class: `msg ${m.direction}${m.private ? " note" : ""}`, "data-message-id": m.id },
        h("div", { class: "bubble" }, m.text ?? m.attachments.map((a) => a.name ?? a.kind).join(", ")),
        h("div", { class: "meta" }, `${this.i18n.tDynamic("sender", m.sender_kind)} · ${this.i18n.formatTime(m.created_at)}`))));
    const open = ["queued", "offered", "assigned", "waiting_on_customer"].includes(c.state);
    const targets = this.agents().filter((a) => a.user_id !== c.assignee_id && a.status === "available" && a.load < a.capacity);
    const select = h("select", { class: "reassign-select", "aria-label": t("watch.reassignTo") },
      ...targets.map((a) => h("option", { value: `agent:${a.user_id}` }, `${a.name} (${t("wb.load", { load: a.load, capacity: a.capacity })})`)),
      c.assignee_id !== null ? h("option", { value: "queue" }, t("transfer.queue")) : null);
    const error = h("p", { class: "error watch-error", role: "alert" });
    const reassign = async () => {
      const [kind, id] = select.value.split(":");
      try {
        let updated: ConversationView;
        if (kind === "agent" && c.state === "queued") {
          updated = await this.rest.request<ConversationView>("POST", `/conversations/${c.id}/assign`, { user_id: Number(id) });
        } else {
          const to = kind === "agent" ? { agent: Number(id) } : { queue: true };
          updated = (await this.rest.request<{ conversation: ConversationView }>("POST", `/conversations/${c.id}/transfer`, { to })).conversation;
        }
        this.onConversation(updated);
      } catch (e) {
        replaceChildren(error, t("watch.failed", { message: (e as Error).message }));
      }
    };
    const stick = (() => {
      const old = dialog.querySelector(".watch-log");
      return !old || old.scrollHeight - old.scrollTop - old.clientHeight < 60;
    })();
    replaceChildren(dialog,
      h("h2", null, t("watch.title", { id: c.id })),
      h("p", { class: "muted watch-head" },
        `${c.contact.name ?? c.contact.identifiers[0] ?? ""} · ${c.inbox.name} · ${this.i18n.tDynamic("state", c.state)} · `,
        h("span", { "data-field": "holder" }, holder ? holder.name : t("watch.nobody"))),
      h("p", { class: "muted" }, t("watch.readOnly")),
      log,
      open && select.options.length ? h("div", { class: "watch-actions" }, select,
        h("button", { type: "button", class: "primary reassign-button", onclick: () => void reassign() }, t("watch.reassign"))) : null,
      error,
      h("div", { class: "dialog-actions" }, h("button", { type: "button", class: "watch-close", onclick: () => dialog.close() }, t("dialog.close"))));
    if (stick) log.scrollTop = log.scrollHeight;
  }
}

//! The customer panel's "Previous conversations": the contact's other conversations
//! (`GET /api/v1/contacts/{id}/conversations`, newest first, identifiers masked by the server as
//! the inbox asks), each opening read only in a dialog with its messages
//! (`GET /api/v1/contacts/{id}/conversations/{conversation}/messages`) and its wrap-up, if any.

import { h, replaceChildren } from "../shared/dom";
import type { I18n } from "../shared/i18n";
import type { ConversationView, Message } from "../shared/protocol";
import type { Rest } from "./rest";

const PAGE = 200;

export class ContactHistory {
  constructor(private readonly i18n: I18n, private readonly rest: Rest) {}

  /** The panel section for the open conversation `c`; fills itself in when the list arrives. */
  section(c: ConversationView): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const list = h("ul", { class: "history-list", "data-contact": c.contact.id }, h("li", { class: "muted" }, t("history.loading")));
    void this.rest.get<ConversationView[]>(`/contacts/${c.contact.id}/conversations?limit=20`).then((all) => {
      const others = all.filter((o) => o.id !== c.id);
      replaceChildren(list, ...(others.length ? others.map((o) => h("li", null, h("button", {
        class: "link history-item", "data-history": o.id, onclick: () => void this.open(o),
      }, t("history.item", { id: o.id, state: this.i18n.tDynamic("state", o.state), time: this.i18n.formatTime(o.created_at) }),
      ))) : [h("li", { class: "muted history-none" }, t("history.none"))]));
    }).catch((e: Error) => replaceChildren(list, h("li", { class: "error" }, t("history.failed", { message: e.message }))));
    return h("div", { class: "field history" }, h("div", { class: "field-label" }, t("history.title")), list);
  }

  /** Opens one conversation read only: its messages and wrap-up; nothing in it can be changed. */
  private async open(c: ConversationView): Promise<void> {
    const t = this.i18n.t.bind(this.i18n);
    document.querySelector("dialog.history-dialog")?.remove();
    const log = h("div", { class: "log history-log" }, h("p", { class: "muted" }, t("history.loading")));
    const wrapUp = c.attributes?.wrap_up as Record<string, unknown> | undefined;
    const dialog = h("dialog", { class: "history-dialog", "data-readonly": c.id, "aria-label": t("history.readOnly", { id: c.id }) },
      h("h2", null, t("history.readOnly", { id: c.id })),
      h("p", { class: "muted" }, `${c.inbox.name} · ${this.i18n.tDynamic("state", c.state)}${c.close_reason ? ` · ${this.i18n.tDynamic("reason", c.close_reason)}` : ""}`),
      wrapUp && Object.keys(wrapUp).length ? h("dl", { class: "wrap-up-summary" }, h("dt", null, t("wrapup.summary")),
        ...Object.entries(wrapUp).map(([k, v]) => h("dd", { "data-wrap-key": k }, `${k}: ${String(v)}`))) : null,
      log,
      h("div", { class: "dialog-actions" }, h("button", { type: "button", onclick: () => dialog.close() }, t("dialog.close"))));
    document.body.append(dialog);
    dialog.addEventListener("close", () => dialog.remove());
    dialog.showModal();
    try {
      const messages: Message[] = [];
      for (let after = 0; ;) {
        const page = await this.rest.get<Message[]>(`/contacts/${c.contact.id}/conversations/${c.id}/messages?limit=${PAGE}&after=${after}`);
        messages.push(...page);
        if (page.length < PAGE) break;
        after = page[page.length - 1].id;
      }
      replaceChildren(log, ...messages.map((m) => h("div", { class: `msg ${m.direction}${m.private ? " note" : ""}`, "data-message-id": m.id },
        h("div", { class: "bubble" }, m.text ?? m.attachments.map((a) => a.name ?? a.kind).join(", ")),
        h("div", { class: "meta" }, `${this.i18n.tDynamic("sender", m.sender_kind)} · ${this.i18n.formatTime(m.created_at)}`))));
    } catch (e) {
      replaceChildren(log, h("p", { class: "error" }, t("history.failed", { message: (e as Error).message })));
    }
  }
}

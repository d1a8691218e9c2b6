//! Transfer and internal notes in the conversation view: the "Transfer" button with its dialog
//! (pick an agent, a team's queue or back to the queue, plus an optional note) and the "Add note"
//! form under the reply box. Both go over REST (`POST /api/v1/conversations/{id}/transfer`,
//! `.../notes`); the console then gets the same `conversation` and `message` events as everyone.
//!
//! Owns no conversation state: results are handed back to the console through callbacks.

import { h, replaceChildren } from "../shared/dom";
import type { I18n } from "../shared/i18n";
import type { AgentStatus, ConversationView, Message } from "../shared/protocol";
import { Rest, RestError } from "./rest";

interface TargetAgent {
  id: number;
  name: string;
  status: AgentStatus;
  active_load: number;
  capacity: number;
}

interface TransferTargets {
  agents: TargetAgent[];
  teams: Array<{ id: number; name: string }>;
}

export interface TransferResult {
  conversation: ConversationView;
  note: Message | null;
}

type Target = { agent: number } | { team: number } | { queue: true };

export class TransferUi {
  constructor(
    private readonly i18n: I18n,
    private readonly rest: Rest,
    private readonly transferred: (result: TransferResult) => void,
    private readonly noted: (note: Message) => void,
  ) {}

  /** The head's "Transfer" button; opens the dialog for this conversation. */
  button(c: ConversationView): HTMLElement {
    return h("button", { class: "transfer-button", "data-action": "transfer", onclick: () => void this.open(c) }, this.i18n.t("transfer.button"));
  }

  /** The "Add note" form shown under the reply box. */
  noteForm(c: ConversationView): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const input = h("input", { class: "note-input", name: "note", placeholder: t("note.placeholder"), "aria-label": t("note.placeholder"), autocomplete: "off" });
    const error = h("p", { class: "error note-error", role: "alert" });
    const submit = h("button", { type: "submit", class: "note-button" }, t("note.add"));
    const form = h("form", {
      class: "note-form",
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        const text = input.value.trim();
        if (!text) return;
        submit.disabled = true;
        try {
          const note = await this.rest.request<Message>("POST", `/conversations/${c.id}/notes`, { text });
          input.value = "";
          replaceChildren(error);
          this.noted(note);
        } catch (e) {
          replaceChildren(error, t("note.failed", { message: (e as Error).message }));
        } finally {
          submit.disabled = false;
        }
      },
    }, input, submit);
    return h("div", { class: "note-slot" }, form, error);
  }

  /** Opens the dialog: loads who and where it can go, then transfers on submit. */
  private async open(c: ConversationView): Promise<void> {
    const t = this.i18n.t.bind(this.i18n);
    document.querySelector("dialog.transfer-dialog")?.remove();
    const body = h("div", { class: "transfer-body" }, h("p", { class: "muted" }, t("transfer.loading")));
    const dialog = h("dialog", { class: "transfer-dialog", "aria-label": t("transfer.title", { id: c.id }) },
      h("h2", null, t("transfer.title", { id: c.id })), body);
    dialog.addEventListener("close", () => dialog.remove());
    document.body.appendChild(dialog);
    dialog.showModal();
    let targets: TransferTargets;
    try {
      targets = await this.rest.get<TransferTargets>(`/conversations/${c.id}/transfer-targets`);
    } catch (e) {
      replaceChildren(body, h("p", { class: "error", role: "alert" }, t("transfer.failed", { message: (e as Error).message })),
        h("button", { type: "button", onclick: () => dialog.close() }, t("transfer.cancel")));
      return;
    }
    replaceChildren(body, this.form(c, targets, dialog));
  }

  private form(c: ConversationView, targets: TransferTargets, dialog: HTMLDialogElement): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const target = h("select", { name: "target", class: "transfer-target", "aria-label": t("transfer.to"), required: true },
      targets.agents.length
        ? h("optgroup", { label: t("transfer.agents") }, ...targets.agents.map((a) => h("option", {
          value: `agent:${a.id}`,
          "data-agent": a.id,
        }, t("transfer.agentOption", {
          name: a.name, status: this.i18n.tDynamic("status", a.status), load: a.active_load, capacity: a.capacity,
        }))))
        : null,
      targets.teams.length
        ? h("optgroup", { label: t("transfer.teams") }, ...targets.teams.map((team) => h("option", { value: `team:${team.id}`, "data-team": team.id }, team.name)))
        : null,
      c.state === "queued" ? null : h("option", { value: "queue" }, t("transfer.queue")),
    );
    const note = h("textarea", { name: "note", class: "transfer-note", rows: 3, placeholder: t("transfer.notePlaceholder"), "aria-label": t("transfer.note") });
    const error = h("p", { class: "error transfer-error", role: "alert" });
    const submit = h("button", { type: "submit", class: "primary" }, t("transfer.submit"));
    return h("form", {
      class: "transfer-form",
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        const to = parseTarget(target.value);
        if (!to) return;
        submit.disabled = true;
        try {
          const text = note.value.trim();
          const result = await this.rest.request<TransferResult>("POST", `/conversations/${c.id}/transfer`, { to, note: text || null });
          dialog.close();
          this.transferred(result);
        } catch (e) {
          const message = e instanceof RestError ? e.message : (e as Error).message;
          replaceChildren(error, t("transfer.failed", { message }));
          submit.disabled = false;
        }
      },
    },
      h("label", null, t("transfer.to"), target),
      h("label", null, t("transfer.note"), note),
      error,
      h("div", { class: "dialog-actions" },
        h("button", { type: "button", class: "ghost", onclick: () => dialog.close() }, t("transfer.cancel")),
        submit),
    );
  }
}

function parseTarget(value: string): Target | null {
  if (value === "queue") return { queue: true };
  const [kind, id] = value.split(":");
  const n = Number(id);
  if (!Number.isInteger(n)) return null;
  if (kind === "agent") return { agent: n };
  if (kind === "team") return { team: n };
  return null;
}

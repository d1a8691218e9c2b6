//! The resolve dialog: a close reason and the conversation's team wrap-up form
//! (`GET /api/v1/teams/{id}/wrap-up-template`: text, select and checkbox fields, some required),
//! sent with `POST /api/v1/conversations/{id}/resolve {reason, wrap_up}`. Required fields are
//! checked here before sending (only for the `resolved` reason, as the server does) and the
//! server's own refusals are shown next to the field their path names.
//!
//! Owns no conversation state: the resolved conversation is handed back through a callback.

import { h, replaceChildren } from "../shared/dom";
import type { I18n } from "../shared/i18n";
import { CLOSE_REASONS, type CloseReason, type ConversationView } from "../shared/protocol";
import { Rest, RestError } from "./rest";

export interface WrapUpField {
  key: string;
  label: string;
  kind: "text" | "select" | "checkbox";
  options?: string[];
  required?: boolean;
}

interface TemplateDocument {
  team_id: number;
  template: { fields: WrapUpField[] } | null;
}

type Values = Record<string, string | boolean>;

export class ResolveDialog {
  constructor(
    private readonly i18n: I18n,
    private readonly rest: Rest,
    private readonly resolved: (c: ConversationView) => void,
  ) {}

  button(c: ConversationView): HTMLElement {
    return h("button", { class: "resolve-button", "data-action": "resolve", onclick: () => void this.open(c) }, this.i18n.t("resolve.button"));
  }

  private async open(c: ConversationView): Promise<void> {
    const t = this.i18n.t.bind(this.i18n);
    document.querySelector("dialog.resolve-dialog")?.remove();
    const body = h("div", { class: "resolve-body" }, h("p", { class: "muted" }, t("dialog.loading")));
    const dialog = h("dialog", { class: "resolve-dialog", "aria-label": t("resolve.title", { id: c.id }) },
      h("h2", null, t("resolve.title", { id: c.id })), body);
    document.body.append(dialog);
    dialog.addEventListener("close", () => dialog.remove());
    dialog.showModal();
    let fields: WrapUpField[] = [];
    if (c.team_id != null) {
      try {
        fields = (await this.rest.get<TemplateDocument>(`/teams/${c.team_id}/wrap-up-template`)).template?.fields ?? [];
      } catch (e) {
        replaceChildren(body, h("p", { class: "error", role: "alert" }, t("resolve.failed", { message: (e as Error).message })),
          h("div", { class: "dialog-actions" }, h("button", { type: "button", onclick: () => dialog.close() }, t("dialog.cancel"))));
        return;
      }
    }
    this.renderForm(dialog, body, c, fields);
  }

  private renderForm(dialog: HTMLDialogElement, body: HTMLElement, c: ConversationView, fields: WrapUpField[]): void {
    const t = this.i18n.t.bind(this.i18n);
    const reason = h("select", { class: "reason-select", name: "reason", "aria-label": t("resolve.reason") },
      ...CLOSE_REASONS.map((r) => h("option", { value: r }, t(`reason.${r}`))));
    const errors = new Map<string, HTMLElement>();
    const inputs = new Map<string, HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>();
    const rows = fields.map((f) => {
      const id = `wrap-${c.id}-${f.key}`;
      let input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
      if (f.kind === "select") {
        input = h("select", { id, name: f.key, "data-wrap-field": f.key },
          h("option", { value: "" }, t("wrapup.choose")), ...(f.options ?? []).map((o) => h("option", { value: o }, o)));
      } else if (f.kind === "checkbox") {
        input = h("input", { id, type: "checkbox", name: f.key, "data-wrap-field": f.key });
      } else {
        input = h("textarea", { id, name: f.key, rows: 2, "data-wrap-field": f.key });
      }
      inputs.set(f.key, input);
      const error = h("span", { class: "field-error", "data-error-for": f.key, role: "alert" });
      errors.set(f.key, error);
      const label = h("label", { for: id }, f.label, f.required ? h("span", { class: "required", title: t("wrapup.required") }, " *") : null);
      return h("div", { class: `wrap-field wrap-${f.kind}` }, f.kind === "checkbox" ? h("span", null, input, " ", label) : label,
        f.kind === "checkbox" ? null : input, error);
    });
    const general = h("p", { class: "error resolve-error", role: "alert" });
    const submit = h("button", { type: "submit", class: "primary" }, t("resolve.confirm"));
    const values = (): Values => {
      const out: Values = {};
      for (const f of fields) {
        const input = inputs.get(f.key);
        if (!input) continue;
        if (f.kind === "checkbox") out[f.key] = (input as HTMLInputElement).checked;
        else if (input.value.trim()) out[f.key] = input.value.trim();
      }
      return out;
    };
    const form = h("form", {
      class: "resolve-form",
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        for (const e of errors.values()) replaceChildren(e);
        replaceChildren(general);
        const v = values();
        const chosen = reason.value as CloseReason;
        // Required fields: only when resolving as "resolved", as the server enforces.
        const missing = chosen === "resolved"
          ? fields.filter((f) => f.required && (f.kind === "checkbox" ? v[f.key] !== true : !v[f.key]))
          : [];
        if (missing.length) {
          for (const f of missing) replaceChildren(errors.get(f.key)!, t("wrapup.requiredError"));
          inputs.get(missing[0].key)?.focus();
          return;
        }
        submit.disabled = true;
        try {
          const body = fields.length ? { reason: chosen, wrap_up: v } : { reason: chosen };
          const done = await this.rest.request<ConversationView>("POST", `/conversations/${c.id}/resolve`, body);
          dialog.close();
          this.resolved(done);
        } catch (e) {
          const fieldErrors = e instanceof RestError ? e.errors : [];
          let placed = false;
          for (const fe of fieldErrors) {
            const key = fe.path.replace(/^wrap_up\./, "");
            const slot = errors.get(key);
            if (slot) {
              replaceChildren(slot, fe.message);
              placed = true;
            }
          }
          if (!placed) replaceChildren(general, t("resolve.failed", { message: (e as Error).message }));
        } finally {
          submit.disabled = false;
        }
      },
    },
      h("label", { class: "form-field" }, h("span", { class: "form-label" }, t("resolve.reason")), reason),
      fields.length ? h("fieldset", { class: "wrap-up" }, h("legend", null, t("wrapup.title")), ...rows) : null,
      general,
      h("div", { class: "dialog-actions" },
        h("button", { type: "button", onclick: () => dialog.close() }, t("dialog.cancel")),
        submit));
    replaceChildren(body, form);
    reason.focus();
  }
}

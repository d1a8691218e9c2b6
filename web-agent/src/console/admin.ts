//! The admin screens: inboxes (list, create, edit each platform's settings and secrets, the
//! webhook URL to paste into the platform with a copy button, and the auto-responder flow JSON
//! editor), teams (create, members, the routing policy JSON editor) and users (create, role,
//! capacity, skills with proficiency 1–5 and per-channel capacity caps). Everything goes through the REST API; validation errors are shown as the server
//! words them (with JSON paths where it names them).

import { h, replaceChildren } from "../shared/dom";
import type { I18n, MessageKey } from "../shared/i18n";
import { channelBadge } from "../shared/channels";
import type { ChannelKind, CreatedInbox, Inbox, Role, Team, User } from "../shared/protocol";
import { RestError, type FieldError, type Rest } from "./rest";
import type { Canned } from "./canned";

type Tab = "inboxes" | "teams" | "users" | "canned";
const TABS: Tab[] = ["inboxes", "teams", "users", "canned"];
const KINDS: ChannelKind[] = ["web", "api", "telegram", "whatsapp", "messenger", "instagram", "line", "wechat"];
const ROLES: Role[] = ["agent", "supervisor", "admin"];
/** A user as `GET /users` returns it, with the routing fields the shared type leaves out. */
type AdminUser = User & { skills?: Record<string, number>; channel_capacity?: Partial<Record<ChannelKind, number>> };
/** Kinds whose platform calls `POST|GET /webhooks/{inbox_id}` (docs/channels.md). */
const WEBHOOK_KINDS: ReadonlySet<ChannelKind> = new Set(["telegram", "whatsapp", "messenger", "instagram", "line", "wechat"]);

interface FieldSpec {
  key: string;
  required?: boolean;
  options?: string[];
  bool?: boolean;
  number?: boolean;
}

/** Each platform's settings and secrets, as docs/channels/*.md list them. */
const META_FIELDS = {
  settings: [{ key: "api_base_url" }, { key: "api_version" }],
  secrets: [{ key: "app_secret", required: true }, { key: "verify_token", required: true }, { key: "access_token", required: true }],
};
const FIELDS: Record<ChannelKind, { settings: FieldSpec[]; secrets: FieldSpec[] }> = {
  web: { settings: [], secrets: [] },
  api: { settings: [{ key: "webhook_url" }], secrets: [] },
  telegram: {
    settings: [{ key: "mode", options: ["webhook", "polling"] }, { key: "api_base_url" }, { key: "file_base_url" }, { key: "poll_timeout_secs", number: true }],
    secrets: [{ key: "bot_token", required: true }, { key: "webhook_secret_token" }],
  },
  whatsapp: { settings: [{ key: "phone_number_id", required: true }, ...META_FIELDS.settings], secrets: META_FIELDS.secrets },
  messenger: {
    settings: [{ key: "page_id" }, { key: "human_agent_tag", bool: true }, ...META_FIELDS.settings],
    secrets: META_FIELDS.secrets,
  },
  instagram: {
    settings: [{ key: "page_id" }, { key: "instagram_account_id" }, { key: "human_agent_tag", bool: true }, ...META_FIELDS.settings],
    secrets: META_FIELDS.secrets,
  },
  line: {
    settings: [{ key: "api_base_url" }, { key: "data_api_base_url" }],
    secrets: [{ key: "channel_secret", required: true }, { key: "channel_access_token", required: true }],
  },
  wechat: {
    settings: [{ key: "app_id" }, { key: "api_base_url" }],
    secrets: [{ key: "token", required: true }, { key: "encoding_aes_key" }, { key: "app_secret", required: true }],
  },
};

export class AdminView {
  private tab: Tab = "inboxes";
  private el: HTMLElement | null = null;
  private inboxes: Inbox[] = [];
  private teams: Team[] = [];
  private users: AdminUser[] = [];
  private selectedInbox: number | "new" | null = null;
  private selectedTeam: number | null = null;
  /** The user whose skills and channel caps are open for editing. */
  private selectedUser: number | null = null;
  private created: CreatedInbox | null = null;
  private notice = "";

  constructor(private readonly i18n: I18n, private readonly rest: Rest) {}

  mount(el: HTMLElement): void {
    this.el = el;
    this.render();
    void this.reload();
  }

  unmount(): void {
    this.el = null;
  }

  private async reload(): Promise<void> {
    try {
      [this.inboxes, this.teams, this.users] = await Promise.all([
        this.rest.get<Inbox[]>("/inboxes"), this.rest.get<Team[]>("/teams"), this.rest.get<AdminUser[]>("/users"),
      ]);
      this.notice = "";
    } catch (e) {
      this.notice = this.i18n.t("admin.loadFailed", { message: (e as Error).message });
    }
    this.render();
  }

  private render(): void {
    const el = this.el;
    if (!el) return;
    const t = this.i18n.t.bind(this.i18n);
    const body = { inboxes: () => this.inboxesTab(), teams: () => this.teamsTab(), users: () => this.usersTab(), canned: () => this.cannedTab() }[this.tab]();
    replaceChildren(el,
      h("div", { class: "admin-head" },
        h("h1", null, t("admin.title")),
        h("nav", { class: "tabs", role: "tablist" }, ...TABS.map((tab) => h("button", {
          class: `tab${tab === this.tab ? " active" : ""}`, role: "tab", "aria-selected": String(tab === this.tab), "data-tab": tab,
          onclick: () => { this.tab = tab; this.notice = ""; this.render(); },
        }, t(`admin.tab.${tab}`))))),
      this.notice ? h("p", { class: "error", role: "alert" }, this.notice) : null,
      body,
    );
  }

  // ------------------------------------------------------------------------------------------
  // inboxes

  private inboxesTab(): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const list = h("div", { class: "admin-list" },
      h("button", { class: "primary new-inbox", onclick: () => { this.selectedInbox = "new"; this.created = null; this.render(); } }, t("admin.inbox.new")),
      ...this.inboxes.map((i) => h("button", {
        class: `admin-item${this.selectedInbox === i.id ? " active" : ""}`, "data-inbox": i.id,
        onclick: () => { this.selectedInbox = i.id; this.created = null; this.render(); },
      }, channelBadge(i.kind, this.i18n), h("span", { class: "admin-item-name" }, i.name), h("span", { class: "muted" }, `#${i.id}`))));
    let detail: HTMLElement;
    if (this.selectedInbox === "new") detail = this.inboxForm(null);
    else {
      const inbox = this.inboxes.find((i) => i.id === this.selectedInbox);
      detail = inbox ? this.inboxForm(inbox) : h("p", { class: "empty" }, t("admin.inbox.pick"));
    }
    return h("div", { class: "admin-split" }, list, h("div", { class: "admin-detail" }, detail));
  }

  private inboxForm(inbox: Inbox | null): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const kindSelect = h("select", { name: "kind", disabled: inbox !== null },
      ...KINDS.map((k) => h("option", { value: k, selected: k === (inbox?.kind ?? "telegram") }, this.i18n.tDynamic("channel", k))));
    const name = h("input", { name: "name", required: true, value: inbox?.name ?? "" });
    const team = this.teamSelect(inbox?.team_id ?? null);
    const mask = h("input", { type: "checkbox", name: "mask_identifiers", checked: inbox?.mask_identifiers ?? false });
    const fieldsSlot = h("div", { class: "kind-fields" });
    const error = h("div", { class: "form-error", role: "alert" });
    const drawFields = () => replaceChildren(fieldsSlot, ...this.kindFields(kindSelect.value as ChannelKind, inbox));
    kindSelect.addEventListener("change", drawFields);
    drawFields();

    const form = h("form", {
      class: "admin-form inbox-form",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        void this.saveInbox(inbox, kindSelect.value as ChannelKind, form, error);
      },
    },
      h("h2", null, inbox ? t("admin.inbox.edit", { name: inbox.name }) : t("admin.inbox.new")),
      labeled(t("admin.inbox.kind"), kindSelect),
      labeled(t("admin.name"), name),
      labeled(t("admin.inbox.team"), team),
      h("label", { class: "check" }, mask, t("admin.inbox.mask")),
      fieldsSlot,
      error,
      h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary" }, inbox ? t("admin.save") : t("admin.create"))),
    );
    return h("div", null,
      this.created && inbox && this.created.id === inbox.id ? this.credentials(this.created) : null,
      inbox ? this.endpoints(inbox) : null,
      form,
      inbox ? this.flowEditor(inbox) : null);
  }

  private kindFields(kind: ChannelKind, inbox: Inbox | null): HTMLElement[] {
    const t = this.i18n.t.bind(this.i18n);
    const spec = FIELDS[kind];
    const out: HTMLElement[] = [];
    if (spec.settings.length) {
      out.push(h("h3", null, t("admin.inbox.settings")));
      for (const f of spec.settings) {
        const current = inbox?.settings[f.key];
        let input: HTMLInputElement | HTMLSelectElement;
        if (f.options) {
          input = h("select", { "data-settings": f.key }, h("option", { value: "" }, t("admin.default")),
            ...f.options.map((o) => h("option", { value: o, selected: current === o }, o)));
        } else if (f.bool) {
          input = h("input", { type: "checkbox", "data-settings": f.key, "data-bool": "1", checked: current === true });
        } else {
          input = h("input", { "data-settings": f.key, "data-number": f.number ? "1" : null, value: current == null ? "" : String(current) });
        }
        out.push(labeled(f.key, input, f.required ? t("admin.required") : "", true));
      }
    }
    if (spec.secrets.length) {
      out.push(h("h3", null, t("admin.inbox.secrets")), h("p", { class: "muted" }, t(inbox ? "admin.inbox.secretsKeep" : "admin.inbox.secretsOnce")));
      for (const f of spec.secrets) {
        out.push(labeled(f.key, h("input", { type: "password", autocomplete: "off", "data-secrets": f.key, placeholder: inbox ? t("admin.unchanged") : "" }),
          f.required ? t("admin.required") : "", true));
      }
    }
    if (kind === "web") out.push(this.prechatFields(inbox));
    if (kind === "web" && !inbox) out.push(h("p", { class: "muted" }, t("admin.inbox.webHint")));
    if (kind === "api" && !inbox) out.push(h("p", { class: "muted" }, t("admin.inbox.apiHint")));
    return out;
  }

  /** The web widget's pre-chat form (`settings.prechat`): on/off, email required, departments. */
  private prechatFields(inbox: Inbox | null): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const current = (inbox?.settings.prechat ?? {}) as { enabled?: boolean; require_email?: boolean; departments?: number[] };
    const departments = new Set(current.departments ?? []);
    return h("fieldset", { class: "prechat-settings" },
      h("legend", null, t("admin.prechat.title")),
      h("label", { class: "check" }, h("input", { type: "checkbox", "data-prechat": "enabled", checked: current.enabled === true }), ` ${t("admin.prechat.enabled")}`),
      h("label", { class: "check" }, h("input", { type: "checkbox", "data-prechat": "require_email", checked: current.require_email === true }), ` ${t("admin.prechat.requireEmail")}`),
      h("div", { class: "muted" }, t("admin.prechat.departments")),
      ...(this.teams.length ? this.teams.map((tm) => h("label", { class: "check" },
        h("input", { type: "checkbox", "data-prechat-team": tm.id, checked: departments.has(tm.id) }), ` ${tm.name}`))
        : [h("p", { class: "muted" }, t("admin.prechat.noTeams"))]));
  }

  private async saveInbox(inbox: Inbox | null, kind: ChannelKind, form: HTMLFormElement, error: HTMLElement): Promise<void> {
    const settings: Record<string, unknown> = {};
    const secrets: Record<string, unknown> = {};
    form.querySelectorAll<HTMLInputElement | HTMLSelectElement>("[data-settings]").forEach((input) => {
      const key = input.dataset.settings as string;
      if (input instanceof HTMLInputElement && input.dataset.bool) settings[key] = input.checked;
      else if (input.value.trim() === "") settings[key] = null; // merged on edit: null removes the key
      else settings[key] = input.dataset.number ? Number(input.value) : input.value.trim();
    });
    if (kind === "web") {
      const flag = (key: string) => form.querySelector<HTMLInputElement>(`[data-prechat=${key}]`)?.checked === true;
      const teams = [...form.querySelectorAll<HTMLInputElement>("[data-prechat-team]")].filter((i) => i.checked).map((i) => Number(i.dataset.prechatTeam));
      settings.prechat = { enabled: flag("enabled"), require_email: flag("require_email"), departments: teams };
    }
    form.querySelectorAll<HTMLInputElement>("[data-secrets]").forEach((input) => {
      if (input.value !== "") secrets[input.dataset.secrets as string] = input.value;
    });
    const value = (n: string) => (form.elements.namedItem(n) as HTMLInputElement | HTMLSelectElement).value;
    const teamValue = value("team_id");
    const body: Record<string, unknown> = {
      name: value("name").trim(),
      mask_identifiers: (form.elements.namedItem("mask_identifiers") as HTMLInputElement).checked,
      team_id: teamValue ? Number(teamValue) : null,
    };
    try {
      if (inbox) {
        body.settings = settings;
        if (Object.keys(secrets).length) body.secrets = secrets;
        await this.rest.request<Inbox>("PATCH", `/inboxes/${inbox.id}`, body);
        this.created = null;
        this.selectedInbox = inbox.id;
      } else {
        const created = await this.rest.request<CreatedInbox>("POST", "/inboxes", {
          ...body, kind,
          settings: Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== null)),
          secrets,
        });
        this.created = created;
        this.selectedInbox = created.id;
      }
      await this.reload();
    } catch (e) {
      showError(error, e);
    }
  }

  /** The addresses an inbox is reached at: what to paste into the platform or the site. */
  private endpoints(inbox: Inbox): HTMLElement | null {
    const t = this.i18n.t.bind(this.i18n);
    const origin = location.origin;
    if (WEBHOOK_KINDS.has(inbox.kind)) {
      return h("div", { class: "endpoint" },
        h("div", { class: "field-label" }, t("admin.inbox.webhookUrl")),
        copyable(`${origin}/webhooks/${inbox.id}`, "webhook-url", this.i18n),
        h("p", { class: "muted" }, t("admin.inbox.webhookHint")));
    }
    if (inbox.kind === "api") {
      return h("div", { class: "endpoint" },
        h("div", { class: "field-label" }, t("admin.inbox.ingestUrl")),
        copyable(`${origin}/api/v1/channels/api/${inbox.id}/messages`, "ingest-url", this.i18n));
    }
    if (inbox.kind === "web") {
      const key = String(inbox.settings.widget_key ?? "");
      return h("div", { class: "endpoint" },
        h("div", { class: "field-label" }, t("admin.inbox.snippet")),
        copyable(`<script src="${origin}/widget.js" data-inbox="${inbox.id}" data-key="${key}" async></script>`, "snippet", this.i18n));
    }
    return null;
  }

  private credentials(c: CreatedInbox): HTMLElement | null {
    const t = this.i18n.t.bind(this.i18n);
    if (!c.inbound_token && !c.webhook_secret) return null;
    return h("div", { class: "credentials", role: "status" },
      h("strong", null, t("admin.inbox.credentials")),
      c.inbound_token ? h("div", null, h("div", { class: "field-label" }, "inbound_token"), copyable(c.inbound_token, "inbound-token", this.i18n)) : null,
      c.webhook_secret ? h("div", null, h("div", { class: "field-label" }, "webhook_secret"), copyable(c.webhook_secret, "webhook-secret", this.i18n)) : null);
  }

  /** The inbox's auto-responder flow as JSON: load, validate on the server, save, remove. */
  private flowEditor(inbox: Inbox): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const area = h("textarea", { class: "json-editor flow-json", rows: 12, spellcheck: "false", "aria-label": t("admin.flow.title") });
    const status = h("div", { class: "editor-status", role: "status" });
    const load = async () => {
      try {
        const res = await this.rest.get<{ flow: unknown }>(`/inboxes/${inbox.id}/flow`);
        area.value = res.flow == null ? "" : JSON.stringify(res.flow, null, 2);
        replaceChildren(status, res.flow == null ? t("admin.flow.none") : "");
      } catch (e) {
        showError(status, e);
      }
    };
    const save = async () => {
      let flow: unknown;
      try {
        flow = JSON.parse(area.value);
      } catch (e) {
        replaceChildren(status, h("p", { class: "error" }, t("admin.json.invalid", { message: (e as Error).message })));
        return;
      }
      try {
        const res = await this.rest.request<{ flow: unknown }>("PUT", `/inboxes/${inbox.id}/flow`, { flow });
        if (res && res.flow !== undefined) area.value = JSON.stringify(res.flow, null, 2);
        replaceChildren(status, h("p", { class: "ok" }, t("admin.saved")));
      } catch (e) {
        showError(status, e);
      }
    };
    const remove = async () => {
      try {
        await this.rest.request("DELETE", `/inboxes/${inbox.id}/flow`);
        area.value = "";
        replaceChildren(status, h("p", { class: "ok" }, t("admin.flow.removed")));
      } catch (e) {
        showError(status, e);
      }
    };
    void load();
    return h("section", { class: "flow-editor" },
      h("h3", null, t("admin.flow.title")),
      h("p", { class: "muted" }, t("admin.flow.hint")),
      area,
      h("div", { class: "form-actions" },
        h("button", { class: "primary flow-save", onclick: () => void save() }, t("admin.save")),
        h("button", { class: "ghost flow-delete", onclick: () => void remove() }, t("admin.flow.remove"))),
      status);
  }

  private teamSelect(current: number | null): HTMLSelectElement {
    return h("select", { name: "team_id" }, h("option", { value: "" }, this.i18n.t("admin.inbox.noTeam")),
      ...this.teams.map((tm) => h("option", { value: tm.id, selected: tm.id === current }, tm.name)));
  }

  // ------------------------------------------------------------------------------------------
  // teams

  private teamsTab(): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const name = h("input", { name: "team-name", required: true, placeholder: t("admin.name") });
    const error = h("div", { class: "form-error", role: "alert" });
    const create = h("form", {
      class: "inline-form new-team",
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        try {
          const team = await this.rest.request<Team>("POST", "/teams", { name: name.value.trim() });
          this.selectedTeam = team.id;
          await this.reload();
        } catch (e) {
          showError(error, e);
        }
      },
    }, name, h("button", { type: "submit", class: "primary" }, t("admin.team.create")), error);
    const list = h("div", { class: "admin-list" }, create,
      ...this.teams.map((tm) => h("button", {
        class: `admin-item${this.selectedTeam === tm.id ? " active" : ""}`, "data-team": tm.id,
        onclick: () => { this.selectedTeam = tm.id; this.render(); },
      }, h("span", { class: "admin-item-name" }, tm.name), h("span", { class: "muted" }, `#${tm.id}`))));
    const team = this.teams.find((tm) => tm.id === this.selectedTeam);
    return h("div", { class: "admin-split" }, list,
      h("div", { class: "admin-detail" }, team ? this.teamDetail(team) : h("p", { class: "empty" }, t("admin.team.pick"))));
  }

  private teamDetail(team: Team): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const members = h("ul", { class: "members" });
    const memberError = h("div", { class: "form-error", role: "alert" });
    const loadMembers = async () => {
      try {
        const list = await this.rest.get<User[]>(`/teams/${team.id}/members`);
        replaceChildren(members, ...(list.length ? list.map((u) => h("li", { "data-user": u.id }, u.name, h("span", { class: "muted" }, ` ${u.email}`)))
          : [h("li", { class: "muted" }, t("admin.team.noMembers"))]));
      } catch (e) {
        showError(memberError, e);
      }
    };
    const who = h("select", { name: "member", "aria-label": t("admin.team.addMember") },
      ...this.users.map((u) => h("option", { value: u.id }, `${u.name} (${u.email})`)));
    const add = h("form", {
      class: "inline-form add-member",
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        try {
          await this.rest.request("POST", `/teams/${team.id}/members`, { user_id: Number(who.value) });
          replaceChildren(memberError);
          await loadMembers();
        } catch (e) {
          showError(memberError, e);
        }
      },
    }, who, h("button", { type: "submit", class: "ghost" }, t("admin.team.addMember")));

    const area = h("textarea", { class: "json-editor policy-json", rows: 12, spellcheck: "false", "aria-label": t("admin.policy.title") });
    const status = h("div", { class: "editor-status", role: "status" });
    const loadPolicy = async () => {
      try {
        area.value = JSON.stringify(await this.rest.get<unknown>(`/teams/${team.id}/policy`), null, 2);
      } catch (e) {
        showError(status, e);
      }
    };
    const savePolicy = async () => {
      let policy: unknown;
      try {
        policy = JSON.parse(area.value);
      } catch (e) {
        replaceChildren(status, h("p", { class: "error" }, t("admin.json.invalid", { message: (e as Error).message })));
        return;
      }
      try {
        area.value = JSON.stringify(await this.rest.request<unknown>("PUT", `/teams/${team.id}/policy`, policy), null, 2);
        replaceChildren(status, h("p", { class: "ok" }, t("admin.saved")));
      } catch (e) {
        showError(status, e);
      }
    };
    void loadMembers();
    void loadPolicy();
    const wrapArea = h("textarea", { class: "json-editor wrapup-json", rows: 10, spellcheck: "false", "aria-label": t("admin.wrapup.title") });
    const wrapStatus = h("div", { class: "editor-status wrapup-status", role: "status" });
    const loadWrapUp = async () => {
      try {
        const doc = await this.rest.get<{ template: unknown }>(`/teams/${team.id}/wrap-up-template`);
        wrapArea.value = JSON.stringify(doc.template ?? { fields: [] }, null, 2);
      } catch (e) {
        showError(wrapStatus, e);
      }
    };
    const saveWrapUp = async () => {
      let template: unknown;
      try {
        template = JSON.parse(wrapArea.value);
      } catch (e) {
        replaceChildren(wrapStatus, h("p", { class: "error" }, t("admin.json.invalid", { message: (e as Error).message })));
        return;
      }
      try {
        const doc = await this.rest.request<{ template: unknown }>("PUT", `/teams/${team.id}/wrap-up-template`, template);
        wrapArea.value = JSON.stringify(doc.template ?? { fields: [] }, null, 2);
        replaceChildren(wrapStatus, h("p", { class: "ok" }, t("admin.saved")));
      } catch (e) {
        showError(wrapStatus, e);
      }
    };
    void loadWrapUp();
    return h("div", { class: "team-detail", "data-team": team.id },
      h("h2", null, team.name),
      h("h3", null, t("admin.team.members")), members, add, memberError,
      h("section", { class: "policy-editor" },
        h("h3", null, t("admin.policy.title")),
        h("p", { class: "muted" }, t("admin.policy.hint")),
        area,
        h("div", { class: "form-actions" }, h("button", { class: "primary policy-save", onclick: () => void savePolicy() }, t("admin.save"))),
        status),
      h("section", { class: "wrapup-editor" },
        h("h3", null, t("admin.wrapup.title")),
        h("p", { class: "muted" }, t("admin.wrapup.hint")),
        wrapArea,
        h("div", { class: "form-actions" }, h("button", { class: "primary wrapup-save", onclick: () => void saveWrapUp() }, t("admin.save"))),
        wrapStatus));
  }

  // ------------------------------------------------------------------------------------------
  // canned responses (supervisors may manage them too, over the same API)

  private cannedTab(): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const list = h("div", { class: "canned-admin-list" }, h("p", { class: "muted" }, t("dialog.loading")));
    const error = h("div", { class: "form-error", role: "alert" });
    const fields = (c?: Canned) => {
      const shortcut = h("input", { name: "shortcut", required: true, value: c?.shortcut ?? "", maxlength: 64, autocomplete: "off" });
      const title = h("input", { name: "title", required: true, value: c?.title ?? "", maxlength: 200 });
      const body = h("textarea", { name: "body", required: true, rows: 3 });
      body.value = c?.body ?? "";
      return { shortcut, title, body, read: () => ({ shortcut: shortcut.value.trim(), title: title.value.trim(), body: body.value }) };
    };
    const load = async () => {
      try {
        const all = await this.rest.get<Canned[]>("/canned-responses");
        replaceChildren(list, ...(all.length ? all.map((c) => {
          const f = fields(c);
          const rowError = h("div", { class: "form-error", role: "alert" });
          return h("form", {
            class: "admin-form canned-row", "data-canned": c.shortcut,
            onsubmit: async (ev: Event) => {
              ev.preventDefault();
              try {
                await this.rest.request("PUT", `/canned-responses/${c.id}`, f.read());
                await load();
              } catch (e) {
                showError(rowError, e);
              }
            },
          },
            labeled(t("admin.canned.shortcut"), f.shortcut), labeled(t("admin.canned.title"), f.title), labeled(t("admin.canned.body"), f.body),
            h("div", { class: "form-actions" },
              h("button", { type: "submit", class: "primary" }, t("admin.canned.save")),
              h("button", {
                type: "button", class: "ghost canned-delete",
                onclick: async () => {
                  try {
                    await this.rest.request("DELETE", `/canned-responses/${c.id}`);
                    await load();
                  } catch (e) {
                    showError(rowError, e);
                  }
                },
              }, t("admin.canned.delete"))),
            rowError);
        }) : [h("p", { class: "empty" }, t("admin.canned.empty"))]));
      } catch (e) {
        showError(list, e);
      }
    };
    const f = fields();
    const create = h("form", {
      class: "admin-form canned-new",
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        try {
          await this.rest.request("POST", "/canned-responses", f.read());
          f.shortcut.value = "";
          f.title.value = "";
          f.body.value = "";
          replaceChildren(error);
          await load();
        } catch (e) {
          showError(error, e);
        }
      },
    },
      h("h3", null, t("admin.canned.new")),
      labeled(t("admin.canned.shortcut"), f.shortcut), labeled(t("admin.canned.title"), f.title), labeled(t("admin.canned.body"), f.body),
      h("p", { class: "muted" }, t("admin.canned.bodyHint")),
      h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary canned-create" }, t("admin.canned.create"))),
      error);
    void load();
    return h("div", { class: "admin-split canned-admin" }, h("div", { class: "admin-list" }, create), h("div", { class: "admin-detail" }, list));
  }

  // ------------------------------------------------------------------------------------------
  // users

  private usersTab(): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const roleSelect = (current: Role, name = "role") => h("select", { name, "aria-label": t("admin.user.role") },
      ...ROLES.map((r) => h("option", { value: r, selected: r === current }, t(`role.${r}`))));
    const rows = this.users.flatMap((u) => {
      const role = roleSelect(u.role);
      const capacity = h("input", { type: "number", min: 0, max: 1000, name: "capacity", value: u.capacity, "aria-label": t("admin.user.capacity") });
      const error = h("span", { class: "form-error", role: "alert" });
      const save = h("button", {
        class: "ghost small user-save",
        onclick: async () => {
          const patch: Record<string, unknown> = {};
          if (role.value !== u.role) patch.role = role.value;
          if (Number(capacity.value) !== u.capacity) patch.capacity = Number(capacity.value);
          if (!Object.keys(patch).length) return;
          try {
            await this.rest.request<User>("PATCH", `/users/${u.id}`, patch);
            await this.reload();
          } catch (e) {
            showError(error, e);
          }
        },
      }, t("admin.save"));
      const open = this.selectedUser === u.id;
      const skills = h("button", {
        type: "button", class: `ghost small user-skills${open ? " active" : ""}`, "aria-expanded": String(open),
        onclick: () => { this.selectedUser = open ? null : u.id; this.render(); },
      }, t("admin.user.skills"));
      const row = h("tr", { "data-user": u.id },
        h("td", null, u.name), h("td", null, u.email), h("td", null, role), h("td", null, capacity),
        h("td", null, h("span", { class: `status-dot s-${u.status}` }), ` ${t(`status.${u.status}`)}`),
        h("td", null, save, skills, error));
      return open ? [row, h("tr", { class: "user-skills-row", "data-user-skills": u.id }, h("td", { colspan: 6 }, this.skillsEditor(u)))] : [row];
    });
    const email = h("input", { name: "email", type: "email", required: true, placeholder: t("login.email") });
    const name = h("input", { name: "name", required: true, placeholder: t("admin.name") });
    const password = h("input", { name: "password", type: "password", required: true, minlength: 10, autocomplete: "new-password", placeholder: t("login.password") });
    const capacity = h("input", { name: "capacity", type: "number", min: 0, max: 1000, placeholder: t("admin.user.capacity") });
    const role = roleSelect("agent");
    const error = h("div", { class: "form-error", role: "alert" });
    const create = h("form", {
      class: "inline-form new-user",
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        const body: Record<string, unknown> = { email: email.value.trim(), name: name.value.trim(), role: role.value, password: password.value };
        if (capacity.value !== "") body.capacity = Number(capacity.value);
        try {
          await this.rest.request<User>("POST", "/users", body);
          await this.reload();
        } catch (e) {
          showError(error, e);
        }
      },
    }, email, name, password, role, capacity, h("button", { type: "submit", class: "primary" }, t("admin.user.create")), error);
    return h("div", { class: "users-tab" },
      h("h2", null, t("admin.user.new")), create,
      h("table", { class: "wb-table users-table" },
        h("thead", null, h("tr", null, ...(["admin.name", "login.email", "admin.user.role", "admin.user.capacity", "status.label", "admin.actions"] as MessageKey[]).map((k) => h("th", null, t(k))))),
        h("tbody", null, ...rows)));
  }

  /** An agent's skills (name + proficiency 1–5, rows added and removed) and per-channel caps. */
  private skillsEditor(u: AdminUser): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const rows = h("div", { class: "skill-rows" });
    const empty = h("p", { class: "muted skills-empty" }, t("admin.user.noSkills"));
    const sync = () => { empty.hidden = rows.childElementCount > 0; };
    const addRow = (name = "", level: number | string = 3) => {
      const row: HTMLElement = h("div", { class: "skill-row" },
        h("input", { name: "skill-name", value: name, maxlength: 64, autocomplete: "off", "aria-label": t("admin.user.skillName"), placeholder: t("admin.user.skillName") }),
        h("input", { name: "skill-level", type: "number", min: 1, max: 5, step: 1, value: level, "aria-label": t("admin.user.proficiency") }),
        h("button", { type: "button", class: "ghost small skill-remove", onclick: () => { row.remove(); sync(); } }, t("admin.user.removeSkill")));
      rows.append(row);
      sync();
      return row;
    };
    for (const [name, level] of Object.entries(u.skills ?? {})) addRow(name, level);
    sync();
    const caps = h("div", { class: "channel-caps" }, ...KINDS.map((k) => h("label", { class: "form-field channel-cap" },
      h("span", { class: "form-label" }, channelBadge(k, this.i18n), ` ${this.i18n.tDynamic("channel", k)}`),
      h("input", { type: "number", min: 0, max: 1000, "data-channel-cap": k, value: u.channel_capacity?.[k] ?? null }))));
    const status = h("div", { class: "editor-status skills-status", role: "status" });
    const form = h("form", {
      class: "admin-form skills-form", novalidate: true, "data-user": u.id,
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        const skills: Record<string, number> = {};
        rows.querySelectorAll<HTMLElement>(".skill-row").forEach((r) => {
          const name = (r.querySelector("[name=skill-name]") as HTMLInputElement).value.trim();
          const level = (r.querySelector("[name=skill-level]") as HTMLInputElement).value;
          if (name) skills[name] = level === "" ? 0 : Number(level);
        });
        const channelCapacity: Record<string, number> = {};
        form.querySelectorAll<HTMLInputElement>("[data-channel-cap]").forEach((input) => {
          if (input.value.trim() !== "") channelCapacity[input.dataset.channelCap as string] = Number(input.value);
        });
        try {
          await this.rest.request<User>("PATCH", `/users/${u.id}`, { skills, channel_capacity: channelCapacity });
          await this.reload();
          // The editor is redrawn from the server's answer; say so in the new one.
          this.el?.querySelector(`.skills-form[data-user="${u.id}"] .skills-status`)?.replaceChildren(h("p", { class: "ok" }, t("admin.saved")));
        } catch (e) {
          showError(status, e);
        }
      },
    },
      h("h3", null, t("admin.user.skillsTitle", { name: u.name })),
      rows, empty,
      h("div", { class: "form-actions" }, h("button", { type: "button", class: "ghost small skill-add", onclick: () => { (addRow().querySelector("input") as HTMLInputElement).focus(); } }, t("admin.user.addSkill"))),
      h("h3", null, t("admin.user.channelCaps")),
      h("p", { class: "muted" }, t("admin.user.channelCapsHint")),
      caps,
      h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary skills-save" }, t("admin.save"))),
      status);
    return form;
  }
}

/** A form field; `key` labels are the setting's own name (as the channel docs spell it). */
function labeled(label: string, input: HTMLElement, note = "", key = false): HTMLElement {
  return h("label", { class: "form-field" }, h("span", { class: `form-label${key ? " key" : ""}` }, label, note ? h("span", { class: "muted" }, ` · ${note}`) : null), input);
}

/** A read-only value with a copy button (clipboard API, else select + execCommand). */
function copyable(value: string, testId: string, i18n: I18n): HTMLElement {
  const input = h("input", { class: "copy-value", readonly: true, value, "data-testid": testId, "aria-label": value });
  const button = h("button", {
    type: "button", class: "ghost small copy",
    onclick: async () => {
      let ok = false;
      try {
        await navigator.clipboard.writeText(value);
        ok = true;
      } catch {
        input.select();
        ok = document.execCommand("copy");
      }
      button.textContent = i18n.t(ok ? "admin.copied" : "admin.copyFailed");
      setTimeout(() => { button.textContent = i18n.t("admin.copy"); }, 2_000);
    },
  }, i18n.t("admin.copy"));
  return h("div", { class: "copy-row" }, input, button);
}

/** Shows a REST error: its message and, when the server named them, each JSON path's error. */
function showError(el: HTMLElement, e: unknown): void {
  const err = e as Error;
  const errors: FieldError[] = e instanceof RestError ? e.errors : [];
  replaceChildren(el,
    h("p", { class: "error" }, err.message),
    errors.length ? h("ul", { class: "path-errors" }, ...errors.map((fe) => h("li", null, h("code", null, fe.path), ` ${fe.message}`))) : null);
}

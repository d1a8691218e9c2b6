//! Canned responses in the reply box: typing `/` at the start of a word opens a picker of the
//! tenant's canned responses (`GET /api/v1/canned-responses`), filtered by what follows the
//! slash (shortcut or title); ↑/↓ move, Enter or Tab inserts, Escape closes. The inserted body
//! has `{{contact.name}}` and `{{agent.name}}` filled in.
//!
//! Owns only the list and the popup; the reply box stays the console's.

import { h, replaceChildren } from "../shared/dom";
import type { I18n } from "../shared/i18n";
import type { Rest } from "./rest";

export interface Canned {
  id: number;
  shortcut: string;
  title: string;
  body: string;
}

/** How long a loaded list is used before it is fetched again (admins may have changed it). */
const FRESH_MS = 60_000;
const MAX_SHOWN = 8;

/** Fills `{{contact.name}}`-style placeholders; unknown ones are left as they are. */
export function fillPlaceholders(body: string, values: Record<string, string>): string {
  return body.replace(/\{\{\s*([\w.]+)\s*\}\}/g, (whole, name: string) => values[name] ?? whole);
}

export class CannedPicker {
  private list: Canned[] = [];
  private loadedAt = 0;
  private loading: Promise<void> | null = null;

  constructor(private readonly i18n: I18n, private readonly rest: Rest) {}

  /** Loads the list once and again after `FRESH_MS`; failures leave the last list. */
  private refresh(): Promise<void> {
    if (Date.now() - this.loadedAt < FRESH_MS) return Promise.resolve();
    this.loading ??= this.rest.get<Canned[]>("/canned-responses")
      .then((list) => { this.list = list; this.loadedAt = Date.now(); })
      .catch(() => {})
      .finally(() => { this.loading = null; });
    return this.loading;
  }

  /**
   * Wires the picker to a reply box. Returns the popup element (place it above the box) and a
   * keydown handler the box must call first: it returns true when the picker used the key.
   */
  attach(textarea: HTMLTextAreaElement, values: () => Record<string, string>): { popup: HTMLElement; onKeyDown: (ev: KeyboardEvent) => boolean } {
    const t = this.i18n.t.bind(this.i18n);
    const popup = h("div", { class: "canned-picker", role: "listbox", "aria-label": t("canned.title"), hidden: true });
    let shown: Canned[] = [];
    let selected = 0;
    let open = false;

    /** The `/word` being typed right before the caret, if any. */
    const query = (): { start: number; text: string } | null => {
      const caret = textarea.selectionStart ?? textarea.value.length;
      const before = textarea.value.slice(0, caret);
      const m = /(^|\s)\/([\w-]*)$/.exec(before);
      return m ? { start: caret - m[2].length - 1, text: m[2].toLowerCase() } : null;
    };

    const close = () => {
      open = false;
      popup.hidden = true;
      replaceChildren(popup);
    };

    const render = () => {
      const q = query();
      if (!q) return close();
      shown = this.list
        .filter((c) => c.shortcut.includes(q.text) || c.title.toLowerCase().includes(q.text))
        .sort((a, b) => Number(!b.shortcut.startsWith(q.text)) - Number(!a.shortcut.startsWith(q.text)) || a.shortcut.localeCompare(b.shortcut))
        .slice(0, MAX_SHOWN);
      selected = Math.min(selected, Math.max(0, shown.length - 1));
      open = true;
      popup.hidden = false;
      replaceChildren(popup, ...(shown.length ? shown.map((c, i) => h("div", {
        class: `canned-item${i === selected ? " selected" : ""}`,
        role: "option",
        "aria-selected": String(i === selected),
        "data-shortcut": c.shortcut,
        onmousedown: (ev: MouseEvent) => { ev.preventDefault(); insert(c); },
      }, h("span", { class: "canned-shortcut" }, `/${c.shortcut}`), h("span", { class: "canned-title" }, c.title),
        h("span", { class: "canned-body muted" }, c.body))) : [h("div", { class: "canned-empty muted" }, t("canned.none"))]));
    };

    const insert = (c: Canned) => {
      const q = query();
      if (!q) return close();
      const caret = textarea.selectionStart ?? textarea.value.length;
      const text = fillPlaceholders(c.body, values());
      textarea.value = textarea.value.slice(0, q.start) + text + textarea.value.slice(caret);
      const at = q.start + text.length;
      textarea.setSelectionRange(at, at);
      close();
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
      textarea.focus();
    };

    textarea.addEventListener("input", () => {
      if (!query()) return close();
      selected = 0;
      render();
      void this.refresh().then(() => { if (open || query()) render(); });
    });
    textarea.addEventListener("blur", () => setTimeout(close, 150));

    const onKeyDown = (ev: KeyboardEvent): boolean => {
      if (!open || ev.isComposing) return false;
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        if (!shown.length) return false;
        ev.preventDefault();
        selected = (selected + (ev.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length;
        render();
        return true;
      }
      if ((ev.key === "Enter" || ev.key === "Tab") && shown.length) {
        ev.preventDefault();
        insert(shown[selected]);
        return true;
      }
      if (ev.key === "Escape") {
        ev.preventDefault();
        close();
        return true;
      }
      return false;
    };
    return { popup, onKeyDown };
  }
}

//! The console's attachments tray: files picked with the attach button, dropped onto the
//! conversation or pasted (images) into the reply box are uploaded at once to
//! `POST /api/v1/uploads` (progress shown; 413 "file too large", 415 "type not allowed"), wait
//! in the tray under the reply box, and leave with the next reply (an attachment alone needs no
//! text). Each conversation has its own tray.

import "./offers-attachments.css";
import { h, replaceChildren } from "../shared/dom";
import type { I18n } from "../shared/i18n";
import type { Attachment } from "../shared/protocol";
import { clipIcon, fileIcon, formatSize, uploadErrorText, uploadFile } from "../shared/attachments";

interface TrayItem {
  key: number;
  name: string;
  size: number;
  progress: number;
  state: "uploading" | "ready" | "failed";
  /** Why the upload failed; worded at render time, so a language switch rewords it. */
  failure?: unknown;
  attachment?: Attachment;
  /** An object URL of a picked image, for the tray's thumbnail. */
  preview?: string;
}

let nextKey = 1;

export class AttachTray {
  private readonly items = new Map<number, TrayItem[]>();
  private shown: { id: number; el: HTMLElement } | null = null;

  constructor(private readonly i18n: I18n, private readonly token: () => string | null) {}

  /** The tray of one conversation (re-rendered in place as uploads progress). */
  element(conversationId: number): HTMLElement {
    const el = h("div", { class: "attach-tray", "data-tray": conversationId });
    this.shown = { id: conversationId, el };
    this.render();
    return el;
  }

  /** The attach button with its hidden file input. */
  button(conversationId: number, disabled: boolean): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const input = h("input", {
      type: "file", multiple: true, hidden: true, class: "attach-input",
      onchange: () => {
        this.add(conversationId, [...(input.files ?? [])]);
        input.value = "";
      },
    });
    return h("span", { class: "attach" }, input,
      h("button", { type: "button", class: "ghost attach-button", title: t("attach.button"), "aria-label": t("attach.button"), disabled, onclick: () => input.click() }, clipIcon()));
  }

  /** Image files pasted into the reply box. */
  onPaste(conversationId: number, ev: ClipboardEvent): void {
    const files = [...(ev.clipboardData?.files ?? [])];
    if (!files.length) return;
    ev.preventDefault();
    this.add(conversationId, files);
  }

  uploading(conversationId: number): boolean {
    return (this.items.get(conversationId) ?? []).some((i) => i.state === "uploading");
  }

  hasReady(conversationId: number): boolean {
    return (this.items.get(conversationId) ?? []).some((i) => i.state === "ready");
  }

  /** The uploaded attachments, taken out of the tray to go with a reply. */
  take(conversationId: number): Attachment[] {
    const list = this.items.get(conversationId) ?? [];
    const ready = list.filter((i) => i.state === "ready");
    for (const i of ready) if (i.preview) URL.revokeObjectURL(i.preview);
    this.items.set(conversationId, list.filter((i) => i.state !== "ready"));
    this.render();
    return ready.map((i) => i.attachment).filter((a): a is Attachment => Boolean(a));
  }

  add(conversationId: number, files: File[]): void {
    const list = this.items.get(conversationId) ?? [];
    this.items.set(conversationId, list);
    for (const file of files) {
      const item: TrayItem = {
        key: nextKey++, name: file.name || "file", size: file.size, progress: 0, state: "uploading",
        preview: file.type.startsWith("image/") ? URL.createObjectURL(file) : undefined,
      };
      list.push(item);
      const token = this.token();
      uploadFile("/api/v1/uploads", token ? { authorization: `Bearer ${token}` } : {}, file, item.name, (p) => {
        item.progress = p;
        this.render();
      }).then((attachment) => {
        item.state = "ready";
        item.attachment = attachment;
      }, (e: unknown) => {
        item.state = "failed";
        item.failure = e;
      }).finally(() => this.render());
    }
    this.render();
  }

  private remove(conversationId: number, key: number): void {
    const list = this.items.get(conversationId) ?? [];
    const gone = list.find((i) => i.key === key);
    if (gone?.preview) URL.revokeObjectURL(gone.preview);
    this.items.set(conversationId, list.filter((i) => i.key !== key));
    this.render();
  }

  private render(): void {
    const shown = this.shown;
    if (!shown) return;
    const t = this.i18n.t.bind(this.i18n);
    const list = this.items.get(shown.id) ?? [];
    shown.el.hidden = !list.length;
    replaceChildren(shown.el, ...list.map((i) => h("div", { class: `tray-item tray-${i.state}`, "data-upload-state": i.state, title: i.name },
      i.preview ? h("img", { class: "tray-thumb", src: i.preview, alt: "" }) : fileIcon(),
      h("span", { class: "tray-text" },
        h("span", { class: "tray-name" }, i.name),
        h("span", { class: i.state === "failed" ? "tray-status tray-error" : "tray-status muted", role: i.state === "failed" ? "alert" : null },
          i.state === "uploading" ? t("attach.uploading", { percent: Math.round(i.progress * 100) })
            : i.state === "failed" ? uploadErrorText(i.failure, this.i18n) : `${formatSize(i.size, this.i18n)} · ${t("attach.ready")}`),
        i.state === "uploading" ? h("span", { class: "tray-progress" }, h("span", { style: `width:${Math.round(i.progress * 100)}%` })) : null),
      h("button", { type: "button", class: "link tray-remove", "aria-label": t("attach.remove", { name: i.name }), title: t("attach.remove", { name: i.name }), onclick: () => this.remove(shown.id, i.key) }, "×"))));
  }
}

//! Attachments for the console and the widget: uploading a file to the media store with
//! progress (`POST /api/v1/uploads` for agents, `/api/v1/widget/uploads` for widget customers),
//! and rendering a message's attachments — images as thumbnails linking to the full picture,
//! everything else as a download link — through the signed URLs the server put in them.
//!
//! Kept small on purpose: the widget bundles it.

import { h } from "./dom";
import type { I18n } from "./i18n";
import type { Attachment } from "./protocol";

/** A failed upload: the HTTP status (0 when the request never got an answer) and the server's error code. */
export class UploadError extends Error {
  constructor(public readonly status: number, public readonly code: string, message: string) {
    super(message);
  }
}

/**
 * Uploads one file as `multipart/form-data` (field `file`). XMLHttpRequest rather than fetch:
 * it reports upload progress. Resolves with the attachment to send (only the fields a message
 * stores: `kind`, `url`, `name`, `mime`, `size`).
 */
export function uploadFile(
  url: string,
  headers: Record<string, string>,
  file: Blob,
  name: string,
  onProgress: (fraction: number) => void,
): Promise<Attachment> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (ev) => { if (ev.lengthComputable && ev.total) onProgress(ev.loaded / ev.total); };
    xhr.onerror = () => reject(new UploadError(0, "network", "network error"));
    xhr.onload = () => {
      let json: { kind?: string; url?: string; name?: string | null; mime?: string; size?: number; error?: { code?: string; message?: string } } | null = null;
      try {
        json = JSON.parse(xhr.responseText);
      } catch {
        json = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && json?.url && json.kind) {
        resolve({ kind: json.kind, url: json.url, name: json.name ?? name, mime: json.mime ?? null, size: json.size ?? file.size });
      } else {
        reject(new UploadError(xhr.status, json?.error?.code ?? String(xhr.status), json?.error?.message ?? xhr.statusText));
      }
    };
    const form = new FormData();
    form.append("file", file, name);
    xhr.send(form);
  });
}

/** What to tell a person about a failed upload: 413 and 415 get their own words. */
export function uploadErrorText(e: unknown, i18n: I18n): string {
  const status = e instanceof UploadError ? e.status : 0;
  if (status === 413) return i18n.t("attach.tooLarge");
  if (status === 415) return i18n.t("attach.typeRefused");
  return i18n.t("attach.failed", { message: e instanceof Error ? e.message : String(e) });
}

/**
 * An attachment's URL made absolute against `base` (the widget runs on other sites, and the
 * server signs same-origin `/media/...` paths), or null unless it is http(s): a message can never
 * smuggle a `javascript:` link in.
 */
export function safeUrl(url: string | null, base: string): string | null {
  if (!url) return null;
  try {
    const u = new URL(url, base);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

export function formatSize(bytes: number | null | undefined, i18n: I18n): string {
  if (typeof bytes !== "number") return "";
  if (bytes < 1024) return i18n.t("attach.bytes", { n: bytes });
  if (bytes < 1024 * 1024) return i18n.t("attach.kb", { n: Math.round(bytes / 1024) });
  return i18n.t("attach.mb", { n: (bytes / (1024 * 1024)).toFixed(1) });
}

/** A 24×24 stroked icon (no emoji: not every system has an emoji font). */
function icon(d: string): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const el = document.createElementNS(ns, "svg");
  el.setAttribute("viewBox", "0 0 24 24");
  el.setAttribute("aria-hidden", "true");
  el.setAttribute("class", "icon");
  const p = document.createElementNS(ns, "path");
  p.setAttribute("d", d);
  el.appendChild(p);
  return el;
}
export const clipIcon = () => icon("M21 12l-8.5 8.5a5 5 0 0 1-7-7L14 5a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L15 8");
export const fileIcon = () => icon("M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8zM14 3v5h5");

/** A message's attachments: image thumbnails opening the picture, other files as download links. */
export function renderAttachments(list: Attachment[], base: string, i18n: I18n): HTMLElement | null {
  if (!list.length) return null;
  return h("div", { class: "attachments" }, ...list.map((a) => {
    const href = safeUrl(a.url, base);
    const label = a.name ?? i18n.tDynamic("attach.kind", a.kind);
    if (!href) return h("span", { class: "attachment file unavailable" }, i18n.t("attach.unavailable", { name: label }));
    if (a.kind === "image") {
      return h("a", { class: "attachment image", href, target: "_blank", rel: "noopener noreferrer", title: label, "data-kind": "image" },
        h("img", { class: "thumb", src: href, alt: label, loading: "lazy", referrerpolicy: "no-referrer" }));
    }
    const size = formatSize(a.size, i18n);
    // No new tab: the server sends files as `Content-Disposition: attachment`, so the page stays.
    return h("a", { class: "attachment file", href, download: a.name ?? "", rel: "noopener noreferrer", "data-kind": a.kind },
      fileIcon(),
      h("span", { class: "file-name" }, label),
      size ? h("span", { class: "file-size" }, size) : null,
      h("span", { class: "file-action" }, i18n.t("attach.download")));
  }));
}

//! Incoming offers (teams whose routing policy has `auto_accept: false`): the server offers a
//! conversation to one agent at a time (`conversation` event, `state: "offered"`, this agent as
//! `assignee_id`, `offer_expires_at`). Each offer is a card above the console's views with the
//! customer, the channel, the first message, a live countdown and Accept / Reject, answered with
//! the socket events `offer:accept` / `offer:reject` (acked). A new offer beeps (WebAudio, no
//! asset) and raises a browser notification when permitted. The card goes away when the server
//! says the conversation is no longer offered to this agent (accepted, rejected, lapsed or
//! withdrawn): the server, not the countdown, decides.

import type { Socket } from "socket.io-client";
import "./offers-attachments.css";
import { channelBadge } from "../shared/channels";
import { h, replaceChildren } from "../shared/dom";
import type { I18n } from "../shared/i18n";
import type { Ack, ConversationView } from "../shared/protocol";

type Settled = Partial<ConversationView> & { id: number };

export interface OfferHost {
  socket(): Socket | null;
  contactName(c: ConversationView): string;
  /** The conversation's first customer message, once synced. */
  preview(id: number): string | null;
  /** The server's answer to an accept or reject (a conversation without contact or inbox). */
  settled(c: Settled, accepted: boolean): void;
}

export function isOfferTo(c: ConversationView, me: number | undefined): boolean {
  return c.state === "offered" && me !== undefined && c.assignee_id === me;
}

export class OfferDesk {
  /** The server's (or the transport's) message of a failed answer, per offer. */
  private readonly errors = new Map<number, string>();
  private readonly busy = new Set<number>();
  /** `id:expiry` of the offers already announced, so a re-render never rings twice. */
  private readonly announced = new Set<string>();
  /** Remaining time when first seen, per offer: the countdown bar's full width. */
  private readonly spans = new Map<number, number>();
  /** Offers whose notification waits (at most 1.5 s) for the first message, to show it. */
  private readonly unnotified = new Map<number, ReturnType<typeof setTimeout>>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private audio: AudioContext | null = null;
  private el: HTMLElement | null = null;
  private offers: ConversationView[] = [];

  constructor(private readonly i18n: I18n, private readonly host: OfferHost) {
    // Browsers start audio only after a user gesture: open the context on the first one.
    const unlock = () => {
      this.audioContext();
      document.removeEventListener("pointerdown", unlock);
      document.removeEventListener("keydown", unlock);
    };
    document.addEventListener("pointerdown", unlock);
    document.addEventListener("keydown", unlock);
  }

  /** Asks for notification permission; call from a user gesture (e.g. going available). */
  askPermission(): void {
    if ("Notification" in window && Notification.permission === "default") void Notification.requestPermission().catch(() => {});
  }

  /** Shows `offers` (the conversations offered to this agent now) in `el`; announces new ones. */
  render(el: HTMLElement | null, offers: ConversationView[]): void {
    this.el = el;
    this.offers = offers;
    const ids = new Set(offers.map((c) => c.id));
    for (const id of [...this.spans.keys()]) {
      if (ids.has(id)) continue;
      this.spans.delete(id);
      this.errors.delete(id);
      this.busy.delete(id);
      clearTimeout(this.unnotified.get(id));
      this.unnotified.delete(id);
    }
    for (const c of offers) {
      const key = `${c.id}:${c.offer_expires_at ?? ""}`;
      if (!this.announced.has(key)) {
        this.announced.add(key);
        this.spans.set(c.id, Math.max(1_000, (c.offer_expires_at ?? Date.now()) - Date.now()));
        this.beep();
        clearTimeout(this.unnotified.get(c.id));
        this.unnotified.set(c.id, setTimeout(() => this.notify(c), 1_500));
      }
      if (this.unnotified.has(c.id) && this.host.preview(c.id) !== null) this.notify(c);
    }
    if (offers.length && this.timer === undefined) this.timer = setInterval(() => this.tick(), 250);
    if (!offers.length && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    if (!el) return;
    const t = this.i18n.t.bind(this.i18n);
    if (!offers.length) {
      replaceChildren(el);
      el.hidden = true;
      return;
    }
    el.hidden = false;
    replaceChildren(el, ...offers.map((c) => {
      const preview = this.host.preview(c.id);
      const busy = this.busy.has(c.id);
      const error = this.errors.get(c.id);
      return h("div", { class: "offer-card", role: "alertdialog", "aria-label": t("offer.title"), "data-offer": c.id },
        h("div", { class: "offer-icon" }, channelBadge(c.inbox.kind, this.i18n)),
        h("div", { class: "offer-main" },
          h("div", { class: "offer-top" },
            h("span", { class: "offer-tag" }, t("offer.title")),
            h("strong", { class: "offer-name" }, this.host.contactName(c)),
            h("span", { class: "muted" }, `${this.i18n.tDynamic("channel", c.inbox.kind)} · ${c.inbox.name}`)),
          h("div", { class: `offer-preview${preview ? "" : " muted"}`, "data-field": "preview" }, preview ?? t("offer.noPreview")),
          h("div", { class: "offer-bar" }, h("span", { class: "offer-bar-fill", "data-offer-bar": c.id })),
          error !== undefined ? h("p", { class: "error", role: "alert" }, t("offer.failed", { message: error })) : null),
        h("div", { class: "offer-side" },
          h("span", { class: "offer-countdown", "data-countdown": c.id }, this.countdownText(c)),
          h("div", { class: "offer-actions" },
            h("button", { class: "ghost offer-reject", disabled: busy, onclick: () => this.answer(c.id, false) }, t("offer.reject")),
            h("button", { class: "primary offer-accept", disabled: busy, onclick: () => this.answer(c.id, true) }, t("offer.accept")))),
      );
    }));
    this.tick();
  }

  /** Re-renders with the offers last given (a preview arrived, the language changed). */
  refresh(): void {
    this.render(this.el, this.offers);
  }

  private answer(id: number, accept: boolean): void {
    const socket = this.host.socket();
    if (!socket || this.busy.has(id)) return;
    this.busy.add(id);
    this.errors.delete(id);
    this.refresh();
    socket.timeout(10_000).emit(accept ? "offer:accept" : "offer:reject", { conversation_id: id }, (err: Error | null, res?: Ack<{ conversation: Settled }>) => {
      this.busy.delete(id);
      if (!err && res?.ok) {
        this.host.settled(res.conversation, accept);
        return;
      }
      this.errors.set(id, err?.message ?? (res && !res.ok ? res.error.message : ""));
      this.refresh();
    });
  }

  private countdownText(c: ConversationView): string {
    const left = (c.offer_expires_at ?? 0) - Date.now();
    return left > 0 ? this.i18n.t("offer.expiresIn", { seconds: Math.ceil(left / 1000) }) : this.i18n.t("offer.expiring");
  }

  /** Updates the countdowns in place (no re-render: a click in progress is never lost). */
  private tick(): void {
    const el = this.el;
    if (!el) return;
    for (const c of this.offers) {
      const text = el.querySelector<HTMLElement>(`[data-countdown="${c.id}"]`);
      if (text) {
        const value = this.countdownText(c);
        if (text.textContent !== value) text.textContent = value;
        text.classList.toggle("urgent", (c.offer_expires_at ?? 0) - Date.now() < 10_000);
      }
      const bar = el.querySelector<HTMLElement>(`[data-offer-bar="${c.id}"]`);
      if (bar) {
        const left = Math.max(0, (c.offer_expires_at ?? 0) - Date.now());
        bar.style.width = `${Math.min(100, (left / ((this.spans.get(c.id) ?? left) || 1)) * 100).toFixed(1)}%`;
      }
    }
  }

  private notify(c: ConversationView): void {
    clearTimeout(this.unnotified.get(c.id));
    this.unnotified.delete(c.id);
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try {
      const n = new Notification(this.i18n.t("offer.notifyTitle", { name: this.host.contactName(c) }), {
        body: this.host.preview(c.id) ?? `${this.i18n.tDynamic("channel", c.inbox.kind)} · ${c.inbox.name}`,
        tag: `switchboard-offer-${c.id}`,
      });
      n.onclick = () => {
        window.focus();
        n.close();
      };
    } catch {
      // Some browsers allow notifications only from a service worker: the card and sound remain.
    }
  }

  private audioContext(): AudioContext | null {
    if (!this.audio) {
      const Ctor = window.AudioContext ?? (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext;
      if (!Ctor) return null;
      try {
        this.audio = new Ctor();
      } catch {
        return null;
      }
    }
    if (this.audio.state === "suspended") void this.audio.resume().catch(() => {});
    return this.audio;
  }

  /** Two short tones. Silent until the page has had a user gesture (the browser's rule). */
  private beep(): void {
    const ctx = this.audioContext();
    if (!ctx || ctx.state !== "running") return;
    const start = ctx.currentTime;
    for (const [offset, freq] of [[0, 880], [0.18, 1175]] as const) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.2, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.15);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start + offset);
      osc.stop(start + offset + 0.16);
    }
  }
}

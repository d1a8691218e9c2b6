//! A windowed message list: only the rows in view (plus an overscan above and below) are in the
//! DOM, between two spacers whose heights stand for the rest, so a conversation of thousands of
//! messages scrolls as smoothly as one of ten. Rows have variable heights: each is measured once
//! drawn (until then an estimate stands in) and the measured heights are kept by row key, so
//! corrections never make the view jump — the first visible row stays where it was — and a view
//! that was at the bottom stays at the bottom when rows are added.
//!
//! Reaching the first rows calls `nearTop` (the console loads an older page; the prepended rows
//! keep the view where it was, by the same anchor).
//!
//! Owns the scroll container's children while it has rows; the console owns the rows.

import { h } from "../shared/dom";

export interface Row {
  /** Stable across renders (a message id, a pending reply's client id). */
  key: string;
  /** The data drawn; a new object means the row is drawn again (e.g. a delivery status). */
  item: object;
  render: () => HTMLElement;
}

const ESTIMATE_PX = 64;
const OVERSCAN = 10;
/** Closer than this to the bottom counts as "at the bottom". */
const BOTTOM_SLACK_PX = 80;
/** Within this many rows of the first one, older rows are asked for. */
const NEAR_TOP_ROWS = 5;

export class VirtualLog {
  private rows: Row[] = [];
  private readonly top = h("div", { class: "vl-spacer", "aria-hidden": "true" });
  private readonly body = h("div", { class: "vl-rows" });
  private readonly bottom = h("div", { class: "vl-spacer", "aria-hidden": "true" });
  private readonly drawn = new WeakMap<object, HTMLElement>();
  private frame = 0;
  private range: [number, number] = [0, 0];

  /** `heights` may be shared between instances (the console makes a new container per render). */
  /** `nearTop` is called when the view reaches the first rows (to load older ones). */
  constructor(readonly el: HTMLElement, private readonly heights: Map<string, number>, private readonly nearTop: () => void = () => {}) {
    el.addEventListener("scroll", () => this.schedule(), { passive: true });
  }

  /** Whether the view is at (or near) the bottom right now. */
  atBottom(): boolean {
    return this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < BOTTOM_SLACK_PX;
  }

  /** Replaces the rows; `stick` keeps the view at the bottom (new messages while reading the latest). */
  setRows(rows: Row[], stick: boolean): void {
    // Where the reader is, in the rows as they were: rows added above (an older page) must not
    // move what they look at.
    const anchor = this.top.parentNode === this.el ? this.firstVisible() : undefined;
    this.rows = rows;
    if (this.top.parentNode !== this.el) this.el.replaceChildren(this.top, this.body, this.bottom);
    this.paint(stick, anchor);
  }

  /** The first row in view and how far its top is below the view's top (negative: above). */
  private firstVisible(): { key: string; shift: number } | undefined {
    const n = this.rows.length;
    if (!n) return undefined;
    const viewTop = this.el.scrollTop - this.top.offsetTop;
    let first = 0;
    let y = 0;
    while (first < n - 1 && y + this.height(first) <= viewTop) y += this.height(first++);
    return { key: this.rows[first].key, shift: y - viewTop };
  }

  /** The number of rows in the DOM now (for tests and curiosity). */
  get drawnCount(): number {
    return this.range[1] - this.range[0];
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.paint(false);
    });
  }

  private height(i: number): number {
    return this.heights.get(this.rows[i].key) ?? ESTIMATE_PX;
  }

  private offsetOf(i: number): number {
    let y = 0;
    for (let k = 0; k < i; k++) y += this.height(k);
    return y;
  }

  private paint(stick: boolean, anchor?: { key: string; shift: number }): void {
    const n = this.rows.length;
    const el = this.el;
    // Where the view starts within the rows (negative while the padding above them shows); after
    // the rows changed, where it must start to keep the anchor row in place.
    let viewTop = el.scrollTop - this.top.offsetTop;
    const anchorIndex = anchor ? this.rows.findIndex((r) => r.key === anchor.key) : -1;
    if (anchor && anchorIndex >= 0) viewTop = this.offsetOf(anchorIndex) - anchor.shift;
    const viewHeight = el.clientHeight || 600;
    // The first row whose bottom is below the top of the view, and the last one above its bottom.
    let first = 0;
    let y = 0;
    while (first < n - 1 && y + this.height(first) <= viewTop) y += this.height(first++);
    const anchorKey = this.rows[first]?.key;
    const anchorShift = y - viewTop;
    let last = first;
    let yEnd = y;
    while (last < n && yEnd < viewTop + viewHeight) yEnd += this.height(last++);
    if (stick) {
      // Draw the tail: the view is about to be moved there.
      last = n;
      let tail = 0;
      first = n;
      while (first > 0 && tail < viewHeight) tail += this.height(--first);
    }
    const from = Math.max(0, first - OVERSCAN);
    const to = Math.min(n, last + OVERSCAN);
    this.range = [from, to];

    const els = this.rows.slice(from, to).map((row) => {
      let wrapper = this.drawn.get(row.item);
      if (!wrapper) {
        wrapper = h("div", { class: "vl-row", "data-row": row.key }, row.render());
        this.drawn.set(row.item, wrapper);
      }
      return wrapper;
    });
    this.top.style.height = `${this.offsetOf(from)}px`;
    this.body.replaceChildren(...els);
    // Measure what was drawn; remember it so the spacers are right from now on.
    for (let i = from; i < to; i++) {
      const measured = els[i - from].offsetHeight;
      if (measured > 0) this.heights.set(this.rows[i].key, measured);
    }
    this.top.style.height = `${this.offsetOf(from)}px`;
    let below = 0;
    for (let k = to; k < n; k++) below += this.height(k);
    this.bottom.style.height = `${below}px`;

    if (!stick && first < NEAR_TOP_ROWS && n > 0) this.nearTop();
    if (stick) {
      el.scrollTop = el.scrollHeight;
    } else if (anchorKey !== undefined) {
      // Keep the first visible row where the reader saw it, whatever was measured above it.
      const index = this.rows.findIndex((r) => r.key === anchorKey);
      if (index >= 0) {
        const want = this.top.offsetTop + this.offsetOf(index) - anchorShift;
        if (Math.abs(el.scrollTop - want) > 1) el.scrollTop = want;
      }
    }
  }
}

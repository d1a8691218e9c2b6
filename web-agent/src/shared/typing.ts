//! Typing indicators, both ways. `TypingSender` throttles what this side sends (one notice per
//! `intervalMs` while keys are pressed); `TypingShown` remembers who the other side is typing in
//! and forgets it `ttlMs` after the last notice (or at once when their message arrives).

/** At most one `typing` per this many milliseconds from one input. */
export const TYPING_SEND_INTERVAL_MS = 2_000;
/** An indicator disappears this long after the last notice. */
export const TYPING_TTL_MS = 5_000;

export class TypingSender<K> {
  private last = new Map<K, number>();

  constructor(private readonly send: (key: K) => void, private readonly intervalMs = TYPING_SEND_INTERVAL_MS) {}

  /** Call on every input event; sends only when the last notice for `key` is old enough. */
  poke(key: K): void {
    const now = Date.now();
    if (now - (this.last.get(key) ?? 0) < this.intervalMs) return;
    this.last.set(key, now);
    this.send(key);
  }

  /** After a message was sent: the next keystroke announces typing again at once. */
  reset(key: K): void {
    this.last.delete(key);
  }
}

export class TypingShown<K> {
  private until = new Map<K, number>();
  private timers = new Map<K, ReturnType<typeof setTimeout>>();

  constructor(private readonly onChange: (key: K) => void, private readonly ttlMs = TYPING_TTL_MS) {}

  notice(key: K): void {
    const wasActive = this.active(key);
    this.until.set(key, Date.now() + this.ttlMs);
    clearTimeout(this.timers.get(key));
    this.timers.set(key, setTimeout(() => this.clear(key), this.ttlMs));
    if (!wasActive) this.onChange(key);
  }

  clear(key: K): void {
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    if (!this.until.delete(key)) return;
    this.onChange(key);
  }

  active(key: K): boolean {
    return (this.until.get(key) ?? 0) > Date.now();
  }
}

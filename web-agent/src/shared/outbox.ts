//! The send queue of the console (agent replies) and the widget (customer messages). A message gets its `client_message_id` once, when it is written, and
//! keeps it across every resend: the server stores a repeated id once, so sending again after a
//! lost ack or a reconnect can never duplicate a message.
//!
//! Messages are sent one at a time, oldest first, so they arrive in the order they were written.
//! Nothing is sent while the socket is down or the browser says it is offline; the queue waits
//! and the owner calls `flush` once connected again. The queue is kept in localStorage so a
//! reload does not lose what was typed. A message leaves the queue only when the server has
//! acknowledged it (after its commit) or when the same client id shows up in a stored message.

import type { Ack, Attachment, Message } from "../shared/protocol";
import { PERMANENT_ERRORS } from "../shared/protocol";

export interface PendingReply {
  client_message_id: string;
  /** The agent's conversation; null for the widget (the server knows the customer's). */
  conversation_id: number | null;
  text: string;
  /** Files already uploaded to the media store, sent with the text (which may then be empty). */
  attachments?: Attachment[];
  created_at: number;
  state: "queued" | "sending" | "failed";
  error?: string;
}

/** What the queue needs from the connection. */
export interface ReplyTransport {
  canSend(): boolean;
  send(reply: PendingReply, timeoutMs: number): Promise<Ack<{ message: Message }>>;
}

const ACK_TIMEOUT_MS = 10_000;
const RETRY_DELAY_MS = 1_500;

export class ReplyOutbox {
  private items: PendingReply[];
  private flushing = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly storageKey: string,
    private readonly transport: ReplyTransport,
    private readonly onStored: (message: Message) => void,
    private readonly onChange: () => void,
  ) {
    this.items = load(storageKey);
    // A reply that was in flight when the page closed is simply queued again (same id).
    for (const item of this.items) if (item.state === "sending") item.state = "queued";
  }

  pending(conversationId: number | null): PendingReply[] {
    return this.items.filter((r) => r.conversation_id === conversationId);
  }

  enqueue(reply: PendingReply): void {
    this.items.push(reply);
    this.changed();
    void this.flush();
  }

  /** A stored message (seen in an ack, a live event or a sync) settles the queued one it came from. */
  confirm(message: Message): void {
    const before = this.items.length;
    this.items = this.items.filter((r) => !isStoredCopy(message, r.client_message_id));
    if (this.items.length !== before) this.changed();
  }

  retry(clientMessageId: string): void {
    const item = this.items.find((r) => r.client_message_id === clientMessageId);
    if (!item) return;
    item.state = "queued";
    item.error = undefined;
    this.changed();
    void this.flush();
  }

  discard(clientMessageId: string): void {
    this.items = this.items.filter((r) => r.client_message_id !== clientMessageId);
    this.changed();
  }

  /** Sends queued replies in order until the queue is empty or the connection is down. */
  async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    clearTimeout(this.retryTimer);
    try {
      for (;;) {
        const next = this.items.find((r) => r.state === "queued");
        if (!next || !this.transport.canSend()) return;
        next.state = "sending";
        this.changed();
        let ack: Ack<{ message: Message }> | undefined;
        try {
          ack = await this.transport.send(next, ACK_TIMEOUT_MS);
        } catch {
          ack = undefined; // no ack in time: the reply may or may not be stored; resend with the same id
        }
        if (!this.items.includes(next)) continue; // confirmed by a live event meanwhile
        if (ack?.ok) {
          this.items = this.items.filter((r) => r !== next);
          this.changed();
          this.onStored(ack.message);
          continue;
        }
        if (ack && PERMANENT_ERRORS.has(ack.error.code)) {
          next.state = "failed";
          next.error = ack.error.message;
          this.changed();
          continue;
        }
        // Timed out or the server is briefly unavailable: keep it queued and try again later.
        next.state = "queued";
        this.changed();
        this.retryTimer = setTimeout(() => void this.flush(), RETRY_DELAY_MS);
        return;
      }
    } finally {
      this.flushing = false;
    }
  }

  private changed(): void {
    try {
      localStorage.setItem(this.storageKey, JSON.stringify(this.items));
    } catch {
      // Storage full or disabled: the queue still works for this page's lifetime.
    }
    this.onChange();
  }
}

/**
 * Whether `message` is the stored form of the send with this client id. Agent replies keep the
 * id as `client_message_id`; a widget message is stored as an inbound platform message whose
 * `platform_message_id` is `<customer>:<client id>`.
 */
function isStoredCopy(message: Message, clientMessageId: string): boolean {
  if (message.client_message_id === clientMessageId) return true;
  return message.direction === "inbound" && (message.platform_message_id ?? "").endsWith(`:${clientMessageId}`);
}

function load(key: string): PendingReply[] {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(key) ?? "[]");
    return Array.isArray(parsed) ? (parsed as PendingReply[]) : [];
  } catch {
    return [];
  }
}

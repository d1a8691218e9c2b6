//! The shapes the server sends over REST and Socket.IO (see docs/api.md), typed for the console
//! and the widget. Only the fields the UI reads are listed; the server may send more.

export type ChannelKind = "web" | "api" | "telegram" | "whatsapp" | "messenger" | "instagram" | "line" | "wechat";
export type AgentStatus = "available" | "away" | "offline";
export type Role = "admin" | "supervisor" | "agent";
export type ConversationState =
  | "bot" | "queued" | "offered" | "assigned" | "waiting_on_customer" | "resolved" | "closed" | "abandoned";

export const CLOSE_REASONS = ["resolved", "no_response", "customer_left", "spam", "duplicate", "other"] as const;
export type CloseReason = (typeof CLOSE_REASONS)[number];

export interface User {
  id: number;
  tenant_id: number;
  email: string;
  name: string;
  role: Role;
  status: AgentStatus;
  capacity: number;
  active_load: number;
}

export interface Attachment {
  kind: string;
  url: string | null;
  name: string | null;
  mime: string | null;
  /** Bytes, when known (uploads always say). */
  size?: number | null;
}

export interface Message {
  id: number;
  conversation_id: number;
  inbox_id: number;
  direction: "inbound" | "outbound";
  sender_kind: "contact" | "agent" | "bot" | "system";
  sender_user_id: number | null;
  text: string | null;
  attachments: Attachment[];
  client_message_id: string | null;
  platform_message_id: string | null;
  status: string;
  created_at: number;
  /** An internal note: agents and supervisors see it, the customer never does. */
  private?: boolean;
}

export interface ContactView {
  id: number;
  name: string | null;
  identifiers: string[];
  masked: boolean;
}

export interface ConversationView {
  id: number;
  state: ConversationState;
  assignee_id: number | null;
  priority: number;
  created_at: number;
  updated_at: number;
  contact: ContactView;
  inbox: { id: number; name: string; kind: ChannelKind };
  /** While `offered`: when the offer lapses (Unix ms). */
  offer_expires_at?: number | null;
  team_id?: number | null;
  close_reason?: string | null;
  closed_at?: number | null;
  /** Collected fields; `wrap_up` holds the resolve dialog's form values. */
  attributes?: Record<string, unknown>;
  biz_data?: Record<string, unknown>;
}

export interface AckError {
  code: string;
  message: string;
}

export type Ack<T> = ({ ok: true } & T) | { ok: false; error: AckError };

/** The optional queue estimate a server may push to the widget. */
export interface QueueInfo {
  position: number;
  eta_secs?: number | null;
}

export const OPEN_STATES: ReadonlySet<ConversationState> = new Set(["bot", "queued", "offered", "assigned", "waiting_on_customer"]);

/** Error codes after which resending the same request cannot succeed. */
export const PERMANENT_ERRORS: ReadonlySet<string> = new Set([
  "invalid_body", "malformed_json", "forbidden", "not_found", "conflict", "payload_too_large", "unauthorized",
]);

/** A client message id that is unique enough to be the dedupe key of one send. */
export function newClientMessageId(prefix: string): string {
  const random = typeof crypto !== "undefined" && "randomUUID" in crypto
    ? crypto.randomUUID()
    : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  return `${prefix}-${random}`.slice(0, 100);
}

// ---------------------------------------------------------------------------------------------
// supervisor and admin views

/** `queue` socket event and `GET /api/v1/supervisor/queues`. */
export interface QueueSnapshot {
  at: number;
  queues: Array<{
    team_id: number | null;
    waiting: Array<{ conversation_id: number; position: number; eta_secs: number | null; waited_secs: number }>;
    longest_wait_secs: number;
  }>;
  agents: AgentLoad[];
  agents_by_status: Record<string, number>;
  service_level: number | null;
  average_speed_of_answer_secs: number | null;
  abandonment_rate: number | null;
  mean_handle_secs: number;
  /** The same statistics per queue (team; `null` = no team), for queues active in the window. */
  queue_stats?: Array<{ team_id: number | null; service_level: number | null; average_speed_of_answer_secs: number | null; abandonment_rate: number | null }>;
}

export interface AgentLoad {
  user_id: number;
  name: string;
  status: AgentStatus;
  load: number;
  capacity: number;
}

/** `GET /api/v1/supervisor/channels`: provider health per platform inbox. */
export interface ChannelHealth {
  inbox_id: number;
  state: string;
  success_rate: number | null;
  mean_latency_ms: number | null;
  sends_observed: number;
  consecutive_failures: number;
  last_error: string | null;
}

export interface Team {
  id: number;
  name: string;
  routing_policy: unknown;
}

export interface Inbox {
  id: number;
  name: string;
  kind: ChannelKind;
  settings: Record<string, unknown>;
  mask_identifiers: boolean;
  team_id: number | null;
}

/** `POST /api/v1/inboxes`: the inbox plus credentials shown only once. */
export interface CreatedInbox extends Inbox {
  inbound_token?: string;
  webhook_secret?: string;
}

/** Someone typing, relayed by the server (`typing` on both namespaces). */
export interface TypingNotice {
  conversation_id: number;
  sender: "agent" | "contact";
}

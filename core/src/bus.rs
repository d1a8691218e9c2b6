//! The `Bus` port: how nodes tell each other what happened. A single node uses the in-process
//! implementation; several nodes share Redis. The bus carries *notifications*, never the truth:
//! every event names rows already committed to the database, so a lost event costs latency (a
//! client resyncs from its last seen id), never data.

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::ids::*;

/// Something committed that connected clients on any node may need to hear about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BusEvent {
    /// A message was stored in a conversation (either direction). `payload` is the message as
    /// clients see it; `assignee_id` is the agent holding the conversation when it was stored.
    MessageCreated { tenant_id: TenantId, conversation_id: ConversationId, assignee_id: Option<UserId>, payload: serde_json::Value },
    /// A conversation changed (state, assignee, ...). `payload` is the conversation.
    ConversationUpdated { tenant_id: TenantId, conversation_id: ConversationId, assignee_id: Option<UserId>, previous_assignee_id: Option<UserId>, payload: serde_json::Value },
    /// An agent's status or load changed.
    AgentUpdated { tenant_id: TenantId, user_id: UserId, payload: serde_json::Value },
    /// A tenant's queue changed (arrival, assignment, resolve): `payload` holds each waiting
    /// conversation's position and estimated wait, and the queue statistics supervisors watch.
    QueueChanged { tenant_id: TenantId, payload: serde_json::Value },
    /// Capacity may have freed or work arrived for a tenant: some node should try dispatching.
    /// Nodes dispatch locally on every arrival and freed slot today; the router uses this to
    /// hand work between nodes.
    DispatchNeeded { tenant_id: TenantId },
    /// Someone is typing in a conversation: ephemeral, never stored (it names no committed row;
    /// a lost one costs nothing). `sender` is `agent` (shown to the customer's widget) or
    /// `contact` (shown to `assignee_id` and to supervisors watching the conversation).
    Typing { tenant_id: TenantId, conversation_id: ConversationId, assignee_id: Option<UserId>, sender: crate::domain::SenderKind },
    /// Never published: a node's bus hands it to that node's own subscribers when events may
    /// have been missed — the Redis subscription came back after an outage, or a subscriber fell
    /// so far behind that events were skipped. The node tells its connected clients to resync
    /// from their last seen message id, since their sockets never dropped and nothing else would
    /// make them ask.
    Resync { reason: String },
    /// A user's rights changed (role, password) or one of their login sessions ended: every node
    /// closes that user's `/agent` sockets — with `token_hash`, only those opened with that
    /// session. A socket is authorized once, at connect, so this is what makes a demotion or a
    /// logout take effect on live connections; the clients reconnect and are authorized afresh,
    /// or refused.
    AccessChanged { tenant_id: TenantId, user_id: UserId, token_hash: Option<String> },
}

#[derive(Debug, thiserror::Error)]
#[error("bus unavailable: {0}")]
pub struct BusError(pub String);

/// "At most one owner per key, for a while": singleton jobs (one poller per inbox). See
/// `switchboard_bus::lease` for what it does and does not guarantee.
#[async_trait]
pub trait Lease: Send + Sync + 'static {
    /// Takes the lease on `key` for `owner` for `ttl_ms` if nobody holds it. Returns `true` when
    /// `owner` holds the lease afterwards: a free key is taken, and a key already held by
    /// `owner` is extended (so a job may call this on every tick). Returns `false` when another
    /// owner holds it. `ttl_ms` must be positive.
    async fn try_acquire_lease(&self, key: &str, owner: &str, ttl_ms: u64) -> Result<bool, BusError>;

    /// Extends the lease to `ttl_ms` from now if `owner` still holds it. Returns `false` when the
    /// lease expired or belongs to someone else: the caller must stop the guarded work.
    async fn renew_lease(&self, key: &str, owner: &str, ttl_ms: u64) -> Result<bool, BusError>;

    /// Gives the lease up if `owner` holds it. Returns whether anything was released; releasing a
    /// lease someone else holds is a no-op.
    async fn release_lease(&self, key: &str, owner: &str) -> Result<bool, BusError>;
}

/// Small state shared by every node: token buckets (outbound rate limits) and a cache of values
/// with a time to live (platform access tokens). In-process on a single node, in Redis when
/// several nodes share one. See `switchboard_bus::shared` for the layout and guarantees.
#[async_trait]
pub trait SharedState: Send + Sync + 'static {
    /// Takes one token from the bucket `key`, which holds at most `burst` tokens and refills at
    /// `per_sec` tokens a second (a bucket never seen starts full). Returns 0 when a token was
    /// taken, otherwise how many milliseconds until one will be there (and takes nothing), so the
    /// caller can defer exactly that long instead of polling. `per_sec` and `burst` must be
    /// positive.
    async fn take_token(&self, key: &str, per_sec: f64, burst: f64) -> Result<u64, BusError>;
    /// The cached value of `key`, if set and not expired.
    async fn cache_get(&self, key: &str) -> Result<Option<String>, BusError>;
    /// Sets `key` to `value` for `ttl_ms` (positive).
    async fn cache_set(&self, key: &str, value: &str, ttl_ms: u64) -> Result<(), BusError>;
    async fn cache_delete(&self, key: &str) -> Result<(), BusError>;
}

/// Hits counted per key in a fixed window, shared by every node on the bus (the login lockout).
/// See `switchboard_bus::counters`.
#[async_trait]
pub trait Counters: Send + Sync + 'static {
    /// Adds one hit to `key`. The window opens with the first hit and lasts `window_ms`
    /// (positive); later hits do not extend it. Returns the count so far in the window and the
    /// milliseconds until it closes.
    async fn count_hit(&self, key: &str, window_ms: u64) -> Result<(u64, u64), BusError>;
    /// The count and the milliseconds left, `(0, 0)` when the key has no open window.
    async fn hit_count(&self, key: &str) -> Result<(u64, u64), BusError>;
    /// Forgets the key's hits.
    async fn clear_hits(&self, key: &str) -> Result<(), BusError>;
}

#[async_trait]
pub trait Bus: Lease + SharedState + Counters + Send + Sync + 'static {
    fn backend(&self) -> &'static str;
    /// Delivers the event to every subscriber on every node, this one included.
    async fn publish(&self, event: &BusEvent) -> Result<(), BusError>;
    /// A stream of every event published after the call. Each node subscribes once at start.
    async fn subscribe(&self) -> Result<BoxStream<'static, BusEvent>, BusError>;
    async fn ping(&self) -> Result<(), BusError>;
    /// Records that `user` has a live connection `conn_id` for the next `ttl_ms` (presence
    /// across nodes; a node refreshes it on heartbeats, so a crashed node's entries expire).
    async fn touch_presence(&self, user: UserId, conn_id: &str, ttl_ms: u64) -> Result<(), BusError>;
    async fn drop_presence(&self, user: UserId, conn_id: &str) -> Result<(), BusError>;
    async fn presence_count(&self, user: UserId) -> Result<usize, BusError>;
}

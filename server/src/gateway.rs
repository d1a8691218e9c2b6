//! The unified gateway's server side: platform webhooks in, platform sends out, pollers for
//! platforms that must be pulled. The per-platform knowledge lives in `switchboard-gateway`
//! adapters; this module only moves their normalized events through the same path every
//! channel uses — commit first (`conversations::ingest`), then answer the platform.
//!
//! - `POST|GET /webhooks/{inbox_id}`: the adapter verifies (401 and nothing stored on a bad
//!   signature) and parses; every event is committed before the platform gets its 2xx, and any
//!   storage failure answers 503 so the platform redelivers (ingestion is idempotent).
//! - Outbox kind `platform_send`: replies on platform inboxes are sent by the adapter; the
//!   platform's message id is stored so its receipts find the message.
//! - Pollers: one task per node looks for inboxes in polling mode and runs each inbox's poll
//!   loop only while holding the bus lease `poll:{inbox}`, so exactly one node polls an inbox.
//!   The cursor is saved after the page's events are committed: a crash re-polls the page and
//!   ingestion's dedupe drops what was already stored.
//! - Inbound media: platform media references are taken off a new message (it shows
//!   placeholders: attachments without a `url`) and handed to a durable `media_fetch` outbox job
//!   queued before the platform is answered; the outbox retries it with backoff, across
//!   restarts, and the job links each file to its message as it lands ([`run_media_fetch`]).
//! - Outbound delivery ([`deliver_platform`]): per-conversation order, the circuit breaker with
//!   a fallback inbox (`settings.fallback_inbox_id`), per-chat and per-account rate limits
//!   (`settings.rate_limits`, token buckets on the bus), LINE reply tokens, our files uploaded
//!   or linked as each platform needs, and the WeChat access token cached once per account
//!   across nodes.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use switchboard_core::domain::{Attachment, ChannelKind, Inbox, InboundMessage, Message, OutboxEntry};
use switchboard_core::ids::InboxId;
use switchboard_gateway::{
    adapter_for, ChannelAdapter, ChannelConfig, ContentKind, DeliveryError, InboundEvent, NormalizedMessage,
    OutboundMessage, WebhookError, WebhookRequest,
};

use crate::conversations;
use crate::health::SendOutcome;
use crate::error::ApiError;
use crate::state::AppState;
use crate::time::now_ms;

/// Outbox kind: a reply on a platform inbox, sent by the platform's adapter.
pub const PLATFORM_SEND: &str = "platform_send";

pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/{inbox_id}", any(webhook))
}

fn config_of(inbox: &Inbox) -> ChannelConfig {
    ChannelConfig { settings: inbox.settings.clone(), secrets: inbox.secrets.clone() }
}

async fn webhook(
    State(state): State<AppState>,
    Path(inbox_id): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let inbox_id: InboxId = inbox_id.parse().map_err(|_| ApiError::NotFound("inbox"))?;
    let (inbox, _) = state.store.get_inbox_unscoped(inbox_id).await?.ok_or(ApiError::NotFound("inbox"))?;
    let adapter = adapter_for(inbox.kind).ok_or(ApiError::NotFound("inbox"))?;
    let request = WebhookRequest { method: method.as_str(), query: query.as_deref().unwrap_or(""), headers: &headers, body: &body };
    let outcome = match adapter.handle_webhook(&config_of(&inbox), &request) {
        Ok(o) => o,
        Err(WebhookError::Unauthorized(why)) => {
            metrics::counter!("switchboard_webhook_rejected_total", "kind" => inbox.kind.as_str(), "reason" => "signature").increment(1);
            tracing::info!(inbox_id = %inbox.id, %why, "webhook refused");
            return Err(ApiError::bad_signature());
        }
        Err(WebhookError::Malformed(why)) => return Err(ApiError::bad_request("malformed_payload", why)),
        Err(WebhookError::NotConfigured(why)) => return Err(ApiError::Conflict(format!("inbox not configured: {why}"))),
    };
    // Checked once the signature verified (a forgery is `invalid_signature` whatever its
    // timestamp) and before anything is stored.
    if let Some(timestamp) = adapter.signed_timestamp(&request) {
        let max_age = i64::try_from(state.settings.security.webhook_max_age_secs).unwrap_or(i64::MAX);
        if !switchboard_gateway::signature::timestamp_is_fresh(&timestamp, now_ms() / 1000, max_age) {
            metrics::counter!("switchboard_webhook_rejected_total", "kind" => inbox.kind.as_str(), "reason" => "stale").increment(1);
            tracing::info!(inbox_id = %inbox.id, %timestamp, "webhook refused: stale timestamp");
            return Err(ApiError::StaleRequest);
        }
    }
    commit_events(&state, &inbox, outcome.events).await?;
    let answer = outcome.answer;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    Ok((status, [(axum::http::header::CONTENT_TYPE, answer.content_type)], answer.body).into_response())
}

/// Commits every event; returns the first storage error (the platform then redelivers all of
/// them, and the ones already stored are deduplicated).
///
/// Media references are taken out of the message before it is stored (the attachment keeps its
/// kind, name and type, with no `url` yet: the placeholder clients show) and handed to a durable
/// `media_fetch` job queued before the platform is answered; a redelivery finds the same job
/// (queued once per payload). A LINE reply token is kept with the conversation.
pub async fn commit_events(state: &AppState, inbox: &Inbox, events: Vec<InboundEvent>) -> Result<(), ApiError> {
    for event in events {
        match event {
            InboundEvent::Message(m) => {
                let reply_context = m.reply_context.clone();
                let mut inbound = inbound_message(inbox, m);
                let refs: Vec<(usize, String)> = inbound
                    .attachments
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| fetchable(a))
                    .filter_map(|(i, a)| a.url.clone().map(|u| (i, u)))
                    .collect();
                for (i, _) in &refs {
                    inbound.attachments[*i].url = None;
                }
                let outcome = conversations::ingest(state, inbound).await?;
                if !refs.is_empty() {
                    queue_media_fetch(state, inbox, &outcome.message, &refs).await?;
                }
                if let Some(reply) = reply_context {
                    let now = now_ms();
                    if reply.expires_at_ms > now {
                        state
                            .store
                            .set_reply_token(inbox.tenant_id, outcome.message.conversation_id, inbox.id, outcome.message.id, &reply.token, reply.expires_at_ms, now)
                            .await?;
                    }
                }
            }
            InboundEvent::Status { platform_message_id, status } => {
                state.store.apply_receipt(inbox.tenant_id, inbox.id, &platform_message_id, status, now_ms()).await?;
            }
        }
    }
    Ok(())
}

/// Outbox kind: fetch an inbound message's platform media into the media store. Its payload is
/// `{"message_id", "refs": [{"index", "ref"}]}`: which attachments, and the platform's
/// reference for each (kept here, not on the message, so the message shows a placeholder until
/// the bytes land). Retried with the outbox's backoff, dead-lettered (visible and retryable at
/// `GET /api/v1/outbox?status=dead`) after `outbox.max_attempts`; survives restarts.
pub const MEDIA_FETCH: &str = "media_fetch";

/// Whether an inbound attachment is a platform media reference to fetch: not a location
/// (`geo:`), not the raw payload of an unsupported kind, not already one of our links.
fn fetchable(a: &Attachment) -> bool {
    let Some(url) = a.url.as_deref() else { return false };
    !url.is_empty()
        && !url.starts_with("geo:")
        && !matches!(a.kind.as_str(), "location" | "unsupported" | "contact")
        && switchboard_media::parse_media_url(url).is_none()
}

async fn queue_media_fetch(state: &AppState, inbox: &Inbox, message: &Message, refs: &[(usize, String)]) -> Result<(), ApiError> {
    if adapter_for(inbox.kind).is_none() {
        return Ok(());
    }
    let refs: Vec<serde_json::Value> = refs.iter().map(|(i, r)| serde_json::json!({"index": i, "ref": r})).collect();
    let payload = serde_json::json!({"message_id": message.id, "refs": refs});
    let (_, created) = state.store.enqueue_outbox_once(inbox.tenant_id, inbox.id, MEDIA_FETCH, &payload, now_ms()).await?;
    if created {
        state.outbox_wake.notify_one();
    }
    Ok(())
}

/// Runs one `media_fetch` job: downloads every attachment still without a link, stores it,
/// and links what landed to the message (even when another attachment failed, so a retry only
/// fetches the rest). Transient failures ask the outbox for a retry; when only permanent ones
/// are left (the platform forgot the file, a refused type, over the size limit) the job dies
/// with the reason and the attachment stays a placeholder.
pub async fn run_media_fetch(state: &AppState, entry: &OutboxEntry) -> Result<(), DeliveryError> {
    let transient = |e: switchboard_core::StoreError| DeliveryError::Transient(format!("loading the media job: {e}"));
    let message_id = entry
        .payload
        .get("message_id")
        .and_then(serde_json::Value::as_i64)
        .map(switchboard_core::ids::MessageId)
        .ok_or_else(|| DeliveryError::Permanent("media job without message_id".into()))?;
    let inbox = state.store.get_inbox(entry.tenant_id, entry.inbox_id).await.map_err(transient)?;
    let message = state.store.get_message(entry.tenant_id, message_id).await.map_err(transient)?;
    let mut attachments = message.attachments.clone();
    let mut landed = 0;
    let mut retry: Option<DeliveryError> = None;
    let mut fatal: Option<String> = None;
    for r in entry.payload.get("refs").and_then(serde_json::Value::as_array).into_iter().flatten() {
        let (Some(index), Some(media_ref)) = (r.get("index").and_then(serde_json::Value::as_u64), r.get("ref").and_then(serde_json::Value::as_str)) else {
            continue;
        };
        let Some(attachment) = usize::try_from(index).ok().and_then(|i| attachments.get_mut(i)) else { continue };
        if attachment.url.is_some() {
            continue; // landed on an earlier attempt
        }
        match fetch_attachment(state, &inbox, attachment, media_ref).await {
            Ok(stored) => {
                *attachment = stored;
                landed += 1;
            }
            Err(DeliveryError::Permanent(why)) => fatal = Some(why),
            Err(e) => retry = Some(e),
        }
    }
    if landed > 0 {
        metrics::counter!("switchboard_inbound_media_total", "outcome" => "stored").increment(landed);
        state.store.set_message_attachments(entry.tenant_id, message.id, &attachments, now_ms()).await.map_err(transient)?;
        // The holder and watchers of the conversation get the message again, now with its
        // links (clients keep the newer copy of a message id).
        let assignee_id = match state.store.get_conversation(entry.tenant_id, message.conversation_id).await {
            Ok(c) => c.assignee_id,
            Err(_) => None,
        };
        let linked = Message { attachments, ..message };
        let event = switchboard_core::bus::BusEvent::MessageCreated {
            tenant_id: linked.tenant_id,
            conversation_id: linked.conversation_id,
            assignee_id,
            payload: serde_json::to_value(&linked).unwrap_or_default(),
        };
        if let Err(e) = state.bus.publish(&event).await {
            tracing::debug!(error = %e, "announcing linked media failed; clients see it on their next read");
        }
    }
    match (retry, fatal) {
        (Some(e), _) => Err(e),
        (None, Some(why)) => {
            metrics::counter!("switchboard_inbound_media_total", "outcome" => "failed").increment(1);
            Err(DeliveryError::Permanent(why))
        }
        (None, None) => Ok(()),
    }
}

/// Downloads one attachment through the inbox's adapter (one attempt: the outbox retries) and
/// stores it; answers the attachment with our signed link, the sniffed type and the size.
async fn fetch_attachment(state: &AppState, inbox: &Inbox, attachment: &Attachment, media_ref: &str) -> Result<Attachment, DeliveryError> {
    let adapter = adapter_for(inbox.kind).ok_or_else(|| DeliveryError::Permanent(format!("no adapter for {}", inbox.kind)))?;
    let mut config = config_of(inbox);
    if inbox.kind == ChannelKind::Wechat {
        inject_wechat_token(state, &mut config).await?;
    }
    let (bytes, _platform_type) = match adapter.download(&state.http, &config, media_ref).await {
        Err(e) if switchboard_gateway::wechat::is_access_token_error(&e) => {
            forget_wechat_token(state, &config).await;
            return Err(e);
        }
        other => other?,
    };
    let limit = state.media.limit_for(inbox.tenant_id);
    let body = futures::stream::once(async move { Ok(Bytes::from(bytes)) });
    let stored = state.media.store.put(inbox.tenant_id.0, attachment.name.as_deref(), Box::pin(body), limit).await.map_err(|e| match e {
        switchboard_media::MediaError::Backend(_) | switchboard_media::MediaError::Config(_) => DeliveryError::Transient(e.to_string()),
        other => DeliveryError::Permanent(other.to_string()),
    })?;
    let (url, _) = state.media.sign(inbox.tenant_id, &stored.sha256, attachment.name.as_deref());
    Ok(Attachment {
        kind: attachment.kind.clone(),
        url: Some(url),
        name: attachment.name.clone(),
        mime: Some(stored.mime),
        size: Some(i64::try_from(stored.size).unwrap_or(i64::MAX)),
    })
}

/// Maps a platform message to ingestion's shape. A kind we do not model keeps its raw payload
/// as an `unsupported` attachment so nothing the customer sent is dropped.
fn inbound_message(inbox: &Inbox, m: NormalizedMessage) -> InboundMessage {
    let mut attachments = m.attachments;
    if m.kind == ContentKind::Unsupported {
        let raw = m.raw.to_string();
        attachments.push(Attachment {
            kind: "unsupported".into(),
            url: None,
            name: Some(raw.chars().take(4000).collect()),
            mime: Some("application/json".into()),
            size: None,
        });
    }
    InboundMessage {
        tenant_id: inbox.tenant_id,
        inbox_id: inbox.id,
        contact_external_id: m.contact_external_id,
        contact_name: m.contact_name,
        platform_message_id: m.platform_message_id,
        text: m.text,
        attachments,
        now: now_ms(),
    }
}

/// What became of one platform delivery attempt that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// Not tried: held back until this time (ms) by a rate limit, an open circuit with no
    /// usable fallback, or an earlier reply of the same conversation still waiting. The outbox
    /// reschedules it without counting an attempt.
    Deferred(i64),
}

/// An inbox that will send a reply: the message's own inbox, or its fallback.
struct Route {
    inbox: Inbox,
    to: String,
    via_fallback: bool,
}

/// Kinds whose customer ids are the same on every inbox of the kind (a phone number, a
/// Telegram user id, a LINE user id within one provider), so a fallback inbox can reach the
/// customer without having heard from them. Page-scoped (Messenger, Instagram) and
/// account-scoped (WeChat OpenID) ids need the customer's own identity on the fallback inbox.
fn ids_are_global(kind: ChannelKind) -> bool {
    matches!(kind, ChannelKind::Telegram | ChannelKind::Whatsapp | ChannelKind::Line)
}

/// The inbox named by `settings.fallback_inbox_id`, if any.
pub fn fallback_of(inbox: &Inbox) -> Option<InboxId> {
    inbox.settings.get(FALLBACK_INBOX_ID).and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))).map(InboxId)
}

pub const FALLBACK_INBOX_ID: &str = "fallback_inbox_id";
pub const RATE_LIMITS: &str = "rate_limits";

/// Per-chat and per-account send budgets of one inbox: token buckets (`per_sec` refill, `burst`
/// size) on the bus, so every node draws from one budget when Redis is configured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    pub chat_per_sec: f64,
    pub chat_burst: f64,
    pub account_per_sec: f64,
    pub account_burst: f64,
}

impl RateLimits {
    /// The platform's published (or conservative) limits:
    /// - Telegram: about 1 message a second to one chat (a burst of 3, so a bot's greeting and
    ///   menu leave together), 30 a second per bot.
    /// - WhatsApp Cloud API: one message every 6 s to one user with bursts of up to 45 (the
    ///   "pair rate limit"), 80 a second per phone number (the default throughput).
    /// - Messenger / Instagram: no per-user number is published; 1 a second (burst 5) per user,
    ///   40 a second per Page / account keeps well inside the Send API's limits.
    /// - LINE: 1 a second (burst 5) per user; 100 a second per channel (push is 2,000 a second).
    /// - WeChat: 1 a second (burst 5) per user; 100 a second per account (daily quotas apply).
    pub fn platform_default(kind: ChannelKind) -> RateLimits {
        let (chat_per_sec, chat_burst, account_per_sec, account_burst) = match kind {
            ChannelKind::Telegram => (1.0, 3.0, 30.0, 30.0),
            ChannelKind::Whatsapp => (1.0 / 6.0, 45.0, 80.0, 80.0),
            ChannelKind::Messenger | ChannelKind::Instagram => (1.0, 5.0, 40.0, 40.0),
            ChannelKind::Line | ChannelKind::Wechat => (1.0, 5.0, 100.0, 100.0),
            ChannelKind::Web | ChannelKind::Api => (100.0, 100.0, 1000.0, 1000.0),
        };
        RateLimits { chat_per_sec, chat_burst, account_per_sec, account_burst }
    }

    /// The inbox's limits: its `settings.rate_limits` over the platform's defaults.
    pub fn of(inbox: &Inbox) -> RateLimits {
        let mut limits = RateLimits::platform_default(inbox.kind);
        if let Some(custom) = inbox.settings.get(RATE_LIMITS) {
            let get = |k: &str| custom.get(k).and_then(serde_json::Value::as_f64).filter(|v| v.is_finite() && *v > 0.0);
            limits.chat_per_sec = get("chat_per_sec").unwrap_or(limits.chat_per_sec);
            limits.chat_burst = get("chat_burst").unwrap_or(limits.chat_burst).max(1.0);
            limits.account_per_sec = get("account_per_sec").unwrap_or(limits.account_per_sec);
            limits.account_burst = get("account_burst").unwrap_or(limits.account_burst).max(1.0);
        }
        limits
    }
}

/// Checks the gateway's inbox settings (`fallback_inbox_id`, `rate_limits`) on create and
/// update; 422 with the setting's name when one is wrong, nothing stored.
pub async fn check_inbox_settings(
    state: &AppState,
    tenant: switchboard_core::ids::TenantId,
    this: Option<InboxId>,
    kind: ChannelKind,
    settings: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), ApiError> {
    if let Some(value) = settings.get(FALLBACK_INBOX_ID).filter(|v| !v.is_null()) {
        let id = value
            .as_i64()
            .map(InboxId)
            .ok_or_else(|| ApiError::Unprocessable(format!("settings.{FALLBACK_INBOX_ID} must be an inbox id (integer)")))?;
        if Some(id) == this {
            return Err(ApiError::Unprocessable(format!("settings.{FALLBACK_INBOX_ID} cannot name the inbox itself")));
        }
        let fallback = match state.store.get_inbox(tenant, id).await {
            Ok(inbox) => inbox,
            Err(switchboard_core::StoreError::NotFound) => {
                return Err(ApiError::Unprocessable(format!("settings.{FALLBACK_INBOX_ID}: no inbox {id} in this tenant")))
            }
            Err(e) => return Err(e.into()),
        };
        if fallback.kind != kind || adapter_for(kind).is_none() {
            return Err(ApiError::Unprocessable(format!(
                "settings.{FALLBACK_INBOX_ID}: inbox {id} is {}, but only another {kind} inbox can stand in for a {kind} inbox",
                fallback.kind
            )));
        }
    }
    if let Some(value) = settings.get(RATE_LIMITS).filter(|v| !v.is_null()) {
        let object = value
            .as_object()
            .ok_or_else(|| ApiError::Unprocessable(format!("settings.{RATE_LIMITS} must be an object")))?;
        for (key, v) in object {
            let min = match key.as_str() {
                "chat_per_sec" | "account_per_sec" => 0.0,
                "chat_burst" | "account_burst" => 1.0,
                other => return Err(ApiError::Unprocessable(format!("settings.{RATE_LIMITS}.{other} is not a rate limit setting"))),
            };
            match v.as_f64() {
                Some(n) if n.is_finite() && n > 0.0 && n >= min => {}
                _ => return Err(ApiError::Unprocessable(format!("settings.{RATE_LIMITS}.{key} must be a number >= {min} (and > 0)"))),
            }
        }
    }
    Ok(())
}

/// How long a reply waits behind an earlier reply of its conversation that is being sent
/// right now (leased, possibly on another node) before it looks again.
const BEHIND_IN_FLIGHT_MS: i64 = 250;

/// Sends one outbox entry of kind `platform_send` through the inbox's adapter, or through its
/// fallback inbox while the inbox's circuit is open. In order:
/// 1. an earlier reply of the same conversation still pending → defer behind it (replies reach
///    a customer in the order they were written, whatever retries and rate limits do);
/// 2. the circuit: closed → the own inbox; open → the fallback inbox if one is configured, of
///    the same kind, reachable for this customer and not open itself; otherwise defer until the
///    cool-down ends;
/// 3. the delivering inbox's rate limits, per chat then per account → defer by exactly the
///    bucket's wait when empty (no attempt spent, nothing dropped);
/// 4. send; record health, the platform's message id, and the fallback that delivered.
pub async fn deliver_platform(state: &AppState, entry: &OutboxEntry) -> Result<Delivery, DeliveryError> {
    let store = state.store.as_ref();
    let transient = |e: switchboard_core::StoreError| DeliveryError::Transient(format!("loading delivery: {e}"));
    let inbox = store.get_inbox(entry.tenant_id, entry.inbox_id).await.map_err(transient)?;
    let message_id = entry.message_id.ok_or_else(|| DeliveryError::Permanent("outbox entry has no message".into()))?;
    let message = store.get_message(entry.tenant_id, message_id).await.map_err(transient)?;
    let conversation = store.get_conversation(entry.tenant_id, message.conversation_id).await.map_err(transient)?;
    let now = now_ms();
    if let Some(due) = store
        .earlier_pending_delivery(entry.tenant_id, inbox.id, conversation.id, PLATFORM_SEND, entry.id)
        .await
        .map_err(transient)?
    {
        return Ok(Delivery::Deferred((due + 1).max(now + BEHIND_IN_FLIGHT_MS)));
    }
    let identities = store.list_contact_identities(entry.tenant_id, conversation.contact_id).await.map_err(transient)?;
    let to = identities
        .iter()
        .find(|i| i.inbox_id == inbox.id)
        .map(|i| i.external_id.clone())
        .ok_or_else(|| DeliveryError::Permanent("the customer has no identity on this inbox".into()))?;
    state.health.note_fallback(inbox.id, fallback_of(&inbox));

    let route = match state.health.permit(inbox.id, now) {
        Ok(()) => Route { inbox, to, via_fallback: false },
        Err(wait_ms) => match fallback_route(state, &inbox, &to, &identities, now).await {
            Some(route) => route,
            // An open breaker defers the send without calling the platform, until the
            // cool-down ends.
            None => return Ok(Delivery::Deferred(now + wait_ms.max(1))),
        },
    };
    // The permit may be the half-open circuit's one probe: any return before the send is
    // recorded hands it back, or the circuit would wait forever for a probe that never ran.
    let mut probe = ProbePermit { health: &state.health, inbox: route.inbox.id, settled: false };

    let limits = RateLimits::of(&route.inbox);
    let buckets = [
        (format!("rl:chat:{}:{}", route.inbox.id, route.to), limits.chat_per_sec, limits.chat_burst),
        (format!("rl:account:{}", route.inbox.id), limits.account_per_sec, limits.account_burst),
    ];
    for (key, per_sec, burst) in &buckets {
        match state.bus.take_token(key, *per_sec, *burst).await {
            Ok(0) => {}
            Ok(wait) => {
                metrics::counter!("switchboard_outbox_rate_limited_total", "kind" => route.inbox.kind.as_str()).increment(1);
                return Ok(Delivery::Deferred(now + i64::try_from(wait).unwrap_or(1_000)));
            }
            // Without the shared budget we cannot know what other nodes sent: wait a second
            // rather than risk the platform's own (harsher) throttling.
            Err(e) => {
                tracing::warn!(error = %e, "rate limit bucket unavailable; deferring");
                return Ok(Delivery::Deferred(now + 1_000));
            }
        }
    }

    let reply_context = match route.inbox.kind {
        // A LINE reply token answers the customer's latest message for about a minute and
        // works once: the first reply within that time takes it (free Reply API), the others
        // push (with X-Line-Retry-Key). It belongs to the inbox the customer wrote to.
        ChannelKind::Line if !route.via_fallback => store
            .take_reply_token(entry.tenant_id, conversation.id, now)
            .await
            .map_err(transient)?
            .map(|token| switchboard_gateway::ReplyContext { token, expires_at_ms: i64::MAX }),
        _ => None,
    };
    let (attachments, files) = outbound_media(state, entry.tenant_id, &message.attachments).await?;
    let outbound = OutboundMessage {
        to: route.to.clone(),
        text: message.text.clone(),
        attachments,
        delivery_id: entry.id.to_string(),
        reply_context,
        last_inbound_at_ms: None,
        now_ms: now_ms(),
        files,
    };
    let adapter = adapter_for(route.inbox.kind).ok_or_else(|| DeliveryError::Permanent(format!("no adapter for {}", route.inbox.kind)))?;
    let mut config = config_of(&route.inbox);
    if route.inbox.kind == ChannelKind::Wechat {
        inject_wechat_token(state, &mut config).await?;
    }
    let started = std::time::Instant::now();
    let sent = adapter.send(&state.http, &config, &outbound).await;
    let latency = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let outcome = match &sent {
        Ok(_) => SendOutcome::Ok,
        Err(DeliveryError::Permanent(e)) => SendOutcome::Permanent(e),
        Err(DeliveryError::Transient(e)) => SendOutcome::Transient(e),
        Err(DeliveryError::Throttled { detail, .. }) => SendOutcome::Transient(detail),
    };
    state.health.record(route.inbox.id, now_ms(), latency, outcome);
    probe.settled = true;
    let receipt = match sent {
        Err(e) if switchboard_gateway::wechat::is_access_token_error(&e) => {
            // Expired or revoked early: forget it so the retry fetches a fresh one.
            forget_wechat_token(state, &config).await;
            return Err(e);
        }
        other => other?,
    };
    if route.via_fallback {
        state.health.record_via_fallback(entry.inbox_id);
        metrics::counter!("switchboard_outbox_fallback_total", "kind" => route.inbox.kind.as_str()).increment(1);
        if let Err(e) = store.set_delivered_via(entry.tenant_id, message.id, route.inbox.id, now_ms()).await {
            tracing::warn!(error = %e, "could not record the fallback inbox that delivered the message");
        }
    }
    if let Some(platform_id) = receipt.platform_message_id {
        if let Err(e) = store.set_platform_message_id(entry.tenant_id, message.id, &platform_id, now_ms()).await {
            // Delivered all the same; only later receipts for it will not find the message.
            tracing::warn!(error = %e, "could not record the platform message id");
        }
    }
    Ok(Delivery::Sent)
}

/// A circuit permit not yet settled by `ChannelHealth::record`: dropped, it gives a half-open
/// circuit's probe back (`release_probe`) unless `settled` (the outcome was recorded).
struct ProbePermit<'a> {
    health: &'a crate::health::ChannelHealth,
    inbox: InboxId,
    settled: bool,
}

impl Drop for ProbePermit<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.health.release_probe(self.inbox);
        }
    }
}

/// The fallback route for a reply whose inbox has its circuit open, if one is usable now.
async fn fallback_route(
    state: &AppState,
    inbox: &Inbox,
    to: &str,
    identities: &[switchboard_core::domain::ContactIdentity],
    now: i64,
) -> Option<Route> {
    let fallback_id = fallback_of(inbox)?;
    let fallback = state.store.get_inbox(inbox.tenant_id, fallback_id).await.ok()?;
    if fallback.kind != inbox.kind {
        tracing::warn!(inbox_id = %inbox.id, fallback = %fallback_id, "fallback inbox is of another kind; not used");
        return None;
    }
    let to = match identities.iter().find(|i| i.inbox_id == fallback.id) {
        Some(identity) => identity.external_id.clone(),
        None if ids_are_global(inbox.kind) => to.to_owned(),
        None => return None,
    };
    state.health.permit(fallback.id, now).ok()?;
    Some(Route { inbox: fallback, to, via_fallback: true })
}

/// The attachments of a reply as platforms get them, and the bytes of those that are files of
/// our media store. Such a file's link is re-signed as a public (absolute) link valid for
/// `media.url_ttl_secs` when the server has a `public_url`; platforms that upload use the bytes.
async fn outbound_media(
    state: &AppState,
    tenant: switchboard_core::ids::TenantId,
    attachments: &[Attachment],
) -> Result<(Vec<Attachment>, Vec<Option<switchboard_gateway::OutboundFile>>), DeliveryError> {
    let mut out = Vec::with_capacity(attachments.len());
    let mut files = Vec::with_capacity(attachments.len());
    for attachment in attachments {
        let mut attachment = attachment.clone();
        let ours = attachment.url.as_deref().and_then(switchboard_media::parse_media_url).filter(|u| u.tenant == tenant.0);
        let file = match ours {
            Some(link) => {
                let (bytes, mime) = state.media.read_all(tenant, &link.sha256).await.map_err(|e| match e {
                    switchboard_media::MediaError::NotFound => DeliveryError::Permanent("an attachment's file is no longer stored".into()),
                    other => DeliveryError::Transient(format!("reading an attachment: {other}")),
                })?;
                attachment.url = Some(state.media.sign(tenant, &link.sha256, link.name.as_deref()).0);
                let name = link.name.clone().or_else(|| attachment.name.clone()).unwrap_or_else(|| "file".into());
                Some(switchboard_gateway::OutboundFile { bytes, mime, name })
            }
            None => None,
        };
        out.push(attachment);
        files.push(file);
    }
    Ok((out, files))
}

/// A WeChat account's cache key: one access token per (AppID, API host).
fn wechat_key(config: &ChannelConfig) -> String {
    format!("wechat-token:{}@{}", config.setting("app_id").unwrap_or_default(), config.setting("api_base_url").unwrap_or_default())
}

/// Serializes token fetches of one node (several outbox lanes may need the token at once); the
/// bus lease does the same across nodes. Keyed by node id, so two nodes in one process (tests)
/// still meet only through the bus.
fn node_fetch_lock(node: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    static LOCKS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>> =
        std::sync::OnceLock::new();
    let mut locks = LOCKS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    locks.entry(node.to_owned()).or_default().clone()
}

/// How long a node waits for another node's token fetch before giving up for this attempt.
const WECHAT_FETCH_WAIT: Duration = Duration::from_secs(10);

/// Puts the account's access token into `config.secrets.access_token`.
///
/// WeChat wants one token per account at a time (each fetch invalidates the previous one after
/// a grace period and counts against a daily quota), so the token is cached on the bus (Redis
/// when several nodes run) until five minutes before it expires, and fetched by one node at a
/// time: the fetcher holds the bus lease `{key}:fetch`; other nodes wait for the cached value.
/// A node that dies mid-fetch lets the lease lapse (15 s) and another node fetches.
async fn inject_wechat_token(state: &AppState, config: &mut ChannelConfig) -> Result<(), DeliveryError> {
    if config.secret("access_token").is_some() {
        return Ok(());
    }
    let token = wechat_token(state, config).await?;
    if let serde_json::Value::Object(secrets) = &mut config.secrets {
        secrets.insert("access_token".into(), serde_json::Value::String(token));
    }
    Ok(())
}

async fn wechat_token(state: &AppState, config: &ChannelConfig) -> Result<String, DeliveryError> {
    let key = wechat_key(config);
    let lease = format!("{key}:fetch");
    let bus = |e: switchboard_core::bus::BusError| DeliveryError::Transient(format!("token cache: {e}"));
    let lock = node_fetch_lock(&state.node_id);
    let _node = lock.lock().await;
    let deadline = tokio::time::Instant::now() + WECHAT_FETCH_WAIT;
    loop {
        if let Some(token) = state.bus.cache_get(&key).await.map_err(bus)? {
            return Ok(token);
        }
        if state.bus.try_acquire_lease(&lease, &state.node_id, 15_000).await.map_err(bus)? {
            // Another node may have stored one between our read and our lease.
            let fetched = match state.bus.cache_get(&key).await.map_err(bus)? {
                Some(token) => Ok(token),
                None => match switchboard_gateway::wechat::WechatAdapter::fetch_access_token(&state.http, config).await {
                    Ok((token, expires_in)) => {
                        // Renew five minutes early so no send races the expiry.
                        let ttl_ms = expires_in.saturating_sub(300).max(1).saturating_mul(1000);
                        state.bus.cache_set(&key, &token, ttl_ms).await.map_err(bus).map(|()| token)
                    }
                    Err(e) => Err(e),
                },
            };
            let _ = state.bus.release_lease(&lease, &state.node_id).await;
            return fetched;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DeliveryError::Transient("another node is fetching the WeChat access token; retrying later".into()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn forget_wechat_token(state: &AppState, config: &ChannelConfig) {
    if let Err(e) = state.bus.cache_delete(&wechat_key(config)).await {
        tracing::warn!(error = %e, "could not drop the cached WeChat token");
    }
}

/// How often a node looks for polling inboxes it could take over.
const POLLER_SCAN: Duration = Duration::from_secs(5);
/// Poll lease lifetime; renewed on every poll, so a crashed node's inboxes move within this.
const POLL_LEASE_MS: u64 = 30_000;

/// Finds inboxes in polling mode and keeps one poll loop per inbox on whichever node holds its
/// lease. Runs until shutdown.
pub async fn run_pollers(state: AppState) {
    let mut running: std::collections::HashMap<InboxId, tokio::task::JoinHandle<()>> = Default::default();
    let mut tick = tokio::time::interval(POLLER_SCAN);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.shutdown.cancelled() => break,
        }
        running.retain(|_, h| !h.is_finished());
        for kind in ChannelKind::ALL {
            let Some(adapter) = adapter_for(*kind) else { continue };
            let Ok(inboxes) = state.store.list_inboxes_by_kind_unscoped(*kind).await else { continue };
            for inbox in inboxes.into_iter().filter(|i| i.settings.get("mode").and_then(|m| m.as_str()) == Some("polling")) {
                if running.contains_key(&inbox.id) {
                    continue;
                }
                let key = format!("poll:{}", inbox.id);
                if let Ok(true) = state.bus.try_acquire_lease(&key, &state.node_id, POLL_LEASE_MS).await {
                    let (state, adapter) = (state.clone(), adapter.clone());
                    running.insert(inbox.id, tokio::spawn(async move { poll_inbox(state, adapter, inbox, key).await }));
                }
            }
        }
    }
    for (_, handle) in running {
        let _ = handle.await;
    }
}

/// One inbox's poll loop, run while this node holds the inbox's lease.
async fn poll_inbox(state: AppState, adapter: std::sync::Arc<dyn ChannelAdapter>, inbox: Inbox, lease_key: String) {
    tracing::info!(inbox_id = %inbox.id, kind = %inbox.kind, "polling started on this node");
    let config = config_of(&inbox);
    let mut failures: u32 = 0;
    loop {
        if state.shutdown.is_cancelled() {
            break;
        }
        match state.bus.renew_lease(&lease_key, &state.node_id, POLL_LEASE_MS).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(inbox_id = %inbox.id, "poll lease lost; another node polls this inbox");
                return;
            }
            Err(e) => {
                tracing::warn!(inbox_id = %inbox.id, error = %e, "poll lease check failed; pausing");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        let cursor = match state.store.get_channel_cursor(inbox.id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(inbox_id = %inbox.id, error = %e, "poll cursor unavailable");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let page = tokio::select! {
            p = adapter.poll(&state.http, &config, cursor.as_deref()) => p,
            _ = state.shutdown.cancelled() => break,
        };
        match page {
            Ok(page) => {
                failures = 0;
                // Commit the page, then move the cursor: never the other way round.
                if let Err(e) = commit_events(&state, &inbox, page.events).await {
                    tracing::warn!(inbox_id = %inbox.id, error = %e, "committing polled events failed; re-polling");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                if let Some(next) = page.next_cursor.filter(|n| Some(n) != cursor.as_ref()) {
                    if let Err(e) = state.store.set_channel_cursor(inbox.id, &next, now_ms()).await {
                        tracing::warn!(inbox_id = %inbox.id, error = %e, "saving poll cursor failed; the page will be re-polled");
                    }
                }
            }
            Err(DeliveryError::Permanent(e)) => {
                tracing::error!(inbox_id = %inbox.id, error = %e, "polling stopped: permanent error");
                let _ = state.bus.release_lease(&lease_key, &state.node_id).await;
                return;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = match &e {
                    DeliveryError::Throttled { retry_after_ms, .. } => Duration::from_millis(*retry_after_ms),
                    _ => Duration::from_millis(500u64.saturating_mul(1 << failures.min(6))),
                };
                tracing::warn!(inbox_id = %inbox.id, error = %e, ?delay, "poll failed; backing off");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = state.shutdown.cancelled() => break,
                }
            }
        }
    }
    let _ = state.bus.release_lease(&lease_key, &state.node_id).await;
}

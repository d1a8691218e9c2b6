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
//! - Inbound media: after a new platform message is committed (and the platform answered), a
//!   task downloads each of its media references through the adapter, with retries, into the
//!   media store, and replaces the message's attachments with signed links
//!   ([`spawn_media_fetch`]). A crash or a platform that keeps failing leaves the platform's
//!   reference in place; nothing is lost, the link just stays the platform's.

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
    commit_events(&state, &inbox, outcome.events).await?;
    let answer = outcome.answer;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    Ok((status, [(axum::http::header::CONTENT_TYPE, answer.content_type)], answer.body).into_response())
}

/// Commits every event; returns the first storage error (the platform then redelivers all of
/// them, and the ones already stored are deduplicated).
pub async fn commit_events(state: &AppState, inbox: &Inbox, events: Vec<InboundEvent>) -> Result<(), ApiError> {
    for event in events {
        match event {
            InboundEvent::Message(m) => {
                let outcome = conversations::ingest(state, inbound_message(inbox, m)).await?;
                if outcome.message_created {
                    spawn_media_fetch(state, inbox, &outcome.message);
                }
            }
            InboundEvent::Status { platform_message_id, status } => {
                state.store.apply_receipt(inbox.tenant_id, inbox.id, &platform_message_id, status, now_ms()).await?;
            }
        }
    }
    Ok(())
}

/// Downloads of one inbound attachment: this many attempts, the first retry after
/// [`MEDIA_FETCH_FIRST_RETRY`], doubling (0.5 + 1 + 2 + 4 s), or after the platform's own
/// `retry_after` when it is longer.
const MEDIA_FETCH_ATTEMPTS: u32 = 5;
const MEDIA_FETCH_FIRST_RETRY: Duration = Duration::from_millis(500);

/// Whether an inbound attachment is a platform media reference to fetch: not a location
/// (`geo:`), not the raw payload of an unsupported kind, not already one of our links.
fn fetchable(a: &Attachment) -> bool {
    let Some(url) = a.url.as_deref() else { return false };
    !url.is_empty()
        && !url.starts_with("geo:")
        && !matches!(a.kind.as_str(), "location" | "unsupported" | "contact")
        && switchboard_media::parse_media_url(url).is_none()
}

/// Fetches a new platform message's media into the media store on its own task, then links it
/// to the message (`Store::set_message_attachments`). The platform was already answered: a slow
/// or failing media server never delays or fails ingestion. Attachments that cannot be fetched
/// (a permanent error, every attempt failed, a refused type, over the size limit) keep the
/// platform's reference. Clients see the stored links when they next read the conversation.
fn spawn_media_fetch(state: &AppState, inbox: &Inbox, message: &Message) {
    let wanted: Vec<usize> = message.attachments.iter().enumerate().filter(|(_, a)| fetchable(a)).map(|(i, _)| i).collect();
    if wanted.is_empty() || adapter_for(inbox.kind).is_none() {
        return;
    }
    let (state, inbox, message) = (state.clone(), inbox.clone(), message.clone());
    tokio::spawn(async move {
        let mut attachments = message.attachments.clone();
        let mut fetched = 0;
        for i in wanted {
            match fetch_attachment(&state, &inbox, &attachments[i]).await {
                Ok(stored) => {
                    attachments[i] = stored;
                    fetched += 1;
                }
                Err(why) => {
                    metrics::counter!("switchboard_inbound_media_total", "outcome" => "failed").increment(1);
                    tracing::warn!(inbox_id = %inbox.id, message_id = %message.id, %why, "inbound media not fetched; keeping the platform's reference");
                }
            }
        }
        if fetched == 0 {
            return;
        }
        metrics::counter!("switchboard_inbound_media_total", "outcome" => "stored").increment(fetched);
        if let Err(e) = state.store.set_message_attachments(inbox.tenant_id, message.id, &attachments, now_ms()).await {
            tracing::warn!(message_id = %message.id, error = %e, "linking fetched media to its message failed");
        }
    });
}

/// Downloads one attachment through the inbox's adapter (retrying transient failures) and
/// stores it; answers the attachment with our signed link, the sniffed type and the size.
async fn fetch_attachment(state: &AppState, inbox: &Inbox, attachment: &Attachment) -> Result<Attachment, String> {
    let adapter = adapter_for(inbox.kind).ok_or_else(|| format!("no adapter for {}", inbox.kind))?;
    let media_ref = attachment.url.clone().unwrap_or_default();
    let mut config = config_of(inbox);
    let mut delay = MEDIA_FETCH_FIRST_RETRY;
    let mut attempt = 1;
    let bytes = loop {
        let result = match inbox.kind {
            ChannelKind::Wechat => match inject_wechat_token(state, &mut config).await {
                Ok(()) => adapter.download(&state.http, &config, &media_ref).await,
                Err(e) => Err(e),
            },
            _ => adapter.download(&state.http, &config, &media_ref).await,
        };
        let wait = match result {
            Ok((bytes, _platform_type)) => break bytes,
            Err(DeliveryError::Permanent(why)) => return Err(why),
            Err(e) if attempt >= MEDIA_FETCH_ATTEMPTS => return Err(format!("{attempt} attempts: {e}")),
            Err(DeliveryError::Throttled { retry_after_ms, .. }) => delay.max(Duration::from_millis(retry_after_ms)),
            Err(_) => delay,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = state.shutdown.cancelled() => return Err("shutting down".into()),
        }
        attempt += 1;
        delay *= 2;
    };
    let limit = state.media.limit_for(inbox.tenant_id);
    let body = futures::stream::once(async move { Ok(Bytes::from(bytes)) });
    let stored = state
        .media
        .store
        .put(inbox.tenant_id.0, attachment.name.as_deref(), Box::pin(body), limit)
        .await
        .map_err(|e| e.to_string())?;
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

/// Sends one outbox entry of kind `platform_send` through the inbox's adapter.
pub async fn deliver_platform(state: &AppState, entry: &OutboxEntry) -> Result<(), DeliveryError> {
    let store = state.store.as_ref();
    let transient = |e: switchboard_core::StoreError| DeliveryError::Transient(format!("loading delivery: {e}"));
    let inbox = store.get_inbox(entry.tenant_id, entry.inbox_id).await.map_err(transient)?;
    let adapter = adapter_for(inbox.kind).ok_or_else(|| DeliveryError::Permanent(format!("no adapter for {}", inbox.kind)))?;
    let message_id = entry.message_id.ok_or_else(|| DeliveryError::Permanent("outbox entry has no message".into()))?;
    let message = store.get_message(entry.tenant_id, message_id).await.map_err(transient)?;
    let conversation = store.get_conversation(entry.tenant_id, message.conversation_id).await.map_err(transient)?;
    let identities = store.list_contact_identities(entry.tenant_id, conversation.contact_id).await.map_err(transient)?;
    let to = identities
        .into_iter()
        .find(|i| i.inbox_id == inbox.id)
        .map(|i| i.external_id)
        .ok_or_else(|| DeliveryError::Permanent("the customer has no identity on this inbox".into()))?;
    let outbound = OutboundMessage {
        to,
        text: message.text.clone(),
        attachments: message.attachments.clone(),
        delivery_id: entry.id.to_string(),
        reply_context: None,
        last_inbound_at_ms: None,
        now_ms: now_ms(),
    };
    let mut config = config_of(&inbox);
    if inbox.kind == ChannelKind::Wechat {
        inject_wechat_token(state, &mut config).await?;
    }
    // An open breaker defers the send without calling the platform; the outbox reschedules it
    // for when the cool-down ends.
    if let Err(wait_ms) = state.health.permit(inbox.id, now_ms()) {
        return Err(DeliveryError::Throttled {
            retry_after_ms: u64::try_from(wait_ms).unwrap_or(1_000),
            detail: "provider circuit open after repeated failures".into(),
        });
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
    state.health.record(inbox.id, now_ms(), latency, outcome);
    let receipt = match sent {
        Err(e) if switchboard_gateway::wechat::is_access_token_error(&e) => {
            // Expired or revoked early: forget it so the retry fetches a fresh one.
            wechat_tokens().lock().map(|mut t| t.remove(&wechat_key(&config))).ok();
            return Err(e);
        }
        other => other?,
    };
    if let Some(platform_id) = receipt.platform_message_id {
        if let Err(e) = store.set_platform_message_id(entry.tenant_id, message.id, &platform_id, now_ms()).await {
            // Delivered all the same; only later receipts for it will not find the message.
            tracing::warn!(error = %e, "could not record the platform message id");
        }
    }
    Ok(())
}

/// WeChat access tokens by account, with their expiry. WeChat wants one token per account at a
/// time (each fetch invalidates the last after a grace period and counts against a daily
/// quota), so a node fetches once and reuses it until shortly before it expires.
/// Per node today: with several nodes each fetches its own (WeChat keeps the previous token
/// valid for a few minutes, so sends keep working); a cluster-wide cache is the gateway issue's
/// remaining work.
fn wechat_tokens() -> &'static std::sync::Mutex<std::collections::HashMap<String, (String, i64)>> {
    static TOKENS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, (String, i64)>>> = std::sync::OnceLock::new();
    TOKENS.get_or_init(Default::default)
}

fn wechat_key(config: &ChannelConfig) -> String {
    format!("{}@{}", config.setting("app_id").unwrap_or_default(), config.setting("api_base_url").unwrap_or_default())
}

async fn inject_wechat_token(state: &AppState, config: &mut ChannelConfig) -> Result<(), DeliveryError> {
    if config.secret("access_token").is_some() {
        return Ok(());
    }
    let key = wechat_key(config);
    let now = now_ms();
    let cached = wechat_tokens().lock().ok().and_then(|t| t.get(&key).cloned()).filter(|(_, until)| *until > now);
    let token = match cached {
        Some((token, _)) => token,
        None => {
            let (token, expires_in) = switchboard_gateway::wechat::WechatAdapter::fetch_access_token(&state.http, config).await?;
            // Renew five minutes early so no send races the expiry.
            let until = now + i64::try_from(expires_in.saturating_sub(300)).unwrap_or(0) * 1000;
            if let Ok(mut t) = wechat_tokens().lock() {
                t.insert(key, (token.clone(), until));
            }
            token
        }
    };
    if let serde_json::Value::Object(secrets) = &mut config.secrets {
        secrets.insert("access_token".into(), serde_json::Value::String(token));
    }
    Ok(())
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

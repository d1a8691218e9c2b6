//! The outbox worker: delivers committed replies to their channel, with retries.
//!
//! A reply and its outbox entry commit in one transaction (see `conversations::reply`), so a
//! reply the agent saw acknowledged is never lost. This worker then:
//! 1. leases due entries (`Store::claim_outbox`) for `outbox.lease_ms` — a node that crashes
//!    mid-delivery simply lets its lease run out and any node (itself after a restart) takes the
//!    entry over;
//! 2. delivers each one (signed webhook for the API channel);
//! 3. marks it delivered, or schedules a retry with exponential backoff, or dead-letters it when
//!    the failure is permanent or `outbox.max_attempts` is spent.
//!
//! Delivery is at-least-once: a crash after the receiver answered 2xx but before `complete`
//! commits repeats the delivery with the same `X-Switchboard-Delivery` id, which receivers use to
//! drop the repeat.

use std::time::Duration;

use serde_json::json;
use switchboard_core::domain::{Inbox, OutboxEntry};
use switchboard_gateway::api_channel::{self, WebhookDelivery};
use switchboard_gateway::DeliveryError;

use crate::gateway::Delivery;

use crate::state::AppState;
use crate::time::now_ms;

/// Outbox kind: an API-channel reply delivered to the inbox's webhook URL.
pub const API_WEBHOOK: &str = "api_webhook";

const CLAIM_BATCH: i64 = 32;

/// Runs until shutdown; on shutdown it finishes the batch in hand (draining) and returns.
pub async fn run(state: AppState) {
    let poll = Duration::from_millis(state.settings.outbox.poll_interval_ms);
    loop {
        let worked = match drain_once(&state).await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::warn!(error = %e, "outbox: store unavailable");
                false
            }
        };
        if state.shutdown.is_cancelled() {
            return;
        }
        if worked {
            continue;
        }
        tokio::select! {
            _ = state.outbox_wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = state.shutdown.cancelled() => {
                // One last pass so replies committed just before shutdown go out now.
                let _ = drain_once(&state).await;
                return;
            }
        }
    }
}

/// Claims and delivers one batch; returns how many entries it handled.
pub async fn drain_once(state: &AppState) -> Result<usize, switchboard_core::StoreError> {
    let now = now_ms();
    let lease_until = now + state.settings.outbox.lease_ms;
    let batch = state.store.claim_outbox(&state.node_id, now, lease_until, CLAIM_BATCH).await?;
    let n = batch.len();
    // Inboxes in parallel; within an inbox one after another in commit order, so a customer
    // gets a conversation's messages in the order they were written (the bot's greeting before
    // its menu, an agent's two quick replies as typed).
    // Jobs (inbound media fetches) run in a lane of their own per inbox, so a slow download
    // never holds up replies.
    let mut by_inbox: std::collections::BTreeMap<_, Vec<OutboxEntry>> = std::collections::BTreeMap::new();
    for entry in batch {
        let is_job = entry.kind == crate::gateway::MEDIA_FETCH;
        by_inbox.entry((entry.inbox_id, is_job)).or_default().push(entry);
    }
    let lanes = by_inbox.into_values().map(|mut entries| async move {
        entries.sort_by_key(|e| e.id);
        for entry in entries {
            // A lane can outlast the batch's lease (a slow receiver, a long backlog on one inbox);
            // then another node may have claimed the rest and is delivering it. Renew before each
            // attempt and leave what is no longer ours, or it would be delivered twice.
            let now = now_ms();
            match state.store.renew_outbox_lease(entry.id, &state.node_id, now, now + state.settings.outbox.lease_ms).await {
                Ok(true) => deliver_entry(state, entry).await,
                Ok(false) => tracing::info!(outbox_id = %entry.id, "outbox: lease ran out before delivery; left to whoever claims it"),
                Err(e) => tracing::warn!(outbox_id = %entry.id, error = %e, "outbox: lease not renewed; left to run out"),
            }
        }
    });
    futures::future::join_all(lanes).await;
    Ok(n)
}

async fn deliver_entry(state: &AppState, entry: OutboxEntry) {
    let result = match entry.kind.as_str() {
        API_WEBHOOK => deliver_api_webhook(state, &entry).await.map(|()| Delivery::Sent),
        crate::gateway::PLATFORM_SEND => crate::gateway::deliver_platform(state, &entry).await,
        crate::gateway::MEDIA_FETCH => crate::gateway::run_media_fetch(state, &entry).await.map(|()| Delivery::Sent),
        other => Err(DeliveryError::Permanent(format!("unknown outbox kind {other}"))),
    };
    let now = now_ms();
    let outcome = match result {
        Ok(Delivery::Deferred(at)) => {
            // Held back (rate limit, open circuit, an earlier reply first): back to pending
            // with the attempt given back, and a wake-up when it is due so no poll is needed.
            metrics::counter!("switchboard_outbox_deliveries_total", "result" => "deferred").increment(1);
            let wake = state.outbox_wake.clone();
            let delay = u64::try_from(at.saturating_sub(now)).unwrap_or(0);
            let shutdown = state.shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(delay)) => wake.notify_one(),
                    _ = shutdown.cancelled() => {}
                }
            });
            state.store.defer_outbox(entry.id, at, now).await
        }
        Ok(Delivery::Sent) => {
            metrics::counter!("switchboard_outbox_deliveries_total", "result" => "delivered").increment(1);
            state.store.complete_outbox(entry.id, now).await
        }
        Err(err) => {
            let budget_left = entry.attempts < state.settings.outbox.max_attempts;
            let backoff = backoff_ms(entry.attempts, state.settings.outbox.base_backoff_ms, state.settings.outbox.max_backoff_ms);
            let retry_at = match &err {
                DeliveryError::Transient(_) if budget_left => Some(now + backoff),
                // The platform said when to come back; never sooner than our own backoff.
                DeliveryError::Throttled { retry_after_ms, .. } if budget_left => {
                    Some(now + backoff.max(i64::try_from(*retry_after_ms).unwrap_or(i64::MAX)))
                }
                _ => None,
            };
            let result = if retry_at.is_some() { "retry" } else { "dead" };
            metrics::counter!("switchboard_outbox_deliveries_total", "result" => result).increment(1);
            tracing::info!(outbox_id = %entry.id, attempts = entry.attempts, error = %err, result, "outbox delivery failed");
            state.store.fail_outbox(entry.id, &err.to_string(), retry_at, now).await
        }
    };
    if let Err(e) = outcome {
        // The lease runs out and the entry is retried; at-least-once holds.
        tracing::warn!(outbox_id = %entry.id, error = %e, "outbox: could not record delivery result");
    }
}

/// Delay before the next attempt after `attempts` tries: base × 2^(attempts-1), capped.
pub fn backoff_ms(attempts: i64, base: i64, cap: i64) -> i64 {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    base.saturating_mul(1_i64 << exp).min(cap)
}

async fn deliver_api_webhook(state: &AppState, entry: &OutboxEntry) -> Result<(), DeliveryError> {
    let store = state.store.as_ref();
    let transient = |e: switchboard_core::StoreError| DeliveryError::Transient(format!("loading delivery: {e}"));
    let inbox: Inbox = store.get_inbox(entry.tenant_id, entry.inbox_id).await.map_err(transient)?;
    let url = inbox.settings.get("webhook_url").and_then(|v| v.as_str()).filter(|u| !u.is_empty());
    let Some(url) = url else {
        return Err(DeliveryError::Permanent("inbox has no webhook_url".into()));
    };
    let secret = inbox.secrets.get("webhook_secret").and_then(|v| v.as_str()).unwrap_or_default();
    let message_id = entry.message_id.ok_or_else(|| DeliveryError::Permanent("outbox entry has no message".into()))?;
    let message = store.get_message(entry.tenant_id, message_id).await.map_err(transient)?;
    let conversation = store.get_conversation(entry.tenant_id, message.conversation_id).await.map_err(transient)?;
    let identities = store.list_contact_identities(entry.tenant_id, conversation.contact_id).await.map_err(transient)?;
    let contact_id = identities.into_iter().find(|i| i.inbox_id == inbox.id).map(|i| i.external_id);
    let delivery_id = entry.id.to_string();
    let body = json!({
        "event": "message.created",
        "delivery_id": delivery_id,
        "inbox_id": inbox.id,
        "conversation_id": conversation.id,
        "contact": { "id": contact_id },
        "message": message,
    });
    let body = serde_json::to_vec(&body).map_err(|e| DeliveryError::Permanent(e.to_string()))?;
    let timeout = Duration::from_millis(state.settings.outbox.request_timeout_ms);
    let delivery = WebhookDelivery { url, secret, delivery_id: &delivery_id, body, timestamp: now_ms() / 1000 };
    api_channel::deliver(&state.http, delivery, timeout).await
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(1, 1000, 60_000), 1000);
        assert_eq!(backoff_ms(2, 1000, 60_000), 2000);
        assert_eq!(backoff_ms(4, 1000, 60_000), 8000);
        assert_eq!(backoff_ms(40, 1000, 60_000), 60_000);
    }
}

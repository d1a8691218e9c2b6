//! Helpers shared by the test modules: sample events, bounded waits, and finding a test Redis.

use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use serde_json::json;
use switchboard_bus::BusEvent;
use switchboard_core::ids::{ConversationId, TenantId, UserId};

/// One event of every variant. The `match` below has no wildcard on purpose: adding a variant
/// to `BusEvent` breaks this file until the new variant gets a sample, so the round-trip and
/// delivery tests keep covering every variant.
pub fn sample_events() -> Vec<BusEvent> {
    let events = vec![
        BusEvent::MessageCreated {
            tenant_id: TenantId(1),
            conversation_id: ConversationId(10),
            assignee_id: Some(UserId(7)),
            payload: json!({"id": 100, "body": "héllo \"quoted\" \n line", "attachments": [{"url": "https://x/y.png"}]}),
        },
        BusEvent::ConversationUpdated {
            tenant_id: TenantId(1),
            conversation_id: ConversationId(10),
            assignee_id: Some(UserId(7)),
            previous_assignee_id: None,
            payload: json!({"state": "open", "nested": {"n": 1.5, "null": null}}),
        },
        BusEvent::AgentUpdated {
            tenant_id: TenantId(2),
            user_id: UserId(7),
            payload: json!({"status": "away", "load": 3}),
        },
        BusEvent::QueueChanged { tenant_id: TenantId(3), payload: json!({"waiting": [{"id": 1, "position": 1}]}) },
        BusEvent::DispatchNeeded { tenant_id: TenantId(i64::MAX) },
        BusEvent::Typing {
            tenant_id: TenantId(4),
            conversation_id: ConversationId(11),
            assignee_id: Some(UserId(7)),
            sender: switchboard_core::domain::SenderKind::Contact,
        },
        BusEvent::Resync { reason: "test".into() },
        BusEvent::AccessChanged { tenant_id: TenantId(5), user_id: UserId(9), token_hash: Some("ab12".into()) },
    ];
    for event in &events {
        match event {
            BusEvent::MessageCreated { .. }
            | BusEvent::ConversationUpdated { .. }
            | BusEvent::AgentUpdated { .. }
            | BusEvent::QueueChanged { .. }
            | BusEvent::DispatchNeeded { .. }
            | BusEvent::Typing { .. }
            | BusEvent::Resync { .. }
            | BusEvent::AccessChanged { .. } => {}
        }
    }
    events
}

/// The next event within `within`; `None` on timeout. Panics if the stream *ended*: a bus
/// subscription must never end while its bus is alive.
pub async fn next_within(stream: &mut BoxStream<'static, BusEvent>, within: Duration) -> Option<BusEvent> {
    match tokio::time::timeout(within, stream.next()).await {
        Ok(Some(event)) => Some(event),
        Ok(None) => panic!("bus subscription ended while the bus was alive"),
        Err(_) => None,
    }
}

/// The next event, which must arrive within five seconds.
pub async fn expect_event(stream: &mut BoxStream<'static, BusEvent>) -> BusEvent {
    next_within(stream, Duration::from_secs(5)).await.expect("no event within 5s")
}

/// Asserts nothing arrives for `quiet`.
pub async fn expect_silence(stream: &mut BoxStream<'static, BusEvent>, quiet: Duration) {
    if let Some(event) = next_within(stream, quiet).await {
        panic!("expected no event, got {event:?}");
    }
}

pub fn unique_prefix() -> String {
    format!("sbtest:{:016x}:", rand::random::<u64>())
}

fn require_all() -> bool {
    std::env::var("SWITCHBOARD_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Fails the test under `SWITCHBOARD_TEST_REQUIRE_ALL=1`, otherwise prints why it is skipped.
pub fn skip(reason: &str) {
    assert!(!require_all(), "SWITCHBOARD_TEST_REQUIRE_ALL=1 but {reason}");
    eprintln!("note: skipping Redis test: {reason}");
}

/// The test Redis URL if that Redis answers PING within two seconds; otherwise `None` after
/// [`skip`] (which panics under `SWITCHBOARD_TEST_REQUIRE_ALL=1`).
pub async fn redis_url() -> Option<String> {
    let url = std::env::var("SWITCHBOARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let probe = async {
        let client = redis::Client::open(url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<()>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(())) => Some(url),
        Ok(Err(error)) => {
            skip(&format!("Redis at {url} unreachable: {error}"));
            None
        }
        Err(_) => {
            skip(&format!("Redis at {url} did not answer within 2s"));
            None
        }
    }
}

/// A plain connection for inspecting Redis from the test's side.
pub async fn admin(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).expect("url").get_multiplexed_async_connection().await.expect("admin connection")
}

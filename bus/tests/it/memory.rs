//! The in-process bus: the shared conformance checks plus its lag policy.

use std::time::Duration;

use switchboard_bus::{Bus, BusEvent, MemoryBus};
use switchboard_core::ids::TenantId;

use crate::common::{expect_event, expect_silence};
use crate::conformance;

#[tokio::test]
async fn publish_reaches_every_subscriber() {
    conformance::publish_reaches_every_subscriber(&MemoryBus::new()).await;
}

#[tokio::test]
async fn subscription_starts_now() {
    conformance::subscription_starts_now(&MemoryBus::new(), false).await;
}

#[tokio::test]
async fn presence_touch_count_drop() {
    conformance::presence_touch_count_drop(&MemoryBus::new()).await;
}

#[tokio::test]
async fn presence_expires() {
    conformance::presence_expires(&MemoryBus::new()).await;
}

#[tokio::test]
async fn lease_with_competing_owner() {
    conformance::lease_with_competing_owner(&MemoryBus::new()).await;
}

#[tokio::test]
async fn lease_expires() {
    conformance::lease_expires(&MemoryBus::new()).await;
}

#[tokio::test]
async fn publishing_without_subscribers_succeeds() {
    let bus = MemoryBus::new();
    bus.publish(&BusEvent::DispatchNeeded { tenant_id: TenantId(1) }).await.expect("publish");
    bus.ping().await.expect("ping");
    assert_eq!(bus.backend(), "memory");
}

fn dispatch(n: i64) -> BusEvent {
    BusEvent::DispatchNeeded { tenant_id: TenantId(n) }
}

/// A subscriber that never reads must neither block the publisher nor the other subscribers;
/// once it reads again it is told it missed events (`Resync`), skips them and keeps receiving.
#[tokio::test]
async fn lagging_subscriber_skips_and_continues() {
    let capacity = 8;
    let bus = MemoryBus::with_capacity(capacity);
    let mut slow = bus.subscribe().await.expect("subscribe");
    let mut fast = bus.subscribe().await.expect("subscribe");

    let total = 100;
    let publishing = async {
        for n in 0..total {
            bus.publish(&dispatch(n)).await.expect("publish");
        }
    };
    tokio::time::timeout(Duration::from_secs(2), publishing).await.expect("publishing blocked on a slow subscriber");

    // The fast subscriber (which also lagged, since nobody read during publishing) and the slow
    // one are both told how much they missed, then resume at the oldest buffered event and
    // receive the rest in order.
    for subscriber in [&mut fast, &mut slow] {
        let missed = total - capacity as i64;
        assert_eq!(expect_event(subscriber).await, BusEvent::Resync { reason: format!("{missed} bus events skipped") });
        let first = expect_event(subscriber).await;
        assert_eq!(first, dispatch(total - capacity as i64), "expected the oldest buffered event after the lag");
        for n in (total - capacity as i64 + 1)..total {
            assert_eq!(expect_event(subscriber).await, dispatch(n));
        }
    }

    // The stream survived the lag: new events still arrive.
    bus.publish(&dispatch(1000)).await.expect("publish");
    assert_eq!(expect_event(&mut slow).await, dispatch(1000));
    assert_eq!(expect_event(&mut fast).await, dispatch(1000));
    expect_silence(&mut slow, Duration::from_millis(50)).await;
}

/// A subscriber reading concurrently with the publisher sees everything even when another
/// subscriber lags far behind.
#[tokio::test]
async fn keeping_up_subscriber_loses_nothing_while_another_lags() {
    let bus = std::sync::Arc::new(MemoryBus::with_capacity(16));
    let _stalled = bus.subscribe().await.expect("subscribe");
    let mut reader = bus.subscribe().await.expect("subscribe");
    let total = 500;
    let read_all = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < total as usize {
            seen.push(expect_event(&mut reader).await);
        }
        seen
    });
    for n in 0..total {
        bus.publish(&dispatch(n)).await.expect("publish");
        // Give the reader a turn now and then, as a live node would.
        if n % 8 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let seen = read_all.await.expect("reader task");
    assert_eq!(seen, (0..total).map(dispatch).collect::<Vec<_>>());
}

#[tokio::test]
async fn dropping_the_bus_ends_streams() {
    let bus = MemoryBus::new();
    let mut stream = bus.subscribe().await.expect("subscribe");
    drop(bus);
    let next = tokio::time::timeout(Duration::from_secs(1), futures::StreamExt::next(&mut stream)).await;
    assert_eq!(next.expect("stream did not end"), None);
}

#[tokio::test]
async fn connect_without_url_is_memory() {
    assert_eq!(switchboard_bus::connect(None, "sb:").await.expect("connect").backend(), "memory");
    assert_eq!(switchboard_bus::connect(Some("  "), "sb:").await.expect("connect").backend(), "memory");
}

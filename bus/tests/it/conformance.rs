//! Behaviour every bus must share, written once and run against each backend from
//! `memory.rs` and `redis.rs`.

use std::time::Duration;

use switchboard_bus::{Bus, Lease};
use switchboard_core::ids::UserId;

use crate::common::{expect_event, expect_silence, sample_events};

/// Two subscribers each receive every published event, in publish order, unchanged.
pub async fn publish_reaches_every_subscriber<B: Bus>(bus: &B) {
    let mut first = bus.subscribe().await.expect("subscribe");
    let mut second = bus.subscribe().await.expect("subscribe");
    let events = sample_events();
    for event in &events {
        bus.publish(event).await.expect("publish");
    }
    for expected in &events {
        assert_eq!(&expect_event(&mut first).await, expected, "first subscriber");
        assert_eq!(&expect_event(&mut second).await, expected, "second subscriber");
    }
    expect_silence(&mut first, Duration::from_millis(100)).await;
}

/// A subscription sees only what is published after it was made.
/// A subscriber hears what is published after it subscribed. With `in_flight_may_arrive`
/// (Redis), an event published just before may still be on its way through Redis when the
/// subscription starts and be delivered too; it must then come first, once.
pub async fn subscription_starts_now<B: Bus>(bus: &B, in_flight_may_arrive: bool) {
    let events = sample_events();
    bus.publish(&events[0]).await.expect("publish before subscribing");
    let mut late = bus.subscribe().await.expect("subscribe");
    bus.publish(&events[1]).await.expect("publish");
    let first = expect_event(&mut late).await;
    if in_flight_may_arrive && first == events[0] {
        assert_eq!(expect_event(&mut late).await, events[1]);
    } else {
        assert_eq!(first, events[1]);
    }
}

pub async fn presence_touch_count_drop<B: Bus>(bus: &B) {
    let user = UserId(41);
    let other = UserId(42);
    assert_eq!(bus.presence_count(user).await.expect("count"), 0);

    bus.touch_presence(user, "conn-a", 10_000).await.expect("touch a");
    bus.touch_presence(user, "conn-b", 10_000).await.expect("touch b");
    // Touching the same connection again refreshes it; it does not count twice.
    bus.touch_presence(user, "conn-a", 10_000).await.expect("touch a again");
    assert_eq!(bus.presence_count(user).await.expect("count"), 2);
    assert_eq!(bus.presence_count(other).await.expect("count other"), 0, "presence leaked across users");

    bus.drop_presence(user, "conn-a").await.expect("drop a");
    assert_eq!(bus.presence_count(user).await.expect("count"), 1);
    bus.drop_presence(user, "never-seen").await.expect("dropping an unknown connection is a no-op");
    bus.drop_presence(other, "conn-b").await.expect("dropping for another user is a no-op");
    assert_eq!(bus.presence_count(user).await.expect("count"), 1);
    bus.drop_presence(user, "conn-b").await.expect("drop b");
    assert_eq!(bus.presence_count(user).await.expect("count"), 0);
}

pub async fn presence_expires<B: Bus>(bus: &B) {
    let user = UserId(51);
    bus.touch_presence(user, "long", 10_000).await.expect("touch long");
    bus.touch_presence(user, "short", 150).await.expect("touch short");
    bus.touch_presence(user, "refreshed", 600).await.expect("touch refreshed");
    assert_eq!(bus.presence_count(user).await.expect("count"), 3);

    // Margins are generous (hundreds of ms) so a loaded CI machine does not turn sleeps that
    // overshoot into failures.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A heartbeat before expiry keeps the connection: 300 + 600 ms from the first touch.
    bus.touch_presence(user, "refreshed", 600).await.expect("heartbeat");
    assert_eq!(bus.presence_count(user).await.expect("count"), 2, "'short' should have expired after 150ms");

    tokio::time::sleep(Duration::from_millis(400)).await;
    // 700 ms after the first touch: 'refreshed' would be gone without the heartbeat.
    assert_eq!(bus.presence_count(user).await.expect("count"), 2, "the heartbeat did not extend 'refreshed'");

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(bus.presence_count(user).await.expect("count"), 1, "only 'long' should remain");

    // A zero TTL records nothing that counts.
    bus.touch_presence(UserId(52), "instant", 0).await.expect("touch ttl 0");
    assert_eq!(bus.presence_count(UserId(52)).await.expect("count"), 0);
}

pub async fn lease_with_competing_owner<B: Lease>(bus: &B) {
    let key = "inbox-poller:7";
    assert!(bus.try_acquire_lease(key, "node-a", 10_000).await.expect("acquire"), "a free lease must be taken");
    assert!(!bus.try_acquire_lease(key, "node-b", 10_000).await.expect("acquire"), "b must not take a's lease");
    assert!(
        bus.try_acquire_lease(key, "node-a", 10_000).await.expect("re-acquire"),
        "the owner re-acquiring must succeed"
    );

    assert!(!bus.renew_lease(key, "node-b", 10_000).await.expect("renew"), "b must not renew a's lease");
    assert!(bus.renew_lease(key, "node-a", 10_000).await.expect("renew"), "a must renew its lease");

    assert!(!bus.release_lease(key, "node-b").await.expect("release"), "b must not release a's lease");
    assert!(
        !bus.try_acquire_lease(key, "node-b", 10_000).await.expect("acquire"),
        "a's lease must survive b's release"
    );
    assert!(bus.release_lease(key, "node-a").await.expect("release"), "a must release its lease");
    assert!(!bus.release_lease(key, "node-a").await.expect("release twice"), "nothing left to release");

    assert!(bus.try_acquire_lease(key, "node-b", 10_000).await.expect("acquire"), "a released lease must be free");
    assert!(!bus.renew_lease(key, "node-a", 10_000).await.expect("renew"), "the former owner must not renew");
    assert!(bus.release_lease(key, "node-b").await.expect("release"));

    // Leases are per key.
    assert!(bus.try_acquire_lease("inbox-poller:8", "node-a", 10_000).await.expect("acquire"));
    assert!(bus.try_acquire_lease("inbox-poller:9", "node-b", 10_000).await.expect("acquire"));
    assert!(bus.release_lease("inbox-poller:8", "node-a").await.expect("release"));
    assert!(bus.release_lease("inbox-poller:9", "node-b").await.expect("release"));

    assert!(bus.try_acquire_lease(key, "node-a", 0).await.is_err(), "a zero ttl must be rejected");
}

pub async fn lease_expires<B: Lease>(bus: &B) {
    let key = "outbox-flusher";
    assert!(bus.try_acquire_lease(key, "node-a", 150).await.expect("acquire"));
    assert!(!bus.try_acquire_lease(key, "node-b", 150).await.expect("acquire"));
    tokio::time::sleep(Duration::from_millis(350)).await;

    // a went quiet past its TTL: b takes over, and a can neither renew nor release b's lease.
    assert!(bus.try_acquire_lease(key, "node-b", 10_000).await.expect("acquire"), "an expired lease must be free");
    assert!(!bus.renew_lease(key, "node-a", 10_000).await.expect("renew"), "a stale owner must not renew");
    assert!(!bus.release_lease(key, "node-a").await.expect("release"), "a stale owner must not release");
    assert!(!bus.try_acquire_lease(key, "node-a", 10_000).await.expect("acquire"), "b's lease must survive");

    // Renewal keeps a short lease alive past its original TTL.
    let renewed = "renewed";
    assert!(bus.try_acquire_lease(renewed, "node-a", 600).await.expect("acquire"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(bus.renew_lease(renewed, "node-a", 600).await.expect("renew"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!bus.try_acquire_lease(renewed, "node-b", 600).await.expect("acquire"), "renewal did not extend the lease");

    assert!(bus.release_lease(key, "node-b").await.expect("release"));
    assert!(bus.release_lease(renewed, "node-a").await.expect("release"));
}

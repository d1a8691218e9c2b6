//! Hit counters (the login lockout's): counted per key in a fixed window, in process and on a
//! real Redis, and shared by two nodes (two `RedisBus` connections under one prefix).

use switchboard_bus::{Counters, MemoryBus, RedisBus};

use crate::common::{redis_url, unique_prefix};

const WINDOW_MS: u64 = 15 * 60 * 1000;

async fn counts_within_a_window(bus: &dyn Counters) {
    assert_eq!(bus.hit_count("login:a").await.expect("count"), (0, 0));
    for i in 1..=3 {
        let (n, left) = bus.count_hit("login:a", WINDOW_MS).await.expect("hit");
        assert_eq!(n, i);
        assert!(left > WINDOW_MS - 60_000 && left <= WINDOW_MS, "the window runs from the first hit: {left}");
    }
    let (n, left) = bus.hit_count("login:a").await.expect("count");
    assert_eq!(n, 3);
    assert!(left > 0 && left <= WINDOW_MS);
    assert_eq!(bus.hit_count("login:b").await.expect("count"), (0, 0), "per key");
    bus.clear_hits("login:a").await.expect("clear");
    assert_eq!(bus.hit_count("login:a").await.expect("count"), (0, 0));
    // A window that closed starts again at one.
    bus.count_hit("login:c", 1).await.expect("hit");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(bus.hit_count("login:c").await.expect("count"), (0, 0), "closed window");
    assert_eq!(bus.count_hit("login:c", WINDOW_MS).await.expect("hit").0, 1);
    assert!(bus.count_hit("login:d", 0).await.is_err(), "a zero window is refused");
}

#[tokio::test]
async fn memory_counts_hits() {
    counts_within_a_window(&MemoryBus::new()).await;
}

#[tokio::test]
async fn redis_counts_hits() {
    let Some(url) = redis_url().await else { return };
    let bus = RedisBus::connect(&url, &unique_prefix()).await.expect("connect");
    counts_within_a_window(&bus).await;
}

/// Two nodes on one Redis count into one window: hits on A and B add up, a clear on one is seen
/// by the other.
#[tokio::test]
async fn two_nodes_share_one_count() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix();
    let a = RedisBus::connect(&url, &prefix).await.expect("connect a");
    let b = RedisBus::connect(&url, &prefix).await.expect("connect b");
    for i in 1..=6u64 {
        let node: &dyn Counters = if i % 2 == 0 { &a } else { &b };
        assert_eq!(node.count_hit("login:x", WINDOW_MS).await.expect("hit").0, i);
    }
    assert_eq!(a.hit_count("login:x").await.expect("count").0, 6);
    b.clear_hits("login:x").await.expect("clear");
    assert_eq!(a.hit_count("login:x").await.expect("count").0, 0);
}

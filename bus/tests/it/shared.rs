//! Token buckets and the shared cache, in process and on a real Redis, including two nodes
//! (two `RedisBus` connections under one prefix) drawing from one budget.

use switchboard_bus::{MemoryBus, RedisBus, SharedState};

use crate::common::{redis_url, unique_prefix};

/// A full bucket of `burst` gives exactly `burst` tokens at once, then tells how long to wait
/// (at most one token's worth) and gives nothing.
async fn burst_then_wait(bus: &dyn SharedState) {
    for i in 0..3 {
        assert_eq!(bus.take_token("chat:1", 1.0, 3.0).await.expect("take"), 0, "token {i} of the burst");
    }
    let wait = bus.take_token("chat:1", 1.0, 3.0).await.expect("take");
    assert!((1..=1000).contains(&wait), "a fourth token waits for the refill: {wait} ms");
    // Another key has its own budget.
    assert_eq!(bus.take_token("chat:2", 1.0, 3.0).await.expect("take"), 0);
    assert!(bus.take_token("chat:1", 0.0, 3.0).await.is_err(), "a zero rate is refused");
}

async fn cache_round_trip(bus: &dyn SharedState) {
    assert_eq!(bus.cache_get("token:a").await.expect("get"), None);
    bus.cache_set("token:a", "v1", 60_000).await.expect("set");
    assert_eq!(bus.cache_get("token:a").await.expect("get").as_deref(), Some("v1"));
    bus.cache_delete("token:a").await.expect("delete");
    assert_eq!(bus.cache_get("token:a").await.expect("get"), None);
    bus.cache_set("token:b", "short", 1).await.expect("set");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(bus.cache_get("token:b").await.expect("get"), None, "an expired value is gone");
}

#[tokio::test]
async fn memory_bucket_and_cache() {
    let bus = MemoryBus::new();
    burst_then_wait(&bus).await;
    cache_round_trip(&bus).await;
}

#[tokio::test]
async fn redis_bucket_and_cache() {
    let Some(url) = redis_url().await else { return };
    let bus = RedisBus::connect(&url, &unique_prefix()).await.expect("connect");
    burst_then_wait(&bus).await;
    cache_round_trip(&bus).await;
}

/// Two nodes on one Redis share the budget: what one takes, the other cannot.
#[tokio::test]
async fn two_nodes_share_one_budget() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix();
    let a = RedisBus::connect(&url, &prefix).await.expect("connect a");
    let b = RedisBus::connect(&url, &prefix).await.expect("connect b");
    // A slow refill (one token per 100 s) so no token comes back during the test.
    let (rate, burst) = (0.01, 4.0);
    let mut granted = 0;
    for i in 0..8 {
        let node: &dyn SharedState = if i % 2 == 0 { &a } else { &b };
        if node.take_token("acct:telegram:7", rate, burst).await.expect("take") == 0 {
            granted += 1;
        }
    }
    assert_eq!(granted, 4, "eight takes from two nodes get the one burst of four");
    a.cache_set("wechat:app", "tok", 60_000).await.expect("set");
    assert_eq!(b.cache_get("wechat:app").await.expect("get").as_deref(), Some("tok"), "the cache is shared");
}

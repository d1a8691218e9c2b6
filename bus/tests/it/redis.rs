//! The Redis bus against a real Redis: the shared conformance checks, several nodes, the wire
//! format, key expiry, and surviving a killed pub/sub connection.

use std::time::{Duration, Instant};

use switchboard_bus::{Bus, BusEvent, RedisBus};
use switchboard_core::ids::{TenantId, UserId};

use crate::common::{admin, expect_event, expect_silence, next_within, redis_url, sample_events, skip, unique_prefix};
use crate::conformance;

/// A fresh bus under a random prefix, or `None` (test skipped) without Redis.
async fn bus() -> Option<(String, RedisBus)> {
    let url = redis_url().await?;
    let bus = RedisBus::connect(&url, &unique_prefix()).await.expect("connect");
    Some((url, bus))
}

#[tokio::test]
async fn publish_reaches_every_subscriber() {
    let Some((_, bus)) = bus().await else { return };
    conformance::publish_reaches_every_subscriber(&bus).await;
}

#[tokio::test]
async fn subscription_starts_now() {
    let Some((_, bus)) = bus().await else { return };
    conformance::subscription_starts_now(&bus, true).await;
}

#[tokio::test]
async fn presence_touch_count_drop() {
    let Some((_, bus)) = bus().await else { return };
    conformance::presence_touch_count_drop(&bus).await;
}

#[tokio::test]
async fn presence_expires() {
    let Some((_, bus)) = bus().await else { return };
    conformance::presence_expires(&bus).await;
}

#[tokio::test]
async fn lease_with_competing_owner() {
    let Some((_, bus)) = bus().await else { return };
    conformance::lease_with_competing_owner(&bus).await;
}

#[tokio::test]
async fn lease_expires() {
    let Some((_, bus)) = bus().await else { return };
    conformance::lease_expires(&bus).await;
}

/// Two `RedisBus` instances are two nodes: each hears what either publishes, and a deployment
/// under another prefix hears nothing.
#[tokio::test]
async fn two_nodes_hear_each_other() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix();
    let node_a = RedisBus::connect(&url, &prefix).await.expect("connect a");
    let node_b = RedisBus::connect(&url, &prefix).await.expect("connect b");
    let elsewhere = RedisBus::connect(&url, &unique_prefix()).await.expect("connect other deployment");

    let mut on_a = node_a.subscribe().await.expect("subscribe a");
    let mut on_a_too = node_a.subscribe().await.expect("subscribe a again");
    let mut on_b = node_b.subscribe().await.expect("subscribe b");
    let mut on_elsewhere = elsewhere.subscribe().await.expect("subscribe other");

    let events = sample_events();
    node_a.publish(&events[0]).await.expect("publish from a");
    node_b.publish(&events[1]).await.expect("publish from b");
    for stream in [&mut on_a, &mut on_a_too, &mut on_b] {
        assert_eq!(expect_event(stream).await, events[0]);
        assert_eq!(expect_event(stream).await, events[1]);
    }
    expect_silence(&mut on_elsewhere, Duration::from_millis(200)).await;

    // Presence is shared too: a connection on one node is counted from the other.
    node_a.touch_presence(UserId(9), "on-a", 10_000).await.expect("touch on a");
    node_b.touch_presence(UserId(9), "on-b", 10_000).await.expect("touch on b");
    assert_eq!(node_a.presence_count(UserId(9)).await.expect("count"), 2);
    assert_eq!(elsewhere.presence_count(UserId(9)).await.expect("count"), 0);
    node_b.drop_presence(UserId(9), "on-a").await.expect("drop from the other node");
    assert_eq!(node_a.presence_count(UserId(9)).await.expect("count"), 1);
}

/// Every variant survives the trip through Redis (JSON on the wire) unchanged.
#[tokio::test]
async fn every_variant_crosses_redis() {
    let Some((_, bus)) = bus().await else { return };
    let mut stream = bus.subscribe().await.expect("subscribe");
    for event in sample_events() {
        bus.publish(&event).await.expect("publish");
        assert_eq!(expect_event(&mut stream).await, event);
    }
}

/// The channel is `{prefix}events` and carries plain JSON: anything that can PUBLISH (a script,
/// another implementation) can notify nodes. Garbage on the channel is skipped, not fatal.
#[tokio::test]
async fn channel_carries_plain_json_and_survives_garbage() {
    let Some((url, bus)) = bus().await else { return };
    assert_eq!(bus.events_channel(), format!("{}events", bus.prefix()));
    let mut stream = bus.subscribe().await.expect("subscribe");
    let mut conn = admin(&url).await;
    let publish = |payload: &'static str| redis::cmd("PUBLISH").arg(bus.events_channel()).arg(payload).clone();

    publish("not json").query_async::<i64>(&mut conn).await.expect("publish garbage");
    publish(r#"{"type":"unknown_kind"}"#).query_async::<i64>(&mut conn).await.expect("publish unknown");
    let receivers =
        publish(r#"{"type":"dispatch_needed","tenant_id":5}"#).query_async::<i64>(&mut conn).await.expect("publish");
    assert_eq!(receivers, 1, "the bus should hold exactly one subscription");
    assert_eq!(expect_event(&mut stream).await, BusEvent::DispatchNeeded { tenant_id: TenantId(5) });
}

/// The presence key lives as long as its longest-lived connection and no longer.
#[tokio::test]
async fn presence_key_expires_with_its_longest_member() {
    let Some((url, bus)) = bus().await else { return };
    let key = format!("{}presence:{}", bus.prefix(), 77);
    let mut conn = admin(&url).await;

    bus.touch_presence(UserId(77), "long", 10_000).await.expect("touch long");
    bus.touch_presence(UserId(77), "short", 100).await.expect("touch short");
    let pttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await.expect("pttl");
    assert!(pttl > 5_000, "a short touch cut the key's TTL to {pttl}ms");
    let score: f64 = redis::cmd("ZSCORE").arg(&key).arg("long").query_async(&mut conn).await.expect("zscore");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as f64;
    assert!((score - now_ms - 10_000.0).abs() < 2_000.0, "score {score} should be an expiry in epoch ms");

    bus.drop_presence(UserId(77), "long").await.expect("drop long");
    bus.touch_presence(UserId(77), "short", 100).await.expect("touch short again");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let exists: i64 = redis::cmd("EXISTS").arg(&key).query_async(&mut conn).await.expect("exists");
    assert_eq!(exists, 0, "the presence key outlived all its members");
}

#[tokio::test]
async fn lease_is_a_plain_key_with_ttl() {
    let Some((url, bus)) = bus().await else { return };
    use switchboard_bus::Lease;
    let key = format!("{}lease:poller", bus.prefix());
    let mut conn = admin(&url).await;
    assert!(bus.try_acquire_lease("poller", "node-a", 5_000).await.expect("acquire"));
    let owner: String = redis::cmd("GET").arg(&key).query_async(&mut conn).await.expect("get");
    assert_eq!(owner, "node-a");
    let pttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await.expect("pttl");
    assert!((1..=5_000).contains(&pttl), "pttl {pttl}");
    assert!(bus.release_lease("poller", "node-a").await.expect("release"));
    let exists: i64 = redis::cmd("EXISTS").arg(&key).query_async(&mut conn).await.expect("exists");
    assert_eq!(exists, 0);
}

#[tokio::test]
async fn connect_chooses_redis_and_fails_fast_when_unreachable() {
    let Some(url) = redis_url().await else { return };
    let bus = switchboard_bus::connect(Some(&url), &unique_prefix()).await.expect("connect");
    assert_eq!(bus.backend(), "redis");
    bus.ping().await.expect("ping");

    let started = Instant::now();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let refused = RedisBus::connect("redis://127.0.0.1:1", "sb:").await;
    assert!(refused.is_err(), "connecting to a closed port must fail");
    assert!(started.elapsed() < Duration::from_secs(15), "failing took {:?}", started.elapsed());
    assert!(RedisBus::connect("not a url", "sb:").await.is_err());
}

/// Dropping the last handle stops the background subscriber, which ends local streams.
#[tokio::test]
async fn dropping_the_bus_stops_its_subscriber() {
    let Some((url, bus)) = bus().await else { return };
    let channel = bus.events_channel().to_owned();
    let mut stream = bus.subscribe().await.expect("subscribe");
    let clone = bus.clone();
    drop(bus);
    // A clone keeps everything alive.
    clone.publish(&BusEvent::DispatchNeeded { tenant_id: TenantId(1) }).await.expect("publish");
    assert_eq!(expect_event(&mut stream).await, BusEvent::DispatchNeeded { tenant_id: TenantId(1) });
    drop(clone);

    let ended = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut stream)).await;
    assert_eq!(ended.expect("stream did not end after the bus was dropped"), None);
    // And the subscription is gone from Redis.
    let mut conn = admin(&url).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let counts: Vec<(String, i64)> =
            redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel).query_async(&mut conn).await.expect("numsub");
        if counts.first().map(|(_, n)| *n) == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "the pub/sub connection outlived the bus: {counts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Removes the test's ACL user even if the test panics (which also disconnects its clients).
struct AclUser {
    url: String,
    name: String,
}

impl Drop for AclUser {
    fn drop(&mut self) {
        if let Ok(mut conn) = redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection()) {
            let _ = redis::cmd("ACL").arg("DELUSER").arg(&self.name).query::<i64>(&mut conn);
        }
    }
}

/// Ids of the pub/sub connections authenticated as `user`, from `CLIENT LIST TYPE pubsub`.
async fn pubsub_client_ids(conn: &mut redis::aio::MultiplexedConnection, user: &str) -> Vec<String> {
    let list: String =
        redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("pubsub").query_async(conn).await.expect("client list");
    let user_field = format!("user={user}");
    list.lines()
        .filter(|line| line.split(' ').any(|field| field == user_field))
        .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")).map(str::to_owned))
        .collect()
}

/// Kills the subscriber's pub/sub connection from the server side and checks that events
/// published afterwards still reach the same, never-ended stream.
///
/// The bus connects as a throwaway ACL user so that `CLIENT KILL USER .. TYPE pubsub` hits this
/// test's connection only, not those of tests running in parallel.
#[tokio::test]
async fn subscriber_survives_a_killed_pubsub_connection() {
    let Some(url) = redis_url().await else { return };
    let mut admin_conn = admin(&url).await;
    let user = format!("sbtest_{:016x}", rand::random::<u64>());
    let password = format!("{:032x}", rand::random::<u128>());
    let created = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("on")
        .arg(format!(">{password}"))
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .query_async::<()>(&mut admin_conn)
        .await;
    if let Err(error) = created {
        skip(&format!("cannot create an ACL user to isolate CLIENT KILL: {error}"));
        return;
    }
    let _cleanup = AclUser { url: url.clone(), name: user.clone() };

    let mut user_url = url::Url::parse(&url).expect("parse url");
    user_url.set_username(&user).expect("set username");
    user_url.set_password(Some(&password)).expect("set password");

    let prefix = unique_prefix();
    let subscriber_node = RedisBus::connect(user_url.as_str(), &prefix).await.expect("connect subscriber node");
    // Published from another node, whose connections the kill does not touch.
    let publisher_node = RedisBus::connect(&url, &prefix).await.expect("connect publisher node");
    let mut stream = subscriber_node.subscribe().await.expect("subscribe");

    publisher_node.publish(&BusEvent::DispatchNeeded { tenant_id: TenantId(0) }).await.expect("publish");
    assert_eq!(expect_event(&mut stream).await, BusEvent::DispatchNeeded { tenant_id: TenantId(0) });

    let before = pubsub_client_ids(&mut admin_conn, &user).await;
    assert_eq!(before.len(), 1, "expected one pub/sub connection for the bus, found {before:?}");
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("USER")
        .arg(&user)
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut admin_conn)
        .await
        .expect("client kill");
    assert_eq!(killed, 1, "CLIENT KILL should have closed the bus's pub/sub connection");

    // Events published during the outage are lost by design; keep publishing until one gets
    // through, which proves the subscriber reconnected and resubscribed.
    let deadline = Instant::now() + Duration::from_secs(15);
    // The restored subscription also tells this node's subscribers that events were lost, ahead
    // of anything published afterwards.
    let mut n = 1;
    let mut resync_first = None;
    let first_after = loop {
        assert!(Instant::now() < deadline, "no event arrived within 15s of killing the pub/sub connection");
        publisher_node.publish(&BusEvent::DispatchNeeded { tenant_id: TenantId(n) }).await.expect("publish");
        let mut got = None;
        while let Some(event) = next_within(&mut stream, Duration::from_millis(200)).await {
            if matches!(event, BusEvent::Resync { .. }) {
                resync_first.get_or_insert(true);
                continue;
            }
            resync_first.get_or_insert(false);
            got = Some(event);
            break;
        }
        if let Some(event) = got {
            break event;
        }
        n += 1;
    };
    assert_eq!(resync_first, Some(true), "no Resync before the first event after the reconnect");
    let BusEvent::DispatchNeeded { tenant_id } = first_after else { panic!("unexpected event {first_after:?}") };
    assert!((1..=n).contains(&tenant_id.0), "got {tenant_id:?}, published 1..={n}");

    // Drain anything still in flight from the probing, then check steady delivery again.
    while next_within(&mut stream, Duration::from_millis(300)).await.is_some() {}
    let after = pubsub_client_ids(&mut admin_conn, &user).await;
    assert_eq!(after.len(), 1, "expected exactly one pub/sub connection after reconnecting, found {after:?}");
    assert_ne!(after, before, "the pub/sub connection was not replaced");

    for event in sample_events() {
        publisher_node.publish(&event).await.expect("publish after reconnect");
        assert_eq!(expect_event(&mut stream).await, event);
    }
    // Commands on the subscriber node were never affected.
    subscriber_node.ping().await.expect("ping");
}

//! [`RedisBus`]: the bus shared by several nodes through one Redis.
//!
//! This module owns the Redis key and channel layout and the connections behind it. It must not
//! hold anything the database does not: every key it writes expires on its own.
//!
//! # Layout (all names start with the configured prefix, default `sb:`)
//!
//! | name                      | type       | content                                        |
//! |---------------------------|------------|------------------------------------------------|
//! | `{prefix}events`          | channel    | JSON-serialized [`BusEvent`]s                  |
//! | `{prefix}presence:{user}` | sorted set | member = connection id, score = expiry (ms)    |
//! | `{prefix}lease:{key}`     | string     | the owner; the key's TTL is the lease's TTL    |
//!
//! # Connections
//!
//! Two kinds, because Redis forbids ordinary commands on a connection in subscribed mode:
//!
//! - Commands (PUBLISH, presence, leases, PING) go through one [`ConnectionManager`], a
//!   multiplexed connection that reconnects by itself after an IO error. The command that hit the
//!   error fails; we retry such a command once (see [`RedisBus::with_retry`]), which makes a
//!   Redis restart invisible to callers unless Redis stays down.
//! - Events arrive on a *dedicated* pub/sub connection owned by one background task per
//!   `RedisBus` (see [`Subscriber`]). The task fans every event out to local subscribers through
//!   a `tokio::sync::broadcast` channel, so a node holds one subscription no matter how many
//!   local streams it hands out. When the connection drops (Redis restart, `CLIENT KILL`,
//!   network failure caught by the periodic PING) the task reconnects with jittered exponential
//!   backoff. Subscribers never see an error: their stream just goes quiet during the outage,
//!   and events published meanwhile are lost. That is acceptable by design — bus events are
//!   notifications, and clients resync from the database.
//!
//! Every event, including those published by this node, reaches local subscribers through Redis.
//! There is no local short-cut, so during an outage this node's own events are lost too; the
//! upside is one ordering (Redis's) for everybody.
//!
//! # Clocks
//!
//! Presence expiry uses the **Redis server clock** (`TIME` inside Lua scripts), never the
//! node's: all nodes compare against one clock, so skew between nodes cannot make one node count
//! another's fresh connection as expired. Needs Redis 5 or newer (scripts replicated by effect).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt};
use rand::Rng;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink, PubSubStream};
use redis::{Client, Msg, RedisError, RedisResult, Script};
use tokio::sync::broadcast;
use tokio::time::{sleep, timeout, Instant, MissedTickBehavior};
use tokio_util::sync::{CancellationToken, DropGuard};

use switchboard_core::bus::{Bus, BusError, BusEvent};
use switchboard_core::ids::UserId;

use crate::fanout::subscriber_stream;
use crate::lease::{check_ttl, Lease};
use crate::{DEFAULT_CAPACITY, DEFAULT_PREFIX};

/// Tuning for [`RedisBus::connect_with`]. The defaults suit production; tests shorten them.
#[derive(Debug, Clone)]
pub struct RedisBusOptions {
    /// Prepended to every channel and key, so several deployments (or test runs) can share one
    /// Redis. Include the separator: `"sb:"`, not `"sb"`.
    pub prefix: String,
    /// How many events a local subscriber may fall behind before losing the oldest.
    pub capacity: usize,
    /// First pause before reconnecting the pub/sub connection; doubles per failed attempt.
    pub reconnect_min: Duration,
    /// Ceiling for the reconnect pause.
    pub reconnect_max: Duration,
    /// How often the pub/sub connection is PINGed. A silently dead TCP connection (peer gone
    /// without a FIN/RST) would otherwise look like a quiet channel forever.
    pub health_check_interval: Duration,
    /// Bound on connecting and on every single command, PINGs included.
    pub command_timeout: Duration,
}

impl Default for RedisBusOptions {
    fn default() -> Self {
        RedisBusOptions {
            prefix: DEFAULT_PREFIX.to_owned(),
            capacity: DEFAULT_CAPACITY,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            health_check_interval: Duration::from_secs(15),
            command_timeout: Duration::from_secs(5),
        }
    }
}

// Presence: prune expired members, add/refresh ours, then let the key live exactly as long as its
// longest-lived member (PEXPIREAT on the highest score). A plain PEXPIRE with this call's TTL
// could cut short another connection that was touched with a longer TTL.
static TOUCH_PRESENCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
        local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
        if last[2] then
            redis.call('PEXPIREAT', KEYS[1], last[2])
        end
        return 1
        ",
    )
});

// A member counts while now < expiry; `ZREMRANGEBYSCORE -inf now` removes score == now too.
static COUNT_PRESENCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        return redis.call('ZCARD', KEYS[1])
        ",
    )
});

// Leases. Each script reads and writes one key inside one script, so the owner check and the
// write are atomic: no other client's command can run between GET and PEXPIRE/DEL.
//
// Acquire is SET NX PX, plus "already mine: extend" so a job may call it on every tick.
static ACQUIRE_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
            return 1
        end
        if redis.call('GET', KEYS[1]) == ARGV[1] then
            redis.call('PEXPIRE', KEYS[1], ARGV[2])
            return 1
        end
        return 0
        ",
    )
});

static RENEW_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('PEXPIRE', KEYS[1], ARGV[2])
        end
        return 0
        ",
    )
});

static RELEASE_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('DEL', KEYS[1])
        end
        return 0
        ",
    )
});

/// The multi-node bus. `Clone` is cheap and shares everything (connection, subscription,
/// background task); the background task stops when the last clone is dropped.
#[derive(Clone)]
pub struct RedisBus {
    commands: ConnectionManager,
    events: broadcast::Sender<BusEvent>,
    prefix: String,
    channel: String,
    /// Cancels the [`Subscriber`] task when the last clone of this bus goes away. Without it the
    /// task (which holds its own `broadcast::Sender`) would keep the subscription, and every
    /// subscriber stream, alive forever.
    _subscriber: Arc<DropGuard>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus").field("channel", &self.channel).finish_non_exhaustive()
    }
}

fn redis_error(context: &str, error: RedisError) -> BusError {
    BusError(format!("redis: {context}: {error}"))
}

/// Errors after which the [`ConnectionManager`] has started reconnecting, so trying the same
/// command once more is worthwhile. Server replies (wrong type, script error...) are not retried.
fn is_connection_error(error: &RedisError) -> bool {
    error.is_io_error() || error.is_connection_dropped() || error.is_connection_refusal() || error.is_timeout()
}

impl RedisBus {
    /// Connects with default options and the given key prefix (e.g. [`DEFAULT_PREFIX`]).
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisBus, BusError> {
        Self::connect_with(url, RedisBusOptions { prefix: prefix.to_owned(), ..RedisBusOptions::default() }).await
    }

    /// Opens and subscribes the pub/sub connection, then connects the command connection and
    /// PINGs, all before returning — so a failure to reach Redis surfaces here, at startup, and
    /// a stream from [`Bus::subscribe`] sees every event published after `connect_with`
    /// returned.
    pub async fn connect_with(url: &str, options: RedisBusOptions) -> Result<RedisBus, BusError> {
        let client = Client::open(url).map_err(|e| redis_error("invalid url", e))?;

        // The pub/sub connection first: it is a single attempt bounded by `command_timeout`, so
        // an unreachable Redis fails startup at once instead of after the connection manager's
        // retries.
        let channel = format!("{}events", options.prefix);
        let connection = open_subscription(&client, &channel, options.command_timeout).await?;

        // The manager's retry policy (backon under the hood) waits about 1s, then multiplies the
        // pause by `factor` per attempt (plus jitter) up to `max_delay`: with 2 retries a dead
        // Redis fails a command after a few seconds rather than queueing callers indefinitely.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(options.command_timeout)
            .set_response_timeout(options.command_timeout)
            .set_factor(2)
            .set_number_of_retries(2)
            .set_max_delay(u64::try_from(options.reconnect_max.as_millis()).unwrap_or(u64::MAX));
        let mut commands =
            ConnectionManager::new_with_config(client.clone(), config).await.map_err(|e| redis_error("connect", e))?;
        redis::cmd("PING").query_async::<()>(&mut commands).await.map_err(|e| redis_error("ping", e))?;

        let (events, _) = broadcast::channel(options.capacity.max(1));
        let cancel = CancellationToken::new();
        let subscriber = Subscriber {
            client,
            channel: channel.clone(),
            events: events.clone(),
            cancel: cancel.clone(),
            options: options.clone(),
        };
        tokio::spawn(subscriber.run(connection));
        tracing::info!(%channel, "redis bus connected");

        Ok(RedisBus { commands, events, prefix: options.prefix, channel, _subscriber: Arc::new(cancel.drop_guard()) })
    }

    /// The key prefix this bus was configured with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The pub/sub channel carrying events (`{prefix}events`).
    pub fn events_channel(&self) -> &str {
        &self.channel
    }

    fn presence_key(&self, user: UserId) -> String {
        format!("{}presence:{}", self.prefix, user)
    }

    fn lease_key(&self, key: &str) -> String {
        format!("{}lease:{}", self.prefix, key)
    }

    /// Runs `op` on the command connection, and once more if it failed at the connection level.
    ///
    /// Why one retry is enough and safe: the [`ConnectionManager`] answers the command that hit a
    /// broken socket with that error and starts reconnecting; the second attempt awaits the new
    /// connection. If Redis is really down the second attempt fails too and the caller hears it.
    /// Every operation here tolerates running twice: a duplicated PUBLISH is a duplicated
    /// notification (clients dedupe by id), presence and lease scripts are idempotent for the
    /// same owner/connection — except that a retried release may report `false` after the first
    /// attempt released.
    pub(crate) async fn with_retry<T, F, Fut>(&self, what: &'static str, mut op: F) -> Result<T, BusError>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = RedisResult<T>>,
    {
        match op(self.commands.clone()).await {
            Ok(value) => Ok(value),
            Err(error) if is_connection_error(&error) => {
                tracing::debug!(what, %error, "redis command failed on the connection; retrying once");
                op(self.commands.clone()).await.map_err(|e| redis_error(what, e))
            }
            Err(error) => Err(redis_error(what, error)),
        }
    }
}

#[async_trait]
impl Bus for RedisBus {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn publish(&self, event: &BusEvent) -> Result<(), BusError> {
        let payload = serde_json::to_vec(event).map_err(|e| BusError(format!("encode event: {e}")))?;
        let channel = self.channel.as_str();
        let payload = payload.as_slice();
        self.with_retry("publish", move |mut conn| async move {
            // The reply is the number of nodes that received it; 0 is fine (nobody listening).
            redis::cmd("PUBLISH").arg(channel).arg(payload).query_async::<i64>(&mut conn).await
        })
        .await?;
        Ok(())
    }

    async fn subscribe(&self) -> Result<BoxStream<'static, BusEvent>, BusError> {
        Ok(subscriber_stream(self.events.subscribe(), "redis"))
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.with_retry("ping", |mut conn| async move { redis::cmd("PING").query_async::<()>(&mut conn).await }).await
    }

    async fn touch_presence(&self, user: UserId, conn_id: &str, ttl_ms: u64) -> Result<(), BusError> {
        let key = self.presence_key(user);
        let key = key.as_str();
        self.with_retry("touch presence", move |mut conn| async move {
            TOUCH_PRESENCE.key(key).arg(conn_id).arg(ttl_ms).invoke_async::<i64>(&mut conn).await
        })
        .await?;
        Ok(())
    }

    async fn drop_presence(&self, user: UserId, conn_id: &str) -> Result<(), BusError> {
        let key = self.presence_key(user);
        let key = key.as_str();
        self.with_retry("drop presence", move |mut conn| async move {
            redis::cmd("ZREM").arg(key).arg(conn_id).query_async::<i64>(&mut conn).await
        })
        .await?;
        Ok(())
    }

    async fn presence_count(&self, user: UserId) -> Result<usize, BusError> {
        let key = self.presence_key(user);
        let key = key.as_str();
        self.with_retry("presence count", move |mut conn| async move {
            COUNT_PRESENCE.key(key).invoke_async::<usize>(&mut conn).await
        })
        .await
    }
}

#[async_trait]
impl Lease for RedisBus {
    async fn try_acquire_lease(&self, key: &str, owner: &str, ttl_ms: u64) -> Result<bool, BusError> {
        check_ttl(ttl_ms)?;
        let key = self.lease_key(key);
        let key = key.as_str();
        let got = self
            .with_retry("acquire lease", move |mut conn| async move {
                ACQUIRE_LEASE.key(key).arg(owner).arg(ttl_ms).invoke_async::<i64>(&mut conn).await
            })
            .await?;
        Ok(got == 1)
    }

    async fn renew_lease(&self, key: &str, owner: &str, ttl_ms: u64) -> Result<bool, BusError> {
        check_ttl(ttl_ms)?;
        let key = self.lease_key(key);
        let key = key.as_str();
        let renewed = self
            .with_retry("renew lease", move |mut conn| async move {
                RENEW_LEASE.key(key).arg(owner).arg(ttl_ms).invoke_async::<i64>(&mut conn).await
            })
            .await?;
        Ok(renewed == 1)
    }

    async fn release_lease(&self, key: &str, owner: &str) -> Result<bool, BusError> {
        let key = self.lease_key(key);
        let key = key.as_str();
        let released = self
            .with_retry("release lease", move |mut conn| async move {
                RELEASE_LEASE.key(key).arg(owner).invoke_async::<i64>(&mut conn).await
            })
            .await?;
        Ok(released == 1)
    }
}

/// Opens a fresh pub/sub connection and subscribes it to `channel`, all within `limit`.
/// Returns the two halves: the sink (SUBSCRIBE, PING) and the stream of messages.
async fn open_subscription(
    client: &Client,
    channel: &str,
    limit: Duration,
) -> Result<(PubSubSink, PubSubStream), BusError> {
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, RedisError>(pubsub.split())
    };
    match timeout(limit, attempt).await {
        Ok(Ok(halves)) => Ok(halves),
        Ok(Err(e)) => Err(redis_error("subscribe", e)),
        Err(_) => Err(BusError(format!("redis: subscribe: timed out after {limit:?}"))),
    }
}

/// Why [`Subscriber::pump`] returned.
enum PumpEnd {
    /// The bus was dropped: stop for good.
    Cancelled,
    /// The connection is gone or unhealthy: reconnect.
    Lost(String),
}

/// The background task behind one [`RedisBus`]: owns the dedicated pub/sub connection, decodes
/// messages and forwards them into the local broadcast channel. Exactly one per `RedisBus`
/// (clones share it), so a node never holds more than one subscription.
struct Subscriber {
    client: Client,
    channel: String,
    events: broadcast::Sender<BusEvent>,
    cancel: CancellationToken,
    options: RedisBusOptions,
}

impl Subscriber {
    /// Pump, reconnect, pump... until the bus is dropped. Never returns an error: there is no
    /// one to return it to. Subscribers keep their streams across reconnects because they are
    /// attached to the broadcast channel, which outlives any single Redis connection.
    async fn run(self, mut connection: (PubSubSink, PubSubStream)) {
        loop {
            match self.pump(connection).await {
                PumpEnd::Cancelled => break,
                PumpEnd::Lost(reason) => {
                    tracing::warn!(channel = %self.channel, %reason, "redis bus subscription lost; reconnecting");
                }
            }
            connection = match self.reconnect().await {
                Some(connection) => connection,
                None => break,
            };
            // Anything published between the loss and now is gone; say so, since it explains a
            // client that had to resync.
            tracing::info!(
                channel = %self.channel,
                "redis bus subscription restored; events published during the outage were not delivered"
            );
            // ... so this node's clients, whose sockets stayed up, are told to catch up.
            let _ = self.events.send(BusEvent::Resync { reason: "bus subscription restored after an outage".to_owned() });
        }
        tracing::debug!(channel = %self.channel, "redis bus subscriber stopped");
    }

    /// Forwards messages from one connection until it ends, fails its health check, or the bus is
    /// dropped.
    async fn pump(&self, (mut sink, mut messages): (PubSubSink, PubSubStream)) -> PumpEnd {
        let period = self.options.health_check_interval;
        let mut health = tokio::time::interval_at(Instant::now() + period, period);
        health.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return PumpEnd::Cancelled,
                message = messages.next() => match message {
                    Some(message) => self.forward(&message),
                    // The driver task inside `redis` ends the stream when the socket reaches EOF
                    // or errors: a killed client, a restarted server, a reset connection.
                    None => return PumpEnd::Lost("connection closed".to_owned()),
                },
                _ = health.tick() => {
                    // A dead peer that never sent FIN/RST leaves the stream pending forever; a
                    // PING that goes unanswered is how we notice. PING is allowed in subscribed
                    // mode. Messages arriving meanwhile queue up in the stream, none are lost.
                    match timeout(self.options.command_timeout, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => return PumpEnd::Lost(format!("health check failed: {error}")),
                        Err(_) => return PumpEnd::Lost("health check timed out".to_owned()),
                    }
                }
            }
        }
    }

    fn forward(&self, message: &Msg) {
        match serde_json::from_slice::<BusEvent>(message.get_payload_bytes()) {
            // `send` errs only when no local subscriber exists: nobody to tell, not a failure.
            Ok(event) => {
                let _ = self.events.send(event);
            }
            // Another version of Switchboard (rolling upgrade) or a stray PUBLISH on our channel.
            Err(error) => {
                tracing::warn!(channel = %self.channel, %error, "dropping undecodable bus message");
            }
        }
    }

    /// Tries to open a new subscription until it works or the bus is dropped. Pauses grow
    /// exponentially from `reconnect_min` to `reconnect_max` with "equal jitter" (a random
    /// point in the upper half of the pause), so the nodes of a cluster don't all hit a Redis
    /// that just restarted in the same millisecond. Returns `None` on cancellation.
    async fn reconnect(&self) -> Option<(PubSubSink, PubSubStream)> {
        let mut pause = self.options.reconnect_min;
        let mut attempt: u32 = 1;
        loop {
            let jittered = jitter(pause);
            tokio::select! {
                _ = self.cancel.cancelled() => return None,
                _ = sleep(jittered) => {}
            }
            let opened = tokio::select! {
                _ = self.cancel.cancelled() => return None,
                opened = open_subscription(&self.client, &self.channel, self.options.command_timeout) => opened,
            };
            match opened {
                Ok(connection) => return Some(connection),
                Err(error) => {
                    pause = (pause * 2).min(self.options.reconnect_max);
                    tracing::warn!(
                        channel = %self.channel,
                        attempt,
                        %error,
                        next_retry_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                        "redis bus reconnect failed"
                    );
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }
}

/// A random duration in `[pause / 2, pause]`.
fn jitter(pause: Duration) -> Duration {
    let half = pause / 2;
    let spread = u64::try_from((pause - half).as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(rand::thread_rng().gen_range(0..=spread))
}

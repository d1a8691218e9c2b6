//! [`SharedState`] for both buses: token buckets for outbound rate limits and a small cache with
//! expiry (platform access tokens), shared by every node that shares the bus.
//!
//! # Token bucket
//!
//! A bucket holds at most `burst` tokens and gains `per_sec` a second. Taking one either
//! succeeds (answer 0) or answers the milliseconds until a whole token will be there, taking
//! nothing: the caller defers that delivery for that long (no polling loop, no sleeping while
//! holding anything). On Redis the bucket is a hash `{prefix}bucket:{key}` with `tokens` and
//! `at` (ms), read, refilled and written by one Lua script, so two nodes taking at once are
//! serialized by Redis and share one budget; the time is Redis's own (`TIME`), so clock skew
//! between nodes cannot mint tokens. The key expires once it would be full again (an idle
//! bucket is a full bucket), so nothing is left behind.
//!
//! # Cache
//!
//! `{prefix}cache:{key}` strings with a TTL (`SET PX`). Values are whatever the caller stores;
//! the gateway keeps access tokens here, so the Redis holding them must be as trusted as the
//! database holding the inbox secrets.
//!
//! In process ([`MemoryBus`](crate::MemoryBus)) the same state lives in maps behind a mutex
//! held for a few map operations, never across an `.await`.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use tokio::time::Instant;

use switchboard_core::bus::{BusError, SharedState};

use crate::{MemoryBus, RedisBus};

fn check_rate(per_sec: f64, burst: f64) -> Result<(), BusError> {
    if !(per_sec.is_finite() && per_sec > 0.0 && burst.is_finite() && burst >= 1.0) {
        return Err(BusError(format!("token bucket needs per_sec > 0 and burst >= 1, got {per_sec} and {burst}")));
    }
    Ok(())
}

/// Milliseconds until `tokens` (below 1) reaches 1 at `per_sec`; at least 1.
fn wait_ms(tokens: f64, per_sec: f64) -> u64 {
    let ms = ((1.0 - tokens) * 1000.0 / per_sec).ceil();
    if ms.is_finite() && ms >= 1.0 {
        // Bounded by check_rate's inputs: (1 - tokens) <= 1 and per_sec > 0.
        ms.min(u64::MAX as f64) as u64
    } else {
        1
    }
}

/// The in-process buckets and cache of a [`MemoryBus`].
#[derive(Debug, Default)]
pub(crate) struct MemoryShared {
    /// key -> (tokens, when they were counted).
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    /// key -> (value, expiry).
    cache: Mutex<HashMap<String, (String, Instant)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl SharedState for MemoryBus {
    async fn take_token(&self, key: &str, per_sec: f64, burst: f64) -> Result<u64, BusError> {
        check_rate(per_sec, burst)?;
        let now = Instant::now();
        let mut buckets = lock(&self.shared.buckets);
        // Forget buckets that are full again, so the map stays as small as the active set.
        if buckets.len() > 10_000 {
            buckets.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(3600));
        }
        let (tokens, at) = buckets.get(key).copied().unwrap_or((burst, now));
        let tokens = (tokens + now.duration_since(at).as_secs_f64() * per_sec).min(burst);
        if tokens >= 1.0 {
            buckets.insert(key.to_owned(), (tokens - 1.0, now));
            Ok(0)
        } else {
            buckets.insert(key.to_owned(), (tokens, now));
            Ok(wait_ms(tokens, per_sec))
        }
    }

    async fn cache_get(&self, key: &str) -> Result<Option<String>, BusError> {
        let now = Instant::now();
        let mut cache = lock(&self.shared.cache);
        match cache.get(key) {
            Some((value, until)) if *until > now => Ok(Some(value.clone())),
            Some(_) => {
                cache.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn cache_set(&self, key: &str, value: &str, ttl_ms: u64) -> Result<(), BusError> {
        crate::lease::check_ttl(ttl_ms)?;
        let until = Instant::now() + Duration::from_millis(ttl_ms.min(365 * 24 * 3600 * 1000));
        lock(&self.shared.cache).insert(key.to_owned(), (value.to_owned(), until));
        Ok(())
    }

    async fn cache_delete(&self, key: &str) -> Result<(), BusError> {
        lock(&self.shared.cache).remove(key);
        Ok(())
    }
}

/// KEYS[1] = bucket; ARGV = per_sec, burst. Returns 0 (taken) or the ms to wait.
static TAKE_TOKEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local per_sec = tonumber(ARGV[1])
        local burst = tonumber(ARGV[2])
        local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
        local tokens = tonumber(state[1])
        local at = tonumber(state[2])
        if tokens == nil or at == nil then
            tokens = burst
            at = now
        end
        if now > at then
            tokens = math.min(burst, tokens + (now - at) * per_sec / 1000)
        end
        local wait = 0
        if tokens >= 1 then
            tokens = tokens - 1
        else
            wait = math.max(1, math.ceil((1 - tokens) * 1000 / per_sec))
        end
        redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
        redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / per_sec) + 1000)
        return wait
        ",
    )
});

impl RedisBus {
    fn bucket_key(&self, key: &str) -> String {
        format!("{}bucket:{}", self.prefix(), key)
    }

    fn cache_key(&self, key: &str) -> String {
        format!("{}cache:{}", self.prefix(), key)
    }
}

#[async_trait]
impl SharedState for RedisBus {
    async fn take_token(&self, key: &str, per_sec: f64, burst: f64) -> Result<u64, BusError> {
        check_rate(per_sec, burst)?;
        let key = self.bucket_key(key);
        let key = key.as_str();
        // A retried script after a lost reply may take a second token: the caller then waits a
        // little longer than needed, never less.
        let wait = self
            .with_retry("take token", move |mut conn| async move {
                TAKE_TOKEN.key(key).arg(per_sec).arg(burst).invoke_async::<i64>(&mut conn).await
            })
            .await?;
        Ok(u64::try_from(wait).unwrap_or(0))
    }

    async fn cache_get(&self, key: &str) -> Result<Option<String>, BusError> {
        let key = self.cache_key(key);
        let key = key.as_str();
        self.with_retry("cache get", move |mut conn| async move {
            redis::cmd("GET").arg(key).query_async::<Option<String>>(&mut conn).await
        })
        .await
    }

    async fn cache_set(&self, key: &str, value: &str, ttl_ms: u64) -> Result<(), BusError> {
        crate::lease::check_ttl(ttl_ms)?;
        let key = self.cache_key(key);
        let key = key.as_str();
        self.with_retry("cache set", move |mut conn| async move {
            redis::cmd("SET").arg(key).arg(value).arg("PX").arg(ttl_ms).query_async::<()>(&mut conn).await
        })
        .await
    }

    async fn cache_delete(&self, key: &str) -> Result<(), BusError> {
        let key = self.cache_key(key);
        let key = key.as_str();
        self.with_retry("cache delete", move |mut conn| async move {
            redis::cmd("DEL").arg(key).query_async::<i64>(&mut conn).await
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_whole_milliseconds_until_one_token() {
        assert_eq!(wait_ms(0.0, 1.0), 1000);
        assert_eq!(wait_ms(0.5, 1.0), 500);
        assert_eq!(wait_ms(0.0, 30.0), 34);
        assert_eq!(wait_ms(0.9999, 1.0), 1);
    }
}

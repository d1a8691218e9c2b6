//! [`Counters`] for both buses: hits counted in a fixed window per key, shared by every node that
//! shares the bus (the login lockout counts wrong passwords per email here, so an attacker
//! spreading guesses over several nodes gets no more than one node's budget).
//!
//! A window opens with a key's first hit and lasts `window_ms`; later hits add to the count
//! without extending it; when it closes the key is gone and counting starts afresh. On Redis the
//! key is `{prefix}hits:{key}`, changed by `INCR` and given its expiry (`PEXPIRE`) on the first
//! hit inside one Lua script, so two nodes counting at once both land and the expiry is set
//! exactly once; the expiry runs on Redis's clock, so node clock skew does not matter. In
//! process ([`MemoryBus`](crate::MemoryBus)) the same lives in a map behind a mutex held for a
//! few map operations, never across an `.await`; expired entries are pruned as the map grows.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use tokio::time::Instant;

use switchboard_core::bus::{BusError, Counters};

use crate::{MemoryBus, RedisBus};

/// Above this many keys, expired ones are pruned on the next hit.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct MemoryCounters {
    /// key -> (count, instant the window closes).
    hits: Mutex<HashMap<String, (u64, Instant)>>,
}

fn remaining_ms(until: Instant, now: Instant) -> u64 {
    u64::try_from(until.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
}

#[async_trait]
impl Counters for MemoryBus {
    async fn count_hit(&self, key: &str, window_ms: u64) -> Result<(u64, u64), BusError> {
        crate::lease::check_ttl(window_ms)?;
        let now = Instant::now();
        let mut hits = self.counters.hits.lock().unwrap_or_else(|p| p.into_inner());
        if hits.len() > PRUNE_ABOVE {
            hits.retain(|_, (_, until)| *until > now);
        }
        let entry = hits.entry(key.to_owned()).or_insert((0, now + Duration::from_millis(window_ms)));
        if entry.1 <= now {
            *entry = (0, now + Duration::from_millis(window_ms));
        }
        entry.0 += 1;
        Ok((entry.0, remaining_ms(entry.1, now)))
    }

    async fn hit_count(&self, key: &str) -> Result<(u64, u64), BusError> {
        let now = Instant::now();
        let hits = self.counters.hits.lock().unwrap_or_else(|p| p.into_inner());
        Ok(match hits.get(key) {
            Some((count, until)) if *until > now => (*count, remaining_ms(*until, now)),
            _ => (0, 0),
        })
    }

    async fn clear_hits(&self, key: &str) -> Result<(), BusError> {
        self.counters.hits.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        Ok(())
    }
}

/// KEYS[1] = counter; ARGV[1] = window in ms. Returns {count, ms left in the window}.
static COUNT_HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local n = redis.call('INCR', KEYS[1])
        local ttl = redis.call('PTTL', KEYS[1])
        if n == 1 or ttl < 0 then
            redis.call('PEXPIRE', KEYS[1], ARGV[1])
            ttl = tonumber(ARGV[1])
        end
        return {n, ttl}
        ",
    )
});

/// KEYS[1] = counter. Returns {count, ms left} or {0, 0}.
static HIT_COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local n = tonumber(redis.call('GET', KEYS[1]) or '0')
        local ttl = redis.call('PTTL', KEYS[1])
        if n == 0 or ttl < 0 then
            return {0, 0}
        end
        return {n, ttl}
        ",
    )
});

impl RedisBus {
    fn hits_key(&self, key: &str) -> String {
        format!("{}hits:{}", self.prefix(), key)
    }
}

#[async_trait]
impl Counters for RedisBus {
    async fn count_hit(&self, key: &str, window_ms: u64) -> Result<(u64, u64), BusError> {
        crate::lease::check_ttl(window_ms)?;
        let key = self.hits_key(key);
        let key = key.as_str();
        // A retry after a lost reply may count one hit twice: the lockout then starts one
        // attempt early, never late.
        let (n, ttl) = self
            .with_retry("count hit", move |mut conn| async move {
                COUNT_HIT.key(key).arg(window_ms).invoke_async::<(i64, i64)>(&mut conn).await
            })
            .await?;
        Ok((u64::try_from(n).unwrap_or(0), u64::try_from(ttl).unwrap_or(0)))
    }

    async fn hit_count(&self, key: &str) -> Result<(u64, u64), BusError> {
        let key = self.hits_key(key);
        let key = key.as_str();
        let (n, ttl) = self
            .with_retry("hit count", move |mut conn| async move {
                HIT_COUNT.key(key).invoke_async::<(i64, i64)>(&mut conn).await
            })
            .await?;
        Ok((u64::try_from(n).unwrap_or(0), u64::try_from(ttl).unwrap_or(0)))
    }

    async fn clear_hits(&self, key: &str) -> Result<(), BusError> {
        let key = self.hits_key(key);
        let key = key.as_str();
        self.with_retry("clear hits", move |mut conn| async move {
            redis::cmd("DEL").arg(key).query_async::<i64>(&mut conn).await
        })
        .await?;
        Ok(())
    }
}

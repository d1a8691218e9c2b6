//! The wall clock, read in one place so the core stays IO-free.

use switchboard_core::time::Millis;

pub fn now_ms() -> Millis {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

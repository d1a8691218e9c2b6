//! Time is stored everywhere as milliseconds since the Unix epoch (UTC) in a 64-bit integer:
//! one representation that PostgreSQL, MySQL and SQLite all index and compare identically.

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

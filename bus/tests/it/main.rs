//! Integration tests for `switchboard-bus`: one binary, a module per area.
//!
//! The Redis tests run against the server at `SWITCHBOARD_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`), each under its own random key prefix so they can run in parallel
//! with each other and with other users of that Redis. When Redis is unreachable they print a
//! note and pass, unless `SWITCHBOARD_TEST_REQUIRE_ALL=1`, in which case they fail.

mod common;
mod conformance;
mod counters;
mod events;
mod memory;
mod redis;
mod shared;

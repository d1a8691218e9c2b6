//! Test support shared with other crates' tests: a fresh, uniquely named database per test on
//! the PostgreSQL and MySQL servers named by environment variables, and a check whether those
//! servers are reachable at all (so suites can skip a backend on a laptop without it).
//!
//! - `SWITCHBOARD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! - `SWITCHBOARD_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`)
//! - `SWITCHBOARD_TEST_REQUIRE_ALL=1` turns "server unreachable" from a skip into a failure
//!   (see [`require_all`]).
//!
//! Not for production use; the panicking helpers panic with a message naming what to fix.

use crate::dialect::Dialect;
use sqlx::migrate::MigrateDatabase;
use sqlx::{Any, AnyConnection, Connection};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const POSTGRES_URL_VAR: &str = "SWITCHBOARD_TEST_POSTGRES_URL";
pub const MYSQL_URL_VAR: &str = "SWITCHBOARD_TEST_MYSQL_URL";
pub const REQUIRE_ALL_VAR: &str = "SWITCHBOARD_TEST_REQUIRE_ALL";

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// The server URL tests use for `kind` (env var or default); `sqlite::memory:` for SQLite.
pub fn server_url(kind: Dialect) -> String {
    match kind {
        Dialect::Postgres => std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned()),
        Dialect::Mysql => std::env::var(MYSQL_URL_VAR).unwrap_or_else(|_| DEFAULT_MYSQL_URL.to_owned()),
        Dialect::Sqlite => "sqlite::memory:".to_owned(),
    }
}

/// Whether `SWITCHBOARD_TEST_REQUIRE_ALL` asks for every backend to be tested.
pub fn require_all() -> bool {
    matches!(std::env::var(REQUIRE_ALL_VAR).as_deref(), Ok("1") | Ok("true") | Ok("yes"))
}

/// Whether the test server for `kind` accepts a connection (within 5 s). SQLite always can.
/// Remembered per process, so a missing server costs one timeout, not one per test.
pub async fn server_reachable(kind: Dialect) -> bool {
    static SEEN: Mutex<Option<HashMap<Dialect, bool>>> = Mutex::new(None);
    if kind == Dialect::Sqlite {
        return true;
    }
    if let Some(known) = SEEN.lock().ok().and_then(|seen| seen.as_ref().and_then(|m| m.get(&kind).copied())) {
        return known;
    }
    crate::install_drivers();
    let url = normalized(&server_url(kind));
    let reachable =
        matches!(tokio::time::timeout(Duration::from_secs(5), AnyConnection::connect(&url)).await, Ok(Ok(_)));
    if let Ok(mut seen) = SEEN.lock() {
        seen.get_or_insert_with(HashMap::new).insert(kind, reachable);
    }
    reachable
}

/// Creates an empty database with a unique name on the test server for `kind` and returns its
/// URL; returns `sqlite::memory:` for SQLite (every pool gets its own in-memory database).
pub async fn try_scratch_database_url(kind: Dialect) -> Result<String, sqlx::Error> {
    if kind == Dialect::Sqlite {
        return Ok("sqlite::memory:".to_owned());
    }
    crate::install_drivers();
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let name = format!("sb_test_{}_{}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed), nanos);
    let url = with_database(&normalized(&server_url(kind)), &name);
    Any::create_database(&url).await?;
    Ok(url)
}

/// [`try_scratch_database_url`], panicking with a helpful message if the server refuses.
pub async fn scratch_database_url(kind: Dialect) -> String {
    match try_scratch_database_url(kind).await {
        Ok(url) => url,
        Err(e) => panic!(
            "could not create a scratch {kind} database ({e}); is the server up? \
             set {POSTGRES_URL_VAR} / {MYSQL_URL_VAR} to point elsewhere"
        ),
    }
}

/// Drops a database made by [`scratch_database_url`] (best effort; close its pools first).
pub async fn drop_scratch_database(url: &str) {
    let Ok((kind, url)) = Dialect::from_url(url) else { return };
    let dropped = match kind {
        Dialect::Sqlite => return,
        // WITH (FORCE) also ends sessions a failed test may have left behind.
        Dialect::Postgres => Any::force_drop_database(&url).await,
        Dialect::Mysql => Any::drop_database(&url).await,
    };
    if let Err(e) = dropped {
        eprintln!("note: could not drop scratch database {url}: {e}");
    }
}

fn normalized(url: &str) -> String {
    Dialect::from_url(url).map(|(_, u)| u).unwrap_or_else(|_| url.to_owned())
}

/// `url` with its database (the path) replaced by `name`, query string kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database("mysql://root@h/test?ssl-mode=disabled", "x"), "mysql://root@h/x?ssl-mode=disabled");
        assert_eq!(with_database("mysql://root@h:3306", "x"), "mysql://root@h:3306/x");
    }
}

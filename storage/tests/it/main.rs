//! The storage conformance suite: every check is written once against `&dyn Store` and run on
//! SQLite (in memory), PostgreSQL and MySQL/MariaDB, each test on its own scratch database.
//!
//! A backend whose server is unreachable is skipped with a note, unless
//! `SWITCHBOARD_TEST_REQUIRE_ALL=1`, which turns the skip into a failure (CI sets it). Server
//! URLs come from `SWITCHBOARD_TEST_POSTGRES_URL` / `SWITCHBOARD_TEST_MYSQL_URL`.

#![allow(clippy::unwrap_used)] // tests may unwrap (STYLE.md)

/// Generates, for each named `async fn check(store: &dyn Store)` of the calling module, one
/// `#[tokio::test]` per backend: `<module>::sqlite::<check>`, `<module>::postgres::<check>`,
/// `<module>::mysql::<check>`.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        conformance!(@backend sqlite, Sqlite, $($check),*);
        conformance!(@backend postgres, Postgres, $($check),*);
        conformance!(@backend mysql, Mysql, $($check),*);
    };
    (@backend $module:ident, $dialect:ident, $($check:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    crate::harness::run(
                        switchboard_storage::Dialect::$dialect,
                        |store| Box::pin(super::$check(store)),
                    )
                    .await;
                }
            )*
        }
    };
}

mod harness;

mod accounts;
mod assignment;
mod audit;
mod bot;
mod canned;
mod channels;
mod inboxes;
mod ingest;
mod isolation;
mod lifecycle;
mod offers;
mod outbox;
mod replies;
mod routing;
mod secrets;
mod transfer;
mod gateway;

//! SQL storage for Switchboard: one implementation of the core [`Store`] port that serves
//! PostgreSQL, MySQL/MariaDB and SQLite through sqlx's `Any` driver.
//!
//! This crate owns the schema (`migrations/{postgres,mysql,sqlite}`), the connection pool and
//! every SQL statement. It must not contain business rules beyond what the `Store` contract
//! states (who to assign, when to retry a delivery, ... are the server's decisions).
//!
//! The differences between the dialects are confined to [`Dialect`]: placeholders, how an
//! insert returns its id, how an insert skips a duplicate, and per-connection settings. To stay
//! decodable by the Any driver the schema uses only BIGINT and text columns (booleans as 0/1,
//! times as milliseconds, JSON as text).
//!
//! ```no_run
//! # async fn demo() -> Result<(), switchboard_core::StoreError> {
//! let store = switchboard_storage::connect("sqlite::memory:").await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod dialect;
mod error;
mod exec;
mod migrations;
pub mod secrets;
mod sql;
pub mod testkit;

pub use dialect::Dialect;
pub use switchboard_core::store::Store;
pub use switchboard_core::StoreError;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::Executor;
use std::sync::Once;
use std::time::Duration;

/// Pool settings; the defaults suit a server node.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Upper bound of open connections (PostgreSQL / MySQL). SQLite always uses one, see
    /// [`SqlStore::connect_with`].
    pub max_connections: u32,
    /// How long a caller waits for a free connection before the store reports `Unavailable`.
    pub acquire_timeout: Duration,
    /// Run the embedded migrations while connecting.
    pub migrate: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { max_connections: 10, acquire_timeout: Duration::from_secs(10), migrate: true }
    }
}

/// The `Store` over a SQL database. Cheap to clone (the pool is reference-counted).
#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    /// Seals and opens inbox secrets (`secrets`); without a key they are plaintext JSON.
    secrets: std::sync::Arc<secrets::SecretsKeyring>,
}

/// Connects to `database_url` (`postgres://`, `postgresql://`, `mysql://`, `mariadb://` or
/// `sqlite:`) with default options and brings the schema up to date.
pub async fn connect(database_url: &str) -> Result<SqlStore, StoreError> {
    SqlStore::connect_with(database_url, StoreOptions::default()).await
}

static INSTALL_DRIVERS: Once = Once::new();

/// Registers the Postgres, MySQL and SQLite drivers with sqlx's Any driver (once per process).
pub(crate) fn install_drivers() {
    INSTALL_DRIVERS.call_once(sqlx::any::install_default_drivers);
}

impl SqlStore {
    /// Connects, configures every new connection for its dialect, and (unless told otherwise)
    /// runs the migrations.
    pub async fn connect_with(database_url: &str, options: StoreOptions) -> Result<SqlStore, StoreError> {
        install_drivers();
        let (dialect, url) = Dialect::from_url(database_url)?;
        let mut pool = AnyPoolOptions::new().acquire_timeout(options.acquire_timeout);
        let url = match dialect {
            Dialect::Postgres => {
                // READ COMMITTED is PostgreSQL's default, which is what the insert-then-select
                // dedupe relies on (each statement sees rows committed before it started).
                pool = pool.max_connections(options.max_connections);
                url
            }
            Dialect::Mysql => {
                pool = pool.max_connections(options.max_connections).after_connect(|conn, _meta| {
                    Box::pin(async move {
                        // InnoDB defaults to REPEATABLE READ, where a plain SELECT keeps reading
                        // the transaction's first snapshot. After `INSERT IGNORE` skipped a row
                        // that another transaction committed meanwhile, we must *see* that row:
                        // READ COMMITTED takes a fresh snapshot per statement, as PostgreSQL does.
                        conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED").await?;
                        Ok(())
                    })
                });
                url
            }
            Dialect::Sqlite => {
                // One connection: SQLite allows one writer at a time anyway, and a single
                // connection turns what would be SQLITE_BUSY / lock-upgrade deadlocks between
                // our own transactions into an orderly queue on the pool. It also makes
                // `sqlite::memory:` one database (each connection would otherwise get its own),
                // which is why the connection must never be recycled either.
                pool = pool.max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None).after_connect(
                    |conn, _meta| {
                        Box::pin(async move {
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            // WAL lets readers in other processes (backups, sqlite3 shell) read
                            // while we write; an in-memory database answers "memory" and ignores it.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA busy_timeout = 5000").await?;
                            Ok(())
                        })
                    },
                );
                sqlite_create_if_missing(&url)
            }
        };
        let pool = pool.connect(&url).await.map_err(error::Error::from)?;
        let store = SqlStore { pool, dialect, secrets: Default::default() };
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Applies the embedded migrations of this dialect that the database has not seen yet.
    /// Safe to call from several nodes at once: the migrator runs under a database-wide lock
    /// (PostgreSQL advisory lock via sqlx; on MySQL our own `GET_LOCK`, see below; SQLite's
    /// write lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = migrations::migrator(self.dialect).await.map_err(error::Error::from)?;
        // Lock, migrate and unlock on one connection: MySQL's named locks belong to a session.
        let mut conn = self.pool.acquire().await.map_err(error::Error::from)?;
        if self.dialect == Dialect::Mysql {
            // sqlx locks with GET_LOCK(name, -1), which MySQL takes as "wait forever" but
            // MariaDB answers at once with NULL (no lock) — two nodes starting together would
            // then both apply the migration and one fails on `_sqlx_migrations`' primary key.
            // A positive timeout means the same on both. The name is hashed to stay within
            // the 64-character limit whatever the database is called.
            let got: Option<i64> =
                sqlx::query_scalar(MYSQL_MIGRATE_LOCK).fetch_one(&mut *conn).await.map_err(error::Error::from)?;
            if got != Some(1) {
                return Err(StoreError::Unavailable("timed out waiting for another node's migration".into()));
            }
        }
        // `run_direct` on the connection we hold (not `run`, which goes through `Acquire`): its
        // future is `Send` for every lifetime, so `launch()` can be spawned on a runtime.
        let result = migrator.run_direct(&mut *conn).await;
        if self.dialect == Dialect::Mysql {
            // Best effort: the lock also ends with the session if this fails.
            let _ = sqlx::query(MYSQL_MIGRATE_UNLOCK).execute(&mut *conn).await;
        }
        result.map_err(error::Error::from)?;
        Ok(())
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// This store with inbox secrets sealed by `keyring` (same pool). See [`secrets`].
    pub fn with_secrets(mut self, keyring: secrets::SecretsKeyring) -> Self {
        self.secrets = std::sync::Arc::new(keyring);
        self
    }

    /// Closes the pool, waiting for checked-out connections to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

const MYSQL_MIGRATE_LOCK: &str = "SELECT GET_LOCK(CONCAT('switchboard-migrate-', SHA1(DATABASE())), 600)";
const MYSQL_MIGRATE_UNLOCK: &str = "SELECT RELEASE_LOCK(CONCAT('switchboard-migrate-', SHA1(DATABASE())))";

/// Adds `mode=rwc` to a file-backed SQLite URL that does not choose a mode, so the database file
/// is created on first start.
fn sqlite_create_if_missing(url: &str) -> String {
    if url.contains(":memory:") || url.contains("mode=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}mode=rwc")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_created() {
        assert_eq!(sqlite_create_if_missing("sqlite://data/sb.db"), "sqlite://data/sb.db?mode=rwc");
        assert_eq!(sqlite_create_if_missing("sqlite:sb.db?cache=shared"), "sqlite:sb.db?cache=shared&mode=rwc");
        assert_eq!(sqlite_create_if_missing("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(sqlite_create_if_missing("sqlite:sb.db?mode=ro"), "sqlite:sb.db?mode=ro");
    }
}

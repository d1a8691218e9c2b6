//! The crate's internal error, and how it becomes the `StoreError` the server sees.
//!
//! Internally we keep the driver error intact for as long as possible so that a deadlock or a
//! serialization failure can be recognised and the transaction retried; only at the `Store`
//! boundary is everything folded into `NotFound` / `Conflict` / `InvalidState` / `Unavailable`.

use sqlx::error::ErrorKind;
use sqlx::mysql::MySqlDatabaseError;
use switchboard_core::StoreError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// An outcome the `Store` contract names (not found, invalid state, ...).
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored value this version cannot read (an unknown enum spelling, invalid UTF-8).
    #[error("unreadable stored value: {0}")]
    Corrupt(String),
    /// Inbox secrets that cannot be opened with the configured keys: fail closed.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    /// A race was lost in a way that a fresh attempt resolves (e.g. a conflicting row vanished
    /// between the insert that skipped it and the select that looked for it).
    #[error("transient conflict: {0}")]
    Retry(&'static str),
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn not_found() -> Self {
        Error::Store(StoreError::NotFound)
    }

    pub(crate) fn invalid_state(what: impl Into<String>) -> Self {
        Error::Store(StoreError::InvalidState(what.into()))
    }

    /// Whether running the whole transaction again may succeed: deadlocks, serialization
    /// failures, lock wait timeouts and SQLite's busy/locked codes.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Error::Retry(_) => true,
            Error::Db(sqlx::Error::Database(e)) => {
                if let Some(my) = e.try_downcast_ref::<MySqlDatabaseError>() {
                    // ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT
                    return matches!(my.number(), 1213 | 1205);
                }
                matches!(
                    e.code().as_deref(),
                    // PostgreSQL: serialization_failure, deadlock_detected.
                    Some("40001") | Some("40P01")
                    // SQLite: BUSY, LOCKED, BUSY_RECOVERY, LOCKED_SHAREDCACHE, BUSY_SNAPSHOT.
                    | Some("5") | Some("6") | Some("261") | Some("262") | Some("517")
                )
            }
            _ => false,
        }
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(e) => e,
            Error::Db(sqlx::Error::RowNotFound) => StoreError::NotFound,
            Error::Db(sqlx::Error::Database(db)) => match db.kind() {
                ErrorKind::UniqueViolation => StoreError::Conflict(db.message().to_owned()),
                // A referenced row (tenant, team, user ...) does not exist.
                ErrorKind::ForeignKeyViolation => StoreError::NotFound,
                _ => {
                    tracing::warn!(error = %db, "database refused a statement");
                    StoreError::Unavailable(db.message().to_owned())
                }
            },
            Error::Db(other) => StoreError::Unavailable(other.to_string()),
            other => {
                tracing::error!(error = %other, "storage failure");
                StoreError::Unavailable(other.to_string())
            }
        }
    }
}

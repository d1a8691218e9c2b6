//! Errors a storage backend reports. Backends map their driver errors into these so the server
//! can answer with the right HTTP status without knowing which database is behind it.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist *for this tenant* (other tenants' rows are reported the same way).
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write (e.g. a user's email within a tenant).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The write was refused because the row is not in a state that allows it.
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// The database could not be reached or failed; callers answer 503 and the sender retries.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

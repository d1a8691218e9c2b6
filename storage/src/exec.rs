//! Small execution helpers shared by every query: getting a new row's id portably, binding a
//! variable list of arguments (for patches), and reading columns through the Any driver.
//!
//! The Any driver hands back values in a handful of kinds (integer, text, blob, null). MySQL
//! reports `TEXT` columns as blobs, so text is read as either kind.

use crate::dialect::Dialect;
use crate::error::{Error, Result};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Executor, Row};

pub(crate) type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// Runs an insert built with [`Dialect::insert_returning_id`] and returns the new id.
pub(crate) async fn insert_id<'e, 'q, E>(dialect: Dialect, ex: E, query: AnyQuery<'q>) -> Result<i64>
where
    E: Executor<'e, Database = Any>,
{
    match dialect {
        Dialect::Mysql => {
            let done = query.execute(ex).await?;
            done.last_insert_id().ok_or(Error::Corrupt("insert reported no id".into()))
        }
        Dialect::Postgres | Dialect::Sqlite => {
            let row = query.fetch_one(ex).await?;
            Ok(row.try_get::<i64, _>(0)?)
        }
    }
}

/// Runs an insert built with [`Dialect::insert_ignore`] (`returning_id = true`) and returns the
/// new id, or `None` when a unique constraint made the database skip the row.
pub(crate) async fn insert_ignore_id<'e, 'q, E>(dialect: Dialect, ex: E, query: AnyQuery<'q>) -> Result<Option<i64>>
where
    E: Executor<'e, Database = Any>,
{
    match dialect {
        Dialect::Mysql => {
            let done = query.execute(ex).await?;
            if done.rows_affected() == 0 {
                Ok(None)
            } else {
                done.last_insert_id().map(Some).ok_or(Error::Corrupt("insert reported no id".into()))
            }
        }
        Dialect::Postgres | Dialect::Sqlite => match query.fetch_optional(ex).await? {
            Some(row) => Ok(Some(row.try_get::<i64, _>(0)?)),
            None => Ok(None),
        },
    }
}

/// One bound value of a query assembled at run time (the `SET` list of a patch).
pub(crate) enum Arg {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
}

pub(crate) fn bind_all<'q>(mut query: AnyQuery<'q>, args: Vec<Arg>) -> AnyQuery<'q> {
    for arg in args {
        query = match arg {
            Arg::Int(v) => query.bind(v),
            Arg::OptInt(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::OptText(v) => query.bind(v),
        };
    }
    query
}

pub(crate) fn int(row: &AnyRow, col: &str) -> Result<i64> {
    Ok(row.try_get::<i64, _>(col)?)
}

pub(crate) fn opt_int(row: &AnyRow, col: &str) -> Result<Option<i64>> {
    Ok(row.try_get::<Option<i64>, _>(col)?)
}

pub(crate) fn flag(row: &AnyRow, col: &str) -> Result<bool> {
    Ok(int(row, col)? != 0)
}

pub(crate) fn opt_text(row: &AnyRow, col: &str) -> Result<Option<String>> {
    match row.try_get::<Option<String>, _>(col) {
        Ok(v) => Ok(v),
        // MySQL's TEXT arrives as a blob through the Any driver.
        Err(sqlx::Error::ColumnDecode { .. }) => match row.try_get::<Option<Vec<u8>>, _>(col)? {
            Some(bytes) => {
                String::from_utf8(bytes).map(Some).map_err(|_| Error::Corrupt(format!("column {col} is not UTF-8")))
            }
            None => Ok(None),
        },
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn text(row: &AnyRow, col: &str) -> Result<String> {
    opt_text(row, col)?.ok_or_else(|| Error::Corrupt(format!("column {col} is NULL")))
}

/// Reads a column spelled by one of the core's string enums.
pub(crate) fn parsed<T>(row: &AnyRow, col: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    let s = text(row, col)?;
    parse(&s).ok_or_else(|| Error::Corrupt(format!("column {col} holds unknown value {s:?}")))
}

pub(crate) fn opt_parsed<T>(row: &AnyRow, col: &str, parse: fn(&str) -> Option<T>) -> Result<Option<T>> {
    match opt_text(row, col)? {
        Some(s) => parse(&s).map(Some).ok_or_else(|| Error::Corrupt(format!("column {col} holds unknown value {s:?}"))),
        None => Ok(None),
    }
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, col: &str) -> Result<T> {
    Ok(serde_json::from_str(&text(row, col)?)?)
}

/// A nullable JSON column; NULL reads as `T::default()` (an empty object or list).
pub(crate) fn json_or_default<T: serde::de::DeserializeOwned + Default>(row: &AnyRow, col: &str) -> Result<T> {
    match opt_text(row, col)? {
        Some(t) => Ok(serde_json::from_str(&t)?),
        None => Ok(T::default()),
    }
}

//! The three SQL dialects behind the one `Store` implementation, and the few places where their
//! SQL differs: placeholders, how an insert reports its new id, and how an insert is told to
//! skip a row that a unique constraint refuses.
//!
//! Queries are written once with `?` placeholders; [`Dialect::sql`] rewrites them for
//! PostgreSQL. Nothing here talks to a database.

use std::borrow::Cow;
use switchboard_core::StoreError;

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Postgres,
    /// MySQL 8 or MariaDB 10.6+.
    Mysql,
    Sqlite,
}

impl Dialect {
    /// Picks the dialect from the URL scheme and returns the URL the driver should be given
    /// (`mariadb://` is spelled `mysql://` for sqlx).
    pub fn from_url(url: &str) -> Result<(Dialect, String), StoreError> {
        let lower = url.trim_start().to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Ok((Dialect::Postgres, url.trim().to_owned()))
        } else if lower.starts_with("mysql://") {
            Ok((Dialect::Mysql, url.trim().to_owned()))
        } else if lower.starts_with("mariadb://") {
            let rest = &url.trim()["mariadb://".len()..];
            Ok((Dialect::Mysql, format!("mysql://{rest}")))
        } else if lower.starts_with("sqlite:") {
            Ok((Dialect::Sqlite, url.trim().to_owned()))
        } else {
            Err(StoreError::Unavailable(
                "unsupported database URL: expected postgres://, mysql://, mariadb:// or sqlite:".into(),
            ))
        }
    }

    /// The name reported by `Store::backend`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// Rewrites `?` placeholders to `$1, $2, ...` on PostgreSQL; the others take `?` as written.
    /// `?` inside single-quoted literals is left alone.
    pub(crate) fn sql(self, query: &str) -> Cow<'_, str> {
        if self != Dialect::Postgres || !query.contains('?') {
            return Cow::Borrowed(query);
        }
        let mut out = String::with_capacity(query.len() + 16);
        let mut n = 0;
        let mut in_literal = false;
        for c in query.chars() {
            match c {
                '\'' => {
                    in_literal = !in_literal;
                    out.push(c);
                }
                '?' if !in_literal => {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                }
                _ => out.push(c),
            }
        }
        Cow::Owned(out)
    }

    /// An `INSERT` that yields the new row's id: `RETURNING id` where the database has it;
    /// MySQL reports it as `last_insert_id` instead (see [`crate::exec::insert_id`]).
    pub(crate) fn insert_returning_id(self, insert: &str) -> String {
        match self {
            Dialect::Mysql => insert.to_owned(),
            Dialect::Postgres | Dialect::Sqlite => self.sql(&format!("{insert} RETURNING id")).into_owned(),
        }
    }

    /// An `INSERT INTO ...` that silently skips a row refused by a unique constraint instead of
    /// failing. On PostgreSQL a failed statement would abort the whole transaction, so a
    /// "try insert, catch the violation" approach is not an option there.
    ///
    /// With `returning_id`, PostgreSQL and SQLite return the id only when the row was inserted.
    pub(crate) fn insert_ignore(self, insert: &str, returning_id: bool) -> String {
        match self {
            Dialect::Mysql => match insert.strip_prefix("INSERT INTO") {
                Some(rest) => format!("INSERT IGNORE INTO{rest}"),
                // Every caller passes a literal starting with "INSERT INTO".
                None => insert.to_owned(),
            },
            Dialect::Postgres | Dialect::Sqlite => {
                let returning = if returning_id { " RETURNING id" } else { "" };
                self.sql(&format!("{insert} ON CONFLICT DO NOTHING{returning}")).into_owned()
            }
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_dialect_from_scheme() {
        assert_eq!(Dialect::from_url("postgres://x/y").map(|d| d.0).ok(), Some(Dialect::Postgres));
        assert_eq!(Dialect::from_url("postgresql://x/y").map(|d| d.0).ok(), Some(Dialect::Postgres));
        assert_eq!(Dialect::from_url("sqlite::memory:").map(|d| d.0).ok(), Some(Dialect::Sqlite));
        let (d, url) = Dialect::from_url("mariadb://root@h:3306/db").expect("mariadb url");
        assert_eq!((d, url.as_str()), (Dialect::Mysql, "mysql://root@h:3306/db"));
        assert!(Dialect::from_url("redis://x").is_err());
    }

    #[test]
    fn numbers_placeholders_for_postgres_only() {
        let q = "SELECT a FROM t WHERE b = ? AND c = '?' AND d = ?";
        assert_eq!(Dialect::Postgres.sql(q), "SELECT a FROM t WHERE b = $1 AND c = '?' AND d = $2");
        assert_eq!(Dialect::Mysql.sql(q), q);
        assert_eq!(Dialect::Sqlite.sql(q), q);
    }

    #[test]
    fn insert_ignore_per_dialect() {
        let q = "INSERT INTO t (a) VALUES (?)";
        assert_eq!(Dialect::Mysql.insert_ignore(q, true), "INSERT IGNORE INTO t (a) VALUES (?)");
        assert_eq!(
            Dialect::Postgres.insert_ignore(q, true),
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id"
        );
        assert_eq!(Dialect::Sqlite.insert_ignore(q, false), "INSERT INTO t (a) VALUES (?) ON CONFLICT DO NOTHING");
    }
}

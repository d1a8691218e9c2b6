//! The schema migrations, compiled into the binary (one list per dialect) and run through
//! sqlx's `Migrator`, which works on an `AnyConnection` and records what it applied in
//! `_sqlx_migrations`.
//!
//! We embed the files with `include_str!` and hand sqlx a [`MigrationSource`] instead of using
//! `sqlx::migrate!`: the macro needs sqlx's `macros` feature (a proc-macro crate and its
//! build time) for what is a three-line list. A file, once landed, is never edited — sqlx
//! refuses to start against a database whose applied migration's checksum differs.

use crate::dialect::Dialect;
use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

/// (version, description, postgres, mysql, sqlite), oldest first.
const MIGRATIONS: &[(i64, &str, &str, &str, &str)] = &[
    (
        20261121000001,
        "initial",
        include_str!("../../migrations/postgres/20261121000001_initial.sql"),
        include_str!("../../migrations/mysql/20261121000001_initial.sql"),
        include_str!("../../migrations/sqlite/20261121000001_initial.sql"),
    ),
    (
        20261122000001,
        "channel_cursors",
        include_str!("../../migrations/postgres/20261122000001_channel_cursors.sql"),
        include_str!("../../migrations/mysql/20261122000001_channel_cursors.sql"),
        include_str!("../../migrations/sqlite/20261122000001_channel_cursors.sql"),
    ),
    (
        20261122000002,
        "team_routing_policy",
        include_str!("../../migrations/postgres/20261122000002_team_routing_policy.sql"),
        include_str!("../../migrations/mysql/20261122000002_team_routing_policy.sql"),
        include_str!("../../migrations/sqlite/20261122000002_team_routing_policy.sql"),
    ),
    (
        20261123000001,
        "auto_responder",
        include_str!("../../migrations/postgres/20261123000001_auto_responder.sql"),
        include_str!("../../migrations/mysql/20261123000001_auto_responder.sql"),
        include_str!("../../migrations/sqlite/20261123000001_auto_responder.sql"),
    ),
    (
        20261123001500,
        "offers",
        include_str!("../../migrations/postgres/20261123001500_offers.sql"),
        include_str!("../../migrations/mysql/20261123001500_offers.sql"),
        include_str!("../../migrations/sqlite/20261123001500_offers.sql"),
    ),
    (
        20261123002000,
        "private_messages",
        include_str!("../../migrations/postgres/20261123002000_private_messages.sql"),
        include_str!("../../migrations/mysql/20261123002000_private_messages.sql"),
        include_str!("../../migrations/sqlite/20261123002000_private_messages.sql"),
    ),
    (
        20261123003000,
        "agent_skills",
        include_str!("../../migrations/postgres/20261123003000_agent_skills.sql"),
        include_str!("../../migrations/mysql/20261123003000_agent_skills.sql"),
        include_str!("../../migrations/sqlite/20261123003000_agent_skills.sql"),
    ),
    (
        20261123004000,
        "queue_rules",
        include_str!("../../migrations/postgres/20261123004000_queue_rules.sql"),
        include_str!("../../migrations/mysql/20261123004000_queue_rules.sql"),
        include_str!("../../migrations/sqlite/20261123004000_queue_rules.sql"),
    ),
    (
        20261123005000,
        "channel_capacity",
        include_str!("../../migrations/postgres/20261123005000_channel_capacity.sql"),
        include_str!("../../migrations/mysql/20261123005000_channel_capacity.sql"),
        include_str!("../../migrations/sqlite/20261123005000_channel_capacity.sql"),
    ),
    (
        20261124000100,
        "canned_responses",
        include_str!("../../migrations/postgres/20261124000100_canned_responses.sql"),
        include_str!("../../migrations/mysql/20261124000100_canned_responses.sql"),
        include_str!("../../migrations/sqlite/20261124000100_canned_responses.sql"),
    ),
    (
        20261124000200,
        "audit_log",
        include_str!("../../migrations/postgres/20261124000200_audit_log.sql"),
        include_str!("../../migrations/mysql/20261124000200_audit_log.sql"),
        include_str!("../../migrations/sqlite/20261124000200_audit_log.sql"),
    ),
    (
        20261124000300,
        "gateway_delivery",
        include_str!("../../migrations/postgres/20261124000300_gateway_delivery.sql"),
        include_str!("../../migrations/mysql/20261124000300_gateway_delivery.sql"),
        include_str!("../../migrations/sqlite/20261124000300_gateway_delivery.sql"),
    ),
];

#[derive(Debug)]
struct Embedded(Dialect);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        let dialect = self.0;
        Box::pin(async move {
            Ok(MIGRATIONS
                .iter()
                .map(|&(version, description, pg, my, lite)| {
                    let sql = match dialect {
                        Dialect::Postgres => pg,
                        Dialect::Mysql => my,
                        Dialect::Sqlite => lite,
                    };
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

pub(crate) async fn migrator(dialect: Dialect) -> Result<Migrator, MigrateError> {
    Migrator::new(Embedded(dialect)).await
}

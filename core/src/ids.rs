//! Typed identifiers. Every row id is an `i64` assigned by the database; the newtypes stop a
//! conversation id from being passed where a user id is expected.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = i64)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    )*};
}

id_type!(
    /// A tenant: one company using Switchboard. Every other row belongs to exactly one.
    TenantId,
    /// An admin, supervisor or agent.
    UserId,
    TeamId,
    InboxId,
    ContactId,
    ConversationId,
    /// Message ids grow monotonically; clients resync "after my last seen id".
    MessageId,
    OutboxId,
    ApiTokenId,
);

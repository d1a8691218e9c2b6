//! Routing: which agent gets which waiting conversation, and when.
//!
//! Pure code, like the rest of core: no clocks (every event carries `now`), no IO, no async.
//!
//! - [`policy`]: a queue's configuration ([`QueuePolicy`]) and the vocabulary (queues, skills,
//!   capacity).
//! - [`model`]: the routing view of agents and conversations.
//! - [`decide`]: the rules as pure functions (effective priority, queue order, eligibility,
//!   ranking per strategy, [`best_agent`] when only the first is needed). The server may call
//!   them on database snapshots.
//! - [`switch`]: the [`Switch`], an in-memory state machine applying those rules to a stream of
//!   events and returning the [`Decision`]s each event caused.

pub mod decide;
pub mod model;
pub mod policy;
pub mod switch;

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;

pub use decide::{best_agent, effective_priority, has_room, is_eligible, queue_order_key, rank_agents, QueueOrderKey};
pub use model::{Agent, Holder, Load, RoutedConversation};
pub use policy::{Capacity, PolicyError, QueueId, QueuePolicy, SkillId, SkillRequirement, Strategy};
pub use switch::{
    AgentLoad, AgentProfile, Arrival, AssignedHow, Decision, Outcome, QueueSnapshot, RefusalReason, RequeueReason,
    RoutingError, Switch, TransferTarget,
};

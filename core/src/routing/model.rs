//! The routing view of agents and conversations: only the fields routing decisions read. The
//! server can build these from database rows and hand them to [`super::decide`]; the in-memory
//! [`super::Switch`] keeps them as its state.
//!
//! These are plain data; the rules that read them live in `decide`, the rules that change them
//! in `switch`.

use super::policy::{Capacity, QueueId, SkillId, SkillRequirement};
use crate::domain::{AgentStatus, ChannelKind};
use crate::ids::{ConversationId, UserId};
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How many conversations an agent holds (offered to them or assigned to them), in total and
/// per channel kind. An offer counts: it reserves the slot until accepted, rejected or expired.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Load {
    pub total: u32,
    pub per_kind: HashMap<ChannelKind, u32>,
}

impl Load {
    pub fn of_kind(&self, kind: ChannelKind) -> u32 {
        self.per_kind.get(&kind).copied().unwrap_or(0)
    }

    pub fn add(&mut self, kind: ChannelKind) {
        self.total += 1;
        *self.per_kind.entry(kind).or_insert(0) += 1;
    }

    /// Removes one conversation of `kind`. Saturating, and drops empty entries so two loads
    /// that count the same conversations compare equal.
    pub fn remove(&mut self, kind: ChannelKind) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_kind.get_mut(&kind) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_kind.remove(&kind);
            }
        }
    }

    /// True when this load fits inside `capacity` in every dimension.
    pub fn within(&self, capacity: &Capacity) -> bool {
        self.total <= capacity.total && self.per_kind.iter().all(|(kind, n)| *n <= capacity.cap_for(*kind))
    }
}

/// What routing knows about an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub id: UserId,
    /// The agent's own choice (or a supervisor's). Only `available` agents get offers.
    pub status: AgentStatus,
    /// While `now < wrap_up_until` the agent finishes notes on a resolved conversation and gets
    /// no new offers, although their status stays `available`.
    pub wrap_up_until: Option<Millis>,
    /// The later of "last became available" and "last handed a conversation"; the smaller it is,
    /// the longer the agent has been idle.
    pub idle_since: Millis,
    /// The queues this agent serves.
    pub queues: BTreeSet<QueueId>,
    /// Skill → proficiency 1–5.
    pub skills: BTreeMap<SkillId, u8>,
    pub capacity: Capacity,
    pub load: Load,
}

impl Agent {
    /// True while the agent is in wrap-up at `now`.
    pub fn in_wrap_up(&self, now: Millis) -> bool {
        self.wrap_up_until.is_some_and(|until| now < until)
    }
}

/// Who, if anyone, holds a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Holder {
    /// In its queue, waiting for an agent.
    Waiting,
    /// Offered to `agent`, who has until `expires_at` to accept. Still counts as in the queue
    /// (for position and `max_queue_len`) and reserves one of the agent's slots.
    Offered { agent: UserId, expires_at: Millis },
    /// Assigned to `agent`.
    Assigned { agent: UserId },
}

impl Holder {
    /// The agent whose capacity this conversation uses, if any.
    pub fn agent(self) -> Option<UserId> {
        match self {
            Holder::Waiting => None,
            Holder::Offered { agent, .. } | Holder::Assigned { agent } => Some(agent),
        }
    }
}

/// What routing knows about an open conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutedConversation {
    pub id: ConversationId,
    /// The queue it waits in, or was last routed from while held.
    pub queue: QueueId,
    pub channel: ChannelKind,
    /// 1 (lowest) to 5 (highest), as it arrived; aging is computed, never stored.
    pub priority: u8,
    pub required_skills: Vec<SkillRequirement>,
    /// The agent this conversation is reserved for during the queue's sticky window.
    pub sticky_agent: Option<UserId>,
    /// When the customer started waiting for an agent; the queue order's tie-breaker and the
    /// clock for aging and skill fallback. Kept across rejected and expired offers, so a
    /// conversation never loses its place to an agent saying no.
    pub waiting_since: Millis,
    /// When it entered its current queue; the clock for overflow.
    pub queue_entered_at: Millis,
    /// Requeued at the head of its queue after its agent disconnected: sorts before every
    /// conversation that is not at the head. Only read while unassigned; it is set again by the
    /// next disconnect and cleared by a transfer to a queue, so it may linger harmlessly while
    /// the conversation is assigned.
    pub at_head: bool,
    /// Agents who rejected it or let its offer expire. They stay eligible (so a lone agent
    /// cannot strand it) but rank after everyone else.
    pub declined_by: BTreeSet<UserId>,
    pub holder: Holder,
}

impl RoutedConversation {
    /// A conversation that has just started waiting in `queue` at `since`, with no skills, no
    /// sticky agent and nobody who declined it yet; callers fill in what they know.
    pub fn waiting(id: ConversationId, queue: QueueId, channel: ChannelKind, priority: u8, since: Millis) -> Self {
        RoutedConversation {
            id,
            queue,
            channel,
            priority,
            required_skills: Vec::new(),
            sticky_agent: None,
            waiting_since: since,
            queue_entered_at: since,
            at_head: false,
            declined_by: BTreeSet::new(),
            holder: Holder::Waiting,
        }
    }
}

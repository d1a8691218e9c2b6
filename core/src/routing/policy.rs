//! Routing configuration: what a queue is called ([`QueueId`]), how it hands out work
//! ([`QueuePolicy`], [`Strategy`]), and the vocabulary of skills and capacity that the ranking
//! rules in [`super::decide`] read.
//!
//! This module only describes configuration; it decides nothing and holds no state. Every key of
//! [`QueuePolicy`] has a `#[serde(default)]`, so a queue configured as `{}` is a valid
//! least-loaded queue with a 30 s offer timeout.

use crate::domain::ChannelKind;
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A routing queue.
///
/// Queues are their own id space rather than reusing `TeamId`: the issue asks for a queue per
/// team *and* a default queue per inbox, and a queue may exist only as an overflow target. The
/// server keeps the mapping (team → queue, inbox → default queue); routing never needs to know
/// which of those a queue came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QueueId(pub i64);

impl std::fmt::Display for QueueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A skill, named by the tenant (`billing`, `spanish`, `vip`). Names are compared exactly; the
/// server is expected to normalise case when it stores them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SkillId(pub String);

impl SkillId {
    pub fn new(name: impl Into<String>) -> Self {
        SkillId(name.into())
    }
}

/// The lowest and highest proficiency an agent may have in a skill (and a conversation may
/// require).
pub const MIN_PROFICIENCY: u8 = 1;
pub const MAX_PROFICIENCY: u8 = 5;

/// The lowest and highest priority a conversation may arrive with. Effective priority (after
/// aging) never exceeds [`MAX_PRIORITY`], which is what stops a stream of urgent chats from
/// starving an old low-priority one: once the old one reaches the ceiling, only its earlier
/// enqueue time decides, and it wins.
pub const MIN_PRIORITY: u8 = 1;
pub const MAX_PRIORITY: u8 = 5;

/// "This conversation needs someone who knows `skill` at least this well."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillRequirement {
    pub skill: SkillId,
    /// 1–5. Lowered to 1 once the conversation has waited `skill_fallback_after_ms`.
    pub min_proficiency: u8,
}

/// How many conversations an agent may hold at once, counting offers as well as assignments.
///
/// `total` caps everything. `per_kind` caps individual channel kinds (e.g. 3 web + 2 whatsapp
/// with total 4); a kind that is not listed is limited by `total` alone.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capacity {
    pub total: u32,
    #[serde(default)]
    pub per_kind: HashMap<ChannelKind, u32>,
}

impl Capacity {
    /// A capacity with only a total cap.
    pub fn total(total: u32) -> Self {
        Capacity { total, per_kind: HashMap::new() }
    }

    /// Adds (or replaces) the cap for one channel kind.
    pub fn with_kind(mut self, kind: ChannelKind, cap: u32) -> Self {
        self.per_kind.insert(kind, cap);
        self
    }

    /// The cap for `kind`: its own entry if listed, otherwise the total.
    pub fn cap_for(&self, kind: ChannelKind) -> u32 {
        self.per_kind.get(&kind).copied().unwrap_or(self.total)
    }
}

/// How a queue chooses among the agents who could take a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Lowest `load ÷ capacity` (totals); ties go to the agent idle longest, then the lower id.
    #[default]
    LeastLoaded,
    /// The agent idle longest (see `Agent::idle_since`), then the lower id.
    LongestIdle,
    /// Agents in id order, starting after the one this queue served last.
    RoundRobin,
    /// Never offered automatically: agents claim conversations from the queue themselves.
    Manual,
}

/// One queue's routing rules. Every key is optional in config (`#[serde(default)]`); the
/// defaults are in [`QueuePolicy::default`].
///
/// Durations are milliseconds. "Waited" below always means `now - waiting_since`, where
/// `waiting_since` is when the customer started waiting for an agent: it is kept when an offer
/// is rejected or times out and when the conversation overflows, and restarts when the
/// conversation is transferred to a queue or requeued after its agent disconnected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueuePolicy {
    /// `strategy`: `least_loaded` (default) | `longest_idle` | `round_robin` | `manual`.
    pub strategy: Strategy,
    /// `offer_timeout_ms`: how long an agent has to accept an offer before it moves on to the
    /// next agent. Default 30 000. Ignored when `auto_accept` is set.
    pub offer_timeout_ms: Millis,
    /// `auto_accept`: assign directly instead of offering. Default true; set false to offer each
    /// conversation to one agent at a time, who accepts or rejects within `offer_timeout_ms`.
    pub auto_accept: bool,
    /// `priority_aging_ms`: milliseconds of waiting per +1 of effective priority; 0 turns aging
    /// off. Default 60 000 (one step a minute).
    pub priority_aging_ms: Millis,
    /// `max_priority_boost`: the most aging may add to a conversation's priority. Effective
    /// priority is additionally capped at 5, so with the default 4 a priority-1 chat reaches 5
    /// and can no longer be starved; a smaller value lets urgent traffic starve it. Default 4.
    pub max_priority_boost: i64,
    /// `skill_fallback_after_ms`: once a conversation has waited this long its skill
    /// requirements keep their skills but drop their minimum proficiency to 1 (anyone who has
    /// the skill at all qualifies). `null` (default): never.
    pub skill_fallback_after_ms: Option<Millis>,
    /// `skills_ignored_after_ms`: once a conversation has waited this long its skill
    /// requirements are ignored entirely (any member of the queue qualifies). `null` (default):
    /// never.
    pub skills_ignored_after_ms: Option<Millis>,
    /// `sticky_ms`: for this long after arrival a conversation whose customer has a previous
    /// agent is reserved for that agent (if they serve this queue and are not offline); after
    /// the window, or once that agent rejects it or goes offline, anyone may take it. 0
    /// (default) turns stickiness off.
    pub sticky_ms: Millis,
    /// `overflow_after_ms`: a conversation still waiting (not offered) this long after it
    /// entered this queue moves to `overflow_to`. `null` (default): never.
    pub overflow_after_ms: Option<Millis>,
    /// `overflow_to`: the queue to overflow into. If it is full the conversation stays and is
    /// tried again at the next tick.
    pub overflow_to: Option<QueueId>,
    /// `max_queue_len`: how many unassigned (waiting or offered) conversations the queue holds;
    /// new arrivals beyond it are refused with [`super::RefusalReason::QueueFull`]. `null`
    /// (default): unlimited. Conversations requeued after a disconnect are never refused.
    pub max_queue_len: Option<usize>,
    /// `wrap_up_ms`: after resolving a conversation of this queue the agent gets no new offers
    /// for this long (their status stays `available`). 0 (default): no wrap-up.
    pub wrap_up_ms: Millis,
    /// `queue_full_text`: sent to a customer refused by `max_queue_len` before the conversation
    /// is closed. `null` (default): a built-in sentence.
    pub queue_full_text: Option<String>,
    /// `reassign_without_reply_ms`: an assigned conversation whose agent has not written a first
    /// reply this long after taking it goes back to the queue (in its place) for someone else.
    /// `null` (default): never.
    pub reassign_without_reply_ms: Option<Millis>,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        QueuePolicy {
            strategy: Strategy::LeastLoaded,
            offer_timeout_ms: 30_000,
            auto_accept: true,
            priority_aging_ms: 60_000,
            max_priority_boost: 4,
            skill_fallback_after_ms: None,
            skills_ignored_after_ms: None,
            sticky_ms: 0,
            overflow_after_ms: None,
            overflow_to: None,
            max_queue_len: None,
            wrap_up_ms: 0,
            queue_full_text: None,
            reassign_without_reply_ms: None,
        }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{0} must not be negative")]
    Negative(&'static str),
    #[error("offer_timeout_ms must be positive unless auto_accept is set")]
    NoOfferTimeout,
    #[error("overflow_after_ms and overflow_to must be set together")]
    HalfOverflow,
    #[error("{0}")]
    Invalid(&'static str),
}

impl QueuePolicy {
    /// Fails fast on settings that would make routing misbehave (negative durations, an offer
    /// that expires the moment it is made, overflow with nowhere to go).
    pub fn validate(&self) -> Result<(), PolicyError> {
        let durations = [
            ("offer_timeout_ms", Some(self.offer_timeout_ms)),
            ("priority_aging_ms", Some(self.priority_aging_ms)),
            ("max_priority_boost", Some(self.max_priority_boost)),
            ("skill_fallback_after_ms", self.skill_fallback_after_ms),
            ("skills_ignored_after_ms", self.skills_ignored_after_ms),
            ("sticky_ms", Some(self.sticky_ms)),
            ("overflow_after_ms", self.overflow_after_ms),
            ("wrap_up_ms", Some(self.wrap_up_ms)),
            ("reassign_without_reply_ms", self.reassign_without_reply_ms),
        ];
        for (name, value) in durations {
            if value.is_some_and(|v| v < 0) {
                return Err(PolicyError::Negative(name));
            }
        }
        if !self.auto_accept && self.offer_timeout_ms == 0 {
            return Err(PolicyError::NoOfferTimeout);
        }
        if self.overflow_after_ms.is_some() != self.overflow_to.is_some() {
            return Err(PolicyError::HalfOverflow);
        }
        if let Some(text) = &self.queue_full_text {
            if text.trim().is_empty() || text.chars().count() > 1000 {
                return Err(PolicyError::Invalid("queue_full_text must be 1 to 1000 characters"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_default_policy() {
        let parsed: QueuePolicy = serde_json::from_str("{}").expect("empty object parses");
        assert_eq!(parsed, QueuePolicy::default());
        assert_eq!(parsed.validate(), Ok(()));
    }

    #[test]
    fn keys_use_the_documented_spelling() {
        let parsed: QueuePolicy = serde_json::from_str(
            r#"{"strategy":"round_robin","auto_accept":true,"overflow_after_ms":5000,"overflow_to":7,
                "max_queue_len":10,"sticky_ms":1000,"skill_fallback_after_ms":2000}"#,
        )
        .expect("documented keys parse");
        assert_eq!(parsed.strategy, Strategy::RoundRobin);
        assert_eq!(parsed.overflow_to, Some(QueueId(7)));
        assert_eq!(parsed.max_queue_len, Some(10));
        assert!(serde_json::from_str::<QueuePolicy>(r#"{"strategy":"random"}"#).is_err());
        assert!(serde_json::from_str::<QueuePolicy>(r#"{"overflow":1}"#).is_err(), "unknown keys are refused");
    }

    #[test]
    fn validation_refuses_unworkable_settings() {
        let half = QueuePolicy { overflow_after_ms: Some(1), ..Default::default() };
        assert_eq!(half.validate(), Err(PolicyError::HalfOverflow));
        let instant = QueuePolicy { offer_timeout_ms: 0, auto_accept: false, ..Default::default() };
        assert_eq!(instant.validate(), Err(PolicyError::NoOfferTimeout));
        let negative = QueuePolicy { wrap_up_ms: -1, ..Default::default() };
        assert_eq!(negative.validate(), Err(PolicyError::Negative("wrap_up_ms")));
    }

    #[test]
    fn capacity_falls_back_to_total_for_unlisted_kinds() {
        let cap = Capacity::total(4).with_kind(ChannelKind::Web, 3).with_kind(ChannelKind::Whatsapp, 2);
        assert_eq!(cap.cap_for(ChannelKind::Web), 3);
        assert_eq!(cap.cap_for(ChannelKind::Telegram), 4);
    }
}

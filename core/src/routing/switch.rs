//! The [`Switch`]: an in-memory, deterministic routing state machine. It holds queues (with
//! their policies), agents and the open conversations being routed, takes one event at a time
//! (`arrive`, `offer_accepted`, `tick`, `resolve`, ...) and answers each with the
//! [`Decision`]s it caused. It reads no clock and does no IO: the caller passes `now` and
//! carries the decisions out (persist, notify agents, message customers).
//!
//! # Invariants
//!
//! These hold after every event that returns `Ok`, and an event that returns `Err` changes
//! nothing (every method validates everything before its first write).
//!
//! 1. **Capacity.** An agent's load — offers *and* assignments, in total and per channel kind —
//!    is within their capacity. Everything that hands out work (`dispatch`, `claim`,
//!    `transfer_to_agent`) first checks [`has_room`]. The one exception is a capacity lowered
//!    below what the agent already holds: `set_capacity` withdraws pending offers (newest
//!    first) until the load fits, but never takes back an accepted conversation. In a
//!    dimension still over its cap (the total, or one channel kind) the agent then holds only
//!    assignments and gets nothing new there until resolves bring it back within (`has_room`
//!    is false for it meanwhile); work in other dimensions still flows.
//! 2. **One holder.** A conversation's [`Holder`] is the single source of truth for who holds
//!    it. The per-agent `held` sets and [`Load`] counters are derived bookkeeping, changed only
//!    in `give` and `release`, always together, so they agree with the holders both ways.
//! 3. **Offline agents hold nothing.** Going offline (or disconnecting) withdraws their offers
//!    (the conversations keep their place) and puts their assigned conversations at the head of
//!    their queues.
//! 4. **No stranding.** No conversation waits in a non-manual queue while an agent is eligible
//!    for it ([`is_eligible`]) and has room. Why: every successful event ends with
//!    `dispatch(now)`, which visits every waiting conversation once. During that pass nothing
//!    that eligibility reads changes (status, wrap-up, skills, queues, stickiness of *other*
//!    conversations, `now`), and room only shrinks as offers are made. So a conversation
//!    passed over because no eligible agent had room still has none when the pass ends.
//! 5. **Queue order.** The pass visits conversations in [`QueueOrderKey`] order (head-of-queue
//!    requeues, then effective priority, then `waiting_since`, then id); restricted to one
//!    queue this is that queue's order. A conversation is only passed over when no eligible
//!    agent had room at its turn, and room only shrinks afterwards, so whenever a conversation
//!    is handed to an agent no better-placed waiting conversation of the same queue could have
//!    had that slot.
//!
//! Rejected and expired offers keep the conversation's `waiting_since`, so it keeps its place;
//! the agent who said no ranks last for it but stays eligible (a lone agent cannot strand it).
//!
//! Time is only what callers say it is. Offers past `expires_at`, wrap-ups past their end and
//! overflow deadlines are acted on at the next `tick(now)`; until then they err on the safe side
//! (the expired offer still reserves its slot and can no longer be accepted; an ended wrap-up is
//! already ignored by eligibility).

use super::decide::{has_room, is_eligible, queue_order_key, rank_agents, waited, QueueOrderKey};
use super::model::{Agent, Holder, Load, RoutedConversation};
use super::policy::{
    Capacity, PolicyError, QueueId, QueuePolicy, SkillId, SkillRequirement, Strategy, MAX_PRIORITY, MAX_PROFICIENCY,
    MIN_PRIORITY, MIN_PROFICIENCY,
};
use crate::domain::{AgentStatus, ChannelKind};
use crate::ids::{ConversationId, UserId};
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Something the switch decided that the caller must carry out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// Offer the conversation to the agent; it is theirs if they accept before `expires_at`.
    Offered {
        conversation: ConversationId,
        agent: UserId,
        queue: QueueId,
        expires_at: Millis,
    },
    /// The conversation is now the agent's.
    Assigned {
        conversation: ConversationId,
        agent: UserId,
        queue: QueueId,
        how: AssignedHow,
    },
    /// The conversation was not admitted; it is not held by the switch.
    Refused {
        conversation: ConversationId,
        queue: QueueId,
        reason: RefusalReason,
    },
    /// The conversation went back to waiting in `queue` (an offer ended, or its agent left).
    Requeued {
        conversation: ConversationId,
        queue: QueueId,
        from_agent: UserId,
        reason: RequeueReason,
        at_head: bool,
    },
    /// The conversation waited too long in `from` and now waits in `to`.
    Overflowed {
        conversation: ConversationId,
        from: QueueId,
        to: QueueId,
    },
    /// An agent or supervisor moved the conversation.
    Transferred {
        conversation: ConversationId,
        from_agent: Option<UserId>,
        to: TransferTarget,
        note: Option<String>,
    },
    /// The agent gets no offers until `until` (or `end_wrap_up`).
    WrapUpStarted {
        agent: UserId,
        until: Millis,
    },
    WrapUpEnded {
        agent: UserId,
    },
}

/// How a conversation came to be assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignedHow {
    /// Dispatched from an `auto_accept` queue.
    AutoAccepted,
    OfferAccepted,
    /// Picked by the agent from a manual queue.
    Claimed,
    Transferred,
}

/// Why an arrival was refused; the server turns it into the configured customer message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// The queue already holds `max_queue_len` unassigned conversations.
    QueueFull,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequeueReason {
    Rejected,
    OfferTimedOut,
    /// The agent went away; their pending offers are withdrawn (assignments stay).
    AgentAway,
    /// The agent set themselves offline.
    AgentWentOffline,
    /// The server decided the agent is gone (after its reconnect grace period).
    AgentDisconnected,
    /// The agent's capacity was lowered below their pending offers.
    CapacityLowered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum TransferTarget {
    Agent(UserId),
    Queue(QueueId),
}

/// A conversation that needs an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub conversation: ConversationId,
    pub queue: QueueId,
    pub channel: ChannelKind,
    /// 1–5.
    pub priority: u8,
    pub required_skills: Vec<SkillRequirement>,
    /// The agent who last served this customer, for the queue's sticky window.
    pub last_agent: Option<UserId>,
}

/// An agent's routing configuration (status is separate: see `set_status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentProfile {
    pub agent: UserId,
    pub queues: BTreeSet<QueueId>,
    /// Skill → proficiency 1–5.
    pub skills: BTreeMap<SkillId, u8>,
    pub capacity: Capacity,
}

/// An event the switch refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("unknown queue {0}")]
    UnknownQueue(QueueId),
    #[error("unknown agent {0}")]
    UnknownAgent(UserId),
    #[error("unknown conversation {0}")]
    UnknownConversation(ConversationId),
    #[error("conversation {0} is already being routed")]
    DuplicateConversation(ConversationId),
    #[error("priority {0} is outside 1-5")]
    InvalidPriority(u8),
    #[error("proficiency {0} is outside 1-5")]
    InvalidProficiency(u8),
    #[error("invalid policy: {0}")]
    InvalidPolicy(#[from] PolicyError),
    #[error("conversation {conversation} is not offered to agent {agent}")]
    NotOfferedTo { conversation: ConversationId, agent: UserId },
    #[error("the offer of conversation {0} has expired")]
    OfferExpired(ConversationId),
    #[error("conversation {0} is not assigned")]
    NotAssigned(ConversationId),
    #[error("conversation {0} is not waiting")]
    NotWaiting(ConversationId),
    #[error("conversation {conversation} is already waiting in queue {queue}")]
    AlreadyInQueue { conversation: ConversationId, queue: QueueId },
    #[error("conversation {conversation} is already held by agent {agent}")]
    AlreadyHeld { conversation: ConversationId, agent: UserId },
    #[error("queue {0} is not a manual queue")]
    NotManualQueue(QueueId),
    #[error("agent {agent} does not serve queue {queue}")]
    NotQueueMember { agent: UserId, queue: QueueId },
    #[error("agent {0} is offline")]
    AgentOffline(UserId),
    #[error("agent {agent} has no room for another {kind} conversation")]
    NoRoom { agent: UserId, kind: ChannelKind },
    #[error("queue {0} is full")]
    QueueFull(QueueId),
}

/// What a supervisor sees of one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSnapshot {
    pub queue: QueueId,
    /// Conversations waiting for an offer.
    pub waiting: usize,
    /// Conversations offered to an agent who has not answered yet.
    pub offered: usize,
    /// How long the longest-waiting unassigned conversation has waited.
    pub longest_wait_ms: Option<Millis>,
    /// Members of the queue by state. `available` excludes agents in wrap-up.
    pub available: usize,
    pub in_wrap_up: usize,
    pub away: usize,
    pub offline: usize,
    /// One row per member, in id order.
    pub agents: Vec<AgentLoad>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentLoad {
    pub agent: UserId,
    pub status: AgentStatus,
    pub in_wrap_up: bool,
    /// Offers plus assignments, across all queues.
    pub load: u32,
    pub capacity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct QueueState {
    policy: QueuePolicy,
    /// The agent this queue's round robin served last.
    round_robin_cursor: Option<UserId>,
}

/// The routing state machine. See the module documentation for its invariants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Switch {
    queues: BTreeMap<QueueId, QueueState>,
    agents: BTreeMap<UserId, Agent>,
    conversations: BTreeMap<ConversationId, RoutedConversation>,
    /// Agent → the conversations offered or assigned to them (bookkeeping for `Holder`).
    held: BTreeMap<UserId, BTreeSet<ConversationId>>,
}

/// What every event returns: the decisions it caused, or why it was refused (nothing changed).
pub type Outcome = Result<Vec<Decision>, RoutingError>;

impl Switch {
    pub fn new() -> Self {
        Self::default()
    }

    // ---- reading ---------------------------------------------------------------------------

    pub fn policy(&self, queue: QueueId) -> Option<&QueuePolicy> {
        self.queues.get(&queue).map(|q| &q.policy)
    }

    pub fn queue_ids(&self) -> impl Iterator<Item = QueueId> + '_ {
        self.queues.keys().copied()
    }

    pub fn round_robin_cursor(&self, queue: QueueId) -> Option<UserId> {
        self.queues.get(&queue).and_then(|q| q.round_robin_cursor)
    }

    pub fn agent(&self, id: UserId) -> Option<&Agent> {
        self.agents.get(&id)
    }

    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.values()
    }

    pub fn conversation(&self, id: ConversationId) -> Option<&RoutedConversation> {
        self.conversations.get(&id)
    }

    /// Every open conversation, in id order.
    pub fn conversations(&self) -> impl Iterator<Item = &RoutedConversation> {
        self.conversations.values()
    }

    /// The conversations offered or assigned to `agent`, in id order.
    pub fn held_by(&self, agent: UserId) -> impl Iterator<Item = ConversationId> + '_ {
        self.held.get(&agent).into_iter().flatten().copied()
    }

    /// The conversation's 1-based place among the unassigned (waiting or offered)
    /// conversations of its queue, in queue order at `now`. `None` once it is assigned or if it
    /// is unknown.
    pub fn position(&self, conversation: ConversationId, now: Millis) -> Option<usize> {
        let target = self.conversations.get(&conversation)?;
        if matches!(target.holder, Holder::Assigned { .. }) {
            return None;
        }
        let policy = &self.queues.get(&target.queue)?.policy;
        let key = queue_order_key(target, policy, now);
        let ahead = self.unassigned_in(target.queue).filter(|c| queue_order_key(c, policy, now) < key).count();
        Some(ahead + 1)
    }

    /// The unassigned (waiting or offered) conversations of `queue` in queue order at `now`:
    /// index + 1 is each one's [`Switch::position`]. One sort instead of one count per
    /// conversation, for broadcasting positions to a whole queue.
    pub fn queue_order(&self, queue: QueueId, now: Millis) -> Vec<ConversationId> {
        let Some(policy) = self.policy(queue) else { return Vec::new() };
        let mut keyed: Vec<(QueueOrderKey, ConversationId)> =
            self.unassigned_in(queue).map(|c| (queue_order_key(c, policy, now), c.id)).collect();
        keyed.sort();
        keyed.into_iter().map(|(_, id)| id).collect()
    }

    /// Waiting and offered counts, the longest wait, and the queue's members by state.
    pub fn snapshot(&self, queue: QueueId, now: Millis) -> Option<QueueSnapshot> {
        self.queues.get(&queue)?;
        let mut snapshot = QueueSnapshot {
            queue,
            waiting: 0,
            offered: 0,
            longest_wait_ms: None,
            available: 0,
            in_wrap_up: 0,
            away: 0,
            offline: 0,
            agents: Vec::new(),
        };
        for c in self.unassigned_in(queue) {
            match c.holder {
                Holder::Offered { .. } => snapshot.offered += 1,
                _ => snapshot.waiting += 1,
            }
            let wait = waited(c, now);
            snapshot.longest_wait_ms = Some(snapshot.longest_wait_ms.map_or(wait, |w| w.max(wait)));
        }
        for agent in self.agents.values().filter(|a| a.queues.contains(&queue)) {
            let in_wrap_up = agent.in_wrap_up(now);
            match agent.status {
                AgentStatus::Available if in_wrap_up => snapshot.in_wrap_up += 1,
                AgentStatus::Available => snapshot.available += 1,
                AgentStatus::Away => snapshot.away += 1,
                AgentStatus::Offline => snapshot.offline += 1,
            }
            snapshot.agents.push(AgentLoad {
                agent: agent.id,
                status: agent.status,
                in_wrap_up,
                load: agent.load.total,
                capacity: agent.capacity.total,
            });
        }
        Some(snapshot)
    }

    fn unassigned_in(&self, queue: QueueId) -> impl Iterator<Item = &RoutedConversation> {
        self.conversations.values().filter(move |c| c.queue == queue && !matches!(c.holder, Holder::Assigned { .. }))
    }

    /// How many conversations count against the queue's `max_queue_len`.
    fn queue_len(&self, queue: QueueId) -> usize {
        self.unassigned_in(queue).count()
    }

    fn is_full(&self, queue: QueueId, policy: &QueuePolicy) -> bool {
        policy.max_queue_len.is_some_and(|max| self.queue_len(queue) >= max)
    }

    // ---- configuration ---------------------------------------------------------------------

    /// Creates the queue or replaces its policy (the round-robin cursor is kept).
    pub fn set_policy(&mut self, queue: QueueId, policy: QueuePolicy, now: Millis) -> Outcome {
        policy.validate()?;
        if let Some(to) = policy.overflow_to {
            if to != queue && !self.queues.contains_key(&to) {
                return Err(RoutingError::UnknownQueue(to));
            }
        }
        match self.queues.get_mut(&queue) {
            Some(state) => state.policy = policy,
            None => {
                self.queues.insert(queue, QueueState { policy, round_robin_cursor: None });
            }
        }
        Ok(self.dispatch(now, Vec::new()))
    }

    /// Creates the agent (offline, holding nothing) or updates their queues, skills and
    /// capacity. Status is changed with [`Switch::set_status`].
    pub fn upsert_agent(&mut self, profile: AgentProfile, now: Millis) -> Outcome {
        if let Some(bad) = profile.skills.values().find(|p| !(MIN_PROFICIENCY..=MAX_PROFICIENCY).contains(*p)) {
            return Err(RoutingError::InvalidProficiency(*bad));
        }
        let agent = self.agents.entry(profile.agent).or_insert_with(|| Agent {
            id: profile.agent,
            status: AgentStatus::Offline,
            wrap_up_until: None,
            idle_since: now,
            queues: BTreeSet::new(),
            skills: BTreeMap::new(),
            capacity: Capacity::default(),
            load: Load::default(),
        });
        agent.queues = profile.queues;
        agent.skills = profile.skills;
        let mut out = Vec::new();
        self.apply_capacity(profile.agent, profile.capacity, &mut out);
        self.drop_stale_stickiness(profile.agent);
        Ok(self.dispatch(now, out))
    }

    /// Changes an agent's capacity. Raising it dispatches at once; lowering it below the
    /// current load withdraws the newest pending offers until the load fits (assignments are
    /// never taken back).
    pub fn set_capacity(&mut self, agent: UserId, capacity: Capacity, now: Millis) -> Outcome {
        if !self.agents.contains_key(&agent) {
            return Err(RoutingError::UnknownAgent(agent));
        }
        let mut out = Vec::new();
        self.apply_capacity(agent, capacity, &mut out);
        Ok(self.dispatch(now, out))
    }

    fn apply_capacity(&mut self, agent_id: UserId, capacity: Capacity, out: &mut Vec<Decision>) {
        let Some(agent) = self.agents.get_mut(&agent_id) else { return };
        agent.capacity = capacity;
        loop {
            let Some(agent) = self.agents.get(&agent_id) else { return };
            if agent.load.within(&agent.capacity) {
                return;
            }
            let total_over = agent.load.total > agent.capacity.total;
            let kind_over = |kind: ChannelKind| agent.load.of_kind(kind) > agent.capacity.cap_for(kind);
            // The newest offer whose withdrawal shrinks an exceeded dimension.
            let victim = self
                .held_by(agent_id)
                .filter_map(|id| self.conversations.get(&id))
                .filter(|c| matches!(c.holder, Holder::Offered { .. }))
                .filter(|c| total_over || kind_over(c.channel))
                .max_by_key(|c| (c.holder_expiry(), c.id))
                .map(|c| c.id);
            let Some(victim) = victim else { return };
            self.release(victim);
            self.push_requeued(victim, agent_id, RequeueReason::CapacityLowered, false, out);
        }
    }

    // ---- agents ----------------------------------------------------------------------------

    /// Sets the agent's status. `available` makes them eligible (and restarts their idle
    /// clock); `away` withdraws their pending offers but leaves assignments with them; `offline`
    /// withdraws offers and requeues their assigned conversations at the head of their queues.
    pub fn set_status(&mut self, agent: UserId, status: AgentStatus, now: Millis) -> Outcome {
        let current = self.agents.get(&agent).ok_or(RoutingError::UnknownAgent(agent))?.status;
        let mut out = Vec::new();
        if current != status {
            match status {
                AgentStatus::Available => {
                    if let Some(a) = self.agents.get_mut(&agent) {
                        a.status = status;
                        a.idle_since = now;
                    }
                }
                AgentStatus::Away => {
                    if let Some(a) = self.agents.get_mut(&agent) {
                        a.status = status;
                    }
                    self.withdraw_offers(agent, RequeueReason::AgentAway, &mut out);
                }
                AgentStatus::Offline => self.take_offline(agent, RequeueReason::AgentWentOffline, now, &mut out),
            }
        }
        Ok(self.dispatch(now, out))
    }

    /// The server gave up on the agent's connection (after its grace period): they go offline,
    /// their offers are withdrawn and their conversations go back to the head of their queues.
    pub fn agent_disconnected(&mut self, agent: UserId, now: Millis) -> Outcome {
        if !self.agents.contains_key(&agent) {
            return Err(RoutingError::UnknownAgent(agent));
        }
        let mut out = Vec::new();
        self.take_offline(agent, RequeueReason::AgentDisconnected, now, &mut out);
        Ok(self.dispatch(now, out))
    }

    /// Ends the agent's wrap-up early ("I'm ready"). Does nothing if they are not in wrap-up.
    pub fn end_wrap_up(&mut self, agent: UserId, now: Millis) -> Outcome {
        let a = self.agents.get_mut(&agent).ok_or(RoutingError::UnknownAgent(agent))?;
        let mut out = Vec::new();
        if a.wrap_up_until.take().is_some() {
            out.push(Decision::WrapUpEnded { agent });
        }
        Ok(self.dispatch(now, out))
    }

    fn take_offline(&mut self, agent: UserId, reason: RequeueReason, now: Millis, out: &mut Vec<Decision>) {
        if let Some(a) = self.agents.get_mut(&agent) {
            a.status = AgentStatus::Offline;
            a.wrap_up_until = None;
        }
        self.withdraw_offers(agent, reason, out);
        let assigned: Vec<ConversationId> = self.held_by(agent).collect();
        for id in assigned {
            self.release(id);
            if let Some(c) = self.conversations.get_mut(&id) {
                // A fresh wait, but at the head of the queue: the customer was being served.
                c.at_head = true;
                c.waiting_since = now;
                c.queue_entered_at = now;
                c.declined_by.clear();
                c.sticky_agent = None;
            }
            self.push_requeued(id, agent, reason, true, out);
        }
        self.drop_stale_stickiness(agent);
    }

    /// Withdraws every pending offer to `agent`; the conversations keep their place.
    fn withdraw_offers(&mut self, agent: UserId, reason: RequeueReason, out: &mut Vec<Decision>) {
        let offers: Vec<ConversationId> = self
            .held_by(agent)
            .filter(|id| matches!(self.conversations.get(id).map(|c| c.holder), Some(Holder::Offered { .. })))
            .collect();
        for id in offers {
            self.release(id);
            self.push_requeued(id, agent, reason, false, out);
        }
    }

    /// Clears sticky reservations for `agent` that can no longer be honoured: they went offline
    /// or no longer serve the conversation's queue. Otherwise the conversation would sit out
    /// its sticky window for nobody.
    fn drop_stale_stickiness(&mut self, agent: UserId) {
        let Some(a) = self.agents.get(&agent) else { return };
        let (offline, queues) = (a.status == AgentStatus::Offline, a.queues.clone());
        for c in self.conversations.values_mut() {
            if c.sticky_agent == Some(agent) && (offline || !queues.contains(&c.queue)) {
                c.sticky_agent = None;
            }
        }
    }

    // ---- conversations ---------------------------------------------------------------------

    /// A conversation needs an agent. Refused (as a decision, not an error) when its queue is
    /// full; otherwise it waits and is dispatched at once if someone can take it.
    pub fn arrive(&mut self, arrival: Arrival, now: Millis) -> Outcome {
        let policy = self.policy(arrival.queue).ok_or(RoutingError::UnknownQueue(arrival.queue))?;
        if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&arrival.priority) {
            return Err(RoutingError::InvalidPriority(arrival.priority));
        }
        if let Some(bad) =
            arrival.required_skills.iter().find(|r| !(MIN_PROFICIENCY..=MAX_PROFICIENCY).contains(&r.min_proficiency))
        {
            return Err(RoutingError::InvalidProficiency(bad.min_proficiency));
        }
        if self.conversations.contains_key(&arrival.conversation) {
            return Err(RoutingError::DuplicateConversation(arrival.conversation));
        }
        if self.is_full(arrival.queue, policy) {
            let refused = Decision::Refused {
                conversation: arrival.conversation,
                queue: arrival.queue,
                reason: RefusalReason::QueueFull,
            };
            return Ok(self.dispatch(now, vec![refused]));
        }
        // Stick only to an agent who could actually take it back.
        let sticky_agent = arrival.last_agent.filter(|id| {
            policy.sticky_ms > 0
                && self
                    .agents
                    .get(id)
                    .is_some_and(|a| a.status != AgentStatus::Offline && a.queues.contains(&arrival.queue))
        });
        self.conversations.insert(
            arrival.conversation,
            RoutedConversation {
                required_skills: arrival.required_skills,
                sticky_agent,
                ..RoutedConversation::waiting(arrival.conversation, arrival.queue, arrival.channel, arrival.priority, now)
            },
        );
        Ok(self.dispatch(now, Vec::new()))
    }

    /// The agent accepted the offer before it expired: the conversation is theirs.
    pub fn offer_accepted(&mut self, conversation: ConversationId, agent: UserId, now: Millis) -> Outcome {
        let c = self.conversations.get(&conversation).ok_or(RoutingError::UnknownConversation(conversation))?;
        match c.holder {
            Holder::Offered { agent: offered_to, expires_at } if offered_to == agent => {
                if now >= expires_at {
                    return Err(RoutingError::OfferExpired(conversation));
                }
            }
            _ => return Err(RoutingError::NotOfferedTo { conversation, agent }),
        }
        let queue = c.queue;
        if let Some(c) = self.conversations.get_mut(&conversation) {
            c.holder = Holder::Assigned { agent };
            c.declined_by.clear();
            c.sticky_agent = None;
        }
        let assigned = Decision::Assigned { conversation, agent, queue, how: AssignedHow::OfferAccepted };
        Ok(self.dispatch(now, vec![assigned]))
    }

    /// The agent said no: the conversation goes back to its place and on to the next agent.
    pub fn offer_rejected(&mut self, conversation: ConversationId, agent: UserId, now: Millis) -> Outcome {
        let c = self.conversations.get(&conversation).ok_or(RoutingError::UnknownConversation(conversation))?;
        if !matches!(c.holder, Holder::Offered { agent: offered_to, .. } if offered_to == agent) {
            return Err(RoutingError::NotOfferedTo { conversation, agent });
        }
        let mut out = Vec::new();
        self.decline(conversation, agent, RequeueReason::Rejected, &mut out);
        Ok(self.dispatch(now, out))
    }

    fn decline(&mut self, conversation: ConversationId, agent: UserId, reason: RequeueReason, out: &mut Vec<Decision>) {
        self.release(conversation);
        if let Some(c) = self.conversations.get_mut(&conversation) {
            c.declined_by.insert(agent);
            if c.sticky_agent == Some(agent) {
                c.sticky_agent = None;
            }
        }
        self.push_requeued(conversation, agent, reason, false, out);
    }

    /// An agent takes a waiting conversation from a manual queue they serve. Skills are not
    /// checked (the agent chose it); status must not be offline and the agent needs room.
    pub fn claim(&mut self, conversation: ConversationId, agent: UserId, now: Millis) -> Outcome {
        let c = self.conversations.get(&conversation).ok_or(RoutingError::UnknownConversation(conversation))?;
        let a = self.agents.get(&agent).ok_or(RoutingError::UnknownAgent(agent))?;
        if c.holder != Holder::Waiting {
            return Err(RoutingError::NotWaiting(conversation));
        }
        let queue = c.queue;
        if self.policy(queue).map(|p| p.strategy) != Some(Strategy::Manual) {
            return Err(RoutingError::NotManualQueue(queue));
        }
        if !a.queues.contains(&queue) {
            return Err(RoutingError::NotQueueMember { agent, queue });
        }
        self.check_can_take(a, c.channel)?;
        self.give(conversation, agent, Holder::Assigned { agent }, now);
        let assigned = Decision::Assigned { conversation, agent, queue, how: AssignedHow::Claimed };
        Ok(self.dispatch(now, vec![assigned]))
    }

    fn check_can_take(&self, agent: &Agent, kind: ChannelKind) -> Result<(), RoutingError> {
        if agent.status == AgentStatus::Offline {
            return Err(RoutingError::AgentOffline(agent.id));
        }
        if !has_room(agent, kind) {
            return Err(RoutingError::NoRoom { agent: agent.id, kind });
        }
        Ok(())
    }

    /// Assigns the conversation (waiting, offered or assigned) straight to `to`, who must be
    /// online with room; the previous holder, if any, is freed. The conversation keeps its
    /// queue (for wrap-up and requeues).
    pub fn transfer_to_agent(
        &mut self,
        conversation: ConversationId,
        to: UserId,
        note: Option<String>,
        now: Millis,
    ) -> Outcome {
        let c = self.conversations.get(&conversation).ok_or(RoutingError::UnknownConversation(conversation))?;
        let target = self.agents.get(&to).ok_or(RoutingError::UnknownAgent(to))?;
        if c.holder.agent() == Some(to) {
            return Err(RoutingError::AlreadyHeld { conversation, agent: to });
        }
        self.check_can_take(target, c.channel)?;
        let queue = c.queue;
        let from_agent = self.release(conversation);
        self.give(conversation, to, Holder::Assigned { agent: to }, now);
        let out = vec![
            Decision::Transferred { conversation, from_agent, to: TransferTarget::Agent(to), note },
            Decision::Assigned { conversation, agent: to, queue, how: AssignedHow::Transferred },
        ];
        Ok(self.dispatch(now, out))
    }

    /// Puts the conversation in `queue` as a fresh wait; the previous holder, if any, is freed
    /// and ranks last for it. Refused if the target queue is full.
    pub fn transfer_to_queue(
        &mut self,
        conversation: ConversationId,
        queue: QueueId,
        note: Option<String>,
        now: Millis,
    ) -> Outcome {
        let c = self.conversations.get(&conversation).ok_or(RoutingError::UnknownConversation(conversation))?;
        let policy = self.policy(queue).ok_or(RoutingError::UnknownQueue(queue))?;
        if c.holder == Holder::Waiting && c.queue == queue {
            return Err(RoutingError::AlreadyInQueue { conversation, queue });
        }
        // An offered conversation of the same queue is already counted there; don't count it twice.
        let counted_there = c.queue == queue && matches!(c.holder, Holder::Offered { .. });
        let others = self.queue_len(queue) - usize::from(counted_there);
        if policy.max_queue_len.is_some_and(|max| others >= max) {
            return Err(RoutingError::QueueFull(queue));
        }
        let from_agent = self.release(conversation);
        if let Some(c) = self.conversations.get_mut(&conversation) {
            c.queue = queue;
            c.waiting_since = now;
            c.queue_entered_at = now;
            c.at_head = false;
            c.sticky_agent = None;
            c.declined_by.clear();
            c.declined_by.extend(from_agent);
        }
        let out = vec![Decision::Transferred { conversation, from_agent, to: TransferTarget::Queue(queue), note }];
        Ok(self.dispatch(now, out))
    }

    /// The agent resolved an assigned conversation: it leaves routing, the slot frees, and the
    /// agent enters the queue's wrap-up if it has one.
    pub fn resolve(&mut self, conversation: ConversationId, now: Millis) -> Outcome {
        let c = self.conversations.get(&conversation).ok_or(RoutingError::UnknownConversation(conversation))?;
        let Holder::Assigned { agent } = c.holder else {
            return Err(RoutingError::NotAssigned(conversation));
        };
        let wrap_up_ms = self.policy(c.queue).map_or(0, |p| p.wrap_up_ms);
        self.release(conversation);
        self.conversations.remove(&conversation);
        let mut out = Vec::new();
        if wrap_up_ms > 0 {
            if let Some(a) = self.agents.get_mut(&agent) {
                let until = a.wrap_up_until.map_or(now + wrap_up_ms, |u| u.max(now + wrap_up_ms));
                a.wrap_up_until = Some(until);
                out.push(Decision::WrapUpStarted { agent, until });
            }
        }
        Ok(self.dispatch(now, out))
    }

    /// The conversation ended without being resolved by an agent (the customer left, a
    /// supervisor closed it): it leaves routing from whatever state it was in. No wrap-up.
    pub fn abandon(&mut self, conversation: ConversationId, now: Millis) -> Outcome {
        if !self.conversations.contains_key(&conversation) {
            return Err(RoutingError::UnknownConversation(conversation));
        }
        self.release(conversation);
        self.conversations.remove(&conversation);
        Ok(self.dispatch(now, Vec::new()))
    }

    /// Time passed: expire offers, end wrap-ups, overflow conversations that waited too long,
    /// and dispatch (aging and skill fallback take effect through `now`).
    pub fn tick(&mut self, now: Millis) -> Vec<Decision> {
        let mut out = Vec::new();
        let expired: Vec<(ConversationId, UserId)> = self
            .conversations
            .values()
            .filter_map(|c| match c.holder {
                Holder::Offered { agent, expires_at } if expires_at <= now => Some((c.id, agent)),
                _ => None,
            })
            .collect();
        for (conversation, agent) in expired {
            self.decline(conversation, agent, RequeueReason::OfferTimedOut, &mut out);
        }
        for agent in self.agents.values_mut() {
            if agent.wrap_up_until.is_some_and(|until| until <= now) {
                agent.wrap_up_until = None;
                out.push(Decision::WrapUpEnded { agent: agent.id });
            }
        }
        // Serve what can be served where it is before moving anything elsewhere.
        let mut out = self.dispatch(now, out);
        self.overflow(now, &mut out);
        self.dispatch(now, out)
    }

    fn overflow(&mut self, now: Millis, out: &mut Vec<Decision>) {
        let due: Vec<(ConversationId, QueueId, QueueId)> = self
            .conversations
            .values()
            .filter(|c| c.holder == Holder::Waiting)
            .filter_map(|c| {
                let policy = self.policy(c.queue)?;
                let after = policy.overflow_after_ms?;
                let to = policy.overflow_to?;
                (to != c.queue && now.saturating_sub(c.queue_entered_at) >= after).then_some((c.id, c.queue, to))
            })
            .collect();
        for (conversation, from, to) in due {
            let Some(target_policy) = self.policy(to) else { continue };
            if self.is_full(to, target_policy) {
                continue; // tried again at the next tick
            }
            let sticky_serves_target = |c: &RoutedConversation| {
                c.sticky_agent.and_then(|s| self.agents.get(&s)).is_some_and(|a| a.queues.contains(&to))
            };
            let keep_sticky = self.conversations.get(&conversation).is_some_and(sticky_serves_target);
            if let Some(c) = self.conversations.get_mut(&conversation) {
                c.queue = to;
                c.queue_entered_at = now;
                if !keep_sticky {
                    c.sticky_agent = None;
                }
            }
            out.push(Decision::Overflowed { conversation, from, to });
        }
    }

    // ---- the one place work is handed out automatically -----------------------------------

    /// Offers (or, in auto-accept queues, assigns) every waiting conversation of every
    /// non-manual queue that some eligible agent has room for, in queue order, each to the
    /// agent its queue's strategy ranks first. Appends to `out` and returns it. See the module
    /// documentation for why one pass leaves nothing strandable behind.
    fn dispatch(&mut self, now: Millis, mut out: Vec<Decision>) -> Vec<Decision> {
        // Agents who could take anything at all: available, not in wrap-up, total room left.
        // Only they are worth checking per conversation, and when none is left the pass ends.
        let mut open: BTreeSet<UserId> = self
            .agents
            .values()
            .filter(|a| a.status == AgentStatus::Available && !a.in_wrap_up(now) && a.load.total < a.capacity.total)
            .map(|a| a.id)
            .collect();
        if open.is_empty() {
            return out;
        }
        let mut order: Vec<(QueueOrderKey, ConversationId)> = self
            .conversations
            .values()
            .filter(|c| c.holder == Holder::Waiting)
            .filter_map(|c| {
                let policy = self.policy(c.queue)?;
                (policy.strategy != Strategy::Manual).then(|| (queue_order_key(c, policy, now), c.id))
            })
            .collect();
        order.sort();
        for (_, id) in order {
            let Some(choice) = self.choose_agent(id, &open, now) else { continue };
            let Some(c) = self.conversations.get(&id) else { continue };
            let queue = c.queue;
            let Some(state) = self.queues.get_mut(&queue) else { continue };
            state.round_robin_cursor = Some(choice);
            if state.policy.auto_accept {
                self.give(id, choice, Holder::Assigned { agent: choice }, now);
                out.push(Decision::Assigned { conversation: id, agent: choice, queue, how: AssignedHow::AutoAccepted });
            } else {
                let expires_at = now.saturating_add(state.policy.offer_timeout_ms);
                self.give(id, choice, Holder::Offered { agent: choice, expires_at }, now);
                out.push(Decision::Offered { conversation: id, agent: choice, queue, expires_at });
            }
            if self.agents.get(&choice).is_none_or(|a| a.load.total >= a.capacity.total) {
                open.remove(&choice);
                if open.is_empty() {
                    break;
                }
            }
        }
        out
    }

    /// The best agent among `open` for a waiting conversation right now, if any is eligible
    /// with room.
    fn choose_agent(&self, conversation: ConversationId, open: &BTreeSet<UserId>, now: Millis) -> Option<UserId> {
        let c = self.conversations.get(&conversation)?;
        let state = self.queues.get(&c.queue)?;
        let candidates: Vec<&Agent> = open
            .iter()
            .filter_map(|id| self.agents.get(id))
            .filter(|a| is_eligible(a, c, &state.policy, now) && has_room(a, c.channel))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let ranked = rank_agents(state.policy.strategy, &candidates, c, &state.policy, state.round_robin_cursor, now);
        ranked.first().copied()
    }

    // ---- bookkeeping: the only two functions that touch `held` and `load` -----------------

    /// Hands a conversation that nobody holds to `agent` as `holder` (an offer or an
    /// assignment), counting it against their load.
    fn give(&mut self, conversation: ConversationId, agent: UserId, holder: Holder, now: Millis) {
        let Some(c) = self.conversations.get_mut(&conversation) else { return };
        debug_assert_eq!(c.holder, Holder::Waiting, "give() needs an unheld conversation");
        c.holder = holder;
        if matches!(holder, Holder::Assigned { .. }) {
            c.declined_by.clear();
            c.sticky_agent = None;
        }
        let kind = c.channel;
        if let Some(a) = self.agents.get_mut(&agent) {
            a.load.add(kind);
            a.idle_since = now;
        }
        self.held.entry(agent).or_default().insert(conversation);
    }

    /// Takes the conversation away from whoever holds it (it becomes `Waiting`), freeing their
    /// slot. Returns who held it.
    fn release(&mut self, conversation: ConversationId) -> Option<UserId> {
        let c = self.conversations.get_mut(&conversation)?;
        let agent = c.holder.agent()?;
        c.holder = Holder::Waiting;
        let kind = c.channel;
        if let Some(a) = self.agents.get_mut(&agent) {
            a.load.remove(kind);
        }
        if let Some(set) = self.held.get_mut(&agent) {
            set.remove(&conversation);
            if set.is_empty() {
                self.held.remove(&agent);
            }
        }
        Some(agent)
    }

    fn push_requeued(
        &self,
        conversation: ConversationId,
        from_agent: UserId,
        reason: RequeueReason,
        at_head: bool,
        out: &mut Vec<Decision>,
    ) {
        if let Some(c) = self.conversations.get(&conversation) {
            out.push(Decision::Requeued { conversation, queue: c.queue, from_agent, reason, at_head });
        }
    }
}

impl RoutedConversation {
    /// When the pending offer expires (`None` unless offered); used to find the newest offer.
    fn holder_expiry(&self) -> Option<Millis> {
        match self.holder {
            Holder::Offered { expires_at, .. } => Some(expires_at),
            _ => None,
        }
    }
}

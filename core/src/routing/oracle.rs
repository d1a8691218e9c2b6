//! The test-only oracle: the [`super::Switch`] as it was before dispatch became incremental,
//! kept verbatim apart from its name. Every event ends with a full `dispatch` pass that sorts
//! every waiting conversation by queue order and checks each against every agent with room
//! (O(waiting × agents) per event), and agents are ranked with the full sort of
//! [`rank_agents`]. It is slow and obviously faithful to the rules, which is its job: the
//! property test at the bottom drives random event sequences through both and asserts the same
//! decisions, errors and state after every event.
#![allow(dead_code)]

use super::decide::{has_room, is_eligible, queue_order_key, rank_agents, waited, QueueOrderKey};
use super::model::{Agent, Holder, Load, RoutedConversation};
use super::policy::{
    Capacity, QueueId, QueuePolicy, Strategy, MAX_PRIORITY, MAX_PROFICIENCY, MIN_PRIORITY, MIN_PROFICIENCY,
};
use super::switch::{
    AgentLoad, AgentProfile, Arrival, AssignedHow, Decision, Outcome, QueueSnapshot, RefusalReason, RequeueReason,
    RoutingError, TransferTarget,
};
use crate::domain::{AgentStatus, ChannelKind};
use crate::ids::{ConversationId, UserId};
use crate::time::Millis;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Eq)]
struct QueueState {
    policy: QueuePolicy,
    round_robin_cursor: Option<UserId>,
}

/// The old `Switch`, unchanged apart from its name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Oracle {
    queues: BTreeMap<QueueId, QueueState>,
    agents: BTreeMap<UserId, Agent>,
    conversations: BTreeMap<ConversationId, RoutedConversation>,
    held: BTreeMap<UserId, BTreeSet<ConversationId>>,
}

impl Oracle {
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
    /// index + 1 is each one's [`Oracle::position`]. One sort instead of one count per
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
    /// capacity. Status is changed with [`Oracle::set_status`].
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
                .max_by_key(|c| (holder_expiry(c), c.id))
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
                ..RoutedConversation::waiting(
                    arrival.conversation,
                    arrival.queue,
                    arrival.channel,
                    arrival.priority,
                    now,
                )
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

/// When the pending offer expires (`None` unless offered); used to find the newest offer.
fn holder_expiry(c: &RoutedConversation) -> Option<Millis> {
    match c.holder {
        Holder::Offered { expires_at, .. } => Some(expires_at),
        _ => None,
    }
}

/// The optimized [`super::Switch`] against the [`Oracle`] on random event sequences: same
/// decisions, same errors, same state after every event. Also [`super::best_agent`] against
/// the first of [`rank_agents`].
mod equivalence {
    use super::*;
    use crate::routing::decide::best_agent;
    use crate::routing::policy::{SkillId, SkillRequirement};
    use crate::routing::switch::Switch;
    // Imported one by one: the prelude's `Strategy` trait would shadow routing's `Strategy`.
    use proptest::prelude::{any, prop_assert_eq, prop_oneof, proptest, ProptestConfig, TestCaseError};
    use proptest::strategy::Strategy as _;

    const QUEUES: [QueueId; 4] = [QueueId(1), QueueId(2), QueueId(3), QueueId(4)];
    const AGENTS: [UserId; 6] = [UserId(1), UserId(2), UserId(3), UserId(4), UserId(5), UserId(6)];
    const KINDS: [ChannelKind; 3] = [ChannelKind::Web, ChannelKind::Whatsapp, ChannelKind::Telegram];
    const SKILLS: [&str; 3] = ["billing", "spanish", "vip"];

    /// The policies a queue can be switched between (`SetPolicy`); every strategy, timer and
    /// limit appears in at least one.
    fn policy_variant(queue: usize, variant: usize) -> QueuePolicy {
        let next = QUEUES[(queue + 1) % QUEUES.len()];
        match variant % 6 {
            0 => QueuePolicy {
                strategy: Strategy::LeastLoaded,
                offer_timeout_ms: 2_000,
                auto_accept: false,
                priority_aging_ms: 1_000,
                skill_fallback_after_ms: Some(3_000),
                skills_ignored_after_ms: Some(8_000),
                overflow_after_ms: Some(5_000),
                overflow_to: Some(next),
                max_queue_len: Some(6),
                wrap_up_ms: 500,
                sticky_ms: 1_000,
                ..Default::default()
            },
            1 => QueuePolicy {
                strategy: Strategy::RoundRobin,
                sticky_ms: 2_000,
                max_queue_len: Some(8),
                priority_aging_ms: 700,
                max_priority_boost: 2,
                ..Default::default()
            },
            2 => QueuePolicy { strategy: Strategy::Manual, ..Default::default() },
            3 => QueuePolicy {
                strategy: Strategy::LongestIdle,
                auto_accept: false,
                offer_timeout_ms: 1_500,
                overflow_after_ms: Some(4_000),
                overflow_to: Some(next),
                skill_fallback_after_ms: Some(2_000),
                wrap_up_ms: 800,
                ..Default::default()
            },
            4 => QueuePolicy {
                strategy: Strategy::LeastLoaded,
                priority_aging_ms: 0,
                skills_ignored_after_ms: Some(1_500),
                sticky_ms: 3_000,
                ..Default::default()
            },
            _ => QueuePolicy {
                strategy: Strategy::RoundRobin,
                auto_accept: false,
                offer_timeout_ms: 900,
                ..Default::default()
            },
        }
    }

    fn skills_variant(variant: usize) -> BTreeMap<SkillId, u8> {
        let table: [&[(&str, u8)]; 5] = [
            &[("billing", 5)],
            &[("billing", 2), ("spanish", 4)],
            &[("spanish", 2)],
            &[],
            &[("vip", 3), ("billing", 1)],
        ];
        table[variant % table.len()].iter().map(|(s, p)| (SkillId::new(*s), *p)).collect()
    }

    fn profile(agent: usize, queues: u8, skills: usize, total: u32, whatsapp: u32) -> AgentProfile {
        AgentProfile {
            agent: AGENTS[agent],
            queues: QUEUES.iter().enumerate().filter(|(i, _)| queues & (1 << i) != 0).map(|(_, q)| *q).collect(),
            skills: skills_variant(skills),
            capacity: Capacity::total(total).with_kind(ChannelKind::Whatsapp, whatsapp),
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Arrive {
            queue: usize,
            kind: usize,
            priority: u8,
            skills: Vec<(usize, u8)>,
            last_agent: Option<usize>,
        },
        Accept {
            n: usize,
            as_agent: Option<usize>,
        },
        Reject {
            n: usize,
            as_agent: Option<usize>,
        },
        /// Advance the clock and tick.
        Wait(Millis),
        /// Advance the clock without a tick: the next event sees deadlines that passed.
        Advance(Millis),
        /// Step the clock back (callers' clocks are not trusted to be monotone).
        Back(Millis),
        Disconnect(usize),
        Status(usize, usize),
        Capacity {
            agent: usize,
            total: u32,
            whatsapp: u32,
        },
        Upsert {
            agent: usize,
            queues: u8,
            skills: usize,
            total: u32,
            whatsapp: u32,
        },
        SetPolicy {
            queue: usize,
            variant: usize,
        },
        TransferToAgent(usize, usize),
        TransferToQueue(usize, usize),
        Claim(usize, usize),
        Resolve(usize),
        Abandon(usize),
        EndWrapUp(usize),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        prop_oneof![
            8 => (0..4usize, 0..3usize, 1..=5u8, proptest::collection::vec((0..3usize, 1..=5u8), 0..=2), proptest::option::of(0..6usize))
                .prop_map(|(queue, kind, priority, skills, last_agent)| Op::Arrive { queue, kind, priority, skills, last_agent }),
            4 => (any::<usize>(), proptest::option::weighted(0.2, 0..6usize)).prop_map(|(n, as_agent)| Op::Accept { n, as_agent }),
            2 => (any::<usize>(), proptest::option::weighted(0.2, 0..6usize)).prop_map(|(n, as_agent)| Op::Reject { n, as_agent }),
            3 => (0..3_000i64).prop_map(Op::Wait),
            2 => (0..3_000i64).prop_map(Op::Advance),
            1 => (0..2_000i64).prop_map(Op::Back),
            1 => (0..6usize).prop_map(Op::Disconnect),
            3 => (0..6usize, 0..3usize).prop_map(|(a, s)| Op::Status(a, s)),
            1 => (0..6usize, 0..4u32, 0..3u32).prop_map(|(agent, total, whatsapp)| Op::Capacity { agent, total, whatsapp }),
            1 => (0..6usize, 0..16u8, 0..5usize, 0..4u32, 0..3u32)
                .prop_map(|(agent, queues, skills, total, whatsapp)| Op::Upsert { agent, queues, skills, total, whatsapp }),
            1 => (0..4usize, 0..6usize).prop_map(|(queue, variant)| Op::SetPolicy { queue, variant }),
            1 => (any::<usize>(), 0..6usize).prop_map(|(c, a)| Op::TransferToAgent(c, a)),
            1 => (any::<usize>(), 0..4usize).prop_map(|(c, q)| Op::TransferToQueue(c, q)),
            2 => (any::<usize>(), 0..6usize).prop_map(|(c, a)| Op::Claim(c, a)),
            4 => any::<usize>().prop_map(Op::Resolve),
            1 => any::<usize>().prop_map(Op::Abandon),
            1 => (0..6usize).prop_map(Op::EndWrapUp),
        ]
    }

    /// Applies one op to either model (they share method names and signatures). `None` when the
    /// op has nothing to act on or only moves the clock.
    macro_rules! apply {
        ($sw:expr, $op:expr, $now:expr, $next_id:expr) => {{
            let sw = $sw;
            let now: &mut Millis = $now;
            let pick = |n: usize, filter: &dyn Fn(&RoutedConversation) -> bool| -> Option<ConversationId> {
                let ids: Vec<ConversationId> = sw.conversations().filter(|c| filter(c)).map(|c| c.id).collect();
                (!ids.is_empty()).then(|| ids[n % ids.len()])
            };
            let offered = |c: &RoutedConversation| matches!(c.holder, Holder::Offered { .. });
            let result: Option<Outcome> = match $op.clone() {
                Op::Arrive { queue, kind, priority, skills, last_agent } => {
                    let arrival = Arrival {
                        conversation: ConversationId($next_id),
                        queue: QUEUES[queue],
                        channel: KINDS[kind],
                        priority,
                        required_skills: skills
                            .into_iter()
                            .collect::<BTreeMap<usize, u8>>()
                            .into_iter()
                            .map(|(s, p)| SkillRequirement { skill: SkillId::new(SKILLS[s]), min_proficiency: p })
                            .collect(),
                        last_agent: last_agent.map(|i| AGENTS[i]),
                    };
                    Some(sw.arrive(arrival, *now))
                }
                Op::Accept { n, as_agent } => pick(n, &offered).and_then(|id| {
                    let agent = as_agent.map(|i| AGENTS[i]).or(sw.conversation(id)?.holder.agent())?;
                    Some(sw.offer_accepted(id, agent, *now))
                }),
                Op::Reject { n, as_agent } => pick(n, &offered).and_then(|id| {
                    let agent = as_agent.map(|i| AGENTS[i]).or(sw.conversation(id)?.holder.agent())?;
                    Some(sw.offer_rejected(id, agent, *now))
                }),
                Op::Wait(ms) => {
                    *now += ms;
                    Some(Ok(sw.tick(*now)))
                }
                Op::Advance(ms) => {
                    *now += ms;
                    None
                }
                Op::Back(ms) => {
                    *now -= ms;
                    None
                }
                Op::Disconnect(i) => Some(sw.agent_disconnected(AGENTS[i], *now)),
                Op::Status(i, s) => {
                    let status = [AgentStatus::Available, AgentStatus::Away, AgentStatus::Offline][s];
                    Some(sw.set_status(AGENTS[i], status, *now))
                }
                Op::Capacity { agent, total, whatsapp } => Some(sw.set_capacity(
                    AGENTS[agent],
                    Capacity::total(total).with_kind(ChannelKind::Whatsapp, whatsapp),
                    *now,
                )),
                Op::Upsert { agent, queues, skills, total, whatsapp } => {
                    Some(sw.upsert_agent(profile(agent, queues, skills, total, whatsapp), *now))
                }
                Op::SetPolicy { queue, variant } => {
                    Some(sw.set_policy(QUEUES[queue], policy_variant(queue, variant), *now))
                }
                Op::TransferToAgent(n, i) => {
                    pick(n, &|_| true).map(|id| sw.transfer_to_agent(id, AGENTS[i], None, *now))
                }
                Op::TransferToQueue(n, q) => {
                    pick(n, &|_| true).map(|id| sw.transfer_to_queue(id, QUEUES[q], None, *now))
                }
                Op::Claim(n, i) => pick(n, &|c| c.holder == Holder::Waiting).map(|id| sw.claim(id, AGENTS[i], *now)),
                Op::Resolve(n) => {
                    let id = if n % 7 == 0 {
                        pick(n, &|_| true)
                    } else {
                        pick(n, &|c| matches!(c.holder, Holder::Assigned { .. }))
                    };
                    id.map(|id| sw.resolve(id, *now))
                }
                Op::Abandon(n) => pick(n, &|_| true).map(|id| sw.abandon(id, *now)),
                Op::EndWrapUp(i) => Some(sw.end_wrap_up(AGENTS[i], *now)),
            };
            result
        }};
    }

    /// Four queues (policies 0, 1, 2, 3: least-loaded with offers and every timer, round robin
    /// with sticky, manual, longest-idle with offers and overflow) and six agents with
    /// overlapping memberships, uneven skills and WhatsApp caps, all available at t = 0. Built
    /// through the same calls on both models.
    macro_rules! world {
        ($sw:expr) => {{
            let sw = $sw;
            for q in 0..QUEUES.len() {
                // Overflow targets must exist first: create them all plainly, then configure.
                sw.set_policy(QUEUES[q], QueuePolicy::default(), 0).expect("valid policy");
            }
            for q in 0..QUEUES.len() {
                sw.set_policy(QUEUES[q], policy_variant(q, q), 0).expect("valid policy");
            }
            let memberships: [u8; 6] = [0b0111, 0b1001, 0b1110, 0b1111, 0b0011, 0b1100];
            for (i, queues) in memberships.iter().enumerate() {
                sw.upsert_agent(profile(i, *queues, i, 2 + i as u32 % 3, 1), 0).expect("valid agent");
                sw.set_status(AGENTS[i], AgentStatus::Available, 0).expect("known agent");
            }
        }};
    }

    /// Everything observable about routing state, for comparing the two models.
    fn same_state(fast: &Switch, slow: &Oracle, now: Millis) -> Result<(), TestCaseError> {
        prop_assert_eq!(fast.agents().collect::<Vec<_>>(), slow.agents().collect::<Vec<_>>());
        prop_assert_eq!(fast.conversations().collect::<Vec<_>>(), slow.conversations().collect::<Vec<_>>());
        for agent in AGENTS {
            prop_assert_eq!(fast.held_by(agent).collect::<Vec<_>>(), slow.held_by(agent).collect::<Vec<_>>());
        }
        for queue in QUEUES {
            prop_assert_eq!(fast.round_robin_cursor(queue), slow.round_robin_cursor(queue));
            prop_assert_eq!(fast.policy(queue), slow.policy(queue));
            prop_assert_eq!(fast.queue_order(queue, now), slow.queue_order(queue, now));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn incremental_dispatch_decides_exactly_like_the_full_pass(ops in proptest::collection::vec(op(), 10..200)) {
            let (mut fast, mut slow) = (Switch::new(), Oracle::new());
            world!(&mut fast);
            world!(&mut slow);
            same_state(&fast, &slow, 0)?;
            let (mut now_fast, mut now_slow): (Millis, Millis) = (0, 0);
            let mut next_id = 0;
            for op in &ops {
                if matches!(op, Op::Arrive { .. }) {
                    next_id += 1;
                }
                let before = fast.clone();
                let got = apply!(&mut fast, op, &mut now_fast, next_id);
                let want = apply!(&mut slow, op, &mut now_slow, next_id);
                prop_assert_eq!(&got, &want, "after {:?}", op);
                if matches!(got, Some(Err(_))) {
                    prop_assert_eq!(&fast, &before, "a refused {:?} changed the switch", op);
                }
                same_state(&fast, &slow, now_fast)?;
            }
        }

        #[test]
        fn best_agent_is_the_first_of_rank_agents(
            agents in proptest::collection::vec((0..5u32, 0..5u32, 0..4i64, 0..3usize), 0..8),
            strategy in 0..4usize,
            sticky in proptest::option::of(0..10i64),
            declined in proptest::collection::btree_set(0..10i64, 0..4),
            cursor in proptest::option::of(0..10i64),
            now in 0..2_000i64,
        ) {
            let strategy = [Strategy::LeastLoaded, Strategy::LongestIdle, Strategy::RoundRobin, Strategy::Manual][strategy];
            let policy = QueuePolicy { sticky_ms: 1_000, ..Default::default() };
            let mut c = RoutedConversation::waiting(ConversationId(1), QueueId(1), ChannelKind::Web, 3, 0);
            c.sticky_agent = sticky.map(UserId);
            c.declined_by = declined.into_iter().map(UserId).collect();
            // Distinct ids, in scrambled order.
            let agents: Vec<Agent> = agents
                .into_iter()
                .enumerate()
                .map(|(i, (load, cap, idle_since, _))| {
                    let mut l = Load::default();
                    for _ in 0..load {
                        l.add(ChannelKind::Web);
                    }
                    Agent {
                        id: UserId(((i as i64) * 7 + 3) % 10),
                        status: AgentStatus::Available,
                        wrap_up_until: None,
                        idle_since,
                        queues: BTreeSet::from([QueueId(1)]),
                        skills: BTreeMap::new(),
                        capacity: Capacity::total(cap),
                        load: l,
                    }
                })
                .collect();
            let candidates: Vec<&Agent> = agents.iter().collect();
            let cursor = cursor.map(UserId);
            prop_assert_eq!(
                best_agent(strategy, &candidates, &c, &policy, cursor, now),
                rank_agents(strategy, &candidates, &c, &policy, cursor, now).first().copied()
            );
        }
    }
}

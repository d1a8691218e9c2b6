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
//!    `dispatch(now)`, which is the pass "visit every waiting conversation once, in queue order,
//!    and give it to the best eligible agent with room". During that pass nothing that
//!    eligibility reads changes (status, wrap-up, skills, queues, stickiness of *other*
//!    conversations, `now`), and room only shrinks as offers are made. So a conversation passed
//!    over because no eligible agent had room still has none when the pass ends. The pass is
//!    carried out incrementally — it only looks at the conversations and agents that changed
//!    since the previous dispatch, or whose eligibility a passing deadline widened — and
//!    `dispatch` documents why that is the same pass; the test oracle (`oracle.rs`, the full
//!    pass over everything) checks it on random event sequences.
//! 5. **Queue order.** The pass hands out conversations in [`QueueOrderKey`] order
//!    (head-of-queue requeues, then effective priority, then `waiting_since`, then id);
//!    restricted to one queue this is that queue's order, so FIFO holds within a priority. A
//!    conversation is only passed over when no eligible agent had room at its turn, and room
//!    only shrinks afterwards, so whenever a conversation is handed to an agent no better-placed
//!    waiting conversation of the same queue could have had that slot.
//!
//! The bookkeeping behind the incremental pass (waiting conversations per queue in priority
//! buckets, open members per queue, deadlines) lives in a private index derived from the state
//! above; it is refiled after every change and narrows down whom the rules are asked about,
//! never what they answer.
//!
//! Rejected and expired offers keep the conversation's `waiting_since`, so it keeps its place;
//! the agent who said no ranks last for it but stays eligible (a lone agent cannot strand it).
//!
//! Time is only what callers say it is. Offers past `expires_at`, wrap-ups past their end and
//! overflow deadlines are acted on at the next `tick(now)`; until then they err on the safe side
//! (the expired offer still reserves its slot and can no longer be accepted; an ended wrap-up is
//! already ignored by eligibility).

use super::decide::{
    best_agent, compare_ratio, effective_priority_of, has_room, is_eligible, queue_order_key, skill_stage,
    skill_stage_after, sticky_reservation, waited, waited_since, QueueOrderKey, SkillStage,
};
use super::model::{Agent, Holder, Load, RoutedConversation};
use super::policy::{
    Capacity, PolicyError, QueueId, QueuePolicy, SkillId, SkillRequirement, Strategy, MAX_PRIORITY, MAX_PROFICIENCY,
    MIN_PRIORITY, MIN_PROFICIENCY,
};
use crate::domain::{AgentStatus, ChannelKind};
use crate::ids::{ConversationId, UserId};
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

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
#[derive(Debug, Clone, Default)]
pub struct Switch {
    queues: BTreeMap<QueueId, QueueState>,
    agents: BTreeMap<UserId, Agent>,
    conversations: BTreeMap<ConversationId, RoutedConversation>,
    /// Agent → the conversations offered or assigned to them (bookkeeping for `Holder`).
    held: BTreeMap<UserId, BTreeSet<ConversationId>>,
    /// Derived from the four fields above; see [`Index`].
    index: Index,
}

/// Two switches are equal when their routing state is: the derived [`Index`] is left out (it is
/// a function of that state, plus scratch that is empty between events).
impl PartialEq for Switch {
    fn eq(&self, other: &Self) -> bool {
        self.queues == other.queues
            && self.agents == other.agents
            && self.conversations == other.conversations
            && self.held == other.held
    }
}

impl Eq for Switch {}

/// Priority buckets per queue: `(at_head, priority)` for the five arrival priorities.
const BUCKETS: usize = 2 * (MAX_PRIORITY - MIN_PRIORITY + 1) as usize;

/// The bucket of a waiting conversation: head-of-queue requeues first, then arrival priority
/// from 5 down to 1. Queue order sorts by exactly these two before the waiting time.
fn bucket_of(c: &RoutedConversation) -> usize {
    let head = if c.at_head { 0 } else { BUCKETS / 2 };
    head + usize::from(MAX_PRIORITY.saturating_sub(c.priority)).min(BUCKETS / 2 - 1)
}

/// A waiting conversation's entry in a bucket: within one bucket, `(waiting_since, id)` order is
/// queue order at every `now` (see [`Index::waiting`]).
type Slot = (Millis, ConversationId);

/// A point in time at which eligibility may grow without any event touching the conversation or
/// agent concerned: `(when, 0, conversation id)` for a waiting conversation's skill stage or
/// sticky window, `(when, 1, agent id)` for the end of an agent's wrap-up.
type Timer = (Millis, u8, i64);
const CONVERSATION_TIMER: u8 = 0;
const AGENT_TIMER: u8 = 1;

/// Skills as interned ids with a proficiency (agents: what they have; conversations: what they
/// require), so the index can rule agents out without comparing skill names.
type Skills = Vec<(u32, u8)>;

fn intern(ids: &mut HashMap<SkillId, u32>, skill: &SkillId) -> u32 {
    let next = ids.len() as u32;
    *ids.entry(skill.clone()).or_insert(next)
}

/// Exactly [`super::decide::meets_skills`], on interned ids: `have` meets every requirement at
/// `stage`. Used to skip agents and conversations cheaply; whoever passes is still checked with
/// [`is_eligible`].
fn skills_fit(have: &[(u32, u8)], needs: &[(u32, u8)], stage: SkillStage) -> bool {
    let floor = match stage {
        SkillStage::Ignored => return true,
        SkillStage::AnyProficiency => Some(MIN_PROFICIENCY),
        SkillStage::Strict => None,
    };
    needs.iter().all(|(skill, min)| {
        let needed = floor.unwrap_or(*min);
        have.iter().any(|(s, p)| s == skill && *p >= needed)
    })
}

/// What a bucket keeps of a waiting conversation: enough to compute its queue order key and to
/// rule agents out (channel for room, skills) without looking the conversation up.
#[derive(Debug, Clone)]
struct Entry {
    at_head: bool,
    priority: u8,
    channel: ChannelKind,
    needs: Skills,
}

impl Entry {
    fn key(&self, slot: Slot, policy: &QueuePolicy, now: Millis) -> QueueOrderKey {
        QueueOrderKey {
            not_at_head: !self.at_head,
            priority: Reverse(effective_priority_of(self.priority, waited_since(slot.0, now), policy)),
            waiting_since: slot.0,
            id: slot.1,
        }
    }
}

/// Where a waiting conversation is filed in the [`Index`], so it can be unfiled after its fields
/// change.
#[derive(Debug, Clone)]
struct Filed {
    queue: QueueId,
    slot: Slot,
    bucket: usize,
    timers: Vec<Millis>,
}

/// Where an agent is filed.
#[derive(Debug, Clone, Default)]
struct AgentFiled {
    /// The queues where they are an open member, with their rank there.
    open_in: Vec<(QueueId, Rank)>,
    wrap_up_timer: Option<Millis>,
}

/// An open member's place in their queue's strategy order, as [`super::decide::rank_agents`]
/// sorts: least-loaded by `load ÷ capacity` (exact cross-multiplication, zero capacity last),
/// then `idle_since`, then id; longest-idle by `idle_since`, then id; round robin (and manual)
/// by id, the cursor applied when walking. Fields a strategy does not use are zero.
#[derive(Debug, Clone, Copy)]
struct Rank {
    load: u32,
    capacity: u32,
    idle_since: Millis,
    id: UserId,
}

impl Rank {
    fn of(agent: &Agent, strategy: Strategy) -> Rank {
        let (ratio, idle) = match strategy {
            Strategy::LeastLoaded => (true, true),
            Strategy::LongestIdle => (false, true),
            Strategy::RoundRobin | Strategy::Manual => (false, false),
        };
        Rank {
            load: if ratio { agent.load.total } else { 0 },
            capacity: if ratio { agent.capacity.total } else { 1 },
            idle_since: if idle { agent.idle_since } else { 0 },
            id: agent.id,
        }
    }

    /// The smallest rank of a round-robin queue with an id above `id`.
    fn after(id: UserId) -> Rank {
        Rank { load: 0, capacity: 1, idle_since: 0, id: UserId(id.0.saturating_add(1)) }
    }
}

impl Ord for Rank {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_ratio((self.load, self.capacity), (other.load, other.capacity))
            .then(self.idle_since.cmp(&other.idle_since))
            .then(self.id.cmp(&other.id))
    }
}

impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Rank {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Rank {}

/// Indexes derived from the switch's state that make dispatch incremental. They are rebuilt for
/// one conversation ([`Switch::refile_conversation`]) or agent ([`Switch::refile_agent`]) after
/// every change to it, and they never decide anything on their own: they only narrow down which
/// conversations and agents the rules in `decide` are asked about.
#[derive(Debug, Clone, Default)]
struct Index {
    /// Queue → waiting conversations, in [`BUCKETS`] buckets by `(at_head, priority)`, each
    /// ordered by `(waiting_since, id)`. Within a bucket aging is monotone in waiting time (an
    /// older conversation's effective priority is at least a younger one's), so bucket order is
    /// queue order at any `now`; the queue's order is the merge of its buckets' heads, whose
    /// keys are computed at `now`.
    waiting: BTreeMap<QueueId, Vec<BTreeMap<Slot, Entry>>>,
    filed: HashMap<ConversationId, Filed>,
    /// Queue → members who are `available` with total room (wrap-up, per-kind room and
    /// eligibility are checked per conversation), with their interned skills. Only they can be
    /// handed work.
    /// Ordered by the queue's strategy ([`Rank`]), so the best agent for a conversation is the
    /// first one in order who is eligible with room.
    open_members: BTreeMap<QueueId, BTreeMap<Rank, Skills>>,
    skill_ids: HashMap<SkillId, u32>,
    agents_filed: HashMap<UserId, AgentFiled>,
    /// Every [`Timer`] of the filed conversations and agents.
    timers: BTreeSet<Timer>,
    /// Changed since the last dispatch: conversations that became (or stay, changed) waiting,
    /// and agents who may have gained room or eligibility. Empty between events.
    dirty_conversations: BTreeSet<ConversationId>,
    dirty_agents: BTreeSet<UserId>,
    /// The `now` of the last dispatch: the state was stable (nothing strandable) at that time.
    last_dispatch: Option<Millis>,
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
        self.refile_queue(queue);
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
        self.refile_agent(agent_id);
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
                    self.refile_agent(agent);
                }
                AgentStatus::Away => {
                    if let Some(a) = self.agents.get_mut(&agent) {
                        a.status = status;
                    }
                    self.refile_agent(agent);
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
        self.refile_agent(agent);
        Ok(self.dispatch(now, out))
    }

    fn take_offline(&mut self, agent: UserId, reason: RequeueReason, now: Millis, out: &mut Vec<Decision>) {
        if let Some(a) = self.agents.get_mut(&agent) {
            a.status = AgentStatus::Offline;
            a.wrap_up_until = None;
        }
        self.refile_agent(agent);
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
            self.refile_conversation(id);
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
        let mut dropped = Vec::new();
        for c in self.conversations.values_mut() {
            if c.sticky_agent == Some(agent) && (offline || !queues.contains(&c.queue)) {
                c.sticky_agent = None;
                dropped.push(c.id);
            }
        }
        for id in dropped {
            self.refile_conversation(id);
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
        self.refile_conversation(arrival.conversation);
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
        self.refile_conversation(conversation);
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
        self.refile_conversation(conversation);
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
        self.refile_conversation(conversation);
        let mut out = Vec::new();
        if wrap_up_ms > 0 {
            if let Some(a) = self.agents.get_mut(&agent) {
                let until = a.wrap_up_until.map_or(now + wrap_up_ms, |u| u.max(now + wrap_up_ms));
                a.wrap_up_until = Some(until);
                out.push(Decision::WrapUpStarted { agent, until });
            }
            self.refile_agent(agent);
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
        self.refile_conversation(conversation);
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
        let mut ended = Vec::new();
        for agent in self.agents.values_mut() {
            if agent.wrap_up_until.is_some_and(|until| until <= now) {
                agent.wrap_up_until = None;
                out.push(Decision::WrapUpEnded { agent: agent.id });
                ended.push(agent.id);
            }
        }
        for agent in ended {
            self.refile_agent(agent);
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
            self.refile_conversation(conversation);
            out.push(Decision::Overflowed { conversation, from, to });
        }
    }

    // ---- the one place work is handed out automatically -----------------------------------

    /// Offers (or, in auto-accept queues, assigns) every waiting conversation of every
    /// non-manual queue that some eligible agent has room for, in queue order, each to the
    /// agent its queue's strategy ranks first. Appends to `out` and returns it.
    ///
    /// This makes exactly the decisions of the straightforward pass (kept as the test oracle in
    /// `oracle.rs`): sort every waiting conversation by [`QueueOrderKey`] at `now` and give each
    /// in turn to the best eligible agent with room, if any. Why the incremental version is the
    /// same pass:
    ///
    /// - During a pass nothing eligibility reads changes and room only shrinks, so the set of
    ///   *dispatchable* conversations (waiting, non-manual, some eligible agent with room) only
    ///   shrinks. A conversation the pass skips stays skipped, so the pass is "repeatedly take the
    ///   first dispatchable conversation in queue order and give it to its best agent".
    /// - After the previous dispatch nothing was dispatchable (invariant 4). Whether agent A is
    ///   eligible with room for conversation C depends only on A, C, C's queue policy and `now`.
    ///   So C can be dispatchable now only if C changed (it is in `dirty_conversations`), or an
    ///   agent eligible for it gained room or eligibility (`dirty_agents`), or time crossed a
    ///   point where eligibility grows: a skill stage relaxing, a sticky window closing, a
    ///   wrap-up ending (the [`Timer`]s due since the last dispatch mark those dirty). Time moving
    ///   backwards only shrinks eligibility.
    /// - The first dispatchable conversation is therefore the smallest of: the dirty
    ///   conversations (checked when they come up) and, per dirty agent, the first conversation
    ///   in their queues' order that they are eligible for with room (a [`Walker`]). The loop
    ///   takes the smallest candidate, asks [`Switch::choose_agent`] for the agent [`best_agent`]
    ///   would pick among all eligible agents with room (the first such open member in the
    ///   queue's strategy order, cross-checked against `best_agent` in debug builds), and moves
    ///   on. A candidate that turns out not to be dispatchable any more is dropped for good, for
    ///   the reason above.
    ///
    /// Cost per event: for each dirty conversation a walk through its queue's open members in
    /// strategy order up to the first who can take it, plus each dirty agent's walk through
    /// their queues up to the first conversation they can take (skills compared as interned ids
    /// first) — instead of every waiting conversation times every agent.
    fn dispatch(&mut self, now: Millis, mut out: Vec<Decision>) -> Vec<Decision> {
        if let Some(previous) = self.index.last_dispatch {
            if now > previous {
                let due: Vec<Timer> = self
                    .index
                    .timers
                    .range((Bound::Excluded((previous, u8::MAX, i64::MAX)), Bound::Included((now, u8::MAX, i64::MAX))))
                    .copied()
                    .collect();
                for (_, kind, id) in due {
                    if kind == CONVERSATION_TIMER {
                        self.index.dirty_conversations.insert(ConversationId(id));
                    } else {
                        self.index.dirty_agents.insert(UserId(id));
                    }
                }
            }
        }
        self.index.last_dispatch = Some(now);
        let dirty_conversations = std::mem::take(&mut self.index.dirty_conversations);
        let dirty_agents = std::mem::take(&mut self.index.dirty_agents);
        let mut pending: BTreeSet<QueueOrderKey> = dirty_conversations
            .into_iter()
            .filter_map(|id| {
                let c = self.conversations.get(&id)?;
                let policy = self.policy(c.queue)?;
                (c.holder == Holder::Waiting && policy.strategy != Strategy::Manual)
                    .then(|| queue_order_key(c, policy, now))
            })
            .collect();
        let mut walkers: Vec<Walker> =
            dirty_agents.into_iter().filter_map(|agent| Walker::start(self, agent, now)).collect();
        loop {
            let first_pending = pending.first().copied();
            let first_walked = walkers.iter().filter_map(|w| w.current).min();
            let key = match (first_pending, first_walked) {
                (Some(p), Some(w)) => p.min(w),
                (Some(k), None) | (None, Some(k)) => k,
                (None, None) => break,
            };
            pending.remove(&key);
            let id = key.id;
            if let Some(choice) = self.choose_agent(id, now) {
                self.hand_out(id, choice, now, &mut out);
            }
            for walker in walkers.iter_mut().filter(|w| w.current == Some(key)) {
                walker.advance(self, now);
            }
            walkers.retain(|w| w.current.is_some());
        }
        // Handing out only takes room away; nothing it marked needs another look.
        self.index.dirty_conversations.clear();
        self.index.dirty_agents.clear();
        out
    }

    /// Gives a waiting conversation to the agent dispatch chose: an assignment in auto-accept
    /// queues, an offer otherwise; the queue's round-robin cursor moves to the agent.
    fn hand_out(&mut self, id: ConversationId, choice: UserId, now: Millis, out: &mut Vec<Decision>) {
        let Some(c) = self.conversations.get(&id) else { return };
        let queue = c.queue;
        let Some(state) = self.queues.get_mut(&queue) else { return };
        state.round_robin_cursor = Some(choice);
        if state.policy.auto_accept {
            self.give(id, choice, Holder::Assigned { agent: choice }, now);
            out.push(Decision::Assigned { conversation: id, agent: choice, queue, how: AssignedHow::AutoAccepted });
        } else {
            let expires_at = now.saturating_add(state.policy.offer_timeout_ms);
            self.give(id, choice, Holder::Offered { agent: choice, expires_at }, now);
            out.push(Decision::Offered { conversation: id, agent: choice, queue, expires_at });
        }
    }

    /// The best agent for a waiting conversation of a non-manual queue right now, if any is
    /// eligible with room. Only the queue's open members (available, total room) can be; the
    /// rest of the rules are [`is_eligible`] and [`has_room`] as they stand.
    fn choose_agent(&self, conversation: ConversationId, now: Millis) -> Option<UserId> {
        let c = self.conversations.get(&conversation)?;
        if c.holder != Holder::Waiting {
            return None;
        }
        let state = self.queues.get(&c.queue)?;
        if state.policy.strategy == Strategy::Manual {
            return None;
        }
        let filed = self.index.filed.get(&conversation)?;
        let entry = self.index.waiting.get(&filed.queue)?[filed.bucket].get(&filed.slot)?;
        let stage = skill_stage(c, &state.policy, now);
        let members = self.index.open_members.get(&c.queue)?;
        let fits = |id: UserId, have: &Skills| {
            skills_fit(have, &entry.needs, stage)
                && self.agents.get(&id).is_some_and(|a| is_eligible(a, c, &state.policy, now) && has_room(a, c.channel))
        };
        // `best_agent`'s order, walked instead of computed over every candidate: the sticky
        // agent if they can take it, then the first in strategy order who has not declined it,
        // else the first who has.
        // While a sticky window is open nobody else is eligible (`is_eligible`).
        let choice = if let Some(sticky) = sticky_reservation(c, &state.policy, now) {
            self.index.agents_filed.get(&sticky).and_then(|filed| {
                let (_, rank) = filed.open_in.iter().find(|(q, _)| *q == c.queue)?;
                members.get(rank).is_some_and(|have| fits(sticky, have)).then_some(sticky)
            })
        } else {
            let cursor = state.round_robin_cursor.filter(|_| state.policy.strategy == Strategy::RoundRobin);
            let in_order: Box<dyn Iterator<Item = (&Rank, &Skills)>> = match cursor {
                Some(last) => Box::new(members.range(Rank::after(last)..).chain(members.range(..Rank::after(last)))),
                None => Box::new(members.iter()),
            };
            let (mut first, mut first_decliner) = (None, None);
            for (rank, have) in in_order {
                if !fits(rank.id, have) {
                    continue;
                }
                if !c.declined_by.contains(&rank.id) {
                    first = Some(rank.id);
                    break;
                }
                first_decliner = first_decliner.or(Some(rank.id));
            }
            first.or(first_decliner)
        };
        debug_assert_eq!(choice, {
            let candidates: Vec<&Agent> = members
                .iter()
                .filter(|(rank, have)| fits(rank.id, have))
                .filter_map(|(rank, _)| self.agents.get(&rank.id))
                .collect();
            best_agent(state.policy.strategy, &candidates, c, &state.policy, state.round_robin_cursor, now)
        });
        choice
    }

    // ---- the index ------------------------------------------------------------------------

    /// Refiles a conversation after anything about it changed (holder, queue, `at_head`,
    /// `waiting_since`, stickiness, skills, its queue's policy) or after it left routing. A
    /// waiting conversation is marked for the next dispatch.
    fn refile_conversation(&mut self, id: ConversationId) {
        if let Some(old) = self.index.filed.remove(&id) {
            if let Some(buckets) = self.index.waiting.get_mut(&old.queue) {
                buckets[old.bucket].remove(&old.slot);
            }
            for at in old.timers {
                self.index.timers.remove(&(at, CONVERSATION_TIMER, id.0));
            }
        }
        let Some(c) = self.conversations.get(&id) else { return };
        if c.holder != Holder::Waiting {
            return;
        }
        let mut timers = Vec::new();
        if let Some(policy) = self.queues.get(&c.queue).map(|q| &q.policy) {
            let after = |ms: Millis| c.waiting_since.saturating_add(ms);
            if c.sticky_agent.is_some() && policy.sticky_ms > 0 {
                timers.push(after(policy.sticky_ms));
            }
            if !c.required_skills.is_empty() {
                timers.extend(policy.skill_fallback_after_ms.map(after));
                timers.extend(policy.skills_ignored_after_ms.map(after));
            }
        }
        let needs = c.required_skills.iter().map(|r| (intern(&mut self.index.skill_ids, &r.skill), r.min_proficiency));
        let entry = Entry { at_head: c.at_head, priority: c.priority, channel: c.channel, needs: needs.collect() };
        let filed = Filed { queue: c.queue, slot: (c.waiting_since, id), bucket: bucket_of(c), timers };
        for at in &filed.timers {
            self.index.timers.insert((*at, CONVERSATION_TIMER, id.0));
        }
        self.index.waiting.entry(filed.queue).or_insert_with(|| vec![BTreeMap::new(); BUCKETS])[filed.bucket]
            .insert(filed.slot, entry);
        self.index.filed.insert(id, filed);
        self.index.dirty_conversations.insert(id);
    }

    /// Refiles an agent after their status, load, capacity, queues, skills or wrap-up changed,
    /// and marks them for the next dispatch.
    fn refile_agent(&mut self, id: UserId) {
        let old = self.index.agents_filed.remove(&id).unwrap_or_default();
        for (queue, rank) in old.open_in {
            if let Some(members) = self.index.open_members.get_mut(&queue) {
                members.remove(&rank);
            }
        }
        if let Some(at) = old.wrap_up_timer {
            self.index.timers.remove(&(at, AGENT_TIMER, id.0));
        }
        let Some(a) = self.agents.get(&id) else { return };
        let mut filed = AgentFiled { open_in: Vec::new(), wrap_up_timer: a.wrap_up_until };
        if a.status == AgentStatus::Available && a.load.total < a.capacity.total {
            let strategy = |q: &QueueId| self.queues.get(q).map_or(Strategy::default(), |s| s.policy.strategy);
            filed.open_in = a.queues.iter().map(|q| (*q, Rank::of(a, strategy(q)))).collect();
        }
        let have: Skills = a.skills.iter().map(|(s, p)| (intern(&mut self.index.skill_ids, s), *p)).collect();
        for (queue, rank) in &filed.open_in {
            self.index.open_members.entry(*queue).or_default().insert(*rank, have.clone());
        }
        if let Some(at) = filed.wrap_up_timer {
            self.index.timers.insert((at, AGENT_TIMER, id.0));
        }
        self.index.agents_filed.insert(id, filed);
        self.index.dirty_agents.insert(id);
    }

    /// Refiles every conversation and member of `queue` (its policy changed).
    fn refile_queue(&mut self, queue: QueueId) {
        let ids: Vec<ConversationId> = self.conversations.values().filter(|c| c.queue == queue).map(|c| c.id).collect();
        for id in ids {
            self.refile_conversation(id);
        }
        let members: Vec<UserId> = self.agents.values().filter(|a| a.queues.contains(&queue)).map(|a| a.id).collect();
        for id in members {
            self.refile_agent(id);
        }
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
        self.refile_conversation(conversation);
        self.refile_agent(agent);
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
        self.refile_conversation(conversation);
        self.refile_agent(agent);
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

/// One dirty agent's walk, during one dispatch, through the waiting conversations of the
/// queues they serve in queue order: `current` is the first one they are eligible for with room
/// (their candidate for the dispatch loop), `heads` the next entry of every bucket that their
/// skills and room do not already rule out. Conversations walked past stay out of reach for this
/// agent for the rest of the pass, since their room only shrinks and eligibility cannot change
/// within it.
struct Walker {
    agent: UserId,
    skills: Skills,
    /// (key at `now`, queue, bucket) of each bucket's next entry.
    heads: Vec<(QueueOrderKey, QueueId, usize)>,
    current: Option<QueueOrderKey>,
}

impl Walker {
    /// `None` when the agent can take nothing in this pass at all.
    fn start(sw: &Switch, agent: UserId, now: Millis) -> Option<Walker> {
        let a = sw.agents.get(&agent)?;
        if a.status != AgentStatus::Available || a.in_wrap_up(now) || a.load.total >= a.capacity.total {
            return None;
        }
        let skills = a.skills.iter().filter_map(|(s, p)| Some((*sw.index.skill_ids.get(s)?, *p))).collect();
        let mut walker = Walker { agent, skills, heads: Vec::new(), current: None };
        for queue in &a.queues {
            let Some(state) = sw.queues.get(queue) else { continue };
            if state.policy.strategy == Strategy::Manual {
                continue;
            }
            let Some(buckets) = sw.index.waiting.get(queue) else { continue };
            for (bucket, entries) in buckets.iter().enumerate() {
                if let Some(key) = walker.next_in(a, &state.policy, entries.range(..), now) {
                    walker.heads.push((key, *queue, bucket));
                }
            }
        }
        walker.advance(sw, now);
        walker.current.is_some().then_some(walker)
    }

    /// The key of the first entry in `entries` that the agent's skills and room do not rule out.
    fn next_in<'a>(
        &self,
        a: &Agent,
        policy: &QueuePolicy,
        mut entries: impl Iterator<Item = (&'a Slot, &'a Entry)>,
        now: Millis,
    ) -> Option<QueueOrderKey> {
        entries
            .find(|(slot, e)| {
                (e.needs.is_empty()
                    || skills_fit(&self.skills, &e.needs, skill_stage_after(waited_since(slot.0, now), policy)))
                    && has_room(a, e.channel)
            })
            .map(|(slot, e)| e.key(*slot, policy, now))
    }

    /// Moves `current` to the next conversation in queue order that the agent is eligible for
    /// with room (`None` when there is none left).
    fn advance(&mut self, sw: &Switch, now: Millis) {
        self.current = None;
        let Some(a) = sw.agents.get(&self.agent) else { return };
        if a.load.total >= a.capacity.total {
            self.heads.clear();
            return;
        }
        while let Some(at) = self.heads.iter().enumerate().min_by_key(|(_, h)| h.0).map(|(i, _)| i) {
            let (key, queue, bucket) = self.heads[at];
            let next = sw.queues.get(&queue).zip(sw.index.waiting.get(&queue)).and_then(|(state, buckets)| {
                let after = buckets[bucket].range((Bound::Excluded((key.waiting_since, key.id)), Bound::Unbounded));
                self.next_in(a, &state.policy, after, now)
            });
            match next {
                Some(next) => self.heads[at].0 = next,
                None => {
                    self.heads.swap_remove(at);
                }
            }
            let Some(c) = sw.conversations.get(&key.id) else { continue };
            let Some(policy) = sw.policy(c.queue) else { continue };
            if c.holder == Holder::Waiting && is_eligible(a, c, policy, now) && has_room(a, c.channel) {
                self.current = Some(key);
                return;
            }
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

//! The seam between "a conversation is waiting / an agent has room" and "who gets what", and
//! its implementation on database snapshots with the routing rules of `core::routing`.
//!
//! Each team is a queue with a `QueuePolicy` (`teams.routing_policy`, defaults otherwise);
//! conversations of no team share the tenant's default queue. What is live today:
//! - the queue's strategy ranks the agents who have room: least-loaded (load ÷ capacity, ties
//!   to the agent idle longest), longest-idle, round-robin (cursor per team, kept by this node),
//!   or manual (never auto-assigned; agents claim);
//! - the queue order when capacity frees: priority that ages with waiting time
//!   (`priority_aging_ms`, `max_priority_boost`), then the oldest first — so a low-priority chat
//!   cannot starve.
//!
//! - offers: a queue with `auto_accept: false` offers each conversation to one agent at a time
//!   (`Store::try_offer`, which holds the agent's slot); the agent accepts or rejects over the
//!   socket or REST, and an offer nobody answers lapses after `offer_timeout_ms` — on this node
//!   by a timer, on any node by the sweep. A rejected or lapsed conversation keeps its place
//!   and goes to the next agent; agents who declined it are passed over while anyone else is
//!   eligible.
//!
//! Skills, sticky, overflow and wrap-up exist in the routing model (`core::routing::Switch`,
//! property-tested) and are the router issue's remaining wiring.
//!
//! Correctness does not depend on this module: every assignment goes through
//! `Store::try_assign`, a conditional update of both the conversation (must still be queued) and
//! the agent (must be available and below capacity) in one transaction. Two nodes racing for the
//! same conversation or the same agent's last slot cannot both win; the loser sees `None` and
//! moves on. A periodic sweep catches conversations left queued by a crash or a lost event.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use switchboard_core::domain::{AgentStatus, ChannelKind, Conversation, ConversationFilter, ConversationState, Team, User};
use switchboard_core::ids::{ConversationId, TeamId, TenantId, UserId};
use switchboard_core::routing::{
    self, Agent, Capacity, Load, QueueId, QueuePolicy, RoutedConversation, SkillId, SkillRequirement, Strategy,
};
use switchboard_core::time::Millis;

use crate::conversations::{publish_agent, publish_conversation};
use crate::state::AppState;
use crate::time::now_ms;

#[async_trait]
pub trait Dispatcher: Send + Sync + 'static {
    /// A conversation entered the queue: try to place it now. Returns the conversation as
    /// assigned, or `None` if it stays queued.
    async fn conversation_waiting(&self, state: &AppState, conversation: &Conversation) -> Option<Conversation>;
    /// An agent may have room (resolved a conversation, became available): give them work.
    async fn capacity_freed(&self, state: &AppState, tenant: TenantId, agent: UserId);
    /// Safety net: try every queued conversation of every tenant.
    async fn sweep(&self, state: &AppState);
}

/// Routes by each team's `QueuePolicy` on snapshots read from the database.
#[derive(Default)]
pub struct PolicyDispatcher {
    /// Round-robin position per team queue: the agent served last. Per node; after a restart
    /// rotation simply starts over, which only shifts who is next.
    cursors: Mutex<HashMap<Option<TeamId>, UserId>>,
    /// Placements this node has in flight. Concurrent decisions read the same snapshot, so
    /// without this they all pick the same best agent (or the same oldest conversation) and
    /// queue on that one row lock, one commit after another. An agent or conversation with a
    /// placement in flight is tried last, never skipped: the database still decides.
    in_flight: Mutex<InFlight>,
}

#[derive(Default)]
struct InFlight {
    agents: HashMap<UserId, u32>,
    conversations: HashSet<ConversationId>,
}

/// One placement attempt registered in [`InFlight`] for as long as it lives.
struct Placing<'a> {
    registry: &'a Mutex<InFlight>,
    agent: UserId,
    conversation: ConversationId,
}

impl<'a> Placing<'a> {
    fn start(registry: &'a Mutex<InFlight>, agent: UserId, conversation: ConversationId) -> Self {
        if let Ok(mut r) = registry.lock() {
            *r.agents.entry(agent).or_default() += 1;
            r.conversations.insert(conversation);
        }
        Placing { registry, agent, conversation }
    }
}

impl Drop for Placing<'_> {
    fn drop(&mut self) {
        if let Ok(mut r) = self.registry.lock() {
            if let Some(n) = r.agents.get_mut(&self.agent) {
                *n -= 1;
                if *n == 0 {
                    r.agents.remove(&self.agent);
                }
            }
            r.conversations.remove(&self.conversation);
        }
    }
}

/// How many queued conversations one `capacity_freed` call looks at.
const BATCH: i64 = 50;

/// The queue id the routing model uses for a team (0: the tenant's no-team queue).
fn queue_id(team: Option<TeamId>) -> QueueId {
    QueueId(team.map_or(0, |t| t.0))
}

/// A team's policy: its stored JSON if it parses, else the defaults (a bad stored policy is
/// refused at save time; this is the belt to that brace).
pub fn team_policy(team: Option<&Team>) -> QueuePolicy {
    team.and_then(|t| t.routing_policy.clone())
        .and_then(|p| serde_json::from_value::<QueuePolicy>(p).ok())
        .unwrap_or_default()
}

fn routed(c: &Conversation) -> RoutedConversation {
    let mut routed = RoutedConversation::waiting(
        c.id,
        queue_id(c.team_id),
        // Per-kind caps are not stored yet, so the kind does not change any decision.
        ChannelKind::Web,
        u8::try_from(c.priority.clamp(1, 5)).unwrap_or(3),
        c.queued_at.unwrap_or(c.created_at),
    );
    // Stored as `[{"skill", "min_proficiency"}]` by the auto-responder, the decision hook or the
    // API; an entry that does not parse is ignored rather than blocking the conversation.
    routed.required_skills = c
        .required_skills
        .as_array()
        .map(|all| all.iter().filter_map(|s| serde_json::from_value::<SkillRequirement>(s.clone()).ok()).collect())
        .unwrap_or_default();
    routed.declined_by = c.declined_by.iter().copied().collect();
    routed
}

fn agent_model(u: &User, queue: QueueId) -> Agent {
    let mut load = Load::default();
    for _ in 0..u.active_load.max(0) {
        load.add(ChannelKind::Web);
    }
    Agent {
        id: u.id,
        status: u.status,
        wrap_up_until: u.wrap_up_until,
        idle_since: u.last_assigned_at.unwrap_or(u.created_at),
        queues: BTreeSet::from([queue]),
        skills: u.skills.iter().map(|(name, level)| (SkillId::new(name), *level)).collect(),
        capacity: Capacity::total(u32::try_from(u.capacity.max(0)).unwrap_or(u32::MAX)),
        load,
    }
}

impl PolicyDispatcher {
    async fn policies(&self, state: &AppState, tenant: TenantId) -> HashMap<Option<TeamId>, QueuePolicy> {
        let teams = state.store.list_teams(tenant).await.unwrap_or_default();
        let mut map: HashMap<Option<TeamId>, QueuePolicy> = teams.iter().map(|t| (Some(t.id), team_policy(Some(t)))).collect();
        map.insert(None, QueuePolicy::default());
        map
    }

    /// Offers or assigns `conversation` to `agent` by the queue's policy. `Ok(None)`: the agent
    /// or the conversation was taken meanwhile.
    async fn place(
        &self,
        state: &AppState,
        conversation: &Conversation,
        agent: UserId,
        policy: &QueuePolicy,
    ) -> Result<Option<Conversation>, switchboard_core::StoreError> {
        let _placing = Placing::start(&self.in_flight, agent, conversation.id);
        let tenant = conversation.tenant_id;
        let now = now_ms();
        if policy.auto_accept {
            return state.store.try_assign(tenant, conversation.id, agent, now).await;
        }
        let expires_at = now + policy.offer_timeout_ms;
        let offered = state.store.try_offer(tenant, conversation.id, agent, now, expires_at).await?;
        if offered.is_some() {
            metrics::counter!("switchboard_offers_total").increment(1);
            // This node's timer; the sweep covers a node that dies before it fires.
            let (state, id) = (state.clone(), conversation.id);
            let wait = std::time::Duration::from_millis(u64::try_from(policy.offer_timeout_ms).unwrap_or(0));
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => expire_offer(&state, tenant, id, agent).await,
                    _ = state.shutdown.cancelled() => {}
                }
            });
        }
        Ok(offered)
    }

    /// Moves a conversation that waited `overflow_after_ms` in its queue to `overflow_to`,
    /// unless that queue is full. Runs from the sweep, so it happens within a sweep interval of
    /// the deadline.
    async fn overflow_if_due(
        &self,
        state: &AppState,
        conversation: Conversation,
        policies: &HashMap<Option<TeamId>, QueuePolicy>,
    ) -> Conversation {
        let default = QueuePolicy::default();
        let policy = policies.get(&conversation.team_id).unwrap_or(&default);
        let (Some(after), Some(to)) = (policy.overflow_after_ms, policy.overflow_to) else { return conversation };
        let entered = conversation.queue_entered_at.or(conversation.queued_at).unwrap_or(conversation.created_at);
        let to = TeamId(to.0);
        if now_ms() - entered < after || Some(to) == conversation.team_id || !policies.contains_key(&Some(to)) {
            return conversation;
        }
        let target = policies.get(&Some(to)).unwrap_or(&default);
        if let Some(max) = target.max_queue_len {
            let waiting = state.store.count_waiting(conversation.tenant_id, Some(to)).await.unwrap_or(i64::MAX);
            if waiting >= i64::try_from(max).unwrap_or(i64::MAX) {
                return conversation;
            }
        }
        match state.store.overflow(conversation.tenant_id, conversation.id, conversation.team_id, to, now_ms()).await {
            Ok(Some(moved)) => {
                metrics::counter!("switchboard_overflows_total").increment(1);
                publish_conversation(state, &moved, None).await;
                crate::queue::announce(state, moved.tenant_id).await;
                moved
            }
            _ => conversation,
        }
    }

    /// The queues' `reassign_without_reply_ms`: assigned conversations nobody answered go back
    /// to the queue in their place, for someone else.
    async fn take_back_unanswered(&self, state: &AppState) {
        let Ok(tenants) = state.store.tenants_with_unanswered().await else { return };
        for tenant in tenants {
            let policies = self.policies(state, tenant).await;
            if policies.values().all(|p| p.reassign_without_reply_ms.is_none()) {
                continue;
            }
            let filter = ConversationFilter { state: Some(ConversationState::Assigned), limit: 1000, ..Default::default() };
            let Ok(assigned) = state.store.list_conversations(tenant, filter).await else { continue };
            let now = now_ms();
            for c in assigned {
                let Some(limit) = policies.get(&c.team_id).and_then(|p| p.reassign_without_reply_ms) else { continue };
                let (Some(agent), None, Some(at)) = (c.assignee_id, c.first_agent_reply_at, c.assigned_at) else { continue };
                if now - at < limit {
                    continue;
                }
                if let Ok(queued) = state.store.requeue_unanswered(tenant, c.id, agent, now).await {
                    tracing::info!(conversation_id = %c.id, agent = %agent, "no first reply in time; back to the queue");
                    crate::conversations::offer_returned(state, &queued, agent).await;
                }
            }
        }
    }

    async fn assigned(&self, state: &AppState, conversation: Conversation, team: Option<TeamId>) -> Conversation {
        if let (Some(agent), Ok(mut cursors)) = (conversation.assignee_id, self.cursors.lock()) {
            cursors.insert(team, agent);
        }
        metrics::counter!("switchboard_assignments_total").increment(1);
        publish_conversation(state, &conversation, None).await;
        if let Some(agent) = conversation.assignee_id {
            publish_agent(state, conversation.tenant_id, agent).await;
        }
        conversation
    }
}

#[async_trait]
impl Dispatcher for PolicyDispatcher {
    async fn conversation_waiting(&self, state: &AppState, conversation: &Conversation) -> Option<Conversation> {
        let tenant = conversation.tenant_id;
        let policy = match conversation.team_id {
            Some(team) => team_policy(state.store.list_teams(tenant).await.ok()?.iter().find(|t| t.id == team)),
            None => QueuePolicy::default(),
        };
        if policy.strategy == Strategy::Manual {
            return None;
        }
        let candidates = match state.store.candidate_agents(tenant, conversation.team_id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "dispatch: listing agents failed; sweep will retry");
                return None;
            }
        };
        let queue = queue_id(conversation.team_id);
        // Agents who declined it go last: first everyone else, and only if nobody else has
        // room, a decliner again (a conversation never waits while an eligible agent has room).
        let agents: Vec<Agent> = candidates.iter().map(|u| agent_model(u, queue)).collect();
        let now = now_ms();
        let routed_conversation = routed(conversation);
        // Required skills, relaxed by the queue's fallback settings as the wait grows (the sweep
        // re-examines waiting conversations, so a relaxation takes effect within seconds).
        let stage = routing::decide::skill_stage(&routed_conversation, &policy, now);
        let (fresh, declined): (Vec<&Agent>, Vec<&Agent>) = agents
            .iter()
            .filter(|a| routing::has_room(a, ChannelKind::Web))
            .filter(|a| !a.in_wrap_up(now))
            .filter(|a| routing::decide::meets_skills(a, &routed_conversation, stage))
            .partition(|a| !conversation.declined_by.contains(&a.id));
        let cursor = self.cursors.lock().ok().and_then(|c| c.get(&conversation.team_id).copied());
        let mut order = routing::rank_agents(policy.strategy, &fresh, &routed_conversation, &policy, cursor, now);
        order.extend(routing::rank_agents(policy.strategy, &declined, &routed_conversation, &policy, cursor, now));
        if let Ok(in_flight) = self.in_flight.lock() {
            // Stable: the policy's order among the idle ones and among the busy ones.
            order.sort_by_key(|a| in_flight.agents.contains_key(a));
        }
        // Sticky: within the window the customer's previous agent is the only choice — if they
        // have room now, them; if they are merely busy or away, the conversation waits for them.
        // Offline (or having turned it down) releases the reservation.
        if let Some(reserved) = sticky_for(conversation, &policy, now) {
            if order.contains(&reserved) {
                order = vec![reserved];
            } else {
                match state.store.get_user(tenant, reserved).await {
                    Ok(u) if u.status != AgentStatus::Offline => return None,
                    _ => {}
                }
            }
        }
        for agent in order {
            match self.place(state, conversation, agent, &policy).await {
                Ok(Some(assigned)) => return Some(self.assigned(state, assigned, conversation.team_id).await),
                // The agent filled up, or the conversation was taken meanwhile (by another node,
                // or by an agent whose slot freed): in the second case there is nothing left to
                // place, and trying the rest of the agents would only lock their rows for nothing.
                Ok(None) => match state.store.get_conversation(tenant, conversation.id).await {
                    Ok(now) if now.state == ConversationState::Queued => continue,
                    _ => return None,
                },
                Err(e) => {
                    tracing::warn!(error = %e, "dispatch: assignment failed; sweep will retry");
                    return None;
                }
            }
        }
        None
    }

    async fn capacity_freed(&self, state: &AppState, tenant: TenantId, agent: UserId) {
        let queued = match state.store.queued_for_agent(tenant, agent, BATCH).await {
            Ok(q) => q,
            Err(e) => return tracing::warn!(error = %e, "dispatch: listing queue failed; sweep will retry"),
        };
        let policies = self.policies(state, tenant).await;
        let now = now_ms();
        let Ok(me) = state.store.get_user(tenant, agent).await else { return };
        if me.wrap_up_until.is_some_and(|until| until > now) {
            // Wrap-up: the timer started by the resolve calls again when it ends.
            return;
        }
        let mut ordered = order_queue(queued, &policies, now);
        ordered.retain(|c| policies.get(&c.team_id).is_none_or(|p| p.strategy != Strategy::Manual));
        // What this agent declined is left for others (the sweep offers it back to them if
        // nobody else can take it).
        ordered.retain(|c| !c.declined_by.contains(&agent));
        let default = QueuePolicy::default();
        // Reserved for someone else's sticky window: the sweep offers it around afterwards.
        ordered.retain(|c| sticky_for(c, policies.get(&c.team_id).unwrap_or(&default), now).is_none_or(|r| r == agent));
        // Only what this agent's skills qualify them for (at each conversation's current stage).
        ordered.retain(|c| {
            let policy = policies.get(&c.team_id).unwrap_or(&default);
            let routed_conversation = routed(c);
            let model = agent_model(&me, queue_id(c.team_id));
            routing::decide::meets_skills(&model, &routed_conversation, routing::decide::skill_stage(&routed_conversation, policy, now))
        });
        if let Ok(in_flight) = self.in_flight.lock() {
            // Conversations another decision of this node is placing right now go last.
            ordered.sort_by_key(|c| in_flight.conversations.contains(&c.id));
        }
        for conversation in ordered {
            let policy = policies.get(&conversation.team_id).unwrap_or(&default);
            match self.place(state, &conversation, agent, policy).await {
                Ok(Some(assigned)) => {
                    self.assigned(state, assigned, conversation.team_id).await;
                }
                Ok(None) => {
                    // Either someone else took this conversation, or the agent is now full or
                    // away. Re-read the agent to know which; stop if they have no room.
                    match state.store.get_user(tenant, agent).await {
                        Ok(u) if u.active_load < u.capacity && u.status == AgentStatus::Available => continue,
                        _ => return,
                    }
                }
                Err(e) => return tracing::warn!(error = %e, "dispatch: assignment failed; sweep will retry"),
            }
        }
    }

    async fn sweep(&self, state: &AppState) {
        // Offers whose node died before its timer fired.
        if let Ok(lapsed) = state.store.expired_offers(now_ms(), 500).await {
            for c in lapsed {
                if let Some(agent) = c.assignee_id {
                    expire_offer(state, c.tenant_id, c.id, agent).await;
                }
            }
        }
        self.take_back_unanswered(state).await;
        let tenants = match state.store.tenants_with_queued().await {
            Ok(t) => t,
            Err(e) => return tracing::debug!(error = %e, "dispatch sweep: store unavailable"),
        };
        for tenant in tenants {
            let filter = ConversationFilter { state: Some(ConversationState::Queued), limit: 500, ..Default::default() };
            let Ok(queued) = state.store.list_conversations(tenant, filter).await else { continue };
            let policies = self.policies(state, tenant).await;
            for conversation in order_queue(queued, &policies, now_ms()) {
                let conversation = self.overflow_if_due(state, conversation, &policies).await;
                self.conversation_waiting(state, &conversation).await;
            }
        }
    }
}

/// The sentence a customer refused by a full queue gets when the queue sets none.
pub const QUEUE_FULL_TEXT: &str = "Sorry, all our agents are busy and the queue is full right now. Please try again later.";

/// `max_queue_len`: a conversation that could not be placed at once, in a queue already holding
/// more than that many waiting, is told so and closed instead of waiting forever. Only for
/// arrivals (new conversations and bot handoffs), never for conversations put back in the queue.
/// Returns the closed conversation if it was refused.
pub async fn refuse_if_queue_full(state: &AppState, conversation: &Conversation) -> Option<Conversation> {
    let tenant = conversation.tenant_id;
    let policy = match conversation.team_id {
        Some(team) => team_policy(state.store.list_teams(tenant).await.ok()?.iter().find(|t| t.id == team)),
        None => QueuePolicy::default(),
    };
    let max = i64::try_from(policy.max_queue_len?).unwrap_or(i64::MAX);
    // Placed meanwhile (another node, the sweep): not an arrival waiting any more.
    if state.store.get_conversation(tenant, conversation.id).await.ok()?.state != ConversationState::Queued {
        return None;
    }
    let waiting = state.store.count_waiting(tenant, conversation.team_id).await.ok()?;
    if waiting <= max {
        return None;
    }
    let inbox = state.store.get_inbox(tenant, conversation.inbox_id).await.ok()?;
    let text = policy.queue_full_text.clone().unwrap_or_else(|| QUEUE_FULL_TEXT.to_string());
    if let Err(e) =
        crate::conversations::send_system_message(state, conversation, &inbox, text, format!("queue-full-{}", conversation.id)).await
    {
        tracing::warn!(error = %e, "queue-full message not stored");
    }
    let closed = state.store.resolve(tenant, conversation.id, None, switchboard_core::domain::CloseReason::Other, now_ms()).await.ok()?;
    metrics::counter!("switchboard_queue_full_refusals_total").increment(1);
    tracing::info!(conversation_id = %conversation.id, waiting, max, "queue full: arrival refused");
    publish_conversation(state, &closed, None).await;
    Some(closed)
}

/// The agent a conversation is reserved for right now by the queue's `sticky_ms`: its preferred
/// (previous) agent, within the window, unless that agent already turned it down.
fn sticky_for(conversation: &Conversation, policy: &QueuePolicy, now: Millis) -> Option<UserId> {
    let agent = conversation.preferred_agent_id?;
    let since = conversation.queued_at.unwrap_or(conversation.created_at);
    (policy.sticky_ms > 0 && now - since < policy.sticky_ms && !conversation.declined_by.contains(&agent)).then_some(agent)
}

/// Lets an unanswered offer lapse: back to the queue in its place, then to the next agent.
/// Harmless when the agent accepted or rejected meanwhile (the store refuses, nothing changes).
pub async fn expire_offer(state: &AppState, tenant: TenantId, conversation: switchboard_core::ids::ConversationId, agent: UserId) {
    match state.store.decline_offer(tenant, conversation, agent, "expired", now_ms()).await {
        Ok(queued) => {
            metrics::counter!("switchboard_offers_expired_total").increment(1);
            crate::conversations::offer_returned(state, &queued, agent).await;
        }
        Err(switchboard_core::StoreError::InvalidState(_) | switchboard_core::StoreError::NotFound) => {}
        Err(e) => tracing::warn!(error = %e, conversation_id = %conversation, "expiring an offer failed; the sweep retries"),
    }
}

/// Orders waiting conversations the way their queues serve them: effective (aged) priority
/// first, then the longest wait, then the lower id.
fn order_queue(mut queued: Vec<Conversation>, policies: &HashMap<Option<TeamId>, QueuePolicy>, now: Millis) -> Vec<Conversation> {
    let default = QueuePolicy::default();
    queued.sort_by_cached_key(|c| routing::queue_order_key(&routed(c), policies.get(&c.team_id).unwrap_or(&default), now));
    queued
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::ids::{ContactId, ConversationId, InboxId};

    fn conv(id: i64, priority: i64, queued_at: Millis) -> Conversation {
        Conversation {
            id: ConversationId(id),
            tenant_id: TenantId(1),
            inbox_id: InboxId(1),
            contact_id: ContactId(id),
            state: ConversationState::Queued,
            priority,
            team_id: None,
            assignee_id: None,
            created_at: queued_at,
            queued_at: Some(queued_at),
            assigned_at: None,
            first_agent_reply_at: None,
            closed_at: None,
            close_reason: None,
            biz_data: serde_json::Value::Null,
            attributes: serde_json::json!({}),
            tags: Vec::new(),
            required_skills: serde_json::json!([]),
            preferred_agent_id: None,
            offer_expires_at: None,
            declined_by: Vec::new(),
            queue_entered_at: Some(queued_at),
            updated_at: queued_at,
        }
    }

    #[test]
    fn queue_order_ages_priority_so_old_low_priority_chats_are_not_starved() {
        let policies = HashMap::from([(None, QueuePolicy::default())]);
        let now = 10 * 60_000;
        // A priority-1 chat waiting ten minutes (aged to 5) goes before a fresh priority-5 one;
        // a priority-1 chat that just arrived goes last.
        let order = order_queue(vec![conv(1, 5, now - 1_000), conv(2, 1, 0), conv(3, 1, now)], &policies, now);
        assert_eq!(order.iter().map(|c| c.id.0).collect::<Vec<_>>(), [2, 1, 3]);
        // With aging off, priority decides.
        let off = HashMap::from([(None, QueuePolicy { priority_aging_ms: 0, ..QueuePolicy::default() })]);
        let order = order_queue(vec![conv(1, 5, now - 1_000), conv(2, 1, 0)], &off, now);
        assert_eq!(order.iter().map(|c| c.id.0).collect::<Vec<_>>(), [1, 2]);
    }
}

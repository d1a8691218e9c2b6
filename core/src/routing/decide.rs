//! The routing rules as pure functions of (agent, conversation, policy, now): effective
//! priority, queue order, eligibility, room, and how each strategy ranks candidate agents.
//!
//! Nothing here mutates or remembers anything; the round-robin cursor is passed in and the new
//! one is handed back. The [`super::Switch`] uses these functions for every decision, and the
//! server may call them directly on database snapshots, so the two can never disagree.

use super::model::{Agent, RoutedConversation};
use super::policy::{QueuePolicy, Strategy, MAX_PRIORITY, MIN_PROFICIENCY};
use crate::domain::{AgentStatus, ChannelKind};
use crate::ids::{ConversationId, UserId};
use crate::time::Millis;
use std::cmp::{Ordering, Reverse};

/// How long the conversation has waited at `now` (never negative, even if a caller's clock
/// steps back).
pub fn waited(conversation: &RoutedConversation, now: Millis) -> Millis {
    waited_since(conversation.waiting_since, now)
}

/// [`waited`] from the time the wait started.
pub(crate) fn waited_since(waiting_since: Millis, now: Millis) -> Millis {
    now.saturating_sub(waiting_since).max(0)
}

/// `priority + waited / priority_aging_ms`, the boost capped at `max_priority_boost` and the
/// result capped at [`MAX_PRIORITY`] (but never below the arrival priority).
pub fn effective_priority(conversation: &RoutedConversation, policy: &QueuePolicy, now: Millis) -> i64 {
    effective_priority_of(conversation.priority, waited(conversation, now), policy)
}

/// [`effective_priority`] from the arrival priority and how long the conversation has waited.
pub(crate) fn effective_priority_of(priority: u8, waited: Millis, policy: &QueuePolicy) -> i64 {
    let base = i64::from(priority);
    if policy.priority_aging_ms <= 0 {
        return base;
    }
    let boost = (waited / policy.priority_aging_ms).min(policy.max_priority_boost.max(0));
    (base + boost).min(i64::from(MAX_PRIORITY).max(base))
}

/// A conversation's place in queue order: smaller sorts first. Head-of-queue requeues first,
/// then higher effective priority, then earlier `waiting_since`, then lower id (so the order is
/// total and deterministic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct QueueOrderKey {
    pub not_at_head: bool,
    pub priority: Reverse<i64>,
    pub waiting_since: Millis,
    pub id: ConversationId,
}

pub fn queue_order_key(conversation: &RoutedConversation, policy: &QueuePolicy, now: Millis) -> QueueOrderKey {
    QueueOrderKey {
        not_at_head: !conversation.at_head,
        priority: Reverse(effective_priority(conversation, policy, now)),
        waiting_since: conversation.waiting_since,
        id: conversation.id,
    }
}

/// How strict the skill requirements are after waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SkillStage {
    /// Every required skill at its minimum proficiency.
    Strict,
    /// Every required skill, at any proficiency (`skill_fallback_after_ms` passed).
    AnyProficiency,
    /// No skill requirements (`skills_ignored_after_ms` passed).
    Ignored,
}

pub fn skill_stage(conversation: &RoutedConversation, policy: &QueuePolicy, now: Millis) -> SkillStage {
    skill_stage_after(waited(conversation, now), policy)
}

/// [`skill_stage`] from how long the conversation has waited.
pub(crate) fn skill_stage_after(w: Millis, policy: &QueuePolicy) -> SkillStage {
    if policy.skills_ignored_after_ms.is_some_and(|after| w >= after) {
        SkillStage::Ignored
    } else if policy.skill_fallback_after_ms.is_some_and(|after| w >= after) {
        SkillStage::AnyProficiency
    } else {
        SkillStage::Strict
    }
}

/// True when the agent's skills satisfy the conversation's requirements at `stage`.
pub fn meets_skills(agent: &Agent, conversation: &RoutedConversation, stage: SkillStage) -> bool {
    conversation.required_skills.iter().all(|req| {
        let needed = match stage {
            SkillStage::Strict => req.min_proficiency,
            SkillStage::AnyProficiency => MIN_PROFICIENCY,
            SkillStage::Ignored => return true,
        };
        agent.skills.get(&req.skill).is_some_and(|have| *have >= needed)
    })
}

/// The agent this conversation is reserved for at `now`, if its sticky window is open.
pub fn sticky_reservation(conversation: &RoutedConversation, policy: &QueuePolicy, now: Millis) -> Option<UserId> {
    let agent = conversation.sticky_agent?;
    (policy.sticky_ms > 0 && waited(conversation, now) < policy.sticky_ms).then_some(agent)
}

/// May `agent` be offered `conversation` at `now` (room aside, see [`has_room`])? The agent
/// must be available and not in wrap-up, serve the conversation's queue, have the skills the
/// current [`SkillStage`] asks for, and not be shut out by another agent's sticky reservation.
///
/// The queue's strategy is not considered: manual queues are filtered out by the caller, since
/// an agent who *could* take a manual-queue conversation is exactly who may claim it.
pub fn is_eligible(agent: &Agent, conversation: &RoutedConversation, policy: &QueuePolicy, now: Millis) -> bool {
    agent.status == AgentStatus::Available
        && !agent.in_wrap_up(now)
        && agent.queues.contains(&conversation.queue)
        && meets_skills(agent, conversation, skill_stage(conversation, policy, now))
        && sticky_reservation(conversation, policy, now).is_none_or(|reserved| reserved == agent.id)
}

/// True when one more conversation of `kind` fits the agent's capacity, both for that kind and
/// in total.
pub fn has_room(agent: &Agent, kind: ChannelKind) -> bool {
    agent.load.total < agent.capacity.total && agent.load.of_kind(kind) < agent.capacity.cap_for(kind)
}

/// `a.load / a.capacity` compared with `b`'s, by cross-multiplying (no floats). An agent with
/// zero capacity counts as full.
fn compare_load_ratio(a: &Agent, b: &Agent) -> Ordering {
    compare_ratio((a.load.total, a.capacity.total), (b.load.total, b.capacity.total))
}

/// [`compare_load_ratio`] on `(load, capacity)` totals.
pub(crate) fn compare_ratio(a: (u32, u32), b: (u32, u32)) -> Ordering {
    let ratio_parts = |(load, cap): (u32, u32)| {
        if cap == 0 {
            (1u64, 0u64, true)
        } else {
            (u64::from(load), u64::from(cap), false)
        }
    };
    let (a_load, a_cap, a_full) = ratio_parts(a);
    let (b_load, b_cap, b_full) = ratio_parts(b);
    match (a_full, b_full) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => (a_load * b_cap).cmp(&(b_load * a_cap)),
    }
}

/// Orders agent ids for round robin: ascending, starting with the first id after `cursor`
/// (the agent this queue served last) and wrapping around.
pub fn round_robin_order(mut ids: Vec<UserId>, cursor: Option<UserId>) -> Vec<UserId> {
    ids.sort();
    ids.dedup();
    if let Some(last) = cursor {
        let split = ids.partition_point(|id| *id <= last);
        ids.rotate_left(split);
    }
    ids
}

/// Ranks the candidates (already known eligible with room) best first, by the queue's strategy.
///
/// Two adjustments apply to every strategy: the conversation's sticky agent, while its window
/// is open, comes first; and agents who already declined this conversation come last (they
/// stay candidates so a lone agent cannot strand it). Manual queues rank nobody.
pub fn rank_agents(
    strategy: Strategy,
    candidates: &[&Agent],
    conversation: &RoutedConversation,
    policy: &QueuePolicy,
    round_robin_cursor: Option<UserId>,
    now: Millis,
) -> Vec<UserId> {
    let ranked: Vec<UserId> = match strategy {
        Strategy::Manual => return Vec::new(),
        Strategy::LeastLoaded => {
            let mut sorted = candidates.to_vec();
            sorted.sort_by(|a, b| compare_load_ratio(a, b).then(a.idle_since.cmp(&b.idle_since)).then(a.id.cmp(&b.id)));
            sorted.into_iter().map(|a| a.id).collect()
        }
        Strategy::LongestIdle => {
            let mut sorted = candidates.to_vec();
            sorted.sort_by_key(|a| (a.idle_since, a.id));
            sorted.into_iter().map(|a| a.id).collect()
        }
        Strategy::RoundRobin => round_robin_order(candidates.iter().map(|a| a.id).collect(), round_robin_cursor),
    };
    let sticky = sticky_reservation(conversation, policy, now);
    // A stable sort on (not sticky, declined) keeps the strategy's order within each group.
    let mut ranked = ranked;
    ranked.sort_by_key(|id| (Some(*id) != sticky, conversation.declined_by.contains(id)));
    ranked
}

/// The agent [`rank_agents`] would put first, found in one pass (a minimum by the same
/// ordering) instead of sorting every candidate: the conversation's sticky agent while its window
/// is open, then agents who have not declined it, then the strategy's order — least-loaded by
/// `load ÷ capacity` compared exactly by cross-multiplication (zero capacity counts as full),
/// ties to the longest idle, then the lower id; longest-idle by `idle_since`, then id; round
/// robin by id starting after the cursor. Manual queues (and no candidates) give `None`.
///
/// Use it wherever only the first agent is needed; the server, which tries agents in turn until
/// one can still be claimed, keeps using [`rank_agents`].
pub fn best_agent(
    strategy: Strategy,
    candidates: &[&Agent],
    conversation: &RoutedConversation,
    policy: &QueuePolicy,
    round_robin_cursor: Option<UserId>,
    now: Millis,
) -> Option<UserId> {
    let sticky = sticky_reservation(conversation, policy, now);
    // The stable re-sort at the end of `rank_agents`: sticky first, decliners last.
    let group = |a: &Agent| (Some(a.id) != sticky, conversation.declined_by.contains(&a.id));
    let best = match strategy {
        Strategy::Manual => return None,
        Strategy::LeastLoaded => candidates.iter().min_by(|a, b| {
            group(a)
                .cmp(&group(b))
                .then_with(|| compare_load_ratio(a, b))
                .then(a.idle_since.cmp(&b.idle_since))
                .then(a.id.cmp(&b.id))
        }),
        Strategy::LongestIdle => candidates.iter().min_by_key(|a| (group(a), a.idle_since, a.id)),
        // `round_robin_order`: ids after the cursor ascending, then the rest ascending.
        Strategy::RoundRobin => {
            candidates.iter().min_by_key(|a| (group(a), round_robin_cursor.is_some_and(|last| a.id <= last), a.id))
        }
    };
    best.map(|a| a.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::model::Load;
    use crate::routing::policy::{Capacity, QueueId, SkillId, SkillRequirement};
    use std::collections::{BTreeMap, BTreeSet};

    const Q: QueueId = QueueId(1);

    fn agent(id: i64, load: u32, cap: u32, idle_since: Millis) -> Agent {
        let mut l = Load::default();
        for _ in 0..load {
            l.add(ChannelKind::Web);
        }
        Agent {
            id: UserId(id),
            status: AgentStatus::Available,
            wrap_up_until: None,
            idle_since,
            queues: BTreeSet::from([Q]),
            skills: BTreeMap::new(),
            capacity: Capacity::total(cap),
            load: l,
        }
    }

    fn conversation(id: i64, priority: u8, waiting_since: Millis) -> RoutedConversation {
        RoutedConversation::waiting(ConversationId(id), Q, ChannelKind::Web, priority, waiting_since)
    }

    #[test]
    fn aging_adds_one_per_step_up_to_the_caps() {
        let policy = QueuePolicy { priority_aging_ms: 1000, max_priority_boost: 2, ..Default::default() };
        let c = conversation(1, 1, 0);
        assert_eq!(effective_priority(&c, &policy, 999), 1);
        assert_eq!(effective_priority(&c, &policy, 1000), 2);
        assert_eq!(effective_priority(&c, &policy, 60_000), 3, "boost capped at max_priority_boost");
        let urgent = conversation(2, 5, 0);
        assert_eq!(effective_priority(&urgent, &policy, 60_000), 5, "never above the ceiling");
        let off = QueuePolicy { priority_aging_ms: 0, ..Default::default() };
        assert_eq!(effective_priority(&c, &off, 60_000), 1);
    }

    #[test]
    fn queue_order_is_head_then_priority_then_age_then_id() {
        let policy = QueuePolicy { priority_aging_ms: 0, ..Default::default() };
        let old_low = conversation(1, 1, 0);
        let new_high = conversation(2, 5, 10);
        let old_high = conversation(3, 5, 5);
        let mut head = conversation(4, 1, 20);
        head.at_head = true;
        let mut all = [&old_low, &new_high, &old_high, &head];
        all.sort_by_key(|c| queue_order_key(c, &policy, 100));
        let ids: Vec<i64> = all.iter().map(|c| c.id.0).collect();
        assert_eq!(ids, vec![4, 3, 2, 1]);
    }

    #[test]
    fn skills_relax_in_stages() {
        let policy = QueuePolicy {
            skill_fallback_after_ms: Some(1000),
            skills_ignored_after_ms: Some(5000),
            ..Default::default()
        };
        let mut c = conversation(1, 3, 0);
        c.required_skills = vec![SkillRequirement { skill: SkillId::new("billing"), min_proficiency: 4 }];
        let mut novice = agent(1, 0, 1, 0);
        novice.skills.insert(SkillId::new("billing"), 2);
        let unskilled = agent(2, 0, 1, 0);
        assert!(!is_eligible(&novice, &c, &policy, 999));
        assert!(is_eligible(&novice, &c, &policy, 1000));
        assert!(!is_eligible(&unskilled, &c, &policy, 4999));
        assert!(is_eligible(&unskilled, &c, &policy, 5000));
    }

    #[test]
    fn least_loaded_breaks_ties_by_longest_idle() {
        let policy = QueuePolicy::default();
        let c = conversation(1, 3, 0);
        let busy = agent(1, 2, 4, 0); // 1/2
        let fresh_idle = agent(2, 1, 2, 500); // 1/2, idle since 500
        let long_idle = agent(3, 1, 2, 100); // 1/2, idle since 100
        let light = agent(4, 1, 4, 900); // 1/4
        let ranked =
            rank_agents(Strategy::LeastLoaded, &[&busy, &fresh_idle, &long_idle, &light], &c, &policy, None, 0);
        assert_eq!(ranked, vec![UserId(4), UserId(1), UserId(3), UserId(2)]);
    }

    #[test]
    fn round_robin_starts_after_the_cursor_and_wraps() {
        let ids = vec![UserId(3), UserId(1), UserId(2)];
        assert_eq!(round_robin_order(ids.clone(), None), vec![UserId(1), UserId(2), UserId(3)]);
        assert_eq!(round_robin_order(ids.clone(), Some(UserId(2))), vec![UserId(3), UserId(1), UserId(2)]);
        assert_eq!(round_robin_order(ids.clone(), Some(UserId(3))), vec![UserId(1), UserId(2), UserId(3)]);
        // A cursor that is no longer a candidate still rotates from its place.
        assert_eq!(round_robin_order(vec![UserId(1), UserId(3)], Some(UserId(2))), vec![UserId(3), UserId(1)]);
    }

    #[test]
    fn declined_agents_rank_last_and_sticky_first() {
        let policy = QueuePolicy { sticky_ms: 1000, ..Default::default() };
        let mut c = conversation(1, 3, 0);
        let a = agent(1, 0, 2, 0);
        let b = agent(2, 0, 2, 10);
        let s = agent(3, 1, 2, 20);
        c.declined_by.insert(UserId(1));
        assert_eq!(
            rank_agents(Strategy::LongestIdle, &[&a, &b, &s], &c, &policy, None, 0),
            vec![UserId(2), UserId(3), UserId(1)]
        );
        c.sticky_agent = Some(UserId(3));
        assert_eq!(rank_agents(Strategy::LongestIdle, &[&a, &b, &s], &c, &policy, None, 0)[0], UserId(3));
        assert!(!is_eligible(&b, &c, &policy, 999), "reserved for the sticky agent");
        assert!(is_eligible(&b, &c, &policy, 1000), "window over: anyone");
    }

    #[test]
    fn room_counts_both_the_kind_and_the_total() {
        let mut a = agent(1, 0, 3, 0);
        a.capacity = a.capacity.clone().with_kind(ChannelKind::Whatsapp, 1);
        a.load.add(ChannelKind::Whatsapp);
        assert!(!has_room(&a, ChannelKind::Whatsapp));
        assert!(has_room(&a, ChannelKind::Web));
        a.load.add(ChannelKind::Web);
        a.load.add(ChannelKind::Web);
        assert!(!has_room(&a, ChannelKind::Web), "total reached");
    }
}

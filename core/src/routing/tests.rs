//! Tests of the [`Switch`] as a whole: one scenario per policy feature, then a property test
//! that drives random event sequences and checks the invariants stated in `switch.rs` after
//! every single event.

use super::decide::{has_room, is_eligible, queue_order_key};
use super::*;
use crate::domain::{AgentStatus, ChannelKind};
use crate::ids::{ConversationId, UserId};
use crate::time::Millis;
use std::collections::{BTreeMap, BTreeSet};

const Q1: QueueId = QueueId(1);
const Q2: QueueId = QueueId(2);

fn c(id: i64) -> ConversationId {
    ConversationId(id)
}

fn a(id: i64) -> UserId {
    UserId(id)
}

/// A switch with the given queues and agents (all available at t = 0), each agent serving the
/// listed queues with only a total capacity.
fn switch(queues: &[(QueueId, QueuePolicy)], agents: &[(i64, &[QueueId], u32)]) -> Switch {
    let mut sw = Switch::new();
    for (id, policy) in queues {
        sw.set_policy(*id, policy.clone(), 0).expect("valid policy");
    }
    for (id, serves, cap) in agents {
        let profile = AgentProfile {
            agent: a(*id),
            queues: serves.iter().copied().collect(),
            skills: BTreeMap::new(),
            capacity: Capacity::total(*cap),
        };
        sw.upsert_agent(profile, 0).expect("valid agent");
        sw.set_status(a(*id), AgentStatus::Available, 0).expect("known agent");
    }
    sw
}

fn arrival(id: i64, queue: QueueId, priority: u8) -> Arrival {
    Arrival {
        conversation: c(id),
        queue,
        channel: ChannelKind::Web,
        priority,
        required_skills: Vec::new(),
        last_agent: None,
    }
}

fn arrive(sw: &mut Switch, id: i64, queue: QueueId, now: Millis) -> Vec<Decision> {
    sw.arrive(arrival(id, queue, 3), now).expect("arrival accepted")
}

/// The (conversation, agent) pairs handed out (offered or assigned) in these decisions.
fn handed_out(decisions: &[Decision]) -> Vec<(i64, i64)> {
    decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Offered { conversation, agent, .. } | Decision::Assigned { conversation, agent, .. } => {
                Some((conversation.0, agent.0))
            }
            _ => None,
        })
        .collect()
}

fn auto() -> QueuePolicy {
    QueuePolicy { auto_accept: true, priority_aging_ms: 0, ..Default::default() }
}

/// A queue that offers (30 s to accept) instead of assigning.
fn offering() -> QueuePolicy {
    QueuePolicy { auto_accept: false, ..Default::default() }
}

// ---- strategies ---------------------------------------------------------------------------

#[test]
fn least_loaded_prefers_lower_ratio_then_longest_idle() {
    let mut sw = switch(&[(Q1, auto())], &[]);
    for (id, cap) in [(1, 4), (2, 2)] {
        let profile = AgentProfile {
            agent: a(id),
            queues: BTreeSet::from([Q1]),
            skills: BTreeMap::new(),
            capacity: Capacity::total(cap),
        };
        sw.upsert_agent(profile, 0).expect("agent");
    }
    // Agent 2 became available first, so has been idle longest: the tie at 0/x goes to them.
    sw.set_status(a(2), AgentStatus::Available, 10).expect("status");
    sw.set_status(a(1), AgentStatus::Available, 20).expect("status");
    assert_eq!(handed_out(&arrive(&mut sw, 1, Q1, 30)), vec![(1, 2)]);
    // Now 2 is at 1/2 and 1 at 0/4: 1 is less loaded.
    assert_eq!(handed_out(&arrive(&mut sw, 2, Q1, 40)), vec![(2, 1)]);
    // 1 at 1/4 beats 2 at 1/2.
    assert_eq!(handed_out(&arrive(&mut sw, 3, Q1, 50)), vec![(3, 1)]);
    // 1 at 2/4 ties 2 at 1/2; 2 was handed work longer ago.
    assert_eq!(handed_out(&arrive(&mut sw, 4, Q1, 60)), vec![(4, 2)]);
}

#[test]
fn longest_idle_serves_whoever_waited_longest_for_work() {
    let policy = QueuePolicy { strategy: Strategy::LongestIdle, ..auto() };
    let mut sw = switch(&[(Q1, policy)], &[(1, &[Q1], 5), (2, &[Q1], 5), (3, &[Q1], 5)]);
    let order: Vec<(i64, i64)> = (1..=4).flat_map(|i| handed_out(&arrive(&mut sw, i, Q1, i * 10))).collect();
    assert_eq!(order, vec![(1, 1), (2, 2), (3, 3), (4, 1)]);
}

#[test]
fn round_robin_rotates_through_agents() {
    let policy = QueuePolicy { strategy: Strategy::RoundRobin, ..auto() };
    let mut sw = switch(&[(Q1, policy)], &[(1, &[Q1], 9), (2, &[Q1], 9), (3, &[Q1], 9)]);
    let order: Vec<i64> =
        (1..=5).flat_map(|i| handed_out(&arrive(&mut sw, i, Q1, 0))).map(|(_, agent)| agent).collect();
    assert_eq!(order, vec![1, 2, 3, 1, 2]);
    // An agent who leaves is skipped; the rotation continues after the last one served.
    sw.set_status(a(3), AgentStatus::Away, 0).expect("status");
    let order: Vec<i64> =
        (6..=8).flat_map(|i| handed_out(&arrive(&mut sw, i, Q1, 0))).map(|(_, agent)| agent).collect();
    assert_eq!(order, vec![1, 2, 1]);
}

#[test]
fn manual_queue_is_never_offered_only_claimed() {
    let manual = QueuePolicy { strategy: Strategy::Manual, ..Default::default() };
    let mut sw = switch(&[(Q1, manual), (Q2, QueuePolicy::default())], &[(1, &[Q1], 2), (2, &[Q2], 2)]);
    assert!(handed_out(&arrive(&mut sw, 1, Q1, 0)).is_empty());
    assert!(sw.tick(100_000).is_empty(), "time passing offers nothing either");
    assert_eq!(sw.position(c(1), 100_000), Some(1));
    assert_eq!(sw.claim(c(1), a(2), 0), Err(RoutingError::NotQueueMember { agent: a(2), queue: Q1 }));
    let claimed = sw.claim(c(1), a(1), 100_000).expect("member claims");
    assert_eq!(handed_out(&claimed), vec![(1, 1)]);
    assert_eq!(sw.conversation(c(1)).map(|x| x.holder), Some(Holder::Assigned { agent: a(1) }));
    // Claiming only works in manual queues.
    sw.set_status(a(2), AgentStatus::Away, 0).expect("status");
    arrive(&mut sw, 2, Q2, 0);
    assert_eq!(sw.claim(c(2), a(2), 0), Err(RoutingError::NotManualQueue(Q2)));
}

// ---- skills, priority, stickiness ---------------------------------------------------------

#[test]
fn skills_require_proficiency_until_the_fallback() {
    let policy = QueuePolicy { skill_fallback_after_ms: Some(10_000), ..auto() };
    let mut sw = switch(&[(Q1, policy)], &[]);
    let novice = AgentProfile {
        agent: a(1),
        queues: BTreeSet::from([Q1]),
        skills: BTreeMap::from([(SkillId::new("billing"), 2)]),
        capacity: Capacity::total(3),
    };
    let outsider = AgentProfile { agent: a(2), skills: BTreeMap::new(), ..novice.clone() };
    for p in [novice, outsider] {
        let id = p.agent;
        sw.upsert_agent(p, 0).expect("agent");
        sw.set_status(id, AgentStatus::Available, 0).expect("status");
    }
    let mut billing = arrival(1, Q1, 3);
    billing.required_skills = vec![SkillRequirement { skill: SkillId::new("billing"), min_proficiency: 4 }];
    assert!(handed_out(&sw.arrive(billing, 0).expect("arrive")).is_empty(), "nobody is good enough");
    assert!(handed_out(&sw.tick(9_999)).is_empty());
    // After the fallback anyone *with* the skill qualifies, but not someone without it.
    assert_eq!(handed_out(&sw.tick(10_000)), vec![(1, 1)]);
}

#[test]
fn aging_lets_an_old_low_priority_chat_overtake_fresh_urgent_ones() {
    let policy = QueuePolicy { priority_aging_ms: 1_000, max_priority_boost: 4, ..auto() };
    for (arrive_urgent_at, expected_first) in [(4_000, 1), (3_999, 2)] {
        let mut sw = switch(&[(Q1, policy.clone())], &[]);
        let profile = AgentProfile {
            agent: a(1),
            queues: BTreeSet::from([Q1]),
            skills: BTreeMap::new(),
            capacity: Capacity::total(1),
        };
        sw.upsert_agent(profile, 0).expect("agent");
        sw.arrive(arrival(1, Q1, 1), 0).expect("low priority");
        for id in 2..=6 {
            sw.arrive(arrival(id, Q1, 5), arrive_urgent_at).expect("urgent");
        }
        let first = handed_out(&sw.set_status(a(1), AgentStatus::Available, arrive_urgent_at).expect("status"));
        assert_eq!(first, vec![(expected_first, 1)], "urgent chats arriving at {arrive_urgent_at}");
    }
}

#[test]
fn sticky_reserves_for_the_last_agent_only_within_the_window() {
    let policy = QueuePolicy { sticky_ms: 5_000, ..auto() };
    let mut sw = switch(&[(Q1, policy)], &[(1, &[Q1], 3), (2, &[Q1], 3)]);
    sw.set_status(a(1), AgentStatus::Away, 0).expect("status");
    let returning = Arrival { last_agent: Some(a(1)), ..arrival(1, Q1, 3) };
    assert!(handed_out(&sw.arrive(returning, 0).expect("arrive")).is_empty(), "agent 2 must not take it");
    assert_eq!(handed_out(&sw.set_status(a(1), AgentStatus::Available, 1_000).expect("status")), vec![(1, 1)]);

    // Same again, but the last agent does not come back in time: anyone after the window.
    sw.set_status(a(1), AgentStatus::Away, 1_000).expect("status");
    let returning = Arrival { last_agent: Some(a(1)), ..arrival(2, Q1, 3) };
    assert!(handed_out(&sw.arrive(returning, 1_000).expect("arrive")).is_empty());
    assert!(handed_out(&sw.tick(5_999)).is_empty());
    assert_eq!(handed_out(&sw.tick(6_000)), vec![(2, 2)]);

    // A last agent who is offline is not waited for.
    sw.set_status(a(1), AgentStatus::Offline, 6_000).expect("status");
    let returning = Arrival { last_agent: Some(a(1)), ..arrival(3, Q1, 3) };
    assert_eq!(handed_out(&sw.arrive(returning, 6_000).expect("arrive")), vec![(3, 2)]);
}

// ---- queue limits and overflow ------------------------------------------------------------

#[test]
fn overflow_moves_a_waiting_conversation_after_the_deadline() {
    let first = QueuePolicy { overflow_after_ms: Some(1_000), overflow_to: Some(Q2), ..auto() };
    let mut sw = switch(&[(Q2, auto()), (Q1, first)], &[(2, &[Q2], 1)]);
    assert!(arrive(&mut sw, 1, Q1, 0).is_empty());
    assert!(sw.tick(999).is_empty());
    assert_eq!(
        sw.tick(1_000),
        vec![
            Decision::Overflowed { conversation: c(1), from: Q1, to: Q2 },
            Decision::Assigned { conversation: c(1), agent: a(2), queue: Q2, how: AssignedHow::AutoAccepted },
        ]
    );
}

#[test]
fn a_full_queue_refuses_new_arrivals() {
    let small = QueuePolicy { max_queue_len: Some(2), ..Default::default() };
    let mut sw = switch(&[(Q1, small)], &[]);
    arrive(&mut sw, 1, Q1, 0);
    arrive(&mut sw, 2, Q1, 0);
    assert_eq!(
        arrive(&mut sw, 3, Q1, 0),
        vec![Decision::Refused { conversation: c(3), queue: Q1, reason: RefusalReason::QueueFull }]
    );
    assert!(sw.conversation(c(3)).is_none(), "a refused conversation is not kept");
    sw.abandon(c(1), 1).expect("abandon");
    assert!(arrive(&mut sw, 3, Q1, 2).is_empty(), "room again");
}

// ---- agents: capacity, wrap-up, status ----------------------------------------------------

#[test]
fn capacity_is_enforced_per_channel_kind_and_in_total() {
    let mut sw = switch(&[(Q1, auto())], &[(1, &[Q1], 0)]);
    let cap = Capacity::total(3).with_kind(ChannelKind::Web, 2).with_kind(ChannelKind::Whatsapp, 2);
    sw.set_capacity(a(1), cap, 0).expect("capacity");
    let mut given = Vec::new();
    for (id, kind) in [
        (1, ChannelKind::Web),
        (2, ChannelKind::Web),
        (3, ChannelKind::Web),
        (4, ChannelKind::Whatsapp),
        (5, ChannelKind::Whatsapp),
    ] {
        let arrival = Arrival { channel: kind, ..arrival(id, Q1, 3) };
        given.extend(handed_out(&sw.arrive(arrival, 0).expect("arrive")));
    }
    // Web stops at 2, the total at 3.
    assert_eq!(given, vec![(1, 1), (2, 1), (4, 1)]);
    // Raising capacity dispatches at once, oldest first.
    let raised = sw.set_capacity(a(1), Capacity::total(5).with_kind(ChannelKind::Web, 3), 1).expect("capacity");
    assert_eq!(handed_out(&raised), vec![(3, 1), (5, 1)]);
}

#[test]
fn lowering_capacity_withdraws_offers_but_keeps_assignments() {
    let mut sw = switch(&[(Q1, offering())], &[(1, &[Q1], 3)]);
    for id in 1..=3 {
        arrive(&mut sw, id, Q1, id);
    }
    sw.offer_accepted(c(1), a(1), 10).expect("accept");
    sw.offer_accepted(c(2), a(1), 10).expect("accept");
    let lowered = sw.set_capacity(a(1), Capacity::total(1), 20).expect("capacity");
    assert_eq!(
        lowered,
        vec![Decision::Requeued {
            conversation: c(3),
            queue: Q1,
            from_agent: a(1),
            reason: RequeueReason::CapacityLowered,
            at_head: false
        }]
    );
    assert_eq!(sw.held_by(a(1)).collect::<Vec<_>>(), vec![c(1), c(2)], "assignments stay");
    assert!(handed_out(&sw.resolve(c(1), 30).expect("resolve")).is_empty(), "still at 1/1");
    assert_eq!(handed_out(&sw.resolve(c(2), 40).expect("resolve")), vec![(3, 1)]);
}

#[test]
fn wrap_up_holds_new_work_until_it_ends() {
    let policy = QueuePolicy { wrap_up_ms: 2_000, ..auto() };
    let mut sw = switch(&[(Q1, policy)], &[(1, &[Q1], 1)]);
    arrive(&mut sw, 1, Q1, 0);
    arrive(&mut sw, 2, Q1, 0);
    assert_eq!(sw.resolve(c(1), 100).expect("resolve"), vec![Decision::WrapUpStarted { agent: a(1), until: 2_100 }]);
    assert!(sw.tick(2_099).is_empty());
    assert_eq!(
        sw.tick(2_100),
        vec![
            Decision::WrapUpEnded { agent: a(1) },
            Decision::Assigned { conversation: c(2), agent: a(1), queue: Q1, how: AssignedHow::AutoAccepted },
        ]
    );
    // Ending wrap-up early works too.
    arrive(&mut sw, 3, Q1, 2_200);
    sw.resolve(c(2), 2_300).expect("resolve");
    let ready = sw.end_wrap_up(a(1), 2_400).expect("ready");
    assert_eq!(handed_out(&ready), vec![(3, 1)]);
}

#[test]
fn away_withdraws_offers_but_keeps_assignments() {
    let mut sw = switch(&[(Q1, offering())], &[(1, &[Q1], 2)]);
    arrive(&mut sw, 1, Q1, 0);
    arrive(&mut sw, 2, Q1, 0);
    sw.offer_accepted(c(1), a(1), 1).expect("accept");
    let away = sw.set_status(a(1), AgentStatus::Away, 2).expect("status");
    assert!(matches!(away.as_slice(), [Decision::Requeued { reason: RequeueReason::AgentAway, .. }]));
    assert_eq!(sw.held_by(a(1)).collect::<Vec<_>>(), vec![c(1)]);
}

// ---- offers -------------------------------------------------------------------------------

#[test]
fn rejected_and_expired_offers_keep_their_place() {
    let policy = QueuePolicy { offer_timeout_ms: 1_000, priority_aging_ms: 0, auto_accept: false, ..Default::default() };
    let mut sw = switch(&[(Q1, policy)], &[(1, &[Q1], 1), (2, &[Q1], 1)]);
    sw.set_status(a(2), AgentStatus::Away, 0).expect("status");
    for id in 1..=3 {
        arrive(&mut sw, id, Q1, id);
    }
    assert_eq!(sw.position(c(3), 5), Some(3));
    // Rejecting puts c1 back first in line; the only agent with room gets it again, not c2.
    let rejected = sw.offer_rejected(c(1), a(1), 10).expect("reject");
    assert_eq!(handed_out(&rejected), vec![(1, 1)]);
    assert_eq!(sw.position(c(1), 10), Some(1));
    // Timing out does the same.
    let expired = sw.tick(1_010);
    assert!(matches!(expired[0], Decision::Requeued { reason: RequeueReason::OfferTimedOut, .. }));
    assert_eq!(handed_out(&expired), vec![(1, 1)]);
    // A second agent now gets c1 (agent 1 declined it twice and ranks last), then c2.
    sw.offer_rejected(c(1), a(1), 1_020).expect("reject");
    sw.set_status(a(1), AgentStatus::Away, 1_020).expect("status");
    let back = sw.set_status(a(2), AgentStatus::Available, 1_030).expect("status");
    assert_eq!(handed_out(&back), vec![(1, 2)]);
    // Accepting a stale offer is refused and changes nothing.
    let before = sw.clone();
    assert_eq!(sw.offer_accepted(c(1), a(2), 10_000), Err(RoutingError::OfferExpired(c(1))));
    assert_eq!(
        sw.offer_accepted(c(1), a(1), 1_040),
        Err(RoutingError::NotOfferedTo { conversation: c(1), agent: a(1) })
    );
    assert_eq!(sw, before);
}

#[test]
fn a_disconnected_agents_conversations_go_to_the_head_of_the_queue() {
    let mut sw = switch(&[(Q1, auto())], &[(1, &[Q1], 1), (2, &[Q1], 1)]);
    sw.set_status(a(2), AgentStatus::Away, 0).expect("status");
    arrive(&mut sw, 1, Q1, 0);
    arrive(&mut sw, 2, Q1, 1);
    arrive(&mut sw, 3, Q1, 2);
    let gone = sw.agent_disconnected(a(1), 100).expect("disconnect");
    assert_eq!(
        gone,
        vec![Decision::Requeued {
            conversation: c(1),
            queue: Q1,
            from_agent: a(1),
            reason: RequeueReason::AgentDisconnected,
            at_head: true
        }]
    );
    assert_eq!(sw.agent(a(1)).map(|x| x.status), Some(AgentStatus::Offline));
    assert_eq!(sw.position(c(1), 100), Some(1), "ahead of c2 and c3 which waited longer");
    assert_eq!(handed_out(&sw.set_status(a(2), AgentStatus::Available, 200).expect("status")), vec![(1, 2)]);
}

// ---- transfers ----------------------------------------------------------------------------

#[test]
fn transfer_to_an_agent_moves_the_slot() {
    let mut sw = switch(&[(Q1, auto())], &[(1, &[Q1], 1), (2, &[Q2], 1)]);
    arrive(&mut sw, 1, Q1, 0);
    arrive(&mut sw, 2, Q1, 0);
    let moved = sw.transfer_to_agent(c(1), a(2), Some("billing question".into()), 10).expect("transfer");
    assert_eq!(
        moved,
        vec![
            Decision::Transferred {
                conversation: c(1),
                from_agent: Some(a(1)),
                to: TransferTarget::Agent(a(2)),
                note: Some("billing question".into())
            },
            Decision::Assigned { conversation: c(1), agent: a(2), queue: Q1, how: AssignedHow::Transferred },
            // Agent 1's freed slot goes to the next in line at once.
            Decision::Assigned { conversation: c(2), agent: a(1), queue: Q1, how: AssignedHow::AutoAccepted },
        ]
    );
    let before = sw.clone();
    assert_eq!(
        sw.transfer_to_agent(c(2), a(2), None, 20),
        Err(RoutingError::NoRoom { agent: a(2), kind: ChannelKind::Web })
    );
    assert_eq!(
        sw.transfer_to_agent(c(2), a(1), None, 20),
        Err(RoutingError::AlreadyHeld { conversation: c(2), agent: a(1) })
    );
    assert_eq!(sw, before);
}

#[test]
fn transfer_to_a_queue_starts_a_fresh_wait_there() {
    let small = QueuePolicy { max_queue_len: Some(1), ..auto() };
    let mut sw = switch(&[(Q1, auto()), (Q2, small)], &[(1, &[Q1, Q2], 1)]);
    arrive(&mut sw, 1, Q1, 0);
    let moved = sw.transfer_to_queue(c(1), Q2, Some("needs sales".into()), 50).expect("transfer");
    // Agent 1 is the only member: declined, so last, but still served rather than stranded.
    assert_eq!(handed_out(&moved), vec![(1, 1)]);
    assert_eq!(sw.conversation(c(1)).map(|x| (x.queue, x.waiting_since)), Some((Q2, 50)));
    // A full target queue refuses the transfer and nothing changes.
    sw.set_status(a(1), AgentStatus::Away, 60).expect("status");
    arrive(&mut sw, 2, Q2, 60);
    let before = sw.clone();
    assert_eq!(sw.transfer_to_queue(c(1), Q2, None, 70), Err(RoutingError::QueueFull(Q2)));
    assert_eq!(sw, before);
}

// ---- supervisors --------------------------------------------------------------------------

#[test]
fn snapshot_counts_waiting_offers_and_agents() {
    let mut sw = switch(&[(Q1, offering())], &[(1, &[Q1], 1), (2, &[Q1], 1), (3, &[Q1], 1)]);
    sw.set_status(a(2), AgentStatus::Away, 0).expect("status");
    sw.set_status(a(3), AgentStatus::Offline, 0).expect("status");
    arrive(&mut sw, 1, Q1, 0);
    arrive(&mut sw, 2, Q1, 100);
    let snap = sw.snapshot(Q1, 1_000).expect("queue exists");
    assert_eq!((snap.waiting, snap.offered, snap.longest_wait_ms), (1, 1, Some(1_000)));
    assert_eq!((snap.available, snap.away, snap.offline, snap.in_wrap_up), (1, 1, 1, 0));
    assert_eq!(snap.agents.iter().map(|l| l.load).collect::<Vec<_>>(), vec![1, 0, 0]);
    assert!(sw.snapshot(Q2, 0).is_none());
}

#[test]
fn decisions_serialize_with_a_kind_tag() {
    let transferred = Decision::Transferred {
        conversation: c(1),
        from_agent: Some(a(2)),
        to: TransferTarget::Queue(Q2),
        note: Some("vip".into()),
    };
    let json = serde_json::to_value(&transferred).expect("serializes");
    assert_eq!(
        json,
        serde_json::json!({"kind": "transferred", "conversation": 1, "from_agent": 2,
                           "to": {"type": "queue", "id": 2}, "note": "vip"})
    );
    let back: Decision = serde_json::from_value(json).expect("deserializes");
    assert_eq!(back, transferred);
}

// ---- the property test --------------------------------------------------------------------

mod properties {
    use super::*;
    // Imported one by one: the prelude's `Strategy` trait would shadow routing's `Strategy`.
    use proptest::prelude::{any, prop_assert, prop_assert_eq, prop_oneof, proptest, ProptestConfig, TestCaseError};
    use proptest::strategy::Strategy as _;

    const Q3: QueueId = QueueId(3);
    const Q4: QueueId = QueueId(4);
    const QUEUES: [QueueId; 4] = [Q1, Q2, Q3, Q4];
    const AGENTS: [UserId; 4] = [UserId(1), UserId(2), UserId(3), UserId(4)];
    const KINDS: [ChannelKind; 3] = [ChannelKind::Web, ChannelKind::Whatsapp, ChannelKind::Telegram];
    const SKILLS: [&str; 2] = ["billing", "spanish"];

    /// Four queues exercising every strategy and timer, four agents with overlapping
    /// memberships and uneven skills.
    fn world() -> Switch {
        let mut sw = Switch::new();
        let q2 = QueuePolicy {
            strategy: Strategy::RoundRobin,
            auto_accept: true,
            sticky_ms: 2_000,
            max_queue_len: Some(8),
            ..Default::default()
        };
        let q1 = QueuePolicy {
            strategy: Strategy::LeastLoaded,
            offer_timeout_ms: 2_000,
            priority_aging_ms: 1_000,
            max_priority_boost: 4,
            skill_fallback_after_ms: Some(3_000),
            skills_ignored_after_ms: Some(8_000),
            overflow_after_ms: Some(5_000),
            overflow_to: Some(Q2),
            max_queue_len: Some(6),
            wrap_up_ms: 500,
            sticky_ms: 1_000,
            ..Default::default()
        };
        let q3 = QueuePolicy { strategy: Strategy::Manual, ..Default::default() };
        let q4 = QueuePolicy {
            strategy: Strategy::LongestIdle,
            offer_timeout_ms: 1_500,
            overflow_after_ms: Some(4_000),
            overflow_to: Some(Q1),
            skill_fallback_after_ms: Some(2_000),
            ..Default::default()
        };
        for (id, policy) in [(Q2, q2), (Q1, q1), (Q3, q3), (Q4, q4)] {
            sw.set_policy(id, policy, 0).expect("valid policy");
        }
        let memberships: [&[QueueId]; 4] = [&[Q1, Q2, Q3], &[Q1, Q4], &[Q2, Q3, Q4], &[Q1, Q2, Q3, Q4]];
        let skills: [&[(&str, u8)]; 4] = [&[("billing", 5)], &[("billing", 2), ("spanish", 4)], &[("spanish", 2)], &[]];
        for (i, agent) in AGENTS.iter().enumerate() {
            let profile = AgentProfile {
                agent: *agent,
                queues: memberships[i].iter().copied().collect(),
                skills: skills[i].iter().map(|(s, p)| (SkillId::new(*s), *p)).collect(),
                capacity: Capacity::total(2 + i as u32 % 2).with_kind(ChannelKind::Whatsapp, 1),
            };
            sw.upsert_agent(profile, 0).expect("valid agent");
            sw.set_status(*agent, AgentStatus::Available, 0).expect("known agent");
        }
        sw
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
        /// Answer the `n`-th offer as its agent, or (when `as_agent` is set) as some agent who
        /// may well not be the one it was offered to.
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
        Disconnect(usize),
        Status(usize, usize),
        Capacity {
            agent: usize,
            total: u32,
            whatsapp: u32,
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
            6 => (0..4usize, 0..3usize, 1..=5u8, proptest::collection::vec((0..2usize, 1..=5u8), 0..=2), proptest::option::of(0..4usize))
                .prop_map(|(queue, kind, priority, skills, last_agent)| Op::Arrive { queue, kind, priority, skills, last_agent }),
            4 => (any::<usize>(), proptest::option::weighted(0.2, 0..4usize)).prop_map(|(n, as_agent)| Op::Accept { n, as_agent }),
            2 => (any::<usize>(), proptest::option::weighted(0.2, 0..4usize)).prop_map(|(n, as_agent)| Op::Reject { n, as_agent }),
            4 => (0..3_000i64).prop_map(Op::Wait),
            1 => (0..4usize).prop_map(Op::Disconnect),
            3 => (0..4usize, 0..3usize).prop_map(|(a, s)| Op::Status(a, s)),
            1 => (0..4usize, 0..4u32, 0..3u32).prop_map(|(agent, total, whatsapp)| Op::Capacity { agent, total, whatsapp }),
            1 => (any::<usize>(), 0..4usize).prop_map(|(c, a)| Op::TransferToAgent(c, a)),
            1 => (any::<usize>(), 0..4usize).prop_map(|(c, q)| Op::TransferToQueue(c, q)),
            2 => (any::<usize>(), 0..4usize).prop_map(|(c, a)| Op::Claim(c, a)),
            3 => any::<usize>().prop_map(Op::Resolve),
            1 => any::<usize>().prop_map(Op::Abandon),
            1 => (0..4usize).prop_map(Op::EndWrapUp),
        ]
    }

    /// Picks the `n`-th (modulo) conversation among those matching `filter`, in id order.
    fn pick(sw: &Switch, n: usize, filter: impl Fn(&RoutedConversation) -> bool) -> Option<ConversationId> {
        let ids: Vec<ConversationId> = sw.conversations().filter(|c| filter(c)).map(|c| c.id).collect();
        (!ids.is_empty()).then(|| ids[n % ids.len()])
    }

    /// Applies one op. `None` when the op has nothing to act on (e.g. no offers to accept).
    fn apply(
        sw: &mut Switch,
        op: &Op,
        now: &mut Millis,
        next_id: &mut i64,
    ) -> Option<Result<Vec<Decision>, RoutingError>> {
        let any_conversation = |sw: &Switch, n: usize| pick(sw, n, |_| true);
        Some(match op.clone() {
            Op::Arrive { queue, kind, priority, skills, last_agent } => {
                *next_id += 1;
                let arrival = Arrival {
                    conversation: ConversationId(*next_id),
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
                sw.arrive(arrival, *now)
            }
            Op::Accept { n, as_agent } => {
                let id = pick(sw, n, |c| matches!(c.holder, Holder::Offered { .. }))?;
                let agent = as_agent.map(|i| AGENTS[i]).or(sw.conversation(id)?.holder.agent())?;
                sw.offer_accepted(id, agent, *now)
            }
            Op::Reject { n, as_agent } => {
                let id = pick(sw, n, |c| matches!(c.holder, Holder::Offered { .. }))?;
                let agent = as_agent.map(|i| AGENTS[i]).or(sw.conversation(id)?.holder.agent())?;
                sw.offer_rejected(id, agent, *now)
            }
            Op::Wait(ms) => {
                *now += ms;
                Ok(sw.tick(*now))
            }
            Op::Disconnect(i) => sw.agent_disconnected(AGENTS[i], *now),
            Op::Status(i, s) => {
                let status = [AgentStatus::Available, AgentStatus::Away, AgentStatus::Offline][s];
                sw.set_status(AGENTS[i], status, *now)
            }
            Op::Capacity { agent, total, whatsapp } => {
                sw.set_capacity(AGENTS[agent], Capacity::total(total).with_kind(ChannelKind::Whatsapp, whatsapp), *now)
            }
            Op::TransferToAgent(n, i) => sw.transfer_to_agent(any_conversation(sw, n)?, AGENTS[i], None, *now),
            Op::TransferToQueue(n, q) => sw.transfer_to_queue(any_conversation(sw, n)?, QUEUES[q], None, *now),
            Op::Claim(n, i) => {
                let id = pick(sw, n, |c| c.holder == Holder::Waiting)?;
                sw.claim(id, AGENTS[i], *now)
            }
            Op::Resolve(n) => {
                // Mostly assigned ones; every seventh pick tries any conversation (an error path).
                let id = if n % 7 == 0 {
                    any_conversation(sw, n)?
                } else {
                    pick(sw, n, |c| matches!(c.holder, Holder::Assigned { .. }))?
                };
                sw.resolve(id, *now)
            }
            Op::Abandon(n) => sw.abandon(any_conversation(sw, n)?, *now),
            Op::EndWrapUp(i) => sw.end_wrap_up(AGENTS[i], *now),
        })
    }

    fn policy_of<'s>(sw: &'s Switch, c: &RoutedConversation) -> &'s QueuePolicy {
        sw.policy(c.queue).expect("every conversation's queue exists")
    }

    /// The capacity dimensions the agent is over: `None` for the total, `Some(kind)` per kind.
    fn over_capacity(agent: &Agent) -> Vec<Option<ChannelKind>> {
        let mut over = Vec::new();
        if agent.load.total > agent.capacity.total {
            over.push(None);
        }
        for kind in KINDS {
            if agent.load.of_kind(kind) > agent.capacity.cap_for(kind) {
                over.push(Some(kind));
            }
        }
        over
    }

    /// Invariants 1 (capacity) and 2 (one holder, bookkeeping agrees both ways).
    fn check_holdings(sw: &Switch, before: &Switch, op: &Op, decisions: &[Decision]) -> Result<(), TestCaseError> {
        for agent in sw.agents() {
            let held: Vec<ConversationId> = sw.held_by(agent.id).collect();
            let mut recount = Load::default();
            for id in &held {
                let c = sw.conversation(*id);
                prop_assert!(
                    c.is_some_and(|c| c.holder.agent() == Some(agent.id)),
                    "{} held by {} but its holder disagrees",
                    id,
                    agent.id
                );
                if let Some(c) = c {
                    recount.add(c.channel);
                }
            }
            prop_assert_eq!(&recount, &agent.load, "load of agent {} is not the count of what they hold", agent.id);
            if agent.status == AgentStatus::Offline {
                prop_assert!(held.is_empty(), "offline agent {} holds {:?}", agent.id, held);
            }
            // Only a lowered capacity may leave someone over a cap, and then only with
            // assignments: offers in that dimension are withdrawn and nothing new is added.
            for dimension in over_capacity(agent) {
                let counts = |kind: ChannelKind| dimension.is_none_or(|k| k == kind);
                let was_over = before.agent(agent.id).is_some_and(|b| over_capacity(b).contains(&dimension));
                prop_assert!(
                    matches!(op, Op::Capacity { .. }) || was_over,
                    "agent {} went over capacity ({:?})",
                    agent.id,
                    dimension
                );
                prop_assert!(
                    held.iter()
                        .filter_map(|id| sw.conversation(*id))
                        .all(|c| !counts(c.channel) || matches!(c.holder, Holder::Assigned { .. })),
                    "agent {} over capacity ({:?}) still has offers there",
                    agent.id,
                    dimension
                );
                prop_assert!(
                    !handed_out(decisions).iter().any(|(c, to)| *to == agent.id.0
                        && sw.conversation(ConversationId(*c)).is_some_and(|c| counts(c.channel))),
                    "agent {} over capacity ({:?}) was handed work there",
                    agent.id,
                    dimension
                );
            }
        }
        for c in sw.conversations() {
            if let Some(agent) = c.holder.agent() {
                prop_assert!(
                    sw.held_by(agent).any(|id| id == c.id),
                    "{} names {} as holder but is not in their set",
                    c.id,
                    agent
                );
            }
        }
        Ok(())
    }

    /// Invariant 3: nothing waits in an automatic queue that someone could take now.
    fn check_no_stranding(sw: &Switch, now: Millis) -> Result<(), TestCaseError> {
        for c in sw.conversations().filter(|c| c.holder == Holder::Waiting) {
            let policy = policy_of(sw, c);
            if policy.strategy == Strategy::Manual {
                continue;
            }
            let taker = sw.agents().find(|a| is_eligible(a, c, policy, now) && has_room(a, c.channel));
            prop_assert!(
                taker.is_none(),
                "{} waits in {} although agent {:?} could take it",
                c.id,
                c.queue,
                taker.map(|a| a.id)
            );
        }
        Ok(())
    }

    /// Invariant 4: whenever dispatch hands X to agent A, no waiting conversation Y of the same
    /// queue that is better placed and eligible for A could have had X's slot instead.
    fn check_queue_order(sw: &Switch, decisions: &[Decision], now: Millis) -> Result<(), TestCaseError> {
        let overflowed: BTreeSet<ConversationId> = decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Overflowed { conversation, .. } => Some(*conversation),
                _ => None,
            })
            .collect();
        for d in decisions {
            let (x, agent) = match d {
                Decision::Offered { conversation, agent, .. }
                | Decision::Assigned { conversation, agent, how: AssignedHow::AutoAccepted, .. } => {
                    (*conversation, *agent)
                }
                _ => continue,
            };
            let (Some(x), Some(holder)) = (sw.conversation(x), sw.agent(agent)) else { continue };
            if x.holder.agent() != Some(agent) {
                continue;
            }
            let policy = policy_of(sw, x);
            let x_key = queue_order_key(x, policy, now);
            // The agent as they would be without X.
            let mut without_x = holder.clone();
            without_x.load.remove(x.channel);
            for y in sw.conversations() {
                if y.holder != Holder::Waiting || y.queue != x.queue || overflowed.contains(&y.id) {
                    continue;
                }
                let better = queue_order_key(y, policy, now) < x_key;
                prop_assert!(
                    !(better && is_eligible(&without_x, y, policy, now) && has_room(&without_x, y.channel)),
                    "{} went to {} while better-placed {} waited for the same slot",
                    x.id,
                    agent,
                    y.id
                );
            }
        }
        Ok(())
    }

    /// Queue positions in each queue are exactly 1..=n.
    fn check_positions(sw: &Switch, now: Millis) -> Result<(), TestCaseError> {
        for queue in QUEUES {
            let mut positions: Vec<usize> = sw
                .conversations()
                .filter(|c| c.queue == queue && !matches!(c.holder, Holder::Assigned { .. }))
                .filter_map(|c| sw.position(c.id, now))
                .collect();
            positions.sort_unstable();
            let expected: Vec<usize> = (1..=positions.len()).collect();
            prop_assert_eq!(positions, expected, "positions in queue {}", queue);
            for (index, id) in sw.queue_order(queue, now).into_iter().enumerate() {
                prop_assert_eq!(sw.position(id, now), Some(index + 1), "queue_order and position disagree on {}", id);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn routing_invariants_hold_after_every_event(ops in proptest::collection::vec(op(), 10..150)) {
            let mut sw = world();
            let mut now: Millis = 0;
            let mut next_id = 0;
            for op in &ops {
                let before = sw.clone();
                let Some(result) = apply(&mut sw, op, &mut now, &mut next_id) else { continue };
                match result {
                    Err(_) => prop_assert_eq!(&sw, &before, "a refused {:?} changed the switch", op),
                    Ok(decisions) => {
                        check_holdings(&sw, &before, op, &decisions)?;
                        check_no_stranding(&sw, now)?;
                        check_queue_order(&sw, &decisions, now)?;
                        check_positions(&sw, now)?;
                    }
                }
            }
        }
    }
}

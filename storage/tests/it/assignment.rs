//! Assignment: capacity and status checks, races between nodes, releasing slots, the
//! dispatcher's queries, and the event trail.

use crate::harness::*;
use futures::future::join_all;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::store::Store;

async fn check_try_assign_rules(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = store.create_user(new_user(a.id, "ann@example.com", 1), T0).await.unwrap();
    let c1 = conversation(store, a.id, web.id, "c1", T0).await;
    let c2 = conversation(store, a.id, web.id, "c2", T0).await;

    assert!(store.try_assign(a.id, c1.id, ann.id, T0).await.unwrap().is_none(), "offline agent");
    store.set_agent_status(a.id, ann.id, AgentStatus::Away, T0).await.unwrap();
    assert!(store.try_assign(a.id, c1.id, ann.id, T0).await.unwrap().is_none(), "away agent");
    store.set_agent_status(a.id, ann.id, AgentStatus::Available, T0).await.unwrap();

    let assigned = store.try_assign(a.id, c1.id, ann.id, T0 + 5).await.unwrap().expect("assigned");
    assert_eq!(assigned.state, ConversationState::Assigned);
    assert_eq!((assigned.assignee_id, assigned.assigned_at), (Some(ann.id), Some(T0 + 5)));
    let ann_now = store.get_user(a.id, ann.id).await.unwrap();
    assert_eq!((ann_now.active_load, ann_now.last_assigned_at), (1, Some(T0 + 5)));

    assert!(store.try_assign(a.id, c2.id, ann.id, T0 + 6).await.unwrap().is_none(), "at capacity");
    assert_eq!(store.get_conversation(a.id, c2.id).await.unwrap().state, ConversationState::Queued, "unchanged");

    let bob = agent(store, a.id, "bob@example.com", 5).await;
    assert!(store.try_assign(a.id, c1.id, bob.id, T0 + 7).await.unwrap().is_none(), "already assigned");
    assert_eq!(store.get_user(a.id, bob.id).await.unwrap().active_load, 0, "the slot was given back");
    assert!(
        store.try_assign(a.id, ConversationId(999_999), bob.id, T0).await.unwrap().is_none(),
        "unknown conversation"
    );
    assert_eq!(store.get_user(a.id, bob.id).await.unwrap().active_load, 0);
    assert!(store.try_assign(a.id, c2.id, UserId(999_999), T0).await.unwrap().is_none(), "unknown agent");

    // Lowering capacity below the load stops new assignments.
    store.update_user(a.id, bob.id, UserPatch { capacity: Some(0), ..Default::default() }, T0).await.unwrap();
    assert!(store.try_assign(a.id, c2.id, bob.id, T0).await.unwrap().is_none(), "capacity 0");
    let filter = ConversationFilter { assignee_id: Some(ann.id), limit: 10, ..Default::default() };
    assert_eq!(
        store.list_conversations(a.id, filter).await.unwrap().iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![c1.id]
    );
    let filter = ConversationFilter { state: Some(ConversationState::Queued), limit: 10, ..Default::default() };
    assert_eq!(
        store.list_conversations(a.id, filter).await.unwrap().iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![c2.id]
    );
}

/// Twelve queued conversations, one agent with capacity 3, and 36 assignment attempts racing
/// (every conversation tried three times, as several dispatcher nodes would): exactly three
/// succeed and the agent's load is exactly three.
async fn check_concurrent_try_assign_respects_capacity(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 3).await;
    let mut convs = vec![];
    for i in 0..12 {
        convs.push(conversation(store, a.id, web.id, &format!("c{i}"), T0 + i).await.id);
    }
    let attempts = convs.iter().cycle().take(36).map(|c| store.try_assign(a.id, *c, ann.id, T0 + 100));
    let results: Vec<_> = join_all(attempts).await.into_iter().map(|r| r.expect("try_assign")).collect();
    let won: Vec<_> = results.iter().flatten().map(|c| c.id).collect();
    assert_eq!(won.len(), 3, "exactly capacity");
    let mut distinct = won.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "no conversation assigned twice");
    assert_eq!(store.get_user(a.id, ann.id).await.unwrap().active_load, 3);
    let assigned = ConversationFilter { state: Some(ConversationState::Assigned), limit: 100, ..Default::default() };
    assert_eq!(store.list_conversations(a.id, assigned).await.unwrap().len(), 3);
}

/// One conversation, eight agents racing for it: one wins, nobody else's load moves.
async fn check_concurrent_try_assign_one_winner(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let mut agents = vec![];
    for i in 0..8 {
        agents.push(agent(store, a.id, &format!("agent{i}@example.com"), 2).await.id);
    }
    let conv = conversation(store, a.id, web.id, "c1", T0).await;
    let results = join_all(agents.iter().map(|ag| store.try_assign(a.id, conv.id, *ag, T0 + 1))).await;
    let won: Vec<_> = results.into_iter().filter_map(|r| r.expect("try_assign")).collect();
    assert_eq!(won.len(), 1);
    let winner = won[0].assignee_id.unwrap();
    let mut total = 0;
    for ag in &agents {
        let load = store.get_user(a.id, *ag).await.unwrap().active_load;
        assert_eq!(load, i64::from(*ag == winner));
        total += load;
    }
    assert_eq!(total, 1);
    let events = store.list_conversation_events(a.id, conv.id).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == "assigned").count(), 1);
}

async fn check_resolve_releases_load(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 1).await;
    let c1 = conversation(store, a.id, web.id, "c1", T0).await;
    let c2 = conversation(store, a.id, web.id, "c2", T0).await;
    store.try_assign(a.id, c1.id, ann.id, T0 + 1).await.unwrap().expect("assigned");
    assert!(store.try_assign(a.id, c2.id, ann.id, T0 + 2).await.unwrap().is_none(), "full");

    let resolved = store.resolve(a.id, c1.id, Some(ann.id), CloseReason::Resolved, T0 + 3).await.unwrap();
    assert_eq!(resolved.state, ConversationState::Resolved);
    assert_eq!((resolved.closed_at, resolved.close_reason), (Some(T0 + 3), Some(CloseReason::Resolved)));
    assert_eq!(store.get_user(a.id, ann.id).await.unwrap().active_load, 0, "slot released");
    assert_invalid_state(store.resolve(a.id, c1.id, None, CloseReason::Resolved, T0 + 4).await, "already resolved");
    assert_eq!(store.get_user(a.id, ann.id).await.unwrap().active_load, 0, "not released twice");
    assert!(store.try_assign(a.id, c2.id, ann.id, T0 + 5).await.unwrap().is_some(), "room again");

    // Closing a conversation nobody holds touches no agent.
    let c3 = conversation(store, a.id, web.id, "c3", T0).await;
    let left = store.resolve(a.id, c3.id, None, CloseReason::CustomerLeft, T0 + 6).await.unwrap();
    assert!(!left.state.is_open());
    assert_eq!(left.close_reason, Some(CloseReason::CustomerLeft));
    assert_eq!(store.get_user(a.id, ann.id).await.unwrap().active_load, 1);
    let open = ConversationFilter { open_only: true, limit: 10, ..Default::default() };
    assert_eq!(
        store.list_conversations(a.id, open).await.unwrap().iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![c2.id]
    );
    assert_not_found(store.resolve(a.id, ConversationId(999_999), None, CloseReason::Other, T0).await, "unknown");
}

async fn check_requeue(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 2).await;
    let conv = conversation(store, a.id, web.id, "c1", T0).await;
    assert_invalid_state(store.requeue(a.id, conv.id, T0 + 1).await, "already queued");
    store.try_assign(a.id, conv.id, ann.id, T0 + 2).await.unwrap().expect("assigned");
    let back = store.requeue(a.id, conv.id, T0 + 3).await.unwrap();
    assert_eq!(back.state, ConversationState::Queued);
    assert_eq!((back.assignee_id, back.assigned_at), (None, None));
    assert_eq!(back.queued_at, Some(T0), "keeps its place in line");
    assert_eq!(store.get_user(a.id, ann.id).await.unwrap().active_load, 0);
    assert_eq!(store.tenants_with_queued().await.unwrap(), vec![a.id]);
    // It can be taken again.
    assert!(store.try_assign(a.id, conv.id, ann.id, T0 + 4).await.unwrap().is_some());
    store.resolve(a.id, conv.id, Some(ann.id), CloseReason::Resolved, T0 + 5).await.unwrap();
    assert_invalid_state(store.requeue(a.id, conv.id, T0 + 6).await, "closed");

    let kinds: Vec<_> = store
        .list_conversation_events(a.id, conv.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.actor_user_id, e.created_at))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("created".to_owned(), None, T0),
            ("assigned".to_owned(), Some(ann.id), T0 + 2),
            ("requeued".to_owned(), Some(ann.id), T0 + 3),
            ("assigned".to_owned(), Some(ann.id), T0 + 4),
            ("resolved".to_owned(), Some(ann.id), T0 + 5),
        ]
    );
    assert!(store.tenants_with_queued().await.unwrap().is_empty());
}

async fn check_candidate_agents_order(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let half = agent(store, a.id, "half@example.com", 2).await; // will be 1/2
    let quarter = agent(store, a.id, "quarter@example.com", 4).await; // will be 1/4
    let idle_recent = agent(store, a.id, "idle-recent@example.com", 2).await; // 0, assigned recently
    let idle_never = agent(store, a.id, "idle-never@example.com", 2).await; // 0, never assigned
    let full = agent(store, a.id, "full@example.com", 1).await; // 1/1: no room
    let offline = store.create_user(new_user(a.id, "offline@example.com", 5), T0).await.unwrap();

    let mut n = 0;
    let mut take = |who: UserId, at: i64| {
        n += 1;
        let contact = format!("k{n}");
        async move {
            let c = conversation(store, a.id, web.id, &contact, T0).await;
            store.try_assign(a.id, c.id, who, at).await.unwrap().expect("assigned");
            c.id
        }
    };
    take(half.id, T0 + 1).await;
    take(quarter.id, T0 + 2).await;
    take(full.id, T0 + 3).await;
    let recent = take(idle_recent.id, T0 + 4).await;
    store.resolve(a.id, recent, None, CloseReason::Resolved, T0 + 5).await.unwrap();

    let order: Vec<_> = store.candidate_agents(a.id, None).await.unwrap().iter().map(|u| u.id).collect();
    assert_eq!(order, vec![idle_never.id, idle_recent.id, quarter.id, half.id]);
    assert!(!order.contains(&full.id) && !order.contains(&offline.id));

    let team = store.create_team(a.id, "Sales", T0).await.unwrap();
    store.add_team_member(a.id, team.id, half.id, T0).await.unwrap();
    store.add_team_member(a.id, team.id, full.id, T0).await.unwrap();
    store.add_team_member(a.id, team.id, quarter.id, T0).await.unwrap();
    let in_team: Vec<_> = store.candidate_agents(a.id, Some(team.id)).await.unwrap().iter().map(|u| u.id).collect();
    assert_eq!(in_team, vec![quarter.id, half.id]);
}

async fn check_queued_for_agent(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let sales = store.create_team(a.id, "Sales", T0).await.unwrap();
    let billing = store.create_team(a.id, "Billing", T0).await.unwrap();
    let ann = agent(store, a.id, "ann@example.com", 5).await;
    store.add_team_member(a.id, sales.id, ann.id, T0).await.unwrap();
    let sales_inbox = inbox(store, a.id, Some(sales.id)).await;
    let billing_inbox = inbox(store, a.id, Some(billing.id)).await;
    let open_inbox = inbox(store, a.id, None).await;

    let s2 = conversation(store, a.id, sales_inbox.id, "s2", T0 + 20).await;
    let b1 = conversation(store, a.id, billing_inbox.id, "b1", T0 + 5).await;
    let o1 = conversation(store, a.id, open_inbox.id, "o1", T0 + 10).await;
    let s1 = conversation(store, a.id, sales_inbox.id, "s1", T0 + 1).await;
    let taken = conversation(store, a.id, sales_inbox.id, "s0", T0).await;
    store.try_assign(a.id, taken.id, ann.id, T0 + 30).await.unwrap().expect("assigned");

    let mine: Vec<_> = store.queued_for_agent(a.id, ann.id, 10).await.unwrap().iter().map(|c| c.id).collect();
    assert_eq!(mine, vec![s1.id, o1.id, s2.id], "own teams and unteamed, oldest first");
    let first: Vec<_> = store.queued_for_agent(a.id, ann.id, 1).await.unwrap().iter().map(|c| c.id).collect();
    assert_eq!(first, vec![s1.id]);
    assert!(!mine.contains(&b1.id));
    let bob = agent(store, a.id, "bob@example.com", 5).await;
    let bobs: Vec<_> = store.queued_for_agent(a.id, bob.id, 10).await.unwrap().iter().map(|c| c.id).collect();
    assert_eq!(bobs, vec![o1.id], "no team: only unteamed conversations");

    let b = tenant(store, "b").await;
    let b_inbox = inbox(store, b.id, None).await;
    conversation(store, b.id, b_inbox.id, "x", T0).await;
    assert_eq!(store.tenants_with_queued().await.unwrap(), vec![a.id, b.id]);
}

conformance!(
    check_try_assign_rules,
    check_concurrent_try_assign_respects_capacity,
    check_concurrent_try_assign_one_winner,
    check_resolve_releases_load,
    check_requeue,
    check_candidate_agents_order,
    check_queued_for_agent,
);

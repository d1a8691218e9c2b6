//! Transfers (to an agent, a team, the queue) and internal notes: slot accounting on both agents,
//! refusals that change nothing, the event trail, and private messages without outbox entries.

use crate::harness::*;
use futures::future::join_all;
use serde_json::{json, Value};
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::store::Store;
use switchboard_core::transfer::*;
use switchboard_core::StoreError;

fn transfer(tenant: TenantId, conversation: ConversationId, actor: Option<UserId>, to: TransferTarget, note: Option<&str>, now: i64) -> NewTransfer {
    NewTransfer { tenant_id: tenant, conversation_id: conversation, actor, to, note: note.map(str::to_owned), now }
}

async fn load(store: &dyn Store, tenant: TenantId, user: UserId) -> i64 {
    store.get_user(tenant, user).await.unwrap().active_load
}

async fn transfers(store: &dyn Store, tenant: TenantId, conversation: ConversationId) -> Vec<ConversationEvent> {
    let events = store.list_conversation_events(tenant, conversation).await.unwrap();
    events.into_iter().filter(|e| e.kind == "transferred").collect()
}

async fn pending_outbox(store: &dyn Store, tenant: TenantId) -> usize {
    store.list_outbox(tenant, Some(OutboxStatus::Pending), 100).await.unwrap().len()
}

async fn check_transfer_to_agent_moves_the_slot(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 2).await;
    let bob = agent(store, a.id, "bob@example.com", 1).await;
    let c1 = conversation(store, a.id, web.id, "c1", T0).await;
    store.try_assign(a.id, c1.id, ann.id, T0 + 1).await.unwrap().expect("assigned to ann");
    let outbox_before = pending_outbox(store, a.id).await;

    let out = store
        .transfer(transfer(a.id, c1.id, Some(ann.id), TransferTarget::Agent(bob.id), Some("VIP, wants a refund"), T0 + 10))
        .await
        .unwrap();
    assert_eq!(out.conversation.state, ConversationState::Assigned);
    assert_eq!((out.conversation.assignee_id, out.conversation.assigned_at), (Some(bob.id), Some(T0 + 10)));
    assert_eq!(out.previous_assignee, Some(ann.id));
    assert_eq!((load(store, a.id, ann.id).await, load(store, a.id, bob.id).await), (0, 1), "the slot moved");
    assert_eq!(store.get_user(a.id, bob.id).await.unwrap().last_assigned_at, Some(T0 + 10));

    let note = out.note.expect("the note is stored");
    assert!(note.private);
    assert_eq!((note.text.as_deref(), note.sender_user_id, note.sender_kind), (Some("VIP, wants a refund"), Some(ann.id), SenderKind::Agent));
    assert_eq!(pending_outbox(store, a.id).await, outbox_before, "a note is never delivered");
    let listed = store.list_messages(a.id, c1.id, None, 100).await.unwrap();
    assert_eq!(listed.iter().filter(|m| m.private).map(|m| m.id).collect::<Vec<_>>(), vec![note.id]);
    assert!(listed.iter().filter(|m| m.id != note.id).all(|m| !m.private), "the customer's message stays public");

    let events = transfers(store, a.id, c1.id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor_user_id, Some(ann.id));
    let detail: Value = serde_json::from_str(events[0].detail.as_deref().expect("detail")).unwrap();
    assert_eq!(detail["from"], json!({"state": "assigned", "agent": ann.id.0, "team": null}));
    assert_eq!(detail["to"], json!({"agent": bob.id.0}));
    assert_eq!(detail["note_message_id"], json!(note.id.0));

    // Back to ann, without a note: her slot is taken again, bob's given back.
    let out = store.transfer(transfer(a.id, c1.id, None, TransferTarget::Agent(ann.id), None, T0 + 20)).await.unwrap();
    assert_eq!(out.conversation.assignee_id, Some(ann.id));
    assert!(out.note.is_none());
    assert_eq!((load(store, a.id, ann.id).await, load(store, a.id, bob.id).await), (1, 0));
    assert_eq!(transfers(store, a.id, c1.id).await.len(), 2);

    // A queued conversation goes straight to the agent, like a manual assignment.
    let c2 = conversation(store, a.id, web.id, "c2", T0 + 30).await;
    let out = store.transfer(transfer(a.id, c2.id, None, TransferTarget::Agent(bob.id), None, T0 + 31)).await.unwrap();
    assert_eq!((out.conversation.state, out.conversation.assignee_id, out.previous_assignee), (ConversationState::Assigned, Some(bob.id), None));
    assert_eq!((load(store, a.id, ann.id).await, load(store, a.id, bob.id).await), (1, 1));
}

async fn check_transfer_to_an_agent_without_room_changes_nothing(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 2).await;
    let bob = agent(store, a.id, "bob@example.com", 1).await;
    let c1 = conversation(store, a.id, web.id, "c1", T0).await;
    let c2 = conversation(store, a.id, web.id, "c2", T0).await;
    store.try_assign(a.id, c1.id, ann.id, T0 + 1).await.unwrap().expect("c1 to ann");
    store.try_assign(a.id, c2.id, bob.id, T0 + 1).await.unwrap().expect("c2 to bob, now full");
    let messages_before = store.list_messages(a.id, c1.id, None, 100).await.unwrap().len();

    let full = store.transfer(transfer(a.id, c1.id, Some(ann.id), TransferTarget::Agent(bob.id), Some("note"), T0 + 5)).await;
    assert!(matches!(full, Err(StoreError::Conflict(ref m)) if m.contains("capacity")), "full agent: {full:?}");
    let carol = agent(store, a.id, "carol@example.com", 5).await;
    store.set_agent_status(a.id, carol.id, AgentStatus::Away, T0).await.unwrap();
    assert_conflict(store.transfer(transfer(a.id, c1.id, Some(ann.id), TransferTarget::Agent(carol.id), Some("note"), T0 + 6)).await, "away agent");
    assert_conflict(store.transfer(transfer(a.id, c1.id, Some(ann.id), TransferTarget::Agent(ann.id), None, T0 + 6)).await, "to the holder");
    assert_not_found(store.transfer(transfer(a.id, c1.id, None, TransferTarget::Agent(UserId(999_999)), None, T0 + 7)).await, "unknown agent");
    let b = tenant(store, "b").await;
    let bea = agent(store, b.id, "bea@example.com", 5).await;
    assert_not_found(store.transfer(transfer(a.id, c1.id, None, TransferTarget::Agent(bea.id), None, T0 + 8)).await, "another tenant's agent");
    assert_not_found(store.transfer(transfer(b.id, c1.id, None, TransferTarget::Agent(bea.id), None, T0 + 8)).await, "another tenant's conversation");

    let still = store.get_conversation(a.id, c1.id).await.unwrap();
    assert_eq!((still.state, still.assignee_id, still.assigned_at), (ConversationState::Assigned, Some(ann.id), Some(T0 + 1)));
    assert_eq!((load(store, a.id, ann.id).await, load(store, a.id, bob.id).await), (1, 1), "no slot moved");
    assert_eq!((load(store, a.id, carol.id).await, load(store, b.id, bea.id).await), (0, 0));
    assert!(transfers(store, a.id, c1.id).await.is_empty(), "no event");
    assert_eq!(store.list_messages(a.id, c1.id, None, 100).await.unwrap().len(), messages_before, "no note");
}

async fn check_transfer_to_a_team_keeps_the_place_in_line(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let sales = store.create_team(a.id, "Sales", T0).await.unwrap();
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 1).await;
    let sam = store.create_user(new_user(a.id, "sam@example.com", 3), T0).await.unwrap();
    store.add_team_member(a.id, sales.id, sam.id, T0).await.unwrap();
    let c1 = conversation(store, a.id, web.id, "c1", T0).await;
    let c2 = conversation(store, a.id, web.id, "c2", T0 + 10).await;
    store.try_assign(a.id, c1.id, ann.id, T0 + 20).await.unwrap().expect("c1 to ann");

    let out = store.transfer(transfer(a.id, c1.id, Some(ann.id), TransferTarget::Team(sales.id), Some("billing question"), T0 + 30)).await.unwrap();
    let c = &out.conversation;
    assert_eq!((c.state, c.team_id, c.assignee_id, c.assigned_at), (ConversationState::Queued, Some(sales.id), None, None));
    assert_eq!(c.queued_at, Some(T0), "the customer keeps their place");
    assert_eq!(c.declined_by, vec![ann.id]);
    assert_eq!(out.previous_assignee, Some(ann.id));
    assert_eq!(load(store, a.id, ann.id).await, 0, "ann's slot is free");
    assert!(out.note.as_ref().is_some_and(|n| n.private));
    let detail: Value = serde_json::from_str(transfers(store, a.id, c1.id).await[0].detail.as_deref().unwrap()).unwrap();
    assert_eq!(detail["to"], json!({"team": sales.id.0}));

    // A sales agent is offered c1 (waiting since T0) before c2 (since T0 + 10).
    let next: Vec<_> = store.queued_for_agent(a.id, sam.id, 10).await.unwrap().iter().map(|c| c.id).collect();
    assert_eq!(next, vec![c1.id, c2.id]);

    // A waiting conversation changes team and stays queued, still at its place.
    let out = store.transfer(transfer(a.id, c2.id, None, TransferTarget::Team(sales.id), None, T0 + 40)).await.unwrap();
    assert_eq!((out.conversation.state, out.conversation.team_id, out.conversation.queued_at), (ConversationState::Queued, Some(sales.id), Some(T0 + 10)));
    assert_eq!(out.previous_assignee, None);

    let b = tenant(store, "b").await;
    let team_b = store.create_team(b.id, "B", T0).await.unwrap();
    assert_not_found(store.transfer(transfer(a.id, c2.id, None, TransferTarget::Team(team_b.id), None, T0 + 50)).await, "another tenant's team");
    assert_eq!(store.get_conversation(a.id, c2.id).await.unwrap().team_id, Some(sales.id));
}

async fn check_transfer_to_the_queue(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 1).await;
    let c1 = conversation(store, a.id, web.id, "c1", T0).await;
    assert_invalid_state(store.transfer(transfer(a.id, c1.id, None, TransferTarget::Queue(true), None, T0 + 1)).await, "already queued");
    store.try_assign(a.id, c1.id, ann.id, T0 + 2).await.unwrap().expect("assigned");

    let out = store.transfer(transfer(a.id, c1.id, Some(ann.id), TransferTarget::Queue(true), None, T0 + 3)).await.unwrap();
    assert_eq!((out.conversation.state, out.conversation.assignee_id, out.conversation.queued_at), (ConversationState::Queued, None, Some(T0)));
    assert_eq!(out.conversation.declined_by, vec![ann.id], "the dispatcher tries others before ann");
    assert_eq!(load(store, a.id, ann.id).await, 0);
    let events = transfers(store, a.id, c1.id).await;
    assert_eq!(events.len(), 1);
    let detail: Value = serde_json::from_str(events[0].detail.as_deref().unwrap()).unwrap();
    assert_eq!((detail["to"].clone(), detail["note_message_id"].clone()), (json!({"queue": true}), Value::Null));
    // The freed slot can be taken again at once.
    assert!(store.try_assign(a.id, c1.id, ann.id, T0 + 4).await.unwrap().is_some());
}

async fn check_bot_and_closed_conversations_are_not_transferred(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 2).await;
    let c1 = conversation(store, a.id, web.id, "c1", T0).await;
    store.try_assign(a.id, c1.id, ann.id, T0 + 1).await.unwrap().expect("assigned");
    store.resolve(a.id, c1.id, Some(ann.id), CloseReason::Resolved, T0 + 2).await.unwrap();
    for to in [TransferTarget::Agent(ann.id), TransferTarget::Queue(true)] {
        assert_invalid_state(store.transfer(transfer(a.id, c1.id, None, to, Some("n"), T0 + 3)).await, "resolved");
    }
    assert_eq!(load(store, a.id, ann.id).await, 0);

    let bot_inbox = inbox(store, a.id, None).await;
    store.set_inbox_flow(a.id, bot_inbox.id, &json!({"steps": [{"type": "handoff", "id": "h"}]}), T0).await.unwrap();
    let with_bot = store.ingest_inbound(inbound(a.id, bot_inbox.id, "c2", "c2-first", T0 + 4)).await.unwrap().conversation;
    assert_eq!(with_bot.state, ConversationState::Bot);
    assert_invalid_state(store.transfer(transfer(a.id, with_bot.id, None, TransferTarget::Agent(ann.id), None, T0 + 5)).await, "with the bot");
    assert_eq!(store.get_conversation(a.id, with_bot.id).await.unwrap().state, ConversationState::Bot);
    assert_eq!(load(store, a.id, ann.id).await, 0);
    assert!(transfers(store, a.id, with_bot.id).await.is_empty());
}

async fn check_notes_are_private_messages(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 2).await;
    let c1 = conversation(store, a.id, web.id, "c1", T0).await;
    store.try_assign(a.id, c1.id, ann.id, T0 + 1).await.unwrap().expect("assigned");
    let note = store
        .append_note(NewNote { tenant_id: a.id, conversation_id: c1.id, author: Some(ann.id), text: "call back after 5pm".into(), now: T0 + 2 })
        .await
        .unwrap();
    assert!(note.private);
    assert_eq!((note.direction, note.sender_user_id, note.text.as_deref()), (MessageDirection::Outbound, Some(ann.id), Some("call back after 5pm")));
    assert_eq!(pending_outbox(store, a.id).await, 0, "no delivery for a note");
    let reply = store.append_reply(agent_reply(a.id, c1.id, ann.id, Some("r1"), true, T0 + 3)).await.unwrap();
    assert!(!reply.message.private, "a reply is public");
    assert_eq!(pending_outbox(store, a.id).await, 1);
    assert!(store.get_message(a.id, note.id).await.unwrap().private);
    let conversation = store.get_conversation(a.id, c1.id).await.unwrap();
    assert_eq!(conversation.first_agent_reply_at, Some(T0 + 3), "a note is not the first reply");

    let b = tenant(store, "b").await;
    let other = NewNote { tenant_id: b.id, conversation_id: c1.id, author: None, text: "x".into(), now: T0 + 4 };
    assert_not_found(store.append_note(other).await, "another tenant's conversation");
    store.resolve(a.id, c1.id, Some(ann.id), CloseReason::Resolved, T0 + 5).await.unwrap();
    let late = NewNote { tenant_id: a.id, conversation_id: c1.id, author: Some(ann.id), text: "late".into(), now: T0 + 6 };
    assert_invalid_state(store.append_note(late).await, "closed");
    assert_eq!(store.list_messages(a.id, c1.id, None, 100).await.unwrap().iter().filter(|m| m.private).count(), 1);
}

/// An offer holds its agent's slot: transferring an offered conversation gives that slot back and
/// ends the offer, whether it goes to another agent or back to the queue.
async fn check_an_offered_conversation_is_transferred_with_its_slot(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 1).await;
    let bob = agent(store, a.id, "bob@example.com", 1).await;
    let c1 = conversation(store, a.id, web.id, "c1", T0).await;
    let c2 = conversation(store, a.id, web.id, "c2", T0).await;
    let offered = store.try_offer(a.id, c1.id, ann.id, T0 + 1, T0 + 30_000).await.unwrap().expect("offered to ann");
    assert_eq!(offered.state, ConversationState::Offered);
    assert_eq!(load(store, a.id, ann.id).await, 1);

    let out = store.transfer(transfer(a.id, c1.id, None, TransferTarget::Agent(bob.id), None, T0 + 2)).await.unwrap();
    assert_eq!((out.conversation.state, out.conversation.assignee_id, out.conversation.offer_expires_at), (ConversationState::Assigned, Some(bob.id), None));
    assert_eq!((load(store, a.id, ann.id).await, load(store, a.id, bob.id).await), (0, 1));
    assert_invalid_state(store.accept_offer(a.id, c1.id, ann.id, T0 + 3).await, "the offer is gone");

    store.try_offer(a.id, c2.id, ann.id, T0 + 4, T0 + 30_000).await.unwrap().expect("offered to ann");
    let out = store.transfer(transfer(a.id, c2.id, None, TransferTarget::Queue(true), None, T0 + 5)).await.unwrap();
    assert_eq!((out.conversation.state, out.conversation.assignee_id, out.conversation.offer_expires_at), (ConversationState::Queued, None, None));
    assert_eq!(out.conversation.declined_by, vec![ann.id]);
    assert_eq!(load(store, a.id, ann.id).await, 0);
    assert!(store.expired_offers(T0 + 60_000, 10).await.unwrap().iter().all(|c| c.id != c2.id), "no offer left to expire");
}

/// Transfers racing each other and a resolve: whatever order they commit in, the loads add up
/// to exactly the conversations held, and nobody is over capacity.
async fn check_concurrent_transfers_keep_loads_right(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    let mut agents = vec![];
    for i in 0..4 {
        agents.push(agent(store, a.id, &format!("agent{i}@example.com"), 1).await.id);
    }
    let mut convs = vec![];
    for i in 0..3 {
        let c = conversation(store, a.id, web.id, &format!("c{i}"), T0 + i).await;
        store.try_assign(a.id, c.id, agents[i as usize], T0 + 10).await.unwrap().expect("assigned");
        convs.push(c.id);
    }
    // Every conversation to every agent (most fail: capacity 1), and to the queue, at once.
    let mut attempts = vec![];
    for c in &convs {
        for ag in &agents {
            attempts.push(transfer(a.id, *c, None, TransferTarget::Agent(*ag), None, T0 + 20));
        }
        attempts.push(transfer(a.id, *c, None, TransferTarget::Queue(true), None, T0 + 20));
    }
    let results = join_all(attempts.into_iter().map(|t| store.transfer(t))).await;
    for r in &results {
        assert!(matches!(r, Ok(_) | Err(StoreError::Conflict(_)) | Err(StoreError::InvalidState(_))), "{r:?}");
    }
    let mut held = std::collections::HashMap::new();
    for c in &convs {
        let now = store.get_conversation(a.id, *c).await.unwrap();
        if now.state.holds_agent_slot() {
            *held.entry(now.assignee_id.expect("holder")).or_insert(0) += 1;
        } else {
            assert_eq!((now.state, now.assignee_id), (ConversationState::Queued, None));
        }
    }
    for ag in &agents {
        let user = store.get_user(a.id, *ag).await.unwrap();
        assert_eq!(user.active_load, held.get(ag).copied().unwrap_or(0), "load of {ag}");
        assert!(user.active_load <= user.capacity);
    }
}

conformance!(
    check_transfer_to_agent_moves_the_slot,
    check_transfer_to_an_agent_without_room_changes_nothing,
    check_transfer_to_a_team_keeps_the_place_in_line,
    check_transfer_to_the_queue,
    check_bot_and_closed_conversations_are_not_transferred,
    check_notes_are_private_messages,
    check_an_offered_conversation_is_transferred_with_its_slot,
    check_concurrent_transfers_keep_loads_right,
);

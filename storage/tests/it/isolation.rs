//! Tenant isolation: nothing of tenant A is visible to, or changeable by, tenant B.

use crate::harness::*;
use switchboard_core::domain::*;
use switchboard_core::store::Store;

async fn check_tenant_isolation(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let team_a = store.create_team(a.id, "A team", T0).await.unwrap();
    let web_a = inbox(store, a.id, None).await;
    let ann = agent(store, a.id, "ann@example.com", 3).await;
    store.add_team_member(a.id, team_a.id, ann.id, T0).await.unwrap();
    let conv = conversation(store, a.id, web_a.id, "c1", T0).await;
    let queued = conversation(store, a.id, web_a.id, "c2", T0).await;
    store.try_assign(a.id, conv.id, ann.id, T0).await.unwrap().expect("assigned");
    let reply = store.append_reply(agent_reply(a.id, conv.id, ann.id, Some("cm"), true, T0)).await.unwrap();
    let outbox = reply.outbox.clone().unwrap();
    store.fail_outbox(outbox.id, "boom", None, T0).await.unwrap();
    let token = store.create_api_token(a.id, "crm", Role::Admin, &"9".repeat(64), T0).await.unwrap();
    let bob = agent(store, b.id, "bob@example.com", 3).await;

    // Users and teams.
    assert_not_found(store.get_user(b.id, ann.id).await, "get_user");
    assert_not_found(
        store.update_user(b.id, ann.id, UserPatch { name: Some("x".into()), ..Default::default() }, T0).await,
        "update_user",
    );
    assert_not_found(store.set_agent_status(b.id, ann.id, AgentStatus::Offline, T0).await, "set_agent_status");
    assert_eq!(store.list_users(b.id).await.unwrap().iter().map(|u| u.id).collect::<Vec<_>>(), vec![bob.id]);
    assert!(store.list_teams(b.id).await.unwrap().is_empty());
    assert_not_found(store.list_team_members(b.id, team_a.id).await, "list_team_members");
    assert_not_found(store.add_team_member(b.id, team_a.id, bob.id, T0).await, "add_team_member");
    assert_not_found(store.delete_api_token(b.id, token.id).await, "delete_api_token");
    assert!(store.list_api_tokens(b.id).await.unwrap().is_empty());

    // Inboxes and contacts.
    assert_not_found(store.get_inbox(b.id, web_a.id).await, "get_inbox");
    assert_not_found(
        store.update_inbox(b.id, web_a.id, InboxPatch { name: Some("x".into()), ..Default::default() }, T0).await,
        "update_inbox",
    );
    assert!(store.list_inboxes(b.id).await.unwrap().is_empty());
    assert_not_found(store.get_contact(b.id, conv.contact_id).await, "get_contact");
    assert_not_found_or_empty(store.list_contact_identities(b.id, conv.contact_id).await, "list_contact_identities");
    assert_not_found(
        store.ingest_inbound(inbound(b.id, web_a.id, "c1", "pm-x", T0)).await,
        "ingest into another tenant's inbox",
    );
    assert!(store.find_conversation_for_identity(b.id, web_a.id, "c1").await.unwrap().is_none());

    // Conversations and messages.
    assert_not_found(store.get_conversation(b.id, conv.id).await, "get_conversation");
    let everything = ConversationFilter { limit: 100, ..Default::default() };
    assert!(store.list_conversations(b.id, everything.clone()).await.unwrap().is_empty());
    assert_eq!(store.list_conversations(a.id, everything).await.unwrap().len(), 2);
    assert_not_found_or_empty(store.list_messages(b.id, conv.id, None, 100).await, "list_messages");
    assert_not_found(store.get_message(b.id, reply.message.id).await, "get_message");
    assert_not_found(
        store.set_message_status(b.id, reply.message.id, DeliveryStatus::Read, T0).await,
        "set_message_status",
    );
    assert_not_found(store.set_biz_data(b.id, conv.id, serde_json::json!({"x": 1}), T0).await, "set_biz_data");
    assert_not_found_or_empty(store.list_conversation_events(b.id, conv.id).await, "list_conversation_events");
    assert_not_found(store.append_reply(agent_reply(b.id, conv.id, bob.id, None, true, T0)).await, "append_reply");

    // Assignment.
    assert!(store.try_assign(b.id, queued.id, bob.id, T0).await.unwrap().is_none(), "B's agent, A's conversation");
    assert!(store.try_assign(a.id, queued.id, bob.id, T0).await.unwrap().is_none(), "A's conversation, B's agent");
    assert!(store.try_assign(b.id, queued.id, ann.id, T0).await.unwrap().is_none(), "wrong tenant for both");
    assert_eq!(store.get_user(b.id, bob.id).await.unwrap().active_load, 0, "no slot was taken");
    assert_eq!(store.get_conversation(a.id, queued.id).await.unwrap().state, ConversationState::Queued);
    assert_not_found(store.requeue(b.id, conv.id, T0).await, "requeue");
    assert_not_found(store.resolve(b.id, conv.id, None, CloseReason::Spam, T0).await, "resolve");
    assert!(store.candidate_agents(b.id, None).await.unwrap().iter().all(|u| u.tenant_id == b.id));
    assert!(store.candidate_agents(b.id, Some(team_a.id)).await.unwrap().is_empty());
    assert!(store.queued_for_agent(b.id, bob.id, 10).await.unwrap().is_empty());

    // Outbox.
    assert!(store.list_outbox(b.id, None, 10).await.unwrap().is_empty());
    assert_not_found(store.retry_outbox(b.id, outbox.id, T0).await, "retry_outbox");

    // And A still sees all of its own, unchanged.
    assert_eq!(store.get_user(a.id, ann.id).await.unwrap().name, "User ann@example.com");
    assert_eq!(store.get_inbox(a.id, web_a.id).await.unwrap().name, "Website");
    assert_eq!(store.get_conversation(a.id, conv.id).await.unwrap().state, ConversationState::Assigned);
    assert_eq!(store.get_message(a.id, reply.message.id).await.unwrap().status, DeliveryStatus::Failed);
    assert_eq!(store.list_outbox(a.id, Some(OutboxStatus::Dead), 10).await.unwrap().len(), 1);
}

conformance!(check_tenant_isolation);

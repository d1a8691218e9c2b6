//! The console's store methods: canned responses (CRUD, unique shortcut per tenant, tenant
//! isolation), team wrap-up templates, resolving with wrap-up values (stored atomically with the
//! resolve, nothing stored when the resolve is refused) and a contact's conversations.

use crate::harness::*;
use serde_json::json;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::store::Store;

fn canned(shortcut: &str, body: &str) -> NewCannedResponse {
    NewCannedResponse { shortcut: shortcut.to_owned(), title: format!("Title {shortcut}"), body: body.to_owned() }
}

async fn check_canned_responses(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let hi = store.create_canned_response(a.id, canned("hi", "Hello {{contact.name}}!"), T0).await.unwrap();
    assert_eq!((hi.tenant_id, hi.shortcut.as_str(), hi.body.as_str()), (a.id, "hi", "Hello {{contact.name}}!"));
    assert_eq!((hi.created_at, hi.updated_at), (T0, T0));
    let bye = store.create_canned_response(a.id, canned("bye", "Goodbye"), T0).await.unwrap();
    // The shortcut is unique within a tenant, not across tenants.
    assert_conflict(store.create_canned_response(a.id, canned("hi", "again"), T0 + 1).await, "duplicate shortcut");
    let other = store.create_canned_response(b.id, canned("hi", "B's hello"), T0).await.unwrap();

    let listed = store.list_canned_responses(a.id).await.unwrap();
    assert_eq!(listed.iter().map(|c| c.shortcut.as_str()).collect::<Vec<_>>(), vec!["bye", "hi"]);
    assert_eq!(store.list_canned_responses(b.id).await.unwrap(), vec![other.clone()]);

    let updated = store.update_canned_response(a.id, hi.id, canned("hello", "Hi there"), T0 + 5).await.unwrap();
    assert_eq!((updated.shortcut.as_str(), updated.body.as_str(), updated.updated_at), ("hello", "Hi there", T0 + 5));
    assert_eq!(updated.created_at, T0);
    // Saving unchanged values is no "not found".
    store.update_canned_response(a.id, hi.id, canned("hello", "Hi there"), T0 + 5).await.unwrap();
    assert_conflict(store.update_canned_response(a.id, hi.id, canned("bye", "x"), T0 + 6).await, "renaming onto a taken shortcut");
    assert_eq!(store.list_canned_responses(a.id).await.unwrap().iter().find(|c| c.id == hi.id).unwrap().shortcut, "hello");

    // Another tenant's rows are not found, and stay untouched.
    assert_not_found(store.update_canned_response(a.id, other.id, canned("x", "x"), T0).await, "b's canned response from a");
    assert_not_found(store.delete_canned_response(a.id, other.id).await, "deleting b's canned response from a");
    assert_eq!(store.list_canned_responses(b.id).await.unwrap(), vec![other]);

    store.delete_canned_response(a.id, bye.id).await.unwrap();
    assert_not_found(store.delete_canned_response(a.id, bye.id).await, "deleted twice");
    assert_eq!(store.list_canned_responses(a.id).await.unwrap().len(), 1);
    // The freed shortcut can be used again.
    store.create_canned_response(a.id, canned("bye", "See you"), T0 + 7).await.unwrap();
}

async fn check_wrap_up(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let team = store.create_team(a.id, "Support", T0).await.unwrap();
    let b_team = store.create_team(b.id, "Support", T0).await.unwrap();
    assert_eq!(store.get_team_wrap_up_template(a.id, team.id).await.unwrap(), None);
    let template = json!({"fields": [{"key": "topic", "label": "Topic", "kind": "select", "options": ["billing", "other"], "required": true}]});
    store.set_team_wrap_up_template(a.id, team.id, Some(template.clone()), T0 + 1).await.unwrap();
    store.set_team_wrap_up_template(a.id, team.id, Some(template.clone()), T0 + 1).await.unwrap();
    assert_eq!(store.get_team_wrap_up_template(a.id, team.id).await.unwrap(), Some(template.clone()));
    assert_not_found(store.get_team_wrap_up_template(a.id, b_team.id).await, "b's team from a");
    assert_not_found(store.set_team_wrap_up_template(a.id, b_team.id, Some(json!({})), T0).await, "setting b's team from a");
    assert_eq!(store.get_team_wrap_up_template(b.id, b_team.id).await.unwrap(), None);
    // The team's routing policy is not touched.
    assert_eq!(store.list_teams(a.id).await.unwrap()[0].routing_policy, None);

    let inbox = inbox(store, a.id, Some(team.id)).await;
    let agent = agent(store, a.id, "agent@a.test", 2).await;
    store.set_agent_status(a.id, agent.id, AgentStatus::Available, T0).await.unwrap();
    let c = conversation(store, a.id, inbox.id, "cust", T0).await;
    store.try_assign(a.id, c.id, agent.id, T0 + 1).await.unwrap().expect("assigned");
    let values = json!({"topic": "billing", "note": "refund sent"});
    let resolved = store
        .resolve_with_wrap_up(a.id, c.id, Some(agent.id), CloseReason::Resolved, values.clone(), T0 + 2)
        .await
        .unwrap();
    assert_eq!(resolved.state, ConversationState::Resolved);
    assert_eq!(resolved.close_reason, Some(CloseReason::Resolved));
    assert_eq!(resolved.attributes["wrap_up"], values);
    assert_eq!(store.get_conversation(a.id, c.id).await.unwrap().attributes["wrap_up"], values);
    assert_eq!(store.get_user(a.id, agent.id).await.unwrap().active_load, 0, "the slot is released");

    // A refused resolve (already closed) stores nothing.
    assert_invalid_state(
        store.resolve_with_wrap_up(a.id, c.id, Some(agent.id), CloseReason::Spam, json!({"topic": "other"}), T0 + 3).await,
        "resolving twice",
    );
    let after = store.get_conversation(a.id, c.id).await.unwrap();
    assert_eq!((after.attributes["wrap_up"].clone(), after.close_reason), (values, Some(CloseReason::Resolved)));
    // Another tenant cannot resolve it.
    let c2 = conversation(store, a.id, inbox.id, "cust2", T0).await;
    assert_not_found(
        store.resolve_with_wrap_up(b.id, c2.id, None, CloseReason::Resolved, json!({}), T0 + 4).await,
        "b resolving a's conversation",
    );
    assert!(store.get_conversation(a.id, c2.id).await.unwrap().state.is_open());
}

async fn check_contact_conversations(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let inbox = inbox(store, a.id, None).await;
    let first = conversation(store, a.id, inbox.id, "cust", T0).await;
    store.resolve(a.id, first.id, None, CloseReason::Resolved, T0 + 1).await.unwrap();
    let second = store.ingest_inbound(inbound(a.id, inbox.id, "cust", "cust-second", T0 + 2)).await.unwrap();
    assert!(second.conversation_created);
    let stranger = conversation(store, a.id, inbox.id, "someone-else", T0 + 3).await;

    let history = store.list_contact_conversations(a.id, first.contact_id, 50).await.unwrap();
    assert_eq!(history.iter().map(|c| c.id).collect::<Vec<_>>(), vec![second.conversation.id, first.id]);
    assert_eq!(store.list_contact_conversations(a.id, first.contact_id, 1).await.unwrap().len(), 1);
    assert!(!history.iter().any(|c| c.id == stranger.id));
    assert_not_found_or_empty(store.list_contact_conversations(b.id, first.contact_id, 50).await, "a's contact from b");
}

async fn check_conversation_attribute(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let inbox = inbox(store, a.id, None).await;
    let c = conversation(store, a.id, inbox.id, "cust", T0).await;
    let form = json!({"name": "Ada", "email": "ada@example.com", "department": {"id": 1, "name": "Sales"}});
    let first = store.set_conversation_attribute(a.id, c.id, "prechat", form.clone(), T0 + 1).await.unwrap();
    assert_eq!(first.attributes["prechat"], form);
    assert_eq!(first.updated_at, T0 + 1);
    let second = store.set_conversation_attribute(a.id, c.id, "source", json!("widget"), T0 + 2).await.unwrap();
    assert_eq!((second.attributes["prechat"].clone(), second.attributes["source"].clone()), (form, json!("widget")), "other keys stay");
    assert_not_found(store.set_conversation_attribute(b.id, c.id, "x", json!(1), T0 + 3).await, "b writing a's conversation");
    assert_not_found(store.set_conversation_attribute(a.id, ConversationId(987_654), "x", json!(1), T0 + 3).await, "unknown conversation");
    assert!(store.get_conversation(a.id, c.id).await.unwrap().attributes.get("x").is_none());
}

async fn check_messages_before(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let inbox = inbox(store, a.id, None).await;
    let c = conversation(store, a.id, inbox.id, "cust", T0).await;
    for n in 1..10 {
        store.ingest_inbound(inbound(a.id, inbox.id, "cust", &format!("m{n}"), T0 + n)).await.unwrap();
    }
    let all = store.list_messages(a.id, c.id, None, 100).await.unwrap();
    assert_eq!(all.len(), 10);
    let ids: Vec<MessageId> = all.iter().map(|m| m.id).collect();
    let newest = store.list_messages_before(a.id, c.id, MessageId(i64::MAX), 4).await.unwrap();
    assert_eq!(newest.iter().map(|m| m.id).collect::<Vec<_>>(), ids[6..].to_vec(), "the newest page, oldest first");
    let older = store.list_messages_before(a.id, c.id, newest[0].id, 4).await.unwrap();
    assert_eq!(older.iter().map(|m| m.id).collect::<Vec<_>>(), ids[2..6].to_vec());
    let oldest = store.list_messages_before(a.id, c.id, older[0].id, 4).await.unwrap();
    assert_eq!(oldest.iter().map(|m| m.id).collect::<Vec<_>>(), ids[..2].to_vec(), "a short last page");
    assert!(store.list_messages_before(a.id, c.id, ids[0], 4).await.unwrap().is_empty());
    assert_not_found_or_empty(store.list_messages_before(b.id, c.id, MessageId(i64::MAX), 4).await, "b reading a's messages");
}

conformance!(check_canned_responses, check_wrap_up, check_contact_conversations, check_conversation_attribute, check_messages_before);

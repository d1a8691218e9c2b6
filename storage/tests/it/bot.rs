//! The auto-responder's storage: flows per inbox, conversations starting with the bot, turns
//! committed atomically under a compare-and-swap, handoff and close, the recovery query and the
//! decision hook log.

use crate::harness::*;
use futures::future::join_all;
use serde_json::json;
use std::collections::BTreeMap;
use switchboard_core::autoresponder::*;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::store::Store;

fn turn(tenant: TenantId, conversation: ConversationId, version: i64, last: MessageId) -> BotTurn {
    BotTurn {
        tenant_id: tenant,
        conversation_id: conversation,
        expected_version: version,
        state: json!({"status": "running", "turns": version + 1}),
        last_message_id: last,
        hook_deadline: None,
        replies: vec![],
        outbox_kind: None,
        conversation_attributes: BTreeMap::new(),
        contact_attributes: BTreeMap::new(),
        routing: BotRouting::default(),
        end: None,
        now: T0 + 10,
    }
}

/// A tenant, an inbox with a flow, and a conversation opened on it.
async fn with_bot(store: &dyn Store) -> (TenantId, Inbox, IngestOutcome) {
    let a = tenant(store, "a").await;
    let web = inbox(store, a.id, None).await;
    store.set_inbox_flow(a.id, web.id, &json!({"steps": []}), T0).await.unwrap();
    let first = store.ingest_inbound(inbound(a.id, web.id, "c1", "m1", T0)).await.unwrap();
    (a.id, web, first)
}

async fn check_flows_decide_the_first_state(store: &dyn Store) {
    let a = tenant(store, "a").await;
    let b = tenant(store, "b").await;
    let web = inbox(store, a.id, None).await;
    assert!(store.get_inbox_flow(a.id, web.id).await.unwrap().is_none());
    let plain = store.ingest_inbound(inbound(a.id, web.id, "c0", "m0", T0)).await.unwrap();
    assert_eq!(plain.conversation.state, ConversationState::Queued);
    assert_eq!(plain.conversation.queued_at, Some(T0));

    // Another tenant cannot set (or read) this inbox's flow.
    assert_not_found(store.set_inbox_flow(b.id, web.id, &json!({"steps": []}), T0).await, "foreign inbox flow");
    let saved = store.set_inbox_flow(a.id, web.id, &json!({"steps": [1]}), T0).await.unwrap();
    assert_eq!(saved.flow, json!({"steps": [1]}));
    let replaced = store.set_inbox_flow(a.id, web.id, &json!({"steps": [2]}), T0 + 5).await.unwrap();
    let read = store.get_inbox_flow(a.id, web.id).await.unwrap().unwrap();
    assert_eq!((read.flow, read.updated_at), (replaced.flow, T0 + 5));
    assert!(store.get_inbox_flow(b.id, web.id).await.unwrap().is_none());

    let bot = store.ingest_inbound(inbound(a.id, web.id, "c1", "m1", T0)).await.unwrap();
    assert_eq!(bot.conversation.state, ConversationState::Bot);
    assert_eq!(bot.conversation.queued_at, None, "not in the queue while the bot has it");
    assert!(store.candidate_agents(a.id, None).await.unwrap().is_empty());

    assert_not_found(store.delete_inbox_flow(b.id, web.id).await, "foreign delete");
    store.delete_inbox_flow(a.id, web.id).await.unwrap();
    assert_not_found(store.delete_inbox_flow(a.id, web.id).await, "second delete");
    let later = store.ingest_inbound(inbound(a.id, web.id, "c2", "m2", T0)).await.unwrap();
    assert_eq!(later.conversation.state, ConversationState::Queued);
}

async fn check_turns_commit_everything_at_once(store: &dyn Store) {
    let (a, _web, first) = with_bot(store).await;
    let sales = store.create_team(a, "Sales", T0).await.unwrap();
    let conversation = first.conversation.id;
    assert!(store.get_bot_session(a, conversation).await.unwrap().is_none());

    let mut t = turn(a, conversation, 0, first.message.id);
    t.replies = vec!["Hi!".into(), "How can we help?".into()];
    t.outbox_kind = Some("api_webhook".into());
    t.conversation_attributes.insert("order".into(), json!("AB123456"));
    t.contact_attributes.insert("name".into(), json!("Ada"));
    t.routing = BotRouting {
        team_id: Some(sales.id),
        priority: Some(5),
        preferred_agent_id: None,
        tags: vec!["vip".into()],
        skills: vec![json!({"skill": "billing", "min_proficiency": 2})],
    };
    t.hook_deadline = Some(T0 + 3000);
    let out = store.commit_bot_turn(t).await.unwrap();
    assert_eq!(out.messages.len(), 2);
    assert!(out.messages.iter().all(|m| m.sender_kind == SenderKind::Bot && m.direction == MessageDirection::Outbound));
    assert_eq!(out.messages[0].text.as_deref(), Some("Hi!"));
    assert_eq!(out.outbox.len(), 2, "each bot message has its delivery");
    assert_eq!(out.outbox[0].message_id, Some(out.messages[0].id));
    let c = &out.conversation;
    assert_eq!(c.state, ConversationState::Bot);
    assert_eq!(c.attributes, json!({"order": "AB123456"}));
    assert_eq!((c.team_id, c.priority, c.tags.clone()), (Some(sales.id), 5, vec!["vip".to_string()]));
    assert_eq!(c.required_skills, json!([{"skill": "billing", "min_proficiency": 2}]));
    assert_eq!(store.get_contact(a, c.contact_id).await.unwrap().attributes, json!({"name": "Ada"}));
    let session = store.get_bot_session(a, conversation).await.unwrap().unwrap();
    assert_eq!((session.version, session.last_message_id, session.hook_deadline), (1, first.message.id, Some(T0 + 3000)));

    // A second turn that read version 0 lost the race: nothing of it is stored.
    let mut stale = turn(a, conversation, 0, first.message.id);
    stale.replies = vec!["duplicate answer".into()];
    assert_conflict(store.commit_bot_turn(stale).await, "stale first turn");
    let mut stale = turn(a, conversation, 7, first.message.id);
    stale.replies = vec!["duplicate answer".into()];
    assert_conflict(store.commit_bot_turn(stale).await, "stale version");
    let messages = store.list_messages(a, conversation, None, 100).await.unwrap();
    assert_eq!(messages.len(), 3, "the customer's message and two bot messages: {messages:?}");

    // Attributes merge; tags and skills accumulate (a skill named again is replaced).
    let mut next = turn(a, conversation, 1, first.message.id);
    next.conversation_attributes.insert("tier".into(), json!("gold"));
    next.routing.tags = vec!["vip".into(), "billing".into()];
    next.routing.skills = vec![json!({"skill": "billing", "min_proficiency": 4}), json!({"skill": "es", "min_proficiency": 1})];
    let out = store.commit_bot_turn(next).await.unwrap();
    assert_eq!(out.conversation.attributes, json!({"order": "AB123456", "tier": "gold"}));
    assert_eq!(out.conversation.tags, vec!["vip".to_string(), "billing".to_string()]);
    assert_eq!(
        out.conversation.required_skills,
        json!([{"skill": "billing", "min_proficiency": 4}, {"skill": "es", "min_proficiency": 1}])
    );
    assert_eq!(out.conversation.team_id, Some(sales.id), "an empty route keeps the team");
}

async fn check_concurrent_turns_commit_once(store: &dyn Store) {
    let (a, _web, first) = with_bot(store).await;
    let attempts = join_all((0..8).map(|i| {
        let mut t = turn(a, first.conversation.id, 0, first.message.id);
        t.replies = vec![format!("answer {i}")];
        store.commit_bot_turn(t)
    }))
    .await;
    let won = attempts.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "exactly one turn commits: {attempts:?}");
    for lost in attempts.into_iter().filter(|r| r.is_err()) {
        assert_conflict(lost, "losing turn");
    }
    let bot_messages = store
        .list_messages(a, first.conversation.id, None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.sender_kind == SenderKind::Bot)
        .count();
    assert_eq!(bot_messages, 1);
}

async fn check_handoff_and_close(store: &dyn Store) {
    let (a, web, first) = with_bot(store).await;
    let mut t = turn(a, first.conversation.id, 0, first.message.id);
    t.end = Some(BotEnd::Handoff { reason: "keyword".into() });
    t.now = T0 + 50;
    let out = store.commit_bot_turn(t).await.unwrap();
    assert_eq!(out.conversation.state, ConversationState::Queued);
    assert_eq!(out.conversation.queued_at, Some(T0 + 50));
    let events = store.list_conversation_events(a, first.conversation.id).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "bot_handoff" && e.detail.as_deref() == Some("keyword")), "{events:?}");
    // The bot has let go: no further turn, and nothing of one is stored.
    let mut late = turn(a, first.conversation.id, 1, first.message.id);
    late.replies = vec!["too late".into()];
    assert_invalid_state(store.commit_bot_turn(late).await, "turn after handoff");
    assert_eq!(store.list_messages(a, first.conversation.id, None, 100).await.unwrap().len(), 1);

    // A close frees the (inbox, contact) slot: the customer's next message opens a new one.
    let second = store.ingest_inbound(inbound(a, web.id, "c2", "m2", T0)).await.unwrap();
    let mut t = turn(a, second.conversation.id, 0, second.message.id);
    t.replies = vec!["Bye!".into()];
    t.end = Some(BotEnd::Close { reason: CloseReason::Resolved, detail: "faq_resolved".into() });
    let out = store.commit_bot_turn(t).await.unwrap();
    assert_eq!(out.conversation.state, ConversationState::Resolved);
    assert_eq!(out.conversation.close_reason, Some(CloseReason::Resolved));
    let again = store.ingest_inbound(inbound(a, web.id, "c2", "m3", T0 + 100)).await.unwrap();
    assert!(again.conversation_created);
    assert_ne!(again.conversation.id, second.conversation.id);
}

async fn check_recovery_finds_untaken_work(store: &dyn Store) {
    let (a, web, first) = with_bot(store).await;
    let c1 = first.conversation.id;
    // No session yet, message older than the cut-off: due.
    let due = store.bot_conversations_needing_attention(T0 + 10_000, T0 + 1, 100).await.unwrap();
    assert_eq!(due, vec![(a, c1)]);
    // Too fresh (a turn is probably running): not yet.
    assert!(store.bot_conversations_needing_attention(T0 + 10_000, T0, 100).await.unwrap().is_empty());
    // Taken: not due.
    store.commit_bot_turn(turn(a, c1, 0, first.message.id)).await.unwrap();
    assert!(store.bot_conversations_needing_attention(T0 + 10_000, T0 + 1, 100).await.unwrap().is_empty());
    // A newer message nobody took: due again.
    store.ingest_inbound(inbound(a, web.id, "c1", "m1b", T0 + 5)).await.unwrap();
    assert_eq!(store.bot_conversations_needing_attention(T0 + 10_000, T0 + 6, 100).await.unwrap(), vec![(a, c1)]);

    // A pending hook call is due once its deadline passed.
    let second = store.ingest_inbound(inbound(a, web.id, "c2", "m2", T0)).await.unwrap();
    let mut t = turn(a, second.conversation.id, 0, second.message.id);
    t.hook_deadline = Some(T0 + 2_000);
    store.commit_bot_turn(t).await.unwrap();
    let due = store.bot_conversations_needing_attention(T0 + 1_999, T0 - 1, 100).await.unwrap();
    assert!(due.is_empty(), "{due:?}");
    let due = store.bot_conversations_needing_attention(T0 + 2_001, T0 - 1, 100).await.unwrap();
    assert_eq!(due, vec![(a, second.conversation.id)]);
}

async fn check_hook_call_log(store: &dyn Store) {
    let (a, web, first) = with_bot(store).await;
    let b = tenant(store, "b").await;
    for (i, outcome) in ["ok", "timeout"].into_iter().enumerate() {
        store
            .record_hook_call(NewHookCall {
                tenant_id: a,
                inbox_id: web.id,
                conversation_id: first.conversation.id,
                call_id: i as i64 + 1,
                step: "crm".into(),
                outcome: outcome.into(),
                http_status: None,
                latency_ms: 12 + i as i64,
                error: (outcome != "ok").then(|| "the decision hook did not answer in time".into()),
                now: T0 + i as i64,
            })
            .await
            .unwrap();
    }
    let calls = store.list_hook_calls(a, web.id, 10).await.unwrap();
    assert_eq!(calls.iter().map(|c| c.outcome.as_str()).collect::<Vec<_>>(), ["timeout", "ok"], "newest first");
    assert_eq!((calls[1].latency_ms, calls[1].call_id, calls[1].step.as_str()), (12, 1, "crm"));
    assert!(store.list_hook_calls(b.id, web.id, 10).await.unwrap().is_empty(), "tenant-scoped");
}

conformance!(
    check_flows_decide_the_first_state,
    check_turns_commit_everything_at_once,
    check_concurrent_turns_commit_once,
    check_handoff_and_close,
    check_recovery_finds_untaken_work,
    check_hook_call_log,
);

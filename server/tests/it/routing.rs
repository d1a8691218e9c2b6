//! Team queues routed by their policy: the strategy decides who gets a conversation, manual
//! queues wait for an agent to claim, and bad policies are refused.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

/// A team with the given policy, its members, and an API inbox routed to it.
async fn team_queue(app: &TestApp, admin: &str, name: &str, policy: Value, members: &[i64]) -> (i64, String) {
    let (status, team) = app.send_json(Method::POST, admin, "/api/v1/teams", json!({"name": name})).await;
    assert_eq!(status, 201, "{team}");
    let team_id = team["id"].as_i64().expect("team id");
    let (status, body) = app.send_json(Method::PUT, admin, &format!("/api/v1/teams/{team_id}/policy"), policy).await;
    assert_eq!(status, 200, "{body}");
    for m in members {
        let (status, body) = app.send_json(Method::POST, admin, &format!("/api/v1/teams/{team_id}/members"), json!({"user_id": m})).await;
        assert!(status.is_success(), "{body}");
    }
    let (status, inbox) = app
        .send_json(Method::POST, admin, "/api/v1/inboxes", json!({"name": name, "kind": "api", "team_id": team_id, "settings": {"webhook_url": "http://127.0.0.1:9/x"}}))
        .await;
    assert_eq!(status, 201, "{inbox}");
    (inbox["id"].as_i64().expect("inbox"), inbox["inbound_token"].as_str().expect("token").to_string())
}

/// Posts a first message from a new contact and returns who got the conversation.
async fn arrive(app: &TestApp, admin: &str, inbox: i64, token: &str, contact: &str) -> (i64, Option<i64>) {
    let r = app
        .client
        .post(app.url(&format!("/api/v1/channels/api/{inbox}/messages")))
        .bearer_auth(token)
        .json(&json!({"message_id": format!("{contact}-1"), "contact": {"id": contact}, "text": "hi"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.expect("json");
    let id = body["conversation_id"].as_i64().expect("conversation");
    let (_, c) = app.get_json(admin, &format!("/api/v1/conversations/{id}")).await;
    // Distinct assignment times for the idle-time strategies.
    tokio::time::sleep(Duration::from_millis(5)).await;
    (id, c["assignee_id"].as_i64())
}

#[tokio::test]
async fn the_team_strategy_decides_who_gets_the_conversation() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    // A (capacity 10) is older than B (capacity 2); both available.
    let (a, _) = app.available_agent(&admin, "a@example.com", 10).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (b, _) = app.available_agent(&admin, "b@example.com", 2).await;

    // Least loaded (load ÷ capacity, ties to the longest idle): A, B, A, A.
    let (inbox, token) = team_queue(&app, &admin, "least", json!({"strategy": "least_loaded"}), &[a, b]).await;
    let mut got = Vec::new();
    for n in 0..4 {
        got.push(arrive(&app, &admin, inbox, &token, &format!("ll-{n}")).await.1);
    }
    assert_eq!(got, [Some(a), Some(b), Some(a), Some(a)], "least loaded");

    // Fresh agents for the longest-idle queue: C (capacity 10), D (capacity 2). Longest idle
    // ignores load: C, D, C, D.
    let (c, _) = app.available_agent(&admin, "c@example.com", 10).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (d, _) = app.available_agent(&admin, "d@example.com", 2).await;
    let (inbox, token) = team_queue(&app, &admin, "idle", json!({"strategy": "longest_idle"}), &[c, d]).await;
    let mut got = Vec::new();
    for n in 0..4 {
        got.push(arrive(&app, &admin, inbox, &token, &format!("li-{n}")).await.1);
    }
    assert_eq!(got, [Some(c), Some(d), Some(c), Some(d)], "longest idle");
    app.stop().await;
}

#[tokio::test]
async fn manual_queues_wait_for_a_claim_and_bad_policies_are_refused() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (member, member_token) = app.available_agent(&admin, "member@example.com", 3).await;
    let (_, outsider_token) = app.available_agent(&admin, "outsider@example.com", 3).await;
    let (inbox, token) = team_queue(&app, &admin, "manual", json!({"strategy": "manual"}), &[member]).await;

    let (conversation, assignee) = arrive(&app, &admin, inbox, &token, "m-1").await;
    assert_eq!(assignee, None, "manual queues are never auto-assigned");
    let (status, _) = app.send_json(Method::POST, &outsider_token, &format!("/api/v1/conversations/{conversation}/claim"), json!({})).await;
    assert_eq!(status, 403, "only the team's agents may claim");
    let (status, body) = app.send_json(Method::POST, &member_token, &format!("/api/v1/conversations/{conversation}/claim"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["assignee_id"].as_i64(), Some(member));
    let (status, _) = app.send_json(Method::POST, &member_token, &format!("/api/v1/conversations/{conversation}/claim"), json!({})).await;
    assert_eq!(status, 409, "taken already");

    // Policies are validated: unknown keys and bad values change nothing.
    let (_, teams) = app.get_json(&admin, "/api/v1/teams").await;
    let team = teams.as_array().and_then(|t| t.first()).and_then(|t| t["id"].as_i64()).expect("team");
    for bad in [json!({"strategy": "fastest"}), json!({"no_such_key": 1}), json!({"overflow_after_ms": 1000})] {
        let (status, body) = app.send_json(Method::PUT, &admin, &format!("/api/v1/teams/{team}/policy"), bad.clone()).await;
        assert_eq!(status, 422, "{bad} → {body}");
        assert_eq!(body["error"]["code"], "invalid_body");
    }
    let (_, policy) = app.get_json(&admin, &format!("/api/v1/teams/{team}/policy")).await;
    assert_eq!(policy["strategy"], "manual", "unchanged by refused updates");
    let (status, _) = app.send_json(Method::PUT, &member_token, &format!("/api/v1/teams/{team}/policy"), json!({})).await;
    assert_eq!(status, 403, "agents may not change policies");
    app.stop().await;
}

/// Waits until the conversation is assigned; returns the assignee.
async fn assignee_eventually(app: &TestApp, admin: &str, id: i64) -> Option<i64> {
    for _ in 0..200 {
        let (_, c) = app.get_json(admin, &format!("/api/v1/conversations/{id}")).await;
        if c["state"] == "assigned" {
            return c["assignee_id"].as_i64();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_skills_pick_the_agent_and_new_skills_pull_waiting_work() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    // Ann first (idle longest): without skills she would win every tie.
    let (ann, _) = app.available_agent(&admin, "ann@example.com", 5).await;
    let (bob, _) = app.available_agent(&admin, "bob@example.com", 5).await;
    let (status, body) = app.send_json(Method::PATCH, &admin, &format!("/api/v1/users/{bob}"), json!({"skills": {"billing": 4}})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["skills"], json!({"billing": 4}));
    for bad in [json!({"billing": 6}), json!({"billing": 0}), json!({"": 3}), json!({" x": 3})] {
        let (status, body) = app.send_json(Method::PATCH, &admin, &format!("/api/v1/users/{bob}"), json!({"skills": bad})).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }

    // The auto-responder hands off with required skills (the decision hook or a menu can too).
    let (inbox, token) = team_queue(&app, &admin, "Billing", json!({}), &[ann, bob]).await;
    let flow = |skill: &str, level: u8| json!({"flow": {"steps": [{"type": "handoff", "id": "h",
        "route": {"skills": [{"skill": skill, "min_proficiency": level}]}}]}});
    let (status, body) = app.send_json(Method::PUT, &admin, &format!("/api/v1/inboxes/{inbox}/flow"), flow("billing", 3)).await;
    assert_eq!(status, 200, "{body}");
    let (c1, _) = arrive(&app, &admin, inbox, &token, "c1").await;
    assert_eq!(assignee_eventually(&app, &admin, c1).await, Some(bob), "only bob has billing ≥ 3");

    // Nobody speaks Spanish: it waits, until an admin gives Ann the skill.
    app.send_json(Method::PUT, &admin, &format!("/api/v1/inboxes/{inbox}/flow"), flow("spanish", 2)).await;
    let (c2, _) = arrive(&app, &admin, inbox, &token, "c2").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, waiting) = app.get_json(&admin, &format!("/api/v1/conversations/{c2}")).await;
    assert_eq!(waiting["state"], "queued", "{waiting}");
    assert_eq!(waiting["required_skills"], json!([{"skill": "spanish", "min_proficiency": 2}]));
    let (status, _) = app.send_json(Method::PATCH, &admin, &format!("/api/v1/users/{ann}"), json!({"skills": {"spanish": 3}})).await;
    assert_eq!(status, 200);
    assert_eq!(assignee_eventually(&app, &admin, c2).await, Some(ann));
    app.stop().await;
}

async fn state_of(app: &TestApp, admin: &str, id: i64) -> Value {
    app.get_json(admin, &format!("/api/v1/conversations/{id}")).await.1
}

async fn resolve(app: &TestApp, token: &str, id: i64) {
    let (status, body) = app.send_json(Method::POST, token, &format!("/api/v1/conversations/{id}/resolve"), json!({"reason": "resolved"})).await;
    assert!(status.is_success(), "{body}");
}

/// A server whose dispatcher sweep runs every 200 ms, so the time-based rules show quickly.
async fn quick_sweep_app() -> TestApp {
    crate::helpers::spawn_app_with(|s| s.agents.sweep_interval_ms = 200).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrap_up_holds_new_work_back_until_it_ends() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (ann, ann_token) = app.available_agent(&admin, "ann@example.com", 1).await;
    let (inbox, token) = team_queue(&app, &admin, "Wrap", json!({"wrap_up_ms": 1500}), &[ann]).await;
    let (c1, got) = arrive(&app, &admin, inbox, &token, "c1").await;
    assert_eq!(got, Some(ann));
    let (c2, got) = arrive(&app, &admin, inbox, &token, "c2").await;
    assert_eq!(got, None, "full");
    resolve(&app, &ann_token, c1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(state_of(&app, &admin, c2).await["state"], "queued", "ann is wrapping up");
    let (_, me) = app.get_json(&admin, &format!("/api/v1/users/{ann}")).await;
    assert!(me["wrap_up_until"].as_i64().is_some(), "{me}");
    assert_eq!(assignee_eventually(&app, &admin, c2).await, Some(ann), "after the wrap-up");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_keeps_a_returning_customer_for_their_agent() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (ann, ann_token) = app.available_agent(&admin, "ann@example.com", 3).await;
    let (inbox, token) = team_queue(&app, &admin, "Sticky", json!({"sticky_ms": 60000}), &[ann]).await;
    let (c1, got) = arrive(&app, &admin, inbox, &token, "returning").await;
    assert_eq!(got, Some(ann));
    resolve(&app, &ann_token, c1).await;
    // Bob joins and is idle longer than Ann now; Ann steps away.
    let (bob, _) = app.available_agent(&admin, "bob@example.com", 3).await;
    let (_, teams) = app.get_json(&admin, "/api/v1/teams").await;
    let team = teams.as_array().expect("teams").iter().find(|t| t["name"] == "Sticky").expect("team")["id"].as_i64().expect("id");
    app.send_json(Method::POST, &admin, &format!("/api/v1/teams/{team}/members"), json!({"user_id": bob})).await;
    app.send_json(Method::PUT, &ann_token, &format!("/api/v1/users/{ann}/status"), json!({"status": "away"})).await;

    // The returning customer waits for Ann (away, not offline) although Bob has room ...
    let r = app
        .client
        .post(app.url(&format!("/api/v1/channels/api/{inbox}/messages")))
        .bearer_auth(&token)
        .json(&json!({"message_id": "returning-2", "contact": {"id": "returning"}, "text": "me again"}))
        .send()
        .await
        .expect("post");
    let c2 = r.json::<Value>().await.expect("json")["conversation_id"].as_i64().expect("id");
    assert_ne!(c2, c1);
    let waiting = state_of(&app, &admin, c2).await;
    assert_eq!((waiting["state"].clone(), waiting["preferred_agent_id"].clone()), (json!("queued"), json!(ann)), "{waiting}");
    // ... while a new customer goes to Bob at once ...
    let (_, got) = arrive(&app, &admin, inbox, &token, "newcomer").await;
    assert_eq!(got, Some(bob));
    // ... and Ann gets her customer back when she returns.
    app.send_json(Method::PUT, &ann_token, &format!("/api/v1/users/{ann}/status"), json!({"status": "available"})).await;
    assert_eq!(assignee_eventually(&app, &admin, c2).await, Some(ann));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_moves_a_waiting_conversation_to_the_other_queue() {
    let app = quick_sweep_app().await;
    let admin = app.admin_token().await;
    let (bob, _) = app.available_agent(&admin, "bob@example.com", 3).await;
    // "Backup" is served by Bob; "Front" has nobody and overflows into Backup after 600 ms.
    let (_, _) = team_queue(&app, &admin, "Backup", json!({}), &[bob]).await;
    let (_, teams) = app.get_json(&admin, "/api/v1/teams").await;
    let backup = teams.as_array().expect("teams").iter().find(|t| t["name"] == "Backup").expect("team")["id"].as_i64().expect("id");
    let (inbox, token) = team_queue(&app, &admin, "Front", json!({"overflow_after_ms": 600, "overflow_to": backup}), &[]).await;
    let (c, got) = arrive(&app, &admin, inbox, &token, "c1").await;
    assert_eq!(got, None);
    let queued = state_of(&app, &admin, c).await;
    assert_eq!(assignee_eventually(&app, &admin, c).await, Some(bob), "overflowed to Backup");
    let moved = state_of(&app, &admin, c).await;
    assert_eq!(moved["team_id"], backup);
    assert_eq!(moved["queued_at"], queued["queued_at"], "keeps the customer's place");
    let (_, events) = app.get_json(&admin, &format!("/api/v1/conversations/{c}/events")).await;
    assert!(events.as_array().expect("events").iter().any(|e| e["kind"] == "overflowed"), "{events}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_tells_new_arrivals_and_closes_them() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (inbox, token) =
        team_queue(&app, &admin, "Tiny", json!({"max_queue_len": 1, "queue_full_text": "Too busy, sorry!"}), &[]).await;
    let (c1, _) = arrive(&app, &admin, inbox, &token, "c1").await;
    assert_eq!(state_of(&app, &admin, c1).await["state"], "queued");
    let (c2, _) = arrive(&app, &admin, inbox, &token, "c2").await;
    let refused = state_of(&app, &admin, c2).await;
    assert_eq!((refused["state"].clone(), refused["close_reason"].clone()), (json!("closed"), json!("other")), "{refused}");
    let (_, messages) = app.get_json(&admin, &format!("/api/v1/conversations/{c2}/messages")).await;
    let told = messages.as_array().expect("messages").iter().find(|m| m["sender_kind"] == "system").expect("a system message");
    assert_eq!(told["text"], "Too busy, sorry!");
    assert_eq!(state_of(&app, &admin, c1).await["state"], "queued", "the first one still waits");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_assignment_goes_to_someone_else() {
    let app = quick_sweep_app().await;
    let admin = app.admin_token().await;
    let (ann, _) = app.available_agent(&admin, "ann@example.com", 2).await;
    let (inbox, token) = team_queue(&app, &admin, "Prompt", json!({"reassign_without_reply_ms": 500}), &[ann]).await;
    let (c, got) = arrive(&app, &admin, inbox, &token, "c1").await;
    assert_eq!(got, Some(ann));
    let (bob, bob_token) = app.available_agent(&admin, "bob@example.com", 2).await;
    let (_, teams) = app.get_json(&admin, "/api/v1/teams").await;
    let team = teams.as_array().expect("teams").iter().find(|t| t["name"] == "Prompt").expect("team")["id"].as_i64().expect("id");
    app.send_json(Method::POST, &admin, &format!("/api/v1/teams/{team}/members"), json!({"user_id": bob})).await;
    // Ann never answers: after 500 ms it goes back in its place and on to Bob, who answers.
    let mut holder = None;
    for _ in 0..200 {
        let c_now = state_of(&app, &admin, c).await;
        if c_now["assignee_id"] == bob {
            holder = Some(bob);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(holder, Some(bob));
    assert_eq!(app.get_json(&admin, &format!("/api/v1/users/{ann}")).await.1["active_load"], 0);
    let (status, _) = app.send_json(Method::POST, &bob_token, &format!("/api/v1/conversations/{c}/messages"), json!({"text": "Hi, I'm here"})).await;
    assert_eq!(status, 201);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(state_of(&app, &admin, c).await["assignee_id"], bob, "answered: stays");
    let (_, events) = app.get_json(&admin, &format!("/api/v1/conversations/{c}/events")).await;
    assert!(events.as_array().expect("events").iter().any(|e| e["kind"] == "reassigned_no_reply"), "{events}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_per_channel_kind_caps_one_channel_while_others_still_fit() {
    use crate::gateway::{start_fake, telegram_inbox, update, SECRET};
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (ann, _) = app.available_agent(&admin, "ann@example.com", 3).await;
    for bad in [json!({"fax": 1}), json!({"telegram": -1})] {
        let (status, body) = app.send_json(Method::PATCH, &admin, &format!("/api/v1/users/{ann}"), json!({"channel_capacity": bad})).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let (status, body) = app.send_json(Method::PATCH, &admin, &format!("/api/v1/users/{ann}"), json!({"channel_capacity": {"telegram": 1}})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["channel_capacity"], json!({"telegram": 1}));

    let (base, _fake) = start_fake().await;
    let tg = telegram_inbox(&app, &admin, &base, "webhook").await;
    for (n, chat) in [(1, 701), (2, 702)] {
        let r = app
            .client
            .post(app.url(&format!("/webhooks/{tg}")))
            .header("x-telegram-bot-api-secret-token", SECRET)
            .header("content-type", "application/json")
            .body(update(n, chat, n, "hi").to_string())
            .send()
            .await
            .expect("post");
        assert!(r.status().is_success());
    }
    let (_, convs) = app.get_json(&admin, &format!("/api/v1/conversations?inbox_id={tg}")).await;
    let states: Vec<(Value, Value)> = convs.as_array().expect("list").iter().map(|c| (c["state"].clone(), c["assignee_id"].clone())).collect();
    assert_eq!(states.iter().filter(|(s, a)| s == "assigned" && *a == json!(ann)).count(), 1, "{states:?}");
    assert_eq!(states.iter().filter(|(s, _)| s == "queued").count(), 1, "the second Telegram chat waits: {states:?}");

    // Another channel still fits within the total capacity of 3.
    let (status, inbox) = app
        .send_json(Method::POST, &admin, "/api/v1/inboxes", json!({"name": "CRM", "kind": "api", "settings": {"webhook_url": "http://127.0.0.1:9/x"}}))
        .await;
    assert_eq!(status, 201);
    let (_, got) = arrive(&app, &admin, inbox["id"].as_i64().expect("id"), inbox["inbound_token"].as_str().expect("token"), "api-1").await;
    assert_eq!(got, Some(ann));
    // Raising the Telegram cap pulls the waiting chat at once.
    app.send_json(Method::PATCH, &admin, &format!("/api/v1/users/{ann}"), json!({"channel_capacity": {"telegram": 2}})).await;
    let waiting = states_after(&app, &admin, tg).await;
    assert_eq!(waiting, 0);
    app.stop().await;
}

/// How many conversations of the inbox are still queued, once dispatch has had a moment.
async fn states_after(app: &TestApp, admin: &str, inbox: i64) -> usize {
    for _ in 0..100 {
        let (_, convs) = app.get_json(admin, &format!("/api/v1/conversations?inbox_id={inbox}")).await;
        let queued = convs.as_array().map(|l| l.iter().filter(|c| c["state"] == "queued").count()).unwrap_or(0);
        if queued == 0 {
            return 0;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    1
}

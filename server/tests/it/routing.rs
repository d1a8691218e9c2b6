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

//! Offers through the real server: a queue with `auto_accept: false` offers each conversation to
//! one agent, who accepts or rejects (REST here; the socket events in the e2e suite); a reject
//! or a lapsed offer moves it to the next agent in its place; going away withdraws offers.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

async fn conversation(app: &TestApp, token: &str, id: i64) -> Value {
    app.get_json(token, &format!("/api/v1/conversations/{id}")).await.1
}

/// Waits until the conversation satisfies `pred`; returns it.
async fn wait_for(app: &TestApp, token: &str, id: i64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let c = conversation(app, token, id).await;
        if pred(&c) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("conversation {id} never {what}: {}", conversation(app, token, id).await);
}

async fn event_kinds(app: &TestApp, admin: &str, id: i64) -> Vec<String> {
    let (_, events) = app.get_json(admin, &format!("/api/v1/conversations/{id}/events")).await;
    events.as_array().cloned().unwrap_or_default().iter().filter_map(|e| e["kind"].as_str().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_are_accepted_rejected_or_lapse_and_keep_their_place() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, team) = app.send_json(Method::POST, &admin, "/api/v1/teams", json!({"name": "Offers"})).await;
    let team = team["id"].as_i64().expect("team");
    let (status, policy) = app
        .send_json(Method::PUT, &admin, &format!("/api/v1/teams/{team}/policy"), json!({"auto_accept": false, "offer_timeout_ms": 1500}))
        .await;
    assert_eq!(status, 200, "{policy}");
    let mut agents = Vec::new();
    for email in ["ann@example.com", "bob@example.com"] {
        let (id, token) = app.available_agent(&admin, email, 1).await;
        let (status, _) = app.send_json(Method::POST, &admin, &format!("/api/v1/teams/{team}/members"), json!({"user_id": id})).await;
        assert!(status.is_success());
        agents.push((id, token));
    }
    let token_of = |id: i64| agents.iter().find(|(a, _)| *a == id).map(|(_, t)| t.clone()).expect("agent");
    let (status, inbox) = app
        .send_json(Method::POST, &admin, "/api/v1/inboxes", json!({"name": "CRM", "kind": "api", "team_id": team,
            "settings": {"webhook_url": "http://127.0.0.1:9/x"}}))
        .await;
    assert_eq!(status, 201, "{inbox}");
    let r = app
        .client
        .post(app.url(&format!("/api/v1/channels/api/{}/messages", inbox["id"])))
        .bearer_auth(inbox["inbound_token"].as_str().expect("token"))
        .json(&json!({"message_id": "m1", "contact": {"id": "c1"}, "text": "hello"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.expect("json")["conversation_id"].as_i64().expect("id");

    // Offered to one agent, holding their slot, with an expiry.
    let offered = wait_for(&app, &admin, id, "was offered", |c| c["state"] == "offered").await;
    let first = offered["assignee_id"].as_i64().expect("holder");
    assert!(offered["offer_expires_at"].as_i64().is_some(), "{offered}");
    let (_, user) = app.get_json(&admin, &format!("/api/v1/users/{first}")).await;
    assert_eq!(user["active_load"], 1, "an offer holds a slot");
    // Not theirs to work yet; not the other agent's to accept.
    let (status, _) = app.send_json(Method::POST, &token_of(first), &format!("/api/v1/conversations/{id}/messages"), json!({"text": "hi"})).await;
    assert_eq!(status, 409);
    let second = agents.iter().map(|(a, _)| *a).find(|a| *a != first).expect("other");
    let (status, _) = app.send_json(Method::POST, &token_of(second), &format!("/api/v1/conversations/{id}/accept"), json!({})).await;
    assert_eq!(status, 409);

    // Rejected: the other agent gets it; the slot came back; the customer kept their place.
    let (status, body) = app.send_json(Method::POST, &token_of(first), &format!("/api/v1/conversations/{id}/reject"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let re = wait_for(&app, &admin, id, "was offered to the other agent", |c| c["state"] == "offered" && c["assignee_id"] == second).await;
    assert_eq!(re["queued_at"], offered["queued_at"], "keeps its place");
    assert_eq!(re["declined_by"], json!([first]));
    assert_eq!(app.get_json(&admin, &format!("/api/v1/users/{first}")).await.1["active_load"], 0);

    // The second agent lets it lapse: with nobody else left, it comes back to a decliner.
    let lapsed = wait_for(&app, &admin, id, "lapsed and was offered again", |c| {
        c["state"] == "offered" && c["declined_by"].as_array().is_some_and(|d| d.len() == 2)
    })
    .await;
    let holder = lapsed["assignee_id"].as_i64().expect("holder");
    let (status, body) = app.send_json(Method::POST, &token_of(holder), &format!("/api/v1/conversations/{id}/accept"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["state"].clone(), body["assignee_id"].clone()), (json!("assigned"), json!(holder)));
    let (status, _) = app.send_json(Method::POST, &token_of(holder), &format!("/api/v1/conversations/{id}/messages"), json!({"text": "hi!"})).await;
    assert_eq!(status, 201, "an accepted conversation is theirs to answer");
    let kinds = event_kinds(&app, &admin, id).await;
    assert_eq!(kinds, ["created", "offered", "offer_rejected", "offered", "offer_expired", "offered", "offer_accepted"], "{kinds:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn going_away_withdraws_offers_to_the_next_agent() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, team) = app.send_json(Method::POST, &admin, "/api/v1/teams", json!({"name": "Offers"})).await;
    let team = team["id"].as_i64().expect("team");
    app.send_json(Method::PUT, &admin, &format!("/api/v1/teams/{team}/policy"), json!({"auto_accept": false, "offer_timeout_ms": 60000})).await;
    let (ann, ann_token) = app.available_agent(&admin, "ann@example.com", 2).await;
    app.send_json(Method::POST, &admin, &format!("/api/v1/teams/{team}/members"), json!({"user_id": ann})).await;
    let (_, inbox) = app
        .send_json(Method::POST, &admin, "/api/v1/inboxes", json!({"name": "CRM", "kind": "api", "team_id": team,
            "settings": {"webhook_url": "http://127.0.0.1:9/x"}}))
        .await;
    let r = app
        .client
        .post(app.url(&format!("/api/v1/channels/api/{}/messages", inbox["id"])))
        .bearer_auth(inbox["inbound_token"].as_str().expect("token"))
        .json(&json!({"message_id": "m1", "contact": {"id": "c1"}, "text": "hello"}))
        .send()
        .await
        .expect("post");
    let id = r.json::<Value>().await.expect("json")["conversation_id"].as_i64().expect("id");
    wait_for(&app, &admin, id, "was offered to ann", |c| c["state"] == "offered" && c["assignee_id"] == ann).await;

    let (bob, _) = app.available_agent(&admin, "bob@example.com", 2).await;
    app.send_json(Method::POST, &admin, &format!("/api/v1/teams/{team}/members"), json!({"user_id": bob})).await;
    let (status, _) = app.send_json(Method::PUT, &ann_token, &format!("/api/v1/users/{ann}/status"), json!({"status": "away"})).await;
    assert_eq!(status, 200);
    wait_for(&app, &admin, id, "was offered to bob", |c| c["state"] == "offered" && c["assignee_id"] == bob).await;
    assert_eq!(app.get_json(&admin, &format!("/api/v1/users/{ann}")).await.1["active_load"], 0, "the withdrawn offer's slot");
    assert!(event_kinds(&app, &admin, id).await.contains(&"offer_withdrawn".to_string()));
    app.stop().await;
}

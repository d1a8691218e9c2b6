//! The live queue: positions and estimated waits while nobody has room, the supervisor snapshot,
//! and who may see it.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::spawn_app;

async fn post_customer_message(app: &crate::helpers::TestApp, inbox: i64, token: &str, contact: &str) {
    let r = app
        .client
        .post(app.url(&format!("/api/v1/channels/api/{inbox}/messages")))
        .bearer_auth(token)
        .json(&json!({"message_id": format!("m-{contact}"), "contact": {"id": contact}, "text": "hello"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 201);
}

fn waiting(snapshot: &Value) -> Vec<(i64, i64, Option<f64>)> {
    snapshot["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .flat_map(|q| q["waiting"].as_array().cloned().unwrap_or_default())
        .map(|w| (w["conversation_id"].as_i64().expect("id"), w["position"].as_i64().expect("position"), w["eta_secs"].as_f64()))
        .collect()
}

#[tokio::test]
async fn positions_and_estimates_follow_the_queue() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (status, inbox) = app
        .send_json(Method::POST, &admin, "/api/v1/inboxes", json!({"name": "CRM", "kind": "api", "settings": {"webhook_url": "http://127.0.0.1:9/x"}}))
        .await;
    assert_eq!(status, 201);
    let (id, token) = (inbox["id"].as_i64().expect("id"), inbox["inbound_token"].as_str().expect("token").to_string());

    for contact in ["c1", "c2", "c3"] {
        post_customer_message(&app, id, &token, contact).await;
    }
    let (status, snap) = app.get_json(&admin, "/api/v1/supervisor/queues").await;
    assert_eq!(status, 200, "{snap}");
    let w = waiting(&snap);
    assert_eq!(w.iter().map(|(_, p, _)| *p).collect::<Vec<_>>(), [1, 2, 3], "FIFO positions: {w:?}");
    assert!(w.iter().all(|(_, _, eta)| eta.is_none()), "no agent staffed: no estimate");
    let first = w[0].0;

    // One agent with one slot: the oldest is taken, the others move up with an estimate of
    // (position) × mean handle time (the 180 s default, no history yet).
    let (_, agent_token) = app.available_agent(&admin, "one-slot@example.com", 1).await;
    let (_, snap) = app.get_json(&admin, "/api/v1/supervisor/queues").await;
    let w = waiting(&snap);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w.iter().all(|(c, _, _)| *c != first), "the oldest was assigned first");
    assert_eq!(w[0].1, 1);
    assert_eq!(w[0].2, Some(180.0));
    assert_eq!(w[1].2, Some(360.0));
    assert_eq!(snap["agents_by_status"]["available"], 1);

    // Agents may not read it.
    let (status, _) = app.get_json(&agent_token, "/api/v1/supervisor/queues").await;
    assert_eq!(status, 403);
    let r = app.client.get(app.url("/api/v1/supervisor/queues")).send().await.expect("get");
    assert_eq!(r.status(), 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_customers_get_their_position_as_a_throttled_message() {
    use crate::gateway::{start_fake, telegram_inbox, update, SECRET};
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (base, fake) = start_fake().await;
    let inbox = telegram_inbox(&app, &admin, &base, "webhook").await;
    let (status, body) = app
        .send_json(Method::PATCH, &admin, &format!("/api/v1/inboxes/{inbox}"), json!({"settings": {"queue_position_messages": true}}))
        .await;
    assert_eq!(status, 200, "{body}");
    let texts = || fake.sent.lock().expect("lock").iter().map(|b| (b["chat_id"].as_i64().unwrap_or(0), b["text"].as_str().unwrap_or_default().to_owned())).collect::<Vec<_>>();
    let wait_for = |n: usize| {
        let texts = &texts;
        async move {
            for _ in 0..200 {
                if texts().len() >= n {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            texts()
        }
    };
    for (n, chat) in [(1, 901), (2, 902)] {
        let r = app
            .client
            .post(app.url(&format!("/webhooks/{inbox}")))
            .header("x-telegram-bot-api-secret-token", SECRET)
            .header("content-type", "application/json")
            .body(update(n, chat, n, "hello?").to_string())
            .send()
            .await
            .expect("post");
        assert!(r.status().is_success());
    }
    let sent = wait_for(2).await;
    assert!(sent.contains(&(901, "You are number 1 in the queue.".to_string())), "{sent:?}");
    assert!(sent.contains(&(902, "You are number 2 in the queue.".to_string())), "{sent:?}");

    // An agent takes the first; the second moves up, but was told less than a minute ago.
    app.available_agent(&admin, "agent@example.com", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let sent = texts();
    assert_eq!(sent.len(), 2, "throttled: {sent:?}");
    app.stop().await;
}

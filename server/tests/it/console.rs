//! The console's endpoints: canned responses (who may write, unique shortcuts, bad shortcuts),
//! team wrap-up templates and resolving with the form (required fields enforced, values stored
//! on the conversation, nothing changed on refusal), and a contact's previous conversations.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

async fn team_inbox(app: &TestApp, admin: &str, members: &[i64]) -> (i64, i64, String) {
    let (status, team) = app.send_json(Method::POST, admin, "/api/v1/teams", json!({"name": "Support"})).await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let team_id = team["id"].as_i64().expect("team id");
    for m in members {
        let (status, body) = app.send_json(Method::POST, admin, &format!("/api/v1/teams/{team_id}/members"), json!({"user_id": m})).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let (status, inbox) = app
        .send_json(Method::POST, admin, "/api/v1/inboxes", json!({"name": "CRM", "kind": "api", "team_id": team_id, "settings": {"webhook_url": "http://127.0.0.1:9/x"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    (team_id, inbox["id"].as_i64().expect("inbox"), inbox["inbound_token"].as_str().expect("token").to_string())
}

/// A customer message through the API channel; returns the conversation id.
async fn inbound(app: &TestApp, inbox: i64, token: &str, message_id: &str, contact: &str) -> i64 {
    let r = app
        .client
        .post(app.url(&format!("/api/v1/channels/api/{inbox}/messages")))
        .bearer_auth(token)
        .json(&json!({"message_id": message_id, "contact": {"id": contact, "name": "Ada"}, "text": "hello"}))
        .send()
        .await
        .expect("inbound");
    assert!(r.status().is_success(), "inbound: {}", r.status());
    let body: Value = r.json().await.expect("inbound body");
    body["conversation_id"].as_i64().expect("conversation id")
}

async fn wait_state(app: &TestApp, token: &str, conversation: i64, state: &str) -> Value {
    for _ in 0..100 {
        let (_, c) = app.get_json(token, &format!("/api/v1/conversations/{conversation}")).await;
        if c["state"] == state {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("conversation {conversation} never became {state}");
}

#[tokio::test]
async fn canned_responses_crud() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, agent) = app.available_agent(&admin, "agent@example.com", 2).await;
    let create = |body: Value| {
        let (app, admin) = (&app, admin.clone());
        async move { app.send_json(Method::POST, &admin, "/api/v1/canned-responses", body).await }
    };

    let (status, hi) = create(json!({"shortcut": "hi", "title": "Greeting", "body": "Hello {{contact.name}}!"})).await;
    assert_eq!(status, StatusCode::CREATED, "{hi}");
    let (status, body) = create(json!({"shortcut": "hi", "title": "Again", "body": "x"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")), "{body}");
    for bad in [json!({"shortcut": "Hi There", "title": "T", "body": "B"}), json!({"shortcut": "ok", "title": " ", "body": "B"}), json!({"shortcut": "ok", "title": "T", "body": ""})] {
        let (status, body) = create(bad.clone()).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body")), "{bad} → {body}");
    }
    // Agents read but do not write.
    let (status, listed) = app.get_json(&agent, "/api/v1/canned-responses").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["body"], "Hello {{contact.name}}!");
    let (status, _) = app.send_json(Method::POST, &agent, "/api/v1/canned-responses", json!({"shortcut": "a", "title": "T", "body": "B"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let id = hi["id"].as_i64().expect("id");
    let (status, bye) = create(json!({"shortcut": "bye", "title": "Bye", "body": "Goodbye"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app.send_json(Method::PUT, &admin, &format!("/api/v1/canned-responses/{id}"), json!({"shortcut": "bye", "title": "T", "body": "B"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, updated) = app.send_json(Method::PUT, &admin, &format!("/api/v1/canned-responses/{id}"), json!({"shortcut": "hello", "title": "Greeting", "body": "Hi!"})).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!((updated["shortcut"].as_str(), updated["body"].as_str()), (Some("hello"), Some("Hi!")));
    let bye_id = bye["id"].as_i64().expect("id");
    let r = app.client.delete(app.url(&format!("/api/v1/canned-responses/{bye_id}"))).bearer_auth(&admin).send().await.expect("delete");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.client.delete(app.url(&format!("/api/v1/canned-responses/{bye_id}"))).bearer_auth(&admin).send().await.expect("delete");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (_, listed) = app.get_json(&agent, "/api/v1/canned-responses").await;
    let shortcuts: Vec<&str> = listed.as_array().expect("list").iter().filter_map(|c| c["shortcut"].as_str()).collect();
    assert_eq!(shortcuts, vec!["hello"]);
    app.stop().await;
}

#[tokio::test]
async fn resolve_with_wrap_up_form() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (agent_id, agent) = app.available_agent(&admin, "agent@example.com", 5).await;
    let (team, inbox, token) = team_inbox(&app, &admin, &[agent_id]).await;
    let path = format!("/api/v1/teams/{team}/wrap-up-template");

    let (status, body) = app.get_json(&agent, &path).await;
    assert_eq!((status, body["template"].clone()), (StatusCode::OK, Value::Null), "{body}");
    // Every problem is reported with its path, and nothing is stored.
    let (status, body) = app
        .send_json(Method::PUT, &admin, &path, json!({"fields": [{"key": "Topic!", "label": "Topic", "kind": "select"}, {"key": "n", "label": "", "kind": "radio"}]}))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_wrap_up_template")), "{body}");
    let paths: Vec<&str> = body["error"]["errors"].as_array().expect("errors").iter().filter_map(|e| e["path"].as_str()).collect();
    assert_eq!(paths, vec!["fields[0].key", "fields[0].options", "fields[1].label", "fields[1].kind"]);
    assert_eq!(app.get_json(&agent, &path).await.1["template"], Value::Null);
    let (status, _) = app.send_json(Method::PUT, &agent, &path, json!({"fields": []})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let template = json!({"fields": [
        {"key": "topic", "label": "Topic", "kind": "select", "options": ["billing", "shipping"], "required": true},
        {"key": "summary", "label": "Summary", "kind": "text", "required": true},
        {"key": "callback", "label": "Call back", "kind": "checkbox"},
    ]});
    let (status, body) = app.send_json(Method::PUT, &admin, &path, template.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.get_json(&agent, &path).await.1["template"]["fields"][0]["options"], json!(["billing", "shipping"]));

    let conversation = inbound(&app, inbox, &token, "m-1", "c-1").await;
    wait_state(&app, &agent, conversation, "assigned").await;
    let resolve = format!("/api/v1/conversations/{conversation}/resolve");
    for (values, bad_path) in [
        (None, "wrap_up.topic"),
        (Some(json!({"topic": "billing"})), "wrap_up.summary"),
        (Some(json!({"topic": "returns", "summary": "x"})), "wrap_up.topic"),
        (Some(json!({"topic": "billing", "summary": "x", "callback": "yes"})), "wrap_up.callback"),
        (Some(json!({"topic": "billing", "summary": "x", "mood": "happy"})), "wrap_up.mood"),
    ] {
        let mut body = json!({"reason": "resolved"});
        if let Some(v) = &values {
            body["wrap_up"] = v.clone();
        }
        let (status, answer) = app.send_json(Method::POST, &agent, &resolve, body).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_wrap_up")), "{values:?} → {answer}");
        let paths: Vec<&str> = answer["error"]["errors"].as_array().expect("errors").iter().filter_map(|e| e["path"].as_str()).collect();
        assert!(paths.contains(&bad_path), "{values:?}: {paths:?}");
        assert_eq!(wait_state(&app, &agent, conversation, "assigned").await["state"], "assigned", "a refused resolve changes nothing");
    }
    let values = json!({"topic": "billing", "summary": "  refund sent ", "callback": true});
    let (status, resolved) = app.send_json(Method::POST, &agent, &resolve, json!({"reason": "resolved", "wrap_up": values})).await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["state"], "resolved");
    assert_eq!(resolved["attributes"]["wrap_up"], json!({"topic": "billing", "summary": "refund sent", "callback": true}));
    let (_, read) = app.get_json(&admin, &format!("/api/v1/conversations/{conversation}")).await;
    assert_eq!(read["attributes"]["wrap_up"]["topic"], "billing");
    assert_eq!(read["close_reason"], "resolved");

    // Closing as spam does not require the form.
    let spam = inbound(&app, inbox, &token, "m-2", "c-2").await;
    wait_state(&app, &agent, spam, "assigned").await;
    let (status, closed) = app.send_json(Method::POST, &agent, &format!("/api/v1/conversations/{spam}/resolve"), json!({"reason": "spam"})).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!((closed["state"].as_str(), closed["attributes"].get("wrap_up")), (Some("closed"), None));

    // `{"fields": []}` removes the form: resolving needs nothing again.
    let (status, body) = app.send_json(Method::PUT, &admin, &path, json!({"fields": []})).await;
    assert_eq!((status, body["template"].clone()), (StatusCode::OK, Value::Null));
    let third = inbound(&app, inbox, &token, "m-3", "c-3").await;
    wait_state(&app, &agent, third, "assigned").await;
    let (status, _) = app.send_json(Method::POST, &agent, &format!("/api/v1/conversations/{third}/resolve"), json!({"reason": "resolved"})).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn contact_history() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (agent_id, agent) = app.available_agent(&admin, "agent@example.com", 5).await;
    let (other_id, other) = app.available_agent(&admin, "other@example.com", 5).await;
    let (_, inbox, token) = team_inbox(&app, &admin, &[agent_id]).await;
    let _ = other_id;

    let first = inbound(&app, inbox, &token, "m-1", "c-1").await;
    wait_state(&app, &agent, first, "assigned").await;
    let (status, _) = app.send_json(Method::POST, &agent, &format!("/api/v1/conversations/{first}/resolve"), json!({"reason": "resolved"})).await;
    assert_eq!(status, StatusCode::OK);
    let second = inbound(&app, inbox, &token, "m-2", "c-1").await;
    assert_ne!(first, second);
    let view = wait_state(&app, &agent, second, "assigned").await;
    let contact = view["contact"]["id"].as_i64().expect("contact");
    let stranger = inbound(&app, inbox, &token, "m-3", "c-2").await;

    let (status, history) = app.get_json(&agent, &format!("/api/v1/contacts/{contact}/conversations")).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let ids: Vec<i64> = history.as_array().expect("list").iter().filter_map(|c| c["id"].as_i64()).collect();
    assert_eq!(ids, vec![second, first]);
    assert!(!ids.contains(&stranger));
    assert_eq!(history[1]["state"], "resolved");
    assert_eq!(history[1]["contact"]["id"], contact);
    let (status, messages) = app.get_json(&agent, &format!("/api/v1/contacts/{contact}/conversations/{first}/messages")).await;
    assert_eq!(status, StatusCode::OK, "{messages}");
    assert_eq!(messages[0]["text"], "hello");
    // Another contact's conversation is not reachable through this contact.
    let (status, _) = app.get_json(&agent, &format!("/api/v1/contacts/{contact}/conversations/{stranger}/messages")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // An agent holding none of the contact's conversations may not look.
    let (status, _) = app.get_json(&other, &format!("/api/v1/contacts/{contact}/conversations")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get_json(&admin, "/api/v1/contacts/999999/conversations").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Paging back through a history: the newest page first, then the one before it.
    for n in 3..=6 {
        inbound(&app, inbox, &token, &format!("m-{n}0"), "c-1").await;
    }
    let (status, newest) = app.get_json(&agent, &format!("/api/v1/conversations/{second}/messages?before=9007199254740991&limit=2")).await;
    assert_eq!(status, StatusCode::OK, "{newest}");
    let texts = |v: &Value| v.as_array().expect("list").iter().map(|m| m["id"].as_i64().expect("id")).collect::<Vec<_>>();
    let (_, all) = app.get_json(&agent, &format!("/api/v1/conversations/{second}/messages?limit=100")).await;
    let all = texts(&all);
    assert_eq!(all.len(), 5, "the second conversation's first message and four more");
    assert_eq!(texts(&newest), all[3..].to_vec());
    let (_, older) = app.get_json(&agent, &format!("/api/v1/conversations/{second}/messages?before={}&limit=2", all[3])).await;
    assert_eq!(texts(&older), all[1..3].to_vec());
    let (status, body) = app.get_json(&agent, &format!("/api/v1/conversations/{second}/messages?before=10&after=1")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")));
    app.stop().await;
}

#[tokio::test]
async fn per_queue_statistics() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (agent_id, agent) = app.available_agent(&admin, "agent@example.com", 5).await;
    let (care, care_inbox, care_token) = team_inbox(&app, &admin, &[agent_id]).await;
    // A second team nobody serves: its customer waits and gives up.
    let (status, other) = app.send_json(Method::POST, &admin, "/api/v1/teams", json!({"name": "Night"})).await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    let night = other["id"].as_i64().expect("team");
    let (status, inbox) = app
        .send_json(Method::POST, &admin, "/api/v1/inboxes", json!({"name": "Night line", "kind": "api", "team_id": night, "settings": {"webhook_url": "http://127.0.0.1:9/x"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let (night_inbox, night_token) = (inbox["id"].as_i64().expect("inbox"), inbox["inbound_token"].as_str().expect("token").to_string());

    let answered = inbound(&app, care_inbox, &care_token, "m-1", "c-1").await;
    wait_state(&app, &agent, answered, "assigned").await;
    let gone = inbound(&app, night_inbox, &night_token, "m-2", "c-2").await;
    let (status, body) = app.send_json(Method::POST, &admin, &format!("/api/v1/conversations/{gone}/resolve"), json!({"reason": "customer_left"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "abandoned");

    let (status, snapshot) = app.get_json(&admin, "/api/v1/supervisor/queues").await;
    assert_eq!(status, StatusCode::OK, "{snapshot}");
    let stats = snapshot["queue_stats"].as_array().expect("queue_stats");
    let of = |team: i64| stats.iter().find(|q| q["team_id"] == team).unwrap_or_else(|| panic!("no stats for team {team}: {snapshot}"));
    assert_eq!(of(care)["service_level"], 1.0);
    assert!(of(care)["average_speed_of_answer_secs"].as_f64().is_some_and(|s| s >= 0.0));
    assert_eq!(of(care)["abandonment_rate"], Value::Null, "nothing ended there");
    assert_eq!(of(night)["service_level"], 0.0);
    assert_eq!(of(night)["average_speed_of_answer_secs"], Value::Null);
    assert_eq!(of(night)["abandonment_rate"], 1.0);
    // The tenant-wide figures cover both.
    assert_eq!(snapshot["service_level"], 0.5);
    assert_eq!(snapshot["abandonment_rate"], 1.0);
    app.stop().await;
}

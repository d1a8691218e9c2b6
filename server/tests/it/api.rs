//! The REST API end to end: login, inbox credentials, API-channel ingestion (idempotency, auth,
//! error codes, body limit), tenant isolation and the OpenAPI document.

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard_server::settings::{Overrides, Settings};

use crate::helpers::{spawn_app, spawn_app_with, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

/// Creates an API inbox as the admin; returns (inbox id, ingestion token, full create answer).
async fn create_api_inbox(app: &TestApp, admin: &str) -> (i64, String, Value) {
    let r = app
        .client
        .post(app.url("/api/v1/inboxes"))
        .bearer_auth(admin)
        .json(&json!({"name": "CRM", "kind": "api", "settings": {"webhook_url": "http://127.0.0.1:9/hook"}}))
        .send()
        .await
        .expect("create inbox");
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.expect("json");
    let id = body["id"].as_i64().expect("inbox id");
    let token = body["inbound_token"].as_str().expect("inbound_token").to_string();
    (id, token, body)
}

async fn post_channel(app: &TestApp, inbox: i64, token: Option<&str>, body: String) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/api/v1/channels/api/{inbox}/messages")))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("channel post")
}

async fn error_code(r: reqwest::Response) -> String {
    let body: Value = r.json().await.expect("error body is JSON");
    body["error"]["code"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn login_answers_the_same_for_unknown_email_and_wrong_password() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let (status, me) = app.get_json(&token, "/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], ADMIN_EMAIL);
    assert!(me.get("password_hash").is_none());

    for (email, password) in [(ADMIN_EMAIL, "wrong-password-123"), ("nobody@example.com", ADMIN_PASSWORD)] {
        let r = app.client.post(app.url("/api/v1/auth/login")).json(&json!({"email": email, "password": password})).send().await.expect("login");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(r).await, "invalid_credentials");
    }

    let r = app.client.post(app.url("/api/v1/auth/logout")).bearer_auth(&token).send().await.expect("logout");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, _) = app.get_json(&token, "/api/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the session ends at logout");
    app.stop().await;
}

#[tokio::test]
async fn api_inbox_credentials_are_shown_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (id, token, created) = create_api_inbox(&app, &admin).await;
    assert!(token.starts_with("sbi_"));
    assert!(created["webhook_secret"].as_str().is_some_and(|s| s.starts_with("whsec_")));
    assert!(created.get("secrets").is_none());

    let (status, inbox) = app.get_json(&admin, &format!("/api/v1/inboxes/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let text = inbox.to_string();
    assert!(!text.contains(&token) && !text.contains("whsec_"), "secrets leaked: {text}");
    assert_eq!(inbox["settings"]["webhook_url"], "http://127.0.0.1:9/hook");

    let r = app
        .client
        .post(app.url("/api/v1/inboxes"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Bad", "kind": "api", "settings": {"webhook_url": "ftp://example.com"}}))
        .send()
        .await
        .expect("create inbox");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(r).await, "invalid_body");

    // Rotation: the old token stops working, the new one works.
    let r = app.client.post(app.url(&format!("/api/v1/inboxes/{id}/rotate-token"))).bearer_auth(&admin).send().await.expect("rotate");
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = r.json().await.expect("json");
    let new_token = rotated["inbound_token"].as_str().expect("new token").to_string();
    let msg = json!({"message_id": "m-rot", "contact": {"id": "c-1"}, "text": "hi"}).to_string();
    assert_eq!(post_channel(&app, id, Some(&token), msg.clone()).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(post_channel(&app, id, Some(&new_token), msg).await.status(), StatusCode::CREATED);
    app.stop().await;
}

#[tokio::test]
async fn api_channel_is_idempotent_and_authenticated() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (inbox, token, _) = create_api_inbox(&app, &admin).await;
    let msg = json!({"message_id": "crm-42", "contact": {"id": "cust-7", "name": "Ann"}, "text": "Where is my order?"}).to_string();

    // Wrong or missing token: 401 and nothing stored.
    let r = post_channel(&app, inbox, Some("sbi_wrong"), msg.clone()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(post_channel(&app, inbox, None, msg.clone()).await.status(), StatusCode::UNAUTHORIZED);
    let (_, conversations) = app.get_json(&admin, "/api/v1/conversations").await;
    assert_eq!(conversations.as_array().map(Vec::len), Some(0), "a refused post stored something");

    let r = post_channel(&app, inbox, Some(&token), msg.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let first: Value = r.json().await.expect("json");
    assert_eq!(first["duplicate"], false);
    let conversation = first["conversation_id"].as_i64().expect("conversation id");

    let r = post_channel(&app, inbox, Some(&token), msg).await;
    assert_eq!(r.status(), StatusCode::OK);
    let second: Value = r.json().await.expect("json");
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["message"]["id"], first["message"]["id"]);

    let (status, messages) = app.get_json(&admin, &format!("/api/v1/conversations/{conversation}/messages")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(messages.as_array().map(Vec::len), Some(1), "redelivery stored twice: {messages}");

    let (status, view) = app.get_json(&admin, &format!("/api/v1/conversations/{conversation}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["contact"]["identifiers"], json!(["cust-7"]));
    app.stop().await;
}

#[tokio::test]
async fn api_channel_errors_have_stable_codes() {
    let app = spawn_app_with(|s| s.max_body_bytes = 4096).await;
    let admin = app.admin_token().await;
    let (inbox, token, _) = create_api_inbox(&app, &admin).await;

    let r = post_channel(&app, inbox, Some(&token), "{\"message_id\": ".into()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "malformed_json");

    let r = post_channel(&app, inbox, Some(&token), json!({"message_id": 5, "contact": "x"}).to_string()).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(r).await, "invalid_body");

    let too_long = json!({"message_id": "x".repeat(201), "contact": {"id": "c"}, "text": "hi"}).to_string();
    let r = post_channel(&app, inbox, Some(&token), too_long).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(r).await, "invalid_body");

    let ok = json!({"message_id": "m", "contact": {"id": "c"}, "text": "hi"}).to_string();
    let r = post_channel(&app, 999_999, Some(&token), ok).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "not_found");

    let huge = json!({"message_id": "big", "contact": {"id": "c"}, "text": "x".repeat(10_000)}).to_string();
    let r = post_channel(&app, inbox, Some(&token), huge).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(r).await, "payload_too_large");
    app.stop().await;
}

#[tokio::test]
async fn another_tenant_sees_404() {
    let db = std::env::temp_dir().join(format!(
        "switchboard-api-it-{}-{}.db",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
    ));
    let database_url = format!("sqlite://{}?mode=rwc", db.display());
    let url = database_url.clone();
    let app = spawn_app_with(move |s| s.database_url = Some(url.into())).await;
    let admin_a = app.admin_token().await;
    let (inbox, token, _) = create_api_inbox(&app, &admin_a).await;
    let msg = json!({"message_id": "a-1", "contact": {"id": "cust-a"}, "text": "hello"}).to_string();
    let r = post_channel(&app, inbox, Some(&token), msg).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let conversation = r.json::<Value>().await.expect("json")["conversation_id"].as_i64().expect("id");

    // Tenant B and its admin, created straight in the same database.
    let mut settings = Settings::load(&Overrides { database_url: Some(database_url), ..Default::default() }).expect("settings");
    settings.security.secrets_key = Some(crate::helpers::TEST_SECRETS_KEY.to_string().into());
    let store = switchboard_server::open_store(&settings).await.expect("store");
    let now = switchboard_server::time::now_ms();
    let tenant_b = store.create_tenant("Other", "other", now).await.expect("tenant b");
    let hash = switchboard_server::auth::hash_password("tenant-b-password").expect("hash");
    store
        .create_user(
            switchboard_core::domain::NewUser {
                tenant_id: tenant_b.id,
                email: "admin-b@example.com".into(),
                name: "B".into(),
                role: switchboard_core::domain::Role::Admin,
                password_hash: hash,
                capacity: 5,
            },
            now,
        )
        .await
        .expect("admin b");
    let admin_b = app.login("admin-b@example.com", "tenant-b-password").await;

    for path in [
        format!("/api/v1/conversations/{conversation}"),
        format!("/api/v1/conversations/{conversation}/messages"),
        format!("/api/v1/inboxes/{inbox}"),
    ] {
        let (status, body) = app.get_json(&admin_b, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} leaked across tenants: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (_, listed) = app.get_json(&admin_b, "/api/v1/conversations").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(0));
    app.stop().await;
    let _ = std::fs::remove_file(&db);
}

#[tokio::test]
async fn openapi_document_lists_every_area() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/api/openapi.json")).send().await.expect("openapi");
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.expect("valid JSON");
    let paths = doc["paths"].as_object().expect("paths");
    for expected in [
        "/api/v1/auth/login",
        "/api/v1/me",
        "/api/v1/users",
        "/api/v1/teams",
        "/api/v1/inboxes/{id}/rotate-token",
        "/api/v1/channels/api/{inbox_id}/messages",
        "/api/v1/conversations/{id}/resolve",
        "/api/v1/outbox",
        "/api/v1/api-tokens",
    ] {
        assert!(paths.contains_key(expected), "OpenAPI lacks {expected}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn agents_work_their_own_conversations() {
    use reqwest::Method;
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let agent = json!({"email": "Agent@Example.com", "name": "Ada", "role": "agent", "password": "agent-password-1"});
    let (status, created) = app.send_json(Method::POST, &admin, "/api/v1/users", agent.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["email"], "agent@example.com");
    assert_eq!(created["capacity"], 5);
    let agent_id = created["id"].as_i64().expect("id");
    let (status, body) = app.send_json(Method::POST, &admin, "/api/v1/users", agent).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")));
    let short = json!({"email": "b@example.com", "name": "B", "role": "agent", "password": "short"});
    assert_eq!(app.send_json(Method::POST, &admin, "/api/v1/users", short).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let bad_role = json!({"email": "c@example.com", "name": "C", "role": "root", "password": "long-enough-pw"});
    assert_eq!(app.send_json(Method::POST, &admin, "/api/v1/users", bad_role).await.0, StatusCode::UNPROCESSABLE_ENTITY);

    let (inbox, token, _) = create_api_inbox(&app, &admin).await;
    let msg = json!({"message_id": "m-1", "contact": {"id": "cust-1"}, "text": "help"}).to_string();
    let conversation = post_channel(&app, inbox, Some(&token), msg).await.json::<Value>().await.expect("json")["conversation_id"]
        .as_i64()
        .expect("id");

    let me = app.login("agent@example.com", "agent-password-1").await;
    let (status, _) = app.get_json(&me, "/api/v1/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "agents do not list users");
    let (_, mine) = app.get_json(&me, "/api/v1/conversations").await;
    assert_eq!(mine.as_array().map(Vec::len), Some(0));
    let (status, _) = app.get_json(&me, &format!("/api/v1/conversations/{conversation}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Becoming available pulls the queued conversation.
    let (status, _) = app.send_json(Method::PUT, &me, &format!("/api/v1/users/{agent_id}/status"), json!({"status": "available"})).await;
    assert_eq!(status, StatusCode::OK);
    let mut assigned = false;
    for _ in 0..40 {
        let (_, mine) = app.get_json(&me, "/api/v1/conversations").await;
        if mine.as_array().is_some_and(|a| a.len() == 1) {
            assigned = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(assigned, "the conversation was not assigned to the available agent");

    let path = format!("/api/v1/conversations/{conversation}/messages");
    let (status, reply) = app.send_json(Method::POST, &me, &path, json!({"text": "On it", "client_message_id": "c-1"})).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let (status, again) = app.send_json(Method::POST, &me, &path, json!({"text": "On it", "client_message_id": "c-1"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["id"], reply["id"], "a resend is stored once");
    let (_, messages) = app.get_json(&me, &path).await;
    assert_eq!(messages.as_array().map(Vec::len), Some(2));

    let resolve = format!("/api/v1/conversations/{conversation}/resolve");
    let (status, body) = app.send_json(Method::POST, &me, &resolve, json!({"reason": "bored"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body")));
    let (status, body) = app.send_json(Method::POST, &me, &resolve, json!({"reason": "resolved"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "resolved");
    assert_eq!(app.send_json(Method::POST, &me, &resolve, json!({"reason": "resolved"})).await.0, StatusCode::CONFLICT);

    // An API key may set business data; an agent may not.
    let biz = format!("/api/v1/conversations/{conversation}/biz_data");
    assert_eq!(app.send_json(Method::PUT, &me, &biz, json!({"order": 1})).await.0, StatusCode::FORBIDDEN);
    let (status, key) = app.send_json(Method::POST, &admin, "/api/v1/api-tokens", json!({"name": "crm", "role": "agent"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let key = key["token"].as_str().expect("token").to_string();
    assert!(key.starts_with("sbk_"));
    let (status, body) = app.send_json(Method::PUT, &key, &biz, json!({"order": 1})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["biz_data"], json!({"order": 1}));
    assert_eq!(app.send_json(Method::PUT, &key, &biz, json!([1])).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, listed) = app.get_json(&admin, "/api/v1/api-tokens").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!listed.to_string().contains(&key), "API keys are shown only once");

    // The reply to the API inbox is in the outbox (its webhook is unreachable).
    let (status, outbox) = app.get_json(&admin, "/api/v1/outbox").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outbox.as_array().map(Vec::len), Some(1), "{outbox}");
    let (status, _) = app.get_json(&admin, "/api/v1/outbox?status=lost").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, events) = app.get_json(&admin, &format!("/api/v1/conversations/{conversation}/events")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(events.as_array().is_some_and(|e| !e.is_empty()));
    app.stop().await;
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_email_out() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, _) = app.available_agent(&admin, "target@example.com", 1).await;
    let attempt = |password: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/api/v1/auth/login"))
                .json(&json!({"email": "target@example.com", "password": password}))
                .send()
                .await
                .expect("login")
        }
    };
    for _ in 0..5 {
        assert_eq!(attempt("wrong-password-000").await.status(), StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right password is refused now, with a machine-readable code.
    let r = attempt("agent-password-123").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = r.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!(retry_after > 800 && retry_after <= 900, "about 15 minutes: {retry_after}");
    assert_eq!(error_code(r).await, "too_many_attempts");
    // Other accounts are unaffected.
    assert!(app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.starts_with("sbs_"));
    app.stop().await;
}

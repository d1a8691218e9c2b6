//! Hostile-input and secrets checks through the real server: inbox secrets sealed at rest and
//! failing closed under a wrong key, the login lockout shared by two nodes over Redis, webhook
//! replay windows, and the audit log.

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard_server::settings::{Overrides, Settings};

use crate::helpers::{spawn_app_with, TEST_SECRETS_KEY};

fn scratch_sqlite(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-security-{name}-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

fn settings_for(db: &std::path::Path, dir: &std::path::Path, key: Option<&str>) -> Settings {
    let mut s = Settings::load(&Overrides {
        database_url: Some(format!("sqlite://{}?mode=rwc", db.display())),
        data_dir: Some(dir.to_owned()),
        ..Default::default()
    })
    .expect("settings");
    s.security.secrets_key = key.map(|k| k.to_string().into());
    s
}

#[tokio::test]
async fn inbox_secrets_are_sealed_in_the_database_and_a_wrong_key_fails_closed() {
    let dir = scratch_sqlite("sealed");
    let db = dir.join("sb.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let app = spawn_app_with(|s| s.database_url = Some(url.clone().into())).await;
    let admin = app.admin_token().await;
    let (status, inbox) = app
        .send_json(
            reqwest::Method::POST,
            &admin,
            "/api/v1/inboxes",
            json!({"name": "TG", "kind": "telegram", "secrets": {"bot_token": "42:PLAINTEXT-BOT-TOKEN", "webhook_secret": "PLAINTEXT-HOOK"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let id = switchboard_core::ids::InboxId(inbox["inbox"]["id"].as_i64().or(inbox["id"].as_i64()).expect("inbox id"));
    app.stop().await;

    // The column holds ciphertext only; the right key opens it.
    let store =
        switchboard_server::open_sql_store(&settings_for(&db, &dir, Some(TEST_SECRETS_KEY))).await.expect("store");
    let raw = store.stored_inbox_secrets(id).await.expect("read").expect("row");
    assert!(raw.starts_with("sbenc:v1:") && !raw.contains("PLAINTEXT"), "plaintext at rest: {raw}");
    store.close().await;
    // The database file as a whole never holds the token either (WAL included).
    for file in std::fs::read_dir(&dir).expect("dir").flatten() {
        let bytes = std::fs::read(file.path()).expect("read file");
        assert!(!bytes.windows(9).any(|w| w == b"PLAINTEXT"), "plaintext in {}", file.path().display());
    }

    // A node with another key refuses to start, naming the setting and the key id it lacks.
    let other_key = switchboard_storage::secrets::generate_key();
    let err = match switchboard_server::open_store(&settings_for(&db, &dir, Some(&other_key))).await {
        Ok(_) => panic!("a wrong key must not open the store"),
        Err(e) => format!("{e:#}"),
    };
    let wanted =
        switchboard_storage::secrets::key_id(&switchboard_storage::secrets::parse_key(TEST_SECRETS_KEY).expect("key"));
    assert!(err.contains(&wanted) && err.contains("security.secrets_key") && err.contains("not configured"), "{err}");
    assert!(!err.contains("PLAINTEXT"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rotate-secrets`'s path: the new key as primary, the old one as previous; afterwards only the
/// new key is needed.
#[tokio::test]
async fn rotating_the_key_reseals_every_inbox() {
    let dir = scratch_sqlite("rotate");
    let db = dir.join("sb.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let app = spawn_app_with(|s| s.database_url = Some(url.clone().into())).await;
    let admin = app.admin_token().await;
    let (status, body) = app
        .send_json(
            reqwest::Method::POST,
            &admin,
            "/api/v1/inboxes",
            json!({"name": "LINE", "kind": "line", "secrets": {"channel_secret": "ROTATE-ME"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.stop().await;

    let new_key = switchboard_storage::secrets::generate_key();
    let mut rotating = settings_for(&db, &dir, Some(&new_key));
    rotating.security.previous_secrets_keys = Some(TEST_SECRETS_KEY.to_string().into());
    let store = switchboard_server::open_sql_store(&rotating).await.expect("store");
    let report = store.reseal_inbox_secrets(true).await.expect("rotate");
    assert!(report.resealed >= 1, "{report:?}");
    store.close().await;
    let only_new = switchboard_server::open_store(&settings_for(&db, &dir, Some(&new_key))).await;
    assert!(only_new.is_ok(), "after rotation the old key is not needed");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn code(r: reqwest::Response) -> String {
    let body: Value = r.json().await.unwrap_or(Value::Null);
    body["error"]["code"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn admin_actions_land_in_the_audit_log_without_secrets() {
    let app = spawn_app_with(|_| {}).await;
    let admin = app.admin_token().await;
    let post = |path: &'static str, body: Value| {
        let (app, admin) = (&app, admin.clone());
        async move { app.send_json(reqwest::Method::POST, &admin, path, body).await }
    };
    let (s, user) = post(
        "/api/v1/users",
        json!({"email": "a1@example.com", "name": "A", "role": "agent", "password": "agent-password-123"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{user}");
    let user_id = user["id"].as_i64().expect("id");
    let (s, inbox) =
        post("/api/v1/inboxes", json!({"name": "TG", "kind": "telegram", "secrets": {"bot_token": "1:AUDIT-SECRET"}}))
            .await;
    assert_eq!(s, StatusCode::CREATED, "{inbox}");
    let inbox_id = inbox["id"].as_i64().expect("id");
    let (s, _) = app
        .send_json(
            reqwest::Method::PATCH,
            &admin,
            &format!("/api/v1/inboxes/{inbox_id}"),
            json!({"secrets": {"bot_token": "2:AUDIT-ROTATED"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .send_json(
            reqwest::Method::PATCH,
            &admin,
            &format!("/api/v1/users/{user_id}"),
            json!({"role": "supervisor", "password": "new-password-456"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .send_json(reqwest::Method::PUT, &admin, &format!("/api/v1/users/{user_id}/status"), json!({"status": "away"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, key) = post("/api/v1/api-tokens", json!({"name": "ci", "role": "admin"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let key_token = key["token"].as_str().expect("token").to_string();
    // An API key acting is named by its id.
    let (s, _) = app.send_json(reqwest::Method::POST, &key_token, "/api/v1/teams", json!({"name": "Keyed"})).await;
    assert_eq!(s, StatusCode::CREATED);

    let (s, page) = app.get_json(&admin, "/api/v1/audit-log").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let actions: Vec<&str> =
        page["entries"].as_array().expect("entries").iter().map(|e| e["action"].as_str().unwrap_or("")).collect();
    assert_eq!(
        actions,
        [
            "team.create",
            "api_token.create",
            "user.status.force",
            "user.update",
            "inbox.secrets.update",
            "inbox.create",
            "user.create"
        ],
        "{page}"
    );
    let text = page.to_string();
    for secret in ["AUDIT-SECRET", "AUDIT-ROTATED", "new-password-456", &key_token] {
        assert!(!text.contains(secret), "{secret} in the audit log: {text}");
    }
    let entries = page["entries"].as_array().expect("entries");
    assert_eq!(entries[0]["actor_label"], format!("api-key:{}", key["id"]));
    assert_eq!(entries[3]["detail"]["fields"], json!(["role", "password"]));
    assert_eq!(entries[3]["detail"]["role"], "supervisor");
    assert_eq!(entries[4]["detail"]["secrets"], json!(["bot_token"]));
    assert_eq!(entries[6]["actor_label"], crate::helpers::ADMIN_EMAIL);

    // Filters and the cursor.
    let (_, only) = app.get_json(&admin, &format!("/api/v1/audit-log?target_type=inbox&target_id={inbox_id}")).await;
    assert_eq!(only["entries"].as_array().map(Vec::len), Some(2), "{only}");
    let (_, p1) = app.get_json(&admin, "/api/v1/audit-log?limit=4").await;
    let cursor = p1["next_cursor"].as_i64().expect("a next page");
    let (_, p2) = app.get_json(&admin, &format!("/api/v1/audit-log?limit=4&cursor={cursor}")).await;
    let rest: Vec<&str> =
        p2["entries"].as_array().expect("entries").iter().map(|e| e["action"].as_str().unwrap_or("")).collect();
    assert_eq!(rest, ["inbox.secrets.update", "inbox.create", "user.create"]);
    assert!(p2.get("next_cursor").is_none(), "last page: {p2}");
    // Bad input is refused with a code.
    let r = app.client.get(app.url("/api/v1/audit-log?limit=0")).bearer_auth(&admin).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Canned responses and wrap-up templates are audited too.
    let (s, canned) =
        post("/api/v1/canned-responses", json!({"shortcut": "hello", "title": "Hello", "body": "Hi!"})).await;
    assert_eq!(s, StatusCode::CREATED, "{canned}");
    let (_, found) = app.get_json(&admin, "/api/v1/audit-log?action=canned.create").await;
    assert_eq!(found["entries"][0]["target_id"], canned["id"].to_string(), "{found}");
    assert_eq!(found["entries"][0]["detail"]["shortcut"], "hello");
    // Agents may not read it.
    let agent = app.login("a1@example.com", "new-password-456").await;
    assert_eq!(app.get_json(&agent, "/api/v1/audit-log").await.0, StatusCode::FORBIDDEN);
    app.stop().await;
}

/// Two nodes on one Postgres and one Redis: wrong passwords tried on either node count together,
/// so the fifth (3 on A, 2 on B) locks the email out on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_lockout_is_counted_across_nodes() {
    use switchboard_storage::{testkit, Dialect};
    let redis = std::env::var("SWITCHBOARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis_up = switchboard_bus::RedisBus::connect(&redis, "sb-probe:").await.is_ok();
    if !testkit::server_reachable(Dialect::Postgres).await || !redis_up {
        assert!(!testkit::require_all(), "Postgres or Redis unreachable and SWITCHBOARD_TEST_REQUIRE_ALL is set");
        eprintln!("note: skipping: Postgres or Redis unreachable");
        return;
    }
    let db = testkit::scratch_database_url(Dialect::Postgres).await;
    let prefix = format!("sbtest-lockout-{}:", rand_suffix());
    let node = |db: String, redis: String, prefix: String| {
        spawn_app_with(move |s| {
            s.database_url = Some(db.into());
            s.redis_url = Some(redis.into());
            s.redis_prefix = prefix;
        })
    };
    let a = node(db.clone(), redis.clone(), prefix.clone()).await;
    let b = node(db.clone(), redis.clone(), prefix.clone()).await;
    let admin = a.admin_token().await;
    let (status, _) = a
        .send_json(
            reqwest::Method::POST,
            &admin,
            "/api/v1/users",
            json!({"email": "target@example.com", "name": "T", "role": "agent", "password": "agent-password-123"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let attempt = |app: &crate::helpers::TestApp, password: &'static str| {
        let request = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": "target@example.com", "password": password}));
        async move { request.send().await.expect("login") }
    };
    for i in 0..5 {
        let app = if i < 3 { &a } else { &b };
        assert_eq!(attempt(app, "wrong-password-000").await.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    for app in [&a, &b] {
        let r = attempt(app, "agent-password-123").await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "locked on every node");
        let retry_after: u64 = r.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
        assert!(retry_after > 800 && retry_after <= 901, "about 15 minutes: {retry_after}");
        assert_eq!(code(r).await, "too_many_attempts");
    }
    a.stop().await;
    b.stop().await;
    testkit::drop_scratch_database(&db).await;
}

/// WeChat signs its `timestamp`: a validly signed push older than the replay window (or from too
/// far ahead) is refused with 401 `stale_request` and nothing is stored; a fresh one is taken.
#[tokio::test]
async fn stale_signed_wechat_pushes_are_refused() {
    let app = spawn_app_with(|s| s.security.webhook_max_age_secs = 300).await;
    let admin = app.admin_token().await;
    let (status, inbox) = app
        .send_json(
            reqwest::Method::POST,
            &admin,
            "/api/v1/inboxes",
            json!({"name": "WX", "kind": "wechat", "settings": {"app_id": "wx1"}, "secrets": {"token": "wx-token", "encoding_aes_key": ""}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let id = inbox["id"].as_i64().expect("id");
    let now = switchboard_server::time::now_ms() / 1000;
    let push = |timestamp: i64, msg_id: i64| {
        let ts = timestamp.to_string();
        let signature = switchboard_gateway::wechat::signature(&["wx-token", &ts, "n1"]);
        let xml = format!(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[OPENID_1]]></FromUserName><CreateTime>{ts}</CreateTime>\
             <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>{msg_id}</MsgId></xml>"
        );
        app.client
            .post(app.url(&format!("/webhooks/{id}?signature={signature}&timestamp={ts}&nonce=n1")))
            .body(xml)
            .send()
    };
    for (when, label) in [(now - 301, "six minutes old"), (now - 86_400, "a day old"), (now + 400, "from the future")] {
        let r = push(when, 1).await.expect("post");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{label}");
        assert_eq!(code(r).await, "stale_request", "{label}");
    }
    let (_, listed) = app.get_json(&admin, "/api/v1/conversations").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "nothing stored: {listed}");
    // A forged signature is still `invalid_signature`, whatever the timestamp.
    let r = app
        .client
        .post(app.url(&format!("/webhooks/{id}?signature=forged&timestamp={}&nonce=n1", now - 10_000)))
        .body("<xml/>")
        .send()
        .await
        .expect("post");
    assert_eq!(code(r).await, "invalid_signature");
    let r = push(now - 60, 2).await.expect("post");
    assert_eq!(r.status(), StatusCode::OK, "a minute old is inside the window");
    let (_, listed) = app.get_json(&admin, "/api/v1/conversations").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    app.stop().await;
}

/// The API channel accepts requests signed like our webhooks (`timestamp.body`, the inbox's
/// webhook secret): a stale signed request is refused with `stale_request` and nothing is stored;
/// a forged signature is `invalid_signature`; with `require_signed_requests` unsigned ones are too.
#[tokio::test]
async fn api_channel_signed_requests_have_a_replay_window() {
    let app = spawn_app_with(|_| {}).await;
    let admin = app.admin_token().await;
    let (status, inbox) =
        app.send_json(reqwest::Method::POST, &admin, "/api/v1/inboxes", json!({"name": "CRM", "kind": "api"})).await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let id = inbox["id"].as_i64().expect("id");
    let token = inbox["inbound_token"].as_str().expect("token").to_string();
    let secret = inbox["webhook_secret"].as_str().expect("secret").to_string();
    let now = switchboard_server::time::now_ms() / 1000;
    let send = |message_id: &str, signed_at: Option<i64>, forge: bool| {
        let body = json!({"message_id": message_id, "contact": {"id": "c-1"}, "text": "hi"}).to_string();
        let mut request = app
            .client
            .post(app.url(&format!("/api/v1/channels/api/{id}/messages")))
            .bearer_auth(&token)
            .header("content-type", "application/json");
        if let Some(ts) = signed_at {
            let key = if forge { "whsec_forged" } else { secret.as_str() };
            request = request
                .header("x-switchboard-timestamp", ts.to_string())
                .header("x-switchboard-signature", switchboard_gateway::api_channel::sign(key, ts, body.as_bytes()));
        }
        request.body(body).send()
    };
    let r = send("m-stale", Some(now - 301), false).await.expect("post");
    assert_eq!((r.status(), code(r).await.as_str()), (StatusCode::UNAUTHORIZED, "stale_request"));
    let r = send("m-forged", Some(now), true).await.expect("post");
    assert_eq!((r.status(), code(r).await.as_str()), (StatusCode::UNAUTHORIZED, "invalid_signature"));
    let (_, listed) = app.get_json(&admin, "/api/v1/conversations").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "nothing stored: {listed}");
    assert_eq!(send("m-signed", Some(now - 5), false).await.expect("post").status(), StatusCode::CREATED);
    assert_eq!(
        send("m-unsigned", None, false).await.expect("post").status(),
        StatusCode::CREATED,
        "signing is optional by default"
    );

    let (status, body) = app
        .send_json(
            reqwest::Method::PATCH,
            &admin,
            &format!("/api/v1/inboxes/{id}"),
            json!({"settings": {"require_signed_requests": "yes"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = app
        .send_json(
            reqwest::Method::PATCH,
            &admin,
            &format!("/api/v1/inboxes/{id}"),
            json!({"settings": {"require_signed_requests": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let r = send("m-unsigned-2", None, false).await.expect("post");
    assert_eq!((r.status(), code(r).await.as_str()), (StatusCode::UNAUTHORIZED, "invalid_signature"));
    assert_eq!(send("m-signed-2", Some(now), false).await.expect("post").status(), StatusCode::CREATED);
    app.stop().await;
}

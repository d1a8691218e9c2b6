//! Media over HTTP on the real server with the local-disk backend: uploads (agents and widget
//! customers), limits and refusals, signed downloads (bad and expired signatures, another
//! tenant's guessed key), attachments sent in an agent reply and a customer message, and
//! inbound platform media fetched (with retries) from a fake Telegram and linked to its message.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use switchboard_media::UrlSigner;
use switchboard_server::settings::{Overrides, Settings};

use crate::helpers::{spawn_app_with, TestApp, TEST_MEDIA_SIGNING_KEY};

/// The smallest valid-looking PNG header plus filler: sniffed as `image/png`.
fn png(len: usize, seed: u8) -> Vec<u8> {
    let mut v = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R'];
    v.extend((0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)));
    v
}

const LIMIT: u64 = 64 * 1024;

struct Setup {
    app: TestApp,
    dir: std::path::PathBuf,
    db: std::path::PathBuf,
}

impl Setup {
    async fn stop(self) {
        self.app.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.db);
    }
}

/// A server on a file database (so a second tenant can be added) with media on local disk
/// under a scratch directory and a 64 KiB upload limit.
async fn setup() -> Setup {
    let unique = format!("{}-{}", std::process::id(), rand_suffix());
    let dir = std::env::temp_dir().join(format!("switchboard-media-it-{unique}"));
    let db = std::env::temp_dir().join(format!("switchboard-media-it-{unique}.db"));
    let database_url = format!("sqlite://{}?mode=rwc", db.display());
    let (media_dir, url) = (dir.clone(), database_url.clone());
    let app = spawn_app_with(move |s| {
        s.database_url = Some(url.into());
        s.media.backend = "local".into();
        s.media.path = Some(media_dir);
        s.media.max_bytes = LIMIT;
    })
    .await;
    Setup { app, dir, db }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}

fn file_form(bytes: Vec<u8>, name: &str) -> Form {
    Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()))
}

async fn upload(app: &TestApp, token: &str, bytes: Vec<u8>, name: &str) -> (StatusCode, Value) {
    let r = app.client.post(app.url("/api/v1/uploads")).bearer_auth(token).multipart(file_form(bytes, name)).send().await.expect("upload");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// GETs a media URL (relative to the server): (status, headers, body).
async fn fetch(app: &TestApp, url: &str) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let r = app.client.get(app.url(url)).send().await.expect("download");
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.bytes().await.expect("body").to_vec())
}

/// Tenant B with its admin, created straight in the shared database; returns B's admin token.
async fn second_tenant(s: &Setup) -> String {
    let database_url = format!("sqlite://{}?mode=rwc", s.db.display());
    let mut settings = Settings::load(&Overrides { database_url: Some(database_url), ..Default::default() }).expect("settings");
    settings.security.secrets_key = Some(crate::helpers::TEST_SECRETS_KEY.to_string().into());
    let store = switchboard_server::open_store(&settings).await.expect("store");
    let now = switchboard_server::time::now_ms();
    let tenant_b = store.create_tenant("Other", "other", now).await.expect("tenant b");
    let new_admin = switchboard_core::domain::NewUser {
        tenant_id: tenant_b.id,
        email: "admin-b@example.com".into(),
        name: "B".into(),
        role: switchboard_core::domain::Role::Admin,
        password_hash: switchboard_server::auth::hash_password("tenant-b-password").expect("hash"),
        capacity: 5,
    };
    store.create_user(new_admin, now).await.expect("admin b");
    s.app.login("admin-b@example.com", "tenant-b-password").await
}

#[tokio::test]
async fn an_upload_is_stored_once_sniffed_and_downloadable_by_its_signed_url() {
    let s = setup().await;
    let admin = s.app.admin_token().await;
    let bytes = png(20_000, 1);
    let (status, body) = upload(&s.app, &admin, bytes.clone(), "photo.txt").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["kind"], "image", "sniffed from the bytes, not the .txt name: {body}");
    assert_eq!(body["mime"], "image/png");
    assert_eq!(body["size"], bytes.len());
    assert_eq!(body["name"], "photo.txt");
    assert_eq!(body["deduplicated"], false);
    let sha = body["sha256"].as_str().expect("sha256");
    assert_eq!(sha.len(), 64);
    // Stored on the local disk under the tenant's prefix, by digest.
    let tenant = body["url"].as_str().expect("url").split('/').nth(2).expect("tenant in url").to_string();
    assert!(s.dir.join("t").join(&tenant).join(sha).is_file(), "no file at t/{tenant}/{sha}");

    let (status, headers, back) = fetch(&s.app, body["url"].as_str().expect("url")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(back == bytes, "downloaded bytes differ");
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-disposition"].to_str().expect("ascii").starts_with("inline"));

    // The same bytes again: the same object, not a second copy.
    let (status, again) = upload(&s.app, &admin, bytes, "copy.png").await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["deduplicated"], true);
    assert_eq!(again["sha256"], sha);

    // A non-image is offered as a download, whatever name it came with.
    let (status, text) = upload(&s.app, &admin, b"meeting notes".to_vec(), "notes.png").await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(text["kind"], "file");
    let (status, headers, _) = fetch(&s.app, text["url"].as_str().expect("url")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert!(headers["content-disposition"].to_str().expect("ascii").starts_with("attachment; filename=\"notes.png\""));
    s.stop().await;
}

#[tokio::test]
async fn oversize_refused_and_malformed_uploads_get_their_error_codes() {
    let s = setup().await;
    let admin = s.app.admin_token().await;
    // Over the limit: 413 while streaming, nothing stored.
    let (status, body) = upload(&s.app, &admin, png(LIMIT as usize, 2), "big.png").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Much larger than the limit (and than the general 1 MiB body limit): still a clean 413.
    let (status, body) = upload(&s.app, &admin, png(3 << 20, 2), "huge.png").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    // Exactly at the limit is accepted.
    let (status, body) = upload(&s.app, &admin, png(LIMIT as usize - 16, 2), "limit.png").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Dangerous types: 415 refused_media_type, whatever the name says.
    let mut exe = b"MZ".to_vec();
    exe.resize(0x40, 0);
    exe[0x3c] = 0x40;
    exe.extend_from_slice(b"PE\0\0");
    exe.resize(1024, 0);
    for (bytes, name) in [
        (exe, "invoice.pdf"),
        (b"<html><script>alert(document.cookie)</script></html>".to_vec(), "page.txt"),
        (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>".to_vec(), "logo.svg"),
        (b"harmless".to_vec(), "setup.exe"),
    ] {
        let (status, body) = upload(&s.app, &admin, bytes, name).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{name}: {body}");
        assert_eq!(body["error"]["code"], "refused_media_type", "{name}");
    }
    // Nothing was written for any of them (only the at-limit PNG is on disk).
    let tenant_dir = std::fs::read_dir(s.dir.join("t")).expect("t/").next().expect("one tenant").expect("entry").path();
    assert_eq!(std::fs::read_dir(tenant_dir).expect("tenant dir").count(), 1);

    // Empty file, wrong field, not multipart.
    let (status, body) = upload(&s.app, &admin, Vec::new(), "empty.txt").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body")), "{body}");
    let form = Form::new().part("attachment", Part::bytes(b"x".to_vec()).file_name("x.txt"));
    let r = s.app.client.post(s.app.url("/api/v1/uploads")).bearer_auth(&admin).multipart(form).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = s.app.send_json(Method::POST, &admin, "/api/v1/uploads", json!({"file": "x"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_multipart")), "{body}");
    // No credentials: 401.
    let r = s.app.client.post(s.app.url("/api/v1/uploads")).multipart(file_form(png(10, 1), "a.png")).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test]
async fn downloads_need_a_valid_unexpired_signature_for_that_tenant() {
    let s = setup().await;
    let admin = s.app.admin_token().await;
    let bytes = png(500, 3);
    let (status, body) = upload(&s.app, &admin, bytes.clone(), "scan.png").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let url = body["url"].as_str().expect("url").to_string();
    let sha = body["sha256"].as_str().expect("sha").to_string();
    let parsed = switchboard_media::parse_media_url(&url).expect("our url");
    assert_eq!(fetch(&s.app, &url).await.0, StatusCode::OK);

    // A forged signature, a missing one, a changed expiry or name: 403.
    let forged = format!("{}{}", &url[..url.len() - 4], if url.ends_with("0000") { "1111" } else { "0000" });
    let unsigned = format!("/media/{}/{sha}", parsed.tenant);
    let extended = url.replace(&format!("exp={}", parsed.expires_at), &format!("exp={}", parsed.expires_at + 3600));
    let renamed = url.replace("name=scan.png", "name=scan.exe");
    for bad in [&forged, &unsigned, &extended, &renamed] {
        let (status, _, body) = fetch(&s.app, bad).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{bad}");
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(body["error"]["code"], "invalid_media_link", "{bad}");
    }

    // Signed with the server's key but expired: 410 media_link_expired (a fresh one is one
    // POST /api/v1/media/links away); the same URL with a future expiry works, so it is the
    // expiry that is refused.
    let signer = UrlSigner::new(TEST_MEDIA_SIGNING_KEY.as_bytes());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let expired = signer.sign("", parsed.tenant, &sha, Some("scan.png"), now - 1);
    let (status, _, body) = fetch(&s.app, &expired).await;
    assert_eq!(status, StatusCode::GONE);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_eq!(body["error"]["code"], "media_link_expired");
    let fresh = signer.sign("", parsed.tenant, &sha, Some("scan.png"), now + 60);
    assert_eq!(fetch(&s.app, &fresh).await.0, StatusCode::OK);

    // Tenant B uploads the same bytes and gets its own object; its signature does not open
    // tenant A's key, and A's key is not found under B even with a valid signature for B.
    let other = second_tenant(&s).await;
    let (status, theirs) = upload(&s.app, &other, bytes, "scan.png").await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    assert_eq!(theirs["deduplicated"], false, "tenants never share objects");
    let their_url = theirs["url"].as_str().expect("url");
    let their = switchboard_media::parse_media_url(their_url).expect("our url");
    assert_ne!(their.tenant, parsed.tenant);
    let guessed = their_url.replacen(&format!("/media/{}/", their.tenant), &format!("/media/{}/", parsed.tenant), 1);
    assert_eq!(fetch(&s.app, &guessed).await.0, StatusCode::FORBIDDEN, "B's signature opened A's media");
    let never_uploaded_by_b = png(400, 9);
    let (status, a_only) = upload(&s.app, &admin, never_uploaded_by_b, "a.png").await;
    assert_eq!(status, StatusCode::CREATED);
    let a_sha = a_only["sha256"].as_str().expect("sha");
    let signed_for_b = signer.sign("", their.tenant, a_sha, None, now + 60);
    assert_eq!(fetch(&s.app, &signed_for_b).await.0, StatusCode::NOT_FOUND, "A's object is not under B");
    s.stop().await;
}

#[tokio::test]
async fn an_uploaded_file_goes_out_in_a_reply_and_in_a_widget_customers_message() {
    let s = setup().await;
    let admin = s.app.admin_token().await;
    let (_, agent) = s.app.available_agent(&admin, "media-agent@example.com", 5).await;

    // A web inbox; a customer uploads through the widget route.
    let (status, inbox) = s.app.send_json(Method::POST, &admin, "/api/v1/inboxes", json!({"name": "Site", "kind": "web"})).await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let inbox_id = inbox["id"].as_i64().expect("inbox id");
    let key = inbox["settings"]["widget_key"].as_str().expect("widget key").to_string();
    let widget_upload = |key: String, session: &'static str, bytes: Vec<u8>| {
        let request = s
            .app
            .client
            .post(s.app.url("/api/v1/widget/uploads"))
            .header("x-widget-inbox", inbox_id.to_string())
            .header("x-widget-key", key)
            .header("x-widget-session", session)
            .header("origin", "https://shop.example.com")
            .multipart(file_form(bytes, "receipt.png"));
        async move {
            let r = request.send().await.expect("widget upload");
            let (status, headers) = (r.status(), r.headers().clone());
            (status, headers, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let receipt = png(3000, 5);
    let (status, headers, customer_file) = widget_upload(key.clone(), "sbw_customer-session-1", receipt.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{customer_file}");
    assert_eq!(headers["access-control-allow-origin"], "https://shop.example.com", "callable from the embedding site");
    // A browser sends the custom headers only after a CORS preflight, which must be granted (not 405).
    let preflight = s
        .app
        .client
        .request(Method::OPTIONS, s.app.url("/api/v1/widget/uploads"))
        .header("origin", "https://shop.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-widget-inbox,x-widget-key,x-widget-session,content-type")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "preflight answered {}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://shop.example.com");
    let allowed = preflight.headers()["access-control-allow-headers"].to_str().expect("ascii").to_ascii_lowercase();
    assert!(allowed.contains("x-widget-session"), "{allowed}");
    let (status, _, _) = widget_upload("wrong-key".into(), "sbw_customer-session-1", receipt.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = widget_upload(key.clone(), "no-session", receipt.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(fetch(&s.app, customer_file["url"].as_str().expect("url")).await.2, receipt);

    // An API inbox conversation assigned to the agent, who replies with an uploaded file.
    let (status, api_inbox) = s
        .app
        .send_json(Method::POST, &admin, "/api/v1/inboxes", json!({"name": "CRM", "kind": "api", "settings": {"webhook_url": "http://127.0.0.1:9/hook"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{api_inbox}");
    let ingest = api_inbox["inbound_token"].as_str().expect("token");
    // The business system may forward the customer's upload: our URL verifies for this tenant
    // and is stored re-signed.
    let (status, inbound) = s
        .app
        .send_json(
            Method::POST,
            ingest,
            &format!("/api/v1/channels/api/{}/messages", api_inbox["id"]),
            json!({"message_id": "m-1", "contact": {"id": "c-1"}, "attachments": [
                {"kind": customer_file["kind"], "url": customer_file["url"], "name": customer_file["name"], "mime": customer_file["mime"], "size": customer_file["size"]}
            ]}),
        )
        .await;
    assert!(status.is_success(), "{inbound}");
    let conversation = inbound["conversation_id"].as_i64().expect("conversation");

    let doc = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".to_vec();
    let (status, file) = upload(&s.app, &agent, doc.clone(), "quote.pdf").await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(file["mime"], "application/pdf");
    let attachment = json!({"kind": file["kind"], "url": file["url"], "name": file["name"], "mime": file["mime"], "size": file["size"]});
    let mut assigned = false;
    for _ in 0..100 {
        let (_, mine) = s.app.get_json(&agent, "/api/v1/conversations").await;
        if mine.as_array().is_some_and(|a| a.iter().any(|c| c["id"] == conversation)) {
            assigned = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(assigned, "the conversation was not assigned to the agent");
    let path = format!("/api/v1/conversations/{conversation}/messages");
    let (status, reply) =
        s.app.send_json(Method::POST, &agent, &path, json!({"text": "here is the quote", "attachments": [attachment], "client_message_id": "r-1"})).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");

    // What the other side reads back: both messages carry working signed URLs.
    let (status, messages) = s.app.get_json(&agent, &path).await;
    assert_eq!(status, StatusCode::OK);
    let urls: Vec<String> = messages
        .as_array()
        .expect("messages")
        .iter()
        .flat_map(|m| m["attachments"].as_array().cloned().unwrap_or_default())
        .map(|a| a["url"].as_str().expect("url").to_string())
        .collect();
    assert_eq!(urls.len(), 2, "{messages}");
    assert_eq!(fetch(&s.app, &urls[0]).await.2, receipt, "the customer's file");
    let (status, headers, body) = fetch(&s.app, &urls[1]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, doc, "the agent's file");
    assert_eq!(headers["content-type"], "application/pdf");
    assert!(headers["content-disposition"].to_str().expect("ascii").starts_with("attachment"));

    // Another tenant's media link, or a forged one, cannot be sent.
    let other = second_tenant(&s).await;
    let (status, foreign) = upload(&s.app, &other, b"tenant b's secret".to_vec(), "b.txt").await;
    assert_eq!(status, StatusCode::CREATED);
    let own = file["url"].as_str().expect("url");
    let forged = format!("{}{}", &own[..own.len() - 1], if own.ends_with('0') { '1' } else { '0' });
    for url in [foreign["url"].as_str().expect("url").to_string(), forged] {
        let body = json!({"attachments": [{"kind": "file", "url": url}], "client_message_id": format!("bad-{}", url.len())});
        let (status, answer) = s.app.send_json(Method::POST, &agent, &path, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {answer}");
    }
    s.stop().await;
}

/// A fake Telegram Bot API serving one photo: `getFile` fails with a 500 `fail_first` times
/// before answering, then the file itself is served from `/file/bot<token>/<path>`.
#[derive(Clone)]
struct FakeTelegramFiles {
    photo: Arc<Vec<u8>>,
    fail_first: usize,
    get_file_calls: Arc<AtomicUsize>,
}

async fn fake_bot_method(
    axum::extract::State(fake): axum::extract::State<FakeTelegramFiles>,
    axum::extract::Path((token, method)): axum::extract::Path<(String, String)>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> (axum::http::StatusCode, axum::Json<Value>) {
    assert_eq!(token, format!("bot{FAKE_BOT_TOKEN}"));
    match method.as_str() {
        "getFile" => {
            let call = fake.get_file_calls.fetch_add(1, Ordering::SeqCst);
            if call < fake.fail_first {
                return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"ok": false, "error_code": 500, "description": "Internal Server Error"})));
            }
            assert_eq!(query.get("file_id").map(String::as_str), Some("AgAD-big"), "the largest rendition is fetched");
            (axum::http::StatusCode::OK, axum::Json(json!({"ok": true, "result": {"file_id": "AgAD-big", "file_unique_id": "u2", "file_path": "photos/file_7.jpg"}})))
        }
        other => (axum::http::StatusCode::NOT_FOUND, axum::Json(json!({"ok": false, "error_code": 404, "description": other}))),
    }
}

async fn fake_file(
    axum::extract::State(fake): axum::extract::State<FakeTelegramFiles>,
    axum::extract::Path((token, path)): axum::extract::Path<(String, String)>,
) -> Vec<u8> {
    assert_eq!((token.as_str(), path.as_str()), (format!("bot{FAKE_BOT_TOKEN}").as_str(), "photos/file_7.jpg"));
    fake.photo.as_ref().clone()
}

const FAKE_BOT_TOKEN: &str = "4242:media-test";

#[tokio::test]
async fn inbound_platform_media_is_fetched_with_retries_and_linked_to_its_message() {
    let photo = png(8000, 11);
    let fake = FakeTelegramFiles { photo: Arc::new(photo.clone()), fail_first: 2, get_file_calls: Arc::new(AtomicUsize::new(0)) };
    let router = axum::Router::new()
        .route("/{token}/{method}", axum::routing::get(fake_bot_method).post(fake_bot_method))
        .route("/file/{token}/{*path}", axum::routing::get(fake_file))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let s = setup().await;
    let admin = s.app.admin_token().await;
    let (status, inbox) = s
        .app
        .send_json(
            Method::POST,
            &admin,
            "/api/v1/inboxes",
            json!({"name": "Telegram", "kind": "telegram", "settings": {"api_base_url": base, "mode": "webhook"},
                   "secrets": {"bot_token": FAKE_BOT_TOKEN, "webhook_secret_token": "media-secret"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let update = json!({"update_id": 1, "message": {"message_id": 7, "date": 1_763_700_000,
        "chat": {"id": 99, "type": "private", "first_name": "Ada"}, "from": {"id": 99, "is_bot": false, "first_name": "Ada"},
        "caption": "my receipt",
        "photo": [{"file_id": "AgAD-small", "file_unique_id": "u1", "width": 90, "height": 60},
                  {"file_id": "AgAD-big", "file_unique_id": "u2", "width": 900, "height": 600}]}});
    let r = s
        .app
        .client
        .post(s.app.url(&format!("/webhooks/{}", inbox["id"])))
        .header("x-telegram-bot-api-secret-token", "media-secret")
        .json(&update)
        .send()
        .await
        .expect("webhook");
    assert!(r.status().is_success(), "webhook: {}", r.status());

    // The platform is answered at once; the photo arrives in the store after two failed
    // getFile calls (the outbox's backoff, 1 s + 2 s by default) and the message then links
    // to it.
    let mut linked = None;
    for _ in 0..400 {
        let (_, conversations) = s.app.get_json(&admin, &format!("/api/v1/conversations?inbox_id={}", inbox["id"])).await;
        if let Some(id) = conversations.as_array().and_then(|c| c.first()).and_then(|c| c["id"].as_i64()) {
            let (_, messages) = s.app.get_json(&admin, &format!("/api/v1/conversations/{id}/messages")).await;
            let url = messages[0]["attachments"][0]["url"].as_str().unwrap_or_default().to_string();
            if url.starts_with("/media/") {
                linked = Some(messages[0]["attachments"][0].clone());
                break;
            }
            assert_eq!(url, "", "before the fetch the attachment is a placeholder without a link");
            assert_eq!(messages[0]["attachments"][0]["kind"], "image");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let linked = linked.expect("the message was never linked to stored media");
    assert_eq!(fake.get_file_calls.load(Ordering::SeqCst), 3, "two failures, then success");
    assert_eq!(linked["mime"], "image/png", "sniffed from the bytes");
    assert_eq!(linked["size"], photo.len());
    let (status, _, body) = fetch(&s.app, linked["url"].as_str().expect("url")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == photo, "the stored bytes are the platform's");
    s.stop().await;
}

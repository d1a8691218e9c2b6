//! Starts a real server in-process for a test and gives it an HTTP client and an admin token.

use std::net::SocketAddr;

use serde_json::{json, Value};
use switchboard_server::settings::{Overrides, Settings};
use tokio_util::sync::CancellationToken;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct-horse-battery";
/// The `media.signing_key` every test server has (tests sign URLs of their own with it).
pub const TEST_MEDIA_SIGNING_KEY: &str = "test-media-signing-key";
/// The inbox-secrets key of every test server (32 bytes of 0x42), so tests that open the same
/// database from a second store or node can read its inboxes.
pub const TEST_SECRETS_KEY: &str = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Logs in and returns the session token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = self.client.post(self.url("/api/v1/auth/login")).json(&json!({"email": email, "password": password})).send().await.expect("login request");
        assert_eq!(r.status(), 200, "login as {email} failed");
        let body: Value = r.json().await.expect("login body");
        body["token"].as_str().expect("token").to_string()
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// GET with a bearer token: (status, JSON body or null).
    pub async fn get_json(&self, token: &str, path: &str) -> (reqwest::StatusCode, Value) {
        let r = self.client.get(self.url(path)).bearer_auth(token).send().await.expect("get");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A JSON request with a bearer token: (status, JSON body or null).
    pub async fn send_json(&self, method: reqwest::Method, token: &str, path: &str, body: Value) -> (reqwest::StatusCode, Value) {
        let r = self.client.request(method, self.url(path)).bearer_auth(token).json(&body).send().await.expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Creates an agent with a password and capacity, logs them in and makes them available;
    /// returns (user id, session token).
    pub async fn available_agent(&self, admin: &str, email: &str, capacity: i64) -> (i64, String) {
        let (status, user) = self
            .send_json(
                reqwest::Method::POST,
                admin,
                "/api/v1/users",
                json!({"email": email, "name": email, "role": "agent", "password": "agent-password-123", "capacity": capacity}),
            )
            .await;
        assert_eq!(status, 201, "create agent: {user}");
        let id = user["id"].as_i64().expect("user id");
        let token = self.login(email, "agent-password-123").await;
        let (status, body) =
            self.send_json(reqwest::Method::PUT, &token, &format!("/api/v1/users/{id}/status"), json!({"status": "available"})).await;
        assert_eq!(status, 200, "set available: {body}");
        (id, token)
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await.expect("server task").expect("server result");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A server on 127.0.0.1:0 with a fresh in-memory SQLite database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tune: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = Settings::load(&Overrides {
        database_url: Some("sqlite::memory:".into()),
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..Default::default()
    })
    .expect("settings");
    settings.bootstrap.admin_password = Some(ADMIN_PASSWORD.to_string().into());
    // Nothing on disk unless a test asks for it: media in memory, a fixed URL-signing secret
    // (otherwise one is created in `data_dir`).
    settings.media.backend = "memory".into();
    settings.media.signing_key = Some(TEST_MEDIA_SIGNING_KEY.to_string().into());
    settings.security.secrets_key = Some(TEST_SECRETS_KEY.to_string().into());
    tune(&mut settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(switchboard_server::launch(settings, listener, shutdown.clone()));
    let client = reqwest::Client::new();
    // Wait until it answers.
    for _ in 0..200 {
        if client.get(format!("http://{addr}/healthz")).send().await.is_ok() {
            return TestApp { addr, client, shutdown, handle: Some(handle) };
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("server did not start");
}

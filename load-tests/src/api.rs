//! The few REST calls a scenario needs to set the stage: log in, create agents, create an API
//! inbox, and the timed call itself (post a customer message to the API channel). Thin over
//! `reqwest`; every call has a timeout and fails with the server's status and body.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

/// A REST client bound to one server.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

/// A created agent with a login session token.
pub struct Agent {
    pub id: i64,
    pub token: String,
}

/// A created API inbox.
pub struct ApiInbox {
    pub id: i64,
    pub inbound_token: String,
}

impl Api {
    /// `max_idle` bounds the keep-alive pool (set it to the scenario's in-flight bound).
    pub fn new(base: &str, max_idle: usize) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(max_idle)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(Api { http, base: base.to_string() })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
        expected: &[u16],
    ) -> anyhow::Result<Value> {
        let mut req = self.http.request(method.clone(), format!("{}/api/v1{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.with_context(|| format!("{method} {path}"))?;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        if !expected.contains(&status) {
            bail!("{method} {path} answered {status}: {}", text.chars().take(300).collect::<String>());
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: answer is not JSON"))
    }

    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let v = self
            .call(reqwest::Method::POST, "/auth/login", None, &json!({ "email": email, "password": password }), &[200])
            .await?;
        v.get("token").and_then(Value::as_str).map(str::to_string).ok_or_else(|| anyhow!("login answer has no token"))
    }

    /// Creates an agent with `capacity` and logs them in.
    pub async fn create_agent(&self, admin: &str, label: &str, capacity: i64) -> anyhow::Result<Agent> {
        let email = format!("{label}@loadgen.example.com");
        let password = format!("pw-{label}-loadgen");
        let body =
            json!({ "email": email, "name": label, "role": "agent", "password": password, "capacity": capacity });
        let user = self.call(reqwest::Method::POST, "/users", Some(admin), &body, &[201]).await?;
        let id = user
            .get("id")
            .or_else(|| user.pointer("/user/id"))
            .and_then(Value::as_i64)
            .ok_or_else(|| anyhow!("user answer has no id: {user}"))?;
        let token = self.login(&email, &password).await?;
        Ok(Agent { id, token })
    }

    /// Creates an API inbox whose webhook points at a closed loopback port (the scenarios send
    /// no replies, so it is never called).
    pub async fn create_api_inbox(&self, admin: &str, name: &str) -> anyhow::Result<ApiInbox> {
        let body =
            json!({ "kind": "api", "name": name, "settings": { "webhook_url": "http://127.0.0.1:9/loadgen-webhook" } });
        let v = self.call(reqwest::Method::POST, "/inboxes", Some(admin), &body, &[201]).await?;
        let inbound_token = find_key(&v, "inbound_token")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("inbox answer lacks inbound_token"))?;
        let id = v
            .pointer("/inbox/id")
            .or_else(|| v.get("id"))
            .and_then(Value::as_i64)
            .ok_or_else(|| anyhow!("inbox answer lacks id: {v}"))?;
        Ok(ApiInbox { id, inbound_token: inbound_token.to_string() })
    }

    /// Creates a web (widget) inbox; returns its id and public widget key.
    pub async fn create_web_inbox(&self, admin: &str, name: &str) -> anyhow::Result<(i64, String)> {
        let v = self.call(reqwest::Method::POST, "/inboxes", Some(admin), &json!({ "kind": "web", "name": name }), &[201]).await?;
        let key = find_key(&v, "widget_key").and_then(Value::as_str).ok_or_else(|| anyhow!("inbox answer lacks widget_key: {v}"))?;
        let id = v
            .pointer("/inbox/id")
            .or_else(|| v.get("id"))
            .and_then(Value::as_i64)
            .ok_or_else(|| anyhow!("inbox answer lacks id: {v}"))?;
        Ok((id, key.to_string()))
    }
}

/// Finds `key` anywhere in a nested JSON value.
fn find_key<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(key).or_else(|| map.values().find_map(|v| find_key(v, key))),
        Value::Array(items) => items.iter().find_map(|v| find_key(v, key)),
        _ => None,
    }
}

//! Typed configuration: built-in defaults, then an optional TOML file, then environment
//! variables prefixed `SWITCHBOARD_` (nested keys joined by `__`, e.g.
//! `SWITCHBOARD_OUTBOX__MAX_ATTEMPTS=5`), then command-line flags. Bad configuration fails at
//! start-up, never later. Secrets are `SecretString` and print as `[REDACTED]`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

// No `deny_unknown_fields` at the root: unrelated `SWITCHBOARD_*` variables (e.g. the test
// suite's `SWITCHBOARD_TEST_*`) must not stop the server. Nested tables do deny unknown keys.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Settings {
    /// Address the HTTP / Socket.IO listener binds.
    pub listen: SocketAddr,
    /// Where the embedded default keeps its SQLite database (and, later, media).
    pub data_dir: PathBuf,
    /// `postgres://…`, `mysql://…` or `sqlite:…`. Empty: SQLite in `data_dir`.
    #[serde(serialize_with = "redact_opt")]
    pub database_url: Option<SecretString>,
    /// `redis://…` to run several nodes together. Empty: in-process bus (one node).
    #[serde(serialize_with = "redact_opt")]
    pub redis_url: Option<SecretString>,
    /// Prefix for every Redis key and channel, so several deployments can share one Redis.
    pub redis_prefix: String,
    /// The URL users reach this server at (printed at start, used in links).
    pub public_url: Option<String>,
    /// This process's name among the nodes (logs, outbox leases). Default: host + pid.
    pub node_id: Option<String>,
    /// Optional separate listener for `/metrics`; by default it is served on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// `pretty` or `json` log lines.
    pub log_format: String,
    /// Largest accepted request body in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    pub auth: AuthSettings,
    pub bootstrap: BootstrapSettings,
    pub outbox: OutboxSettings,
    pub agents: AgentSettings,
    pub media: MediaSettings,
    pub security: SecuritySettings,
}

/// Secrets at rest and hostile-input limits (`docs/security.md`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    /// The key inbox secrets are sealed with: 32 bytes, base64 (`openssl rand -base64 32`).
    /// Every node sharing a database must have the same one. Empty: a random key kept in
    /// `data_dir/secrets.key` (fine for one node; several nodes must set this).
    #[serde(serialize_with = "redact_opt")]
    pub secrets_key: Option<SecretString>,
    /// Earlier keys, comma-separated, that still open secrets sealed before a rotation
    /// (`switchboard rotate-secrets` reseals them under `secrets_key`).
    #[serde(serialize_with = "redact_opt")]
    pub previous_secrets_keys: Option<SecretString>,
    /// Signed webhooks whose timestamp is further than this from now (either way) are refused
    /// with 401 `stale_request`: WeChat's signed `timestamp`, the API channel's signed
    /// `X-Switchboard-Timestamp`.
    pub webhook_max_age_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// How long a login session lasts.
    pub session_ttl_secs: u64,
}

/// The tenant and admin created on first start with an empty database.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapSettings {
    pub tenant_name: String,
    pub tenant_slug: String,
    pub admin_email: String,
    /// Empty: a random password is generated and printed once.
    #[serde(serialize_with = "redact_opt")]
    pub admin_password: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    /// Attempts before an entry is dead-lettered.
    pub max_attempts: i64,
    /// First retry delay; doubles each attempt up to `max_backoff_ms`.
    pub base_backoff_ms: i64,
    pub max_backoff_ms: i64,
    /// How long a node holds a claimed entry before another node may take it over.
    pub lease_ms: i64,
    /// How often the worker looks for due entries when nothing woke it.
    pub poll_interval_ms: u64,
    /// Timeout of one delivery attempt.
    pub request_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// Capacity of a newly created agent.
    pub default_capacity: i64,
    /// After an agent's last connection drops, how long before they are marked offline.
    pub disconnect_grace_secs: u64,
    /// Presence entry lifetime; refreshed on heartbeats, so a crashed node's agents expire.
    pub presence_ttl_secs: u64,
    /// How often the dispatcher's sweep runs: lapsed offers of dead nodes, overflow, skill
    /// relaxation, unanswered assignments, and anything a lost event left queued.
    pub sweep_interval_ms: u64,
}

/// Attachments' bytes (`docs/media.md`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSettings {
    /// `local` (files under `path`), `s3` (any S3-compatible service) or `memory` (this process
    /// only; for tests).
    pub backend: String,
    /// The local backend's directory. Empty: `media` inside `data_dir`.
    pub path: Option<PathBuf>,
    /// Largest file one upload may be, in bytes, unless the tenant has its own limit.
    pub max_bytes: u64,
    /// Per-tenant limits in bytes, by tenant id (`[media.tenant_max_bytes]` `"7" = 1048576`).
    #[serde(default)]
    pub tenant_max_bytes: std::collections::BTreeMap<String, u64>,
    /// How long a signed download URL stays valid.
    pub url_ttl_secs: u64,
    /// The secret download URLs are signed with (the key is derived from it); every node must
    /// have the same one. Empty: a random secret kept in `data_dir/media-signing.key`.
    #[serde(serialize_with = "redact_opt")]
    pub signing_key: Option<SecretString>,
    pub s3: S3Settings,
}

/// An S3-compatible service for `media.backend = "s3"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// e.g. `https://s3.eu-west-1.amazonaws.com`, `http://minio:9000`. Empty: AWS for `region`.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    #[serde(serialize_with = "redact_opt")]
    pub access_key_id: Option<SecretString>,
    #[serde(serialize_with = "redact_opt")]
    pub secret_access_key: Option<SecretString>,
    /// Path-style requests (`endpoint/bucket/key`), as MinIO and most self-hosted services want.
    pub path_style: bool,
}

impl MediaSettings {
    /// The upload limit in force for a tenant.
    pub fn max_bytes_for(&self, tenant_id: i64) -> u64 {
        self.tenant_max_bytes.get(&tenant_id.to_string()).copied().unwrap_or(self.max_bytes)
    }

    /// The largest limit of any tenant.
    pub fn largest_limit(&self) -> u64 {
        self.tenant_max_bytes.values().copied().fold(self.max_bytes, u64::max)
    }
}

fn redact_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("[REDACTED]"),
        None => s.serialize_none(),
    }
}

const DEFAULTS: &str = r#"
listen = "127.0.0.1:8080"
data_dir = "./data"
redis_prefix = "sb:"
log_format = "pretty"
max_body_bytes = 1048576

[auth]
session_ttl_secs = 86400

[bootstrap]
tenant_name = "Default"
tenant_slug = "default"
admin_email = "admin@example.com"

[outbox]
max_attempts = 10
base_backoff_ms = 1000
max_backoff_ms = 3600000
lease_ms = 30000
poll_interval_ms = 1000
request_timeout_ms = 10000

[agents]
default_capacity = 5
disconnect_grace_secs = 30
presence_ttl_secs = 60
sweep_interval_ms = 5000

[media]
backend = "local"
max_bytes = 26214400
url_ttl_secs = 604800

[media.s3]
bucket = ""
region = "us-east-1"
path_style = false

[security]
webhook_max_age_secs = 300
"#;

/// Values given on the command line; they win over the file and the environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
}

impl Settings {
    pub fn load(overrides: &Overrides) -> anyhow::Result<Settings> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = &overrides.config_file {
            builder = builder.add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("SWITCHBOARD").prefix_separator("_").separator("__").try_parsing(true),
        );
        if let Some(v) = &overrides.listen {
            builder = builder.set_override("listen", v.to_string())?;
        }
        if let Some(v) = &overrides.data_dir {
            builder = builder.set_override("data_dir", v.display().to_string())?;
        }
        if let Some(v) = &overrides.database_url {
            builder = builder.set_override("database_url", v.clone())?;
        }
        if let Some(v) = &overrides.redis_url {
            builder = builder.set_override("redis_url", v.clone())?;
        }
        let mut settings: Settings = builder.build()?.try_deserialize().context("invalid configuration")?;
        // An empty string in the environment means "not set".
        if settings.database_url.as_ref().is_some_and(|u| u.expose_secret().is_empty()) {
            settings.database_url = None;
        }
        if settings.redis_url.as_ref().is_some_and(|u| u.expose_secret().is_empty()) {
            settings.redis_url = None;
        }
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.max_body_bytes >= 1024, "max_body_bytes must be at least 1024");
        anyhow::ensure!(self.outbox.max_attempts >= 1, "outbox.max_attempts must be at least 1");
        anyhow::ensure!(self.outbox.base_backoff_ms >= 1, "outbox.base_backoff_ms must be positive");
        anyhow::ensure!(self.agents.default_capacity >= 1, "agents.default_capacity must be at least 1");
        anyhow::ensure!(matches!(self.log_format.as_str(), "pretty" | "json"), "log_format must be pretty or json");
        self.validate_media()?;
        anyhow::ensure!(self.security.webhook_max_age_secs >= 1, "security.webhook_max_age_secs must be positive");
        if let Some(url) = &self.database_url {
            let u = url.expose_secret();
            anyhow::ensure!(
                ["postgres://", "postgresql://", "mysql://", "mariadb://", "sqlite:"].iter().any(|p| u.starts_with(p)),
                "database_url must start with postgres://, mysql://, mariadb:// or sqlite:"
            );
        }
        Ok(())
    }

    fn validate_media(&self) -> anyhow::Result<()> {
        let m = &self.media;
        anyhow::ensure!(matches!(m.backend.as_str(), "local" | "s3" | "memory"), "media.backend must be local, s3 or memory");
        anyhow::ensure!(m.max_bytes >= 1, "media.max_bytes must be positive");
        for (tenant, limit) in &m.tenant_max_bytes {
            anyhow::ensure!(tenant.parse::<i64>().is_ok(), "media.tenant_max_bytes: {tenant:?} is not a tenant id");
            anyhow::ensure!(*limit >= 1, "media.tenant_max_bytes.{tenant} must be positive");
        }
        anyhow::ensure!(m.url_ttl_secs >= 60, "media.url_ttl_secs must be at least 60");
        if m.backend == "s3" {
            anyhow::ensure!(!m.s3.bucket.is_empty(), "media.s3.bucket is required for the s3 backend");
            let set = |v: &Option<SecretString>| v.as_ref().is_some_and(|s| !s.expose_secret().is_empty());
            anyhow::ensure!(
                set(&m.s3.access_key_id) && set(&m.s3.secret_access_key),
                "media.s3.access_key_id and media.s3.secret_access_key are required for the s3 backend"
            );
        }
        Ok(())
    }

    /// The local media directory in force: the configured one, or `media` inside `data_dir`.
    pub fn media_path(&self) -> PathBuf {
        match &self.media.path {
            Some(p) if !p.as_os_str().is_empty() => p.clone(),
            _ => self.data_dir.join("media"),
        }
    }

    /// The database URL in force: the configured one, or SQLite inside `data_dir`.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.expose_secret().to_string(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("switchboard.db").display()),
        }
    }

    pub fn node_name(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "node".into());
            format!("{host}-{}", std::process::id())
        })
    }

    /// The configuration as TOML with secrets redacted (`print-config`).
    pub fn to_redacted_toml(&self) -> anyhow::Result<String> {
        let value = serde_json::to_value(self)?;
        Ok(toml_like(&value, ""))
    }
}

/// Renders a JSON object as TOML-ish text: good enough for humans reading `print-config`
/// without adding a TOML serializer dependency.
fn toml_like(v: &serde_json::Value, section: &str) -> String {
    let mut out = String::new();
    let mut tables = Vec::new();
    if let serde_json::Value::Object(map) = v {
        for (k, val) in map {
            match val {
                serde_json::Value::Object(_) => tables.push((k, val)),
                serde_json::Value::Null => out.push_str(&format!("# {k} is not set\n")),
                other => out.push_str(&format!("{k} = {other}\n")),
            }
        }
    }
    for (k, val) in tables {
        let name = if section.is_empty() { k.to_string() } else { format!("{section}.{k}") };
        out.push_str(&format!("\n[{name}]\n"));
        out.push_str(&toml_like(val, &name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_secrets_are_redacted() {
        let s = Settings::load(&Overrides {
            database_url: Some("postgres://u:hunter2@db/x".into()),
            ..Default::default()
        })
        .expect("defaults are valid");
        assert_eq!(s.outbox.max_attempts, 10);
        let printed = s.to_redacted_toml().expect("renders");
        assert!(printed.contains("[REDACTED]"));
        assert!(!printed.contains("hunter2"));
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    fn load_toml(toml: &str) -> anyhow::Result<Settings> {
        let path = std::env::temp_dir().join(format!("switchboard-settings-{}-{}.toml", std::process::id(), rand::random::<u64>()));
        std::fs::write(&path, toml).expect("write config");
        let loaded = Settings::load(&Overrides { config_file: Some(path.clone()), ..Default::default() });
        let _ = std::fs::remove_file(&path);
        loaded
    }

    #[test]
    fn media_settings_default_and_fail_fast() {
        let s = load_toml("").expect("defaults");
        assert_eq!((s.media.backend.as_str(), s.media.max_bytes), ("local", 25 * 1024 * 1024));
        assert_eq!(s.media_path(), s.data_dir.join("media"));
        let s = load_toml("[media]\nmax_bytes = 1000\n[media.tenant_max_bytes]\n\"7\" = 5000\n").expect("per tenant");
        assert_eq!((s.media.max_bytes_for(7), s.media.max_bytes_for(8), s.media.largest_limit()), (5000, 1000, 5000));
        assert!(load_toml("[media]\nbackend = \"ftp\"\n").is_err());
        assert!(load_toml("[media.tenant_max_bytes]\nacme = 5\n").is_err());
        assert!(load_toml("[media]\nbackend = \"s3\"\n[media.s3]\nbucket = \"b\"\n").is_err(), "s3 without keys");
        let s = load_toml(
            "[media]\nbackend = \"s3\"\nsigning_key = \"sign-me-9\"\n[media.s3]\nbucket = \"b\"\naccess_key_id = \"AKIA-1\"\nsecret_access_key = \"s3cr3t-7\"\n",
        )
        .expect("s3 with keys");
        let printed = s.to_redacted_toml().expect("renders");
        for secret in ["sign-me-9", "AKIA-1", "s3cr3t-7"] {
            assert!(!printed.contains(secret) && !format!("{s:?}").contains(secret), "{secret} leaked");
        }
    }

    #[test]
    fn bad_database_url_fails_fast() {
        let err = Settings::load(&Overrides { database_url: Some("oracle://x".into()), ..Default::default() });
        assert!(err.is_err());
    }
}

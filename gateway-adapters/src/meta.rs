//! What WhatsApp Cloud API, Messenger and Instagram share because all three are Meta Graph API
//! products: the `hub.challenge` subscription handshake, the `X-Hub-Signature-256` check over the
//! raw body, Graph base-URL settings, and the mapping of Graph error objects onto
//! [`DeliveryError`].
//!
//! This module knows no platform's message shapes: `whatsapp.rs` and `messenger.rs` parse their
//! own payloads and call in here for everything Meta does the same way.
//!
//! Keys read (by both adapters):
//! - `secrets.app_secret`: the Meta app's secret; signs every webhook POST.
//! - `secrets.verify_token`: any string chosen by the admin and pasted into the app's webhook
//!   settings; Meta echoes it in the subscription handshake.
//! - `secrets.access_token`: the token sent to the Graph API (system-user / page token).
//! - `settings.api_base_url` (default `https://graph.facebook.com`) and `settings.api_version`
//!   (default `v21.0`).

use std::time::Duration;

use serde_json::Value;

use crate::signature::{constant_time_eq, hmac_sha256};
use crate::{ChannelConfig, DeliveryError, InboundEvent, WebhookAnswer, WebhookError, WebhookOutcome, WebhookRequest};

pub const DEFAULT_API_BASE_URL: &str = "https://graph.facebook.com";
pub const DEFAULT_API_VERSION: &str = "v21.0";
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// How long to wait after a Graph rate-limit error that carries no `Retry-After`. Graph's
/// application and business-number limits are counted over rolling windows of minutes, so a
/// minute is the shortest wait that is likely to succeed.
pub const DEFAULT_THROTTLE: Duration = Duration::from_secs(60);

/// Verifies and dispatches one webhook request the way every Meta product needs it: `GET` is the
/// subscription handshake, `POST` is a signed notification whose JSON body `parse` turns into
/// events. Nothing is parsed before the signature is checked.
pub fn handle_webhook(
    config: &ChannelConfig,
    request: &WebhookRequest<'_>,
    parse: impl FnOnce(&Value) -> Result<Vec<InboundEvent>, WebhookError>,
) -> Result<WebhookOutcome, WebhookError> {
    match request.method {
        m if m.eq_ignore_ascii_case("GET") => answer_handshake(config, request),
        m if m.eq_ignore_ascii_case("POST") => {
            verify_signature(config, request)?;
            let body: Value = serde_json::from_slice(request.body)
                .map_err(|e| WebhookError::Malformed(format!("body is not JSON: {e}")))?;
            let events = parse(&body)?;
            Ok(WebhookOutcome { events, answer: WebhookAnswer::ok_empty() })
        }
        other => Err(WebhookError::Malformed(format!("unexpected method {other}"))),
    }
}

/// The subscription handshake: Meta sends `hub.mode=subscribe`, the verify token the admin typed
/// into the app dashboard, and a `hub.challenge` we must echo as plain text.
pub fn answer_handshake(config: &ChannelConfig, request: &WebhookRequest<'_>) -> Result<WebhookOutcome, WebhookError> {
    let expected = config
        .secret("verify_token")
        .ok_or_else(|| WebhookError::NotConfigured("secrets.verify_token is missing".into()))?;
    if request.query_param("hub.mode").as_deref() != Some("subscribe") {
        return Err(WebhookError::Malformed("hub.mode is not subscribe".into()));
    }
    let given = request.query_param("hub.verify_token").unwrap_or_default();
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return Err(WebhookError::Unauthorized("hub.verify_token does not match".into()));
    }
    let challenge = request
        .query_param("hub.challenge")
        .ok_or_else(|| WebhookError::Malformed("hub.challenge is missing".into()))?;
    Ok(WebhookOutcome { events: Vec::new(), answer: WebhookAnswer::text(challenge) })
}

/// The `X-Hub-Signature-256` header value Meta sends for `body`: `sha256=` + lowercase hex
/// HMAC-SHA256 keyed by the app secret.
pub fn sign(app_secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(app_secret.as_bytes(), &[body])))
}

/// Checks `X-Hub-Signature-256` over the raw body in constant time.
pub fn verify_signature(config: &ChannelConfig, request: &WebhookRequest<'_>) -> Result<(), WebhookError> {
    let secret = config
        .secret("app_secret")
        .ok_or_else(|| WebhookError::NotConfigured("secrets.app_secret is missing".into()))?;
    let header = request
        .header(SIGNATURE_HEADER)
        .ok_or_else(|| WebhookError::Unauthorized("X-Hub-Signature-256 is missing".into()))?;
    let given_hex = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or_else(|| WebhookError::Unauthorized("X-Hub-Signature-256 is not sha256=…".into()))?;
    let given =
        hex::decode(given_hex).map_err(|_| WebhookError::Unauthorized("X-Hub-Signature-256 is not hex".into()))?;
    let expected = hmac_sha256(secret.as_bytes(), &[request.body]);
    if constant_time_eq(&given, &expected) {
        Ok(())
    } else {
        Err(WebhookError::Unauthorized("X-Hub-Signature-256 does not match the body".into()))
    }
}

/// `{api_base_url}/{api_version}` from the inbox settings, without a trailing slash.
pub fn graph_root(config: &ChannelConfig) -> String {
    let base = config.setting("api_base_url").unwrap_or(DEFAULT_API_BASE_URL).trim_end_matches('/');
    let version = config.setting("api_version").unwrap_or(DEFAULT_API_VERSION).trim_matches('/');
    format!("{base}/{version}")
}

/// The Graph access token, or a permanent failure: retrying will not configure the inbox.
pub fn access_token(config: &ChannelConfig) -> Result<&str, DeliveryError> {
    config
        .secret("access_token")
        .ok_or_else(|| DeliveryError::Permanent("inbox not configured: secrets.access_token is missing".into()))
}

/// A Graph API error object (`{"error": {...}}`), as far as we use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub http_status: u16,
    pub code: Option<i64>,
    pub subcode: Option<i64>,
    pub message: String,
    /// Graph marks some errors as worth retrying.
    pub is_transient: bool,
    /// The `Retry-After` header, in seconds, when Graph sent one.
    pub retry_after_secs: Option<u64>,
}

impl GraphError {
    /// Reads a failed Graph response body; a body that is not a Graph error keeps its first
    /// 200 characters as the message.
    pub fn parse(http_status: u16, retry_after: Option<&str>, body: &str) -> GraphError {
        let error = serde_json::from_str::<Value>(body).ok().and_then(|v| v.get("error").cloned());
        let field = |name: &str| error.as_ref().and_then(|e| e.get(name));
        let mut message = field("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| body.chars().take(200).collect());
        // WhatsApp puts the actionable sentence in error_data.details.
        if let Some(details) = field("error_data").and_then(|d| d.get("details")).and_then(Value::as_str) {
            if !details.is_empty() && details != message {
                message = format!("{message} ({details})");
            }
        }
        GraphError {
            http_status,
            code: field("code").and_then(Value::as_i64),
            subcode: field("error_subcode").and_then(Value::as_i64),
            message,
            is_transient: field("is_transient").and_then(Value::as_bool).unwrap_or(false),
            retry_after_secs: retry_after.and_then(|s| s.trim().parse().ok()),
        }
    }

    fn describe(&self) -> String {
        match (self.code, self.subcode) {
            (Some(c), Some(s)) => format!("Graph error {c}/{s} (HTTP {}): {}", self.http_status, self.message),
            (Some(c), None) => format!("Graph error {c} (HTTP {}): {}", self.http_status, self.message),
            _ => format!("HTTP {}: {}", self.http_status, self.message),
        }
    }

    /// The classification every Meta product shares: rate-limit codes throttle, server-side and
    /// "temporary" codes retry, everything else is permanent with Graph's own message.
    pub fn classify(&self) -> DeliveryError {
        // 4: application request limit; 17: user request limit; 32: page request limit;
        // 613: calls exceeded the rate limit; 80007: WhatsApp business account rate limit;
        // 130429: Cloud API throughput; 131048: spam rate limit; 131056: too many messages to
        // the same customer.
        const RATE_LIMIT: &[i64] = &[4, 17, 32, 613, 80007, 130429, 131048, 131056];
        // 1: unknown API error; 2: service temporarily unavailable; 131000: something went wrong;
        // 131016: service unavailable; 133004: server temporarily unavailable.
        const TEMPORARY: &[i64] = &[1, 2, 131000, 131016, 133004];
        let code = self.code.unwrap_or(0);
        if RATE_LIMIT.contains(&code) || self.http_status == 429 {
            let retry_after_ms =
                self.retry_after_secs.map(|s| s.saturating_mul(1000)).unwrap_or(DEFAULT_THROTTLE.as_millis() as u64);
            return DeliveryError::Throttled { retry_after_ms, detail: self.describe() };
        }
        if TEMPORARY.contains(&code) || self.is_transient || matches!(self.http_status, 408 | 425 | 500..=599) {
            return DeliveryError::Transient(self.describe());
        }
        DeliveryError::Permanent(self.describe())
    }
}

/// Sends one Graph request and returns the JSON body of a 2xx answer, or the parsed Graph error.
/// Transport errors are stripped of their URL: Messenger's token travels in the query string.
pub async fn send_graph(request: reqwest::RequestBuilder) -> Result<Result<Value, GraphError>, DeliveryError> {
    let response = request.send().await.map_err(transport_error)?;
    let status = response.status().as_u16();
    let retry_after =
        response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = response.text().await.map_err(transport_error)?;
    if (200..300).contains(&status) {
        let body = serde_json::from_str(&text).map_err(|e| {
            DeliveryError::Transient(format!("Graph answered HTTP {status} with a body that is not JSON: {e}"))
        })?;
        Ok(Ok(body))
    } else {
        Ok(Err(GraphError::parse(status, retry_after.as_deref(), &text)))
    }
}

/// Fetches bytes (media) and their content type; `bearer` is sent when the host needs it.
pub async fn fetch_bytes(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
) -> Result<(Vec<u8>, Option<String>), DeliveryError> {
    let parsed = url::Url::parse(url).map_err(|e| DeliveryError::Permanent(format!("invalid media URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(DeliveryError::Permanent(format!("media URL scheme {} is not http(s)", parsed.scheme())));
    }
    let mut request = http.get(parsed);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(transport_error)?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        let retry_after =
            response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = response.text().await.unwrap_or_default();
        return Err(GraphError::parse(status, retry_after.as_deref(), &text).classify());
    }
    let content_type =
        response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = response.bytes().await.map_err(transport_error)?;
    Ok((bytes.to_vec(), content_type))
}

fn transport_error(e: reqwest::Error) -> DeliveryError {
    let builder = e.is_builder();
    let e = e.without_url();
    if builder {
        DeliveryError::Permanent(format!("invalid Graph request: {e}"))
    } else {
        DeliveryError::Transient(format!("Graph request failed: {e}"))
    }
}

pub use crate::channel::geo_uri;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_errors_are_classified() {
        let body = |code: i64| {
            format!(r#"{{"error":{{"message":"m","type":"OAuthException","code":{code},"fbtrace_id":"x"}}}}"#)
        };
        assert!(matches!(
            GraphError::parse(400, None, &body(130429)).classify(),
            DeliveryError::Throttled { retry_after_ms: 60_000, .. }
        ));
        assert!(matches!(
            GraphError::parse(400, Some("5"), &body(4)).classify(),
            DeliveryError::Throttled { retry_after_ms: 5_000, .. }
        ));
        assert!(matches!(GraphError::parse(500, None, &body(1)).classify(), DeliveryError::Transient(_)));
        assert!(matches!(GraphError::parse(400, None, &body(2)).classify(), DeliveryError::Transient(_)));
        assert!(
            matches!(GraphError::parse(400, None, &body(100)).classify(), DeliveryError::Permanent(m) if m.contains("Graph error 100"))
        );
        assert!(matches!(
            GraphError::parse(502, None, "<html>bad gateway</html>").classify(),
            DeliveryError::Transient(_)
        ));
    }

    #[test]
    fn signature_has_meta_shape() {
        let s = sign("secret", b"{}");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
    }
}

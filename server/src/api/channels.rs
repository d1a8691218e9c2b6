//! The API channel's ingestion endpoint: a business system posts a customer's message with the
//! inbox's bearer token. The caller learns the tenant from the inbox, so this is one of the few
//! places that reads storage unscoped; it must authenticate the token (constant-time hash
//! comparison) before anything is stored, and answer 2xx only after the message is committed.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use switchboard_core::domain::{Attachment, ChannelKind, InboundMessage, Message};
use switchboard_core::ids::{ConversationId, InboxId};
use utoipa::ToSchema;

use crate::api::validate::{optional_text, required_text, MAX_NAME_CHARS};
use crate::auth::token_hash;
use crate::conversations::ingest;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{body_bytes, json_from_bytes, ApiPath};
use crate::state::AppState;
use crate::time::now_ms;

/// Longest `message_id` and `contact.id`, in characters.
pub const MAX_EXTERNAL_ID_CHARS: usize = 200;
/// Most attachments one message may carry.
pub const MAX_ATTACHMENTS: usize = 10;
const MAX_URL_CHARS: usize = 2048;

pub fn router() -> Router<AppState> {
    Router::new().route("/channels/api/{inbox_id}/messages", post(post_message))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ApiChannelContact {
    /// Your system's id for the customer (1–200 characters).
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub id: String,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ApiChannelMessage {
    /// Your id for this message (1–200 characters): the idempotency key. Posting the same id
    /// again returns the stored message with `duplicate: true`.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub message_id: String,
    pub contact: ApiChannelContact,
    pub text: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IngestedMessage {
    pub message: Message,
    pub conversation_id: ConversationId,
    /// True when `message_id` was already stored (a redelivery); nothing new was stored.
    pub duplicate: bool,
}

/// Bounds an external id: trimmed emptiness is refused, the id itself is kept verbatim.
fn external_id(field: &str, value: &str) -> ApiResult<String> {
    required_text(field, value, MAX_EXTERNAL_ID_CHARS)?;
    if value.chars().count() > MAX_EXTERNAL_ID_CHARS {
        return Err(ApiError::Unprocessable(format!("{field} must be at most {MAX_EXTERNAL_ID_CHARS} characters")));
    }
    Ok(value.to_string())
}

pub fn check_attachments(attachments: &[Attachment]) -> ApiResult<()> {
    if attachments.len() > MAX_ATTACHMENTS {
        return Err(ApiError::Unprocessable(format!("at most {MAX_ATTACHMENTS} attachments per message")));
    }
    for a in attachments {
        required_text("attachments[].kind", &a.kind, 50)?;
        optional_text("attachments[].url", a.url.as_deref(), MAX_URL_CHARS)?;
        optional_text("attachments[].name", a.name.as_deref(), 255)?;
        optional_text("attachments[].mime", a.mime.as_deref(), 255)?;
        if a.size.is_some_and(|s| s < 0) {
            return Err(ApiError::Unprocessable("attachments[].size must not be negative".into()));
        }
    }
    Ok(())
}

/// True when `presented` is the token whose hash is `stored`; compared in constant time.
fn token_matches(presented: Option<&str>, stored: Option<&str>) -> bool {
    match (presented, stored) {
        (Some(token), Some(stored)) => token_hash(token).as_bytes().ct_eq(stored.as_bytes()).into(),
        _ => false,
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Inbox setting: refuse ingestion requests that are not signed (see [`check_signature`]).
pub const REQUIRE_SIGNED: &str = "require_signed_requests";

/// Checks an optional request signature: `X-Switchboard-Timestamp` (Unix seconds) and
/// `X-Switchboard-Signature: v1=hex(HMAC-SHA256(webhook_secret, timestamp + "." + body))` — the
/// same scheme as our reply webhooks, with the inbox's webhook secret. A signed request must
/// verify (401 `invalid_signature`) and be fresh (401 `stale_request`, replay window
/// `security.webhook_max_age_secs`); an unsigned one passes unless the inbox sets
/// `require_signed_requests`.
fn check_signature(state: &AppState, inbox: &switchboard_core::domain::Inbox, headers: &HeaderMap, body: &[u8]) -> ApiResult<()> {
    use switchboard_gateway::api_channel::{sign, HEADER_SIGNATURE, HEADER_TIMESTAMP};
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let required = inbox.settings.get(REQUIRE_SIGNED).and_then(serde_json::Value::as_bool).unwrap_or(false);
    let (timestamp, signature) = match (header(HEADER_TIMESTAMP), header(HEADER_SIGNATURE)) {
        (None, None) if !required => return Ok(()),
        (Some(t), Some(s)) => (t, s),
        _ => return Err(ApiError::BadSignature),
    };
    let secret = inbox.secrets.get(crate::api::inboxes::WEBHOOK_SECRET).and_then(serde_json::Value::as_str).ok_or(ApiError::BadSignature)?;
    let ts: i64 = timestamp.parse().map_err(|_| ApiError::BadSignature)?;
    if !switchboard_gateway::signature::constant_time_eq(sign(secret, ts, body).as_bytes(), signature.as_bytes()) {
        return Err(ApiError::BadSignature);
    }
    let max_age = i64::try_from(state.settings.security.webhook_max_age_secs).unwrap_or(i64::MAX);
    if !switchboard_gateway::signature::timestamp_is_fresh(timestamp, now_ms() / 1000, max_age) {
        return Err(ApiError::StaleRequest);
    }
    Ok(())
}

/// Post a customer message into an API inbox.
///
/// Authenticated with the inbox's ingestion token (`Authorization: Bearer sbi_…`). Optionally
/// signed as well (`X-Switchboard-Timestamp` + `X-Switchboard-Signature`, HMAC-SHA256 of
/// `timestamp.body` with the inbox's webhook secret): a signed request older than the replay
/// window is refused with 401 `stale_request`, and an inbox with `settings.require_signed_requests`
/// refuses unsigned ones. Answers 201 for a new message and 200 with `duplicate: true` when
/// `message_id` was already stored; either answer means the message is committed. Retry on 5xx.
#[utoipa::path(
    post, path = "/channels/api/{inbox_id}/messages", tag = "channels",
    params(
        ("inbox_id" = i64, Path, description = "Inbox id"),
        ("X-Switchboard-Timestamp" = Option<String>, Header, description = "Unix seconds the request was signed at (with X-Switchboard-Signature)"),
        ("X-Switchboard-Signature" = Option<String>, Header, description = "`v1=` + hex HMAC-SHA256(webhook secret, timestamp + \".\" + body)"),
    ),
    request_body = ApiChannelMessage,
    responses(
        (status = 201, description = "Stored", body = IngestedMessage),
        (status = 200, description = "Already stored earlier (redelivery)", body = IngestedMessage),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong ingestion token (`unauthorized`), a bad or missing required signature (`invalid_signature`), or a signed timestamp outside the replay window (`stale_request`)", body = ErrorBody),
        (status = 404, description = "No such API inbox", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, description = "Storage unavailable; retry", body = ErrorBody),
    ),
    security(("inbox_token" = []))
)]
pub async fn post_message(
    State(state): State<AppState>,
    ApiPath(inbox_id): ApiPath<InboxId>,
    headers: HeaderMap,
    // Taken as a `Result` so the caller is authenticated before the body's errors are reported;
    // as bytes, because a signature covers the raw body.
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<IngestedMessage>)> {
    let (inbox, stored_hash) = state.store.get_inbox_unscoped(inbox_id).await?.ok_or(ApiError::NotFound("inbox"))?;
    if inbox.kind != ChannelKind::Api {
        return Err(ApiError::NotFound("inbox"));
    }
    if !token_matches(bearer(&headers), stored_hash.as_deref()) {
        return Err(ApiError::Unauthorized);
    }
    let raw = body_bytes(body)?;
    check_signature(&state, &inbox, &headers, &raw)?;
    let body: ApiChannelMessage = json_from_bytes(&headers, &raw)?;
    let platform_message_id = external_id("message_id", &body.message_id)?;
    let contact_external_id = external_id("contact.id", &body.contact.id)?;
    let contact_name = optional_text("contact.name", body.contact.name.as_deref(), MAX_NAME_CHARS)?;
    check_attachments(&body.attachments)?;
    let outcome = ingest(&state, InboundMessage {
        tenant_id: inbox.tenant_id,
        inbox_id: inbox.id,
        contact_external_id,
        contact_name,
        platform_message_id,
        text: body.text,
        attachments: body.attachments,
        now: now_ms(),
    })
    .await?;
    let status = if outcome.message_created { StatusCode::CREATED } else { StatusCode::OK };
    let answer = IngestedMessage {
        conversation_id: outcome.conversation.id,
        message: outcome.message,
        duplicate: !outcome.message_created,
    };
    Ok((status, Json(answer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_must_match_the_stored_hash() {
        let stored = token_hash("sbi_secret");
        assert!(token_matches(Some("sbi_secret"), Some(&stored)));
        assert!(!token_matches(Some("sbi_other"), Some(&stored)));
        assert!(!token_matches(None, Some(&stored)));
        assert!(!token_matches(Some("sbi_secret"), None));
    }

    #[test]
    fn external_ids_are_bounded_and_kept_verbatim() {
        assert_eq!(external_id("message_id", " m-1 ").ok(), Some(" m-1 ".to_string()));
        assert!(external_id("message_id", "").is_err());
        assert!(external_id("message_id", "  ").is_err());
        assert!(external_id("message_id", &"x".repeat(200)).is_ok());
        assert!(external_id("message_id", &"x".repeat(201)).is_err());
    }

    #[test]
    fn attachments_are_bounded() {
        let a = Attachment { kind: "image".into(), url: Some("https://x/y.png".into()), name: None, mime: None, size: Some(10) };
        assert!(check_attachments(std::slice::from_ref(&a)).is_ok());
        assert!(check_attachments(&vec![a.clone(); MAX_ATTACHMENTS + 1]).is_err());
        let bad = Attachment { kind: " ".into(), ..a.clone() };
        assert!(check_attachments(&[bad]).is_err());
        let negative = Attachment { size: Some(-1), ..a };
        assert!(check_attachments(&[negative]).is_err());
    }
}

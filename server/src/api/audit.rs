//! The audit log of admin and supervisor actions: [`record`], which every mutating admin /
//! supervisor handler calls once its change is committed, and `GET /audit-log` (admins only,
//! the caller's tenant only, newest first with an id cursor).
//!
//! What an entry holds: the tenant, the actor (user id and email, or the API key's id), the
//! action (`area.verb`), the target row, the time, and a small JSON `detail` naming *which
//! fields* changed — never a secret's value (inbox secrets are listed by key name only).
//!
//! Written right after the change commits, not inside its transaction: the store's mutations
//! are single-purpose transactions, and threading an audit insert into each would put audit
//! policy into the storage crate. The cost: if the process dies between the two statements, or
//! the audit insert fails (logged at `error` and counted in `switchboard_audit_write_failures_total`),
//! that change has no entry. The answer to the caller is the change's, either way.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_core::domain::{AuditEntry, AuditFilter, NewAuditEntry};
use switchboard_core::ids::UserId;
use utoipa::{IntoParams, ToSchema};

use crate::api::validate::{limit, optional_text, DEFAULT_LIMIT, MAX_LIMIT};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::state::AppState;
use crate::time::now_ms;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit-log", get(list_audit_log))
}

/// Appends an audit entry for `principal`'s action. Never fails the request (see the module
/// docs); `detail` must hold no secret.
pub async fn record(
    state: &AppState,
    principal: &Principal,
    action: &str,
    target_type: &str,
    target_id: impl ToString,
    detail: Value,
) {
    let (actor_user_id, actor_label) = match &principal.user {
        Some(user) => (Some(user.id), user.email.clone()),
        None => match principal.api_token_id {
            Some(key) => (None, format!("api-key:{key}")),
            None => (None, "system".to_owned()),
        },
    };
    let entry = NewAuditEntry {
        tenant_id: principal.tenant_id,
        actor_user_id,
        actor_api_token_id: principal.api_token_id.map(|k| k.0),
        actor_label,
        action: action.to_owned(),
        target_type: target_type.to_owned(),
        target_id: Some(target_id.to_string()),
        detail,
    };
    if let Err(e) = state.store.record_audit(entry, now_ms()).await {
        metrics::counter!("switchboard_audit_write_failures_total").increment(1);
        tracing::error!(error = %e, action, target_type, "audit entry not written");
    }
}

/// The key names of a secrets object (what an audit entry may say about secrets).
pub fn secret_names(secrets: &Value) -> Value {
    match secrets {
        Value::Object(map) => Value::Array(map.keys().map(|k| Value::String(k.clone())).collect()),
        _ => Value::Array(vec![]),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this action, e.g. `inbox.update`.
    pub action: Option<String>,
    /// Only actions of this user.
    pub actor_user_id: Option<i64>,
    /// Only actions on this kind of row (`user`, `inbox`, `team`, `api_token`, ...).
    pub target_type: Option<String>,
    /// Only actions on this row (with `target_type`).
    pub target_id: Option<String>,
    /// Entries at or after this time (ms since the epoch).
    pub since: Option<i64>,
    /// Entries before this time (ms since the epoch).
    pub until: Option<i64>,
    /// The previous page's `next_cursor`: entries older than it.
    pub cursor: Option<i64>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<i64>,
}

/// The tenant's audit log (admin): who changed users, roles, teams, inboxes and their secrets,
/// flows, API keys, statuses, assignments and dead letters, newest first.
#[utoipa::path(
    get, path = "/audit-log", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, body = AuditPage),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_audit_log(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    principal.require_admin()?;
    let page = limit(q.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    if let Some(c) = q.cursor {
        if c < 1 {
            return Err(ApiError::Unprocessable("cursor must be positive".into()));
        }
    }
    if let (Some(since), Some(until)) = (q.since, q.until) {
        if since > until {
            return Err(ApiError::Unprocessable("since must not be after until".into()));
        }
    }
    let filter = AuditFilter {
        action: optional_text("action", q.action.as_deref(), 64)?,
        actor_user_id: q.actor_user_id.map(UserId),
        target_type: optional_text("target_type", q.target_type.as_deref(), 64)?,
        target_id: optional_text("target_id", q.target_id.as_deref(), 64)?,
        since: q.since,
        until: q.until,
        before: q.cursor,
        limit: page,
    };
    let entries = state.store.list_audit(principal.tenant_id, filter).await?;
    let next_cursor = if entries.len() as i64 == page { entries.last().map(|e| e.id) } else { None };
    Ok(Json(AuditPage { entries, next_cursor }))
}

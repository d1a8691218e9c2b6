//! Inboxes: the tenant's entry points (web widget, API channel, messaging platforms). Owns the
//! credentials an inbox is born with: the API channel's ingestion token (only its hash is
//! stored) and webhook signing secret, and the web widget's public key. Secrets leave the server
//! exactly once, in the create / rotate response; every other answer serializes `Inbox`, whose
//! `secrets` field is never serialized.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_core::domain::{ChannelKind, Inbox, InboxPatch, NewInbox};
use switchboard_core::ids::{InboxId, TeamId};
use utoipa::ToSchema;

use crate::api::teams::ensure_team;
use crate::api::validate::{check_webhook_url, double_option, json_object, merge_object, required_text, MAX_NAME_CHARS};
use crate::auth::{new_token, token_hash, Principal};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::time::now_ms;

/// Settings key of the web widget's public key.
pub const WIDGET_KEY: &str = "widget_key";
/// Settings key of the API channel's reply webhook.
pub const WEBHOOK_URL: &str = "webhook_url";
/// Secrets key of the API channel's webhook signing secret.
pub const WEBHOOK_SECRET: &str = "webhook_secret";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inboxes", get(list_inboxes).post(create_inbox))
        .route("/inboxes/{id}", get(get_inbox).patch(update_inbox))
        .route("/inboxes/{id}/rotate-token", post(rotate_token))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInbox {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    pub kind: ChannelKind,
    /// Channel settings, e.g. `{"webhook_url": "https://…"}` for `api`.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
    /// Channel secrets for platform kinds (stored, never shown again). Generated for `api`.
    #[schema(value_type = Option<Object>)]
    pub secrets: Option<Value>,
    #[serde(default)]
    pub mask_identifiers: bool,
    pub team_id: Option<TeamId>,
}

/// A newly created inbox with its credentials, shown only in this response.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedInbox {
    #[serde(flatten)]
    pub inbox: Inbox,
    /// API channel: the bearer token for `POST /channels/api/{inbox_id}/messages`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound_token: Option<String>,
    /// API channel: the HMAC secret signing reply webhooks (`X-Switchboard-Signature`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

/// Fields to change; absent fields stay. `settings` and `secrets` are merged key by key (a
/// `null` value removes the key); `team_id: null` detaches the inbox from its team.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInbox {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub secrets: Option<Value>,
    pub mask_identifiers: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub team_id: Option<Option<TeamId>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedToken {
    /// The new ingestion token; the previous one stops working now.
    pub inbound_token: String,
}

/// Checks settings that the server itself acts on.
fn check_settings(kind: ChannelKind, settings: &Map<String, Value>) -> ApiResult<()> {
    if kind == ChannelKind::Api {
        if let Some(url) = settings.get(WEBHOOK_URL).filter(|v| !v.is_null()) {
            check_webhook_url(url)?;
        }
        if settings.get(crate::api::channels::REQUIRE_SIGNED).is_some_and(|v| !v.is_boolean() && !v.is_null()) {
            return Err(ApiError::Unprocessable(format!("settings.{} must be true or false", crate::api::channels::REQUIRE_SIGNED)));
        }
    }
    if kind == ChannelKind::Web {
        crate::api::prechat::check_settings(settings)?;
    }
    if let Some(url) = settings.get(crate::bot::HOOK_URL).filter(|v| !v.is_null()) {
        check_webhook_url(url)
            .map_err(|_| ApiError::Unprocessable(format!("settings.{} must be an absolute http(s) URL", crate::bot::HOOK_URL)))?;
    }
    Ok(())
}

/// List the tenant's inboxes (supervisors and admins).
#[utoipa::path(
    get, path = "/inboxes", tag = "inboxes",
    responses((status = 200, body = Vec<Inbox>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_inboxes(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Vec<Inbox>>> {
    principal.require_supervisor()?;
    Ok(Json(state.store.list_inboxes(principal.tenant_id).await?))
}

/// Create an inbox (admin).
///
/// `api` inboxes get an ingestion token and a webhook secret; `web` inboxes get a public
/// `settings.widget_key`. Other kinds store `settings` and `secrets` as given.
#[utoipa::path(
    post, path = "/inboxes", tag = "inboxes",
    request_body = CreateInbox,
    responses(
        (status = 201, description = "Created; credentials are shown only here", body = CreatedInbox),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such team", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_inbox(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateInbox>,
) -> ApiResult<(StatusCode, Json<CreatedInbox>)> {
    principal.require_admin()?;
    let name = required_text("name", &body.name, MAX_NAME_CHARS)?;
    let mut settings = json_object("settings", body.settings)?;
    let mut secrets = json_object("secrets", body.secrets)?;
    check_settings(body.kind, &settings)?;
    crate::gateway::check_inbox_settings(&state, principal.tenant_id, None, body.kind, &settings).await?;
    if let Some(team) = body.team_id {
        ensure_team(&state, &principal, team).await?;
    }
    let (mut inbound_token, mut webhook_secret) = (None, None);
    match body.kind {
        ChannelKind::Api => {
            let secret = new_token("whsec_");
            secrets.insert(WEBHOOK_SECRET.into(), Value::String(secret.clone()));
            webhook_secret = Some(secret);
            inbound_token = Some(new_token("sbi_"));
        }
        ChannelKind::Web => {
            settings.insert(WIDGET_KEY.into(), Value::String(new_token("wk_")));
        }
        _ => {}
    }
    let new = NewInbox {
        tenant_id: principal.tenant_id,
        name,
        kind: body.kind,
        settings: Value::Object(settings),
        secrets: Value::Object(secrets),
        mask_identifiers: body.mask_identifiers,
        team_id: body.team_id,
        token_hash: inbound_token.as_deref().map(token_hash),
    };
    let inbox = state.store.create_inbox(new, now_ms()).await?;
    tracing::info!(inbox_id = %inbox.id, kind = %inbox.kind, "inbox created");
    let detail = serde_json::json!({"name": inbox.name, "kind": inbox.kind, "secrets": crate::api::audit::secret_names(&inbox.secrets)});
    crate::api::audit::record(&state, &principal, "inbox.create", "inbox", inbox.id, detail).await;
    Ok((StatusCode::CREATED, Json(CreatedInbox { inbox, inbound_token, webhook_secret })))
}

/// One inbox (supervisors and admins).
#[utoipa::path(
    get, path = "/inboxes/{id}", tag = "inboxes",
    params(("id" = i64, Path, description = "Inbox id")),
    responses(
        (status = 200, body = Inbox),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_inbox(State(state): State<AppState>, principal: Principal, ApiPath(id): ApiPath<InboxId>) -> ApiResult<Json<Inbox>> {
    principal.require_supervisor()?;
    Ok(Json(state.store.get_inbox(principal.tenant_id, id).await?))
}

/// Change an inbox (admin). A web inbox's `widget_key` cannot be changed here.
#[utoipa::path(
    patch, path = "/inboxes/{id}", tag = "inboxes",
    params(("id" = i64, Path, description = "Inbox id")),
    request_body = UpdateInbox,
    responses(
        (status = 200, body = Inbox),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_inbox(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<InboxId>,
    ApiJson(body): ApiJson<UpdateInbox>,
) -> ApiResult<Json<Inbox>> {
    principal.require_admin()?;
    let current = state.store.get_inbox(principal.tenant_id, id).await?;
    let name = match body.name.as_deref() {
        Some(n) => Some(required_text("name", n, MAX_NAME_CHARS)?),
        None => None,
    };
    let settings = match body.settings {
        Some(patch) => {
            let mut merged = json_object("settings", Some(current.settings.clone()))?;
            merge_object(&mut merged, json_object("settings", Some(patch))?);
            // The widget key is issued by the server; an edit must not drop or replace it.
            merged.remove(WIDGET_KEY);
            if let Some(key) = current.settings.get(WIDGET_KEY) {
                merged.insert(WIDGET_KEY.into(), key.clone());
            }
            check_settings(current.kind, &merged)?;
            crate::gateway::check_inbox_settings(&state, principal.tenant_id, Some(id), current.kind, &merged).await?;
            Some(Value::Object(merged))
        }
        None => None,
    };
    // Which secrets an update names (key names only, never values), for the audit log.
    let secrets_named = body.secrets.as_ref().map(crate::api::audit::secret_names);
    let secrets = match body.secrets {
        Some(patch) => {
            let mut merged = json_object("secrets", Some(current.secrets.clone()))?;
            merge_object(&mut merged, json_object("secrets", Some(patch))?);
            Some(Value::Object(merged))
        }
        None => None,
    };
    if let Some(Some(team)) = body.team_id {
        ensure_team(&state, &principal, team).await?;
    }
    let changed: Vec<&str> = [
        ("name", name.is_some()),
        ("settings", settings.is_some()),
        ("secrets", secrets.is_some()),
        ("mask_identifiers", body.mask_identifiers.is_some()),
        ("team_id", body.team_id.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    let patch = InboxPatch { name, settings, secrets, mask_identifiers: body.mask_identifiers, team_id: body.team_id, token_hash: None };
    let updated = state.store.update_inbox(principal.tenant_id, id, patch, now_ms()).await?;
    let action = if secrets_named.is_some() { "inbox.secrets.update" } else { "inbox.update" };
    let detail = serde_json::json!({"fields": changed, "secrets": secrets_named});
    crate::api::audit::record(&state, &principal, action, "inbox", id, detail).await;
    Ok(Json(updated))
}

/// Issue a new ingestion token for an API inbox (admin); the old one stops working.
#[utoipa::path(
    post, path = "/inboxes/{id}/rotate-token", tag = "inboxes",
    params(("id" = i64, Path, description = "Inbox id")),
    responses(
        (status = 200, description = "The new token, shown only here", body = RotatedToken),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "The inbox is not an API inbox", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_token(State(state): State<AppState>, principal: Principal, ApiPath(id): ApiPath<InboxId>) -> ApiResult<Json<RotatedToken>> {
    principal.require_admin()?;
    let inbox = state.store.get_inbox(principal.tenant_id, id).await?;
    if inbox.kind != ChannelKind::Api {
        return Err(ApiError::Unprocessable(format!("only api inboxes have an ingestion token; this one is {}", inbox.kind)));
    }
    let token = new_token("sbi_");
    let patch = InboxPatch { token_hash: Some(token_hash(&token)), ..Default::default() };
    state.store.update_inbox(principal.tenant_id, id, patch, now_ms()).await?;
    tracing::info!(inbox_id = %id, "inbox ingestion token rotated");
    crate::api::audit::record(&state, &principal, "inbox.token.rotate", "inbox", id, serde_json::json!({})).await;
    Ok(Json(RotatedToken { inbound_token: token }))
}

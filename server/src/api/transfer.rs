//! Transfer and internal notes over REST: `POST /conversations/{id}/transfer` and
//! `POST /conversations/{id}/notes`. Handlers only extract and call `crate::transfer`, which
//! checks who may (the holding agent; supervisors and admins for any conversation of the tenant).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use switchboard_core::domain::{Message, Role};
use switchboard_core::ids::ConversationId;
use switchboard_core::transfer::TransferTarget;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::conversations::Replier;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::views::{conversation_view, ConversationView};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/conversations/{id}/transfer", post(transfer))
        .route("/conversations/{id}/notes", post(add_note))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// `{"agent": 12}`, `{"team": 3}` or `{"queue": true}`.
    pub to: TransferTarget,
    /// An internal note for whoever gets the conversation; never shown to the customer.
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferView {
    /// The conversation after the transfer (already placed with an agent if one had room).
    pub conversation: ConversationView,
    /// The note, stored as a private message.
    pub note: Option<Message>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    pub text: String,
}

fn replier(principal: &Principal) -> Replier {
    Replier { tenant_id: principal.tenant_id, user_id: principal.user_id(), role: principal.role }
}

/// Transfer a conversation to an agent, a team's queue or back to the queue, with an optional
/// internal note. Agents may transfer the conversations they hold; supervisors and admins any.
/// A transfer into a queue keeps the customer's place in line.
#[utoipa::path(
    post, path = "/conversations/{id}/transfer", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id")),
    request_body = TransferBody,
    responses(
        (status = 200, body = TransferView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such conversation, agent or team", body = ErrorBody),
        (status = 409, description = "The conversation is with the bot or closed, already there, or the agent is not available or has no free capacity (nothing changed)", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn transfer(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(body): ApiJson<TransferBody>,
) -> ApiResult<Json<TransferView>> {
    let outcome = crate::transfer::transfer(&state, &replier(&principal), id, body.to, body.note).await?;
    let conversation =
        conversation_view(state.store.as_ref(), outcome.conversation, principal.role == Role::Admin).await?;
    Ok(Json(TransferView { conversation, note: outcome.note }))
}

/// Add an internal note: a private message agents and supervisors see and the customer never
/// does. The same callers as replies.
#[utoipa::path(
    post, path = "/conversations/{id}/notes", tag = "conversations",
    params(("id" = i64, Path, description = "Conversation id")),
    request_body = NoteBody,
    responses(
        (status = 201, body = Message),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The conversation is closed", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn add_note(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(body): ApiJson<NoteBody>,
) -> ApiResult<(StatusCode, Json<Message>)> {
    let note = crate::transfer::add_note(&state, &replier(&principal), id, body.text).await?;
    Ok((StatusCode::CREATED, Json(note)))
}

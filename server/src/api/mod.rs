//! The REST API under `/api/v1`, and its OpenAPI document at `/api/openapi.json`.
//! Each area exposes `router()`; handlers extract, call the store or the conversation service,
//! and map the result. No SQL here, and no state changes that bypass the conversation service.
//!
//! Handlers declare their paths without the `/api/v1` prefix (the router is nested there);
//! [`openapi`] adds the prefix so the document lists the paths clients actually call.

use axum::Router;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::doc::{StandardErrors, WireEnums};
use crate::error::ApiError;
use crate::state::AppState;

pub mod audit;
pub mod auth;
pub mod canned;
pub mod channels;
pub mod contacts;
pub mod conversations;
pub mod doc;
pub mod flows;
pub mod inboxes;
pub mod outbox;
pub mod prechat;
pub mod security;
pub mod teams;
pub mod tokens;
pub mod transfer;
pub mod users;
pub mod validate;
pub mod wrapup;

/// Where `router()` is mounted; prefixed to every path of the OpenAPI document.
pub const PREFIX: &str = "/api/v1";

/// Every area's routes, with our error shape for unknown paths (404) and methods (405, with
/// `Allow`), and the security headers of [`security`] on every answer.
pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .merge(auth::router())
        .merge(audit::router())
        .merge(users::router())
        .merge(teams::router())
        .merge(inboxes::router())
        .merge(flows::router())
        .merge(channels::router())
        .merge(conversations::router())
        .merge(transfer::router())
        .merge(outbox::router())
        .merge(tokens::router())
        .merge(crate::supervisor::router())
        .merge(crate::queues::router())
        .merge(crate::media::api_router())
        .merge(canned::router())
        .merge(wrapup::router())
        .merge(contacts::router())
        // After the routes: it is installed on each route present now.
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .fallback(|| async { ApiError::NotFound("route") });
    security::apply(routes)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        description = "REST API of the Switchboard contact-center server. Every error answers \
                       `{\"error\": {\"code\", \"message\"}}` with a stable `code`.",
        license(name = "Apache-2.0")
    ),
    paths(
        auth::login, auth::logout, auth::me,
        users::list_users, users::create_user, users::get_user, users::update_user, users::set_status,
        teams::list_teams, teams::create_team, teams::add_member, teams::list_members,
        inboxes::list_inboxes, inboxes::create_inbox, inboxes::get_inbox, inboxes::update_inbox, inboxes::rotate_token,
        flows::get_flow, flows::put_flow, flows::delete_flow, flows::list_hook_calls,
        channels::post_message,
        conversations::list_conversations, conversations::get_conversation, conversations::list_messages,
        conversations::post_reply, conversations::resolve, conversations::assign, conversations::set_biz_data,
        conversations::list_events,
        transfer::transfer, transfer::add_note, transfer::transfer_targets,
        outbox::list_outbox, outbox::retry,
        tokens::list_tokens, tokens::create_token, tokens::delete_token,
        crate::supervisor::queues, crate::supervisor::channels,
        crate::queues::get_policy, crate::queues::put_policy, crate::queues::claim,
        crate::queues::accept, crate::queues::reject,
        crate::media::upload, crate::media::widget_upload, crate::media::refresh_link,
        canned::list_canned, canned::create_canned, canned::update_canned, canned::delete_canned,
        wrapup::get_template, wrapup::put_template,
        contacts::list_contact_conversations, contacts::list_contact_messages,
        audit::list_audit_log,
    ),
    components(schemas(
        crate::error::ErrorBody, crate::error::ErrorDetail, crate::error::ErrorItem,
        crate::views::ConversationView, crate::views::ContactView, crate::views::InboxSummary,
    )),
    modifiers(&SecuritySchemes, &WireEnums, &StandardErrors),
    tags(
        (name = "auth", description = "Login sessions"),
        (name = "users", description = "Admins, supervisors and agents"),
        (name = "teams", description = "Groups of agents with a queue"),
        (name = "inboxes", description = "Channels' entry points and their credentials"),
        (name = "auto-responder", description = "Per-inbox bot flows and the decision hook's call log"),
        (name = "channels", description = "Message ingestion from business systems (API channel)"),
        (name = "conversations", description = "Conversations, messages and their life cycle"),
        (name = "supervisor", description = "Live queue and provider health"),
        (name = "routing", description = "Team queue policies and manual pick"),
        (name = "outbox", description = "Reply deliveries and dead letters"),
        (name = "media", description = "Uploads for attachments (downloads are signed `/media/...` links)"),
        (name = "api-tokens", description = "API keys for business systems"),
        (name = "canned-responses", description = "Replies agents insert with a `/shortcut`"),
        (name = "audit", description = "Who changed what: the audit log of admin and supervisor actions"),
    )
)]
struct ApiDoc;

/// Declares the two bearer schemes: `bearer` (a login session `sbs_…` or an API key `sbk_…`)
/// and `inbox_token` (an API inbox's ingestion token `sbi_…`).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components.add_security_scheme("inbox_token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths = paths.into_iter().map(|(path, item)| (format!("{PREFIX}{path}"), item)).collect();
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_lists_every_area_under_the_prefix() {
        let doc = openapi();
        let json = doc.to_json().unwrap_or_default();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        let paths = value["paths"].as_object().map(|p| p.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        for expected in [
            "/api/v1/auth/login",
            "/api/v1/me",
            "/api/v1/users/{id}/status",
            "/api/v1/teams/{id}/members",
            "/api/v1/inboxes/{id}/rotate-token",
            "/api/v1/channels/api/{inbox_id}/messages",
            "/api/v1/conversations/{id}/biz_data",
            "/api/v1/outbox/{id}/retry",
            "/api/v1/api-tokens/{id}",
        ] {
            assert!(paths.iter().any(|p| p == expected), "{expected} missing from {paths:?}");
        }
        assert!(paths.iter().all(|p| p.starts_with(PREFIX)));
        assert!(value["components"]["securitySchemes"]["bearer"].is_object());
        assert!(value["components"]["schemas"]["ErrorBody"].is_object());
        // Secrets never appear in a schema clients see.
        assert!(value["components"]["schemas"]["User"]["properties"]["password_hash"].is_null());
        assert!(value["components"]["schemas"]["Inbox"]["properties"]["secrets"].is_null());
    }

    #[test]
    fn openapi_declares_the_errors_each_operation_can_give() {
        let json = openapi().to_json().unwrap_or_default();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        let codes = |path: &str, method: &str| {
            value["paths"][path][method]["responses"].as_object().map(|r| r.keys().cloned().collect::<Vec<_>>()).unwrap_or_default()
        };
        // A JSON body and a path id: every way such a request can fail.
        let patch_user = codes("/api/v1/users/{id}", "patch");
        for code in ["200", "400", "401", "403", "404", "413", "415", "422", "503"] {
            assert!(patch_user.iter().any(|c| c == code), "PATCH /users/{{id}} lacks {code}: {patch_user:?}");
        }
        // No body, no parameters: neither 400 nor 415; anyone may log in, but not without a body.
        let list_teams = codes("/api/v1/teams", "get");
        assert!(!list_teams.iter().any(|c| c == "400" || c == "415" || c == "404"), "{list_teams:?}");
        assert!(list_teams.iter().any(|c| c == "401"));
        assert!(codes("/api/v1/auth/login", "post").iter().any(|c| c == "415"));
        assert!(value["paths"]["/api/v1/users"]["get"]["responses"]["503"]["headers"]["Retry-After"].is_object());
        // Enums are listed as they are written on the wire.
        assert_eq!(value["components"]["schemas"]["Role"]["enum"], serde_json::json!(["admin", "supervisor", "agent"]));
        assert_eq!(value["components"]["schemas"]["ConversationState"]["enum"][4], "waiting_on_customer");
    }
}

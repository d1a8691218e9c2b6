//! The `/widget` namespace: customers chatting from the web widget.
//!
//! Connect with `auth: {inbox_id, widget_key, session?, name?}`. `widget_key` is the web inbox's
//! public key (it is embedded in the site's snippet, so it identifies the inbox, not the
//! customer). `session` is the resumable session token the browser keeps; without one the server
//! mints one. Only the token's SHA-256 is stored (as the contact's identity on the inbox), so the
//! token itself is the customer's proof of identity.
//!
//! - server → client: `session {session, conversation_id}` on connect, `message` (agent replies
//!   and this customer's own messages from other tabs), `conversation {id, state}`.
//! - client → server: `message {client_message_id, text, attachments?}` (attachments: files
//!   uploaded with `POST /api/v1/widget/uploads`) acked `{ok, message}` only after the commit
//!   (the same `client_message_id` twice stores one message), and
//!   `sync {after}` acked `{ok, messages}` (messages of the current conversation with id > after),
//!   and `typing` (ephemeral; the agent sees it). The agent's typing arrives as
//!   `typing {conversation_id}`.
//! - pre-chat form (`api::prechat`): `session` carries `prechat` (`{require_email, departments}`
//!   or `null`); the client answers `prechat {name, email?, team_id?}`, acked `{ok}` or refused
//!   (422), before its first message. The answers name the contact, land in the new
//!   conversation's `attributes.prechat` and send it to the chosen team's queue. They live on the
//!   socket, so a client sends them again after reconnecting until its conversation exists.

use serde_json::{json, Value};
use socketioxide::extract::{AckSender, Extension, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;
use switchboard_core::bus::BusEvent;
use switchboard_core::domain::{ChannelKind, Conversation, InboundMessage, Message, SenderKind};
use switchboard_core::ids::{ConversationId, InboxId, MessageId, TenantId};
use switchboard_core::realtime::{CustomerMessage, WidgetAuth, WidgetSync};
use switchboard_gateway::signature::constant_time_eq;

use super::{send_ack, AuthFailed};
use crate::auth::{new_token, token_hash};
use crate::conversations;
use crate::error::ApiError;
use crate::state::AppState;
use crate::time::now_ms;


/// Who this widget socket is, decided at connect.
#[derive(Clone)]
struct Customer {
    tenant_id: TenantId,
    inbox_id: InboxId,
    session: String,
    external_id: String,
    name: Option<String>,
    /// The pre-chat answers, once given on this socket.
    prechat: Option<crate::api::prechat::Prechat>,
}

pub fn register(io: &SocketIo, state: AppState) {
    let auth_state = state.clone();
    let authenticate = move |s: SocketRef, TryData(auth): TryData<WidgetAuth>| {
        let state = auth_state.clone();
        async move {
            let auth = auth.map_err(|_| AuthFailed("unauthorized: send auth {inbox_id, widget_key}"))?;
            let found = state.store.get_inbox_unscoped(auth.inbox_id).await.map_err(|_| AuthFailed("unavailable"))?;
            let (inbox, _) = found.ok_or(AuthFailed("unknown inbox"))?;
            let key = inbox.settings.get("widget_key").and_then(Value::as_str).unwrap_or_default();
            if inbox.kind != ChannelKind::Web || key.is_empty() || !constant_time_eq(key.as_bytes(), auth.widget_key.as_bytes()) {
                return Err(AuthFailed("unknown inbox"));
            }
            let session = match auth.session {
                Some(token) if token.starts_with("sbw_") && token.len() <= 100 => token,
                _ => new_token("sbw_"),
            };
            let name = auth.name.map(|n| n.chars().take(200).collect());
            s.extensions.insert(Customer {
                tenant_id: inbox.tenant_id,
                inbox_id: inbox.id,
                external_id: format!("web:{}", &token_hash(&session)[..32]),
                session,
                name,
                prechat: None,
            });
            Ok::<(), AuthFailed>(())
        }
    };
    let on_connect = move |s: SocketRef, Extension(customer): Extension<Customer>| {
        let state = state.clone();
        async move { connected(state, s, customer).await }
    };
    io.ns("/widget", on_connect.with(authenticate));
}

async fn current_conversation(state: &AppState, c: &Customer) -> Result<Option<Conversation>, ApiError> {
    Ok(state.store.find_conversation_for_identity(c.tenant_id, c.inbox_id, &c.external_id).await?)
}

async fn connected(state: AppState, s: SocketRef, customer: Customer) {
    let conversation = current_conversation(&state, &customer).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "widget: loading conversation failed; client will sync");
        None
    });
    if let Some(c) = &conversation {
        s.join(format!("wconv:{}", c.id));
    }
    let prechat = match state.store.get_inbox(customer.tenant_id, customer.inbox_id).await {
        Ok(inbox) => crate::api::prechat::config(&state, &inbox).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "widget: loading the pre-chat form failed; none shown");
            None
        }),
        Err(_) => None,
    };
    let _ = s.emit("session", &json!({ "session": customer.session, "conversation_id": conversation.map(|c| c.id), "prechat": prechat }));

    let st = state.clone();
    s.on("prechat", move |s: SocketRef, TryData(body): TryData<crate::api::prechat::PrechatForm>, ack: AckSender| async move {
        let result = async {
            let form = body.map_err(|e| ApiError::Unprocessable(format!("prechat: {e}")))?;
            let customer = s.extensions.get::<Customer>().ok_or(ApiError::Unauthorized)?;
            let inbox = st.store.get_inbox(customer.tenant_id, customer.inbox_id).await?;
            let config = crate::api::prechat::config(&st, &inbox).await?.ok_or_else(|| ApiError::Conflict("this inbox has no pre-chat form".into()))?;
            let answers = crate::api::prechat::check_form(&config, form)?;
            s.extensions.insert(Customer { name: Some(answers.name.clone()), prechat: Some(answers), ..customer });
            Ok(json!({}))
        }
        .await;
        send_ack(Some(ack), result);
    });

    let st = state.clone();
    s.on("message", move |s: SocketRef, TryData(body): TryData<CustomerMessage>, ack: AckSender| async move {
        let result = async {
            let body = body.map_err(|e| ApiError::Unprocessable(format!("message: {e}")))?;
            let customer = s.extensions.get::<Customer>().ok_or(ApiError::Unauthorized)?;
            if body.client_message_id.is_empty() || body.client_message_id.len() > 100 {
                return Err(ApiError::Unprocessable("client_message_id must be 1 to 100 characters".into()));
            }
            crate::api::channels::check_attachments(&body.attachments)?;
            let room = |o: &switchboard_core::domain::IngestOutcome| s.join(format!("wconv:{}", o.conversation.id));
            let extras = match &customer.prechat {
                Some(p) => conversations::NewConversationExtras {
                    attributes: vec![(crate::api::prechat::PRECHAT.to_owned(), p.attribute())],
                    team: p.department.as_ref().map(|d| d.id),
                },
                None => Default::default(),
            };
            let outcome = conversations::ingest_new_with(&st, InboundMessage {
                tenant_id: customer.tenant_id,
                inbox_id: customer.inbox_id,
                contact_external_id: customer.external_id.clone(),
                contact_name: customer.name.clone(),
                // Namespaced by the customer so one customer's ids never collide with another's.
                platform_message_id: format!("{}:{}", customer.external_id, body.client_message_id),
                // An attachment alone needs no text.
                text: Some(body.text).filter(|t| !t.is_empty() || body.attachments.is_empty()),
                attachments: body.attachments,
                now: now_ms(),
            }, extras, room)
            .await?;
            // The conversation's state rides on the ack: events about it published before this
            // socket joined the conversation's room (e.g. its assignment) did not reach it.
            Ok(json!({
                "message": outcome.message,
                "conversation_id": outcome.conversation.id,
                "conversation": { "id": outcome.conversation.id, "state": outcome.conversation.state },
                "duplicate": !outcome.message_created,
            }))
        }
        .await;
        send_ack(Some(ack), result);
    });

    // Ephemeral, never stored: relayed to the agent holding the conversation (and supervisors
    // watching it), at most one per second per socket.
    let st = state.clone();
    let last_typing = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    s.on("typing", move |s: SocketRef, ack: AckSender| {
        let last_typing = last_typing.clone();
        async move {
            let result = async {
                let customer = s.extensions.get::<Customer>().ok_or(ApiError::Unauthorized)?;
                if !super::typing_allowed(&last_typing) {
                    return Ok(json!({ "relayed": false }));
                }
                let Some(conversation) = current_conversation(&st, &customer).await? else {
                    return Ok(json!({ "relayed": false }));
                };
                conversations::publish(&st, BusEvent::Typing {
                    tenant_id: customer.tenant_id,
                    conversation_id: conversation.id,
                    assignee_id: conversation.assignee_id,
                    sender: SenderKind::Contact,
                })
                .await;
                Ok(json!({ "relayed": true }))
            }
            .await;
            send_ack(Some(ack), result);
        }
    });

    let st = state.clone();
    s.on("sync", move |s: SocketRef, TryData(body): TryData<WidgetSync>, ack: AckSender| async move {
        let result = async {
            let body = body.map_err(|e| ApiError::Unprocessable(format!("sync: {e}")))?;
            let customer = s.extensions.get::<Customer>().ok_or(ApiError::Unauthorized)?;
            let Some(conversation) = current_conversation(&st, &customer).await? else {
                return Ok(json!({ "messages": [], "conversation_id": null }));
            };
            s.join(format!("wconv:{}", conversation.id));
            let limit = body.limit.unwrap_or(200).clamp(1, 1000);
            let messages = customer_messages(&st, customer.tenant_id, conversation.id, body.after, limit).await?;
            Ok(json!({ "messages": messages, "conversation_id": conversation.id }))
        }
        .await;
        send_ack(Some(ack), result);
    });
}

/// Messages of the conversation after `after` that the customer may see: internal notes
/// (`private`) are left out. Pages on past them, so a page is short only when nothing follows.
async fn customer_messages(
    state: &AppState,
    tenant: TenantId,
    conversation: ConversationId,
    mut after: Option<MessageId>,
    limit: i64,
) -> Result<Vec<Message>, ApiError> {
    let wanted = usize::try_from(limit).unwrap_or(1);
    let mut visible = Vec::new();
    loop {
        let page = state.store.list_messages(tenant, conversation, after, limit).await?;
        let more = page.len() >= wanted;
        after = page.last().map(|m| m.id).or(after);
        visible.extend(page.into_iter().filter(|m| !m.private));
        if !more || visible.len() >= wanted {
            visible.truncate(wanted);
            return Ok(visible);
        }
    }
}



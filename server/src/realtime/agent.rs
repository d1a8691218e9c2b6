//! The `/agent` namespace: agents and supervisors in the browser console.
//!
//! Connect with `auth: {token}` (a login session token). Then:
//! - server → client: `hello {user, conversations}` on connect (the open conversations assigned
//!   to this agent, so a reconnect starts from the truth), `conversation` (a conversation changed
//!   or was assigned), `message` (a new message in a conversation you hold or watch), `agent`
//!   (your status/load changed, or, for supervisors, any agent's).
//! - client → server, each answered by an ack `{ok, ...}` only after the commit:
//!   `status {status}`, `reply {conversation_id, text, client_message_id, attachments?}`,
//!   `resolve {conversation_id, reason, wrap_up?}`, `sync {conversation_id, after}` (messages with id >
//!   after), `watch {conversation_id}` (supervisors), `typing {conversation_id}` (ephemeral,
//!   relayed to the customer's widget as `typing`; the customer's own typing arrives here as
//!   `typing {conversation_id, sender: "contact"}`).
//!
//! Presence: each socket registers itself on the bus and refreshes the entry while connected. When
//! an agent's last socket (on any node) is gone for `agents.disconnect_grace_secs`, the agent is
//! marked offline (no new work is offered to nobody) and their open conversations go back to the
//! queue at their original place, to be offered to agents who are there.

use std::time::Duration;

use serde_json::{json, Value};
use socketioxide::extract::{AckSender, Extension, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;
use switchboard_core::bus::BusEvent;
use switchboard_core::realtime::{AgentAuth, OfferBody, ReplyBody, ResolveBody, SyncBody, TypingBody};
use switchboard_core::domain::{AgentStatus, CloseReason, ConversationFilter, Role, SenderKind, User};

use super::{send_ack, AuthFailed};
use crate::auth::{resolve_token, Principal};
use crate::conversations::{self, Replier};
use crate::error::ApiError;
use crate::state::AppState;
use crate::views::conversation_view;


/// The authenticated user of a socket and the hash of the login session it was opened with,
/// stored in its extensions by the connect middleware.
#[derive(Clone)]
struct Agent(User, String);

pub fn register(io: &SocketIo, state: AppState) {
    let auth_state = state.clone();
    let authenticate = move |s: SocketRef, TryData(auth): TryData<AgentAuth>| {
        let state = auth_state.clone();
        async move {
            let auth = auth.map_err(|_| AuthFailed("unauthorized: send auth {token}"))?;
            let principal: Principal = resolve_token(&state, &auth.token).await.map_err(|e| match e {
                ApiError::Unavailable(_) => AuthFailed("unavailable"),
                _ => AuthFailed("unauthorized"),
            })?;
            let user = principal.user.ok_or(AuthFailed("unauthorized: a login session is required"))?;
            s.extensions.insert(Agent(user, crate::auth::token_hash(&auth.token)));
            Ok::<(), AuthFailed>(())
        }
    };
    let on_connect = move |s: SocketRef, Extension(Agent(user, _)): Extension<Agent>| {
        let state = state.clone();
        async move { connected(state, s, user).await }
    };
    io.ns("/agent", on_connect.with(authenticate));
}

async fn connected(state: AppState, s: SocketRef, user: User) {
    s.join(format!("user:{}", user.id));
    if user.role.sees_all_conversations() {
        s.join(format!("sup:{}", user.tenant_id));
    }
    track_presence(&state, &s, &user).await;

    let hello = hello_payload(&state, &user).await;
    match hello {
        Ok(payload) => {
            let _ = s.emit("hello", &payload);
        }
        Err(e) => tracing::warn!(error = %e, "agent hello failed; client will retry via sync"),
    }

    let st = state.clone();
    s.on("status", move |s: SocketRef, TryData(body): TryData<Value>, ack: AckSender| async move {
        let user = current(&s);
        let result = async {
            let status = body.ok().and_then(|b| b.get("status").and_then(Value::as_str).and_then(AgentStatus::parse));
            let status = status.ok_or_else(|| ApiError::Unprocessable("status must be available, away or offline".into()))?;
            let user = user.ok_or(ApiError::Unauthorized)?;
            let updated = conversations::set_agent_status(&st, user.tenant_id, user.id, status).await?;
            Ok(json!({ "user": updated }))
        }
        .await;
        send_ack(Some(ack), result);
    });

    let st = state.clone();
    s.on("reply", move |s: SocketRef, TryData(body): TryData<ReplyBody>, ack: AckSender| async move {
        let result = async {
            let body = body.map_err(|e| ApiError::Unprocessable(format!("reply: {e}")))?;
            let who = replier(&s)?;
            crate::api::channels::check_attachments(&body.attachments)?;
            // An attachment alone needs no text.
            let text = Some(body.text).filter(|t| !t.is_empty() || body.attachments.is_empty());
            let message = conversations::reply(&st, &who, body.conversation_id, text, body.attachments, body.client_message_id).await?;
            Ok(json!({ "message": message }))
        }
        .await;
        send_ack(Some(ack), result);
    });

    let st = state.clone();
    s.on("resolve", move |s: SocketRef, TryData(body): TryData<ResolveBody>, ack: AckSender| async move {
        let result = async {
            let body = body.map_err(|e| ApiError::Unprocessable(format!("resolve: {e}")))?;
            let reason = CloseReason::parse(body.reason.as_deref().unwrap_or("resolved"))
                .ok_or_else(|| ApiError::Unprocessable("unknown close reason".into()))?;
            let who = replier(&s)?;
            let conversation = conversations::resolve_with_wrap_up(&st, &who, body.conversation_id, reason, body.wrap_up).await?;
            Ok(json!({ "conversation": conversation }))
        }
        .await;
        send_ack(Some(ack), result);
    });

    // Offers (queues with `auto_accept: false`): the agent answers with the conversation id.
    for (event, accept) in [("offer:accept", true), ("offer:reject", false)] {
        let st = state.clone();
        s.on(event, move |s: SocketRef, TryData(body): TryData<OfferBody>, ack: AckSender| async move {
            let result = async {
                let body = body.map_err(|e| ApiError::Unprocessable(format!("offer: {e}")))?;
                let who = replier(&s)?;
                let conversation = if accept {
                    conversations::accept_offer(&st, &who, body.conversation_id).await?
                } else {
                    conversations::reject_offer(&st, &who, body.conversation_id).await?
                };
                Ok(json!({ "conversation": conversation }))
            }
            .await;
            send_ack(Some(ack), result);
        });
    }

    let st = state.clone();
    s.on("sync", move |s: SocketRef, TryData(body): TryData<SyncBody>, ack: AckSender| async move {
        let result = async {
            let body = body.map_err(|e| ApiError::Unprocessable(format!("sync: {e}")))?;
            let who = replier(&s)?;
            let conversation = st.store.get_conversation(who.tenant_id, body.conversation_id).await?;
            if who.role == Role::Agent && conversation.assignee_id != who.user_id {
                return Err(ApiError::Forbidden);
            }
            let limit = body.limit.unwrap_or(200).clamp(1, 1000);
            let messages = st.store.list_messages(who.tenant_id, body.conversation_id, body.after, limit).await?;
            Ok(json!({ "messages": messages }))
        }
        .await;
        send_ack(Some(ack), result);
    });

    // Ephemeral: nothing is stored. At most one per second per socket is relayed (clients send
    // one every few seconds while typing); an agent relays only in a conversation they may act on.
    let st = state.clone();
    let last_typing = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    s.on("typing", move |s: SocketRef, TryData(body): TryData<TypingBody>, ack: AckSender| {
        let last_typing = last_typing.clone();
        async move {
            let result = async {
                let body = body.map_err(|e| ApiError::Unprocessable(format!("typing: {e}")))?;
                let who = replier(&s)?;
                if !super::typing_allowed(&last_typing) {
                    return Ok(json!({ "relayed": false }));
                }
                let conversation = st.store.get_conversation(who.tenant_id, body.conversation_id).await?;
                who.may_act_on(&conversation)?;
                conversations::publish(&st, BusEvent::Typing {
                    tenant_id: who.tenant_id,
                    conversation_id: conversation.id,
                    assignee_id: conversation.assignee_id,
                    sender: SenderKind::Agent,
                })
                .await;
                Ok(json!({ "relayed": true }))
            }
            .await;
            send_ack(Some(ack), result);
        }
    });

    let st = state.clone();
    s.on("watch", move |s: SocketRef, TryData(body): TryData<SyncBody>, ack: AckSender| async move {
        let result = async {
            let body = body.map_err(|e| ApiError::Unprocessable(format!("watch: {e}")))?;
            let who = replier(&s)?;
            if !who.role.sees_all_conversations() {
                return Err(ApiError::Forbidden);
            }
            // Tenant check: NotFound for another tenant's conversation.
            st.store.get_conversation(who.tenant_id, body.conversation_id).await?;
            s.join(format!("watch:{}", body.conversation_id));
            Ok(json!({}))
        }
        .await;
        send_ack(Some(ack), result);
    });
}






fn current(s: &SocketRef) -> Option<User> {
    s.extensions.get::<Agent>().map(|a| a.0)
}

/// Closes this node's `/agent` sockets of `user` (only those of one login session, given its
/// hash): their rights changed or the session ended (`BusEvent::AccessChanged`).
pub(crate) fn close_sockets_of(io: &SocketIo, user: switchboard_core::ids::UserId, session: Option<&str>) {
    let Some(agents) = io.of("/agent") else { return };
    for s in agents.to(format!("user:{user}")).sockets() {
        let opened_with = s.extensions.get::<Agent>().map(|a| a.1);
        if session.is_none() || opened_with.as_deref() == session {
            if let Err(e) = s.disconnect() {
                tracing::debug!(error = %e, "closing a revoked socket failed (already gone)");
            }
        }
    }
}

fn replier(s: &SocketRef) -> Result<Replier, ApiError> {
    let user = current(s).ok_or(ApiError::Unauthorized)?;
    Ok(Replier { tenant_id: user.tenant_id, user_id: Some(user.id), role: user.role })
}

async fn hello_payload(state: &AppState, user: &User) -> Result<Value, ApiError> {
    // Re-read the user: status and load may have changed since the token was resolved.
    let user = state.store.get_user(user.tenant_id, user.id).await?;
    let filter = ConversationFilter { assignee_id: Some(user.id), open_only: true, limit: 500, ..Default::default() };
    let mut views = Vec::new();
    for c in state.store.list_conversations(user.tenant_id, filter).await? {
        views.push(conversation_view(state.store.as_ref(), c, false).await?);
    }
    Ok(json!({ "user": user, "conversations": views }))
}

/// Registers the socket's presence, refreshes it while connected, and on disconnect starts the
/// grace timer that marks the agent offline if no socket of theirs remains on any node.
async fn track_presence(state: &AppState, s: &SocketRef, user: &User) {
    let conn_id = format!("{}:{}", state.node_id, s.id);
    let ttl = Duration::from_secs(state.settings.agents.presence_ttl_secs);
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    if let Err(e) = state.bus.touch_presence(user.id, &conn_id, ttl_ms).await {
        tracing::warn!(error = %e, "presence: register failed");
    }

    // Refresh at a third of the TTL; the task ends when the socket disconnects (or at shutdown).
    let refresher = tokio_util::sync::CancellationToken::new();
    {
        let (state, conn_id, stop, user_id) = (state.clone(), conn_id.clone(), refresher.clone(), user.id);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ttl / 3);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = state.bus.touch_presence(user_id, &conn_id, ttl_ms).await {
                            tracing::debug!(error = %e, "presence refresh failed");
                        }
                    }
                    _ = stop.cancelled() => return,
                    _ = state.shutdown.cancelled() => return,
                }
            }
        });
    }

    let (state, user) = (state.clone(), user.clone());
    s.on_disconnect(move || async move {
        refresher.cancel();
        if let Err(e) = state.bus.drop_presence(user.id, &conn_id).await {
            tracing::debug!(error = %e, "presence: drop failed");
        }
        if state.shutdown.is_cancelled() {
            return;
        }
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(state.settings.agents.disconnect_grace_secs)).await;
            match state.bus.presence_count(user.id).await {
                Ok(0) => {
                    let status = state.store.get_user(user.tenant_id, user.id).await.ok().map(|u| u.status);
                    if let Some(status) = status.filter(|s| *s != AgentStatus::Offline) {
                        if let Err(e) = conversations::set_agent_status(&state, user.tenant_id, user.id, AgentStatus::Offline).await {
                            tracing::warn!(error = %e, "could not mark disconnected agent offline");
                        }
                        // Reconnected between the count and the update: they are here after
                        // all. Give them back their status (and their conversations stay).
                        if state.bus.presence_count(user.id).await.is_ok_and(|n| n > 0) {
                            let _ = conversations::set_agent_status(&state, user.tenant_id, user.id, status).await;
                            return;
                        }
                    }
                    // Their customers must not wait on someone who is gone.
                    match conversations::requeue_agent_conversations(&state, user.tenant_id, user.id).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(agent = %user.id, requeued = n, "absent agent's conversations requeued"),
                        Err(e) => tracing::warn!(error = %e, "could not requeue an absent agent's conversations"),
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "presence count failed"),
            }
        });
    });
}

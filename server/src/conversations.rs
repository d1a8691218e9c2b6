//! The conversation service: the one place that changes conversations and then tells the rest
//! of the system. REST handlers, Socket.IO hubs and channel adapters all call these functions,
//! so "commit, then publish, then route" happens the same way on every entry point.
//!
//! Order matters: the database commit comes first and is the truth; the bus events and dispatch
//! that follow are notifications. If the process dies between the two, clients resync from the
//! database and the dispatcher's periodic sweep picks up conversations left queued.

use switchboard_core::bus::BusEvent;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use tracing::instrument;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::time::now_ms;
use crate::views::{conversation_view, message_json};

/// Longest text a message may carry, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;

pub fn check_text(text: Option<&str>, attachments: &[Attachment]) -> ApiResult<()> {
    match text {
        Some(t) if t.chars().count() > MAX_TEXT_CHARS => {
            Err(ApiError::Unprocessable(format!("text is longer than {MAX_TEXT_CHARS} characters")))
        }
        Some(t) if t.trim().is_empty() && attachments.is_empty() => Err(ApiError::Unprocessable("text is empty".into())),
        None if attachments.is_empty() => Err(ApiError::Unprocessable("a message needs text or an attachment".into())),
        _ => Ok(()),
    }
}

/// Commits an inbound customer message (idempotently), then notifies and routes.
/// Returns only after the commit: callers acknowledge the sender after this returns `Ok`.
pub async fn ingest(state: &AppState, msg: InboundMessage) -> ApiResult<IngestOutcome> {
    ingest_with(state, msg, |_| {}).await
}

/// [`ingest`], calling `before_bot` after the commit and the notifications but before the
/// auto-responder starts: the web widget joins the conversation's room there, so the bot's first
/// answer cannot be published before the customer's socket listens for it.
#[instrument(skip_all, fields(inbox_id = %msg.inbox_id, platform_message_id = %msg.platform_message_id))]
pub async fn ingest_with(
    state: &AppState,
    msg: InboundMessage,
    before_bot: impl FnOnce(&IngestOutcome),
) -> ApiResult<IngestOutcome> {
    ingest_new_with(state, msg, NewConversationExtras::default(), before_bot).await
}

/// What a channel knows about a conversation it is about to open (the web widget's pre-chat
/// form): attributes to set and the team whose queue it joins instead of the inbox's.
#[derive(Debug, Default)]
pub struct NewConversationExtras {
    pub attributes: Vec<(String, serde_json::Value)>,
    pub team: Option<TeamId>,
}

/// [`ingest_with`], applying `extras` when the message opens a conversation — before it is
/// announced and routed. The move to `extras.team` happens right after the commit that created
/// the conversation; should a dispatcher sweep on another node place it in that instant, it
/// stays where it was placed (the chosen team is still in the attributes).
pub async fn ingest_new_with(
    state: &AppState,
    msg: InboundMessage,
    extras: NewConversationExtras,
    before_bot: impl FnOnce(&IngestOutcome),
) -> ApiResult<IngestOutcome> {
    check_text(msg.text.as_deref(), &msg.attachments)?;
    let attachments = state.media.checked_attachments(msg.tenant_id, msg.attachments.clone())?;
    let mut outcome = state.store.ingest_inbound(InboundMessage { attachments, ..msg }).await?;
    metrics::counter!("switchboard_inbound_messages_total", "duplicate" => (!outcome.message_created).to_string()).increment(1);
    if outcome.conversation_created {
        let c = &outcome.conversation;
        let (tenant, id) = (c.tenant_id, c.id);
        for (key, value) in extras.attributes {
            outcome.conversation = state.store.set_conversation_attribute(tenant, id, &key, value, now_ms()).await?;
        }
        let c = &outcome.conversation;
        if let Some(team) = extras.team.filter(|t| c.state == ConversationState::Queued && c.team_id != Some(*t)) {
            if let Some(moved) = state.store.overflow(tenant, id, c.team_id, team, now_ms()).await? {
                outcome.conversation = moved;
            }
        }
    }
    // A new conversation is routed before its first message is announced, so the announcement
    // already names the agent who got it and reaches their sockets.
    let with_bot = outcome.conversation.state == ConversationState::Bot;
    if outcome.conversation_created && !with_bot {
        publish_conversation(state, &outcome.conversation, None).await;
        match state.dispatcher.conversation_waiting(state, &outcome.conversation).await {
            Some(assigned) => outcome.conversation = assigned,
            // Another node's (or the sweep's) dispatch may have placed it first: read who holds
            // it now, so the announcement below reaches that agent.
            None => {
                if let Ok(current) = state.store.get_conversation(outcome.conversation.tenant_id, outcome.conversation.id).await {
                    outcome.conversation = current;
                }
                // Still waiting, in a queue over its `max_queue_len`: told so and closed.
                if outcome.conversation.state == ConversationState::Queued {
                    if let Some(refused) = crate::dispatch::refuse_if_queue_full(state, &outcome.conversation).await {
                        outcome.conversation = refused;
                    }
                }
            }
        }
        crate::queue::announce(state, outcome.conversation.tenant_id).await;
    } else if outcome.conversation_created {
        publish_conversation(state, &outcome.conversation, None).await;
    }
    // A duplicate (a platform's redelivery, a widget's resend after no ack) is announced again:
    // the node that committed the original may have died between its commit and its publish,
    // and then this retry is the only chance the holder is told. Clients deduplicate by id.
    {
        // The holder the ingest transaction read may be stale: a requeue and an assignment can
        // commit between its read and its commit, and the new holder's history load can run
        // before this message is committed — the push would then go to the old holder and the
        // new one miss the message. Push to whoever holds it now, read after the commit: if it
        // changes after this read, the new holder's history load runs after our commit. (Seen
        // by tests/faults/node-kill.test.mjs when a dead node's agent's conversations move.)
        let assignee_id = if outcome.conversation_created {
            outcome.conversation.assignee_id
        } else {
            match state.store.get_conversation(outcome.conversation.tenant_id, outcome.conversation.id).await {
                Ok(current) => current.assignee_id,
                Err(_) => outcome.conversation.assignee_id,
            }
        };
        publish(state, BusEvent::MessageCreated {
            tenant_id: outcome.conversation.tenant_id,
            conversation_id: outcome.conversation.id,
            assignee_id,
            payload: message_json(&outcome.message),
        })
        .await;
    }
    before_bot(&outcome);
    // The auto-responder answers on its own task: the sender is acknowledged now.
    if with_bot && outcome.message_created {
        crate::bot::customer_wrote(state, &outcome.conversation);
    }
    Ok(outcome)
}

/// Who is replying: an agent (or supervisor/admin) acting in a conversation.
pub struct Replier {
    pub tenant_id: TenantId,
    pub user_id: Option<UserId>,
    pub role: Role,
}

impl Replier {
    /// Agents act only in conversations assigned to them. An agent-role API key has no user, so
    /// it holds nothing: `None == None` must not pass for an unassigned conversation.
    pub fn may_act_on(&self, conversation: &Conversation) -> ApiResult<()> {
        if self.role == Role::Agent && (self.user_id.is_none() || conversation.assignee_id != self.user_id) {
            return Err(ApiError::Forbidden);
        }
        // An offer is not yet the agent's conversation: accept it first.
        if self.role == Role::Agent && conversation.state == ConversationState::Offered {
            return Err(ApiError::Conflict("accept the offer first".into()));
        }
        Ok(())
    }
}

/// Commits an agent's reply together with its outbox entry (for channels delivered by the
/// outbox), then pushes it to clients and wakes the outbox worker.
#[instrument(skip_all, fields(conversation_id = %conversation_id))]
pub async fn reply(
    state: &AppState,
    who: &Replier,
    conversation_id: ConversationId,
    text: Option<String>,
    attachments: Vec<Attachment>,
    client_message_id: Option<String>,
) -> ApiResult<Message> {
    check_text(text.as_deref(), &attachments)?;
    let attachments = state.media.checked_attachments(who.tenant_id, attachments)?;
    let conversation = state.store.get_conversation(who.tenant_id, conversation_id).await?;
    who.may_act_on(&conversation)?;
    let inbox = state.store.get_inbox(who.tenant_id, conversation.inbox_id).await?;
    let outbox = outbox_for(&inbox);
    let outcome = state
        .store
        .append_reply(NewReply {
            tenant_id: who.tenant_id,
            conversation_id,
            sender_kind: SenderKind::Agent,
            sender_user_id: who.user_id,
            text,
            attachments,
            client_message_id,
            outbox,
            now: now_ms(),
        })
        .await?;
    if outcome.created {
        publish(state, BusEvent::MessageCreated {
            tenant_id: who.tenant_id,
            conversation_id,
            assignee_id: conversation.assignee_id,
            payload: message_json(&outcome.message),
        })
        .await;
        if outcome.outbox.is_some() {
            state.outbox_wake.notify_one();
        }
    }
    Ok(outcome.message)
}

/// A message from the system (not an agent, not the bot) to the customer — a queue-full notice,
/// a queue position — committed with its delivery like any reply, then announced. `client_id`
/// makes it idempotent: the same notice from two nodes is stored once (`created: false`).
pub async fn send_system_message(
    state: &AppState,
    conversation: &Conversation,
    inbox: &Inbox,
    text: String,
    client_id: String,
) -> ApiResult<ReplyOutcome> {
    let outcome = state
        .store
        .append_reply(NewReply {
            tenant_id: conversation.tenant_id,
            conversation_id: conversation.id,
            sender_kind: SenderKind::System,
            sender_user_id: None,
            text: Some(text),
            attachments: Vec::new(),
            client_message_id: Some(client_id),
            outbox: outbox_for(inbox),
            now: now_ms(),
        })
        .await?;
    if outcome.created {
        publish(state, BusEvent::MessageCreated {
            tenant_id: conversation.tenant_id,
            conversation_id: conversation.id,
            assignee_id: conversation.assignee_id,
            payload: message_json(&outcome.message),
        })
        .await;
        if outcome.outbox.is_some() {
            state.outbox_wake.notify_one();
        }
    }
    Ok(outcome)
}

/// Which outbox delivery a reply on this inbox needs. Web-widget replies reach the customer's
/// socket through the bus (and resync), so they need none.
pub(crate) fn outbox_for(inbox: &Inbox) -> Option<NewOutbox> {
    let kind = match inbox.kind {
        ChannelKind::Web => return None,
        ChannelKind::Api => crate::outbox::API_WEBHOOK,
        _ => crate::gateway::PLATFORM_SEND,
    };
    Some(NewOutbox { kind: kind.to_string(), payload: serde_json::Value::Null })
}

/// Closes a conversation and frees its agent's slot, then offers that slot to the queue.
#[instrument(skip_all, fields(conversation_id = %conversation_id))]
pub async fn resolve(state: &AppState, who: &Replier, conversation_id: ConversationId, reason: CloseReason) -> ApiResult<Conversation> {
    resolve_with_wrap_up(state, who, conversation_id, reason, None).await
}

/// [`resolve`] with the team's wrap-up form filled in: the values are checked against the
/// conversation's team template (its required fields only when a person resolves it as
/// `resolved`) and stored as `attributes.wrap_up` in the resolving transaction.
pub async fn resolve_with_wrap_up(
    state: &AppState,
    who: &Replier,
    conversation_id: ConversationId,
    reason: CloseReason,
    wrap_up: Option<serde_json::Value>,
) -> ApiResult<Conversation> {
    let before = state.store.get_conversation(who.tenant_id, conversation_id).await?;
    who.may_act_on(&before)?;
    let template = match before.team_id {
        Some(team) => crate::api::wrapup::team_template(state, who.tenant_id, team).await?,
        None => None,
    };
    let require = who.user_id.is_some() && reason == CloseReason::Resolved && before.state.is_open();
    let values = crate::api::wrapup::check_values(template.as_ref(), wrap_up.as_ref(), require)?;
    let after = if wrap_up.is_none() && values.is_empty() {
        state.store.resolve(who.tenant_id, conversation_id, who.user_id, reason, now_ms()).await?
    } else {
        let values = serde_json::Value::Object(values);
        state.store.resolve_with_wrap_up(who.tenant_id, conversation_id, who.user_id, reason, values, now_ms()).await?
    };
    publish_conversation(state, &after, before.assignee_id).await;
    if let Some(agent) = before.assignee_id {
        start_wrap_up(state, &before, agent).await;
        publish_agent(state, who.tenant_id, agent).await;
        state.dispatcher.capacity_freed(state, who.tenant_id, agent).await;
    }
    crate::queue::announce(state, who.tenant_id).await;
    Ok(after)
}

/// The queue's `wrap_up_ms`: after resolving one of its conversations the agent gets no new work
/// for that long; a timer offers them work again when it ends.
async fn start_wrap_up(state: &AppState, resolved: &Conversation, agent: UserId) {
    if !resolved.state.holds_agent_slot() || resolved.state == ConversationState::Offered {
        return;
    }
    let Some(team) = resolved.team_id else { return };
    let Ok(teams) = state.store.list_teams(resolved.tenant_id).await else { return };
    let wrap = crate::dispatch::team_policy(teams.iter().find(|t| t.id == team)).wrap_up_ms;
    if wrap <= 0 {
        return;
    }
    let tenant = resolved.tenant_id;
    if state.store.start_wrap_up(tenant, agent, now_ms() + wrap, now_ms()).await.is_err() {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(u64::try_from(wrap).unwrap_or(0))) => {
                state.dispatcher.capacity_freed(&state, tenant, agent).await;
            }
            _ = state.shutdown.cancelled() => {}
        }
    });
}

/// Puts an absent agent's open conversations back in the queue — at their original place, since
/// `requeue` keeps `queued_at` — and offers them to whoever has room. Used when an agent's last
/// connection has been gone for the grace period.
pub async fn requeue_agent_conversations(state: &AppState, tenant: TenantId, agent: UserId) -> ApiResult<usize> {
    let filter = ConversationFilter { assignee_id: Some(agent), open_only: true, limit: 1000, ..Default::default() };
    let held = state.store.list_conversations(tenant, filter).await?;
    let mut requeued = Vec::new();
    for conversation in held.into_iter().filter(|c| c.state.holds_agent_slot()) {
        match state.store.requeue(tenant, conversation.id, now_ms()).await {
            Ok(c) => {
                publish_conversation(state, &c, Some(agent)).await;
                requeued.push(c);
            }
            // Resolved or moved meanwhile: nothing to give back.
            Err(switchboard_core::StoreError::InvalidState(_) | switchboard_core::StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !requeued.is_empty() {
        publish_agent(state, tenant, agent).await;
    }
    // Oldest first, so the longest-waiting customer is placed first.
    requeued.sort_by_key(|c| (c.queued_at, c.id));
    for c in &requeued {
        state.dispatcher.conversation_waiting(state, c).await;
    }
    crate::queue::announce(state, tenant).await;
    Ok(requeued.len())
}

/// The offered agent takes the conversation.
pub async fn accept_offer(state: &AppState, who: &Replier, conversation_id: ConversationId) -> ApiResult<Conversation> {
    let agent = who.user_id.ok_or(ApiError::Forbidden)?;
    let accepted = state.store.accept_offer(who.tenant_id, conversation_id, agent, now_ms()).await?;
    metrics::counter!("switchboard_offers_accepted_total").increment(1);
    publish_conversation(state, &accepted, None).await;
    crate::queue::announce(state, who.tenant_id).await;
    Ok(accepted)
}

/// The offered agent turns the conversation down: it goes back to the queue in its place and
/// on to the next agent.
pub async fn reject_offer(state: &AppState, who: &Replier, conversation_id: ConversationId) -> ApiResult<Conversation> {
    let agent = who.user_id.ok_or(ApiError::Forbidden)?;
    let queued = state.store.decline_offer(who.tenant_id, conversation_id, agent, "rejected", now_ms()).await?;
    metrics::counter!("switchboard_offers_rejected_total").increment(1);
    offer_returned(state, &queued, agent).await;
    Ok(queued)
}

/// After an offer came back (rejected, lapsed, withdrawn): tell the agent and supervisors, and
/// offer the conversation to the next agent.
pub async fn offer_returned(state: &AppState, queued: &Conversation, agent: UserId) {
    publish_conversation(state, queued, Some(agent)).await;
    publish_agent(state, queued.tenant_id, agent).await;
    state.dispatcher.conversation_waiting(state, queued).await;
    crate::queue::announce(state, queued.tenant_id).await;
}

/// Changes an agent's status; becoming available offers them queued work at once, and leaving
/// it withdraws their pending offers (assignments stay).
pub async fn set_agent_status(state: &AppState, tenant: TenantId, user: UserId, status: AgentStatus) -> ApiResult<User> {
    let updated = state.store.set_agent_status(tenant, user, status, now_ms()).await?;
    if status != AgentStatus::Available {
        for offer in state.store.offers_for_agent(tenant, user).await? {
            if let Ok(queued) = state.store.decline_offer(tenant, offer.id, user, "withdrawn", now_ms()).await {
                offer_returned(state, &queued, user).await;
            }
        }
    }
    let updated = if status != AgentStatus::Available { state.store.get_user(tenant, user).await? } else { updated };
    publish(state, BusEvent::AgentUpdated {
        tenant_id: tenant,
        user_id: user,
        payload: serde_json::to_value(&updated).unwrap_or_default(),
    })
    .await;
    if status == AgentStatus::Available {
        state.dispatcher.capacity_freed(state, tenant, user).await;
    }
    crate::queue::announce(state, tenant).await;
    Ok(updated)
}

/// Tells the agent (and their supervisors) their current status and load, after anything that
/// changed the load: an assignment, a resolve, a requeue.
pub async fn publish_agent(state: &AppState, tenant: TenantId, user: UserId) {
    match state.store.get_user(tenant, user).await {
        Ok(updated) => {
            publish(state, BusEvent::AgentUpdated { tenant_id: tenant, user_id: user, payload: serde_json::to_value(&updated).unwrap_or_default() }).await;
        }
        Err(e) => tracing::debug!(error = %e, "agent update not published; clients resync on hello"),
    }
}

/// Tells every node's clients that a conversation changed.
pub async fn publish_conversation(state: &AppState, conversation: &Conversation, previous_assignee: Option<UserId>) {
    let payload = match conversation_view(state.store.as_ref(), conversation.clone(), false).await {
        Ok(view) => serde_json::to_value(view).unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "could not build conversation view; clients will resync");
            return;
        }
    };
    publish(state, BusEvent::ConversationUpdated {
        tenant_id: conversation.tenant_id,
        conversation_id: conversation.id,
        assignee_id: conversation.assignee_id,
        previous_assignee_id: previous_assignee,
        payload,
    })
    .await;
}

/// Publishes a notification. A failed publish is logged, not returned: the change is already
/// committed, and clients recover anything they missed by resyncing from their last seen id.
pub async fn publish(state: &AppState, event: BusEvent) {
    if let Err(e) = state.bus.publish(&event).await {
        metrics::counter!("switchboard_bus_publish_errors_total").increment(1);
        tracing::warn!(error = %e, "bus publish failed; clients will resync");
    }
}

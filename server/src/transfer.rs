//! Transfers and internal notes, as the conversation service does everything else: commit (one
//! store transaction), then publish, then route. Who may: the agent holding the conversation,
//! and supervisors and admins for any conversation of their tenant (a supervisor's "reassign").
//!
//! Must not deliver a note to the customer: notes have no outbox entry, and their bus event
//! carries `"private": true`, which `realtime::fanout` keeps away from the widget.

use switchboard_core::bus::BusEvent;
use switchboard_core::domain::{ConversationState, Message};
use switchboard_core::ids::ConversationId;
use switchboard_core::transfer::{NewNote, NewTransfer, TransferOutcome, TransferTarget};
use tracing::instrument;

use crate::conversations::{check_text, publish, publish_agent, publish_conversation, Replier};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::time::now_ms;
use crate::views::message_json;

/// Moves a conversation to an agent, a team's queue or back to the queue, with an optional
/// internal note. A conversation that lands in a queue is offered to the dispatcher at once, and
/// the slot the holder gave back pulls queued work for them.
#[instrument(skip_all, fields(conversation_id = %conversation_id))]
pub async fn transfer(
    state: &AppState,
    who: &Replier,
    conversation_id: ConversationId,
    to: TransferTarget,
    note: Option<String>,
) -> ApiResult<TransferOutcome> {
    if to == TransferTarget::Queue(false) {
        return Err(ApiError::Unprocessable("`to.queue` must be true".into()));
    }
    // An empty note is no note.
    let note = note.filter(|n| !n.trim().is_empty());
    if let Some(text) = &note {
        check_text(Some(text), &[])?;
    }
    let before = state.store.get_conversation(who.tenant_id, conversation_id).await?;
    who.may_act_on(&before)?;
    let tenant = who.tenant_id;
    let mut outcome = state
        .store
        .transfer(NewTransfer { tenant_id: tenant, conversation_id, actor: who.user_id, to, note, now: now_ms() })
        .await?;
    let kind = match to {
        TransferTarget::Agent(_) => "agent",
        TransferTarget::Team(_) => "team",
        TransferTarget::Queue(_) => "queue",
    };
    metrics::counter!("switchboard_transfers_total", "to" => kind).increment(1);

    publish_conversation(state, &outcome.conversation, outcome.previous_assignee).await;
    if let Some(note) = &outcome.note {
        publish_note(state, outcome.conversation.assignee_id, note).await;
    }
    // The holder whose slot was given back (the store released it only in a slot-holding state).
    let released = outcome.previous_assignee.filter(|_| before.state.holds_agent_slot());
    if let Some(agent) = released {
        publish_agent(state, tenant, agent).await;
    }
    if let TransferTarget::Agent(agent) = to {
        publish_agent(state, tenant, agent).await;
    }
    if outcome.conversation.state == ConversationState::Queued {
        // `None`: nobody has room now; the next freed slot (or the sweep) places it.
        if let Some(placed) = state.dispatcher.conversation_waiting(state, &outcome.conversation).await {
            outcome.conversation = placed;
        }
    }
    if let Some(agent) = released {
        state.dispatcher.capacity_freed(state, tenant, agent).await;
    }
    crate::queue::announce(state, tenant).await;
    Ok(outcome)
}

/// Stores an internal note in an open conversation and shows it to the agents watching it.
#[instrument(skip_all, fields(conversation_id = %conversation_id))]
pub async fn add_note(
    state: &AppState,
    who: &Replier,
    conversation_id: ConversationId,
    text: String,
) -> ApiResult<Message> {
    check_text(Some(&text), &[])?;
    let conversation = state.store.get_conversation(who.tenant_id, conversation_id).await?;
    who.may_act_on(&conversation)?;
    let note = state
        .store
        .append_note(NewNote { tenant_id: who.tenant_id, conversation_id, author: who.user_id, text, now: now_ms() })
        .await?;
    publish_note(state, conversation.assignee_id, &note).await;
    Ok(note)
}

/// A note travels as any message does (to the assignee's and the watchers' agent sockets); its
/// payload's `"private": true` keeps `fanout` from emitting it to the customer's widget.
async fn publish_note(state: &AppState, assignee: Option<switchboard_core::ids::UserId>, note: &Message) {
    debug_assert!(note.private, "only private messages are notes");
    publish(
        state,
        BusEvent::MessageCreated {
            tenant_id: note.tenant_id,
            conversation_id: note.conversation_id,
            assignee_id: assignee,
            payload: message_json(note),
        },
    )
    .await;
}

//! The seam between "a conversation is waiting / an agent has room" and "who gets what".
//!
//! `LeastLoaded` is the spine's placeholder policy: offer a waiting conversation to the
//! available agent with the lowest load ÷ capacity (ties: assigned longest ago), or leave it
//! queued. The switch-and-queue router replaces it behind the `Dispatcher` trait.
//!
//! Correctness does not depend on this module: every assignment goes through
//! `Store::try_assign`, a conditional update of both the conversation (must still be queued) and
//! the agent (must be available and below capacity) in one transaction. Two nodes racing for the
//! same conversation or the same agent's last slot cannot both win; the loser sees `None` and
//! moves on. A periodic sweep catches conversations left queued by a crash or a lost event.

use async_trait::async_trait;
use switchboard_core::domain::Conversation;
use switchboard_core::ids::{TenantId, UserId};

use crate::conversations::publish_conversation;
use crate::state::AppState;
use crate::time::now_ms;

#[async_trait]
pub trait Dispatcher: Send + Sync + 'static {
    /// A conversation entered the queue: try to place it now. Returns the conversation as
    /// assigned, or `None` if it stays queued.
    async fn conversation_waiting(&self, state: &AppState, conversation: &Conversation) -> Option<Conversation>;
    /// An agent may have room (resolved a conversation, became available): give them work.
    async fn capacity_freed(&self, state: &AppState, tenant: TenantId, agent: UserId);
    /// Safety net: try every queued conversation of every tenant.
    async fn sweep(&self, state: &AppState);
}

pub struct LeastLoaded;

/// How many queued conversations one `capacity_freed` call looks at.
const BATCH: i64 = 20;

#[async_trait]
impl Dispatcher for LeastLoaded {
    async fn conversation_waiting(&self, state: &AppState, conversation: &Conversation) -> Option<Conversation> {
        let candidates = match state.store.candidate_agents(conversation.tenant_id, conversation.team_id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "dispatch: listing agents failed; sweep will retry");
                return None;
            }
        };
        for agent in candidates {
            match state.store.try_assign(conversation.tenant_id, conversation.id, agent.id, now_ms()).await {
                Ok(Some(assigned)) => {
                    metrics::counter!("switchboard_assignments_total").increment(1);
                    publish_conversation(state, &assigned, None).await;
                    return Some(assigned);
                }
                // The agent filled up or the conversation was taken meanwhile: try the next.
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "dispatch: assignment failed; sweep will retry");
                    return None;
                }
            }
        }
        None
    }

    async fn capacity_freed(&self, state: &AppState, tenant: TenantId, agent: UserId) {
        let queued = match state.store.queued_for_agent(tenant, agent, BATCH).await {
            Ok(q) => q,
            Err(e) => return tracing::warn!(error = %e, "dispatch: listing queue failed; sweep will retry"),
        };
        for conversation in queued {
            match state.store.try_assign(tenant, conversation.id, agent, now_ms()).await {
                Ok(Some(assigned)) => {
                    metrics::counter!("switchboard_assignments_total").increment(1);
                    publish_conversation(state, &assigned, None).await;
                }
                Ok(None) => {
                    // Either someone else took this conversation, or the agent is now full or
                    // away. Re-read the agent to know which; stop if they have no room.
                    match state.store.get_user(tenant, agent).await {
                        Ok(u) if u.active_load < u.capacity && u.status == switchboard_core::domain::AgentStatus::Available => continue,
                        _ => return,
                    }
                }
                Err(e) => return tracing::warn!(error = %e, "dispatch: assignment failed; sweep will retry"),
            }
        }
    }

    async fn sweep(&self, state: &AppState) {
        let tenants = match state.store.tenants_with_queued().await {
            Ok(t) => t,
            Err(e) => return tracing::debug!(error = %e, "dispatch sweep: store unavailable"),
        };
        for tenant in tenants {
            let filter = switchboard_core::domain::ConversationFilter {
                state: Some(switchboard_core::domain::ConversationState::Queued),
                limit: 200,
                ..Default::default()
            };
            let Ok(mut queued) = state.store.list_conversations(tenant, filter).await else { continue };
            // Listing is newest first; serve the oldest first.
            queued.reverse();
            for conversation in queued {
                self.conversation_waiting(state, &conversation).await;
            }
        }
    }
}

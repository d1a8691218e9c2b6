//! Offers: a queued conversation offered to one agent, who accepts it or lets it go.
//!
//! An offer takes the agent's slot exactly like an assignment does (same conditional updates,
//! same lock order as `try_assign`: user row, then conversation row), so offers can never push
//! an agent over capacity or give one conversation to two agents, on any number of nodes.
//! Accepting changes only the state (the slot is already held). Rejecting, expiring and
//! withdrawing give the slot back and put the conversation back in the queue with its original
//! `queued_at` — it keeps its place — remembering the agent in `declined_by`.
//!
//! Every step is conditional on the conversation still being `offered` *to this agent*, so a
//! late accept after the expiry (or after another node's sweep expired it) fails cleanly instead
//! of resurrecting the offer, and an expiry racing an accept is a no-op for whichever loses.

use super::rows::{self, CONVERSATION_COLS};
use super::Event;
use crate::error::{Error, Result};
use crate::SqlStore;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::time::Millis;

impl SqlStore {
    pub(super) async fn try_offer_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        agent: UserId,
        now: Millis,
        expires_at: Millis,
    ) -> Result<Option<Conversation>> {
        let mut tx = self.pool.begin().await?;
        let Some(inbox) = self.queued_inbox_of(&mut tx, tenant, conversation).await? else {
            return Ok(None);
        };
        // Offers count against capacity (see `ConversationState::holds_agent_slot`).
        if !self.take_slot(&mut tx, tenant, agent, inbox, now).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        let took_conversation = sqlx::query(&self.sql(
            "UPDATE conversations SET state = 'offered', assignee_id = ?, offer_expires_at = ?, updated_at = ? \
             WHERE id = ? AND tenant_id = ? AND state = 'queued'",
        ))
        .bind(agent.0)
        .bind(expires_at)
        .bind(now)
        .bind(conversation.0)
        .bind(tenant.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if took_conversation == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        self.record_event(&mut tx, Event { tenant, conversation, kind: "offered", actor: Some(agent), detail: None, now })
            .await?;
        let offered = self.get_conversation_on(&mut tx, tenant, conversation).await?;
        tx.commit().await?;
        Ok(Some(offered))
    }

    pub(super) async fn accept_offer_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        agent: UserId,
        now: Millis,
    ) -> Result<Conversation> {
        let mut tx = self.pool.begin().await?;
        let accepted = sqlx::query(&self.sql(
            "UPDATE conversations SET state = 'assigned', assigned_at = ?, offer_expires_at = NULL, updated_at = ? \
             WHERE id = ? AND tenant_id = ? AND state = 'offered' AND assignee_id = ?",
        ))
        .bind(now)
        .bind(now)
        .bind(conversation.0)
        .bind(tenant.0)
        .bind(agent.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if accepted == 0 {
            // Not found for this tenant → NotFound; otherwise it is not (or no longer) offered
            // to this agent.
            self.get_conversation_on(&mut tx, tenant, conversation).await?;
            return Err(Error::invalid_state("the conversation is not offered to you (anymore)"));
        }
        self.record_event(
            &mut tx,
            Event { tenant, conversation, kind: "offer_accepted", actor: Some(agent), detail: None, now },
        )
        .await?;
        let assigned = self.get_conversation_on(&mut tx, tenant, conversation).await?;
        tx.commit().await?;
        Ok(assigned)
    }

    /// Gives an offer back: `reason` is `rejected`, `expired` or `withdrawn` (the agent went
    /// away, offline, or lowered their capacity).
    pub(super) async fn decline_offer_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        agent: UserId,
        reason: &str,
        now: Millis,
    ) -> Result<Conversation> {
        let mut tx = self.pool.begin().await?;
        let current = self.get_conversation_on(&mut tx, tenant, conversation).await?;
        if current.state != ConversationState::Offered || current.assignee_id != Some(agent) {
            return Err(Error::invalid_state("the conversation is not offered to this agent (anymore)"));
        }
        if !self.back_to_queue(&mut tx, &current, agent, "offered", now).await? {
            // Accepted or expired by someone else between our read and the update: undo.
            tx.rollback().await?;
            return Err(Error::invalid_state("the offer was settled concurrently"));
        }
        let kind = match reason {
            "rejected" => "offer_rejected",
            "expired" => "offer_expired",
            _ => "offer_withdrawn",
        };
        self.record_event(&mut tx, Event { tenant, conversation, kind, actor: Some(agent), detail: None, now }).await?;
        let queued = self.get_conversation_on(&mut tx, tenant, conversation).await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// Offers whose time ran out (any tenant), oldest first: the sweep expires them, so an offer
    /// made by a node that died still lapses.
    pub(super) async fn expired_offers_impl(&self, now: Millis, limit: i64) -> Result<Vec<Conversation>> {
        let sql = format!(
            "SELECT {CONVERSATION_COLS} FROM conversations WHERE state = 'offered' AND offer_expires_at < ? \
             ORDER BY offer_expires_at LIMIT ?"
        );
        let found = sqlx::query(&self.sql(&sql)).bind(now).bind(limit).fetch_all(&self.pool).await?;
        found.iter().map(rows::conversation).collect()
    }

    /// Puts a conversation the agent held (`from_state`: offered, or assigned and still
    /// unanswered) back in the queue in its place — keeping `queued_at` — giving the agent's slot
    /// back and adding them to `declined_by`. `false` (and the caller rolls back) if it changed
    /// since `current` was read (for an assignment: also if the agent has answered meanwhile).
    pub(super) async fn back_to_queue(
        &self,
        tx: &mut sqlx::AnyConnection,
        current: &Conversation,
        agent: UserId,
        from_state: &str,
        now: Millis,
    ) -> Result<bool> {
        let unanswered = if from_state == "assigned" { " AND first_agent_reply_at IS NULL" } else { "" };
        self.give_back_slot(tx, agent, current.inbox_id, now).await?;
        let mut declined = current.declined_by.clone();
        if !declined.contains(&agent) {
            declined.push(agent);
        }
        let sql = format!(
            "UPDATE conversations SET state = 'queued', assignee_id = NULL, assigned_at = NULL, offer_expires_at = NULL, \
             declined_by = ?, updated_at = ? WHERE id = ? AND tenant_id = ? AND state = ? AND assignee_id = ?{unanswered}"
        );
        let moved = sqlx::query(&self.sql(&sql))
        .bind(serde_json::to_string(&declined)?)
        .bind(now)
        .bind(current.id.0)
        .bind(current.tenant_id.0)
        .bind(from_state)
        .bind(agent.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        Ok(moved == 1)
    }

    /// The conversations currently offered to an agent.
    pub(super) async fn offers_for_agent_impl(&self, tenant: TenantId, agent: UserId) -> Result<Vec<Conversation>> {
        let sql = format!(
            "SELECT {CONVERSATION_COLS} FROM conversations WHERE tenant_id = ? AND assignee_id = ? AND state = 'offered' \
             ORDER BY id"
        );
        let found = sqlx::query(&self.sql(&sql)).bind(tenant.0).bind(agent.0).fetch_all(&self.pool).await?;
        found.iter().map(rows::conversation).collect()
    }
}

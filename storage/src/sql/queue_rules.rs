//! The queue rules beyond picking an agent: wrap-up after a resolve, overflow into another
//! team's queue, the queue's length (for `max_queue_len`), and taking a conversation back from
//! an agent who accepted it but never answered. Each change is one conditional transaction, so
//! a rule applied by two nodes' sweeps at once takes effect once.

use super::Event;
use crate::error::{Error, Result};
use crate::exec::int;
use crate::SqlStore;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::time::Millis;

impl SqlStore {
    pub(super) async fn start_wrap_up_impl(&self, tenant: TenantId, agent: UserId, until: Millis, now: Millis) -> Result<()> {
        self.update_one(
            "UPDATE users SET wrap_up_until = ?, updated_at = ? WHERE id = ? AND tenant_id = ?",
            vec![
                crate::exec::Arg::Int(until),
                crate::exec::Arg::Int(now),
                crate::exec::Arg::Int(agent.0),
                crate::exec::Arg::Int(tenant.0),
            ],
        )
        .await
    }

    pub(super) async fn overflow_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        from: Option<TeamId>,
        to: TeamId,
        now: Millis,
    ) -> Result<Option<Conversation>> {
        let mut tx = self.pool.begin().await?;
        let from_clause = if from.is_some() { "team_id = ?" } else { "team_id IS NULL" };
        let sql = format!(
            "UPDATE conversations SET team_id = ?, queue_entered_at = ?, updated_at = ? \
             WHERE id = ? AND tenant_id = ? AND state = 'queued' AND {from_clause}"
        );
        let sql = self.sql(&sql);
        let mut query = sqlx::query(&sql).bind(to.0).bind(now).bind(now).bind(conversation.0).bind(tenant.0);
        if let Some(from) = from {
            query = query.bind(from.0);
        }
        if query.execute(&mut *tx).await?.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let detail = format!("{{\"from\":{},\"to\":{}}}", from.map_or("null".to_string(), |t| t.0.to_string()), to.0);
        self.record_event(&mut tx, Event { tenant, conversation, kind: "overflowed", actor: None, detail: Some(&detail), now })
            .await?;
        let moved = self.get_conversation_on(&mut tx, tenant, conversation).await?;
        tx.commit().await?;
        Ok(Some(moved))
    }

    /// Replaces an agent's per-channel caps. Runs with the user row locked (the first lock of
    /// every slot change), so the held counts it starts the caps with cannot race an assignment.
    pub(super) async fn set_channel_capacity_impl(
        &self,
        tenant: TenantId,
        user: UserId,
        caps: &[(ChannelKind, i64)],
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let json: std::collections::BTreeMap<&str, i64> = caps.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let locked = sqlx::query(&self.sql("UPDATE users SET channel_capacity = ?, updated_at = ? WHERE id = ? AND tenant_id = ?"))
            .bind(serde_json::to_string(&json)?)
            .bind(now)
            .bind(user.0)
            .bind(tenant.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if locked == 0 {
            return Err(Error::not_found());
        }
        sqlx::query(&self.sql("DELETE FROM agent_channel_loads WHERE user_id = ?")).bind(user.0).execute(&mut *tx).await?;
        for (kind, slots) in caps {
            let held = sqlx::query(&self.sql(
                "SELECT COUNT(*) AS n FROM conversations c JOIN inboxes i ON i.id = c.inbox_id \
                 WHERE c.assignee_id = ? AND c.state IN ('offered', 'assigned', 'waiting_on_customer') AND i.kind = ?",
            ))
            .bind(user.0)
            .bind(kind.as_str())
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(&self.sql(
                "INSERT INTO agent_channel_loads (user_id, tenant_id, kind, slots, slots_held, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            ))
            .bind(user.0)
            .bind(tenant.0)
            .bind(kind.as_str())
            .bind((*slots).max(0))
            .bind(int(&held, "n")?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn tenants_with_unanswered_impl(&self) -> Result<Vec<TenantId>> {
        let found = sqlx::query(
            "SELECT DISTINCT tenant_id FROM conversations WHERE state = 'assigned' AND first_agent_reply_at IS NULL \
             ORDER BY tenant_id",
        )
        .fetch_all(&self.pool)
        .await?;
        found.iter().map(|row| Ok(TenantId(int(row, "tenant_id")?))).collect()
    }

    pub(super) async fn count_waiting_impl(&self, tenant: TenantId, team: Option<TeamId>) -> Result<i64> {
        let team_clause = if team.is_some() { "team_id = ?" } else { "team_id IS NULL" };
        let sql = format!(
            "SELECT COUNT(*) AS n FROM conversations WHERE tenant_id = ? AND state IN ('queued', 'offered') AND {team_clause}"
        );
        let sql = self.sql(&sql);
        let mut query = sqlx::query(&sql).bind(tenant.0);
        if let Some(team) = team {
            query = query.bind(team.0);
        }
        let row = query.fetch_one(&self.pool).await?;
        int(&row, "n")
    }

    pub(super) async fn requeue_unanswered_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        agent: UserId,
        now: Millis,
    ) -> Result<Conversation> {
        let mut tx = self.pool.begin().await?;
        let current = self.get_conversation_on(&mut tx, tenant, conversation).await?;
        if current.state != ConversationState::Assigned || current.assignee_id != Some(agent) || current.first_agent_reply_at.is_some() {
            return Err(Error::invalid_state("the conversation is not an unanswered assignment of this agent"));
        }
        if !self.back_to_queue(&mut tx, &current, agent, "assigned", now).await? {
            tx.rollback().await?;
            return Err(Error::invalid_state("the agent answered or the conversation moved meanwhile"));
        }
        self.record_event(
            &mut tx,
            Event { tenant, conversation, kind: "reassigned_no_reply", actor: Some(agent), detail: None, now },
        )
        .await?;
        let queued = self.get_conversation_on(&mut tx, tenant, conversation).await?;
        tx.commit().await?;
        Ok(queued)
    }
}

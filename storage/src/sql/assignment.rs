//! Assignment: taking a queued conversation for an agent, giving it back, closing it, and the
//! reads the dispatcher makes to choose.
//!
//! The invariant kept here: an agent's `active_load` equals the number of their conversations
//! in a slot-holding state (offered, assigned, waiting on customer; offers are in `offers.rs`),
//! and never exceeds `capacity` through
//! assignment. Every change of one happens in the same transaction as the matching change of
//! the other, each guarded by a conditional `UPDATE` whose `WHERE` re-checks the precondition
//! under the row lock. Locks are always taken user row first, then conversation row, so two of
//! these transactions cannot wait on each other in a cycle; a deadlock with some other
//! statement order is still possible in principle, and `SqlStore::run` retries it.

use super::page_limit;
use super::rows::{self, CONVERSATION_COLS, USER_COLS};
use super::Event;
use crate::error::{Error, Result};
use crate::SqlStore;
use sqlx::Row;
use std::cmp::Ordering;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::time::Millis;

impl SqlStore {
    /// Why this cannot double-assign or exceed capacity, on any number of nodes:
    ///
    /// 1. The agent's row is updated only `WHERE status = 'available' AND active_load < capacity`.
    ///    The UPDATE locks the row, and the database evaluates the condition against the latest
    ///    committed version (PostgreSQL re-checks it after waiting for a concurrent writer;
    ///    InnoDB's UPDATE reads the latest version; SQLite runs one writer at a time). So of N
    ///    concurrent attempts for an agent with one free slot, exactly one sees
    ///    `active_load < capacity` hold; the rest match no row.
    /// 2. The conversation row is updated only `WHERE state = 'queued'`, under the same rules, so
    ///    of N concurrent attempts for one conversation exactly one moves it to `assigned`.
    /// 3. Both updates are in one transaction: if the second matches nothing we roll back, and
    ///    the slot taken in step 1 is given back as if it had never been taken.
    pub(super) async fn try_assign_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        agent: UserId,
        now: Millis,
    ) -> Result<Option<Conversation>> {
        let mut tx = self.pool.begin().await?;
        let Some(inbox) = self.queued_inbox_of(&mut tx, tenant, conversation).await? else {
            return Ok(None);
        };
        if !self.take_slot(&mut tx, tenant, agent, inbox, now).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        let took_conversation = sqlx::query(&self.sql(
            "UPDATE conversations SET state = 'assigned', assignee_id = ?, assigned_at = ?, updated_at = ? \
             WHERE id = ? AND tenant_id = ? AND state = 'queued'",
        ))
        .bind(agent.0)
        .bind(now)
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
        self.record_event(
            &mut tx,
            Event { tenant, conversation, kind: "assigned", actor: Some(agent), detail: None, now },
        )
        .await?;
        let assigned = self.get_conversation_on(&mut tx, tenant, conversation).await?;
        tx.commit().await?;
        Ok(Some(assigned))
    }

    /// Fetches the agents with room and orders them in Rust: comparing load ÷ capacity exactly
    /// (by cross-multiplying) is awkward to write portably in SQL, where `/` truncates on two
    /// dialects and yields DECIMAL on the third.
    pub(super) async fn candidate_agents_impl(&self, tenant: TenantId, team: Option<TeamId>) -> Result<Vec<User>> {
        let mut sql = format!(
            "SELECT {USER_COLS} FROM users WHERE tenant_id = ? AND status = 'available' AND active_load < capacity"
        );
        if team.is_some() {
            sql.push_str(" AND id IN (SELECT user_id FROM team_members WHERE team_id = ? AND tenant_id = ?)");
        }
        let sql = self.sql(&sql);
        let mut query = sqlx::query(&sql).bind(tenant.0);
        if let Some(team) = team {
            query = query.bind(team.0).bind(tenant.0);
        }
        let found = query.fetch_all(&self.pool).await?;
        let mut agents = found.iter().map(rows::user).collect::<Result<Vec<_>>>()?;
        agents.sort_by(least_loaded_first);
        Ok(agents)
    }

    pub(super) async fn queued_for_agent_impl(
        &self,
        tenant: TenantId,
        agent: UserId,
        limit: i64,
    ) -> Result<Vec<Conversation>> {
        let sql = format!(
            "SELECT {CONVERSATION_COLS} FROM conversations WHERE tenant_id = ? AND state = 'queued' \
             AND (team_id IS NULL OR team_id IN (SELECT team_id FROM team_members WHERE user_id = ? AND tenant_id = ?)) \
             ORDER BY priority DESC, queued_at, id LIMIT ?"
        );
        let found = sqlx::query(&self.sql(&sql))
            .bind(tenant.0)
            .bind(agent.0)
            .bind(tenant.0)
            .bind(page_limit(limit))
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::conversation).collect()
    }

    /// Moves an offered/assigned/waiting conversation back to `queued`. Keeps the original
    /// `queued_at`, so a customer whose agent vanished does not lose their place in line.
    pub(super) async fn requeue_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        now: Millis,
    ) -> Result<Conversation> {
        let mut tx = self.pool.begin().await?;
        let current = self.get_conversation_on(&mut tx, tenant, conversation).await?;
        if !current.state.can_become(ConversationState::Queued) {
            return Err(Error::invalid_state(format!("cannot requeue a {} conversation", current.state)));
        }
        self.release_slot(&mut tx, &current, now).await?;
        let moved = self
            .update_if_unchanged(
                &mut tx,
                &current,
                "state = 'queued', assignee_id = NULL, assigned_at = NULL, offer_expires_at = NULL, \
                 queued_at = COALESCE(queued_at, ?), updated_at = ?",
                &[now, now],
            )
            .await?;
        if !moved {
            return Err(Error::Retry("conversation changed during requeue"));
        }
        self.record_event(
            &mut tx,
            Event { tenant, conversation, kind: "requeued", actor: current.assignee_id, detail: None, now },
        )
        .await?;
        let requeued = self.get_conversation_on(&mut tx, tenant, conversation).await?;
        tx.commit().await?;
        Ok(requeued)
    }

    /// Closes an open conversation. The final state follows the reason: `resolved` for
    /// `Resolved`; `abandoned` when the customer left before any agent took it; `closed`
    /// otherwise. Clearing `open_key` frees the (inbox, contact) slot for the next conversation.
    pub(super) async fn resolve_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        actor: Option<UserId>,
        reason: CloseReason,
        wrap_up: Option<&serde_json::Value>,
        now: Millis,
    ) -> Result<Conversation> {
        let mut tx = self.pool.begin().await?;
        let current = self.get_conversation_on(&mut tx, tenant, conversation).await?;
        if !current.state.is_open() {
            return Err(Error::invalid_state(format!("conversation is already {}", current.state)));
        }
        let final_state = match reason {
            CloseReason::Resolved => ConversationState::Resolved,
            CloseReason::CustomerLeft if current.assignee_id.is_none() => ConversationState::Abandoned,
            _ => ConversationState::Closed,
        };
        self.release_slot(&mut tx, &current, now).await?;
        let set = format!(
            "state = '{}', close_reason = '{}', closed_at = ?, open_key = NULL, updated_at = ?",
            final_state.as_str(),
            reason.as_str()
        );
        if !self.update_if_unchanged(&mut tx, &current, &set, &[now, now]).await? {
            return Err(Error::Retry("conversation changed during resolve"));
        }
        if let Some(values) = wrap_up {
            // The wrap-up form's values join the attributes in the resolving transaction, so a
            // resolve that fails leaves neither.
            let mut attributes = current.attributes.as_object().cloned().unwrap_or_default();
            attributes.insert("wrap_up".to_owned(), values.clone());
            sqlx::query(&self.sql("UPDATE conversations SET attributes = ? WHERE id = ? AND tenant_id = ?"))
                .bind(serde_json::Value::Object(attributes).to_string())
                .bind(conversation.0)
                .bind(tenant.0)
                .execute(&mut *tx)
                .await?;
        }
        self.record_event(
            &mut tx,
            Event { tenant, conversation, kind: "resolved", actor, detail: Some(reason.as_str()), now },
        )
        .await?;
        let resolved = self.get_conversation_on(&mut tx, tenant, conversation).await?;
        tx.commit().await?;
        Ok(resolved)
    }

    /// Takes one of the agent's slots for a conversation of `inbox` if they are available with
    /// room — in total and, where the agent has a cap for the inbox's channel kind, for that
    /// kind: step 1 of every assignment, offer and transfer (see `try_assign_impl` for why this
    /// is race-free; the per-kind row is guarded the same way). `false` leaves the caller to roll
    /// back. Locks the user row, then the per-kind row: every slot change takes them in that
    /// order, before the conversation row.
    pub(super) async fn take_slot(
        &self,
        conn: &mut sqlx::AnyConnection,
        tenant: TenantId,
        agent: UserId,
        inbox: InboxId,
        now: Millis,
    ) -> Result<bool> {
        let took = sqlx::query(&self.sql(
            "UPDATE users SET active_load = active_load + 1, last_assigned_at = ?, updated_at = ? \
             WHERE id = ? AND tenant_id = ? AND status = 'available' AND active_load < capacity",
        ))
        .bind(now)
        .bind(now)
        .bind(agent.0)
        .bind(tenant.0)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if took != 1 {
            return Ok(false);
        }
        let kind = self.inbox_kind(conn, inbox).await?;
        let took_kind = sqlx::query(&self.sql(
            "UPDATE agent_channel_loads SET slots_held = slots_held + 1, updated_at = ? \
             WHERE user_id = ? AND kind = ? AND slots_held < slots",
        ))
        .bind(now)
        .bind(agent.0)
        .bind(&kind)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if took_kind == 1 {
            return Ok(true);
        }
        // No row: this kind is not capped for the agent. A row that did not match: full.
        let capped = sqlx::query(&self.sql("SELECT slots FROM agent_channel_loads WHERE user_id = ? AND kind = ?"))
            .bind(agent.0)
            .bind(&kind)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(capped.is_none())
    }

    /// Gives one of the agent's slots (for a conversation of `inbox`) back, in `take_slot`'s
    /// lock order.
    pub(super) async fn give_back_slot(&self, conn: &mut sqlx::AnyConnection, agent: UserId, inbox: InboxId, now: Millis) -> Result<()> {
        sqlx::query(&self.sql("UPDATE users SET active_load = active_load - 1, updated_at = ? WHERE id = ? AND active_load > 0"))
            .bind(now)
            .bind(agent.0)
            .execute(&mut *conn)
            .await?;
        let kind = self.inbox_kind(conn, inbox).await?;
        sqlx::query(&self.sql(
            "UPDATE agent_channel_loads SET slots_held = slots_held - 1, updated_at = ? \
             WHERE user_id = ? AND kind = ? AND slots_held > 0",
        ))
        .bind(now)
        .bind(agent.0)
        .bind(&kind)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The inbox of a conversation of this tenant that is still queued; `None` otherwise. Read
    /// without a lock, so it decides nothing — the conditional updates do — but it spares an
    /// attempt that has already lost the agent's row lock: dispatchers working from a stale
    /// list of queued conversations otherwise locked agent after agent for nothing.
    pub(super) async fn queued_inbox_of(&self, conn: &mut sqlx::AnyConnection, tenant: TenantId, conversation: ConversationId) -> Result<Option<InboxId>> {
        let row = sqlx::query(&self.sql("SELECT inbox_id FROM conversations WHERE id = ? AND tenant_id = ? AND state = 'queued'"))
            .bind(conversation.0)
            .bind(tenant.0)
            .fetch_optional(&mut *conn)
            .await?;
        row.map(|r| Ok(InboxId(crate::exec::int(&r, "inbox_id")?))).transpose()
    }

    async fn inbox_kind(&self, conn: &mut sqlx::AnyConnection, inbox: InboxId) -> Result<String> {
        let row = sqlx::query(&self.sql("SELECT kind FROM inboxes WHERE id = ?")).bind(inbox.0).fetch_one(&mut *conn).await?;
        crate::exec::text(&row, "kind")
    }

    /// Gives back the assignee's slot if the conversation (as read) holds one.
    async fn release_slot(&self, conn: &mut sqlx::AnyConnection, current: &Conversation, now: Millis) -> Result<()> {
        if let (true, Some(agent)) = (current.state.holds_agent_slot(), current.assignee_id) {
            self.give_back_slot(conn, agent, current.inbox_id, now).await?;
        }
        Ok(())
    }

    /// Applies `set` only if the conversation still has the state and assignee we read (the
    /// read took no lock). `false` means someone changed it in between: the caller aborts the
    /// transaction — undoing its slot release — and `run` starts over from a fresh read.
    async fn update_if_unchanged(
        &self,
        conn: &mut sqlx::AnyConnection,
        current: &Conversation,
        set: &str,
        set_args: &[i64],
    ) -> Result<bool> {
        let assignee = if current.assignee_id.is_some() { "assignee_id = ?" } else { "assignee_id IS NULL" };
        let sql = format!("UPDATE conversations SET {set} WHERE id = ? AND tenant_id = ? AND state = ? AND {assignee}");
        let sql = self.sql(&sql);
        let mut query = sqlx::query(&sql);
        for v in set_args {
            query = query.bind(*v);
        }
        query = query.bind(current.id.0).bind(current.tenant_id.0).bind(current.state.as_str());
        if let Some(agent) = current.assignee_id {
            query = query.bind(agent.0);
        }
        Ok(query.execute(conn).await?.rows_affected() == 1)
    }

    pub(super) async fn tenants_with_queued_impl(&self) -> Result<Vec<TenantId>> {
        let found =
            sqlx::query("SELECT DISTINCT tenant_id FROM conversations WHERE state = 'queued' ORDER BY tenant_id")
                .fetch_all(&self.pool)
                .await?;
        found.iter().map(|row| Ok(TenantId(row.try_get::<i64, _>("tenant_id")?))).collect()
    }
}

/// Least loaded (active_load ÷ capacity) first; ties to the agent assigned longest ago, never
/// assigned counting as longest; then by id for a stable order.
fn least_loaded_first(a: &User, b: &User) -> Ordering {
    // Compare a.load / a.cap with b.load / b.cap as a.load * b.cap vs b.load * a.cap (capacities
    // here are positive: load < capacity and load >= 0). i128 cannot overflow.
    let lhs = i128::from(a.active_load) * i128::from(b.capacity);
    let rhs = i128::from(b.active_load) * i128::from(a.capacity);
    lhs.cmp(&rhs)
        .then_with(|| a.last_assigned_at.unwrap_or(i64::MIN).cmp(&b.last_assigned_at.unwrap_or(i64::MIN)))
        .then_with(|| a.id.cmp(&b.id))
}

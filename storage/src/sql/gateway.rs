//! What the unified gateway's delivery side needs from storage beyond the outbox itself:
//! platform reply tokens (LINE) kept per conversation and taken at most once, which inbox
//! actually delivered a message (a fallback while the primary's circuit is open), deferring an
//! outbox entry without spending an attempt (rate limits), the per-conversation order check, and
//! job rows (inbound media fetches) queued on the outbox once per payload.
//!
//! It must not decide policy (which kinds may stand in for each other, the limits themselves):
//! the server does; these are the durable, race-safe primitives under it.

use super::not_found;
use crate::error::Result;
use crate::exec::{insert_id, Arg};
use crate::SqlStore;
use sqlx::Row;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::time::Millis;

impl SqlStore {
    /// Keeps the newest reply token of a conversation. Insert-or-ignore, then a conditional
    /// update that only moves to a token expiring later: two nodes ingesting two messages of one
    /// conversation at once end with the newer token whatever order they commit in.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn set_reply_token_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        inbox: InboxId,
        message: MessageId,
        token: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<()> {
        let insert = self.dialect.insert_ignore(
            "INSERT INTO gateway_reply_tokens (conversation_id, tenant_id, inbox_id, message_id, token, expires_at, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            false,
        );
        let inserted = sqlx::query(&insert)
            .bind(conversation.0)
            .bind(tenant.0)
            .bind(inbox.0)
            .bind(message.0)
            .bind(token)
            .bind(expires_at)
            .bind(now)
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if inserted == 0 {
            sqlx::query(&self.sql(
                "UPDATE gateway_reply_tokens SET token = ?, message_id = ?, inbox_id = ?, expires_at = ?, updated_at = ? \
                 WHERE conversation_id = ? AND tenant_id = ? AND expires_at < ?",
            ))
            .bind(token)
            .bind(message.0)
            .bind(inbox.0)
            .bind(expires_at)
            .bind(now)
            .bind(conversation.0)
            .bind(tenant.0)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Takes the conversation's reply token if one is still valid at `now`: the DELETE names
    /// the token read, so of two nodes racing for it exactly one sees a row deleted and uses it.
    pub(super) async fn take_reply_token_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        now: Millis,
    ) -> Result<Option<String>> {
        let row = sqlx::query(&self.sql(
            "SELECT token FROM gateway_reply_tokens WHERE conversation_id = ? AND tenant_id = ? AND expires_at > ?",
        ))
        .bind(conversation.0)
        .bind(tenant.0)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let token = crate::exec::text(&row, "token")?;
        let taken = sqlx::query(&self.sql(
            "DELETE FROM gateway_reply_tokens WHERE conversation_id = ? AND tenant_id = ? AND token = ? AND expires_at > ?",
        ))
        .bind(conversation.0)
        .bind(tenant.0)
        .bind(&token)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok((taken == 1).then_some(token))
    }

    pub(super) async fn set_delivered_via_impl(
        &self,
        tenant: TenantId,
        message: MessageId,
        via: InboxId,
        now: Millis,
    ) -> Result<()> {
        self.update_one(
            "UPDATE messages SET delivered_via_inbox_id = ?, updated_at = ? WHERE id = ? AND tenant_id = ?",
            vec![Arg::Int(via.0), Arg::Int(now), Arg::Int(message.0), Arg::Int(tenant.0)],
        )
        .await
    }

    /// Reschedules a leased entry for `at` and gives back the attempt its claim counted: a
    /// rate-limited delivery was never tried, so it must not move toward the dead letters.
    pub(super) async fn defer_outbox_impl(&self, id: OutboxId, at: Millis, now: Millis) -> Result<()> {
        let done = sqlx::query(&self.sql(
            "UPDATE outbox SET next_attempt_at = ?, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
             lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ? AND status = 'pending'",
        ))
        .bind(at)
        .bind(now)
        .bind(id.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if done == 0 {
            return not_found();
        }
        Ok(())
    }

    /// The latest `next_attempt_at` among pending entries of the same kind written before
    /// `before` for messages of `conversation` (on `inbox`): `Some` means an earlier reply of
    /// this conversation still waits, and `before` must wait behind it.
    pub(super) async fn earlier_pending_delivery_impl(
        &self,
        tenant: TenantId,
        inbox: InboxId,
        conversation: ConversationId,
        kind: &str,
        before: OutboxId,
    ) -> Result<Option<Millis>> {
        let row = sqlx::query(&self.sql(
            "SELECT MAX(o.next_attempt_at) AS due FROM outbox o JOIN messages m ON m.id = o.message_id \
             WHERE o.tenant_id = ? AND o.inbox_id = ? AND o.status = 'pending' AND o.kind = ? AND o.id < ? \
             AND m.conversation_id = ?",
        ))
        .bind(tenant.0)
        .bind(inbox.0)
        .bind(kind)
        .bind(before.0)
        .bind(conversation.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("due")?)
    }

    /// Queues a job row on the outbox (no message: completing or failing it never touches a
    /// message's status) unless an entry of this kind with the same payload exists on the inbox
    /// already, in any status. Returns the entry and whether it is new. Two concurrent calls may
    /// both insert (no unique key spans a payload); job kinds using this are idempotent.
    pub(super) async fn enqueue_outbox_once_impl(
        &self,
        tenant: TenantId,
        inbox: InboxId,
        kind: &str,
        payload: &serde_json::Value,
        now: Millis,
    ) -> Result<(OutboxEntry, bool)> {
        let payload = serde_json::to_string(payload)?;
        let existing = sqlx::query(&self.sql(
            "SELECT id FROM outbox WHERE tenant_id = ? AND inbox_id = ? AND kind = ? AND message_id IS NULL AND payload = ? \
             ORDER BY id LIMIT 1",
        ))
        .bind(tenant.0)
        .bind(inbox.0)
        .bind(kind)
        .bind(&payload)
        .fetch_optional(&self.pool)
        .await?;
        let mut conn = self.pool.acquire().await?;
        if let Some(row) = existing {
            let id: i64 = row.try_get("id")?;
            return Ok((self.get_outbox_on(&mut conn, OutboxId(id)).await?, false));
        }
        let sql = self.dialect.insert_returning_id(
            "INSERT INTO outbox (tenant_id, inbox_id, message_id, kind, payload, status, attempts, \
             next_attempt_at, last_error, lease_owner, lease_until, created_at, updated_at) \
             VALUES (?, ?, NULL, ?, ?, ?, 0, ?, NULL, NULL, NULL, ?, ?)",
        );
        let query = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(inbox.0)
            .bind(kind)
            .bind(&payload)
            .bind(OutboxStatus::Pending.as_str())
            .bind(now)
            .bind(now)
            .bind(now);
        let id = insert_id(self.dialect, &mut *conn, query).await?;
        let entry = self.get_outbox_on(&mut conn, OutboxId(id)).await?;
        Ok((entry, true))
    }
}

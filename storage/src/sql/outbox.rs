//! The outbox: deliveries committed together with the message they deliver, then handed out to
//! delivery workers on any node by lease.
//!
//! A lease is (lease_owner, lease_until). Claiming is a conditional UPDATE per candidate that
//! only succeeds while the entry is pending and unleased (or its lease has passed), so two
//! workers racing for the same entry cannot both get it: the database applies the two UPDATEs
//! one after the other and the second no longer matches. A worker that crashes simply lets its
//! leases run out; the entries are then claimed again (at-least-once delivery — the receiving
//! side deduplicates by message id). This needs no `FOR UPDATE SKIP LOCKED`, which SQLite lacks.

use super::not_found;
use super::page_limit;
use super::rows::{self, OUTBOX_COLS};
use crate::error::{Error, Result};
use crate::SqlStore;
use sqlx::{AnyConnection, Row};
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::time::Millis;

impl SqlStore {
    pub(super) async fn claim_outbox_impl(
        &self,
        owner: &str,
        now: Millis,
        lease_until: Millis,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>> {
        let candidates = sqlx::query(&self.sql(
            "SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? \
             AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_attempt_at, id LIMIT ?",
        ))
        .bind(now)
        .bind(now)
        .bind(page_limit(limit))
        .fetch_all(&self.pool)
        .await?;
        let claim_sql = self.sql(
            "UPDATE outbox SET lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ? \
             WHERE id = ? AND status = 'pending' AND (lease_until IS NULL OR lease_until < ?)",
        );
        let mut claimed = Vec::with_capacity(candidates.len());
        let mut conn = self.pool.acquire().await?;
        for row in candidates {
            let id: i64 = row.try_get("id")?;
            // Each claim commits on its own: holding one transaction across the batch would only
            // make other workers wait for rows they would then fail to claim anyway.
            let won = sqlx::query(&claim_sql)
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .bind(id)
                .bind(now)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if won == 1 {
                claimed.push(self.get_outbox_on(&mut conn, OutboxId(id)).await?);
            }
        }
        Ok(claimed)
    }

    pub(crate) async fn get_outbox_on(&self, conn: &mut AnyConnection, id: OutboxId) -> Result<OutboxEntry> {
        let sql = format!("SELECT {OUTBOX_COLS} FROM outbox WHERE id = ?");
        match sqlx::query(&self.sql(&sql)).bind(id.0).fetch_optional(conn).await? {
            Some(row) => rows::outbox(&row),
            None => not_found(),
        }
    }

    async fn outbox_message(&self, conn: &mut AnyConnection, id: OutboxId) -> Result<Option<i64>> {
        let row = sqlx::query(&self.sql("SELECT message_id FROM outbox WHERE id = ?"))
            .bind(id.0)
            .fetch_optional(conn)
            .await?;
        match row {
            Some(row) => Ok(row.try_get::<Option<i64>, _>("message_id")?),
            None => not_found(),
        }
    }

    /// The lease is still ours while `lease_until >= now` (claiming needs `lease_until < now`), so
    /// of a renewal and a takeover racing on one row exactly one matches.
    pub(super) async fn renew_outbox_lease_impl(
        &self,
        id: OutboxId,
        owner: &str,
        now: Millis,
        lease_until: Millis,
    ) -> Result<bool> {
        let renewed = sqlx::query(&self.sql(
            "UPDATE outbox SET lease_until = ?, updated_at = ? \
             WHERE id = ? AND status = 'pending' AND lease_owner = ? AND lease_until >= ?",
        ))
        .bind(lease_until)
        .bind(now)
        .bind(id.0)
        .bind(owner)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(renewed == 1)
    }

    pub(super) async fn complete_outbox_impl(&self, id: OutboxId, now: Millis) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let message = self.outbox_message(&mut tx, id).await?;
        sqlx::query(&self.sql(
            "UPDATE outbox SET status = 'delivered', lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?",
        ))
        .bind(now)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        if let Some(message) = message {
            // Only move forward: a delivery/read receipt may already have overtaken us.
            sqlx::query(&self.sql(
                "UPDATE messages SET status = 'sent', updated_at = ? WHERE id = ? AND status IN ('pending', 'failed')",
            ))
            .bind(now)
            .bind(message)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn fail_outbox_impl(
        &self,
        id: OutboxId,
        error: &str,
        retry_at: Option<Millis>,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let message = self.outbox_message(&mut tx, id).await?;
        match retry_at {
            Some(at) => {
                sqlx::query(&self.sql(
                    "UPDATE outbox SET next_attempt_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL, \
                     updated_at = ? WHERE id = ? AND status = 'pending'",
                ))
                .bind(at)
                .bind(error)
                .bind(now)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(&self.sql(
                    "UPDATE outbox SET status = 'dead', last_error = ?, lease_owner = NULL, lease_until = NULL, \
                     updated_at = ? WHERE id = ? AND status = 'pending'",
                ))
                .bind(error)
                .bind(now)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
                if let Some(message) = message {
                    sqlx::query(&self.sql("UPDATE messages SET status = 'failed', updated_at = ? WHERE id = ?"))
                        .bind(now)
                        .bind(message)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn list_outbox_impl(
        &self,
        tenant: TenantId,
        status: Option<OutboxStatus>,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>> {
        let filter = if status.is_some() { " AND status = ?" } else { "" };
        let sql = format!("SELECT {OUTBOX_COLS} FROM outbox WHERE tenant_id = ?{filter} ORDER BY id DESC LIMIT ?");
        let sql = self.sql(&sql);
        let mut query = sqlx::query(&sql).bind(tenant.0);
        if let Some(status) = status {
            query = query.bind(status.as_str());
        }
        let found = query.bind(page_limit(limit)).fetch_all(&self.pool).await?;
        found.iter().map(rows::outbox).collect()
    }

    pub(super) async fn retry_outbox_impl(&self, tenant: TenantId, id: OutboxId, now: Millis) -> Result<OutboxEntry> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&self.sql("SELECT status, message_id FROM outbox WHERE id = ? AND tenant_id = ?"))
            .bind(id.0)
            .bind(tenant.0)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return not_found() };
        let status = crate::exec::text(&row, "status")?;
        if status != OutboxStatus::Dead.as_str() {
            return Err(Error::invalid_state(format!("outbox entry is {status}, not dead")));
        }
        let message: Option<i64> = row.try_get("message_id")?;
        let revived = sqlx::query(&self.sql(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, lease_owner = NULL, \
             lease_until = NULL, updated_at = ? WHERE id = ? AND tenant_id = ? AND status = 'dead'",
        ))
        .bind(now)
        .bind(now)
        .bind(id.0)
        .bind(tenant.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if revived == 0 {
            return Err(Error::Retry("outbox entry changed during retry"));
        }
        if let Some(message) = message {
            sqlx::query(
                &self.sql("UPDATE messages SET status = 'pending', updated_at = ? WHERE id = ? AND status = 'failed'"),
            )
            .bind(now)
            .bind(message)
            .execute(&mut *tx)
            .await?;
        }
        let entry = self.get_outbox_on(&mut tx, id).await?;
        tx.commit().await?;
        Ok(entry)
    }
}

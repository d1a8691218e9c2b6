//! The audit log: inserts and filtered, cursor-paged reads, always scoped by tenant. Rows are
//! never updated or deleted here; what goes into `detail` (and that it holds no secret) is the
//! server's business.

use super::page_limit;
use crate::error::Result;
use crate::exec::{bind_all, insert_id, int, json, opt_int, opt_text, text, Arg};
use crate::SqlStore;
use sqlx::any::AnyRow;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::time::Millis;

const AUDIT_COLS: &str = "id, tenant_id, actor_user_id, actor_api_token_id, actor_label, action, target_type, \
     target_id, detail, created_at";

fn audit_entry(row: &AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: int(row, "id")?,
        tenant_id: TenantId(int(row, "tenant_id")?),
        actor_user_id: opt_int(row, "actor_user_id")?.map(UserId),
        actor_api_token_id: opt_int(row, "actor_api_token_id")?,
        actor_label: text(row, "actor_label")?,
        action: text(row, "action")?,
        target_type: text(row, "target_type")?,
        target_id: opt_text(row, "target_id")?,
        detail: json(row, "detail")?,
        created_at: int(row, "created_at")?,
    })
}

impl SqlStore {
    pub(super) async fn record_audit_impl(&self, entry: &NewAuditEntry, now: Millis) -> Result<AuditEntry> {
        let sql = self.dialect.insert_returning_id(
            "INSERT INTO audit_log (tenant_id, actor_user_id, actor_api_token_id, actor_label, action, target_type, \
             target_id, detail, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        let mut conn = self.pool.acquire().await?;
        let query = sqlx::query(&sql)
            .bind(entry.tenant_id.0)
            .bind(entry.actor_user_id.map(|u| u.0))
            .bind(entry.actor_api_token_id)
            .bind(&entry.actor_label)
            .bind(&entry.action)
            .bind(&entry.target_type)
            .bind(entry.target_id.as_deref())
            .bind(serde_json::to_string(&entry.detail)?)
            .bind(now)
            .bind(now);
        let id = insert_id(self.dialect, &mut *conn, query).await?;
        Ok(AuditEntry {
            id,
            tenant_id: entry.tenant_id,
            actor_user_id: entry.actor_user_id,
            actor_api_token_id: entry.actor_api_token_id,
            actor_label: entry.actor_label.clone(),
            action: entry.action.clone(),
            target_type: entry.target_type.clone(),
            target_id: entry.target_id.clone(),
            detail: entry.detail.clone(),
            created_at: now,
        })
    }

    pub(super) async fn list_audit_impl(&self, tenant: TenantId, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let mut clauses = vec!["tenant_id = ?"];
        let mut args = vec![Arg::Int(tenant.0)];
        if let Some(action) = &filter.action {
            clauses.push("action = ?");
            args.push(Arg::Text(action.clone()));
        }
        if let Some(user) = filter.actor_user_id {
            clauses.push("actor_user_id = ?");
            args.push(Arg::Int(user.0));
        }
        if let Some(kind) = &filter.target_type {
            clauses.push("target_type = ?");
            args.push(Arg::Text(kind.clone()));
        }
        if let Some(id) = &filter.target_id {
            clauses.push("target_id = ?");
            args.push(Arg::Text(id.clone()));
        }
        if let Some(since) = filter.since {
            clauses.push("created_at >= ?");
            args.push(Arg::Int(since));
        }
        if let Some(until) = filter.until {
            clauses.push("created_at < ?");
            args.push(Arg::Int(until));
        }
        if let Some(before) = filter.before {
            clauses.push("id < ?");
            args.push(Arg::Int(before));
        }
        args.push(Arg::Int(page_limit(filter.limit)));
        let sql =
            format!("SELECT {AUDIT_COLS} FROM audit_log WHERE {} ORDER BY id DESC LIMIT ?", clauses.join(" AND "));
        let sql = self.sql(&sql);
        let found = bind_all(sqlx::query(&sql), args).fetch_all(&self.pool).await?;
        found.iter().map(audit_entry).collect()
    }
}

//! What the agent console needs beyond conversations themselves: canned responses (plain rows,
//! the shortcut kept unique per tenant by a unique index), each team's wrap-up template (a JSON
//! column on `teams`, validated by the server before it is stored) and a contact's history.
//! Resolving with wrap-up values lives with `resolve_impl` in `assignment.rs`.

use super::not_found;
use super::rows::{self, CONVERSATION_COLS, MESSAGE_COLS};
use crate::error::Result;
use crate::exec::{insert_id, int, opt_text, text, Arg};
use crate::SqlStore;
use sqlx::any::AnyRow;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::time::Millis;

const CANNED_COLS: &str = "id, tenant_id, shortcut, title, body, created_at, updated_at";

fn canned(row: &AnyRow) -> Result<CannedResponse> {
    Ok(CannedResponse {
        id: int(row, "id")?,
        tenant_id: TenantId(int(row, "tenant_id")?),
        shortcut: text(row, "shortcut")?,
        title: text(row, "title")?,
        body: text(row, "body")?,
        created_at: int(row, "created_at")?,
        updated_at: int(row, "updated_at")?,
    })
}

impl SqlStore {
    pub(super) async fn list_canned_responses_impl(&self, tenant: TenantId) -> Result<Vec<CannedResponse>> {
        let sql = format!("SELECT {CANNED_COLS} FROM canned_responses WHERE tenant_id = ? ORDER BY shortcut");
        let found = sqlx::query(&self.sql(&sql)).bind(tenant.0).fetch_all(&self.pool).await?;
        found.iter().map(canned).collect()
    }

    async fn get_canned_response(&self, tenant: TenantId, id: i64) -> Result<CannedResponse> {
        let sql = format!("SELECT {CANNED_COLS} FROM canned_responses WHERE id = ? AND tenant_id = ?");
        match sqlx::query(&self.sql(&sql)).bind(id).bind(tenant.0).fetch_optional(&self.pool).await? {
            Some(row) => canned(&row),
            None => not_found(),
        }
    }

    /// A duplicate shortcut hits the unique index and comes back as `Conflict`.
    pub(super) async fn create_canned_response_impl(
        &self,
        tenant: TenantId,
        new: &NewCannedResponse,
        now: Millis,
    ) -> Result<CannedResponse> {
        self.get_tenant_impl(tenant).await?;
        let sql = self.dialect.insert_returning_id(
            "INSERT INTO canned_responses (tenant_id, shortcut, title, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        );
        let query = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(new.shortcut.clone())
            .bind(new.title.clone())
            .bind(new.body.clone())
            .bind(now)
            .bind(now);
        let id = insert_id(self.dialect, &self.pool, query).await?;
        self.get_canned_response(tenant, id).await
    }

    pub(super) async fn update_canned_response_impl(
        &self,
        tenant: TenantId,
        id: i64,
        new: &NewCannedResponse,
        now: Millis,
    ) -> Result<CannedResponse> {
        // MySQL reports "rows matched" only with a flag, so an unchanged row would read as
        // missing; look it up first instead of trusting rows_affected.
        self.get_canned_response(tenant, id).await?;
        let sql = "UPDATE canned_responses SET shortcut = ?, title = ?, body = ?, updated_at = ? WHERE id = ? AND tenant_id = ?";
        crate::exec::bind_all(
            sqlx::query(&self.sql(sql)),
            vec![
                Arg::Text(new.shortcut.clone()),
                Arg::Text(new.title.clone()),
                Arg::Text(new.body.clone()),
                Arg::Int(now),
                Arg::Int(id),
                Arg::Int(tenant.0),
            ],
        )
        .execute(&self.pool)
        .await?;
        self.get_canned_response(tenant, id).await
    }

    pub(super) async fn delete_canned_response_impl(&self, tenant: TenantId, id: i64) -> Result<()> {
        self.update_one("DELETE FROM canned_responses WHERE id = ? AND tenant_id = ?", vec![Arg::Int(id), Arg::Int(tenant.0)])
            .await
    }

    pub(super) async fn get_team_wrap_up_template_impl(&self, tenant: TenantId, team: TeamId) -> Result<Option<serde_json::Value>> {
        let sql = "SELECT wrap_up_template FROM teams WHERE id = ? AND tenant_id = ?";
        match sqlx::query(&self.sql(sql)).bind(team.0).bind(tenant.0).fetch_optional(&self.pool).await? {
            Some(row) => Ok(opt_text(&row, "wrap_up_template")?.map(|t| serde_json::from_str(&t)).transpose()?),
            None => not_found(),
        }
    }

    pub(super) async fn set_team_wrap_up_template_impl(
        &self,
        tenant: TenantId,
        team: TeamId,
        template: Option<&serde_json::Value>,
        now: Millis,
    ) -> Result<()> {
        // Looked up first: an unchanged row is no "not found" (see `update_canned_response_impl`).
        self.get_team_wrap_up_template_impl(tenant, team).await?;
        crate::exec::bind_all(
            sqlx::query(&self.sql("UPDATE teams SET wrap_up_template = ?, updated_at = ? WHERE id = ? AND tenant_id = ?")),
            vec![Arg::OptText(template.map(serde_json::Value::to_string)), Arg::Int(now), Arg::Int(team.0), Arg::Int(tenant.0)],
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn list_contact_conversations_impl(
        &self,
        tenant: TenantId,
        contact: ContactId,
        limit: i64,
    ) -> Result<Vec<Conversation>> {
        let sql = format!("SELECT {CONVERSATION_COLS} FROM conversations WHERE tenant_id = ? AND contact_id = ? ORDER BY id DESC LIMIT ?");
        let found = sqlx::query(&self.sql(&sql))
            .bind(tenant.0)
            .bind(contact.0)
            .bind(super::page_limit(limit))
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::conversation).collect()
    }

    /// Lock, read, merge and write in one transaction: the first UPDATE takes the row lock (SQLite:
    /// the single writer) before the read, so a concurrent attribute change is not lost.
    pub(super) async fn set_conversation_attribute_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        key: &str,
        value: &serde_json::Value,
        now: Millis,
    ) -> Result<Conversation> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(&self.sql("UPDATE conversations SET updated_at = ? WHERE id = ? AND tenant_id = ?"))
            .bind(now)
            .bind(conversation.0)
            .bind(tenant.0)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(&self.sql("SELECT attributes FROM conversations WHERE id = ? AND tenant_id = ?"))
            .bind(conversation.0)
            .bind(tenant.0)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return not_found() };
        let mut attributes = match opt_text(&row, "attributes")? {
            Some(raw) => serde_json::from_str::<serde_json::Value>(&raw)?.as_object().cloned().unwrap_or_default(),
            None => serde_json::Map::new(),
        };
        attributes.insert(key.to_owned(), value.clone());
        sqlx::query(&self.sql("UPDATE conversations SET attributes = ? WHERE id = ? AND tenant_id = ?"))
            .bind(serde_json::Value::Object(attributes).to_string())
            .bind(conversation.0)
            .bind(tenant.0)
            .execute(&mut *tx)
            .await?;
        let updated = self.get_conversation_on(&mut tx, tenant, conversation).await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Newest first in SQL (so LIMIT takes the ones right before `before`), returned oldest first.
    pub(super) async fn list_messages_before_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        before: MessageId,
        limit: i64,
    ) -> Result<Vec<Message>> {
        let mut conn = self.pool.acquire().await?;
        self.get_conversation_on(&mut conn, tenant, conversation).await?;
        let sql = format!("SELECT {MESSAGE_COLS} FROM messages WHERE conversation_id = ? AND tenant_id = ? AND id < ? ORDER BY id DESC LIMIT ?");
        let found = sqlx::query(&self.sql(&sql))
            .bind(conversation.0)
            .bind(tenant.0)
            .bind(before.0)
            .bind(super::page_limit(limit))
            .fetch_all(&mut *conn)
            .await?;
        let mut page = found.iter().map(rows::message).collect::<Result<Vec<_>>>()?;
        page.reverse();
        Ok(page)
    }
}

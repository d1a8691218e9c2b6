//! What the channel gateway needs from storage: receipts applied to the messages they name,
//! platform ids recorded on the messages we sent, the pollers' work list and their cursors.

use crate::exec::Arg;
use super::rows::{self, INBOX_COLS, MESSAGE_COLS};
use crate::error::Result;
use crate::SqlStore;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::time::Millis;

/// Receipts only move a message forward: the order platforms report them in is not
/// guaranteed (a `delivered` can arrive after the `read`).
fn receipt_rank(status: DeliveryStatus) -> u8 {
    match status {
        DeliveryStatus::Pending => 0,
        DeliveryStatus::Sent => 1,
        DeliveryStatus::Delivered => 2,
        DeliveryStatus::Failed => 2,
        DeliveryStatus::Read => 3,
    }
}

/// The stored statuses a receipt of `status` may replace.
fn replaceable_by(status: DeliveryStatus) -> Vec<&'static str> {
    DeliveryStatus::ALL
        .iter()
        .filter(|s| receipt_rank(**s) < receipt_rank(status) || (status == DeliveryStatus::Failed && **s == DeliveryStatus::Delivered))
        .map(|s| s.as_str())
        .collect()
}

impl SqlStore {
    pub(super) async fn apply_receipt_impl(
        &self,
        tenant: TenantId,
        inbox: InboxId,
        platform_message_id: &str,
        status: DeliveryStatus,
        now: Millis,
    ) -> Result<Option<Message>> {
        let allowed = replaceable_by(status);
        if !allowed.is_empty() {
            let marks = vec!["?"; allowed.len()].join(", ");
            let sql = format!(
                "UPDATE messages SET status = ?, updated_at = ? \
                 WHERE tenant_id = ? AND inbox_id = ? AND platform_message_id = ? AND status IN ({marks})"
            );
            let statement = self.sql(&sql);
            let mut q = sqlx::query(&statement)
                .bind(status.as_str())
                .bind(now)
                .bind(tenant.0)
                .bind(inbox.0)
                .bind(platform_message_id);
            for s in allowed {
                q = q.bind(s);
            }
            q.execute(&self.pool).await?;
        }
        let sql = format!("SELECT {MESSAGE_COLS} FROM messages WHERE tenant_id = ? AND inbox_id = ? AND platform_message_id = ?");
        let row = sqlx::query(&self.sql(&sql))
            .bind(tenant.0)
            .bind(inbox.0)
            .bind(platform_message_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::message).transpose()
    }

    pub(super) async fn set_platform_message_id_impl(
        &self,
        tenant: TenantId,
        id: MessageId,
        platform_message_id: &str,
        now: Millis,
    ) -> Result<()> {
        self.update_one(
            "UPDATE messages SET platform_message_id = ?, updated_at = ? WHERE id = ? AND tenant_id = ?",
            vec![Arg::Text(platform_message_id.to_owned()), Arg::Int(now), Arg::Int(id.0), Arg::Int(tenant.0)],
        )
        .await
    }

    pub(super) async fn set_message_attachments_impl(
        &self,
        tenant: TenantId,
        id: MessageId,
        attachments: &[Attachment],
        now: Millis,
    ) -> Result<()> {
        self.update_one(
            "UPDATE messages SET attachments = ?, updated_at = ? WHERE id = ? AND tenant_id = ?",
            vec![Arg::Text(serde_json::to_string(attachments)?), Arg::Int(now), Arg::Int(id.0), Arg::Int(tenant.0)],
        )
        .await
    }

    pub(super) async fn list_inboxes_by_kind_unscoped_impl(&self, kind: ChannelKind) -> Result<Vec<Inbox>> {
        let sql = format!("SELECT {INBOX_COLS} FROM inboxes WHERE kind = ? ORDER BY id");
        let found = sqlx::query(&self.sql(&sql)).bind(kind.as_str()).fetch_all(&self.pool).await?;
        found.iter().map(|r| rows::inbox(r, &self.secrets)).collect()
    }

    pub(super) async fn get_channel_cursor_impl(&self, inbox: InboxId) -> Result<Option<String>> {
        let row = sqlx::query(&self.sql("SELECT cursor_value FROM channel_cursors WHERE inbox_id = ?"))
            .bind(inbox.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|r| crate::exec::text(r, "cursor_value")).transpose()
    }

    pub(super) async fn set_channel_cursor_impl(&self, inbox: InboxId, cursor: &str, now: Millis) -> Result<()> {
        // Update first; insert when there was nothing to update. Only the poller holding the
        // inbox's lease writes here, so the two statements do not race with another writer.
        let done = sqlx::query(&self.sql("UPDATE channel_cursors SET cursor_value = ?, updated_at = ? WHERE inbox_id = ?"))
            .bind(cursor)
            .bind(now)
            .bind(inbox.0)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            sqlx::query(&self.sql(
                "INSERT INTO channel_cursors (inbox_id, cursor_value, created_at, updated_at) VALUES (?, ?, ?, ?)",
            ))
            .bind(inbox.0)
            .bind(cursor)
            .bind(now)
            .bind(now)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_only_move_forward() {
        assert!(replaceable_by(DeliveryStatus::Read).contains(&"delivered"));
        assert!(!replaceable_by(DeliveryStatus::Delivered).contains(&"read"));
        assert!(replaceable_by(DeliveryStatus::Failed).contains(&"sent"));
        assert!(!replaceable_by(DeliveryStatus::Failed).contains(&"read"));
        assert!(!replaceable_by(DeliveryStatus::Sent).contains(&"delivered"));
    }
}

//! Conversations and messages: idempotent ingestion of customer messages, agent replies with
//! their outbox entry, and the reads the consoles make.
//!
//! Deduplication never relies on "select, then insert if absent" alone — two nodes can both see
//! "absent". Every such step is an insert that the database skips when a unique key already
//! holds the row (`ON CONFLICT DO NOTHING` / `INSERT IGNORE`), followed by a select of the row
//! that won. In READ COMMITTED (PostgreSQL's default; set per connection on MySQL) a conflicting
//! insert waits for the other transaction to commit, and the following select sees its row.
//! SQLite runs one transaction at a time (one pooled connection), so the race cannot occur there.

use super::inboxes::insert_contact;
use super::not_found;
use super::page_limit;
use super::rows::{self, CONVERSATION_COLS, EVENT_COLS, MESSAGE_COLS, OUTBOX_COLS};
use super::Event;
use crate::error::{Error, Result};
use crate::exec::{bind_all, insert_id, insert_ignore_id, Arg};
use crate::SqlStore;
use sqlx::{AnyConnection, Row};
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::time::Millis;

/// Priority of a new conversation: the middle of 1 (lowest) ..= 5 (highest).
const DEFAULT_PRIORITY: i64 = 3;

impl SqlStore {
    pub(super) async fn ingest_inbound_impl(&self, msg: &InboundMessage) -> Result<IngestOutcome> {
        // Redeliveries are the common duplicate: answer them without opening a transaction.
        if let Some(done) = self.find_ingested(msg).await? {
            return Ok(done);
        }
        let tenant = msg.tenant_id;
        let now = msg.now;
        let mut tx = self.pool.begin().await?;

        // An inbox with an auto-responder flow starts its conversations with the bot.
        let inbox = sqlx::query(&self.sql(
            "SELECT team_id, (SELECT COUNT(*) FROM inbox_flows f WHERE f.inbox_id = inboxes.id) AS flows \
             FROM inboxes WHERE id = ? AND tenant_id = ?",
        ))
            .bind(msg.inbox_id.0)
            .bind(tenant.0)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(inbox) = inbox else { return not_found() };
        let team_id: Option<i64> = inbox.try_get("team_id")?;
        let with_bot = crate::exec::int(&inbox, "flows")? > 0;
        let (initial_state, queued_at) =
            if with_bot { (ConversationState::Bot, None) } else { (ConversationState::Queued, Some(now)) };

        // 1. The contact, found by its identity on this inbox.
        let contact = self.contact_for_identity(&mut tx, msg).await?;

        // 2. The open conversation of (inbox, contact), or a new one. `open_key` is the contact
        //    id while a conversation is open, and UNIQUE (inbox_id, open_key) admits one.
        let open_sql = self.sql("SELECT id FROM conversations WHERE inbox_id = ? AND open_key = ?");
        let open = sqlx::query(&open_sql).bind(msg.inbox_id.0).bind(contact.0).fetch_optional(&mut *tx).await?;
        let (conversation, conversation_created) = match open {
            Some(row) => (ConversationId(row.try_get("id")?), false),
            None => {
                // The agent who last served this customer: preferred (sticky routing).
                let last_agent = sqlx::query(&self.sql(
                    "SELECT assignee_id FROM conversations WHERE contact_id = ? AND tenant_id = ? \
                     AND assignee_id IS NOT NULL ORDER BY id DESC LIMIT 1",
                ))
                .bind(contact.0)
                .bind(tenant.0)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| crate::exec::int(&row, "assignee_id"))
                .transpose()?;
                let sql = self.dialect.insert_ignore(
                    "INSERT INTO conversations (tenant_id, inbox_id, contact_id, state, priority, team_id, \
                     assignee_id, created_at, queued_at, assigned_at, first_agent_reply_at, closed_at, close_reason, \
                     biz_data, updated_at, open_key, queue_entered_at, preferred_agent_id) \
                     VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL, NULL, NULL, NULL, ?, ?, ?, ?, ?)",
                    true,
                );
                let query = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(msg.inbox_id.0)
                    .bind(contact.0)
                    .bind(initial_state.as_str())
                    .bind(DEFAULT_PRIORITY)
                    .bind(team_id)
                    .bind(now)
                    .bind(queued_at)
                    .bind("{}")
                    .bind(now)
                    .bind(contact.0)
                    .bind(queued_at)
                    .bind(last_agent);
                match insert_ignore_id(self.dialect, &mut *tx, query).await? {
                    Some(id) => {
                        let id = ConversationId(id);
                        self.record_event(
                            &mut tx,
                            Event { tenant, conversation: id, kind: "created", actor: None, detail: None, now },
                        )
                        .await?;
                        (id, true)
                    }
                    // Another transaction opened it first (and has committed: our insert waited).
                    None => match sqlx::query(&open_sql)
                        .bind(msg.inbox_id.0)
                        .bind(contact.0)
                        .fetch_optional(&mut *tx)
                        .await?
                    {
                        Some(row) => (ConversationId(row.try_get("id")?), false),
                        // ... and closed it again meanwhile. Start over.
                        None => return Err(Error::Retry("open conversation vanished")),
                    },
                }
            }
        };

        // 3. Touch the conversation before inserting the message. Taking the row lock here, and
        //    not later, keeps the lock order (conversation, then message) the same as in
        //    append_reply, and a customer answering brings a waiting conversation back to the agent.
        sqlx::query(&self.sql(
            "UPDATE conversations SET updated_at = ?, \
             state = CASE WHEN state = 'waiting_on_customer' THEN 'assigned' ELSE state END \
             WHERE id = ?",
        ))
        .bind(now)
        .bind(conversation.0)
        .execute(&mut *tx)
        .await?;

        // 4. The message, unless (inbox, platform_message_id) is already stored.
        let sql = self.dialect.insert_ignore(
            "INSERT INTO messages (tenant_id, conversation_id, inbox_id, direction, sender_kind, sender_user_id, text, \
             attachments, platform_message_id, client_message_id, status, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, NULL, ?, ?, ?)",
            true,
        );
        let query = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(conversation.0)
            .bind(msg.inbox_id.0)
            .bind(MessageDirection::Inbound.as_str())
            .bind(SenderKind::Contact.as_str())
            .bind(msg.text.as_deref())
            .bind(serde_json::to_string(&msg.attachments)?)
            .bind(&msg.platform_message_id)
            .bind(DeliveryStatus::Delivered.as_str())
            .bind(now)
            .bind(now);
        match insert_ignore_id(self.dialect, &mut *tx, query).await? {
            Some(id) => {
                let message = self.get_message_on(&mut tx, tenant, MessageId(id)).await?;
                let conversation = self.get_conversation_on(&mut tx, tenant, conversation).await?;
                tx.commit().await?;
                Ok(IngestOutcome { conversation, message, message_created: true, conversation_created })
            }
            None => {
                // A concurrent delivery of the same message committed first. Undo whatever this
                // attempt created (contact, conversation) and answer with the stored message.
                tx.rollback().await?;
                match self.find_ingested(msg).await? {
                    Some(done) => Ok(done),
                    None => Err(Error::Retry("duplicate message vanished")),
                }
            }
        }
    }

    /// The contact behind (inbox, external id), created with its identity if new. Runs inside the
    /// ingestion transaction.
    async fn contact_for_identity(&self, conn: &mut AnyConnection, msg: &InboundMessage) -> Result<ContactId> {
        let find_sql = self.sql("SELECT contact_id FROM contact_identities WHERE inbox_id = ? AND external_id = ?");
        let found = sqlx::query(&find_sql)
            .bind(msg.inbox_id.0)
            .bind(&msg.contact_external_id)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = found {
            let contact = ContactId(row.try_get("contact_id")?);
            if let Some(name) = &msg.contact_name {
                // Learn the name if the first message came without one.
                sqlx::query(&self.sql("UPDATE contacts SET name = ?, updated_at = ? WHERE id = ? AND name IS NULL"))
                    .bind(name)
                    .bind(msg.now)
                    .bind(contact.0)
                    .execute(&mut *conn)
                    .await?;
            }
            return Ok(contact);
        }
        // New to us: create a contact, then claim the identity for it. If a concurrent first
        // message claimed the identity first, our insert is skipped (after waiting for that
        // transaction to commit), our contact row is dropped and theirs is used.
        let ours = insert_contact(self, conn, msg.tenant_id, msg.contact_name.as_deref(), msg.now).await?;
        let sql = self.dialect.insert_ignore(
            "INSERT INTO contact_identities (tenant_id, contact_id, inbox_id, external_id, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
            false,
        );
        let claimed = sqlx::query(&sql)
            .bind(msg.tenant_id.0)
            .bind(ours.0)
            .bind(msg.inbox_id.0)
            .bind(&msg.contact_external_id)
            .bind(msg.now)
            .bind(msg.now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if claimed == 1 {
            return Ok(ours);
        }
        sqlx::query(&self.sql("DELETE FROM contacts WHERE id = ?")).bind(ours.0).execute(&mut *conn).await?;
        match sqlx::query(&find_sql)
            .bind(msg.inbox_id.0)
            .bind(&msg.contact_external_id)
            .fetch_optional(&mut *conn)
            .await?
        {
            Some(row) => Ok(ContactId(row.try_get("contact_id")?)),
            None => Err(Error::Retry("contact identity vanished")),
        }
    }

    /// The already-stored outcome of an inbound message, if (inbox, platform id) is known.
    async fn find_ingested(&self, msg: &InboundMessage) -> Result<Option<IngestOutcome>> {
        let sql = format!(
            "SELECT {MESSAGE_COLS} FROM messages WHERE inbox_id = ? AND platform_message_id = ? AND tenant_id = ?"
        );
        let row = sqlx::query(&self.sql(&sql))
            .bind(msg.inbox_id.0)
            .bind(&msg.platform_message_id)
            .bind(msg.tenant_id.0)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let message = rows::message(&row)?;
        let mut conn = self.pool.acquire().await?;
        let conversation = self.get_conversation_on(&mut conn, msg.tenant_id, message.conversation_id).await?;
        Ok(Some(IngestOutcome { conversation, message, message_created: false, conversation_created: false }))
    }

    pub(super) async fn append_reply_impl(&self, reply: &NewReply) -> Result<ReplyOutcome> {
        let tenant = reply.tenant_id;
        let now = reply.now;
        let mut tx = self.pool.begin().await?;
        let conversation = self.get_conversation_on(&mut tx, tenant, reply.conversation_id).await?;
        if let Some(client_id) = &reply.client_message_id {
            if let Some(done) = self.find_reply(&mut tx, tenant, conversation.id, client_id).await? {
                return Ok(done);
            }
        }
        if !conversation.state.is_open() {
            return Err(Error::invalid_state(format!("conversation is {}", conversation.state)));
        }

        // Lock the conversation row first (the same order as ingestion) and re-check that it is
        // still open under the lock: a resolve committed since our read makes this a no-op.
        let first_reply = if reply.sender_kind == SenderKind::Agent {
            ", first_agent_reply_at = COALESCE(first_agent_reply_at, ?)"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE conversations SET updated_at = ?{first_reply} WHERE id = ? AND tenant_id = ? AND open_key IS NOT NULL"
        );
        let mut args = vec![Arg::Int(now)];
        if reply.sender_kind == SenderKind::Agent {
            args.push(Arg::Int(now));
        }
        args.push(Arg::Int(conversation.id.0));
        args.push(Arg::Int(tenant.0));
        let sql = self.sql(&sql);
        if bind_all(sqlx::query(&sql), args).execute(&mut *tx).await?.rows_affected() == 0 {
            return Err(Error::invalid_state("conversation is closed"));
        }

        let inserted = insert_outbound(
            self,
            &mut tx,
            &conversation,
            reply.sender_kind,
            reply.sender_user_id,
            reply.text.as_deref(),
            &reply.attachments,
            reply.client_message_id.as_deref(),
            reply.outbox.as_ref(),
            now,
        )
        .await?;
        let Some((message, outbox)) = inserted else {
            // The same client id was committed by a concurrent resend (our insert waited for it).
            tx.rollback().await?;
            let mut conn = self.pool.acquire().await?;
            let client_id = reply.client_message_id.as_deref().unwrap_or_default();
            return match self.find_reply(&mut conn, tenant, conversation.id, client_id).await? {
                Some(done) => Ok(done),
                None => Err(Error::Retry("duplicate reply vanished")),
            };
        };
        tx.commit().await?;
        Ok(ReplyOutcome { message, outbox, created: true })
    }

    /// A reply already stored under (conversation, client message id), with its outbox entry.
    async fn find_reply(
        &self,
        conn: &mut AnyConnection,
        tenant: TenantId,
        conversation: ConversationId,
        client_id: &str,
    ) -> Result<Option<ReplyOutcome>> {
        let sql = format!(
            "SELECT {MESSAGE_COLS} FROM messages WHERE conversation_id = ? AND client_message_id = ? AND tenant_id = ?"
        );
        let row = sqlx::query(&self.sql(&sql))
            .bind(conversation.0)
            .bind(client_id)
            .bind(tenant.0)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let message = rows::message(&row)?;
        let sql = format!("SELECT {OUTBOX_COLS} FROM outbox WHERE message_id = ? ORDER BY id");
        let outbox = sqlx::query(&self.sql(&sql)).bind(message.id.0).fetch_optional(&mut *conn).await?;
        let outbox = outbox.as_ref().map(rows::outbox).transpose()?;
        Ok(Some(ReplyOutcome { message, outbox, created: false }))
    }

    pub(crate) async fn get_conversation_on(
        &self,
        conn: &mut AnyConnection,
        tenant: TenantId,
        id: ConversationId,
    ) -> Result<Conversation> {
        let sql = format!("SELECT {CONVERSATION_COLS} FROM conversations WHERE id = ? AND tenant_id = ?");
        match sqlx::query(&self.sql(&sql)).bind(id.0).bind(tenant.0).fetch_optional(conn).await? {
            Some(row) => rows::conversation(&row),
            None => not_found(),
        }
    }

    /// The open conversation of the identity's contact on this inbox, else its latest one.
    pub(super) async fn find_conversation_for_identity_impl(
        &self,
        tenant: TenantId,
        inbox: InboxId,
        external_id: &str,
    ) -> Result<Option<Conversation>> {
        let mut conn = self.pool.acquire().await?;
        let identity =
            sqlx::query(&self.sql(
                "SELECT contact_id FROM contact_identities WHERE inbox_id = ? AND external_id = ? AND tenant_id = ?",
            ))
            .bind(inbox.0)
            .bind(external_id)
            .bind(tenant.0)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(identity) = identity else { return Ok(None) };
        let contact: i64 = identity.try_get("contact_id")?;
        // Open first (open_key is non-NULL only while open), then newest.
        let sql = format!(
            "SELECT {CONVERSATION_COLS} FROM conversations WHERE inbox_id = ? AND contact_id = ? AND tenant_id = ? \
             ORDER BY CASE WHEN open_key IS NULL THEN 1 ELSE 0 END, id DESC LIMIT 1"
        );
        let row =
            sqlx::query(&self.sql(&sql)).bind(inbox.0).bind(contact).bind(tenant.0).fetch_optional(&mut *conn).await?;
        row.as_ref().map(rows::conversation).transpose()
    }

    pub(super) async fn list_conversations_impl(
        &self,
        tenant: TenantId,
        filter: &ConversationFilter,
    ) -> Result<Vec<Conversation>> {
        let mut sql = format!("SELECT {CONVERSATION_COLS} FROM conversations WHERE tenant_id = ?");
        let mut args = vec![Arg::Int(tenant.0)];
        if let Some(state) = filter.state {
            sql.push_str(" AND state = ?");
            args.push(Arg::Text(state.as_str().to_owned()));
        }
        if let Some(assignee) = filter.assignee_id {
            sql.push_str(" AND assignee_id = ?");
            args.push(Arg::Int(assignee.0));
        }
        if let Some(inbox) = filter.inbox_id {
            sql.push_str(" AND inbox_id = ?");
            args.push(Arg::Int(inbox.0));
        }
        if filter.open_only {
            // open_key is set exactly while the state is one of the open ones.
            sql.push_str(" AND open_key IS NOT NULL");
        }
        if let Some(before) = filter.before {
            sql.push_str(" AND id < ?");
            args.push(Arg::Int(before.0));
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        args.push(Arg::Int(page_limit(filter.limit)));
        let sql = self.sql(&sql);
        let found = bind_all(sqlx::query(&sql), args).fetch_all(&self.pool).await?;
        found.iter().map(rows::conversation).collect()
    }

    pub(super) async fn list_messages_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        after: Option<MessageId>,
        limit: i64,
    ) -> Result<Vec<Message>> {
        let mut conn = self.pool.acquire().await?;
        self.get_conversation_on(&mut conn, tenant, conversation).await?;
        let sql = format!(
            "SELECT {MESSAGE_COLS} FROM messages WHERE conversation_id = ? AND tenant_id = ? AND id > ? ORDER BY id LIMIT ?"
        );
        let found = sqlx::query(&self.sql(&sql))
            .bind(conversation.0)
            .bind(tenant.0)
            .bind(after.map_or(0, |m| m.0))
            .bind(page_limit(limit))
            .fetch_all(&mut *conn)
            .await?;
        found.iter().map(rows::message).collect()
    }

    pub(super) async fn get_message_impl(&self, tenant: TenantId, id: MessageId) -> Result<Message> {
        let mut conn = self.pool.acquire().await?;
        self.get_message_on(&mut conn, tenant, id).await
    }

    pub(crate) async fn get_message_on(
        &self,
        conn: &mut AnyConnection,
        tenant: TenantId,
        id: MessageId,
    ) -> Result<Message> {
        let sql = format!("SELECT {MESSAGE_COLS} FROM messages WHERE id = ? AND tenant_id = ?");
        match sqlx::query(&self.sql(&sql)).bind(id.0).bind(tenant.0).fetch_optional(conn).await? {
            Some(row) => rows::message(&row),
            None => not_found(),
        }
    }

    pub(super) async fn set_message_status_impl(
        &self,
        tenant: TenantId,
        id: MessageId,
        status: DeliveryStatus,
        now: Millis,
    ) -> Result<()> {
        self.update_one(
            "UPDATE messages SET status = ?, updated_at = ? WHERE id = ? AND tenant_id = ?",
            vec![Arg::Text(status.as_str().to_owned()), Arg::Int(now), Arg::Int(id.0), Arg::Int(tenant.0)],
        )
        .await
    }

    pub(super) async fn set_biz_data_impl(
        &self,
        tenant: TenantId,
        id: ConversationId,
        biz_data: &serde_json::Value,
        now: Millis,
    ) -> Result<Conversation> {
        self.update_one(
            "UPDATE conversations SET biz_data = ?, updated_at = ? WHERE id = ? AND tenant_id = ?",
            vec![Arg::Text(serde_json::to_string(biz_data)?), Arg::Int(now), Arg::Int(id.0), Arg::Int(tenant.0)],
        )
        .await?;
        let mut conn = self.pool.acquire().await?;
        self.get_conversation_on(&mut conn, tenant, id).await
    }

    pub(super) async fn list_conversation_events_impl(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> Result<Vec<ConversationEvent>> {
        let mut conn = self.pool.acquire().await?;
        self.get_conversation_on(&mut conn, tenant, id).await?;
        let sql = format!(
            "SELECT {EVENT_COLS} FROM conversation_events WHERE conversation_id = ? AND tenant_id = ? ORDER BY id"
        );
        let found = sqlx::query(&self.sql(&sql)).bind(id.0).bind(tenant.0).fetch_all(&mut *conn).await?;
        found.iter().map(rows::event).collect()
    }
}

/// Inserts an outbound message (an agent's or the bot's) and, when `outbox` is given, its
/// delivery entry, inside the caller's transaction on a conversation it has locked. `None` when
/// the insert was skipped because `client_message_id` is already stored for the conversation.
#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_outbound(
    store: &SqlStore,
    conn: &mut AnyConnection,
    conversation: &Conversation,
    sender_kind: SenderKind,
    sender_user_id: Option<UserId>,
    text: Option<&str>,
    attachments: &[Attachment],
    client_message_id: Option<&str>,
    outbox: Option<&NewOutbox>,
    now: Millis,
) -> Result<Option<(Message, Option<OutboxEntry>)>> {
    let tenant = conversation.tenant_id;
    let status = if outbox.is_some() { DeliveryStatus::Pending } else { DeliveryStatus::Sent };
    let sql = store.dialect.insert_ignore(
        "INSERT INTO messages (tenant_id, conversation_id, inbox_id, direction, sender_kind, sender_user_id, text, \
         attachments, platform_message_id, client_message_id, status, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)",
        true,
    );
    let query = sqlx::query(&sql)
        .bind(tenant.0)
        .bind(conversation.id.0)
        .bind(conversation.inbox_id.0)
        .bind(MessageDirection::Outbound.as_str())
        .bind(sender_kind.as_str())
        .bind(sender_user_id.map(|u| u.0))
        .bind(text)
        .bind(serde_json::to_string(attachments)?)
        .bind(client_message_id)
        .bind(status.as_str())
        .bind(now)
        .bind(now);
    let Some(message_id) = insert_ignore_id(store.dialect, &mut *conn, query).await? else {
        return Ok(None);
    };
    let entry = match outbox {
        Some(entry) => {
            let sql = store.dialect.insert_returning_id(
                "INSERT INTO outbox (tenant_id, inbox_id, message_id, kind, payload, status, attempts, \
                 next_attempt_at, last_error, lease_owner, lease_until, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, 0, ?, NULL, NULL, NULL, ?, ?)",
            );
            let query = sqlx::query(&sql)
                .bind(tenant.0)
                .bind(conversation.inbox_id.0)
                .bind(message_id)
                .bind(&entry.kind)
                .bind(serde_json::to_string(&entry.payload)?)
                .bind(OutboxStatus::Pending.as_str())
                .bind(now)
                .bind(now)
                .bind(now);
            let id = insert_id(store.dialect, &mut *conn, query).await?;
            Some(store.get_outbox_on(conn, OutboxId(id)).await?)
        }
        None => None,
    };
    let message = store.get_message_on(conn, tenant, MessageId(message_id)).await?;
    Ok(Some((message, entry)))
}

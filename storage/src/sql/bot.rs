//! The auto-responder's rows: inbox flows, bot sessions and the decision hook call log, and
//! [`SqlStore::commit_bot_turn_impl`], which applies one bot turn in one transaction.
//!
//! A turn is guarded twice. The conversation row is touched first with `state = 'bot'` in the
//! `WHERE`, which takes its row lock (the same lock order as ingestion and replies) and refuses a
//! turn for a conversation an agent or a supervisor has taken over meanwhile. Then the session
//! row is compare-and-swapped on `version`: of two nodes running a turn for the same
//! conversation at once, one commits and the other gets `Conflict`, re-reads and finds nothing
//! left to do — so the customer is never answered twice.

use std::collections::BTreeMap;

use super::conversations::insert_outbound;
use super::not_found;
use super::page_limit;
use super::rows::{self, CONVERSATION_COLS};
use super::Event;
use crate::error::{Error, Result};
use crate::exec::{int, opt_int, opt_text, text};
use crate::SqlStore;
use sqlx::AnyConnection;
use switchboard_core::autoresponder::records::*;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::time::Millis;
use switchboard_core::StoreError;

impl SqlStore {
    pub(super) async fn get_inbox_flow_impl(&self, tenant: TenantId, inbox: InboxId) -> Result<Option<InboxFlow>> {
        let row = sqlx::query(
            &self.sql("SELECT inbox_id, flow, updated_at FROM inbox_flows WHERE inbox_id = ? AND tenant_id = ?"),
        )
        .bind(inbox.0)
        .bind(tenant.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(InboxFlow {
                inbox_id: InboxId(int(&row, "inbox_id")?),
                flow: serde_json::from_str(&text(&row, "flow")?)?,
                updated_at: int(&row, "updated_at")?,
            })
        })
        .transpose()
    }

    pub(super) async fn set_inbox_flow_impl(
        &self,
        tenant: TenantId,
        inbox: InboxId,
        flow: &serde_json::Value,
        now: Millis,
    ) -> Result<InboxFlow> {
        let body = serde_json::to_string(flow)?;
        let mut tx = self.pool.begin().await?;
        // The inbox must be this tenant's.
        let owned = sqlx::query(&self.sql("SELECT id FROM inboxes WHERE id = ? AND tenant_id = ?"))
            .bind(inbox.0)
            .bind(tenant.0)
            .fetch_optional(&mut *tx)
            .await?;
        if owned.is_none() {
            return not_found();
        }
        let updated = sqlx::query(&self.sql("UPDATE inbox_flows SET flow = ?, updated_at = ? WHERE inbox_id = ?"))
            .bind(&body)
            .bind(now)
            .bind(inbox.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if updated == 0 {
            let sql = self.dialect.insert_ignore(
                "INSERT INTO inbox_flows (inbox_id, tenant_id, flow, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                false,
            );
            let inserted = sqlx::query(&sql)
                .bind(inbox.0)
                .bind(tenant.0)
                .bind(&body)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if inserted == 0 {
                // A concurrent save created it between our update and insert.
                return Err(Error::Retry("inbox flow created concurrently"));
            }
        }
        tx.commit().await?;
        Ok(InboxFlow { inbox_id: inbox, flow: flow.clone(), updated_at: now })
    }

    pub(super) async fn delete_inbox_flow_impl(&self, tenant: TenantId, inbox: InboxId) -> Result<()> {
        let done = sqlx::query(&self.sql("DELETE FROM inbox_flows WHERE inbox_id = ? AND tenant_id = ?"))
            .bind(inbox.0)
            .bind(tenant.0)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return not_found();
        }
        Ok(())
    }

    pub(super) async fn get_bot_session_impl(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<Option<BotSession>> {
        let row = sqlx::query(&self.sql(
            "SELECT conversation_id, state, version, last_message_id, hook_deadline FROM bot_sessions \
             WHERE conversation_id = ? AND tenant_id = ?",
        ))
        .bind(conversation.0)
        .bind(tenant.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(BotSession {
                conversation_id: ConversationId(int(&row, "conversation_id")?),
                state: serde_json::from_str(&text(&row, "state")?)?,
                version: int(&row, "version")?,
                last_message_id: MessageId(int(&row, "last_message_id")?),
                hook_deadline: opt_int(&row, "hook_deadline")?,
            })
        })
        .transpose()
    }

    pub(super) async fn commit_bot_turn_impl(&self, turn: &BotTurn) -> Result<BotTurnOutcome> {
        let tenant = turn.tenant_id;
        let now = turn.now;
        let mut tx = self.pool.begin().await?;

        // 1. Lock the conversation, and only while the bot still has it.
        let locked = sqlx::query(
            &self.sql("UPDATE conversations SET updated_at = ? WHERE id = ? AND tenant_id = ? AND state = 'bot'"),
        )
        .bind(now)
        .bind(turn.conversation_id.0)
        .bind(tenant.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if locked == 0 {
            let current = self.get_conversation_on(&mut tx, tenant, turn.conversation_id).await?;
            return Err(Error::invalid_state(format!("conversation is {}, not with the bot", current.state)));
        }

        // 2. Compare-and-swap the session.
        let state = serde_json::to_string(&turn.state)?;
        let swapped = if turn.expected_version == 0 {
            let sql = self.dialect.insert_ignore(
                "INSERT INTO bot_sessions (conversation_id, tenant_id, state, version, last_message_id, hook_deadline, \
                 created_at, updated_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?)",
                false,
            );
            sqlx::query(&sql)
                .bind(turn.conversation_id.0)
                .bind(tenant.0)
                .bind(&state)
                .bind(turn.last_message_id.0)
                .bind(turn.hook_deadline)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        } else {
            sqlx::query(&self.sql(
                "UPDATE bot_sessions SET state = ?, version = version + 1, last_message_id = ?, hook_deadline = ?, \
                 updated_at = ? WHERE conversation_id = ? AND tenant_id = ? AND version = ?",
            ))
            .bind(&state)
            .bind(turn.last_message_id.0)
            .bind(turn.hook_deadline)
            .bind(now)
            .bind(turn.conversation_id.0)
            .bind(tenant.0)
            .bind(turn.expected_version)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        };
        if swapped == 0 {
            return Err(Error::Store(StoreError::Conflict("the bot session changed since it was read".into())));
        }

        // 3. The bot's messages, each with its delivery.
        let mut messages = Vec::with_capacity(turn.replies.len());
        let mut outbox = Vec::new();
        let conversation = self.get_conversation_on(&mut tx, tenant, turn.conversation_id).await?;
        for reply in &turn.replies {
            let entry = turn
                .outbox_kind
                .as_ref()
                .map(|kind| NewOutbox { kind: kind.clone(), payload: serde_json::Value::Null });
            let (message, delivery) = insert_outbound(
                self,
                &mut tx,
                &conversation,
                SenderKind::Bot,
                None,
                Some(reply.as_str()),
                &[],
                None,
                entry.as_ref(),
                now,
            )
            .await?
            .ok_or(Error::Retry("bot message without client id was skipped"))?;
            messages.push(message);
            outbox.extend(delivery);
        }

        // 4. Attributes and routing.
        if !turn.conversation_attributes.is_empty() {
            let merged = merge(&conversation.attributes, &turn.conversation_attributes);
            sqlx::query(&self.sql("UPDATE conversations SET attributes = ? WHERE id = ?"))
                .bind(serde_json::to_string(&merged)?)
                .bind(conversation.id.0)
                .execute(&mut *tx)
                .await?;
        }
        if !turn.contact_attributes.is_empty() {
            let row = sqlx::query(&self.sql("SELECT attributes FROM contacts WHERE id = ?"))
                .bind(conversation.contact_id.0)
                .fetch_one(&mut *tx)
                .await?;
            let current = match opt_text(&row, "attributes")? {
                Some(t) => serde_json::from_str(&t)?,
                None => serde_json::json!({}),
            };
            sqlx::query(&self.sql("UPDATE contacts SET attributes = ?, updated_at = ? WHERE id = ?"))
                .bind(serde_json::to_string(&merge(&current, &turn.contact_attributes))?)
                .bind(now)
                .bind(conversation.contact_id.0)
                .execute(&mut *tx)
                .await?;
        }
        self.apply_routing(&mut tx, &conversation, &turn.routing).await?;

        // 5. The end of the bot's part.
        match &turn.end {
            None => {}
            Some(BotEnd::Handoff { reason }) => {
                sqlx::query(&self.sql("UPDATE conversations SET state = 'queued', queued_at = ?, queue_entered_at = ? WHERE id = ?"))
                    .bind(now)
                    .bind(now)
                    .bind(conversation.id.0)
                    .execute(&mut *tx)
                    .await?;
                self.record_event(
                    &mut tx,
                    Event {
                        tenant,
                        conversation: conversation.id,
                        kind: "bot_handoff",
                        actor: None,
                        detail: Some(reason),
                        now,
                    },
                )
                .await?;
            }
            Some(BotEnd::Close { reason, detail }) => {
                let final_state = if *reason == CloseReason::Resolved {
                    ConversationState::Resolved
                } else {
                    ConversationState::Closed
                };
                sqlx::query(&self.sql(
                    "UPDATE conversations SET state = ?, close_reason = ?, closed_at = ?, open_key = NULL WHERE id = ?",
                ))
                .bind(final_state.as_str())
                .bind(reason.as_str())
                .bind(now)
                .bind(conversation.id.0)
                .execute(&mut *tx)
                .await?;
                self.record_event(
                    &mut tx,
                    Event {
                        tenant,
                        conversation: conversation.id,
                        kind: "bot_closed",
                        actor: None,
                        detail: Some(detail),
                        now,
                    },
                )
                .await?;
            }
        }
        let conversation = self.get_conversation_on(&mut tx, tenant, conversation.id).await?;
        tx.commit().await?;
        Ok(BotTurnOutcome { conversation, messages, outbox })
    }

    /// Writes a turn's routing onto the (locked) conversation.
    async fn apply_routing(
        &self,
        conn: &mut AnyConnection,
        conversation: &Conversation,
        routing: &BotRouting,
    ) -> Result<()> {
        if *routing == BotRouting::default() {
            return Ok(());
        }
        let mut tags = conversation.tags.clone();
        for tag in &routing.tags {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        let mut skills = conversation.required_skills.as_array().cloned().unwrap_or_default();
        for skill in &routing.skills {
            // A later requirement on the same skill replaces the earlier one.
            skills.retain(|s| s.get("skill") != skill.get("skill"));
            skills.push(skill.clone());
        }
        sqlx::query(&self.sql(
            "UPDATE conversations SET team_id = COALESCE(?, team_id), priority = COALESCE(?, priority), \
             preferred_agent_id = COALESCE(?, preferred_agent_id), tags = ?, required_skills = ? WHERE id = ?",
        ))
        .bind(routing.team_id.map(|t| t.0))
        .bind(routing.priority)
        .bind(routing.preferred_agent_id.map(|u| u.0))
        .bind(serde_json::to_string(&tags)?)
        .bind(serde_json::to_string(&skills)?)
        .bind(conversation.id.0)
        .execute(conn)
        .await?;
        Ok(())
    }

    pub(super) async fn bot_conversations_needing_attention_impl(
        &self,
        now: Millis,
        stale_before: Millis,
        limit: i64,
    ) -> Result<Vec<(TenantId, ConversationId)>> {
        // Unanswered messages: an inbound message newer than the session's last (or no session
        // yet), stored before `stale_before` (so a turn in flight is not raced). Expired hook
        // calls: a deadline in the past.
        let sql = format!(
            "SELECT {CONVERSATION_COLS} FROM conversations c WHERE c.state = 'bot' AND ( \
               EXISTS (SELECT 1 FROM bot_sessions b WHERE b.conversation_id = c.id AND b.hook_deadline < ?) \
               OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.direction = 'inbound' \
                          AND m.created_at < ? \
                          AND m.id > COALESCE((SELECT b.last_message_id FROM bot_sessions b \
                                               WHERE b.conversation_id = c.id), 0)) \
             ) ORDER BY c.id LIMIT ?"
        );
        let found = sqlx::query(&self.sql(&sql))
            .bind(now)
            .bind(stale_before)
            .bind(page_limit(limit))
            .fetch_all(&self.pool)
            .await?;
        found
            .iter()
            .map(|row| {
                let c = rows::conversation(row)?;
                Ok((c.tenant_id, c.id))
            })
            .collect()
    }

    pub(super) async fn record_hook_call_impl(&self, call: &NewHookCall) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO decision_hook_calls (tenant_id, inbox_id, conversation_id, call_id, step, outcome, http_status, \
             latency_ms, error, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(call.tenant_id.0)
        .bind(call.inbox_id.0)
        .bind(call.conversation_id.0)
        .bind(call.call_id)
        .bind(&call.step)
        .bind(&call.outcome)
        .bind(call.http_status)
        .bind(call.latency_ms)
        .bind(call.error.as_deref())
        .bind(call.now)
        .bind(call.now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn list_hook_calls_impl(
        &self,
        tenant: TenantId,
        inbox: InboxId,
        limit: i64,
    ) -> Result<Vec<HookCall>> {
        let found = sqlx::query(&self.sql(
            "SELECT id, inbox_id, conversation_id, call_id, step, outcome, http_status, latency_ms, error, created_at \
             FROM decision_hook_calls WHERE tenant_id = ? AND inbox_id = ? ORDER BY id DESC LIMIT ?",
        ))
        .bind(tenant.0)
        .bind(inbox.0)
        .bind(page_limit(limit))
        .fetch_all(&self.pool)
        .await?;
        found
            .iter()
            .map(|row| {
                Ok(HookCall {
                    id: int(row, "id")?,
                    inbox_id: InboxId(int(row, "inbox_id")?),
                    conversation_id: ConversationId(int(row, "conversation_id")?),
                    call_id: int(row, "call_id")?,
                    step: text(row, "step")?,
                    outcome: text(row, "outcome")?,
                    http_status: opt_int(row, "http_status")?,
                    latency_ms: int(row, "latency_ms")?,
                    error: opt_text(row, "error")?,
                    created_at: int(row, "created_at")?,
                })
            })
            .collect()
    }
}

/// `base` (a JSON object, or anything else read as `{}`) with `add`'s keys set over it.
fn merge(base: &serde_json::Value, add: &BTreeMap<String, serde_json::Value>) -> serde_json::Value {
    let mut merged = base.as_object().cloned().unwrap_or_default();
    for (k, v) in add {
        merged.insert(k.clone(), v.clone());
    }
    serde_json::Value::Object(merged)
}

//! Transfers and internal notes: moving a conversation to another agent, another team's queue or
//! back to its queue, and private messages only agents see. Must not deliver anything: a note
//! gets no outbox entry, and telling clients is the server's job after the commit.
//!
//! A transfer keeps the assignment module's invariant — an agent's `active_load` equals the
//! number of their conversations in a slot-holding state and never exceeds `capacity` through
//! assignment — by doing everything in one transaction:
//!
//! 1. Read the conversation (no lock) and refuse `bot` and closed ones.
//! 2. Lock and change the user rows: give back the holder's slot (if the state holds one) and,
//!    for a transfer to an agent, take one of theirs with the same conditional `UPDATE` as
//!    `try_assign` (`WHERE status = 'available' AND active_load < capacity`). The two user rows
//!    are updated in ascending id order, so two transfers between the same two agents in
//!    opposite directions lock them in the same order and cannot deadlock each other; user rows
//!    come before the conversation row, as in `try_assign`, `requeue` and `resolve`.
//! 3. Update the conversation only if it still has the state and assignee read in step 1. If it
//!    changed meanwhile (a resolve, the dispatcher, another transfer), the transaction is rolled
//!    back — undoing step 2 — and `run` starts over from a fresh read.
//! 4. Store the note (a private message) and the `transferred` event in the same transaction.
//!
//! A target agent who is not available or has no free slot makes it a `Conflict`, rolled back
//! with nothing changed: the conversation stays with its holder rather than falling into the
//! queue the transferring agent did not ask for.
//!
//! A transfer into a team or back to the queue keeps the conversation's `queued_at`: the customer
//! has already waited once, and a transfer is the contact center's decision, not theirs, so they
//! keep their place in line (the same rule as `requeue` when an agent vanishes). The agent who
//! gave it away joins `declined_by`, so the dispatcher offers it to everyone else first.

use serde_json::json;
use sqlx::AnyConnection;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::time::Millis;
use switchboard_core::transfer::*;
use switchboard_core::StoreError;

use super::Event;
use crate::error::{Error, Result};
use crate::exec::{bind_all, insert_id, Arg};
use crate::SqlStore;

impl SqlStore {
    pub(super) async fn transfer_impl(&self, transfer: &NewTransfer) -> Result<TransferOutcome> {
        let tenant = transfer.tenant_id;
        let now = transfer.now;
        let mut tx = self.pool.begin().await?;
        let current = self.get_conversation_on(&mut tx, tenant, transfer.conversation_id).await?;
        if current.state == ConversationState::Bot {
            return Err(Error::invalid_state("the conversation is with the bot; it cannot be transferred"));
        }
        if !current.state.is_open() {
            return Err(Error::invalid_state(format!(
                "the conversation is {}; it cannot be transferred",
                current.state
            )));
        }
        let holder = current.assignee_id.filter(|_| current.state.holds_agent_slot());

        // What the conversation becomes, after the user rows are settled.
        let set = match transfer.to {
            TransferTarget::Agent(agent) => {
                if current.assignee_id == Some(agent) && current.state != ConversationState::Queued {
                    return Err(conflict("the conversation is already with this agent"));
                }
                self.ensure_user(&mut tx, tenant, agent).await?;
                self.move_slot(&mut tx, tenant, holder, agent, current.inbox_id, now).await?;
                ConversationSet::Assign(agent)
            }
            TransferTarget::Team(team) => {
                self.ensure_team(&mut tx, tenant, team).await?;
                self.release(&mut tx, holder, current.inbox_id, now).await?;
                ConversationSet::Queue(Some(team))
            }
            TransferTarget::Queue(true) => {
                if current.state == ConversationState::Queued {
                    return Err(Error::invalid_state("the conversation is already queued"));
                }
                self.release(&mut tx, holder, current.inbox_id, now).await?;
                ConversationSet::Queue(None)
            }
            TransferTarget::Queue(false) => return Err(Error::invalid_state("`queue` must be true")),
        };
        if !self.update_conversation(&mut tx, &current, set, now).await? {
            return Err(Error::Retry("conversation changed during transfer"));
        }

        let note = match transfer.note.as_deref() {
            Some(text) => Some(self.insert_note(&mut tx, &current, transfer.actor, text, now).await?),
            None => None,
        };
        let detail = json!({
            "from": {
                "state": current.state.as_str(),
                "agent": current.assignee_id,
                "team": current.team_id,
            },
            "to": transfer.to,
            "note_message_id": note.as_ref().map(|m| m.id),
        })
        .to_string();
        self.record_event(
            &mut tx,
            Event {
                tenant,
                conversation: current.id,
                kind: "transferred",
                actor: transfer.actor,
                detail: Some(&detail),
                now,
            },
        )
        .await?;
        let conversation = self.get_conversation_on(&mut tx, tenant, current.id).await?;
        tx.commit().await?;
        Ok(TransferOutcome { conversation, previous_assignee: current.assignee_id, note })
    }

    pub(super) async fn append_note_impl(&self, note: &NewNote) -> Result<Message> {
        let mut tx = self.pool.begin().await?;
        // Lock the conversation row first (as replies do) and check, under the lock, that it is
        // still open.
        let touched = sqlx::query(
            &self
                .sql("UPDATE conversations SET updated_at = ? WHERE id = ? AND tenant_id = ? AND open_key IS NOT NULL"),
        )
        .bind(note.now)
        .bind(note.conversation_id.0)
        .bind(note.tenant_id.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let conversation = self.get_conversation_on(&mut tx, note.tenant_id, note.conversation_id).await?;
        if touched == 0 {
            return Err(Error::invalid_state(format!("conversation is {}", conversation.state)));
        }
        let message = self.insert_note(&mut tx, &conversation, note.author, &note.text, note.now).await?;
        tx.commit().await?;
        Ok(message)
    }

    /// Gives back the holder's slot (if any) and takes one of `agent`'s, in ascending user id
    /// order. `Conflict` if `agent` is not available or has no free slot; the caller's
    /// transaction is then dropped, undoing the release.
    async fn move_slot(
        &self,
        conn: &mut AnyConnection,
        tenant: TenantId,
        holder: Option<UserId>,
        agent: UserId,
        inbox: InboxId,
        now: Millis,
    ) -> Result<()> {
        let release_first = holder.is_some_and(|h| h < agent);
        if release_first {
            self.release(conn, holder, inbox, now).await?;
        }
        if !self.take_slot(conn, tenant, agent, inbox, now).await? {
            return Err(conflict("the agent is not available or has no free capacity"));
        }
        if !release_first {
            self.release(conn, holder, inbox, now).await?;
        }
        Ok(())
    }

    /// Gives back one slot of `holder`, if there is a holder.
    async fn release(&self, conn: &mut AnyConnection, holder: Option<UserId>, inbox: InboxId, now: Millis) -> Result<()> {
        if let Some(agent) = holder {
            self.give_back_slot(conn, agent, inbox, now).await?;
        }
        Ok(())
    }

    /// Applies the transfer to the conversation row only if it still has the state and assignee
    /// we read; `false` when someone changed it in between.
    async fn update_conversation(
        &self,
        conn: &mut AnyConnection,
        current: &Conversation,
        set: ConversationSet,
        now: Millis,
    ) -> Result<bool> {
        let (set_sql, mut args) = match set {
            ConversationSet::Assign(agent) => (
                "state = 'assigned', assignee_id = ?, assigned_at = ?, offer_expires_at = NULL, updated_at = ?"
                    .to_owned(),
                vec![Arg::Int(agent.0), Arg::Int(now), Arg::Int(now)],
            ),
            ConversationSet::Queue(team) => {
                // Whoever gave it away goes last in the dispatcher's choice (`declined_by`, as
                // after a rejected offer): it returns to them only if nobody else has room.
                let mut declined = current.declined_by.clone();
                if let Some(holder) = current.assignee_id.filter(|h| !declined.contains(h)) {
                    declined.push(holder);
                }
                let mut sql = String::from(
                    "state = 'queued', assignee_id = NULL, assigned_at = NULL, offer_expires_at = NULL, \
                     queued_at = COALESCE(queued_at, ?), declined_by = ?, updated_at = ?",
                );
                let mut args = vec![Arg::Int(now), Arg::Text(serde_json::to_string(&declined)?), Arg::Int(now)];
                if let Some(team) = team {
                    sql.push_str(", team_id = ?");
                    args.push(Arg::Int(team.0));
                }
                (sql, args)
            }
        };
        let assignee = if current.assignee_id.is_some() { "assignee_id = ?" } else { "assignee_id IS NULL" };
        let sql =
            format!("UPDATE conversations SET {set_sql} WHERE id = ? AND tenant_id = ? AND state = ? AND {assignee}");
        args.push(Arg::Int(current.id.0));
        args.push(Arg::Int(current.tenant_id.0));
        args.push(Arg::Text(current.state.as_str().to_owned()));
        if let Some(agent) = current.assignee_id {
            args.push(Arg::Int(agent.0));
        }
        let sql = self.sql(&sql);
        Ok(bind_all(sqlx::query(&sql), args).execute(conn).await?.rows_affected() == 1)
    }

    /// Inserts a private message (no outbox entry) on a conversation the caller's transaction
    /// has locked.
    async fn insert_note(
        &self,
        conn: &mut AnyConnection,
        conversation: &Conversation,
        author: Option<UserId>,
        text: &str,
        now: Millis,
    ) -> Result<Message> {
        let sql = self.dialect.insert_returning_id(
            "INSERT INTO messages (tenant_id, conversation_id, inbox_id, direction, sender_kind, sender_user_id, text, \
             attachments, platform_message_id, client_message_id, status, private, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, 1, ?, ?)",
        );
        let query = sqlx::query(&sql)
            .bind(conversation.tenant_id.0)
            .bind(conversation.id.0)
            .bind(conversation.inbox_id.0)
            .bind(MessageDirection::Outbound.as_str())
            .bind(SenderKind::Agent.as_str())
            .bind(author.map(|u| u.0))
            .bind(text)
            .bind("[]")
            .bind(DeliveryStatus::Sent.as_str())
            .bind(now)
            .bind(now);
        let id = insert_id(self.dialect, &mut *conn, query).await?;
        self.get_message_on(conn, conversation.tenant_id, MessageId(id)).await
    }

    async fn ensure_user(&self, conn: &mut AnyConnection, tenant: TenantId, user: UserId) -> Result<()> {
        let found = sqlx::query(&self.sql("SELECT id FROM users WHERE id = ? AND tenant_id = ?"))
            .bind(user.0)
            .bind(tenant.0)
            .fetch_optional(conn)
            .await?;
        found.map(|_| ()).ok_or_else(Error::not_found)
    }

    async fn ensure_team(&self, conn: &mut AnyConnection, tenant: TenantId, team: TeamId) -> Result<()> {
        let found = sqlx::query(&self.sql("SELECT id FROM teams WHERE id = ? AND tenant_id = ?"))
            .bind(team.0)
            .bind(tenant.0)
            .fetch_optional(conn)
            .await?;
        found.map(|_| ()).ok_or_else(Error::not_found)
    }
}

/// What the conversation row becomes.
#[derive(Clone, Copy)]
enum ConversationSet {
    Assign(UserId),
    /// Queued, optionally in another team's queue.
    Queue(Option<TeamId>),
}

fn conflict(what: &str) -> Error {
    Error::Store(StoreError::Conflict(what.to_owned()))
}

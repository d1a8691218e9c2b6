//! The `Store` implementation. This file only routes each trait method to the area module that
//! implements it (users, inboxes, conversations, assignment, outbox) and wraps it in
//! [`SqlStore::run`], which retries transactions the database aborted to break a deadlock.

mod assignment;
mod audit;
mod bot;
mod canned;
mod channels;
mod conversations;
mod gateway;
mod inboxes;
mod offers;
mod outbox;
mod queue_rules;
mod rows;
mod transfer;
mod users;

use crate::error::{Error, Result};
use crate::SqlStore;
use async_trait::async_trait;
use sqlx::AnyConnection;
use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;
use switchboard_core::autoresponder::records::*;
use switchboard_core::domain::*;
use switchboard_core::error::StoreResult;
use switchboard_core::ids::*;
use switchboard_core::store::Store;
use switchboard_core::time::Millis;
use switchboard_core::transfer::*;

/// How often a transaction aborted by a deadlock / serialization failure is run again.
const MAX_ATTEMPTS: u32 = 6;

impl SqlStore {
    /// The query in this store's placeholder style.
    pub(crate) fn sql<'a>(&self, query: &'a str) -> Cow<'a, str> {
        self.dialect.sql(query)
    }

    /// Runs one storage operation, retrying it when the database aborted its transaction to
    /// resolve a deadlock or a serialization conflict. Such aborts are expected, rare, and
    /// harmless to retry: the aborted transaction changed nothing. They happen when concurrent
    /// transactions wait on each other's unique-key or row locks (e.g. many first messages of the
    /// same new contact on MySQL, where duplicate-key checks take shared locks).
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> StoreResult<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "retrying storage transaction");
                    // A short, growing pause lets the winner of the race commit first.
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                    attempt += 1;
                }
                other => return other.map_err(Into::into),
            }
        }
    }

    /// Appends a conversation event on the caller's connection (inside its transaction, so the
    /// event exists exactly when the change it records does).
    pub(crate) async fn record_event(&self, conn: &mut AnyConnection, event: Event<'_>) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO conversation_events (tenant_id, conversation_id, kind, actor_user_id, detail, created_at, \
             updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(event.tenant.0)
        .bind(event.conversation.0)
        .bind(event.kind)
        .bind(event.actor.map(|u| u.0))
        .bind(event.detail)
        .bind(event.now)
        .bind(event.now)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// One row of `conversation_events`: `created`, `assigned`, `requeued`, `resolved`.
pub(crate) struct Event<'a> {
    pub tenant: TenantId,
    pub conversation: ConversationId,
    pub kind: &'a str,
    pub actor: Option<UserId>,
    pub detail: Option<&'a str>,
    pub now: Millis,
}

/// A page size: non-positive means "the default", and no caller gets more than `MAX_PAGE`.
pub(crate) fn page_limit(limit: i64) -> i64 {
    const DEFAULT_PAGE: i64 = 100;
    const MAX_PAGE: i64 = 1000;
    if limit <= 0 {
        DEFAULT_PAGE
    } else {
        limit.min(MAX_PAGE)
    }
}

impl SqlStore {
    /// Runs one tenant-scoped, single-row `UPDATE`; `NotFound` when it matched no row (absent,
    /// or another tenant's — the two are indistinguishable on purpose).
    pub(crate) async fn update_one(&self, sql: &str, args: Vec<crate::exec::Arg>) -> Result<()> {
        let done = crate::exec::bind_all(sqlx::query(&self.sql(sql)), args).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return not_found();
        }
        Ok(())
    }
}

pub(crate) fn not_found<T>() -> Result<T> {
    Err(Error::not_found())
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        self.dialect.name()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.run(|| async {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    // ---- tenants, users, sessions, tokens ----------------------------------------------------
    async fn create_tenant(&self, name: &str, slug: &str, now: Millis) -> StoreResult<Tenant> {
        self.run(|| self.create_tenant_impl(name, slug, now)).await
    }
    async fn count_tenants(&self) -> StoreResult<i64> {
        self.run(|| self.count_tenants_impl()).await
    }
    async fn get_tenant(&self, id: TenantId) -> StoreResult<Tenant> {
        self.run(|| self.get_tenant_impl(id)).await
    }
    async fn find_tenant_by_slug_unscoped(&self, slug: &str) -> StoreResult<Option<Tenant>> {
        self.run(|| self.find_tenant_by_slug_impl(slug)).await
    }
    async fn create_user(&self, user: NewUser, now: Millis) -> StoreResult<User> {
        self.run(|| self.create_user_impl(&user, now)).await
    }
    async fn get_user(&self, tenant: TenantId, id: UserId) -> StoreResult<User> {
        self.run(|| self.get_user_impl(tenant, id)).await
    }
    async fn list_users(&self, tenant: TenantId) -> StoreResult<Vec<User>> {
        self.run(|| self.list_users_impl(tenant)).await
    }
    async fn update_user(&self, tenant: TenantId, id: UserId, patch: UserPatch, now: Millis) -> StoreResult<User> {
        self.run(|| self.update_user_impl(tenant, id, &patch, now)).await
    }
    async fn find_users_by_email_unscoped(&self, email: &str) -> StoreResult<Vec<User>> {
        self.run(|| self.find_users_by_email_impl(email)).await
    }
    async fn users_not_offline(&self, limit: i64) -> StoreResult<Vec<User>> {
        self.run(|| self.users_not_offline_impl(limit)).await
    }
    async fn set_agent_status(
        &self,
        tenant: TenantId,
        id: UserId,
        status: AgentStatus,
        now: Millis,
    ) -> StoreResult<User> {
        self.run(|| self.set_agent_status_impl(tenant, id, status, now)).await
    }
    async fn create_session(&self, user: &User, token_hash: &str, expires_at: Millis, now: Millis) -> StoreResult<()> {
        self.run(|| self.create_session_impl(user, token_hash, expires_at, now)).await
    }
    async fn find_session_unscoped(&self, token_hash: &str, now: Millis) -> StoreResult<Option<(Session, User)>> {
        self.run(|| self.find_session_impl(token_hash, now)).await
    }
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        self.run(|| self.delete_session_impl(token_hash)).await
    }
    async fn create_api_token(
        &self,
        tenant: TenantId,
        name: &str,
        role: Role,
        token_hash: &str,
        now: Millis,
    ) -> StoreResult<ApiToken> {
        self.run(|| self.create_api_token_impl(tenant, name, role, token_hash, now)).await
    }
    async fn find_api_token_unscoped(&self, token_hash: &str) -> StoreResult<Option<ApiToken>> {
        self.run(|| self.find_api_token_impl(token_hash)).await
    }
    async fn list_api_tokens(&self, tenant: TenantId) -> StoreResult<Vec<ApiToken>> {
        self.run(|| self.list_api_tokens_impl(tenant)).await
    }
    async fn delete_api_token(&self, tenant: TenantId, id: ApiTokenId) -> StoreResult<()> {
        self.run(|| self.delete_api_token_impl(tenant, id)).await
    }

    // ---- teams and inboxes -------------------------------------------------------------------
    async fn create_team(&self, tenant: TenantId, name: &str, now: Millis) -> StoreResult<Team> {
        self.run(|| self.create_team_impl(tenant, name, now)).await
    }
    async fn list_teams(&self, tenant: TenantId) -> StoreResult<Vec<Team>> {
        self.run(|| self.list_teams_impl(tenant)).await
    }
    async fn set_team_policy(
        &self,
        tenant: TenantId,
        team: TeamId,
        policy: Option<serde_json::Value>,
        now: Millis,
    ) -> StoreResult<Team> {
        self.run(|| self.set_team_policy_impl(tenant, team, policy.as_ref(), now)).await
    }
    async fn add_team_member(&self, tenant: TenantId, team: TeamId, user: UserId, now: Millis) -> StoreResult<()> {
        self.run(|| self.add_team_member_impl(tenant, team, user, now)).await
    }
    async fn list_team_members(&self, tenant: TenantId, team: TeamId) -> StoreResult<Vec<UserId>> {
        self.run(|| self.list_team_members_impl(tenant, team)).await
    }
    async fn create_inbox(&self, inbox: NewInbox, now: Millis) -> StoreResult<Inbox> {
        self.run(|| self.create_inbox_impl(&inbox, now)).await
    }
    async fn get_inbox(&self, tenant: TenantId, id: InboxId) -> StoreResult<Inbox> {
        self.run(|| self.get_inbox_impl(tenant, id)).await
    }
    async fn list_inboxes(&self, tenant: TenantId) -> StoreResult<Vec<Inbox>> {
        self.run(|| self.list_inboxes_impl(tenant)).await
    }
    async fn update_inbox(&self, tenant: TenantId, id: InboxId, patch: InboxPatch, now: Millis) -> StoreResult<Inbox> {
        self.run(|| self.update_inbox_impl(tenant, id, &patch, now)).await
    }
    async fn get_inbox_unscoped(&self, id: InboxId) -> StoreResult<Option<(Inbox, Option<String>)>> {
        self.run(|| self.get_inbox_unscoped_impl(id)).await
    }

    // ---- contacts, conversations, messages ---------------------------------------------------
    async fn get_contact(&self, tenant: TenantId, id: ContactId) -> StoreResult<Contact> {
        self.run(|| self.get_contact_impl(tenant, id)).await
    }
    async fn list_contact_identities(&self, tenant: TenantId, id: ContactId) -> StoreResult<Vec<ContactIdentity>> {
        self.run(|| self.list_contact_identities_impl(tenant, id)).await
    }
    async fn ingest_inbound(&self, msg: InboundMessage) -> StoreResult<IngestOutcome> {
        self.run(|| self.ingest_inbound_impl(&msg)).await
    }
    async fn append_reply(&self, reply: NewReply) -> StoreResult<ReplyOutcome> {
        self.run(|| self.append_reply_impl(&reply)).await
    }
    async fn get_conversation(&self, tenant: TenantId, id: ConversationId) -> StoreResult<Conversation> {
        self.run(|| async {
            let mut conn = self.pool.acquire().await?;
            self.get_conversation_on(&mut conn, tenant, id).await
        })
        .await
    }
    async fn find_conversation_for_identity(
        &self,
        tenant: TenantId,
        inbox: InboxId,
        external_id: &str,
    ) -> StoreResult<Option<Conversation>> {
        self.run(|| self.find_conversation_for_identity_impl(tenant, inbox, external_id)).await
    }
    async fn list_conversations(&self, tenant: TenantId, filter: ConversationFilter) -> StoreResult<Vec<Conversation>> {
        self.run(|| self.list_conversations_impl(tenant, &filter)).await
    }
    async fn list_messages(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        after: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        self.run(|| self.list_messages_impl(tenant, conversation, after, limit)).await
    }
    async fn get_message(&self, tenant: TenantId, id: MessageId) -> StoreResult<Message> {
        self.run(|| self.get_message_impl(tenant, id)).await
    }
    async fn set_message_status(
        &self,
        tenant: TenantId,
        id: MessageId,
        status: DeliveryStatus,
        now: Millis,
    ) -> StoreResult<()> {
        self.run(|| self.set_message_status_impl(tenant, id, status, now)).await
    }
    async fn apply_receipt(
        &self,
        tenant: TenantId,
        inbox: InboxId,
        platform_message_id: &str,
        status: DeliveryStatus,
        now: Millis,
    ) -> StoreResult<Option<Message>> {
        self.run(|| self.apply_receipt_impl(tenant, inbox, platform_message_id, status, now)).await
    }
    async fn set_platform_message_id(
        &self,
        tenant: TenantId,
        id: MessageId,
        platform_message_id: &str,
        now: Millis,
    ) -> StoreResult<()> {
        self.run(|| self.set_platform_message_id_impl(tenant, id, platform_message_id, now)).await
    }
    async fn set_message_attachments(&self, tenant: TenantId, id: MessageId, attachments: &[Attachment], now: Millis) -> StoreResult<()> {
        self.run(|| self.set_message_attachments_impl(tenant, id, attachments, now)).await
    }
    async fn list_inboxes_by_kind_unscoped(&self, kind: ChannelKind) -> StoreResult<Vec<Inbox>> {
        self.run(|| self.list_inboxes_by_kind_unscoped_impl(kind)).await
    }
    async fn get_channel_cursor(&self, inbox: InboxId) -> StoreResult<Option<String>> {
        self.run(|| self.get_channel_cursor_impl(inbox)).await
    }
    async fn set_channel_cursor(&self, inbox: InboxId, cursor: &str, now: Millis) -> StoreResult<()> {
        self.run(|| self.set_channel_cursor_impl(inbox, cursor, now)).await
    }
    async fn set_biz_data(
        &self,
        tenant: TenantId,
        id: ConversationId,
        biz_data: serde_json::Value,
        now: Millis,
    ) -> StoreResult<Conversation> {
        self.run(|| self.set_biz_data_impl(tenant, id, &biz_data, now)).await
    }
    async fn list_conversation_events(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> StoreResult<Vec<ConversationEvent>> {
        self.run(|| self.list_conversation_events_impl(tenant, id)).await
    }

    // ---- assignment --------------------------------------------------------------------------
    async fn try_assign(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        agent: UserId,
        now: Millis,
    ) -> StoreResult<Option<Conversation>> {
        self.run(|| self.try_assign_impl(tenant, conversation, agent, now)).await
    }
    async fn candidate_agents(&self, tenant: TenantId, team: Option<TeamId>) -> StoreResult<Vec<User>> {
        self.run(|| self.candidate_agents_impl(tenant, team)).await
    }
    async fn queued_for_agent(&self, tenant: TenantId, agent: UserId, limit: i64) -> StoreResult<Vec<Conversation>> {
        self.run(|| self.queued_for_agent_impl(tenant, agent, limit)).await
    }
    async fn requeue(&self, tenant: TenantId, conversation: ConversationId, now: Millis) -> StoreResult<Conversation> {
        self.run(|| self.requeue_impl(tenant, conversation, now)).await
    }
    async fn resolve(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        actor: Option<UserId>,
        reason: CloseReason,
        now: Millis,
    ) -> StoreResult<Conversation> {
        self.run(|| self.resolve_impl(tenant, conversation, actor, reason, None, now)).await
    }
    async fn tenants_with_queued(&self) -> StoreResult<Vec<TenantId>> {
        self.run(|| self.tenants_with_queued_impl()).await
    }
    async fn transfer(&self, transfer: NewTransfer) -> StoreResult<TransferOutcome> {
        self.run(|| self.transfer_impl(&transfer)).await
    }
    async fn append_note(&self, note: NewNote) -> StoreResult<Message> {
        self.run(|| self.append_note_impl(&note)).await
    }

    // ---- outbox ------------------------------------------------------------------------------
    async fn claim_outbox(
        &self,
        owner: &str,
        now: Millis,
        lease_until: Millis,
        limit: i64,
    ) -> StoreResult<Vec<OutboxEntry>> {
        self.run(|| self.claim_outbox_impl(owner, now, lease_until, limit)).await
    }
    async fn renew_outbox_lease(&self, id: OutboxId, owner: &str, now: Millis, lease_until: Millis) -> StoreResult<bool> {
        self.run(|| self.renew_outbox_lease_impl(id, owner, now, lease_until)).await
    }
    async fn complete_outbox(&self, id: OutboxId, now: Millis) -> StoreResult<()> {
        self.run(|| self.complete_outbox_impl(id, now)).await
    }
    async fn fail_outbox(&self, id: OutboxId, error: &str, retry_at: Option<Millis>, now: Millis) -> StoreResult<()> {
        self.run(|| self.fail_outbox_impl(id, error, retry_at, now)).await
    }
    async fn list_outbox(
        &self,
        tenant: TenantId,
        status: Option<OutboxStatus>,
        limit: i64,
    ) -> StoreResult<Vec<OutboxEntry>> {
        self.run(|| self.list_outbox_impl(tenant, status, limit)).await
    }
    async fn retry_outbox(&self, tenant: TenantId, id: OutboxId, now: Millis) -> StoreResult<OutboxEntry> {
        self.run(|| self.retry_outbox_impl(tenant, id, now)).await
    }

    async fn try_offer(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        agent: UserId,
        now: Millis,
        expires_at: Millis,
    ) -> StoreResult<Option<Conversation>> {
        self.run(|| self.try_offer_impl(tenant, conversation, agent, now, expires_at)).await
    }

    async fn accept_offer(&self, tenant: TenantId, conversation: ConversationId, agent: UserId, now: Millis) -> StoreResult<Conversation> {
        self.run(|| self.accept_offer_impl(tenant, conversation, agent, now)).await
    }

    async fn decline_offer(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        agent: UserId,
        reason: &str,
        now: Millis,
    ) -> StoreResult<Conversation> {
        self.run(|| self.decline_offer_impl(tenant, conversation, agent, reason, now)).await
    }

    async fn expired_offers(&self, now: Millis, limit: i64) -> StoreResult<Vec<Conversation>> {
        self.run(|| self.expired_offers_impl(now, limit)).await
    }

    async fn offers_for_agent(&self, tenant: TenantId, agent: UserId) -> StoreResult<Vec<Conversation>> {
        self.run(|| self.offers_for_agent_impl(tenant, agent)).await
    }

    async fn start_wrap_up(&self, tenant: TenantId, agent: UserId, until: Millis, now: Millis) -> StoreResult<()> {
        self.run(|| self.start_wrap_up_impl(tenant, agent, until, now)).await
    }

    async fn overflow(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        from: Option<TeamId>,
        to: TeamId,
        now: Millis,
    ) -> StoreResult<Option<Conversation>> {
        self.run(|| self.overflow_impl(tenant, conversation, from, to, now)).await
    }

    async fn set_channel_capacity(
        &self,
        tenant: TenantId,
        user: UserId,
        caps: &[(ChannelKind, i64)],
        now: Millis,
    ) -> StoreResult<()> {
        self.run(|| self.set_channel_capacity_impl(tenant, user, caps, now)).await
    }

    async fn tenants_with_unanswered(&self) -> StoreResult<Vec<TenantId>> {
        self.run(|| self.tenants_with_unanswered_impl()).await
    }

    async fn count_waiting(&self, tenant: TenantId, team: Option<TeamId>) -> StoreResult<i64> {
        self.run(|| self.count_waiting_impl(tenant, team)).await
    }

    async fn requeue_unanswered(&self, tenant: TenantId, conversation: ConversationId, agent: UserId, now: Millis) -> StoreResult<Conversation> {
        self.run(|| self.requeue_unanswered_impl(tenant, conversation, agent, now)).await
    }

    async fn get_inbox_flow(&self, tenant: TenantId, inbox: InboxId) -> StoreResult<Option<InboxFlow>> {
        self.run(|| self.get_inbox_flow_impl(tenant, inbox)).await
    }

    async fn set_inbox_flow(
        &self,
        tenant: TenantId,
        inbox: InboxId,
        flow: &serde_json::Value,
        now: Millis,
    ) -> StoreResult<InboxFlow> {
        self.run(|| self.set_inbox_flow_impl(tenant, inbox, flow, now)).await
    }

    async fn delete_inbox_flow(&self, tenant: TenantId, inbox: InboxId) -> StoreResult<()> {
        self.run(|| self.delete_inbox_flow_impl(tenant, inbox)).await
    }

    async fn get_bot_session(&self, tenant: TenantId, conversation: ConversationId) -> StoreResult<Option<BotSession>> {
        self.run(|| self.get_bot_session_impl(tenant, conversation)).await
    }

    async fn commit_bot_turn(&self, turn: BotTurn) -> StoreResult<BotTurnOutcome> {
        self.run(|| self.commit_bot_turn_impl(&turn)).await
    }

    async fn bot_conversations_needing_attention(
        &self,
        now: Millis,
        stale_before: Millis,
        limit: i64,
    ) -> StoreResult<Vec<(TenantId, ConversationId)>> {
        self.run(|| self.bot_conversations_needing_attention_impl(now, stale_before, limit)).await
    }

    async fn record_hook_call(&self, call: NewHookCall) -> StoreResult<()> {
        self.run(|| self.record_hook_call_impl(&call)).await
    }

    async fn list_hook_calls(&self, tenant: TenantId, inbox: InboxId, limit: i64) -> StoreResult<Vec<HookCall>> {
        self.run(|| self.list_hook_calls_impl(tenant, inbox, limit)).await
    }

    async fn set_reply_token(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        inbox: InboxId,
        message: MessageId,
        token: &str,
        expires_at: Millis,
        now: Millis,
    ) -> StoreResult<()> {
        self.run(|| self.set_reply_token_impl(tenant, conversation, inbox, message, token, expires_at, now)).await
    }

    async fn take_reply_token(&self, tenant: TenantId, conversation: ConversationId, now: Millis) -> StoreResult<Option<String>> {
        self.run(|| self.take_reply_token_impl(tenant, conversation, now)).await
    }

    async fn set_delivered_via(&self, tenant: TenantId, message: MessageId, via: InboxId, now: Millis) -> StoreResult<()> {
        self.run(|| self.set_delivered_via_impl(tenant, message, via, now)).await
    }

    async fn defer_outbox(&self, id: OutboxId, at: Millis, now: Millis) -> StoreResult<()> {
        self.run(|| self.defer_outbox_impl(id, at, now)).await
    }

    async fn earlier_pending_delivery(
        &self,
        tenant: TenantId,
        inbox: InboxId,
        conversation: ConversationId,
        kind: &str,
        before: OutboxId,
    ) -> StoreResult<Option<Millis>> {
        self.run(|| self.earlier_pending_delivery_impl(tenant, inbox, conversation, kind, before)).await
    }

    async fn enqueue_outbox_once(
        &self,
        tenant: TenantId,
        inbox: InboxId,
        kind: &str,
        payload: &serde_json::Value,
        now: Millis,
    ) -> StoreResult<(OutboxEntry, bool)> {
        self.run(|| self.enqueue_outbox_once_impl(tenant, inbox, kind, payload, now)).await
    }

    async fn list_canned_responses(&self, tenant: TenantId) -> StoreResult<Vec<CannedResponse>> {
        self.run(|| self.list_canned_responses_impl(tenant)).await
    }
    async fn create_canned_response(&self, tenant: TenantId, canned: NewCannedResponse, now: Millis) -> StoreResult<CannedResponse> {
        self.run(|| self.create_canned_response_impl(tenant, &canned, now)).await
    }
    async fn update_canned_response(&self, tenant: TenantId, id: i64, canned: NewCannedResponse, now: Millis) -> StoreResult<CannedResponse> {
        self.run(|| self.update_canned_response_impl(tenant, id, &canned, now)).await
    }
    async fn delete_canned_response(&self, tenant: TenantId, id: i64) -> StoreResult<()> {
        self.run(|| self.delete_canned_response_impl(tenant, id)).await
    }
    async fn get_team_wrap_up_template(&self, tenant: TenantId, team: TeamId) -> StoreResult<Option<serde_json::Value>> {
        self.run(|| self.get_team_wrap_up_template_impl(tenant, team)).await
    }
    async fn set_team_wrap_up_template(&self, tenant: TenantId, team: TeamId, template: Option<serde_json::Value>, now: Millis) -> StoreResult<()> {
        self.run(|| self.set_team_wrap_up_template_impl(tenant, team, template.as_ref(), now)).await
    }
    async fn resolve_with_wrap_up(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        actor: Option<UserId>,
        reason: CloseReason,
        wrap_up: serde_json::Value,
        now: Millis,
    ) -> StoreResult<Conversation> {
        self.run(|| self.resolve_impl(tenant, conversation, actor, reason, Some(&wrap_up), now)).await
    }
    async fn list_contact_conversations(&self, tenant: TenantId, contact: ContactId, limit: i64) -> StoreResult<Vec<Conversation>> {
        self.run(|| self.list_contact_conversations_impl(tenant, contact, limit)).await
    }
    async fn list_messages_before(&self, tenant: TenantId, conversation: ConversationId, before: MessageId, limit: i64) -> StoreResult<Vec<Message>> {
        self.run(|| self.list_messages_before_impl(tenant, conversation, before, limit)).await
    }
    async fn set_conversation_attribute(&self, tenant: TenantId, conversation: ConversationId, key: &str, value: serde_json::Value, now: Millis) -> StoreResult<Conversation> {
        self.run(|| self.set_conversation_attribute_impl(tenant, conversation, key, &value, now)).await
    }
    async fn record_audit(&self, entry: NewAuditEntry, now: Millis) -> StoreResult<AuditEntry> {
        self.run(|| self.record_audit_impl(&entry, now)).await
    }
    async fn list_audit(&self, tenant: TenantId, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        self.run(|| self.list_audit_impl(tenant, &filter)).await
    }
}

//! The `Store` port: everything the server asks of durable storage. One implementation per SQL
//! dialect lives in the `switchboard-storage` crate; the conformance suite there runs the same
//! checks against each.
//!
//! Every method that reads or writes tenant data takes the `TenantId` and must scope by it: a row
//! of another tenant is reported as `NotFound`, never returned. Methods whose names end in
//! `_unscoped` are the few entry points that discover the tenant (login, token lookup, webhook
//! ingestion) and must only be called before a tenant is known.

use crate::autoresponder::records::*;
use crate::domain::*;
use crate::error::StoreResult;
use crate::ids::*;
use crate::time::Millis;
use crate::transfer::*;
use async_trait::async_trait;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is (`postgres`, `mysql`, `sqlite`), for logs and `/readyz`.
    fn backend(&self) -> &'static str;
    /// A cheap round trip proving the database answers.
    async fn ping(&self) -> StoreResult<()>;

    // ---- tenants, users, sessions, tokens -------------------------------------------------
    async fn create_tenant(&self, name: &str, slug: &str, now: Millis) -> StoreResult<Tenant>;
    async fn count_tenants(&self) -> StoreResult<i64>;
    async fn get_tenant(&self, id: TenantId) -> StoreResult<Tenant>;
    async fn find_tenant_by_slug_unscoped(&self, slug: &str) -> StoreResult<Option<Tenant>>;

    /// `Conflict` when the email is already used within the tenant.
    async fn create_user(&self, user: NewUser, now: Millis) -> StoreResult<User>;
    async fn get_user(&self, tenant: TenantId, id: UserId) -> StoreResult<User>;
    async fn list_users(&self, tenant: TenantId) -> StoreResult<Vec<User>>;
    async fn update_user(&self, tenant: TenantId, id: UserId, patch: UserPatch, now: Millis) -> StoreResult<User>;
    /// All users with this email across tenants (login picks one by tenant slug).
    async fn find_users_by_email_unscoped(&self, email: &str) -> StoreResult<Vec<User>>;
    async fn set_agent_status(&self, tenant: TenantId, id: UserId, status: AgentStatus, now: Millis) -> StoreResult<User>;
    /// Users whose status is not `offline`, in every tenant, by id, at most `limit` (the absence
    /// sweep: agents whose node died with their sockets and who never came back).
    async fn users_not_offline(&self, limit: i64) -> StoreResult<Vec<User>>;

    /// Stores a login session under the SHA-256 of its token (the token itself is never stored).
    async fn create_session(&self, user: &User, token_hash: &str, expires_at: Millis, now: Millis) -> StoreResult<()>;
    /// The session and its user, if the token hash is known and not expired at `now`.
    async fn find_session_unscoped(&self, token_hash: &str, now: Millis) -> StoreResult<Option<(Session, User)>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;

    async fn create_api_token(&self, tenant: TenantId, name: &str, role: Role, token_hash: &str, now: Millis) -> StoreResult<ApiToken>;
    async fn find_api_token_unscoped(&self, token_hash: &str) -> StoreResult<Option<ApiToken>>;
    async fn list_api_tokens(&self, tenant: TenantId) -> StoreResult<Vec<ApiToken>>;
    async fn delete_api_token(&self, tenant: TenantId, id: ApiTokenId) -> StoreResult<()>;

    // ---- teams and inboxes -----------------------------------------------------------------
    async fn create_team(&self, tenant: TenantId, name: &str, now: Millis) -> StoreResult<Team>;
    async fn list_teams(&self, tenant: TenantId) -> StoreResult<Vec<Team>>;
    /// Sets (or with `None` clears) the team queue's routing policy; the caller validates it.
    async fn set_team_policy(&self, tenant: TenantId, team: TeamId, policy: Option<serde_json::Value>, now: Millis) -> StoreResult<Team>;
    async fn add_team_member(&self, tenant: TenantId, team: TeamId, user: UserId, now: Millis) -> StoreResult<()>;
    async fn list_team_members(&self, tenant: TenantId, team: TeamId) -> StoreResult<Vec<UserId>>;

    async fn create_inbox(&self, inbox: NewInbox, now: Millis) -> StoreResult<Inbox>;
    async fn get_inbox(&self, tenant: TenantId, id: InboxId) -> StoreResult<Inbox>;
    async fn list_inboxes(&self, tenant: TenantId) -> StoreResult<Vec<Inbox>>;
    async fn update_inbox(&self, tenant: TenantId, id: InboxId, patch: InboxPatch, now: Millis) -> StoreResult<Inbox>;
    /// The inbox and the SHA-256 of its ingestion token, for webhook/API-channel entry points
    /// that learn the tenant from the inbox.
    async fn get_inbox_unscoped(&self, id: InboxId) -> StoreResult<Option<(Inbox, Option<String>)>>;
    /// Every inbox of a channel kind across tenants (the pollers' work list).
    async fn list_inboxes_by_kind_unscoped(&self, kind: ChannelKind) -> StoreResult<Vec<Inbox>>;
    /// Where a polled inbox continues from (`None` before the first poll).
    async fn get_channel_cursor(&self, inbox: InboxId) -> StoreResult<Option<String>>;
    /// Saves the poll cursor; call only after the events before it are committed.
    async fn set_channel_cursor(&self, inbox: InboxId, cursor: &str, now: Millis) -> StoreResult<()>;

    // ---- contacts, conversations, messages -------------------------------------------------
    async fn get_contact(&self, tenant: TenantId, id: ContactId) -> StoreResult<Contact>;
    async fn list_contact_identities(&self, tenant: TenantId, id: ContactId) -> StoreResult<Vec<ContactIdentity>>;

    /// Commits one inbound customer message, idempotently: the contact and its identity are
    /// created if new, the open conversation of (inbox, contact) is reused or a new one opened in
    /// state `Queued`, and the message is inserted unless (inbox, platform_message_id) already
    /// exists — then the stored message is returned with `message_created = false`.
    /// Safe under concurrent calls with the same ids, from any number of processes.
    async fn ingest_inbound(&self, msg: InboundMessage) -> StoreResult<IngestOutcome>;

    /// Commits an agent/bot reply and, if requested, its outbox entry in one transaction. A
    /// repeated `client_message_id` in the same conversation returns the stored message.
    /// Sets `first_agent_reply_at` on the first agent reply. `InvalidState` if the conversation
    /// is not open.
    async fn append_reply(&self, reply: NewReply) -> StoreResult<ReplyOutcome>;

    async fn get_conversation(&self, tenant: TenantId, id: ConversationId) -> StoreResult<Conversation>;
    /// The conversation a returning customer resumes: the open conversation of the contact with
    /// this identity on this inbox, else their most recent one; `None` for an unknown identity.
    async fn find_conversation_for_identity(&self, tenant: TenantId, inbox: InboxId, external_id: &str) -> StoreResult<Option<Conversation>>;
    async fn list_conversations(&self, tenant: TenantId, filter: ConversationFilter) -> StoreResult<Vec<Conversation>>;
    /// Messages of a conversation with id > `after`, oldest first, at most `limit`.
    async fn list_messages(&self, tenant: TenantId, conversation: ConversationId, after: Option<MessageId>, limit: i64) -> StoreResult<Vec<Message>>;
    async fn get_message(&self, tenant: TenantId, id: MessageId) -> StoreResult<Message>;
    async fn set_message_status(&self, tenant: TenantId, id: MessageId, status: DeliveryStatus, now: Millis) -> StoreResult<()>;
    /// Applies a platform's delivery receipt to the message it names on this inbox. Receipts
    /// only move forward (sent → delivered → read; failed from anywhere but read): a late
    /// `delivered` never overwrites `read`. `Ok(None)` when no such message exists.
    async fn apply_receipt(&self, tenant: TenantId, inbox: InboxId, platform_message_id: &str, status: DeliveryStatus, now: Millis) -> StoreResult<Option<Message>>;
    /// Records the platform's id for a message we sent, so its receipts can find it.
    async fn set_platform_message_id(&self, tenant: TenantId, id: MessageId, platform_message_id: &str, now: Millis) -> StoreResult<()>;
    /// Replaces a message's attachments (inbound platform media once it is in the media store).
    async fn set_message_attachments(&self, tenant: TenantId, id: MessageId, attachments: &[Attachment], now: Millis) -> StoreResult<()>;
    async fn set_biz_data(&self, tenant: TenantId, id: ConversationId, biz_data: serde_json::Value, now: Millis) -> StoreResult<Conversation>;
    async fn list_conversation_events(&self, tenant: TenantId, id: ConversationId) -> StoreResult<Vec<ConversationEvent>>;

    // ---- assignment ------------------------------------------------------------------------
    /// Atomically assigns a `Queued` conversation to an agent who is `available` and below
    /// capacity, raising the agent's `active_load` in the same transaction. Returns `Ok(None)`
    /// (and changes nothing) when either condition no longer holds — e.g. another node won the
    /// race. This conditional double update is what makes double assignment and over-capacity
    /// impossible across nodes: both rows are checked and changed under the database's locks.
    async fn try_assign(&self, tenant: TenantId, conversation: ConversationId, agent: UserId, now: Millis) -> StoreResult<Option<Conversation>>;
    /// Available agents of the tenant (optionally: members of `team`) with room, least loaded
    /// first (load ÷ capacity), ties to the one assigned longest ago.
    async fn candidate_agents(&self, tenant: TenantId, team: Option<TeamId>) -> StoreResult<Vec<User>>;
    /// Oldest `Queued` conversations the agent could take (the agent's teams, or no team),
    /// highest priority first, then oldest first.
    async fn queued_for_agent(&self, tenant: TenantId, agent: UserId, limit: i64) -> StoreResult<Vec<Conversation>>;
    /// Puts an assigned conversation back in the queue (agent gone), releasing the slot.
    async fn requeue(&self, tenant: TenantId, conversation: ConversationId, now: Millis) -> StoreResult<Conversation>;
    /// Closes an open conversation with a reason, releasing the assignee's slot in the same
    /// transaction. `InvalidState` if it is already closed.
    async fn resolve(&self, tenant: TenantId, conversation: ConversationId, actor: Option<UserId>, reason: CloseReason, now: Millis) -> StoreResult<Conversation>;
    /// Offers a `Queued` conversation to an agent until `expires_at`, under exactly the
    /// conditions of [`Store::try_assign`] (an offer holds a slot); `Ok(None)` when they no
    /// longer hold.
    async fn try_offer(&self, tenant: TenantId, conversation: ConversationId, agent: UserId, now: Millis, expires_at: Millis) -> StoreResult<Option<Conversation>>;
    /// The offered agent takes the conversation (`offered` → `assigned`). `InvalidState` if it
    /// is not, or no longer, offered to them.
    async fn accept_offer(&self, tenant: TenantId, conversation: ConversationId, agent: UserId, now: Millis) -> StoreResult<Conversation>;
    /// Gives an offer back to the queue (keeping `queued_at`), freeing the slot and adding the
    /// agent to `declined_by`. `reason`: `rejected`, `expired` or `withdrawn`. `InvalidState`
    /// if it is not, or no longer, offered to that agent.
    async fn decline_offer(&self, tenant: TenantId, conversation: ConversationId, agent: UserId, reason: &str, now: Millis) -> StoreResult<Conversation>;
    /// Offers of any tenant whose `offer_expires_at` is before `now`.
    async fn expired_offers(&self, now: Millis, limit: i64) -> StoreResult<Vec<Conversation>>;
    async fn offers_for_agent(&self, tenant: TenantId, agent: UserId) -> StoreResult<Vec<Conversation>>;
    /// The agent gets no new work until `until` (a queue's `wrap_up_ms` after a resolve).
    async fn start_wrap_up(&self, tenant: TenantId, agent: UserId, until: Millis, now: Millis) -> StoreResult<()>;
    /// Moves a still-`queued` conversation from team `from`'s queue to `to`'s (keeping its
    /// `queued_at`, restarting `queue_entered_at`); `None` if it is no longer queued in `from`.
    async fn overflow(&self, tenant: TenantId, conversation: ConversationId, from: Option<TeamId>, to: TeamId, now: Millis) -> StoreResult<Option<Conversation>>;
    /// Conversations queued or offered in a team's queue (`None`: the no-team queue).
    async fn count_waiting(&self, tenant: TenantId, team: Option<TeamId>) -> StoreResult<i64>;
    /// Takes back an assigned conversation its agent never answered (the queue's
    /// `reassign_without_reply_ms`): queued again in its place, the slot freed, the agent added to
    /// `declined_by`. `InvalidState` if the agent answered or it moved meanwhile.
    /// Replaces an agent's caps per channel kind (on top of the total capacity); kinds not named
    /// are uncapped. Lowering a cap below what the agent holds only stops new work of that kind.
    async fn set_channel_capacity(&self, tenant: TenantId, user: UserId, caps: &[(ChannelKind, i64)], now: Millis) -> StoreResult<()>;
    /// Tenants with assigned conversations their agent has not answered yet.
    async fn tenants_with_unanswered(&self) -> StoreResult<Vec<TenantId>>;
    async fn requeue_unanswered(&self, tenant: TenantId, conversation: ConversationId, agent: UserId, now: Millis) -> StoreResult<Conversation>;
    /// Tenants that have queued conversations (the dispatcher's sweep after a restart).
    async fn tenants_with_queued(&self) -> StoreResult<Vec<TenantId>>;

    // ---- transfer and internal notes -------------------------------------------------------
    /// Transfers an open conversation in one transaction: releases the current holder's slot (if
    /// its state holds one), then assigns it to the target agent (only if `available` and below
    /// capacity, checked and bumped as in [`Store::try_assign`]; else `Conflict` and nothing
    /// changes), or moves it into a team's queue, or back to the queue. A requeued conversation
    /// keeps its `queued_at`. Records a `transferred` event (detail: JSON with `from` and `to`)
    /// and stores the note as a private message. `InvalidState` for `bot` and closed
    /// conversations; `NotFound` for an unknown conversation, target agent or team.
    async fn transfer(&self, transfer: NewTransfer) -> StoreResult<TransferOutcome>;
    /// Stores an internal note (a private message) in an open conversation. `InvalidState` if
    /// the conversation is closed.
    async fn append_note(&self, note: NewNote) -> StoreResult<Message>;

    // ---- outbox ----------------------------------------------------------------------------
    /// Leases up to `limit` pending entries due at `now` to `owner` until `lease_until`. An entry
    /// leased by a crashed node becomes claimable again once its lease passes.
    async fn claim_outbox(&self, owner: &str, now: Millis, lease_until: Millis, limit: i64) -> StoreResult<Vec<OutboxEntry>>;
    /// Extends `owner`'s lease on a pending entry to `lease_until` if it still holds it at `now`
    /// (not run out, not taken over). `false`: another worker may have it — do not deliver it.
    async fn renew_outbox_lease(&self, id: OutboxId, owner: &str, now: Millis, lease_until: Millis) -> StoreResult<bool>;
    /// Marks an entry delivered and its message `sent`.
    async fn complete_outbox(&self, id: OutboxId, now: Millis) -> StoreResult<()>;
    /// Records a failed attempt: reschedules at `retry_at`, or marks the entry dead (and its
    /// message `failed`) when `retry_at` is `None`.
    async fn fail_outbox(&self, id: OutboxId, error: &str, retry_at: Option<Millis>, now: Millis) -> StoreResult<()>;
    async fn list_outbox(&self, tenant: TenantId, status: Option<OutboxStatus>, limit: i64) -> StoreResult<Vec<OutboxEntry>>;
    /// Puts a dead entry back to pending with a fresh retry budget.
    async fn retry_outbox(&self, tenant: TenantId, id: OutboxId, now: Millis) -> StoreResult<OutboxEntry>;

    // ---- auto-responder --------------------------------------------------------------------
    async fn get_inbox_flow(&self, tenant: TenantId, inbox: InboxId) -> StoreResult<Option<InboxFlow>>;
    /// Saves (creates or replaces) an inbox's flow. New conversations on an inbox with a flow
    /// start in the `bot` state; ingestion checks for the row in its own transaction.
    async fn set_inbox_flow(&self, tenant: TenantId, inbox: InboxId, flow: &serde_json::Value, now: Millis) -> StoreResult<InboxFlow>;
    /// Removes an inbox's flow (`NotFound` if it has none). Conversations already with the bot
    /// are handed off by the server on their next message.
    async fn delete_inbox_flow(&self, tenant: TenantId, inbox: InboxId) -> StoreResult<()>;
    async fn get_bot_session(&self, tenant: TenantId, conversation: ConversationId) -> StoreResult<Option<BotSession>>;
    /// Commits one bot turn atomically (see [`BotTurn`]): `Conflict` when another turn won the
    /// compare-and-swap, `InvalidState` when the conversation has left the `bot` state.
    async fn commit_bot_turn(&self, turn: BotTurn) -> StoreResult<BotTurnOutcome>;
    /// Conversations with the bot that need a turn nobody is taking: inbound messages newer than
    /// the session's last (or no session) older than `stale_before`, or a decision hook call
    /// whose deadline is before `now`. The recovery sweep after a node dies mid-turn.
    async fn bot_conversations_needing_attention(&self, now: Millis, stale_before: Millis, limit: i64) -> StoreResult<Vec<(TenantId, ConversationId)>>;
    async fn record_hook_call(&self, call: NewHookCall) -> StoreResult<()>;
    /// The newest calls first.
    async fn list_hook_calls(&self, tenant: TenantId, inbox: InboxId, limit: i64) -> StoreResult<Vec<HookCall>>;

    // ---- gateway delivery ------------------------------------------------------------------
    /// Keeps a platform reply token (LINE) for a conversation, replacing an older one only with
    /// one that expires later.
    #[allow(clippy::too_many_arguments)]
    async fn set_reply_token(&self, tenant: TenantId, conversation: ConversationId, inbox: InboxId, message: MessageId, token: &str, expires_at: Millis, now: Millis) -> StoreResult<()>;
    /// Takes (removes and returns) the conversation's reply token if it is still valid at `now`;
    /// of several concurrent callers at most one gets it.
    async fn take_reply_token(&self, tenant: TenantId, conversation: ConversationId, now: Millis) -> StoreResult<Option<String>>;
    /// Records that `via` (a fallback inbox) delivered an outbound message.
    async fn set_delivered_via(&self, tenant: TenantId, message: MessageId, via: InboxId, now: Millis) -> StoreResult<()>;
    /// Reschedules a claimed entry for `at` without counting the claim as an attempt (a delivery
    /// held back by a rate limit or by an earlier reply was never tried).
    async fn defer_outbox(&self, id: OutboxId, at: Millis, now: Millis) -> StoreResult<()>;
    /// The latest `next_attempt_at` of pending `kind` entries older than `before` for messages
    /// of `conversation` on `inbox`; `None` when no earlier reply waits.
    async fn earlier_pending_delivery(&self, tenant: TenantId, inbox: InboxId, conversation: ConversationId, kind: &str, before: OutboxId) -> StoreResult<Option<Millis>>;
    /// Queues a message-less job entry (e.g. an inbound media fetch) unless one of this kind with
    /// the same payload exists on the inbox; returns it and whether it is new.
    async fn enqueue_outbox_once(&self, tenant: TenantId, inbox: InboxId, kind: &str, payload: &serde_json::Value, now: Millis) -> StoreResult<(OutboxEntry, bool)>;

    // ---- console: canned responses, wrap-up templates, a contact's history ------------------
    /// The tenant's canned responses, by shortcut.
    async fn list_canned_responses(&self, tenant: TenantId) -> StoreResult<Vec<CannedResponse>>;
    /// `Conflict` when the tenant already has this shortcut.
    async fn create_canned_response(&self, tenant: TenantId, canned: NewCannedResponse, now: Millis) -> StoreResult<CannedResponse>;
    /// Replaces shortcut, title and body; `Conflict` when the new shortcut is taken.
    async fn update_canned_response(&self, tenant: TenantId, id: i64, canned: NewCannedResponse, now: Millis) -> StoreResult<CannedResponse>;
    async fn delete_canned_response(&self, tenant: TenantId, id: i64) -> StoreResult<()>;
    /// The team's wrap-up template (the resolve dialog's form), `None` if it has none;
    /// `NotFound` for another tenant's or an unknown team.
    async fn get_team_wrap_up_template(&self, tenant: TenantId, team: TeamId) -> StoreResult<Option<serde_json::Value>>;
    /// Sets (or with `None` clears) the template; the caller validates it.
    async fn set_team_wrap_up_template(&self, tenant: TenantId, team: TeamId, template: Option<serde_json::Value>, now: Millis) -> StoreResult<()>;
    /// `resolve`, and in the same transaction stores the agent's wrap-up form values (validated
    /// by the caller) as the conversation's `attributes.wrap_up`.
    async fn resolve_with_wrap_up(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        actor: Option<UserId>,
        reason: CloseReason,
        wrap_up: serde_json::Value,
        now: Millis,
    ) -> StoreResult<Conversation>;
    /// The contact's conversations, newest first, at most `limit`.
    async fn list_contact_conversations(&self, tenant: TenantId, contact: ContactId, limit: i64) -> StoreResult<Vec<Conversation>>;
    /// Sets one key of the conversation's `attributes` (e.g. the widget's pre-chat form as
    /// `prechat`), leaving the others.
    /// The `limit` messages just before `before` (ids below it), oldest first: a page further
    /// back in the history (the console loads the newest page first, then older ones on scroll).
    async fn list_messages_before(&self, tenant: TenantId, conversation: ConversationId, before: MessageId, limit: i64) -> StoreResult<Vec<Message>>;
    async fn set_conversation_attribute(&self, tenant: TenantId, conversation: ConversationId, key: &str, value: serde_json::Value, now: Millis) -> StoreResult<Conversation>;

    // ---- audit log -------------------------------------------------------------------------
    /// Appends an entry to the tenant's audit log.
    async fn record_audit(&self, entry: NewAuditEntry, now: Millis) -> StoreResult<AuditEntry>;
    /// The tenant's audit entries matching `filter`, newest first, at most `filter.limit`.
    async fn list_audit(&self, tenant: TenantId, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>>;
}

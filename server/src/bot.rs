//! The auto-responder service: runs an inbox's flow (`switchboard_core::autoresponder`) for
//! conversations in the `bot` state, and makes the decision hook's HTTP calls.
//!
//! One **turn** = read the flow, the conversation's bot session and the inbound messages the
//! bot has not taken yet; run them through the engine; commit everything the engine decided
//! (bot messages with their outbox entries, collected fields, routing, handoff or close, the new
//! session state) in one transaction with `Store::commit_bot_turn`; then notify. The commit is a
//! compare-and-swap on the session's version, so when two nodes (or two tasks) run a turn for
//! the same conversation at once, one wins and the other re-reads and finds nothing left to do.
//! A turn never answers a message twice and never skips one.
//!
//! Turns start when a customer message is committed (spawned, so the sender's acknowledgement
//! never waits for the bot) and when a decision hook call returns. A sweep on every node picks
//! up what a crashed node left: messages no turn took, and hook calls whose deadline passed.
//!
//! The decision hook: POST the conversation's context, signed like the API channel's webhooks
//! (`X-Switchboard-Signature: v1=HMAC-SHA256(secret, timestamp + "." + body)`), wait at most the
//! step's `timeout_ms`, and feed the outcome back as a turn. Every call is logged (table
//! `decision_hook_calls`, tracing, metrics) with its latency and outcome.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use switchboard_core::autoresponder::{
    self, Action, BotEnd, BotRouting, BotSession, BotTurn, BotTurnOutcome, CompiledFlow, DecisionHookRequest,
    FieldScope, FlowState, HookContact, HookFailure, HookInbox, Input, Instructions, NewHookCall, TeamRef, Waiting,
};
use switchboard_core::bus::BusEvent;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::time::Millis;
use switchboard_core::StoreError;

use crate::conversations::{publish, publish_conversation};
use crate::state::AppState;
use crate::time::now_ms;
use crate::views::message_json;

/// Inbox settings key: where the decision hook is POSTed.
pub const HOOK_URL: &str = "decision_hook_url";
/// Inbox secrets key: the decision hook's HMAC signing secret.
pub const HOOK_SECRET: &str = "decision_hook_secret";

/// How often a turn that lost the compare-and-swap is run again before giving up (the sweep
/// then finishes the work).
const MAX_TURN_ATTEMPTS: u32 = 8;
/// Extra time after a hook call's timeout before another node may declare it timed out.
const HOOK_DEADLINE_GRACE_MS: Millis = 1_000;
/// How often the recovery sweep runs, and how old an untaken message must be before the sweep
/// takes it (younger ones are probably in a turn right now).
const SWEEP_EVERY: Duration = Duration::from_secs(2);
const SWEEP_STALE_MS: Millis = 3_000;
/// The most inbound messages one turn takes.
const TURN_MESSAGES: i64 = 100;

/// Compiled flows by inbox, rebuilt when the stored flow's `updated_at` changes (compiling
/// builds every FAQ and field regex, so it is not done per message).
#[derive(Default)]
pub struct FlowCache {
    flows: Mutex<HashMap<InboxId, (Millis, std::sync::Arc<CompiledFlow>)>>,
}

impl FlowCache {
    fn get(&self, inbox: InboxId, updated_at: Millis) -> Option<std::sync::Arc<CompiledFlow>> {
        let flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        flows.get(&inbox).filter(|(at, _)| *at == updated_at).map(|(_, f)| f.clone())
    }

    fn put(&self, inbox: InboxId, updated_at: Millis, flow: std::sync::Arc<CompiledFlow>) {
        self.flows.lock().unwrap_or_else(|p| p.into_inner()).insert(inbox, (updated_at, flow));
    }
}

/// Starts a turn for a conversation whose customer just wrote, without making the caller wait.
pub fn customer_wrote(state: &AppState, conversation: &Conversation) {
    let (state, tenant, id) = (state.clone(), conversation.tenant_id, conversation.id);
    tokio::spawn(async move { run_pending(&state, tenant, id).await });
}

/// Runs turns until the bot has taken every inbound message of the conversation (or the
/// conversation has left the bot).
pub async fn run_pending(state: &AppState, tenant: TenantId, conversation: ConversationId) {
    for _ in 0..MAX_TURN_ATTEMPTS {
        match take_messages(state, tenant, conversation).await {
            Ok(()) => return,
            Err(StoreError::Conflict(_)) => continue,
            Err(StoreError::InvalidState(_) | StoreError::NotFound) => return,
            Err(e) => {
                tracing::warn!(error = %e, conversation_id = %conversation, "bot turn failed; the sweep will retry");
                return;
            }
        }
    }
    tracing::debug!(conversation_id = %conversation, "bot turn kept losing the race; the sweep will finish it");
}

/// What a turn needs to know about the conversation.
struct Context {
    conversation: Conversation,
    flow: Option<std::sync::Arc<CompiledFlow>>,
    session: BotSession,
    flow_state: FlowState,
}

async fn load(state: &AppState, tenant: TenantId, id: ConversationId) -> Result<Option<Context>, StoreError> {
    let conversation = state.store.get_conversation(tenant, id).await?;
    if conversation.state != ConversationState::Bot {
        return Ok(None);
    }
    let flow = match state.store.get_inbox_flow(tenant, conversation.inbox_id).await? {
        Some(stored) => match state.bot_flows.get(conversation.inbox_id, stored.updated_at) {
            Some(flow) => Some(flow),
            None => match autoresponder::Flow::from_value(stored.flow).and_then(autoresponder::Flow::compile) {
                Ok(flow) => {
                    let flow = std::sync::Arc::new(flow);
                    state.bot_flows.put(conversation.inbox_id, stored.updated_at, flow.clone());
                    Some(flow)
                }
                Err(errors) => {
                    // Refused at save time; a flow saved by an older version could still fail.
                    tracing::error!(inbox_id = %conversation.inbox_id, ?errors, "stored flow does not compile; handing off");
                    None
                }
            },
        },
        None => None,
    };
    let session = match state.store.get_bot_session(tenant, id).await? {
        Some(session) => session,
        None => BotSession {
            conversation_id: id,
            state: serde_json::json!({}),
            version: 0,
            last_message_id: MessageId(0),
            hook_deadline: None,
        },
    };
    let mut flow_state: FlowState = serde_json::from_value(session.state.clone()).unwrap_or_default();
    if session.version == 0 {
        // What the customer told an earlier conversation (`scope: "contact"`) is not asked again.
        let contact = state.store.get_contact(tenant, conversation.contact_id).await?;
        if let Some(known) = contact.attributes.as_object() {
            for (name, value) in known {
                flow_state.fields.entry(name.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    Ok(Some(Context { conversation, flow, session, flow_state }))
}

/// One turn over the inbound messages the bot has not taken.
async fn take_messages(state: &AppState, tenant: TenantId, id: ConversationId) -> Result<(), StoreError> {
    let Some(ctx) = load(state, tenant, id).await? else { return Ok(()) };
    let pending: Vec<Message> = state
        .store
        .list_messages(tenant, id, Some(ctx.session.last_message_id), TURN_MESSAGES)
        .await?
        .into_iter()
        .filter(|m| m.direction == MessageDirection::Inbound)
        .collect();
    let Some(last) = pending.last().map(|m| m.id) else { return Ok(()) };
    let now = now_ms();
    let Some(flow) = ctx.flow.clone() else {
        // The flow was removed (or is broken): a human takes over.
        let turn = Turn::new(&ctx, last, now).end(BotEnd::Handoff { reason: "flow_removed".into() });
        return commit(state, &ctx, turn).await;
    };
    let mut flow_state = ctx.flow_state.clone();
    let mut actions = Vec::new();
    for message in &pending {
        let input = Input::CustomerMessage { text: message.text.clone().unwrap_or_default() };
        let (next, mut more) = autoresponder::step(&flow, flow_state, input, now);
        flow_state = next;
        actions.append(&mut more);
    }
    let turn = Turn::new(&ctx, last, now).with(state, tenant, flow_state, actions).await?;
    commit(state, &ctx, turn).await
}

/// Feeds a decision hook's outcome to the flow. Results for a call the session no longer waits
/// for (a late answer after a timeout) are dropped.
///
/// Boxed (and declared `Send`) because turns and hook results start each other: the explicit
/// type breaks the cycle the compiler cannot see through.
pub fn hook_result(
    state: &AppState,
    tenant: TenantId,
    id: ConversationId,
    call_id: u32,
    result: Result<Instructions, HookFailure>,
) -> futures::future::BoxFuture<'_, ()> {
    Box::pin(async move {
        for _ in 0..MAX_TURN_ATTEMPTS {
            let attempt = async {
                let Some(ctx) = load(state, tenant, id).await? else { return Ok(()) };
                if ctx.flow_state.waiting != Some(Waiting::DecisionHook { call_id }) {
                    tracing::debug!(conversation_id = %id, call_id, "decision hook result no longer awaited");
                    return Ok(());
                }
                let now = now_ms();
                let last = ctx.session.last_message_id;
                let Some(flow) = ctx.flow.clone() else {
                    let turn = Turn::new(&ctx, last, now).end(BotEnd::Handoff { reason: "flow_removed".into() });
                    return commit(state, &ctx, turn).await;
                };
                let input = Input::DecisionHookResult { call_id, result: result.clone() };
                let (next, actions) = autoresponder::step(&flow, ctx.flow_state.clone(), input, now);
                let turn = Turn::new(&ctx, last, now).with(state, tenant, next, actions).await?;
                commit(state, &ctx, turn).await
            };
            match attempt.await {
                Ok(()) => {
                    // Messages that arrived meanwhile were stored but not answered: take them now.
                    run_pending(state, tenant, id).await;
                    return;
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(StoreError::InvalidState(_) | StoreError::NotFound) => return,
                Err(e) => {
                    tracing::warn!(error = %e, conversation_id = %id, "applying the decision hook result failed");
                    return;
                }
            }
        }
    })
}

/// A turn being assembled from the engine's actions.
struct Turn {
    turn: BotTurn,
    hook_calls: Vec<(u32, String, u32)>,
}

impl Turn {
    fn new(ctx: &Context, last_message_id: MessageId, now: Millis) -> Turn {
        Turn {
            turn: BotTurn {
                tenant_id: ctx.conversation.tenant_id,
                conversation_id: ctx.conversation.id,
                expected_version: ctx.session.version,
                state: ctx.session.state.clone(),
                last_message_id,
                hook_deadline: None,
                replies: Vec::new(),
                outbox_kind: None,
                conversation_attributes: Default::default(),
                contact_attributes: Default::default(),
                routing: BotRouting::default(),
                end: None,
                now,
            },
            hook_calls: Vec::new(),
        }
    }

    fn end(mut self, end: BotEnd) -> Turn {
        let mut finished: FlowState = serde_json::from_value(self.turn.state.clone()).unwrap_or_default();
        finished.status = autoresponder::FlowStatus::HandedOff;
        self.turn.state = serde_json::to_value(finished).unwrap_or_default();
        self.turn.end = Some(end);
        self
    }

    /// Translates the engine's actions into the turn's changes.
    async fn with(
        mut self,
        state: &AppState,
        tenant: TenantId,
        flow_state: FlowState,
        actions: Vec<Action>,
    ) -> Result<Turn, StoreError> {
        self.turn.state = serde_json::to_value(&flow_state).unwrap_or_default();
        let mut teams = None;
        for action in actions {
            match action {
                Action::Reply { text } => self.turn.replies.push(text),
                Action::SetField { scope, name, value } => {
                    let target = match scope {
                        FieldScope::Contact => &mut self.turn.contact_attributes,
                        FieldScope::Conversation => &mut self.turn.conversation_attributes,
                    };
                    target.insert(name, value);
                }
                Action::Route { team, queue, agent, skills, priority, tags } => {
                    let routing = &mut self.turn.routing;
                    // A queue is a team's queue: `queue` names the team by id.
                    let team = team.or(queue.map(|q| TeamRef::Id(q.0)));
                    if let Some(team) = team {
                        if teams.is_none() {
                            teams = Some(state.store.list_teams(tenant).await?);
                        }
                        match find_team(teams.as_deref().unwrap_or_default(), &team) {
                            Some(id) => routing.team_id = Some(id),
                            None => tracing::warn!(?team, conversation_id = %self.turn.conversation_id,
                                "the flow routes to a team that does not exist; keeping the inbox's team"),
                        }
                    }
                    if agent.is_some() {
                        routing.preferred_agent_id = agent;
                    }
                    if let Some(p) = priority {
                        routing.priority = Some(i64::from(p));
                    }
                    routing.tags.extend(tags);
                    routing.skills.extend(skills.into_iter().map(|s| serde_json::to_value(s).unwrap_or_default()));
                }
                Action::Handoff { reason } => {
                    self.turn.end = Some(BotEnd::Handoff { reason: enum_word(&reason) });
                }
                Action::Close { reason } => {
                    self.turn.end = Some(BotEnd::Close { reason: reason.close_reason(), detail: enum_word(&reason) });
                }
                Action::CallDecisionHook { call_id, step, timeout_ms } => {
                    self.turn.hook_deadline = Some(self.turn.now + Millis::from(timeout_ms) + HOOK_DEADLINE_GRACE_MS);
                    self.hook_calls.push((call_id, step.to_string(), timeout_ms));
                }
            }
        }
        if self.turn.end.is_some() {
            self.turn.hook_deadline = None;
            self.hook_calls.clear();
        }
        Ok(self)
    }
}

/// A team by id or (exact) name, among the tenant's teams.
fn find_team(teams: &[Team], wanted: &TeamRef) -> Option<TeamId> {
    teams
        .iter()
        .find(|t| match wanted {
            TeamRef::Id(id) => t.id.0 == *id,
            TeamRef::Name(name) => t.name == *name,
        })
        .map(|t| t.id)
}

/// A unit enum's snake_case spelling, as serde writes it.
fn enum_word<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// Commits a turn and tells everyone: the bot's messages, the conversation's new state, the
/// router (on handoff) and the decision hook (when the flow asked for it).
async fn commit(state: &AppState, ctx: &Context, mut turn: Turn) -> Result<(), StoreError> {
    if !turn.turn.replies.is_empty() {
        let inbox = state.store.get_inbox(ctx.conversation.tenant_id, ctx.conversation.inbox_id).await?;
        turn.turn.outbox_kind = crate::conversations::outbox_for(&inbox).map(|o| o.kind);
    }
    let ended = turn.turn.end.clone();
    let outcome: BotTurnOutcome = state.store.commit_bot_turn(turn.turn).await?;
    metrics::counter!("switchboard_bot_turns_total").increment(1);
    let tenant = outcome.conversation.tenant_id;
    for message in &outcome.messages {
        publish(
            state,
            BusEvent::MessageCreated {
                tenant_id: tenant,
                conversation_id: outcome.conversation.id,
                assignee_id: None,
                payload: message_json(message),
            },
        )
        .await;
    }
    if !outcome.outbox.is_empty() {
        state.outbox_wake.notify_one();
    }
    if let Some(end) = ended {
        tracing::info!(conversation_id = %outcome.conversation.id, ?end, "the bot is done with the conversation");
        publish_conversation(state, &outcome.conversation, None).await;
        // A handoff is an arrival in the queue: `max_queue_len` applies if nobody takes it.
        if matches!(end, BotEnd::Handoff { .. })
            && state.dispatcher.conversation_waiting(state, &outcome.conversation).await.is_none()
        {
            crate::dispatch::refuse_if_queue_full(state, &outcome.conversation).await;
        }
        crate::queue::announce(state, tenant).await;
    }
    for (call_id, step, timeout_ms) in turn.hook_calls {
        let state = state.clone();
        let conversation = outcome.conversation.clone();
        tokio::spawn(async move {
            let result = call_hook(&state, &conversation, call_id, &step, timeout_ms).await;
            hook_result(&state, conversation.tenant_id, conversation.id, call_id, result).await;
        });
    }
    Ok(())
}

/// Makes one decision hook call and logs it. Never longer than `timeout_ms`.
async fn call_hook(
    state: &AppState,
    conversation: &Conversation,
    call_id: u32,
    step: &str,
    timeout_ms: u32,
) -> Result<Instructions, HookFailure> {
    let started = Instant::now();
    let result = match hook_request(state, conversation, call_id, step).await {
        Ok(Some((url, secret, body))) => {
            let timeout = Duration::from_millis(u64::from(timeout_ms));
            match tokio::time::timeout(timeout, post_hook(state, &url, secret.as_deref(), body, timeout)).await {
                Ok(result) => result,
                Err(_) => Err(HookFailure::Timeout),
            }
        }
        Ok(None) => Err(HookFailure::NotConfigured),
        Err(e) => Err(HookFailure::Transport { message: format!("could not build the request: {e}") }),
    };
    let result = match result {
        Ok(instructions) => check_teams(state, conversation.tenant_id, instructions).await,
        failed => failed,
    };
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    log_hook_call(state, conversation, call_id, step, &result, latency_ms).await;
    result
}

/// The hook's URL, secret and body, or `None` when the inbox has no hook configured.
async fn hook_request(
    state: &AppState,
    conversation: &Conversation,
    call_id: u32,
    step: &str,
) -> Result<Option<(String, Option<String>, Vec<u8>)>, StoreError> {
    let tenant = conversation.tenant_id;
    let inbox = state.store.get_inbox(tenant, conversation.inbox_id).await?;
    let Some(url) = inbox.settings.get(HOOK_URL).and_then(|v| v.as_str()).map(str::to_owned) else {
        return Ok(None);
    };
    let secret = inbox.secrets.get(HOOK_SECRET).and_then(|v| v.as_str()).map(str::to_owned);
    let contact = state.store.get_contact(tenant, conversation.contact_id).await?;
    let external_id = state
        .store
        .list_contact_identities(tenant, contact.id)
        .await?
        .into_iter()
        .find(|i| i.inbox_id == inbox.id)
        .map(|i| i.external_id)
        .unwrap_or_default();
    let messages = state.store.list_messages(tenant, conversation.id, None, 1000).await?;
    let inbound = || messages.iter().filter(|m| m.direction == MessageDirection::Inbound);
    let session = state.store.get_bot_session(tenant, conversation.id).await?;
    let fields =
        session.and_then(|s| serde_json::from_value::<FlowState>(s.state).ok()).map(|s| s.fields).unwrap_or_default();
    let request = DecisionHookRequest {
        event: "decision.requested".into(),
        call_id,
        step: autoresponder::StepId::new(step),
        conversation_id: conversation.id,
        inbox: HookInbox { id: inbox.id, name: inbox.name.clone(), channel: inbox.kind },
        contact: HookContact { id: contact.id, external_id, name: contact.name.clone() },
        first_message: inbound().next().and_then(|m| m.text.clone()),
        last_message: inbound().next_back().and_then(|m| m.text.clone()),
        fields,
        biz_data: conversation.biz_data.clone(),
        sent_at: now_ms(),
    };
    let body = serde_json::to_vec(&request).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(Some((url, secret, body)))
}

async fn post_hook(
    state: &AppState,
    url: &str,
    secret: Option<&str>,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Instructions, HookFailure> {
    let timestamp = now_ms() / 1000;
    let mut request = state
        .http
        .post(url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Switchboard-Timestamp", timestamp.to_string());
    if let Some(secret) = secret {
        request =
            request.header("X-Switchboard-Signature", switchboard_gateway::api_channel::sign(secret, timestamp, &body));
    }
    let response = request.body(body).send().await.map_err(|e| {
        if e.is_timeout() {
            HookFailure::Timeout
        } else {
            HookFailure::Transport { message: e.to_string() }
        }
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(HookFailure::Status { status: status.as_u16() });
    }
    let text = response.text().await.map_err(|e| {
        if e.is_timeout() {
            HookFailure::Timeout
        } else {
            HookFailure::Transport { message: e.to_string() }
        }
    })?;
    Instructions::parse(&text)
}

/// An answer that routes to a team the tenant does not have is invalid: the flow takes its
/// fallback rather than queueing the customer somewhere nobody works.
async fn check_teams(
    state: &AppState,
    tenant: TenantId,
    instructions: Instructions,
) -> Result<Instructions, HookFailure> {
    let wanted = instructions.route.as_ref().and_then(|r| r.team.clone().or(r.queue.map(|q| TeamRef::Id(q.0))));
    if let Some(team) = wanted {
        let teams = state
            .store
            .list_teams(tenant)
            .await
            .map_err(|e| HookFailure::Transport { message: format!("could not check the team: {e}") })?;
        if find_team(&teams, &team).is_none() {
            let name = match &team {
                TeamRef::Id(id) => id.to_string(),
                TeamRef::Name(name) => format!("{name:?}"),
            };
            return Err(HookFailure::InvalidResponse {
                message: format!("route names team {name}, which does not exist"),
            });
        }
    }
    Ok(instructions)
}

async fn log_hook_call(
    state: &AppState,
    conversation: &Conversation,
    call_id: u32,
    step: &str,
    result: &Result<Instructions, HookFailure>,
    latency_ms: i64,
) {
    let (outcome, http_status, error) = match result {
        Ok(_) => ("ok", None, None),
        Err(failure) => {
            let status = match failure {
                HookFailure::Status { status } => Some(i64::from(*status)),
                _ => None,
            };
            (failure_kind(failure), status, Some(failure.to_string()))
        }
    };
    metrics::counter!("switchboard_decision_hook_calls_total", "outcome" => outcome).increment(1);
    metrics::histogram!("switchboard_decision_hook_latency_seconds").record(latency_ms as f64 / 1000.0);
    match &error {
        None => tracing::info!(conversation_id = %conversation.id, call_id, latency_ms, "decision hook answered"),
        Some(error) => tracing::warn!(conversation_id = %conversation.id, call_id, latency_ms, outcome, %error,
            "decision hook failed; the flow takes its fallback"),
    }
    let record = NewHookCall {
        tenant_id: conversation.tenant_id,
        inbox_id: conversation.inbox_id,
        conversation_id: conversation.id,
        call_id: i64::from(call_id),
        step: step.to_owned(),
        outcome: outcome.to_owned(),
        http_status,
        latency_ms,
        error,
        now: now_ms(),
    };
    if let Err(e) = state.store.record_hook_call(record).await {
        tracing::warn!(error = %e, "could not record the decision hook call");
    }
}

fn failure_kind(failure: &HookFailure) -> &'static str {
    match failure {
        HookFailure::Timeout => "timeout",
        HookFailure::Status { .. } => "http_status",
        HookFailure::Transport { .. } => "transport",
        HookFailure::InvalidResponse { .. } => "invalid_response",
        HookFailure::NotConfigured => "not_configured",
    }
}

/// The recovery sweep: finishes turns a crashed (or overloaded) node left undone, and times out
/// decision hook calls whose node never reported back.
pub async fn run_sweeper(state: AppState) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => sweep(&state).await,
            _ = state.shutdown.cancelled() => return,
        }
    }
}

pub async fn sweep(state: &AppState) {
    let now = now_ms();
    let due = match state.store.bot_conversations_needing_attention(now, now - SWEEP_STALE_MS, 100).await {
        Ok(due) => due,
        Err(e) => {
            tracing::debug!(error = %e, "bot sweep could not read; next tick");
            return;
        }
    };
    for (tenant, id) in due {
        let expired = match state.store.get_bot_session(tenant, id).await {
            Ok(Some(session)) => session
                .hook_deadline
                .filter(|deadline| *deadline < now)
                .and_then(|_| serde_json::from_value::<FlowState>(session.state).ok())
                .and_then(|s| match s.waiting {
                    Some(Waiting::DecisionHook { call_id }) => Some(call_id),
                    _ => None,
                }),
            _ => None,
        };
        match expired {
            Some(call_id) => {
                tracing::warn!(conversation_id = %id, call_id, "decision hook call passed its deadline unanswered");
                hook_result(state, tenant, id, call_id, Err(HookFailure::Timeout)).await;
            }
            None => run_pending(state, tenant, id).await,
        }
    }
}

//! What the queue looks like right now, for the people who wait in it and the people who watch
//! it: each waiting conversation's position and estimated wait (pushed to the customer's widget
//! as `queue {position, eta_secs}`), and per-team statistics for supervisors (waiting, longest
//! wait, agents by status and load, service level, average speed of answer, abandonment).
//!
//! The estimate is the head-of-line estimator from `switchboard_sim::eta`: a customer at
//! position k waits for k+1 slot releases; with c busy slots each releasing after a mean handle
//! time h, that is (k+1)·h/c. h comes from conversations resolved recently (default 180 s before
//! there is any history). `docs/routing-eta.md` derives it and checks it against Erlang C.
//!
//! Computed from the database (bounded: the newest 1,000 conversations of the tenant), so every
//! node computes the same answer and nothing here needs to survive a crash. Changes are
//! coalesced: `announce` only marks the tenant, and one snapshot per tenant is published at most
//! every `ANNOUNCE_EVERY`.

use std::collections::BTreeMap;

use serde::Serialize;
use switchboard_core::bus::BusEvent;
use switchboard_core::domain::{AgentStatus, ConversationFilter, ConversationState};
use switchboard_core::ids::{ConversationId, TeamId, TenantId, UserId};
use switchboard_core::time::Millis;
use utoipa::ToSchema;

use crate::conversations::publish;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::time::now_ms;

/// The service-level threshold: answered within this many seconds counts as "in service level".
pub const SERVICE_LEVEL_SECS: i64 = 20;
/// The window statistics are computed over.
pub const STATS_WINDOW_MS: Millis = 30 * 60 * 1000;
/// Mean handle time assumed before any conversation has been resolved.
const DEFAULT_HANDLE_SECS: f64 = 180.0;
/// How many recent conversations the snapshot reads.
const SCAN_LIMIT: i64 = 1000;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WaitingEntry {
    pub conversation_id: ConversationId,
    /// 1-based place in its team's queue (highest priority first, then oldest first).
    pub position: usize,
    /// Estimated seconds until an agent takes it; `null` when no agent is staffed.
    pub eta_secs: Option<f64>,
    pub waited_secs: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentLoad {
    pub user_id: UserId,
    pub name: String,
    pub status: AgentStatus,
    pub load: i64,
    pub capacity: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TeamQueue {
    /// `null`: conversations routed to no particular team.
    pub team_id: Option<TeamId>,
    pub waiting: Vec<WaitingEntry>,
    pub longest_wait_secs: f64,
}

/// The window statistics of one team's queue (`null` team: the no-team queue).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueStats {
    pub team_id: Option<TeamId>,
    pub service_level: Option<f64>,
    pub average_speed_of_answer_secs: Option<f64>,
    pub abandonment_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueSnapshot {
    pub at: Millis,
    pub queues: Vec<TeamQueue>,
    pub agents: Vec<AgentLoad>,
    /// Agents per status.
    pub agents_by_status: BTreeMap<String, usize>,
    /// Share of conversations queued in the window that an agent took within
    /// `SERVICE_LEVEL_SECS` (abandoned ones count as misses); `null` with no arrivals.
    pub service_level: Option<f64>,
    /// Mean seconds from queued to assigned, over conversations assigned in the window.
    pub average_speed_of_answer_secs: Option<f64>,
    /// Share of conversations that ended in the window without an agent.
    pub abandonment_rate: Option<f64>,
    pub mean_handle_secs: f64,
    /// The same three statistics per queue, for every queue with conversations in the window.
    pub queue_stats: Vec<QueueStats>,
}

/// Service level, average speed of answer and abandonment of `conversations` over the window
/// starting at `since` (definitions on [`QueueSnapshot`]).
fn window_stats(conversations: &[&switchboard_core::domain::Conversation], since: Millis) -> (Option<f64>, Option<f64>, Option<f64>) {
    let arrived: Vec<_> = conversations.iter().filter(|c| c.queued_at.unwrap_or(c.created_at) >= since).collect();
    let answered_in_sl = arrived
        .iter()
        .filter(|c| c.assigned_at.is_some_and(|a| a - c.queued_at.unwrap_or(c.created_at) <= SERVICE_LEVEL_SECS * 1000))
        .count();
    let settled = arrived.iter().filter(|c| c.assigned_at.is_some() || !c.state.is_open()).count();
    let service_level = (settled > 0).then(|| answered_in_sl as f64 / settled as f64);
    let speeds: Vec<f64> = conversations
        .iter()
        .filter(|c| c.assigned_at.is_some_and(|a| a >= since))
        .filter_map(|c| Some(secs(c.assigned_at? - c.queued_at.unwrap_or(c.created_at))))
        .collect();
    let ended: Vec<_> = conversations.iter().filter(|c| c.closed_at.is_some_and(|t| t >= since)).collect();
    let abandoned = ended.iter().filter(|c| c.assigned_at.is_none()).count();
    let abandonment_rate = (!ended.is_empty()).then(|| abandoned as f64 / ended.len() as f64);
    (service_level, mean(&speeds), abandonment_rate)
}

fn secs(ms: Millis) -> f64 {
    ms as f64 / 1000.0
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

pub async fn snapshot(state: &AppState, tenant: TenantId) -> ApiResult<QueueSnapshot> {
    let now = now_ms();
    let recent = state.store.list_conversations(tenant, ConversationFilter { limit: SCAN_LIMIT, ..Default::default() }).await?;
    let users = state.store.list_users(tenant).await?;

    // Handle times of recently resolved conversations.
    let handles: Vec<f64> = recent
        .iter()
        .filter_map(|c| Some(secs(c.closed_at? - c.assigned_at?)))
        .filter(|h| *h > 0.0)
        .take(200)
        .collect();
    let mean_handle_secs = mean(&handles).unwrap_or(DEFAULT_HANDLE_SECS);
    // Slots that will free up: the conversations agents hold now.
    let busy_slots: i64 = users.iter().filter(|u| u.status == AgentStatus::Available).map(|u| u.active_load).sum();
    let staffed_room: i64 =
        users.iter().filter(|u| u.status == AgentStatus::Available).map(|u| (u.capacity - u.active_load).max(0)).sum();

    let mut by_team: BTreeMap<Option<TeamId>, Vec<_>> = BTreeMap::new();
    for c in recent.iter().filter(|c| c.state == ConversationState::Queued) {
        by_team.entry(c.team_id).or_default().push(c);
    }
    let mut queues = Vec::new();
    for (team_id, mut waiting) in by_team {
        waiting.sort_by_key(|c| (std::cmp::Reverse(c.priority), c.queued_at.unwrap_or(c.created_at), c.id));
        let entries: Vec<WaitingEntry> = waiting
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let eta = if staffed_room > 0 {
                    // Room is free right now: the dispatcher places it on the next event.
                    Some(0.0)
                } else if busy_slots > 0 {
                    Some(switchboard_sim::eta::estimated_wait_secs(i, usize::try_from(busy_slots).unwrap_or(usize::MAX), mean_handle_secs))
                } else {
                    None
                };
                WaitingEntry { conversation_id: c.id, position: i + 1, eta_secs: eta, waited_secs: secs(now - c.queued_at.unwrap_or(c.created_at)) }
            })
            .collect();
        let longest_wait_secs = entries.iter().map(|e| e.waited_secs).fold(0.0, f64::max);
        queues.push(TeamQueue { team_id, waiting: entries, longest_wait_secs });
    }

    // Window statistics.
    let since = now - STATS_WINDOW_MS;
    let all: Vec<_> = recent.iter().collect();
    let (service_level, average_speed_of_answer_secs, abandonment_rate) = window_stats(&all, since);
    // Per queue: conversations touched in the window, grouped by the team they are in now.
    let mut in_window: BTreeMap<Option<TeamId>, Vec<_>> = BTreeMap::new();
    for c in recent.iter().filter(|c| c.updated_at >= since) {
        in_window.entry(c.team_id).or_default().push(c);
    }
    let queue_stats = in_window
        .into_iter()
        .map(|(team_id, list)| {
            let (service_level, average_speed_of_answer_secs, abandonment_rate) = window_stats(&list, since);
            QueueStats { team_id, service_level, average_speed_of_answer_secs, abandonment_rate }
        })
        .collect();

    let mut agents_by_status = BTreeMap::new();
    for u in &users {
        *agents_by_status.entry(u.status.as_str().to_string()).or_insert(0) += 1;
    }
    let agents = users
        .into_iter()
        .map(|u| AgentLoad { user_id: u.id, name: u.name, status: u.status, load: u.active_load, capacity: u.capacity })
        .collect();
    Ok(QueueSnapshot {
        at: now,
        queues,
        agents,
        agents_by_status,
        service_level,
        average_speed_of_answer_secs,
        abandonment_rate,
        queue_stats,
        mean_handle_secs,
    })
}

/// Recomputes the tenant's queue and tells every node: waiting customers get their position,
/// supervisors the statistics. Failures are logged; the next change recomputes.
pub async fn announce(state: &AppState, tenant: TenantId) {
    state.queue_announcer.mark(tenant);
}

/// How long changes are gathered before one snapshot is computed and published. A burst of
/// arrivals, assignments and resolves costs one snapshot per tenant per interval instead of one
/// each — the snapshot reads up to `SCAN_LIMIT` conversations, so doing it per event is what
/// limited throughput — and a customer's position is at most this much behind.
pub const ANNOUNCE_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// The tenants whose queue changed since the last announcement (this node's changes).
#[derive(Default)]
pub struct Announcer {
    dirty: std::sync::Mutex<std::collections::BTreeSet<TenantId>>,
    wake: tokio::sync::Notify,
    /// Position messages sent: conversation → (position, when).
    positions_sent: std::sync::Mutex<BTreeMap<ConversationId, (usize, Millis)>>,
}

impl Announcer {
    pub fn mark(&self, tenant: TenantId) {
        self.dirty.lock().unwrap_or_else(|p| p.into_inner()).insert(tenant);
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<TenantId> {
        std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|p| p.into_inner())).into_iter().collect()
    }
}

/// Inbox setting: send customers on messaging platforms their queue position as a text message.
pub const POSITION_MESSAGES: &str = "queue_position_messages";
/// The least time between two position messages to one customer.
pub const POSITION_MESSAGE_EVERY_MS: Millis = 60_000;

/// Customers of platform inboxes with `settings.queue_position_messages: true` get their place
/// as a text when it changed, at most once per `POSITION_MESSAGE_EVERY_MS` each (widget
/// customers see it live instead). The message goes through the outbox like any reply; its
/// client id names the conversation and the position, so two nodes announcing the same change
/// store it once.
async fn notify_positions(state: &AppState, tenant: TenantId, snap: &QueueSnapshot) {
    let Ok(inboxes) = state.store.list_inboxes(tenant).await else { return };
    let enabled: BTreeMap<_, _> = inboxes
        .into_iter()
        .filter(|i| !matches!(i.kind, switchboard_core::domain::ChannelKind::Web | switchboard_core::domain::ChannelKind::Api))
        .filter(|i| i.settings.get(POSITION_MESSAGES).and_then(serde_json::Value::as_bool) == Some(true))
        .map(|i| (i.id, i))
        .collect();
    if enabled.is_empty() {
        return;
    }
    let now = now_ms();
    for entry in snap.queues.iter().flat_map(|q| q.waiting.iter()) {
        let due = {
            let sent = state.queue_announcer.positions_sent.lock().unwrap_or_else(|p| p.into_inner());
            match sent.get(&entry.conversation_id) {
                Some((position, at)) => *position != entry.position && now - at >= POSITION_MESSAGE_EVERY_MS,
                None => true,
            }
        };
        if !due {
            continue;
        }
        let Ok(conversation) = state.store.get_conversation(tenant, entry.conversation_id).await else { continue };
        let Some(inbox) = enabled.get(&conversation.inbox_id) else { continue };
        let text = match entry.eta_secs {
            Some(eta) if eta >= 60.0 => {
                format!("You are number {} in the queue. Estimated wait: about {} min.", entry.position, (eta / 60.0).round())
            }
            Some(_) => format!("You are number {} in the queue. An agent will be with you shortly.", entry.position),
            None => format!("You are number {} in the queue.", entry.position),
        };
        let client_id = format!("queue-position-{}-{}", conversation.id, entry.position);
        match crate::conversations::send_system_message(state, &conversation, inbox, text, client_id).await {
            Ok(_) => {
                state.queue_announcer.positions_sent.lock().unwrap_or_else(|p| p.into_inner()).insert(conversation.id, (entry.position, now));
            }
            Err(e) => tracing::debug!(error = %e, "queue position message not stored"),
        }
    }
    // Forget conversations no longer waiting.
    let waiting: std::collections::BTreeSet<_> = snap.queues.iter().flat_map(|q| q.waiting.iter().map(|w| w.conversation_id)).collect();
    state.queue_announcer.positions_sent.lock().unwrap_or_else(|p| p.into_inner()).retain(|id, _| waiting.contains(id));
}

/// Publishes the queue of every tenant marked since the last round, at most once per
/// [`ANNOUNCE_EVERY`]. A change marked while a round runs is announced by the next round.
pub async fn run_announcer(state: AppState) {
    loop {
        tokio::select! {
            _ = state.queue_announcer.wake.notified() => {}
            _ = state.shutdown.cancelled() => return,
        }
        tokio::time::sleep(ANNOUNCE_EVERY).await;
        for tenant in state.queue_announcer.take() {
            match snapshot(&state, tenant).await {
                Ok(snap) => {
                    notify_positions(&state, tenant, &snap).await;
                    let payload = serde_json::to_value(&snap).unwrap_or_default();
                    publish(&state, BusEvent::QueueChanged { tenant_id: tenant, payload }).await;
                }
                Err(e) => tracing::debug!(error = %e, "queue snapshot failed; the next change retries"),
            }
        }
    }
}

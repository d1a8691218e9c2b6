//! Agents whose node died under them.
//!
//! An agent's sockets keep presence entries on the bus that their node refreshes every third of
//! `agents.presence_ttl_secs`; when the last socket disconnects, that node's grace timer marks
//! the agent offline and requeues their conversations (`realtime::agent`). A node killed with
//! `kill -9` (or cut off) runs no disconnect handler, so for its agents nothing would ever start
//! that timer: they would stay `available`, keep their conversations and be offered new ones.
//!
//! This sweep closes the gap. On one node at a time (a bus lease), every sweep interval, it looks
//! at the users the database says are not offline; one with no live presence entry on any node
//! for longer than the presence TTL plus the disconnect grace — continuously, as seen by this
//! node — is handled as the grace timer would: marked offline, their conversations requeued in
//! their place. A connected agent is never judged absent: its node re-registers its entry within
//! a third of the TTL even after Redis lost everything (FLUSHALL, a restart without persistence),
//! and while the bus cannot be asked, nobody is judged.

use std::collections::HashMap;
use std::time::Duration;

use switchboard_core::domain::{AgentStatus, User};
use switchboard_core::ids::UserId;

use crate::conversations;
use crate::state::AppState;
use crate::time::now_ms;

const LEASE_KEY: &str = "absence-sweep";
/// Users looked at per sweep; more are looked at in later sweeps' order (by id), which is fine
/// for a safety net.
const BATCH: i64 = 10_000;

pub async fn run(state: AppState) {
    let period = Duration::from_millis(state.settings.agents.sweep_interval_ms.max(100));
    let lease_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX).saturating_mul(3);
    let mut absent_since: HashMap<UserId, i64> = HashMap::new();
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.shutdown.cancelled() => return,
        }
        let holder = match state.bus.renew_lease(LEASE_KEY, &state.node_id, lease_ms).await {
            Ok(true) => true,
            Ok(false) => state.bus.try_acquire_lease(LEASE_KEY, &state.node_id, lease_ms).await.unwrap_or(false),
            Err(_) => false,
        };
        if !holder {
            // Another node sweeps; if it is the one that dies, this one starts counting afresh.
            absent_since.clear();
            continue;
        }
        sweep(&state, &mut absent_since).await;
    }
}

/// Absent for this long (ms) before being handled: an entry outlives its last refresh by up to
/// the TTL, then the agent gets the same grace as after a clean disconnect.
fn threshold_ms(state: &AppState) -> i64 {
    let agents = &state.settings.agents;
    i64::try_from((agents.presence_ttl_secs + agents.disconnect_grace_secs).saturating_mul(1000)).unwrap_or(i64::MAX)
}

async fn sweep(state: &AppState, absent_since: &mut HashMap<UserId, i64>) {
    let Ok(users) = state.store.users_not_offline(BATCH).await else { return };
    let now = now_ms();
    let mut still_absent = HashMap::new();
    for user in users {
        match state.bus.presence_count(user.id).await {
            Ok(0) => {
                let since = absent_since.get(&user.id).copied().unwrap_or(now);
                if now - since >= threshold_ms(state) {
                    settle_absent(state, &user).await;
                } else {
                    still_absent.insert(user.id, since);
                }
            }
            Ok(_) => {}
            // The bus cannot say who is here: judge nobody, forget nothing.
            Err(e) => return tracing::debug!(error = %e, "absence sweep: presence unknown"),
        }
    }
    *absent_since = still_absent;
}

/// What the disconnect grace timer does for an agent nobody has seen: offline, conversations
/// back to the queue.
async fn settle_absent(state: &AppState, user: &User) {
    tracing::info!(agent = %user.id, "no connection on any node: marking offline (their node is gone)");
    if user.status != AgentStatus::Offline {
        if let Err(e) = conversations::set_agent_status(state, user.tenant_id, user.id, AgentStatus::Offline).await {
            return tracing::warn!(error = %e, "could not mark an absent agent offline");
        }
        // Came back meanwhile: give them back their status (their conversations stay).
        if state.bus.presence_count(user.id).await.is_ok_and(|n| n > 0) {
            let _ = conversations::set_agent_status(state, user.tenant_id, user.id, user.status).await;
            return;
        }
    }
    match conversations::requeue_agent_conversations(state, user.tenant_id, user.id).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(agent = %user.id, requeued = n, "absent agent's conversations requeued"),
        Err(e) => tracing::warn!(error = %e, "could not requeue an absent agent's conversations"),
    }
}

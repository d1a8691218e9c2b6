//! Scenario `routing`: routing decisions per second in-process, on the real routing model
//! (`switchboard_core::routing::Switch`, which applies `decide.rs`'s ranking, queue order,
//! eligibility and room rules). No server, no IO: a seeded stream of events is fed to one
//! `Switch` and every call is timed.
//!
//! Stage: `agents` agents (default 2000), each serving 1–2 of `queues` queues (the queues use
//! least-loaded, longest-idle, round-robin and least-loaded again), with 1–4 of `skills` skills
//! at proficiency 1–5 and a capacity of 1–6 (a third of them also capped at 2 WhatsApp chats).
//! Queues fall back to any proficiency after 20 s of waiting and ignore skills after 60 s;
//! priority ages by the default (+1 a minute).
//!
//! Stream: a random walk around full occupancy. Each step is an arrival (random queue, channel
//! web or WhatsApp, priority 1–5, 0–2 required skills at proficiency 1–5) or the resolve of a
//! random assigned conversation; arrivals are likelier while fewer conversations are open than
//! there are slots, resolves likelier above it, so the switch spends its time where both "pick an
//! agent for this arrival" (free slots) and "pick the next conversation for this freed slot"
//! (a backlog) happen. Simulated time advances `tick_ms` per event and `tick(now)` runs once a
//! simulated second (aging, skill fallback, offer expiry). With `--offers`, queues offer instead
//! of assigning and the driver accepts every offer at once except `reject_pct` % which it
//! rejects.
//!
//! `--engine decide` runs the same stream through the calls the server's dispatcher makes
//! (`server/src/dispatch.rs`) on in-memory snapshots instead of database rows: the ranking over
//! the queue's eligible agents with room for an arrival (`best_agent`, the first of the server's
//! `rank_agents` found in one pass, since only the first is used here), the first waiting conversation by
//! `queue_order_key` for a freed slot, and a sweep every 5 simulated seconds.
//!
//! A *decision* is a `Decision::Offered` or `Decision::Assigned { how: AutoAccepted }`: the switch
//! chose an agent for a conversation. Accepting an offer is not counted again.
//!
//! Invariants, checked while running (outside the timed calls):
//! - a shadow model built only from the decisions: a conversation offered or assigned while the
//!   shadow says someone holds it is a *double assignment*; an agent whose shadow load exceeds
//!   their capacity (total or WhatsApp) is *over capacity*;
//! - every `check_every` events, the switch's own state: each agent's load within capacity and
//!   equal to the shadow's, each conversation held by at most one agent, and no waiting
//!   conversation *stranded* while an agent is eligible for it with room.
//!
//! Bounded by `duration` (wall seconds of stream) and `max_events`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use switchboard_core::domain::{AgentStatus, ChannelKind};
use switchboard_core::ids::{ConversationId, UserId};
use switchboard_core::routing::{
    has_room, is_eligible, AgentProfile, Arrival, AssignedHow, Capacity, Decision, Holder, QueueId, QueuePolicy,
    SkillId, SkillRequirement, Strategy, Switch,
};
use switchboard_core::time::Millis;

use crate::Pinning;

#[derive(clap::Args, Clone, Debug)]
pub struct RoutingArgs {
    /// Agents in the switch, all available.
    #[arg(long, default_value_t = 2000)]
    pub agents: usize,
    /// Queues (strategies cycle least-loaded, longest-idle, round-robin, least-loaded).
    #[arg(long, default_value_t = 4)]
    pub queues: usize,
    /// Distinct skills.
    #[arg(long, default_value_t = 12)]
    pub skills: usize,
    /// Wall seconds to run the event stream.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Upper bound on events.
    #[arg(long, default_value_t = 50_000_000)]
    pub max_events: u64,
    /// Simulated milliseconds per event.
    #[arg(long, default_value_t = 2)]
    pub tick_ms: Millis,
    /// `switch`: the routing model's state machine; `decide`: the server dispatcher's calls
    /// (`rank_agents`, `queue_order_key`) on in-memory snapshots.
    #[arg(long, value_enum, default_value = "switch")]
    pub engine: Engine,
    /// Offer instead of auto-assigning; the driver accepts offers (or rejects `reject_pct` %).
    #[arg(long)]
    pub offers: bool,
    /// Percentage of offers rejected (with `--offers`).
    #[arg(long, default_value_t = 5)]
    pub reject_pct: u64,
    /// Full invariant scan of the switch's state every this many events (0: only at the end).
    #[arg(long, default_value_t = 20_000)]
    pub check_every: u64,
    /// Seed of the event stream.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Where the result file goes.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    pub results_dir: std::path::PathBuf,
    /// Result file name (without `.json`).
    #[arg(long)]
    pub name: Option<String>,
}

/// Which routing code decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    Switch,
    Decide,
}

/// SplitMix64: small, seeded, good enough for a workload generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// What the decisions say each conversation's holder is, and each agent's load from that.
#[derive(Default)]
struct Shadow {
    holder: HashMap<ConversationId, UserId>,
    load_total: HashMap<UserId, u32>,
    load_whatsapp: HashMap<UserId, u32>,
    channel: HashMap<ConversationId, ChannelKind>,
    capacity: HashMap<UserId, Capacity>,
    double_assignments: u64,
    over_capacity: u64,
    /// Decisions naming an agent other than the one the shadow says holds the conversation.
    inconsistent: u64,
}

impl Shadow {
    fn take(&mut self, conversation: ConversationId, agent: UserId) {
        if self.holder.contains_key(&conversation) {
            self.double_assignments += 1;
            return;
        }
        self.holder.insert(conversation, agent);
        let whatsapp = self.channel.get(&conversation) == Some(&ChannelKind::Whatsapp);
        let total = self.load_total.entry(agent).or_default();
        *total += 1;
        let total = *total;
        let mut wa = 0;
        if whatsapp {
            let w = self.load_whatsapp.entry(agent).or_default();
            *w += 1;
            wa = *w;
        }
        if let Some(cap) = self.capacity.get(&agent) {
            if total > cap.total || (whatsapp && wa > cap.cap_for(ChannelKind::Whatsapp)) {
                self.over_capacity += 1;
            }
        }
    }

    fn free(&mut self, conversation: ConversationId, expected: Option<UserId>) {
        let Some(agent) = self.holder.remove(&conversation) else {
            self.inconsistent += 1;
            return;
        };
        if expected.is_some_and(|e| e != agent) {
            self.inconsistent += 1;
        }
        if let Some(t) = self.load_total.get_mut(&agent) {
            *t = t.saturating_sub(1);
        }
        if self.channel.get(&conversation) == Some(&ChannelKind::Whatsapp) {
            if let Some(w) = self.load_whatsapp.get_mut(&agent) {
                *w = w.saturating_sub(1);
            }
        }
    }
}

/// Counts from the full scans of the switch's own state.
#[derive(Default)]
struct ScanCounts {
    scans: u64,
    agents_over_capacity: u64,
    load_mismatches: u64,
    held_by_two: u64,
    stranded: u64,
    max_waiting_seen: usize,
}

fn scan(switch: &Switch, shadow: &Shadow, now: Millis, counts: &mut ScanCounts) {
    counts.scans += 1;
    let mut seen: BTreeSet<ConversationId> = BTreeSet::new();
    for agent in switch.agents() {
        if !agent.load.within(&agent.capacity) {
            counts.agents_over_capacity += 1;
        }
        if shadow.load_total.get(&agent.id).copied().unwrap_or(0) != agent.load.total {
            counts.load_mismatches += 1;
        }
        for c in switch.held_by(agent.id) {
            if !seen.insert(c) {
                counts.held_by_two += 1;
            }
        }
    }
    let waiting: Vec<_> = switch.conversations().filter(|c| c.holder == Holder::Waiting).collect();
    counts.max_waiting_seen = counts.max_waiting_seen.max(waiting.len());
    for c in waiting {
        let Some(policy) = switch.policy(c.queue) else { continue };
        if policy.strategy == Strategy::Manual {
            continue;
        }
        if switch.agents().any(|a| is_eligible(a, c, policy, now) && has_room(a, c.channel)) {
            counts.stranded += 1;
        }
    }
}

/// Runs the scenario; `Ok(true)` when no invariant was broken.
pub async fn run(args: RoutingArgs, pinning: Pinning) -> anyhow::Result<bool> {
    // CPU-bound and synchronous: run it on a blocking thread so the runtime stays responsive.
    let name = args.name.clone().unwrap_or_else(|| "routing".into());
    let dir = args.results_dir.clone();
    let description = pinning.description.clone();
    let args2 = args.clone();
    if args.engine == Engine::Decide && args.offers {
        bail!("--offers needs --engine switch (the server assigns directly)");
    }
    let figures = tokio::task::spawn_blocking(move || match args2.engine {
        Engine::Switch => simulate(&args2),
        Engine::Decide => simulate_decide(&args2),
    })
    .await
    .context("routing thread")??;
    let ok = figures["verdict"]["ok"].as_bool().unwrap_or(false);
    let mut result = crate::report::header("routing", &description);
    result["parameters"] = json!({
        "engine": match args.engine { Engine::Switch => "switch", Engine::Decide => "decide" },
        "agents": args.agents, "queues": args.queues, "skills": args.skills, "duration_secs": args.duration,
        "max_events": args.max_events, "tick_ms": args.tick_ms, "offers": args.offers,
        "reject_pct": if args.offers { Some(args.reject_pct) } else { None }, "check_every": args.check_every,
        "seed": args.seed, "build_profile": if cfg!(debug_assertions) { "debug" } else { "release" },
    });
    result["figures"] = figures;
    let path = crate::report::write(&dir, &name, &result)?;
    print_summary(&result);
    println!("results: {}", path.display());
    Ok(ok)
}

fn strategy_for(q: usize) -> Strategy {
    match q % 4 {
        1 => Strategy::LongestIdle,
        2 => Strategy::RoundRobin,
        _ => Strategy::LeastLoaded,
    }
}

/// The queues and their policies: strategies cycle least-loaded, longest-idle, round-robin;
/// skills relax after 20 s and are ignored after 60 s; priority ages by the default.
fn policies(args: &RoutingArgs) -> Vec<(QueueId, QueuePolicy)> {
    (0..args.queues)
        .map(|q| {
            let policy = QueuePolicy {
                strategy: strategy_for(q),
                auto_accept: !args.offers,
                offer_timeout_ms: 15_000,
                skill_fallback_after_ms: Some(20_000),
                skills_ignored_after_ms: Some(60_000),
                ..QueuePolicy::default()
            };
            (QueueId(q as i64 + 1), policy)
        })
        .collect()
}

/// Agents serving 1–2 queues, with 1–4 skills at proficiency 1–5 and capacity 1–6 (a third
/// also capped at 2 WhatsApp chats).
fn agent_profiles(args: &RoutingArgs, rng: &mut Rng, skill_names: &[SkillId]) -> Vec<AgentProfile> {
    (0..args.agents)
        .map(|i| {
            let id = UserId(i as i64 + 1);
            let mut queues = BTreeSet::from([QueueId(rng.below(args.queues as u64) as i64 + 1)]);
            if rng.chance(50) {
                queues.insert(QueueId(rng.below(args.queues as u64) as i64 + 1));
            }
            let mut skills = BTreeMap::new();
            for _ in 0..rng.range(1, 4) {
                let s = skill_names[rng.below(args.skills as u64) as usize].clone();
                skills.insert(s, rng.range(1, 5) as u8);
            }
            let total = rng.range(1, 6) as u32;
            let mut capacity = Capacity::total(total);
            if rng.chance(33) {
                capacity = capacity.with_kind(ChannelKind::Whatsapp, 2.min(total));
            }
            AgentProfile { agent: id, queues, skills, capacity }
        })
        .collect()
}

/// An arrival: random queue, 30 % WhatsApp, priority 1–5, 0–2 distinct required skills at
/// proficiency 1–5.
fn make_arrival(args: &RoutingArgs, rng: &mut Rng, skill_names: &[SkillId], id: ConversationId) -> Arrival {
    let channel = if rng.chance(30) { ChannelKind::Whatsapp } else { ChannelKind::Web };
    let mut required = Vec::new();
    for _ in 0..rng.below(3) {
        let skill = skill_names[rng.below(args.skills as u64) as usize].clone();
        if required.iter().all(|r: &SkillRequirement| r.skill != skill) {
            required.push(SkillRequirement { skill, min_proficiency: rng.range(1, 5) as u8 });
        }
    }
    Arrival {
        conversation: id,
        queue: QueueId(rng.below(args.queues as u64) as i64 + 1),
        channel,
        priority: rng.range(1, 5) as u8,
        required_skills: required,
        last_agent: None,
    }
}

fn simulate(args: &RoutingArgs) -> anyhow::Result<Value> {
    if args.agents == 0 || args.queues == 0 || args.skills == 0 || args.tick_ms <= 0 {
        bail!("agents, queues, skills and tick-ms must be positive");
    }
    let mut rng = Rng::new(args.seed);
    let mut switch = Switch::new();
    let mut shadow = Shadow::default();
    let mut now: Millis = 0;
    let skill_names: Vec<SkillId> = (0..args.skills).map(|i| SkillId::new(format!("skill-{i}"))).collect();

    for (queue, policy) in policies(args) {
        switch.set_policy(queue, policy, now).map_err(|e| anyhow::anyhow!("set_policy: {e}"))?;
    }
    let profiles = agent_profiles(args, &mut rng, &skill_names);
    let total_slots: u64 = profiles.iter().map(|p| u64::from(p.capacity.total)).sum();
    for profile in profiles {
        let id = profile.agent;
        shadow.capacity.insert(id, profile.capacity.clone());
        switch.upsert_agent(profile, now).map_err(|e| anyhow::anyhow!("upsert_agent: {e}"))?;
        switch.set_status(id, AgentStatus::Available, now).map_err(|e| anyhow::anyhow!("set_status: {e}"))?;
    }

    let mut event_ns = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).context("histogram")?;
    let mut assigned: Vec<ConversationId> = Vec::new();
    let mut assigned_at: HashMap<ConversationId, usize> = HashMap::new();
    let mut open_conversations: u64 = 0;
    let mut next_conversation: i64 = 1;
    let mut pending_offers: Vec<(ConversationId, UserId)> = Vec::new();
    let (mut arrivals, mut resolves, mut ticks, mut accepts, mut rejects, mut errors) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut picks_on_arrival, mut picks_on_free, mut picks_on_tick, mut refused) = (0u64, 0u64, 0u64, 0u64);
    let mut first_errors: Vec<String> = Vec::new();
    let mut scans = ScanCounts::default();
    let mut in_switch = Duration::ZERO;
    let mut events: u64 = 0;
    let mut last_tick = now;
    let wall_started = Instant::now();
    let deadline = wall_started + Duration::from_secs_f64(args.duration);
    let mut progress_at = wall_started + Duration::from_secs(5);

    #[derive(Clone, Copy)]
    enum Kind {
        Arrival,
        Free,
        Tick,
    }

    // Applies one outcome's decisions to the shadow and the driver's lists; returns picks.
    let apply = |decisions: &[Decision],
                 shadow: &mut Shadow,
                 assigned: &mut Vec<ConversationId>,
                 assigned_at: &mut HashMap<ConversationId, usize>,
                 pending: &mut Vec<(ConversationId, UserId)>,
                 open: &mut u64|
     -> (u64, u64) {
        let (mut picks, mut refusals) = (0, 0);
        for d in decisions {
            match d {
                Decision::Offered { conversation, agent, .. } => {
                    picks += 1;
                    shadow.take(*conversation, *agent);
                    pending.push((*conversation, *agent));
                }
                Decision::Assigned { conversation, agent, how, .. } => {
                    match how {
                        AssignedHow::AutoAccepted => {
                            picks += 1;
                            shadow.take(*conversation, *agent);
                        }
                        _ => {
                            if shadow.holder.get(conversation) != Some(agent) {
                                shadow.inconsistent += 1;
                            }
                        }
                    }
                    assigned_at.insert(*conversation, assigned.len());
                    assigned.push(*conversation);
                }
                Decision::Requeued { conversation, from_agent, .. } => shadow.free(*conversation, Some(*from_agent)),
                Decision::Refused { .. } => {
                    refusals += 1;
                    *open = open.saturating_sub(1);
                }
                _ => {}
            }
        }
        (picks, refusals)
    };

    while events < args.max_events {
        if events % 16 == 0 {
            let t = Instant::now();
            if t >= deadline {
                break;
            }
            if t >= progress_at {
                progress_at += Duration::from_secs(5);
                println!(
                    "  t={:>4.0}s events {events} decisions {} waiting-max {}",
                    wall_started.elapsed().as_secs_f64(),
                    picks_on_arrival + picks_on_free + picks_on_tick,
                    scans.max_waiting_seen
                );
            }
        }
        now += args.tick_ms;
        let (kind, outcome, took) = if now - last_tick >= 1000 {
            last_tick = now;
            ticks += 1;
            let t = Instant::now();
            let out = switch.tick(now);
            (Kind::Tick, Ok(out), t.elapsed())
        } else {
            let want_arrival = if open_conversations < total_slots { rng.chance(60) } else { rng.chance(40) };
            if want_arrival || assigned.is_empty() {
                arrivals += 1;
                let id = ConversationId(next_conversation);
                next_conversation += 1;
                let arrival = make_arrival(args, &mut rng, &skill_names, id);
                let channel = arrival.channel;
                shadow.channel.insert(id, channel);
                open_conversations += 1;
                let t = Instant::now();
                let out = switch.arrive(arrival, now);
                (Kind::Arrival, out, t.elapsed())
            } else {
                resolves += 1;
                let idx = rng.below(assigned.len() as u64) as usize;
                let id = assigned.swap_remove(idx);
                assigned_at.remove(&id);
                if let Some(moved) = assigned.get(idx) {
                    assigned_at.insert(*moved, idx);
                }
                let t = Instant::now();
                let out = switch.resolve(id, now);
                let took = t.elapsed();
                if out.is_ok() {
                    shadow.free(id, None);
                    shadow.channel.remove(&id);
                    open_conversations = open_conversations.saturating_sub(1);
                }
                (Kind::Free, out, took)
            }
        };
        events += 1;
        in_switch += took;
        let _ = event_ns.record((took.as_nanos() as u64).max(1));
        match outcome {
            Ok(decisions) => {
                let (picks, refusals) = apply(
                    &decisions,
                    &mut shadow,
                    &mut assigned,
                    &mut assigned_at,
                    &mut pending_offers,
                    &mut open_conversations,
                );
                refused += refusals;
                match kind {
                    Kind::Arrival => picks_on_arrival += picks,
                    Kind::Free => picks_on_free += picks,
                    Kind::Tick => picks_on_tick += picks,
                }
            }
            Err(e) => {
                errors += 1;
                if first_errors.len() < 5 {
                    first_errors.push(e.to_string());
                }
            }
        }
        // The agents answer their offers at once (each answer is an event of its own).
        while let Some((conversation, agent)) = pending_offers.pop() {
            let reject = rng.chance(args.reject_pct);
            let t = Instant::now();
            let out = if reject {
                switch.offer_rejected(conversation, agent, now)
            } else {
                switch.offer_accepted(conversation, agent, now)
            };
            let took = t.elapsed();
            events += 1;
            in_switch += took;
            let _ = event_ns.record((took.as_nanos() as u64).max(1));
            if reject {
                rejects += 1;
            } else {
                accepts += 1;
            }
            match out {
                Ok(decisions) => {
                    // The requeue of a rejected offer comes back in `decisions`.
                    let (picks, _) = apply(
                        &decisions,
                        &mut shadow,
                        &mut assigned,
                        &mut assigned_at,
                        &mut pending_offers,
                        &mut open_conversations,
                    );
                    picks_on_free += picks;
                }
                Err(e) => {
                    errors += 1;
                    if first_errors.len() < 5 {
                        first_errors.push(e.to_string());
                    }
                }
            }
        }
        if args.check_every > 0 && events % args.check_every == 0 {
            scan(&switch, &shadow, now, &mut scans);
        }
    }
    scan(&switch, &shadow, now, &mut scans);
    let wall = wall_started.elapsed().as_secs_f64();
    let switch_secs = in_switch.as_secs_f64();
    let decisions = picks_on_arrival + picks_on_free + picks_on_tick;
    let waiting_at_end = switch.conversations().filter(|c| c.holder == Holder::Waiting).count();
    let us = |q: f64| (event_ns.value_at_quantile(q) as f64 / 10.0).round() / 100.0;
    let ok = shadow.double_assignments == 0
        && shadow.over_capacity == 0
        && shadow.inconsistent == 0
        && scans.agents_over_capacity == 0
        && scans.load_mismatches == 0
        && scans.held_by_two == 0
        && scans.stranded == 0
        && errors == 0;
    Ok(json!({
        "total_slots": total_slots,
        "events": events,
        "arrivals": arrivals,
        "resolves": resolves,
        "ticks": ticks,
        "offers_accepted": accepts,
        "offers_rejected": rejects,
        "refused_arrivals": refused,
        "errors": errors,
        "first_errors": first_errors,
        "decisions": decisions,
        "decisions_on_arrival": picks_on_arrival,
        "decisions_on_freed_slot": picks_on_free,
        "decisions_on_tick": picks_on_tick,
        "simulated_secs": now as f64 / 1000.0,
        "wall_secs": round3(wall),
        "secs_inside_switch": round3(switch_secs),
        "decisions_per_sec": round1(decisions as f64 / switch_secs.max(1e-9)),
        "events_per_sec": round1(events as f64 / switch_secs.max(1e-9)),
        "decisions_per_wall_sec_with_checks": round1(decisions as f64 / wall.max(1e-9)),
        "event_latency_us": { "p50": us(0.5), "p99": us(0.99), "p999": us(0.999), "max": (event_ns.max() as f64 / 10.0).round() / 100.0, "mean": (event_ns.mean() / 10.0).round() / 100.0 },
        "assigned_at_end": assigned.len(),
        "waiting_at_end": waiting_at_end,
        "invariants": {
            "double_assignments": shadow.double_assignments,
            "over_capacity": shadow.over_capacity,
            "inconsistent_decisions": shadow.inconsistent,
            "state_scans": scans.scans,
            "scan_agents_over_capacity": scans.agents_over_capacity,
            "scan_load_mismatches": scans.load_mismatches,
            "scan_conversations_held_by_two": scans.held_by_two,
            "scan_stranded_conversations": scans.stranded,
            "scan_max_waiting": scans.max_waiting_seen,
        },
        "verdict": { "ok": ok },
    }))
}

/// The server's way of deciding (`server/src/dispatch.rs`), on in-memory snapshots instead of
/// database rows: an arrival ranks the queue's eligible agents with room by the queue's strategy
/// (`rank_agents`) and takes the first; a freed slot takes the waiting conversation its agent may
/// serve that sorts first by `queue_order_key`; a sweep every 5 simulated seconds (the server's
/// safety net) places what waits in queue order. Auto-accept only (the server assigns directly).
/// Timed: each decision including its bookkeeping (load, holder, the waiting list).
fn simulate_decide(args: &RoutingArgs) -> anyhow::Result<Value> {
    use switchboard_core::routing::{best_agent, queue_order_key, Agent, Load, RoutedConversation};
    if args.agents == 0 || args.queues == 0 || args.skills == 0 || args.tick_ms <= 0 {
        bail!("agents, queues, skills and tick-ms must be positive");
    }
    let mut rng = Rng::new(args.seed);
    let skill_names: Vec<SkillId> = (0..args.skills).map(|i| SkillId::new(format!("skill-{i}"))).collect();
    let policies: HashMap<QueueId, QueuePolicy> = policies(args).into_iter().collect();
    let mut cursors: HashMap<QueueId, UserId> = HashMap::new();
    let profiles = agent_profiles(args, &mut rng, &skill_names);
    let total_slots: u64 = profiles.iter().map(|p| u64::from(p.capacity.total)).sum();
    let mut shadow = Shadow::default();
    let mut by_queue: HashMap<QueueId, Vec<usize>> = HashMap::new();
    let mut agents: Vec<Agent> = Vec::with_capacity(profiles.len());
    for (i, p) in profiles.into_iter().enumerate() {
        for q in &p.queues {
            by_queue.entry(*q).or_default().push(i);
        }
        shadow.capacity.insert(p.agent, p.capacity.clone());
        agents.push(Agent {
            id: p.agent,
            status: AgentStatus::Available,
            wrap_up_until: None,
            idle_since: 0,
            queues: p.queues,
            skills: p.skills,
            capacity: p.capacity,
            load: Load::default(),
        });
    }
    let index_of = |id: UserId| (id.0 - 1) as usize;

    let mut event_ns = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).context("histogram")?;
    let mut waiting: Vec<RoutedConversation> = Vec::new();
    let mut assigned: Vec<(ConversationId, UserId, ChannelKind)> = Vec::new();
    let (mut arrivals, mut resolves, mut sweeps) = (0u64, 0u64, 0u64);
    let (mut picks_on_arrival, mut picks_on_free, mut picks_on_sweep) = (0u64, 0u64, 0u64);
    let mut scans = ScanCounts::default();
    let mut scan_due = false;
    let mut in_decisions = Duration::ZERO;
    let mut events: u64 = 0;
    let mut now: Millis = 0;
    let mut last_sweep: Millis = 0;
    let mut next_conversation: i64 = 1;
    let wall_started = Instant::now();
    let deadline = wall_started + Duration::from_secs_f64(args.duration);
    let mut progress_at = wall_started + Duration::from_secs(5);

    // Places `c` with the best-ranked eligible agent with room, like `conversation_waiting`.
    fn place(
        c: &RoutedConversation,
        agents: &[Agent],
        members: &[usize],
        policy: &QueuePolicy,
        cursor: Option<UserId>,
        now: Millis,
    ) -> Option<UserId> {
        let candidates: Vec<&Agent> = members
            .iter()
            .map(|&i| &agents[i])
            .filter(|a| is_eligible(a, c, policy, now) && has_room(a, c.channel))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        best_agent(policy.strategy, &candidates, c, policy, cursor, now)
    }

    while events < args.max_events {
        if events % 16 == 0 {
            let t = Instant::now();
            if t >= deadline {
                break;
            }
            if t >= progress_at {
                progress_at += Duration::from_secs(5);
                println!(
                    "  t={:>4.0}s events {events} decisions {} waiting {}",
                    wall_started.elapsed().as_secs_f64(),
                    picks_on_arrival + picks_on_free + picks_on_sweep,
                    waiting.len()
                );
            }
        }
        now += args.tick_ms;
        events += 1;
        if now - last_sweep >= 5000 {
            last_sweep = now;
            sweeps += 1;
            let t = Instant::now();
            waiting.sort_by_cached_key(|c| queue_order_key(c, &policies[&c.queue], now));
            let mut still = Vec::with_capacity(waiting.len());
            for c in waiting.drain(..) {
                let policy = &policies[&c.queue];
                let members = by_queue.get(&c.queue).map(Vec::as_slice).unwrap_or(&[]);
                match place(&c, &agents, members, policy, cursors.get(&c.queue).copied(), now) {
                    Some(agent) => {
                        let a = &mut agents[index_of(agent)];
                        a.load.add(c.channel);
                        a.idle_since = now;
                        cursors.insert(c.queue, agent);
                        assigned.push((c.id, agent, c.channel));
                        picks_on_sweep += 1;
                        shadow.take(c.id, agent);
                    }
                    None => still.push(c),
                }
            }
            waiting = still;
            let took = t.elapsed();
            in_decisions += took;
            let _ = event_ns.record((took.as_nanos() as u64).max(1));
            if scan_due {
                scan_due = false;
                scans.scans += 1;
                scans.max_waiting_seen = scans.max_waiting_seen.max(waiting.len());
                for c in &waiting {
                    if agents.iter().any(|a| is_eligible(a, c, &policies[&c.queue], now) && has_room(a, c.channel)) {
                        scans.stranded += 1;
                    }
                }
                for a in &agents {
                    if !a.load.within(&a.capacity) {
                        scans.agents_over_capacity += 1;
                    }
                    if shadow.load_total.get(&a.id).copied().unwrap_or(0) != a.load.total {
                        scans.load_mismatches += 1;
                    }
                }
            }
        } else {
            let open = waiting.len() as u64 + assigned.len() as u64;
            let want_arrival = if open < total_slots { rng.chance(60) } else { rng.chance(40) };
            if want_arrival || assigned.is_empty() {
                arrivals += 1;
                let id = ConversationId(next_conversation);
                next_conversation += 1;
                let arrival = make_arrival(args, &mut rng, &skill_names, id);
                shadow.channel.insert(id, arrival.channel);
                let c = RoutedConversation {
                    required_skills: arrival.required_skills,
                    ..RoutedConversation::waiting(id, arrival.queue, arrival.channel, arrival.priority, now)
                };
                let t = Instant::now();
                let policy = &policies[&c.queue];
                let members = by_queue.get(&c.queue).map(Vec::as_slice).unwrap_or(&[]);
                match place(&c, &agents, members, policy, cursors.get(&c.queue).copied(), now) {
                    Some(agent) => {
                        let a = &mut agents[index_of(agent)];
                        a.load.add(c.channel);
                        a.idle_since = now;
                        cursors.insert(c.queue, agent);
                        assigned.push((c.id, agent, c.channel));
                        picks_on_arrival += 1;
                        let took = t.elapsed();
                        in_decisions += took;
                        let _ = event_ns.record((took.as_nanos() as u64).max(1));
                        shadow.take(id, agent);
                    }
                    None => {
                        waiting.push(c);
                        let took = t.elapsed();
                        in_decisions += took;
                        let _ = event_ns.record((took.as_nanos() as u64).max(1));
                    }
                }
            } else {
                resolves += 1;
                let idx = rng.below(assigned.len() as u64) as usize;
                let (id, agent, channel) = assigned.swap_remove(idx);
                shadow.free(id, Some(agent));
                shadow.channel.remove(&id);
                let t = Instant::now();
                let ai = index_of(agent);
                agents[ai].load.remove(channel);
                // The freed agent takes the first waiting conversation they may serve, like
                // `capacity_freed` (queue order by `queue_order_key`).
                let a = &agents[ai];
                let best = waiting
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| {
                        a.queues.contains(&c.queue)
                            && is_eligible(a, c, &policies[&c.queue], now)
                            && has_room(a, c.channel)
                    })
                    .min_by_key(|(_, c)| queue_order_key(c, &policies[&c.queue], now))
                    .map(|(i, _)| i);
                let picked = best.map(|i| {
                    let c = waiting.swap_remove(i);
                    let a = &mut agents[ai];
                    a.load.add(c.channel);
                    a.idle_since = now;
                    cursors.insert(c.queue, agent);
                    assigned.push((c.id, agent, c.channel));
                    c.id
                });
                let took = t.elapsed();
                in_decisions += took;
                let _ = event_ns.record((took.as_nanos() as u64).max(1));
                if let Some(c) = picked {
                    picks_on_free += 1;
                    shadow.take(c, agent);
                }
            }
        }
        if args.check_every > 0 && events % args.check_every == 0 {
            scan_due = true;
        }
    }
    let wall = wall_started.elapsed().as_secs_f64();
    let secs = in_decisions.as_secs_f64();
    let decisions = picks_on_arrival + picks_on_free + picks_on_sweep;
    let us = |q: f64| (event_ns.value_at_quantile(q) as f64 / 10.0).round() / 100.0;
    let ok = shadow.double_assignments == 0
        && shadow.over_capacity == 0
        && shadow.inconsistent == 0
        && scans.agents_over_capacity == 0
        && scans.load_mismatches == 0
        && scans.stranded == 0;
    Ok(json!({
        "total_slots": total_slots,
        "events": events,
        "arrivals": arrivals,
        "resolves": resolves,
        "ticks": sweeps,
        "offers_accepted": 0,
        "offers_rejected": 0,
        "errors": 0,
        "decisions": decisions,
        "decisions_on_arrival": picks_on_arrival,
        "decisions_on_freed_slot": picks_on_free,
        "decisions_on_tick": picks_on_sweep,
        "simulated_secs": now as f64 / 1000.0,
        "wall_secs": round3(wall),
        "secs_inside_switch": round3(secs),
        "decisions_per_sec": round1(decisions as f64 / secs.max(1e-9)),
        "events_per_sec": round1(events as f64 / secs.max(1e-9)),
        "decisions_per_wall_sec_with_checks": round1(decisions as f64 / wall.max(1e-9)),
        "event_latency_us": { "p50": us(0.5), "p99": us(0.99), "p999": us(0.999), "max": (event_ns.max() as f64 / 10.0).round() / 100.0, "mean": (event_ns.mean() / 10.0).round() / 100.0 },
        "assigned_at_end": assigned.len(),
        "waiting_at_end": waiting.len(),
        "invariants": {
            "double_assignments": shadow.double_assignments,
            "over_capacity": shadow.over_capacity,
            "inconsistent_decisions": shadow.inconsistent,
            "state_scans": scans.scans,
            "scan_agents_over_capacity": scans.agents_over_capacity,
            "scan_load_mismatches": scans.load_mismatches,
            "scan_conversations_held_by_two": 0,
            "scan_stranded_conversations": scans.stranded,
            "scan_max_waiting": scans.max_waiting_seen,
        },
        "verdict": { "ok": ok },
    }))
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn print_summary(result: &Value) {
    let f = &result["figures"];
    let p = &result["parameters"];
    let i = &f["invariants"];
    println!();
    println!(
        "== routing (in-process, engine {}; {} agents, {} queues, {} skills, offers {}, {} build) ==",
        p["engine"].as_str().unwrap_or("?"),
        p["agents"],
        p["queues"],
        p["skills"],
        p["offers"],
        p["build_profile"].as_str().unwrap_or("?")
    );
    println!(
        "events {} (arrivals {}, resolves {}, ticks {}, offer answers {}/{} accepted/rejected), {} slots",
        f["events"],
        f["arrivals"],
        f["resolves"],
        f["ticks"],
        f["offers_accepted"],
        f["offers_rejected"],
        f["total_slots"]
    );
    println!(
        "decisions {} (on arrival {}, on freed slot {}, on tick {}) in {} s inside the switch: {} decisions/s, {} events/s",
        f["decisions"],
        f["decisions_on_arrival"],
        f["decisions_on_freed_slot"],
        f["decisions_on_tick"],
        f["secs_inside_switch"],
        f["decisions_per_sec"],
        f["events_per_sec"]
    );
    println!("per-event µs: {}", f["event_latency_us"]);
    println!(
        "invariants: double assignments {}, over capacity {}, inconsistent {}; {} scans: over capacity {}, load mismatches {}, held by two {}, stranded {} (max waiting {})",
        i["double_assignments"],
        i["over_capacity"],
        i["inconsistent_decisions"],
        i["state_scans"],
        i["scan_agents_over_capacity"],
        i["scan_load_mismatches"],
        i["scan_conversations_held_by_two"],
        i["scan_stranded_conversations"],
        i["scan_max_waiting"]
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_counts_double_assignments_and_over_capacity() {
        let mut shadow = Shadow::default();
        let (a, b) = (UserId(1), UserId(2));
        shadow.capacity.insert(a, Capacity::total(1));
        shadow.capacity.insert(b, Capacity::total(3).with_kind(ChannelKind::Whatsapp, 1));
        shadow.channel.insert(ConversationId(1), ChannelKind::Web);
        shadow.channel.insert(ConversationId(2), ChannelKind::Web);
        shadow.channel.insert(ConversationId(3), ChannelKind::Whatsapp);
        shadow.channel.insert(ConversationId(4), ChannelKind::Whatsapp);
        shadow.take(ConversationId(1), a);
        assert_eq!((shadow.double_assignments, shadow.over_capacity), (0, 0));
        shadow.take(ConversationId(1), b);
        assert_eq!(shadow.double_assignments, 1, "held conversation handed out again");
        shadow.take(ConversationId(2), a);
        assert_eq!(shadow.over_capacity, 1, "total capacity 1 exceeded");
        shadow.take(ConversationId(3), b);
        shadow.take(ConversationId(4), b);
        assert_eq!(shadow.over_capacity, 2, "WhatsApp cap 1 exceeded");
        shadow.free(ConversationId(2), Some(b));
        assert_eq!(shadow.inconsistent, 1, "freed by the wrong agent");
        shadow.free(ConversationId(2), None);
        assert_eq!(shadow.inconsistent, 2, "freed twice");
    }

    #[test]
    fn rng_is_seeded() {
        let (mut x, mut y) = (Rng::new(3), Rng::new(3));
        assert!((0..100).all(|_| x.next_u64() == y.next_u64()));
        assert!((0..1000).all(|_| x.range(1, 5) >= 1 && y.range(1, 5) <= 5));
    }
}

//! Scenario `routing-nodes`: assignments per second across two real `switchboard` nodes sharing
//! one Postgres database and one Redis, checked afterwards against the database's own records.
//!
//! Stage: a fresh Postgres database; node A starts first (it migrates and bootstraps), then
//! node B on the same database and Redis key prefix (both pinned to the server core when
//! pinning). One API inbox; `agents` agents with capacity `capacity` each, created over REST and
//! connected to `/agent` alternately on A and B, and set `available`.
//!
//! Load: `conversations` customer messages, each from a new contact (so each opens a
//! conversation that must be routed), posted to the API channel alternately on A and B, closed
//! loop with at most `in_flight` requests outstanding. Each agent, on the `conversation` event
//! that assigns a conversation to them, emits `resolve` for it (after `hold_ms`), freeing the
//! slot, which the server hands to the next queued conversation. When every slot is busy,
//! arrivals queue and are pulled by resolves, so both dispatch paths run: "pick an agent for a
//! new conversation" and "pick the next conversation for a freed agent".
//!
//! Figures: posts acknowledged per second; assignments per second as the agents saw them
//! (assignment events ÷ time from the first post to the last assignment) and as the database
//! recorded them (`assigned` events ÷ the span of their timestamps); post → assignment
//! latency; CPU used by each node, Postgres, Redis and the load generator.
//!
//! Invariants, from the database's own records once the run has drained:
//! - **double assignments**: a conversation with an `assigned` event while the replay of its
//!   events says it is already held (no `requeued`/`resolved` between); plus conversations whose
//!   assignment reached two different agents' sockets;
//! - **over capacity**: replaying `conversation_events` in id order per agent (+1 on `assigned`,
//!   −1 on `resolved`/`requeued` of a conversation the agent holds), the most any agent held
//!   versus their capacity. Sound per agent because every transaction that writes one of these
//!   events first updates that agent's `users` row (`try_assign`, `release_slot`), so an agent's
//!   events take their ids one after the other under that row lock, in commit order. Also
//!   sampled live (`active_load > capacity`) and checked at the end (`active_load` equal to the
//!   agent's open assigned conversations);
//! - **stuck**: conversations still `queued` at the end while an available agent has room
//!   (after waiting past one dispatcher sweep), and conversations assigned in the database whose
//!   assignment no agent socket received.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use crate::api::Api;
use crate::report::{latency_histogram, summary};
use crate::server::{psql_rows, Db, Server, ServerOptions, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::sio::{self, ConnectOptions, SioClient};
use crate::Pinning;

#[derive(clap::Args, Clone, Debug)]
pub struct RoutingNodesArgs {
    /// The server binary.
    #[arg(long, env = "SWITCHBOARD_BIN", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/switchboard"))]
    pub server_bin: std::path::PathBuf,
    /// Postgres host:port (trust auth as user `postgres`); loopback only.
    #[arg(long, default_value = "127.0.0.1:5432")]
    pub pg_addr: String,
    /// Redis URL both nodes share (a key prefix unique to this run is used).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Agents, connected alternately to node A and node B.
    #[arg(long, default_value_t = 200)]
    pub agents: usize,
    /// Each agent's capacity.
    #[arg(long, default_value_t = 3)]
    pub capacity: i64,
    /// Conversations to open (one customer message each, from a new contact).
    #[arg(long, default_value_t = 20_000)]
    pub conversations: usize,
    /// Most POSTs outstanding at once.
    #[arg(long, default_value_t = 128)]
    pub in_flight: usize,
    /// How long an agent holds a conversation before resolving it, in ms.
    #[arg(long, default_value_t = 0)]
    pub hold_ms: u64,
    /// After the last POST, how long to wait for assignments and resolves to finish, in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub drain_timeout: f64,
    /// Where result files go.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    pub results_dir: std::path::PathBuf,
    /// Result file name (without `.json`).
    #[arg(long)]
    pub name: Option<String>,
}

/// Shared bookkeeping of posts and assignments.
struct Tracker {
    base: Instant,
    /// Post start per sequence number, µs since `base` + 1 (0: not started).
    started_us: Vec<AtomicU64>,
    /// The conversation each post opened (from the 201 answer).
    conversation_of: Vec<AtomicU64>,
    acked: AtomicU64,
    failed: AtomicU64,
    first_errors: Mutex<Vec<String>>,
    /// Conversation → (agents whose socket got its assignment, first receipt µs).
    assignments: Mutex<HashMap<u64, (Vec<u64>, u64)>>,
    assignment_events: AtomicU64,
    resolved_ok: AtomicU64,
    resolve_failed: AtomicU64,
    resolve_errors: Mutex<Vec<String>>,
    last_assignment_us: AtomicU64,
    /// Post start → full 2xx answer read, µs.
    ack_latency: Mutex<hdrhistogram::Histogram<u64>>,
}

impl Tracker {
    fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }
    fn error(&self, list: &Mutex<Vec<String>>, e: String) {
        if let Ok(mut l) = list.lock() {
            if l.len() < 10 {
                l.push(e);
            }
        }
    }
}

/// Runs the scenario; `Ok(true)` when no invariant was broken and nothing failed.
pub async fn run(args: RoutingNodesArgs, pinning: Pinning) -> anyhow::Result<bool> {
    if args.agents == 0 || args.conversations == 0 || args.in_flight == 0 || args.capacity <= 0 {
        bail!("agents, conversations, in-flight and capacity must be positive");
    }
    let name = args.name.clone().unwrap_or_else(|| "routing-nodes".into());
    let run_tag = format!("{:x}{:x}", std::process::id(), unix_nanos() % 0xffff);
    println!(
        "routing-nodes: 2 nodes on Postgres + Redis, {} agents × capacity {}, {} conversations, {} in flight, hold {} ms",
        args.agents, args.capacity, args.conversations, args.in_flight, args.hold_ms
    );
    println!("pinning: {} (both nodes on the server core(s))", pinning.description);
    let db = crate::server::create_pg_database(&args.pg_addr).await?;
    let prefix = format!("sbload:{run_tag}:");
    let opts = |node: &str| ServerOptions {
        bin: args.server_bin.clone(),
        db: Db::Postgres,
        pg_addr: args.pg_addr.clone(),
        cpus: pinning.server_cpus.clone(),
        log_path: args.results_dir.join(format!("{name}.{node}.server.log")),
        shared_pg_db: Some(db.clone()),
        redis: Some((args.redis_url.clone(), prefix.clone())),
    };
    let outcome = async {
        let a = Server::start(&opts("a")).await.context("node A")?;
        let b = match Server::start(&opts("b")).await.context("node B") {
            Ok(b) => b,
            Err(e) => {
                a.stop().await;
                return Err(e);
            }
        };
        println!("node A pid {} at {}; node B pid {} at {}; database {db}", a.pid, a.base_url, b.pid, b.base_url);
        let figures = drive(&args, &a, &b, &db, &run_tag).await;
        let exit_a = a.stop().await;
        let exit_b = b.stop().await;
        let mut figures = figures?;
        let warn: Vec<String> = exit_a.warn_lines.iter().chain(exit_b.warn_lines.iter()).take(5).cloned().collect();
        figures["server_logs"] = json!({
            "graceful_stop": exit_a.graceful && exit_b.graceful,
            "warn_or_error_lines": exit_a.warn_lines.len() + exit_b.warn_lines.len(),
            "first": warn,
        });
        Ok::<Value, anyhow::Error>(figures)
    }
    .await;
    if let Err(e) = crate::server::drop_pg_database(&args.pg_addr, &db).await {
        eprintln!("warning: could not drop database {db}: {e:#}");
    }
    drop_redis_prefix(&args.redis_url, &prefix).await;
    let figures = outcome?;
    let ok = figures["verdict"]["ok"].as_bool().unwrap_or(false);
    let mut result = crate::report::header("routing-nodes", &pinning.description);
    result["parameters"] = json!({
        "nodes": 2, "db": "postgres", "agents": args.agents, "agent_capacity": args.capacity,
        "conversations": args.conversations, "in_flight": args.in_flight, "hold_ms": args.hold_ms,
        "drain_timeout_secs": args.drain_timeout,
    });
    result["server_binary"] = crate::report::binary_info(&args.server_bin);
    result["figures"] = figures;
    let path = crate::report::write(&args.results_dir, &name, &result)?;
    print_summary(&result);
    println!("results: {}", path.display());
    Ok(ok)
}

async fn drive(args: &RoutingNodesArgs, a: &Server, b: &Server, db: &str, run_tag: &str) -> anyhow::Result<Value> {
    let nodes = [a.base_url.clone(), b.base_url.clone()];
    let apis = [Api::new(&nodes[0], args.in_flight)?, Api::new(&nodes[1], args.in_flight)?];
    let admin = apis[0].login(ADMIN_EMAIL, ADMIN_PASSWORD).await.context("admin login")?;
    let inbox = apis[0].create_api_inbox(&admin, "loadgen-routing").await?;

    // Agents: created 4 at a time (password hashing is deliberately slow), alternately on A and B.
    let setup_started = Instant::now();
    let agents: Vec<_> = futures::stream::iter(0..args.agents)
        .map(|i| {
            let (api, admin) = (apis[i % 2].clone(), admin.clone());
            async move { api.create_agent(&admin, &format!("rn-agent-{i}"), args.capacity).await }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let agents = agents.into_iter().collect::<anyhow::Result<Vec<_>>>()?;

    let tracker = Arc::new(Tracker {
        base: Instant::now(),
        started_us: (0..args.conversations).map(|_| AtomicU64::new(0)).collect(),
        conversation_of: (0..args.conversations).map(|_| AtomicU64::new(0)).collect(),
        acked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_errors: Mutex::new(Vec::new()),
        assignments: Mutex::new(HashMap::new()),
        assignment_events: AtomicU64::new(0),
        resolved_ok: AtomicU64::new(0),
        resolve_failed: AtomicU64::new(0),
        resolve_errors: Mutex::new(Vec::new()),
        last_assignment_us: AtomicU64::new(0),
        ack_latency: Mutex::new(latency_histogram()?),
    });
    let mut clients: Vec<Arc<SioClient>> = Vec::new();
    let mut readers = Vec::new();
    for (i, agent) in agents.iter().enumerate() {
        let (tx, mut rx) = mpsc::channel(1024);
        let client = sio::connect(
            &nodes[i % 2],
            ConnectOptions {
                namespace: "/agent".into(),
                auth: json!({ "token": agent.token }),
                timeout: Duration::from_secs(10),
                events: Some(tx),
            },
        )
        .await
        .with_context(|| format!("agent {} connect", agent.id))?;
        let hello_deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(hello_deadline, rx.recv()).await {
                Ok(Some(ev)) if ev.name == "hello" => break,
                Ok(Some(_)) => continue,
                Ok(None) => bail!("agent {}: connection closed before hello", agent.id),
                Err(_) => bail!("agent {}: no hello", agent.id),
            }
        }
        let ack = client.request("status", json!({ "status": "available" }), Duration::from_secs(10)).await?;
        if ack.get("ok").and_then(Value::as_bool) != Some(true) {
            bail!("agent {}: status available refused: {ack}", agent.id);
        }
        let client = Arc::new(client);
        readers.push(tokio::spawn(agent_loop(rx, client.clone(), agent.id as u64, tracker.clone(), args.hold_ms)));
        clients.push(client);
    }
    let setup_secs = setup_started.elapsed().as_secs_f64();
    println!(
        "setup: {} agents available ({} on each node) in {setup_secs:.1} s; posting…",
        agents.len(),
        agents.len() / 2
    );

    let pids = [a.pid, b.pid];
    let cpu = CpuSnapshot::take(&pids);
    // Live sampling of the database, every 500 ms, until told to stop.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = tokio::spawn(sample_db(args.pg_addr.clone(), db.to_string(), sampling.clone()));

    let semaphore = Arc::new(Semaphore::new(args.in_flight));
    let inbox = Arc::new(inbox);
    let started = Instant::now();
    let started_us = tracker.now_us();
    let mut progress_at = started + Duration::from_secs(5);
    for seq in 0..args.conversations {
        let permit = semaphore.clone().acquire_owned().await.context("semaphore closed")?;
        let (api, inbox, task_tracker) = (apis[seq % 2].clone(), inbox.clone(), tracker.clone());
        let contact = format!("rn-{run_tag}-{seq}");
        tokio::spawn(async move {
            let tracker = task_tracker;
            let _permit = permit;
            let body = json!({
                "message_id": format!("{contact}-m"),
                "contact": { "id": contact, "name": format!("Customer {seq}") },
                "text": format!("routing load {seq}"),
            });
            let url = format!("{}/api/v1/channels/api/{}/messages", api.base, inbox.id);
            let start_us = tracker.now_us();
            tracker.started_us[seq].store(start_us + 1, Ordering::Relaxed);
            match api.http.post(url).bearer_auth(&inbox.inbound_token).json(&body).send().await {
                Ok(res) if res.status().is_success() => {
                    let text = res.text().await.unwrap_or_default();
                    if let Ok(mut h) = tracker.ack_latency.lock() {
                        let _ = h.record(tracker.now_us().saturating_sub(start_us).max(1));
                    }
                    let conversation = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v.get("conversation_id").and_then(Value::as_u64))
                        .unwrap_or(0);
                    tracker.conversation_of[seq].store(conversation, Ordering::Relaxed);
                    tracker.acked.fetch_add(1, Ordering::Relaxed);
                }
                Ok(res) => {
                    tracker.failed.fetch_add(1, Ordering::Relaxed);
                    let status = res.status();
                    let text = res.text().await.unwrap_or_default();
                    tracker.error(
                        &tracker.first_errors,
                        format!("{status}: {}", text.chars().take(200).collect::<String>()),
                    );
                }
                Err(e) => {
                    tracker.failed.fetch_add(1, Ordering::Relaxed);
                    tracker.error(&tracker.first_errors, e.to_string());
                }
            }
        });
        if Instant::now() >= progress_at {
            progress_at += Duration::from_secs(5);
            println!(
                "  t={:>4.0}s posted {} acked {} assigned {} resolved {}",
                started.elapsed().as_secs_f64(),
                seq + 1,
                tracker.acked.load(Ordering::Relaxed),
                tracker.assignment_events.load(Ordering::Relaxed),
                tracker.resolved_ok.load(Ordering::Relaxed)
            );
        }
    }
    let all = semaphore.acquire_many(args.in_flight as u32).await.context("semaphore closed")?;
    drop(all);
    let posts_done = started.elapsed().as_secs_f64();
    let acked = tracker.acked.load(Ordering::Relaxed);

    // Drain: every acknowledged conversation assigned and resolved, bounded by the timeout.
    let drain_deadline = Instant::now() + Duration::from_secs_f64(args.drain_timeout);
    while Instant::now() < drain_deadline {
        let done = tracker.resolved_ok.load(Ordering::Relaxed) + tracker.resolve_failed.load(Ordering::Relaxed);
        if done >= acked {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained_secs = started.elapsed().as_secs_f64();
    let cpu_used = cpu.since(&pids, drained_secs);
    let last_assignment = tracker.last_assignment_us.load(Ordering::Relaxed).saturating_sub(started_us) as f64 / 1e6;
    // Past one dispatcher sweep (5 s), so anything the live path missed had its second chance.
    tokio::time::sleep(Duration::from_secs(6)).await;
    sampling.store(false, Ordering::Relaxed);
    let samples = sampler.await.context("sampler panicked")?;
    let still_open = clients.iter().filter(|c| c.is_open()).count();
    drop(clients);
    for reader in readers {
        reader.abort();
    }

    // The database's own records.
    let check = db_check(&args.pg_addr, db).await?;

    // Latency: post start → first assignment receipt.
    let mut latency = latency_histogram()?;
    let (assigned_seen, seen_by_two, double_notified) = {
        let map = tracker.assignments.lock().map_err(|_| anyhow!("lock poisoned"))?;
        for seq in 0..args.conversations {
            let conversation = tracker.conversation_of[seq].load(Ordering::Relaxed);
            let start = tracker.started_us[seq].load(Ordering::Relaxed);
            if let (Some((_, at)), true) = (map.get(&conversation), start > 0) {
                let _ = latency.record(at.saturating_sub(start - 1).max(1));
            }
        }
        let two = map.values().filter(|(agents, _)| agents.iter().collect::<HashSet<_>>().len() > 1).count();
        let again = map.values().filter(|(agents, _)| agents.len() > 1).count();
        (map.len() as u64, two as u64, again as u64)
    };
    let assigned_not_seen = check["assigned_conversations"].as_u64().unwrap_or(0).saturating_sub(assigned_seen);
    let failed = tracker.failed.load(Ordering::Relaxed);
    let resolve_failed = tracker.resolve_failed.load(Ordering::Relaxed);
    let inv = &check["invariants"];
    let zero = |k: &str| inv[k].as_u64() == Some(0);
    let ok = zero("double_assignments")
        && zero("agents_over_capacity")
        && zero("load_mismatches_at_end")
        && zero("stuck_queued_with_room")
        && samples["samples_with_agent_over_capacity"].as_u64() == Some(0)
        && seen_by_two == 0
        && assigned_not_seen == 0
        && failed == 0
        && resolve_failed == 0
        && still_open == args.agents
        && check["assigned_conversations"].as_u64() == Some(acked);
    let resolve_errors = tracker.resolve_errors.lock().map(|l| l.clone()).unwrap_or_default();
    let first_errors = tracker.first_errors.lock().map(|l| l.clone()).unwrap_or_default();
    Ok(json!({
        "setup_secs": round1(setup_secs),
        "posted": args.conversations,
        "acknowledged": acked,
        "failed_posts": failed,
        "first_errors": first_errors,
        "posts_done_secs": round3(posts_done),
        "acked_posts_per_sec": round1(acked as f64 / posts_done.max(1e-9)),
        "assignments_seen_by_agents": assigned_seen,
        "assignment_events_received": tracker.assignment_events.load(Ordering::Relaxed),
        "assignments_per_sec": round1(if last_assignment > 0.0 { assigned_seen as f64 / last_assignment } else { 0.0 }),
        "assignments_per_sec_db": check["assignments_per_sec_db"].clone(),
        "resolved": tracker.resolved_ok.load(Ordering::Relaxed),
        "resolve_failed": resolve_failed,
        "resolve_first_errors": resolve_errors,
        "latency_post_to_assignment": summary(&latency),
        "latency_post_to_http_ack": tracker.ack_latency.lock().map(|h| summary(&h)).unwrap_or(Value::Null),
        "cpu_cores_used": cpu_used,
        "agent_sockets_open_at_end": still_open,
        "db": check,
        "live_samples": samples,
        "invariants": {
            "double_assignments_db": inv["double_assignments"].clone(),
            "assignment_seen_by_two_agents": seen_by_two,
            "assignment_notified_twice": double_notified,
            "agents_over_capacity_db": inv["agents_over_capacity"].clone(),
            "max_over_capacity_db": inv["max_over_capacity"].clone(),
            "load_mismatches_at_end": inv["load_mismatches_at_end"].clone(),
            "samples_with_agent_over_capacity": samples["samples_with_agent_over_capacity"].clone(),
            "stuck_queued_with_room": inv["stuck_queued_with_room"].clone(),
            "assigned_in_db_but_not_seen_by_an_agent": assigned_not_seen,
        },
        "verdict": { "ok": ok },
    }))
}

/// One agent: on each assignment of a conversation to them, resolve it (after `hold_ms`).
async fn agent_loop(
    mut rx: mpsc::Receiver<sio::Event>,
    client: Arc<SioClient>,
    me: u64,
    tracker: Arc<Tracker>,
    hold_ms: u64,
) {
    let mut mine: HashSet<u64> = HashSet::new();
    while let Some(event) = rx.recv().await {
        if event.name != "conversation" {
            continue;
        }
        let d = &event.data;
        let (Some(id), Some(assignee)) =
            (d.get("id").and_then(Value::as_u64), d.get("assignee_id").and_then(Value::as_u64))
        else {
            continue;
        };
        if d.get("state").and_then(Value::as_str) != Some("assigned") {
            continue;
        }
        let now = tracker.now_us();
        if let Ok(mut map) = tracker.assignments.lock() {
            let entry = map.entry(id).or_insert_with(|| (Vec::new(), now));
            entry.0.push(assignee);
        }
        if assignee != me || !mine.insert(id) {
            continue;
        }
        tracker.assignment_events.fetch_add(1, Ordering::Relaxed);
        tracker.last_assignment_us.fetch_max(now, Ordering::Relaxed);
        let (client, tracker) = (client.clone(), tracker.clone());
        tokio::spawn(async move {
            if hold_ms > 0 {
                tokio::time::sleep(Duration::from_millis(hold_ms)).await;
            }
            match client.request("resolve", json!({ "conversation_id": id }), Duration::from_secs(30)).await {
                Ok(ack) if ack.get("ok").and_then(Value::as_bool) == Some(true) => {
                    tracker.resolved_ok.fetch_add(1, Ordering::Relaxed);
                }
                Ok(ack) => {
                    tracker.resolve_failed.fetch_add(1, Ordering::Relaxed);
                    tracker.error(&tracker.resolve_errors, ack.to_string());
                }
                Err(e) => {
                    tracker.resolve_failed.fetch_add(1, Ordering::Relaxed);
                    tracker.error(&tracker.resolve_errors, e.to_string());
                }
            }
        });
    }
}

/// Samples the database every 500 ms while `running`: agents over capacity, queued
/// conversations, free slots of available agents.
async fn sample_db(addr: String, db: String, running: Arc<std::sync::atomic::AtomicBool>) -> Value {
    let sql = "SELECT (SELECT count(*) FROM users WHERE active_load > capacity), \
               (SELECT count(*) FROM conversations WHERE state = 'queued'), \
               (SELECT coalesce(sum(capacity - active_load), 0) FROM users WHERE role = 'agent' AND status = 'available' AND active_load < capacity)";
    let (mut samples, mut over, mut queued_with_room, mut max_queued, mut errors) = (0u64, 0u64, 0u64, 0u64, 0u64);
    while running.load(Ordering::Relaxed) {
        match psql_rows(&addr, &db, sql).await {
            Ok(row) => {
                let f: Vec<u64> = row.split('|').filter_map(|v| v.trim().parse().ok()).collect();
                if let [o, q, free] = f[..] {
                    samples += 1;
                    over += (o > 0) as u64;
                    queued_with_room += (q > 0 && free > 0) as u64;
                    max_queued = max_queued.max(q);
                }
            }
            Err(_) => errors += 1,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    json!({
        "samples": samples,
        "samples_with_agent_over_capacity": over,
        "samples_with_queued_and_free_slots": queued_with_room,
        "max_queued": max_queued,
        "sample_errors": errors,
    })
}

/// Reads `conversation_events`, `users` and `conversations` and replays the events.
async fn db_check(addr: &str, db: &str) -> anyhow::Result<Value> {
    let events = psql_rows(
        addr,
        db,
        "SELECT id, conversation_id, kind, coalesce(actor_user_id, 0), created_at FROM conversation_events ORDER BY id",
    )
    .await?;
    let capacity: HashMap<i64, i64> = psql_rows(addr, db, "SELECT id, capacity FROM users")
        .await?
        .lines()
        .filter_map(|l| l.split_once('|'))
        .filter_map(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .collect();
    let replayed = replay(events.lines().filter_map(parse_event), &capacity);
    let Replay {
        events_read,
        kinds,
        assigned_conversations,
        assigned_events,
        first_assigned_at,
        last_assigned_at,
        double,
        over_agents,
        max_over,
        max_load,
        release_unheld,
    } = replayed;
    let mismatches: u64 = psql_rows(
        addr,
        db,
        "SELECT count(*) FROM users u WHERE u.active_load <> (SELECT count(*) FROM conversations c \
         WHERE c.assignee_id = u.id AND c.state IN ('assigned', 'waiting_on_customer'))",
    )
    .await?
    .parse()
    .unwrap_or(u64::MAX);
    let end = psql_rows(
        addr,
        db,
        "SELECT (SELECT count(*) FROM conversations WHERE state = 'queued'), \
         (SELECT coalesce(sum(capacity - active_load), 0) FROM users WHERE role = 'agent' AND status = 'available' AND active_load < capacity), \
         (SELECT count(*) FROM conversations WHERE state = 'assigned'), \
         (SELECT count(*) FROM conversations)",
    )
    .await?;
    let e: Vec<u64> = end.split('|').filter_map(|v| v.trim().parse().ok()).collect();
    let [queued, free, assigned_open, conversations] = e[..] else { bail!("unexpected end-state row: {end}") };
    let stuck = if free > 0 { queued } else { 0 };
    let span_ms = last_assigned_at.saturating_sub(first_assigned_at);
    Ok(json!({
        "events_read": events_read,
        "events_by_kind": kinds,
        "conversations": conversations,
        "assigned_conversations": assigned_conversations,
        "assigned_events": assigned_events,
        "assigned_span_secs": if span_ms > 0 { Some(span_ms as f64 / 1000.0) } else { None },
        "assignments_per_sec_db": if span_ms > 0 { Some(round1(assigned_events as f64 * 1000.0 / span_ms as f64)) } else { None },
        "max_load_seen": max_load,
        "releases_of_unheld_conversations": release_unheld,
        "queued_at_end": queued,
        "free_slots_at_end": free,
        "assigned_open_at_end": assigned_open,
        "invariants": {
            "double_assignments": double,
            "agents_over_capacity": over_agents,
            "max_over_capacity": max_over,
            "load_mismatches_at_end": mismatches,
            "stuck_queued_with_room": stuck,
        },
    }))
}

/// CPU seconds of the nodes, of all `postgres` and `redis-server` processes, and of loadgen.
struct CpuSnapshot {
    nodes: Vec<Option<f64>>,
    postgres: f64,
    redis: f64,
    me: Option<f64>,
}

impl CpuSnapshot {
    fn take(pids: &[u32]) -> CpuSnapshot {
        CpuSnapshot {
            nodes: pids.iter().map(|p| crate::server::cpu_seconds(*p)).collect(),
            postgres: crate::server::cpu_of_named("postgres"),
            redis: crate::server::cpu_of_named("redis-server"),
            me: crate::server::cpu_seconds(std::process::id()),
        }
    }

    fn since(&self, pids: &[u32], wall: f64) -> Value {
        let now = CpuSnapshot::take(pids);
        let per = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(((b - a) / wall * 1000.0).round() / 1000.0),
            _ => None,
        };
        json!({
            "node_a": per(self.nodes[0], now.nodes[0]),
            "node_b": per(self.nodes[1], now.nodes[1]),
            "postgres_all_processes": per(Some(self.postgres), Some(now.postgres)),
            "redis_server": per(Some(self.redis), Some(now.redis)),
            "loadgen": per(self.me, now.me),
            "note": "cores busy on average over the posting and draining window; Postgres and Redis are shared with anything else running on the machine",
        })
    }
}


async fn drop_redis_prefix(url: &str, prefix: &str) {
    let Some(hostport) = url.strip_prefix("redis://") else { return };
    let (host, port) = hostport.trim_end_matches('/').rsplit_once(':').unwrap_or((hostport, "6379"));
    let Ok(out) = tokio::process::Command::new("redis-cli")
        .args(["-h", host, "-p", port, "--scan", "--pattern", &format!("{prefix}*")])
        .output()
        .await
    else {
        return;
    };
    let keys: Vec<String> =
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).filter(|k| !k.is_empty()).collect();
    for chunk in keys.chunks(500) {
        let _ =
            tokio::process::Command::new("redis-cli").args(["-h", host, "-p", port, "DEL"]).args(chunk).output().await;
    }
}

fn unix_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
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
        "== routing-nodes (2 nodes, Postgres + Redis, {} agents × {}, {} conversations) ==",
        p["agents"], p["agent_capacity"], p["conversations"]
    );
    println!(
        "acked {} of {} posts ({} failed), {} posts/s; assignments seen {} → {} /s (agents), {} /s (database); resolved {} ({} failed)",
        f["acknowledged"],
        f["posted"],
        f["failed_posts"],
        f["acked_posts_per_sec"],
        f["assignments_seen_by_agents"],
        f["assignments_per_sec"],
        f["assignments_per_sec_db"],
        f["resolved"],
        f["resolve_failed"]
    );
    println!("post → assignment: {}", f["latency_post_to_assignment"]);
    println!("post → HTTP ack:   {}", f["latency_post_to_http_ack"]);
    println!("cpu cores: {}", f["cpu_cores_used"]);
    println!("invariants: {i}");
    println!("live samples: {}", f["live_samples"]);
}

/// One `conversation_events` row: (id, conversation, kind, actor or 0, created_at).
type EventRow = (i64, i64, String, i64, i64);

fn parse_event(line: &str) -> Option<EventRow> {
    let f: Vec<&str> = line.split('|').collect();
    let [id, conversation, kind, actor, at] = f[..] else { return None };
    Some((id.parse().ok()?, conversation.parse().ok()?, kind.to_string(), actor.parse().ok()?, at.parse().ok()?))
}

/// What replaying the events in id order found.
#[derive(Debug, Default, PartialEq)]
struct Replay {
    events_read: u64,
    kinds: HashMap<String, u64>,
    assigned_conversations: u64,
    assigned_events: u64,
    first_assigned_at: i64,
    last_assigned_at: i64,
    /// `assigned` events for a conversation the replay says is already held.
    double: u64,
    /// Agents whose replayed load went above their capacity at some point, and by how much at most.
    over_agents: u64,
    max_over: i64,
    max_load: i64,
    /// `resolved`/`requeued` of a conversation nobody held (legal: closing a queued one).
    release_unheld: u64,
}

/// Replays events (in id order): `assigned` gives the conversation to its actor (+1 load),
/// `resolved` and `requeued` take it from whoever holds it (−1).
fn replay(events: impl Iterator<Item = EventRow>, capacity: &HashMap<i64, i64>) -> Replay {
    let mut r = Replay { first_assigned_at: i64::MAX, last_assigned_at: i64::MIN, ..Replay::default() };
    let mut holder: HashMap<i64, i64> = HashMap::new();
    let mut load: HashMap<i64, i64> = HashMap::new();
    let mut peak: HashMap<i64, i64> = HashMap::new();
    let mut assigned: HashSet<i64> = HashSet::new();
    for (_, conversation, kind, actor, at) in events {
        r.events_read += 1;
        *r.kinds.entry(kind.clone()).or_default() += 1;
        match kind.as_str() {
            "assigned" => {
                r.assigned_events += 1;
                assigned.insert(conversation);
                r.first_assigned_at = r.first_assigned_at.min(at);
                r.last_assigned_at = r.last_assigned_at.max(at);
                if holder.contains_key(&conversation) {
                    r.double += 1;
                    continue;
                }
                holder.insert(conversation, actor);
                let l = load.entry(actor).or_default();
                *l += 1;
                let p = peak.entry(actor).or_default();
                *p = (*p).max(*l);
            }
            "resolved" | "requeued" => match holder.remove(&conversation) {
                Some(agent) => *load.entry(agent).or_default() -= 1,
                None => r.release_unheld += 1,
            },
            _ => {}
        }
    }
    r.assigned_conversations = assigned.len() as u64;
    r.max_load = peak.values().max().copied().unwrap_or(0);
    for (agent, p) in &peak {
        let cap = capacity.get(agent).copied().unwrap_or(0);
        if *p > cap {
            r.over_agents += 1;
            r.max_over = r.max_over.max(p - cap);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: i64, conversation: i64, kind: &str, actor: i64) -> EventRow {
        (id, conversation, kind.to_string(), actor, id)
    }

    #[test]
    fn replay_finds_double_assignments_and_over_capacity() {
        let capacity = HashMap::from([(1, 1), (2, 2)]);
        let clean =
            [ev(1, 10, "created", 0), ev(2, 10, "assigned", 1), ev(3, 10, "resolved", 1), ev(4, 11, "assigned", 1)];
        let r = replay(clean.into_iter(), &capacity);
        assert_eq!((r.double, r.over_agents, r.max_load, r.assigned_conversations), (0, 0, 1, 2));

        let double = [ev(1, 10, "assigned", 1), ev(2, 10, "assigned", 2)];
        assert_eq!(replay(double.into_iter(), &capacity).double, 1);
        // After a requeue, a second assignment is legal.
        let requeued = [ev(1, 10, "assigned", 1), ev(2, 10, "requeued", 1), ev(3, 10, "assigned", 2)];
        assert_eq!(replay(requeued.into_iter(), &capacity).double, 0);

        let over = [ev(1, 10, "assigned", 1), ev(2, 11, "assigned", 1), ev(3, 10, "resolved", 1)];
        let r = replay(over.into_iter(), &capacity);
        assert_eq!((r.over_agents, r.max_over), (1, 1));
        // A resolve frees the holder's slot even when someone else (a supervisor) resolved it.
        let freed = [ev(1, 10, "assigned", 1), ev(2, 10, "resolved", 99), ev(3, 11, "assigned", 1)];
        assert_eq!(replay(freed.into_iter(), &capacity).over_agents, 0);
    }

    #[test]
    fn parses_psql_rows() {
        assert_eq!(parse_event("7|10|assigned|3|1700"), Some((7, 10, "assigned".into(), 3, 1700)));
        assert_eq!(parse_event("garbage"), None);
    }
}

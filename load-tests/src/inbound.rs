//! Scenario `inbound`: customers' messages arrive through the API channel at a fixed rate and
//! must reach the assigned agent's console live.
//!
//! Stage: one API inbox, `agents` agents each connected to `/agent` and available, with enough
//! capacity to hold every conversation (the scenario never resolves any). A warm-up opens
//! `contacts` conversations (closed loop, 32 at a time, not part of the timed figures except as
//! the conversation-open rate). Then `rate × duration` messages are posted on an open-loop
//! schedule (message `i` is due at `start + i / rate`, whatever happened to earlier ones), at
//! most `in_flight` requests at once: every `new_every`-th message comes from a new contact and
//! opens a conversation, the others go to the warmed-up contacts (spread evenly), so the mix of
//! "open a conversation" and "append to one" stays steady through the run.
//!
//! Per message it records the HTTP ack latency (request start → response read) and the
//! end-to-end latency (request start → the assigned agent's socket delivers the `message`
//! frame), matched by the message's `platform_message_id`. At the end: sent, acknowledged,
//! received, lost (acknowledged but never received within the drain timeout), duplicated
//! (received more than once), throughput and latency percentiles.
//!
//! Every loop is bounded: the schedule by its message count, the drain by its timeout, the
//! reader tasks by their connections' lifetimes (closed at the end).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use crate::api::{Api, ApiInbox};
use crate::report::{latency_histogram, summary};
use crate::server::{Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::sio::{self, ConnectOptions, SioClient};
use crate::{Common, Pinning};

#[derive(clap::Args, Clone, Debug)]
pub struct InboundArgs {
    #[command(flatten)]
    pub common: Common,
    /// Agents connected and available.
    #[arg(long, default_value_t = 50)]
    pub agents: usize,
    /// Target rate of customer messages per second.
    #[arg(long, default_value_t = 500)]
    pub rate: u64,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Conversations opened in the warm-up; the timed messages that do not open a conversation
    /// go to these.
    #[arg(long, default_value_t = 1000)]
    pub contacts: u64,
    /// Every N-th timed message opens a new conversation (0: none do).
    #[arg(long, default_value_t = 10)]
    pub new_every: u64,
    /// Most requests in flight at once.
    #[arg(long, default_value_t = 256)]
    pub in_flight: usize,
    /// How long to wait after the last request for outstanding deliveries, in seconds.
    #[arg(long, default_value_t = 15.0)]
    pub drain_timeout: f64,
}

/// Per-message bookkeeping shared by the senders and the agents' readers. Indexed by the
/// message's sequence number; atomics because senders and readers run concurrently.
struct Tracker {
    base: Instant,
    /// Request start, µs since `base`, plus one (0 = not started).
    started_us: Vec<AtomicU64>,
    acked: Vec<AtomicBool>,
    /// The conversation the server filed the message in (from the 201 answer), for diagnosing
    /// losses.
    conversation_of: Vec<AtomicU64>,
    received: Vec<AtomicU32>,
    first_receipts: AtomicU64,
    /// Warm-up messages the agents received.
    warm_receipts: AtomicU64,
    acked_total: AtomicU64,
    last_ack_us: AtomicU64,
    last_receipt_us: AtomicU64,
}

impl Tracker {
    fn new(total: usize) -> Tracker {
        Tracker {
            base: Instant::now(),
            started_us: (0..total).map(|_| AtomicU64::new(0)).collect(),
            acked: (0..total).map(|_| AtomicBool::new(false)).collect(),
            conversation_of: (0..total).map(|_| AtomicU64::new(0)).collect(),
            received: (0..total).map(|_| AtomicU32::new(0)).collect(),
            first_receipts: AtomicU64::new(0),
            warm_receipts: AtomicU64::new(0),
            acked_total: AtomicU64::new(0),
            last_ack_us: AtomicU64::new(0),
            last_receipt_us: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }
}

/// HTTP-side results, behind one mutex (locked briefly, never across an await).
struct SendStats {
    ack_latency: Histogram<u64>,
    schedule_lag: Histogram<u64>,
    statuses: BTreeMap<String, u64>,
    first_errors: Vec<String>,
}

/// What one agent's reader saw.
struct ReaderStats {
    e2e_new: Histogram<u64>,
    e2e_existing: Histogram<u64>,
    conversation_events: u64,
    foreign_messages: u64,
    /// Conversations this agent was told are assigned (to anyone: the event goes to the
    /// assignee's sockets, so in practice to this agent).
    assigned_seen: HashSet<u64>,
}

/// Runs the scenario; returns `Ok(true)` when nothing was lost, duplicated or refused.
pub async fn run(args: InboundArgs, pinning: Pinning) -> anyhow::Result<bool> {
    let total = (args.rate as f64 * args.duration).round() as usize;
    if total == 0 || args.agents == 0 || args.in_flight == 0 {
        bail!("rate × duration, agents and in-flight must be positive");
    }
    let contacts = args.contacts.max(1);
    let new_in_run = if args.new_every == 0 { 0 } else { (total as u64).div_ceil(args.new_every) };
    let per_agent = (contacts + new_in_run).div_ceil(args.agents as u64) as i64;
    // LeastLoaded spreads evenly; twice the fair share plus slack absorbs unevenness. The API
    // caps capacity at 1000.
    let capacity = (per_agent * 2 + 10).min(1000);
    if per_agent > 1000 {
        bail!(
            "{} conversations over {} agents exceed the per-agent capacity cap of 1000",
            contacts + new_in_run,
            args.agents
        );
    }
    let name = args.common.name.clone().unwrap_or_else(|| format!("inbound-{}-{}", args.common.db.as_str(), args.rate));
    let run_tag = format!("{:x}", std::process::id());

    println!("inbound: {} on {}, {} agents, {} msg/s for {} s ({total} messages), {contacts} warm contacts, every {}-th message opens a conversation", name, args.common.db.as_str(), args.agents, args.rate, args.duration, args.new_every);
    println!("pinning: {}", pinning.description);
    let server = Server::start(&args.common.server_options(&pinning, &name)).await?;
    println!("server pid {} at {}", server.pid, server.base_url);

    let outcome = drive(&args, &server, total, contacts, capacity, &run_tag).await;
    let exit = server.stop().await;
    let mut figures = outcome?;

    let header = crate::report::header("inbound", &pinning.description);
    let ok = figures["verdict"]["ok"].as_bool().unwrap_or(false);
    figures["server_log"] = json!({ "graceful_stop": exit.graceful, "warn_or_error_lines": exit.warn_lines.len(), "first": exit.warn_lines.iter().take(5).collect::<Vec<_>>() });
    let mut result = header;
    result["parameters"] = json!({
        "db": args.common.db.as_str(), "agents": args.agents, "agent_capacity": capacity, "rate_per_sec": args.rate,
        "duration_secs": args.duration, "messages": total, "warm_contacts": contacts, "new_conversation_every": args.new_every, "in_flight": args.in_flight,
        "drain_timeout_secs": args.drain_timeout,
    });
    result["server_binary"] = crate::report::binary_info(&args.common.server_bin);
    result["figures"] = figures;
    let path = crate::report::write(&args.common.results_dir, &name, &result)?;
    print_summary(&result);
    if !exit.warn_lines.is_empty() {
        println!("server logged {} WARN/ERROR line(s), first: {}", exit.warn_lines.len(), exit.warn_lines[0]);
    }
    println!("results: {}", path.display());
    Ok(ok)
}

async fn drive(
    args: &InboundArgs,
    server: &Server,
    total: usize,
    contacts: u64,
    capacity: i64,
    run_tag: &str,
) -> anyhow::Result<Value> {
    let api = Api::new(&server.base_url, args.in_flight)?;
    let admin = api.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.context("admin login")?;
    let inbox = api.create_api_inbox(&admin, "loadgen").await?;

    // Agents: created and logged in 4 at a time (password hashing is deliberately slow).
    let setup_started = Instant::now();
    let agents: Vec<_> = futures::stream::iter(0..args.agents)
        .map(|i| {
            let (api, admin) = (api.clone(), admin.clone());
            async move { api.create_agent(&admin, &format!("agent-{i}"), capacity).await }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let agents = agents.into_iter().collect::<anyhow::Result<Vec<_>>>()?;

    let tracker = Arc::new(Tracker::new(total));
    let mut clients: Vec<SioClient> = Vec::with_capacity(agents.len());
    let mut readers = Vec::with_capacity(agents.len());
    for agent in &agents {
        let (tx, mut rx) = mpsc::channel(4096);
        let client = sio::connect(
            &server.base_url,
            ConnectOptions {
                namespace: "/agent".into(),
                auth: json!({ "token": agent.token }),
                timeout: Duration::from_secs(10),
                events: Some(tx),
            },
        )
        .await
        .with_context(|| format!("agent {} connect", agent.id))?;
        // `hello` first, then become available.
        let hello_deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ev = tokio::time::timeout_at(hello_deadline, rx.recv())
                .await
                .map_err(|_| anyhow!("agent {}: no hello", agent.id))?;
            match ev {
                Some(ev) if ev.name == "hello" => break,
                Some(_) => continue,
                None => bail!("agent {}: connection closed before hello", agent.id),
            }
        }
        let ack = client.request("status", json!({ "status": "available" }), Duration::from_secs(10)).await?;
        if ack.get("ok").and_then(Value::as_bool) != Some(true) {
            bail!("agent {}: status available refused: {ack}", agent.id);
        }
        let stats = ReaderStats {
            e2e_new: latency_histogram()?,
            e2e_existing: latency_histogram()?,
            conversation_events: 0,
            foreign_messages: 0,
            assigned_seen: HashSet::new(),
        };
        readers.push(tokio::spawn(read_agent(rx, tracker.clone(), args.new_every, run_tag.to_string(), stats)));
        clients.push(client);
    }
    let setup_secs = setup_started.elapsed().as_secs_f64();
    println!("setup: {} agents connected and available in {setup_secs:.1} s", agents.len());

    // Warm-up: open the warm conversations, 32 requests at a time, and wait (bounded) until
    // their first messages reached the agents.
    let warm_started = Instant::now();
    let warm: Vec<anyhow::Result<()>> = futures::stream::iter(0..contacts)
        .map(|n| {
            let (api, inbox) = (api.clone(), &inbox);
            let body = json!({
                "message_id": format!("lt-{run_tag}-w{n}"),
                "contact": { "id": format!("contact-{n}"), "name": format!("Contact {n}") },
                "text": format!("loadgen warm-up {n}"),
            });
            async move {
                let url = format!("{}/api/v1/channels/api/{}/messages", api.base, inbox.id);
                let res = api.http.post(url).bearer_auth(&inbox.inbound_token).json(&body).send().await?;
                let status = res.status();
                if !status.is_success() {
                    bail!("warm-up message answered {status}: {}", res.text().await.unwrap_or_default());
                }
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    warm.into_iter().collect::<anyhow::Result<Vec<()>>>().context("warm-up")?;
    let warm_acked_secs = warm_started.elapsed().as_secs_f64();
    let warm_deadline = Instant::now() + Duration::from_secs(30);
    while tracker.warm_receipts.load(Ordering::Relaxed) < contacts && Instant::now() < warm_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let warm_received = tracker.warm_receipts.load(Ordering::Relaxed);
    if warm_received < contacts {
        bail!("warm-up: agents received {warm_received} of {contacts} opening messages within 30 s");
    }
    println!(
        "warm-up: {contacts} conversations opened in {warm_acked_secs:.2} s ({:.0}/s, 32 in flight); sending…",
        contacts as f64 / warm_acked_secs
    );

    let stats = Arc::new(Mutex::new(SendStats {
        ack_latency: latency_histogram()?,
        schedule_lag: latency_histogram()?,
        statuses: BTreeMap::new(),
        first_errors: Vec::new(),
    }));
    let inbox = Arc::new(inbox);
    let semaphore = Arc::new(Semaphore::new(args.in_flight));
    let cpu_before = server.cpu_seconds();
    let self_cpu_before = crate::server::cpu_seconds(std::process::id());
    let started = Instant::now();
    let tracker_start_us = tracker.now_us();
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let mut progress_at = started + Duration::from_secs(5);

    // The open-loop schedule: bounded by `total`; a full semaphore delays the send (recorded
    // as schedule lag) instead of dropping it.
    for seq in 0..total {
        let due = started + interval.mul_f64(seq as f64);
        tokio::time::sleep_until(due).await;
        let permit = semaphore.clone().acquire_owned().await.context("semaphore closed")?;
        let lag_us = due.elapsed().as_micros() as u64;
        let (api, inbox, task_tracker, stats) = (api.clone(), inbox.clone(), tracker.clone(), stats.clone());
        let contact = contact_for(seq as u64, contacts, args.new_every);
        let message_id = format!("lt-{run_tag}-{seq}");
        tokio::spawn(async move {
            let _permit = permit;
            post_one(&api, &inbox, &task_tracker, &stats, seq, contact, message_id, lag_us).await;
        });
        if Instant::now() >= progress_at {
            progress_at += Duration::from_secs(5);
            let acked = tracker.acked_total.load(Ordering::Relaxed);
            let received = tracker.first_receipts.load(Ordering::Relaxed);
            println!(
                "  t={:>4.0}s sent {} acked {acked} received {received}",
                started.elapsed().as_secs_f64(),
                seq + 1
            );
        }
    }
    let send_window = started.elapsed().as_secs_f64();
    // Every request done: all permits back (each request has a 30 s client timeout).
    let all = semaphore.acquire_many(args.in_flight as u32).await.context("semaphore closed")?;
    drop(all);
    let requests_done = started.elapsed().as_secs_f64();

    // Drain: wait for the agents to receive what was acknowledged, bounded by the timeout.
    let drain_deadline = Instant::now() + Duration::from_secs_f64(args.drain_timeout);
    while Instant::now() < drain_deadline {
        let acked = tracker.acked_total.load(Ordering::Relaxed);
        let received_of_acked = (0..total)
            .filter(|&i| tracker.acked[i].load(Ordering::Relaxed) && tracker.received[i].load(Ordering::Relaxed) > 0)
            .count() as u64;
        if received_of_acked >= acked {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A short grace for stray duplicates, then close every socket, which ends the readers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_after = server.cpu_seconds();
    let self_cpu_after = crate::server::cpu_seconds(std::process::id());
    let wall = started.elapsed().as_secs_f64();
    let still_open = clients.iter().filter(|c| c.is_open()).count();
    for client in clients {
        client.close().await;
    }
    let mut e2e_new = latency_histogram()?;
    let mut e2e_existing = latency_histogram()?;
    let (mut conversation_events, mut foreign_messages) = (0, 0);
    let mut assigned_seen = HashSet::new();
    for reader in readers {
        let r = tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .context("reader did not stop")?
            .context("reader panicked")?;
        e2e_new.add(&r.e2e_new).context("merging histograms")?;
        e2e_existing.add(&r.e2e_existing).context("merging histograms")?;
        conversation_events += r.conversation_events;
        foreign_messages += r.foreign_messages;
        assigned_seen.extend(r.assigned_seen);
    }
    let mut e2e = e2e_new.clone();
    e2e.add(&e2e_existing).context("merging histograms")?;

    // Tally.
    let (mut sent, mut acked, mut received, mut lost, mut duplicated, mut received_unacked) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut lost_examples = Vec::new();
    for i in 0..total {
        let was_sent = tracker.started_us[i].load(Ordering::Relaxed) > 0;
        let was_acked = tracker.acked[i].load(Ordering::Relaxed);
        let times = tracker.received[i].load(Ordering::Relaxed);
        sent += was_sent as u64;
        acked += was_acked as u64;
        received += (times > 0) as u64;
        duplicated += (times > 1) as u64;
        if was_acked && times == 0 {
            lost += 1;
            if lost_examples.len() < 10 {
                let conversation = tracker.conversation_of[i].load(Ordering::Relaxed);
                lost_examples.push(json!({
                    "message_id": format!("lt-{run_tag}-{i}"),
                    "opened_conversation": opens_conversation(i as u64, args.new_every),
                    "conversation_id": conversation,
                    "assignment_event_seen": assigned_seen.contains(&conversation),
                }));
            }
        }
        received_unacked += (!was_acked && times > 0) as u64;
    }
    let stats = stats.lock().map_err(|_| anyhow!("stats lock poisoned"))?;
    let failed_requests = total as u64 - acked;
    let secs = |us: u64| us.saturating_sub(tracker_start_us) as f64 / 1e6;
    let last_ack = secs(tracker.last_ack_us.load(Ordering::Relaxed));
    let last_receipt = secs(tracker.last_receipt_us.load(Ordering::Relaxed));
    let server_cpu = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => Some(((b - a) / wall * 1000.0).round() / 1000.0),
        _ => None,
    };
    let loadgen_cpu = match (self_cpu_before, self_cpu_after) {
        (Some(a), Some(b)) => Some(((b - a) / wall * 1000.0).round() / 1000.0),
        _ => None,
    };
    let ok = lost == 0 && duplicated == 0 && failed_requests == 0 && still_open == args.agents;
    Ok(json!({
        "setup_secs": (setup_secs * 10.0).round() / 10.0,
        "warmup_conversations_opened_per_sec": round1(contacts as f64 / warm_acked_secs),
        "sent": sent,
        "acknowledged": acked,
        "received": received,
        "lost": lost,
        "lost_examples": lost_examples,
        "duplicated": duplicated,
        "received_but_not_acknowledged": received_unacked,
        "http_statuses": stats.statuses,
        "http_first_errors": stats.first_errors,
        "send_window_secs": round3(send_window),
        "requests_done_secs": round3(requests_done),
        "offered_rate_per_sec": round1(sent as f64 / send_window),
        "acked_throughput_per_sec": round1(if last_ack > 0.0 { acked as f64 / last_ack } else { 0.0 }),
        "delivered_throughput_per_sec": round1(if last_receipt > 0.0 { received as f64 / last_receipt } else { 0.0 }),
        "latency_end_to_end": summary(&e2e),
        "latency_end_to_end_new_conversation": summary(&e2e_new),
        "latency_end_to_end_existing_conversation": summary(&e2e_existing),
        "latency_http_ack": summary(&stats.ack_latency),
        "schedule_lag": summary(&stats.schedule_lag),
        "conversation_events": conversation_events,
        "foreign_message_events": foreign_messages,
        "agent_sockets_open_at_end": still_open,
        "server_cpu_cores_used": server_cpu,
        "loadgen_cpu_cores_used": loadgen_cpu,
        "verdict": { "ok": ok },
    }))
}

#[allow(clippy::too_many_arguments)] // one request's whole context; a struct would only rename it
async fn post_one(
    api: &Api,
    inbox: &ApiInbox,
    tracker: &Tracker,
    stats: &Mutex<SendStats>,
    seq: usize,
    contact: u64,
    message_id: String,
    lag_us: u64,
) {
    let body = json!({
        "message_id": message_id,
        "contact": { "id": format!("contact-{contact}"), "name": format!("Contact {contact}") },
        "text": format!("loadgen message {seq}"),
    });
    let url = format!("{}/api/v1/channels/api/{}/messages", api.base, inbox.id);
    let start_us = tracker.now_us();
    tracker.started_us[seq].store(start_us + 1, Ordering::Relaxed);
    let result = api.http.post(url).bearer_auth(&inbox.inbound_token).json(&body).send().await;
    let outcome = match result {
        Ok(res) => {
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            if let Some(c) =
                serde_json::from_str::<Value>(&text).ok().and_then(|v| v.get("conversation_id").and_then(Value::as_u64))
            {
                tracker.conversation_of[seq].store(c, Ordering::Relaxed);
            }
            Ok((status, text))
        }
        Err(e) => Err(e),
    };
    let done_us = tracker.now_us();
    let (key, error) = match &outcome {
        Ok((status, _)) if status.is_success() => {
            tracker.acked[seq].store(true, Ordering::Relaxed);
            tracker.acked_total.fetch_add(1, Ordering::Relaxed);
            tracker.last_ack_us.fetch_max(done_us, Ordering::Relaxed);
            (status.as_u16().to_string(), None)
        }
        Ok((status, text)) => {
            (status.as_u16().to_string(), Some(format!("{status}: {}", text.chars().take(200).collect::<String>())))
        }
        Err(e) => ("transport_error".to_string(), Some(e.to_string())),
    };
    let Ok(mut s) = stats.lock() else { return };
    *s.statuses.entry(key).or_default() += 1;
    if matches!(&outcome, Ok((st, _)) if st.is_success()) {
        let _ = s.ack_latency.record(done_us.saturating_sub(start_us).max(1));
    }
    let _ = s.schedule_lag.record(lag_us.max(1));
    if let Some(e) = error {
        if s.first_errors.len() < 10 {
            s.first_errors.push(e);
        }
    }
}

/// One agent's event loop: ends when its connection closes.
async fn read_agent(
    mut rx: mpsc::Receiver<sio::Event>,
    tracker: Arc<Tracker>,
    new_every: u64,
    run_tag: String,
    mut stats: ReaderStats,
) -> ReaderStats {
    let prefix = format!("lt-{run_tag}-");
    let warm_prefix = format!("lt-{run_tag}-w");
    while let Some(event) = rx.recv().await {
        match event.name.as_str() {
            "message" => {
                let now_us = tracker.now_us();
                let seq = event
                    .data
                    .get("platform_message_id")
                    .and_then(Value::as_str)
                    .and_then(|id| id.strip_prefix(prefix.as_str()))
                    .and_then(|s| s.parse::<usize>().ok())
                    .filter(|&s| s < tracker.received.len());
                let Some(seq) = seq else {
                    let warm = event
                        .data
                        .get("platform_message_id")
                        .and_then(Value::as_str)
                        .is_some_and(|id| id.starts_with(warm_prefix.as_str()));
                    if warm {
                        tracker.warm_receipts.fetch_add(1, Ordering::Relaxed);
                    } else {
                        stats.foreign_messages += 1;
                    }
                    continue;
                };
                if tracker.received[seq].fetch_add(1, Ordering::Relaxed) == 0 {
                    tracker.first_receipts.fetch_add(1, Ordering::Relaxed);
                    tracker.last_receipt_us.fetch_max(now_us, Ordering::Relaxed);
                    let started = tracker.started_us[seq].load(Ordering::Relaxed);
                    if started > 0 {
                        let latency = now_us.saturating_sub(started - 1).max(1);
                        let h = if opens_conversation(seq as u64, new_every) {
                            &mut stats.e2e_new
                        } else {
                            &mut stats.e2e_existing
                        };
                        let _ = h.record(latency);
                    }
                }
            }
            "conversation" => {
                stats.conversation_events += 1;
                if let (Some(id), Some(_)) = (
                    event.data.get("id").and_then(Value::as_u64),
                    event.data.get("assignee_id").and_then(Value::as_u64),
                ) {
                    stats.assigned_seen.insert(id);
                }
            }
            _ => {}
        }
    }
    stats
}

/// True when timed message `seq` comes from a new contact.
fn opens_conversation(seq: u64, new_every: u64) -> bool {
    new_every != 0 && seq % new_every == 0
}

/// The contact index of timed message `seq`: a fresh one (numbered after the warm ones) for a
/// conversation opener, otherwise one of the `warm` contacts, visited round-robin.
fn contact_for(seq: u64, warm: u64, new_every: u64) -> u64 {
    if opens_conversation(seq, new_every) {
        warm + seq / new_every
    } else {
        seq % warm
    }
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
    let lat = |k: &str| {
        let s = &f[k];
        if s["count"].as_u64().unwrap_or(0) == 0 {
            "no samples".to_string()
        } else {
            format!(
                "p50 {} ms  p99 {} ms  p99.9 {} ms  max {} ms  (n={})",
                s["p50_ms"], s["p99_ms"], s["p999_ms"], s["max_ms"], s["count"]
            )
        }
    };
    println!();
    println!(
        "== inbound ({}, {} msg/s × {} s, {} agents, {} warm contacts) ==",
        p["db"].as_str().unwrap_or("?"),
        p["rate_per_sec"],
        p["duration_secs"],
        p["agents"],
        p["warm_contacts"]
    );
    println!(
        "commit {}  {}  {} × {}",
        result["commit"].as_str().unwrap_or("?"),
        result["date"].as_str().unwrap_or("?"),
        result["machine"]["cpus"],
        result["machine"]["cpu_model"].as_str().unwrap_or("?")
    );
    println!(
        "sent {}  acknowledged {}  received {}  LOST {}  DUPLICATED {}",
        f["sent"], f["acknowledged"], f["received"], f["lost"], f["duplicated"]
    );
    println!("http statuses {}", f["http_statuses"]);
    println!(
        "offered {} msg/s  acked {} msg/s  delivered {} msg/s",
        f["offered_rate_per_sec"], f["acked_throughput_per_sec"], f["delivered_throughput_per_sec"]
    );
    println!("end-to-end      {}", lat("latency_end_to_end"));
    println!("  new conv      {}", lat("latency_end_to_end_new_conversation"));
    println!("  existing conv {}", lat("latency_end_to_end_existing_conversation"));
    println!("http ack        {}", lat("latency_http_ack"));
    println!("schedule lag    {}", lat("schedule_lag"));
    println!("cpu: server {} cores, loadgen {} cores", f["server_cpu_cores_used"], f["loadgen_cpu_cores_used"]);
}

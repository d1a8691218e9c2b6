//! Scenario `peer`: Switchboard side by side with a reference server on the seed thesis's stack
//! (`load-tests/baselines/server.mjs`: Node.js + Socket.IO 4, `pg`), driven by the same client
//! with the same load, one target after the other within one invocation.
//!
//! Stage: `pairs` customers, each in a conversation served by one agent. On Switchboard: a web
//! inbox made over REST, `pairs` agents of capacity 1 connected to `/agent` and available, and
//! `pairs` widget customers on `/widget` who each send a first message, which opens their
//! conversation and routes it to an agent (capacity 1 gives every agent exactly one). On the
//! peer: agents join room `pair:<i>` on `/agent`, customer `i` connects to `/widget`.
//!
//! Load: every customer emits on a fixed period (`--interval-ms`), phases spread evenly, for
//! `--duration` seconds.
//! - `relay`: the widget's `typing` notice, which the server relays to the agent serving that
//!   conversation as `typing {conversation_id}` (Switchboard looks up the customer's
//!   conversation and publishes on its bus; it relays at most one notice per socket per second,
//!   so the period must be at least 1.1 s).
//! - `durable`: `message {client_message_id, text}` with an ack: Switchboard commits it to its
//!   database (conversation, message, events), acks, and pushes it to the assignee; the peer
//!   inserts it deduplicated on its id into Postgres, pushes it to the agent's room, acks.
//!
//! Figures per target: events sent / delivered (and for `durable`: acked, lost = acked but never
//! delivered, duplicated), delivered per second, latency emit → the agent's socket yields the
//! frame, the server's CPU (and Postgres's), and **delivered events per CPU-second of the server
//! process** — the comparison the benchmarks issue asks for (events/s per core used). Both
//! servers are pinned to the same core as the load generator pins its servers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::api::Api;
use crate::report::{latency_histogram, summary};
use crate::server::{cpu_of_named, cpu_seconds, Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::sio::{self, ConnectOptions, SioClient};
use crate::{Common, Pinning};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Relay,
    Durable,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Switchboard,
    Node,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Switchboard => "switchboard",
            Target::Node => "node",
        }
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct PeerArgs {
    #[command(flatten)]
    pub common: Common,
    /// What each customer emits.
    #[arg(long, value_enum, default_value = "relay")]
    pub mode: Mode,
    /// Which servers to run, in this order (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "switchboard,node")]
    pub targets: Vec<Target>,
    /// Customer–agent pairs (each one conversation).
    #[arg(long, default_value_t = 1000)]
    pub pairs: usize,
    /// Each customer's period between two emits, in ms (relay: at least 1100).
    #[arg(long, default_value_t = 1100)]
    pub interval_ms: u64,
    /// Timed phase per target, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// After the timed phase, how long to wait for the last deliveries, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub drain_timeout: f64,
    /// The reference server's directory (its `npm install` must have run).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/baselines"))]
    pub baseline_dir: PathBuf,
    /// The Node.js binary.
    #[arg(long, default_value = "node")]
    pub node_bin: String,
}

/// Send times and what arrived, shared by the customers and the agents' reader.
struct Tracker {
    base: Instant,
    /// relay: conversation → µs of the customer's latest typing emit (one outstanding at a time,
    /// the period being far longer than the latency).
    typing_sent: Mutex<HashMap<i64, u64>>,
    /// durable: sequence number → µs of the emit (+1; 0 = not sent).
    message_sent: Vec<AtomicU64>,
    message_received: Vec<AtomicU64>,
    sent: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    delivered: AtomicU64,
    duplicated: AtomicU64,
    first_errors: Mutex<Vec<String>>,
    latency: Mutex<hdrhistogram::Histogram<u64>>,
    last_delivery_us: AtomicU64,
}

impl Tracker {
    fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }
    fn error(&self, e: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut l) = self.first_errors.lock() {
            if l.len() < 10 {
                l.push(e);
            }
        }
    }
    fn record(&self, sent_us: u64) {
        let now = self.now_us();
        if let Ok(mut h) = self.latency.lock() {
            let _ = h.record(now.saturating_sub(sent_us).max(1));
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.last_delivery_us.fetch_max(now, Ordering::Relaxed);
    }
}

/// One customer's connection and the conversation (pair) it is in.
struct Customer {
    client: SioClient,
    conversation: i64,
}

/// A server under test: Switchboard (via [`Server`]) or the Node.js reference process.
pub(crate) enum Running {
    Switchboard(Server),
    Node { child: Child, pid: u32, base_url: String, pg_db: Option<String> },
}

impl Running {
    pub(crate) fn pid(&self) -> u32 {
        match self {
            Running::Switchboard(s) => s.pid,
            Running::Node { pid, .. } => *pid,
        }
    }
    pub(crate) fn base_url(&self) -> &str {
        match self {
            Running::Switchboard(s) => &s.base_url,
            Running::Node { base_url, .. } => base_url,
        }
    }
    pub(crate) async fn stop(self, pg_addr: &str) {
        match self {
            Running::Switchboard(s) => {
                s.stop().await;
            }
            Running::Node { mut child, pid, pg_db, .. } => {
                let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await;
                if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
                if let Some(db) = pg_db {
                    let _ = crate::server::drop_pg_database(pg_addr, &db).await;
                }
            }
        }
    }
}

pub async fn run(args: PeerArgs, pinning: Pinning) -> anyhow::Result<bool> {
    if args.mode == Mode::Relay && args.interval_ms < 1100 {
        bail!("relay: --interval-ms must be at least 1100 (Switchboard relays one typing notice per socket per second)");
    }
    let name = args.common.name.clone().unwrap_or_else(|| match args.mode {
        Mode::Relay => "peer-relay".into(),
        Mode::Durable => format!("peer-durable-{}", args.common.db.as_str()),
    });
    println!(
        "peer ({:?}): {} pairs, one emit per customer every {} ms ({:.0}/s offered), {} s per target, targets {:?}",
        args.mode,
        args.pairs,
        args.interval_ms,
        args.pairs as f64 * 1000.0 / args.interval_ms as f64,
        args.duration,
        args.targets
    );
    println!("pinning: {}", pinning.description);
    let mut results = serde_json::Map::new();
    let mut clean = true;
    for target in &args.targets {
        let figures = run_target(&args, *target, &pinning, &name).await?;
        clean &= figures.get("clean").and_then(Value::as_bool).unwrap_or(false);
        print_target(*target, &figures);
        results.insert(target.as_str().into(), figures);
    }
    let ratio = |key: &str| -> Option<f64> {
        let ours = results.get("switchboard")?.get(key)?.as_f64()?;
        let peer = results.get("node")?.get(key)?.as_f64()?;
        (peer > 0.0).then(|| (ours / peer * 1000.0).round() / 1000.0)
    };
    let ratios = json!({
        "delivered_per_server_cpu_second": ratio("delivered_per_server_cpu_second"),
        "delivered_per_second": ratio("delivered_per_second"),
        "latency_p99": (|| -> Option<f64> {
            let ours = results.get("switchboard")?.pointer("/latency/p99_ms")?.as_f64()?;
            let peer = results.get("node")?.pointer("/latency/p99_ms")?.as_f64()?;
            (peer > 0.0).then(|| (ours / peer * 1000.0).round() / 1000.0)
        })(),
    });
    println!("ratios (Switchboard ÷ Node): {ratios}");
    let mut out = crate::report::header("peer", &pinning.description);
    out["binary"] = crate::report::binary_info(&args.common.server_bin);
    out["parameters"] = json!({
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "db": args.common.db.as_str(),
        "pairs": args.pairs,
        "interval_ms": args.interval_ms,
        "duration_s": args.duration,
        "offered_per_second": args.pairs as f64 * 1000.0 / args.interval_ms as f64,
    });
    out["targets"] = Value::Object(results);
    out["ratios"] = ratios;
    let path = crate::report::write(&args.common.results_dir, &name, &out)?;
    println!("results: {}", path.display());
    Ok(clean)
}

async fn start_target(args: &PeerArgs, target: Target, pinning: &Pinning, name: &str) -> anyhow::Result<Running> {
    match target {
        Target::Switchboard => {
            let opts = args.common.server_options(pinning, &format!("{name}.switchboard"));
            Ok(Running::Switchboard(Server::start(&opts).await?))
        }
        Target::Node => {
            let pg = (args.mode == Mode::Durable).then_some(args.common.pg_addr.as_str());
            start_node(&args.baseline_dir, &args.node_bin, pg, pinning, &args.common.results_dir, name).await
        }
    }
}

/// Starts the Node.js reference server (`baseline_dir/server.mjs`) pinned like Switchboard's
/// server; with `pg_addr`, on a fresh Postgres database it drops at stop.
pub(crate) async fn start_node(
    baseline_dir: &std::path::Path,
    node_bin: &str,
    pg_addr: Option<&str>,
    pinning: &Pinning,
    results_dir: &std::path::Path,
    name: &str,
) -> anyhow::Result<Running> {
    let script = baseline_dir.join("server.mjs");
    if !baseline_dir.join("node_modules").exists() {
        bail!("{}: run `npm install` there first (load-tests/run.sh does)", baseline_dir.display());
    }
    let pg_db = match pg_addr {
        Some(addr) => Some(crate::server::create_pg_database(addr).await?),
        None => None,
    };
    let mut command = match &pinning.server_cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpus).arg(node_bin);
            c
        }
        None => Command::new(node_bin),
    };
    command.arg(&script).env("PORT", "0");
    if let (Some(db), Some(addr)) = (&pg_db, pg_addr) {
        command.env("PG_URL", format!("postgres://postgres@{addr}/{db}"));
    }
    let log = results_dir.join(format!("{name}.node.log"));
    std::fs::create_dir_all(results_dir)?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log)?))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawning {node_bin} {}", script.display()))?;
    let pid = child.id().ok_or_else(|| anyhow!("node exited at once"))?;
    let mut lines = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?).lines();
    let base_url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = line.strip_prefix("listening on ") {
                return Ok(url.trim().to_string());
            }
        }
        Err(anyhow!("node exited before listening (log: {})", log.display()))
    })
    .await
    .map_err(|_| anyhow!("node printed no address within 30 s"))??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Running::Node { child, pid, base_url, pg_db })
}

async fn run_target(args: &PeerArgs, target: Target, pinning: &Pinning, name: &str) -> anyhow::Result<Value> {
    let running = start_target(args, target, pinning, name).await?;
    let outcome = drive(args, target, &running).await;
    running.stop(&args.common.pg_addr).await;
    outcome
}

/// Connects `pairs` agents and customers and returns them, with every customer's conversation
/// known and routed to a connected agent.
async fn stage(
    args: &PeerArgs,
    target: Target,
    base: &str,
    events: mpsc::Sender<sio::Event>,
) -> anyhow::Result<(Vec<SioClient>, Vec<Customer>)> {
    let connect = |namespace: &str, auth: Value, events: Option<mpsc::Sender<sio::Event>>| {
        sio::connect(base, ConnectOptions { namespace: namespace.into(), auth, timeout: Duration::from_secs(20), events })
    };
    let mut agents = Vec::with_capacity(args.pairs);
    let mut customers = Vec::with_capacity(args.pairs);
    match target {
        Target::Node => {
            for i in 0..args.pairs {
                agents.push(connect("/agent", json!({ "pair": i }), Some(events.clone())).await?);
                let client = connect("/widget", json!({ "pair": i }), None).await?;
                customers.push(Customer { client, conversation: i as i64 });
            }
        }
        Target::Switchboard => {
            let api = Api::new(base, 64)?;
            let admin = api.login(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
            let (inbox, widget_key) = api.create_web_inbox(&admin, "peer-widget").await?;
            // Agents of capacity 1: each first message routes to a different one.
            let (ready_tx, mut ready_rx) = mpsc::channel::<sio::Event>(args.pairs * 2 + 16);
            // Created and logged in 4 at a time (password hashing is deliberately slow).
            let created: Vec<_> = futures::stream::iter(0..args.pairs)
                .map(|i| {
                    let (api, admin) = (api.clone(), admin.clone());
                    async move { api.create_agent(&admin, &format!("peer-{i}"), 1).await }
                })
                .buffer_unordered(4)
                .collect()
                .await;
            for agent in created {
                let agent = agent?;
                let (tx, mut rx) = mpsc::channel(256);
                let client = connect("/agent", json!({ "token": agent.token }), Some(tx)).await?;
                loop {
                    match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                        Ok(Some(ev)) if ev.name == "hello" => break,
                        Ok(Some(_)) => continue,
                        _ => bail!("agent {}: no hello", agent.id),
                    }
                }
                let ack = client
                    .request("status", json!({ "status": "available" }), Duration::from_secs(10))
                    .await
                    .with_context(|| format!("agent {}: status", agent.id))?;
                if ack.get("ok").and_then(Value::as_bool) != Some(true) {
                    bail!("agent {}: status available refused: {ack}", agent.id);
                }
                // Forward this agent's frames: the first `message` tells us it was routed.
                let (events, ready) = (events.clone(), ready_tx.clone());
                tokio::spawn(async move {
                    while let Some(ev) = rx.recv().await {
                        if ev.name == "message" {
                            let _ = ready.try_send(sio::Event { name: ev.name.clone(), data: ev.data.clone() });
                        }
                        if events.send(ev).await.is_err() {
                            break;
                        }
                    }
                });
                agents.push(client);
            }
            for i in 0..args.pairs {
                let (tx, mut rx) = mpsc::channel(16);
                let client = connect("/widget", json!({ "inbox_id": inbox, "widget_key": widget_key }), Some(tx))
                    .await
                    .with_context(|| format!("customer {i}: connect"))?;
                // The server registers the socket's handlers once it has set the session up and
                // says so with `session`; an event sent before that would go unheard.
                loop {
                    match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                        Ok(Some(ev)) if ev.name == "session" => break,
                        Ok(Some(_)) => continue,
                        _ => bail!("customer {i}: no session event"),
                    }
                }
                drop(rx);
                let ack = client
                    .request("message", json!({ "client_message_id": format!("open-{i}"), "text": "hello" }), Duration::from_secs(20))
                    .await
                    .with_context(|| format!("customer {i}: first message"))?;
                let conversation = ack
                    .pointer("/message/conversation_id")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| anyhow!("customer {i}: first message not acked: {ack}"))?;
                customers.push(Customer { client, conversation });
            }
            // Every opening message reached its agent: each conversation is assigned.
            let mut routed = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            while routed < args.pairs {
                match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
                    Ok(Some(_)) => routed += 1,
                    _ => bail!("only {routed} of {} opening messages reached an agent", args.pairs),
                }
            }
        }
    }
    Ok((agents, customers))
}

async fn drive(args: &PeerArgs, target: Target, running: &Running) -> anyhow::Result<Value> {
    let setup_started = Instant::now();
    let (events_tx, mut events_rx) = mpsc::channel::<sio::Event>(65_536);
    let per_customer = (args.duration * 1000.0 / args.interval_ms as f64).floor() as usize;
    let total = per_customer * args.pairs;
    let tracker = Arc::new(Tracker {
        base: Instant::now(),
        typing_sent: Mutex::new(HashMap::new()),
        message_sent: (0..total).map(|_| AtomicU64::new(0)).collect(),
        message_received: (0..total).map(|_| AtomicU64::new(0)).collect(),
        sent: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        duplicated: AtomicU64::new(0),
        first_errors: Mutex::new(Vec::new()),
        latency: Mutex::new(latency_histogram()?),
        last_delivery_us: AtomicU64::new(0),
    });
    let (agents, customers) = stage(args, target, running.base_url(), events_tx.clone()).await?;
    let setup_secs = setup_started.elapsed().as_secs_f64();
    println!("{}: {} pairs connected and routed in {setup_secs:.1} s", target.as_str(), args.pairs);

    // The agents' frames: match each to its emit.
    let mode = args.mode;
    let reader = {
        let tracker = tracker.clone();
        tokio::spawn(async move {
            while let Some(ev) = events_rx.recv().await {
                match (mode, ev.name.as_str()) {
                    (Mode::Relay, "typing") => {
                        let Some(conversation) = ev.data.get("conversation_id").and_then(Value::as_i64) else { continue };
                        let sent = tracker.typing_sent.lock().ok().and_then(|mut m| m.remove(&conversation));
                        if let Some(sent) = sent {
                            tracker.record(sent);
                        }
                    }
                    (Mode::Durable, "message") => {
                        // The peer echoes `client_message_id`; Switchboard's message carries it
                        // inside its dedupe key, `platform_message_id` = `<session id>:<it>`.
                        let id = ev.data.get("client_message_id").and_then(Value::as_str).or_else(|| {
                            ev.data.get("platform_message_id").and_then(Value::as_str).and_then(|p| p.rsplit(':').next())
                        });
                        let Some(seq) = id.and_then(|s| s.strip_prefix("peer-")).and_then(|s| s.parse::<usize>().ok())
                        else {
                            continue;
                        };
                        let Some(slot) = tracker.message_received.get(seq) else { continue };
                        if slot.fetch_add(1, Ordering::Relaxed) > 0 {
                            tracker.duplicated.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        let sent = tracker.message_sent[seq].load(Ordering::Relaxed);
                        if sent > 0 {
                            tracker.record(sent - 1);
                        }
                    }
                    _ => {}
                }
            }
        })
    };

    let cpu_before = (cpu_seconds(running.pid()), cpu_of_named("postgres"));
    let started = Instant::now();
    let started_us = tracker.now_us();
    let interval = Duration::from_millis(args.interval_ms);
    let customers: Vec<Arc<Customer>> = customers.into_iter().map(Arc::new).collect();
    let mut tasks = Vec::with_capacity(customers.len());
    for (index, customer) in customers.iter().enumerate() {
        let (customer, tracker) = (customer.clone(), tracker.clone());
        // Phases spread evenly over one period.
        let offset = interval.mul_f64(index as f64 / args.pairs as f64);
        tasks.push(tokio::spawn(async move {
            let mut next = started + offset;
            for round in 0..per_customer {
                tokio::time::sleep_until(next).await;
                next += interval;
                let now = tracker.now_us();
                tracker.sent.fetch_add(1, Ordering::Relaxed);
                match mode {
                    Mode::Relay => {
                        if let Ok(mut m) = tracker.typing_sent.lock() {
                            m.insert(customer.conversation, now);
                        }
                        if let Err(e) = customer.client.emit("typing", Value::Null).await {
                            tracker.error(format!("typing: {e}"));
                        }
                    }
                    Mode::Durable => {
                        let seq = index * per_customer + round;
                        tracker.message_sent[seq].store(now + 1, Ordering::Relaxed);
                        let body = json!({ "client_message_id": format!("peer-{seq}"), "text": format!("message {seq}") });
                        match customer.client.request("message", body, Duration::from_secs(30)).await {
                            Ok(ack) if ack.get("ok").and_then(Value::as_bool) == Some(true) => {
                                tracker.acked.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(ack) => tracker.error(format!("message {seq}: {ack}")),
                            Err(e) => tracker.error(format!("message {seq}: {e}")),
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let sending_secs = started.elapsed().as_secs_f64();
    // Drain: until everything acked arrived (durable) or a quiet second (relay), bounded.
    let drain_deadline = Instant::now() + Duration::from_secs_f64(args.drain_timeout);
    loop {
        let delivered = tracker.delivered.load(Ordering::Relaxed);
        let expected = match mode {
            Mode::Durable => tracker.acked.load(Ordering::Relaxed),
            Mode::Relay => tracker.sent.load(Ordering::Relaxed),
        };
        if delivered >= expected || Instant::now() >= drain_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu_after = (cpu_seconds(running.pid()), cpu_of_named("postgres"));
    for a in agents {
        a.close().await;
    }
    for c in customers {
        if let Ok(c) = Arc::try_unwrap(c) {
            c.client.close().await;
        }
    }
    drop(events_tx);
    reader.abort();

    let sent = tracker.sent.load(Ordering::Relaxed);
    let acked = tracker.acked.load(Ordering::Relaxed);
    let delivered = tracker.delivered.load(Ordering::Relaxed);
    let duplicated = tracker.duplicated.load(Ordering::Relaxed);
    let failed = tracker.failed.load(Ordering::Relaxed);
    let lost = match mode {
        Mode::Durable => acked.saturating_sub(delivered),
        Mode::Relay => 0,
    };
    let delivery_span = (tracker.last_delivery_us.load(Ordering::Relaxed).saturating_sub(started_us)) as f64 / 1e6;
    let server_cpu = match cpu_before.0.zip(cpu_after.0) {
        Some((a, b)) => b - a,
        None => f64::NAN,
    };
    let postgres_cpu = cpu_after.1 - cpu_before.1;
    let round3 = |v: f64| (v * 1000.0).round() / 1000.0;
    let latency = tracker.latency.lock().map(|h| summary(&h)).unwrap_or(Value::Null);
    let errors = tracker.first_errors.lock().map(|l| l.clone()).unwrap_or_default();
    let clean = failed == 0 && lost == 0 && duplicated == 0;
    Ok(json!({
        "target": target.as_str(),
        "setup_s": round3(setup_secs),
        "sending_s": round3(sending_secs),
        "sent": sent,
        "acked": (mode == Mode::Durable).then_some(acked),
        "delivered": delivered,
        "undelivered_relays": (mode == Mode::Relay).then(|| sent.saturating_sub(delivered)),
        "lost": lost,
        "duplicated": duplicated,
        "failed": failed,
        "first_errors": errors,
        "delivered_per_second": if delivery_span > 0.0 { round3(delivered as f64 / delivery_span) } else { 0.0 },
        "latency": latency,
        "server_cpu_seconds": round3(server_cpu),
        "server_cores": round3(server_cpu / wall),
        "postgres_cpu_seconds": round3(postgres_cpu),
        "delivered_per_server_cpu_second": if server_cpu > 0.0 { (delivered as f64 / server_cpu).round() } else { 0.0 },
        "clean": clean,
    }))
}

fn print_target(target: Target, f: &Value) {
    println!(
        "== {}: sent {} delivered {} ({}/s) lost {} dup {} failed {}; latency {}; server {} cores ({} CPU-s), {} delivered per server CPU-second; postgres {} CPU-s",
        target.as_str(),
        f["sent"],
        f["delivered"],
        f["delivered_per_second"],
        f["lost"],
        f["duplicated"],
        f["failed"],
        f["latency"],
        f["server_cores"],
        f["server_cpu_seconds"],
        f["delivered_per_server_cpu_second"],
        f["postgres_cpu_seconds"],
    );
    if let Some(errors) = f["first_errors"].as_array().filter(|e| !e.is_empty()) {
        println!("   first errors: {errors:?}");
    }
}

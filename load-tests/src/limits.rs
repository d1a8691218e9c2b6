//! Scenario `limits`: the machine's own ceilings, measured in the same run as the scenarios so
//! each of those can be stated as a fraction of what the hardware allows here.
//!
//! - **WebSocket echo**: a bare tokio-tungstenite echo server (`loadgen echo-server`, a separate
//!   process pinned like the Switchboard server) and `connections` clients that each keep
//!   `window` small text frames in flight for `duration` seconds. Figure: frames echoed per
//!   second (one frame in and one out each) and the server's CPU.
//! - **Postgres**: `pgbench` with a custom script of one single-row `INSERT` (a message-sized
//!   row into a table with a `bigserial` key) per transaction, at 1, 8 and 32 clients, on a fresh
//!   database that is dropped afterwards. Figure: transactions per second (excluding connection
//!   time), with the server's `synchronous_commit` and `fsync` settings.
//! - **Redis**: `redis-benchmark -q -t set,get` against the local Redis, in database
//!   `redis_db` (its keys are deleted afterwards). Figure: requests per second per command.
//!
//! Bounded: every phase has a fixed duration or request count, and child processes are killed if
//! they outlive it.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures::{FutureExt, SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::server::psql_rows;
use crate::Pinning;

#[derive(clap::Args, Clone, Debug)]
pub struct LimitsArgs {
    /// Seconds per measurement (echo, and each pgbench client count).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// WebSocket echo: client connections.
    #[arg(long, default_value_t = 16)]
    pub echo_connections: usize,
    /// WebSocket echo: frames in flight per connection.
    #[arg(long, default_value_t = 64)]
    pub echo_window: usize,
    /// WebSocket echo: frame payload bytes (a typical small Socket.IO event is ~100).
    #[arg(long, default_value_t = 100)]
    pub echo_payload: usize,
    /// pgbench client counts.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8, 32])]
    pub pg_clients: Vec<usize>,
    /// Postgres host:port (trust auth as user `postgres`).
    #[arg(long, default_value = "127.0.0.1:5432")]
    pub pg_addr: String,
    /// Skip the Postgres measurement.
    #[arg(long)]
    pub skip_postgres: bool,
    /// Redis host:port.
    #[arg(long, default_value = "127.0.0.1:6379")]
    pub redis_addr: String,
    /// Redis database number redis-benchmark writes to (its keys are deleted afterwards).
    #[arg(long, default_value_t = 9)]
    pub redis_db: u32,
    /// redis-benchmark requests per command.
    #[arg(long, default_value_t = 200_000)]
    pub redis_requests: u64,
    /// Skip the Redis measurement.
    #[arg(long)]
    pub skip_redis: bool,
    /// Where the result file goes.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    pub results_dir: std::path::PathBuf,
    /// Result file name (without `.json`).
    #[arg(long)]
    pub name: Option<String>,
}

/// `loadgen echo-server`: accepts WebSocket connections on 127.0.0.1 (OS-chosen port, printed as
/// `echo listening on PORT`) and sends every text or binary frame back. Runs until killed.
pub async fn echo_server() -> anyhow::Result<bool> {
    let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the echo server")?;
    println!("echo listening on {}", listener.local_addr()?.port());
    loop {
        let (stream, _) = listener.accept().await.context("accept")?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(stream).await else { return };
            let (mut tx, mut rx) = ws.split();
            // Echo what has arrived, then flush once per batch of frames already read.
            while let Some(Ok(first)) = rx.next().await {
                let mut next = Some(first);
                while let Some(msg) = next.take() {
                    if matches!(msg, Message::Close(_)) {
                        return;
                    }
                    if matches!(msg, Message::Text(_) | Message::Binary(_)) && tx.feed(msg).await.is_err() {
                        return;
                    }
                    if let Some(Some(Ok(more))) = rx.next().now_or_never() {
                        next = Some(more);
                    }
                }
                if tx.flush().await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Runs the scenario; `Ok(true)` when every measurement produced a figure.
pub async fn run(args: LimitsArgs, pinning: Pinning) -> anyhow::Result<bool> {
    let name = args.name.clone().unwrap_or_else(|| "limits".into());
    println!("limits: WebSocket echo, Postgres INSERT (pgbench), Redis (redis-benchmark); {} s each", args.duration);
    println!("pinning: {}", pinning.description);
    let mut ok = true;
    let echo = match echo(&args, &pinning).await {
        Ok(v) => v,
        Err(e) => {
            ok = false;
            json!({ "error": format!("{e:#}") })
        }
    };
    let postgres = if args.skip_postgres {
        json!({ "skipped": true })
    } else {
        match pgbench(&args).await {
            Ok(v) => v,
            Err(e) => {
                ok = false;
                json!({ "error": format!("{e:#}") })
            }
        }
    };
    let redis = if args.skip_redis {
        json!({ "skipped": true })
    } else {
        match redis_benchmark(&args).await {
            Ok(v) => v,
            Err(e) => {
                ok = false;
                json!({ "error": format!("{e:#}") })
            }
        }
    };
    let mut result = crate::report::header("limits", &pinning.description);
    result["parameters"] = json!({
        "duration_secs": args.duration, "echo_connections": args.echo_connections, "echo_window": args.echo_window,
        "echo_payload_bytes": args.echo_payload, "pg_clients": args.pg_clients, "redis_requests": args.redis_requests,
        "build_profile": if cfg!(debug_assertions) { "debug" } else { "release" },
    });
    result["figures"] =
        json!({ "websocket_echo": echo, "postgres_insert": postgres, "redis": redis, "verdict": { "ok": ok } });
    let path = crate::report::write(&args.results_dir, &name, &result)?;
    println!();
    println!("== limits ==");
    println!("websocket echo: {}", result["figures"]["websocket_echo"]);
    println!("postgres insert: {}", result["figures"]["postgres_insert"]);
    println!("redis: {}", result["figures"]["redis"]);
    println!("results: {}", path.display());
    Ok(ok)
}

async fn echo(args: &LimitsArgs, pinning: &Pinning) -> anyhow::Result<Value> {
    let me = std::env::current_exe().context("finding loadgen's own path")?;
    let mut command = match &pinning.server_cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpus).arg(&me);
            c
        }
        None => Command::new(&me),
    };
    let mut child = command
        .args(["--no-pin", "echo-server"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("spawning the echo server")?;
    let pid = child.id().ok_or_else(|| anyhow!("echo server exited at once"))?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let port: u16 = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(p) = line.strip_prefix("echo listening on ") {
                return p.trim().parse().ok();
            }
        }
        None
    })
    .await
    .context("echo server did not start within 10 s")?
    .ok_or_else(|| anyhow!("echo server printed no port"))?;

    let outcome = drive_echo(args, port, pid).await;
    let _ = child.kill().await;
    outcome
}

async fn drive_echo(args: &LimitsArgs, port: u16, pid: u32) -> anyhow::Result<Value> {
    let url = format!("ws://127.0.0.1:{port}/");
    let payload = "x".repeat(args.echo_payload.max(1));
    let received = Arc::new(AtomicU64::new(0));
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut tasks = Vec::new();
    for _ in 0..args.echo_connections.max(1) {
        let (ws, _) = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(url.as_str()))
            .await
            .context("echo connect timed out")?
            .context("echo connect")?;
        let (mut tx, mut rx) = ws.split();
        let window = Arc::new(Semaphore::new(args.echo_window.max(1)));
        let (w2, r2, run2, text) = (window.clone(), received.clone(), running.clone(), payload.clone());
        let writer = tokio::spawn(async move {
            while run2.load(Ordering::Relaxed) {
                let Ok(permit) = w2.acquire().await else { return };
                permit.forget();
                if tx.feed(Message::text(text.clone())).await.is_err() {
                    return;
                }
                if w2.available_permits() == 0 && tx.flush().await.is_err() {
                    return;
                }
            }
            let _ = tx.flush().await;
            let _ = tx.close().await;
        });
        let reader = tokio::spawn(async move {
            while let Some(Ok(msg)) = rx.next().await {
                if matches!(msg, Message::Text(_)) {
                    r2.fetch_add(1, Ordering::Relaxed);
                    window.add_permits(1);
                }
            }
        });
        tasks.push((writer, reader));
    }
    // A short warm-up, then the measured window.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_before = crate::server::cpu_seconds(pid);
    let self_before = crate::server::cpu_seconds(std::process::id());
    let start_count = received.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let frames = received.load(Ordering::Relaxed) - start_count;
    let secs = started.elapsed().as_secs_f64();
    let cpu_after = crate::server::cpu_seconds(pid);
    let self_after = crate::server::cpu_seconds(std::process::id());
    running.store(false, Ordering::Relaxed);
    for (writer, reader) in tasks {
        writer.abort();
        reader.abort();
    }
    if frames == 0 {
        bail!("no frame came back");
    }
    let cores = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(((b - a) / secs * 1000.0).round() / 1000.0),
        _ => None,
    };
    let server_cores = cores(cpu_before, cpu_after);
    let rate = frames as f64 / secs;
    Ok(json!({
        "frames_echoed": frames,
        "secs": (secs * 1000.0).round() / 1000.0,
        "frames_per_sec": rate.round(),
        "server_cpu_cores_used": server_cores,
        "frames_per_sec_per_server_core": server_cores.filter(|c| *c > 0.0).map(|c| (rate / c).round()),
        "client_cpu_cores_used": cores(self_before, self_after),
    }))
}

async fn pgbench(args: &LimitsArgs) -> anyhow::Result<Value> {
    if Command::new("pgbench").arg("--version").output().await.map(|o| !o.status.success()).unwrap_or(true) {
        bail!("pgbench not found (apt-get install postgresql-contrib, or pass --skip-postgres)");
    }
    let (host, port) = args.pg_addr.rsplit_once(':').unwrap_or((&args.pg_addr, "5432"));
    let db = format!("sb_loadgen_limits_{}", std::process::id());
    psql_rows(&args.pg_addr, "postgres", &format!("CREATE DATABASE {db}")).await?;
    let outcome = async {
        let version = psql_rows(&args.pg_addr, &db, "SHOW server_version").await?;
        let sync = psql_rows(&args.pg_addr, &db, "SHOW synchronous_commit").await?;
        let fsync = psql_rows(&args.pg_addr, &db, "SHOW fsync").await?;
        psql_rows(
            &args.pg_addr,
            &db,
            "CREATE TABLE bench_messages (id BIGSERIAL PRIMARY KEY, conversation_id BIGINT NOT NULL, \
             body TEXT NOT NULL, created_at BIGINT NOT NULL)",
        )
        .await?;
        let script = std::env::temp_dir().join(format!("loadgen-insert-{}.sql", std::process::id()));
        std::fs::write(
            &script,
            "INSERT INTO bench_messages (conversation_id, body, created_at) VALUES (1, 'a customer message of about sixty bytes, like a chat line', 1);\n",
        )
        .context("writing the pgbench script")?;
        let mut runs = Vec::new();
        for &clients in &args.pg_clients {
            let threads = clients.clamp(1, 2).to_string();
            let secs = (args.duration.round() as u64).max(1).to_string();
            let run = Command::new("pgbench")
                .args(["-n", "-h", host, "-p", port, "-U", "postgres", "-f"])
                .arg(&script)
                .args(["-c", &clients.to_string(), "-j", &threads, "-T", &secs, &db])
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output();
            let out = tokio::time::timeout(Duration::from_secs_f64(args.duration + 60.0), run)
                .await
                .context("pgbench overran")?
                .context("running pgbench")?;
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            if !out.status.success() {
                bail!("pgbench -c {clients} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            let tps = text
                .lines()
                .find(|l| l.starts_with("tps = ") && l.contains("without initial connection"))
                .or_else(|| text.lines().find(|l| l.starts_with("tps = ")))
                .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| anyhow!("no tps line in pgbench output: {text}"))?;
            let latency_ms = text
                .lines()
                .find(|l| l.starts_with("latency average = "))
                .and_then(|l| l.trim_start_matches("latency average = ").split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok());
            println!("  pgbench {clients} client(s): {tps:.0} tps");
            runs.push(json!({ "clients": clients, "tps": tps.round(), "latency_avg_ms": latency_ms }));
        }
        let _ = std::fs::remove_file(&script);
        Ok::<Value, anyhow::Error>(json!({
            "server_version": version, "synchronous_commit": sync, "fsync": fsync,
            "transaction": "one single-row INSERT (bigserial key, ~60-byte text)",
            "runs": runs,
        }))
    }
    .await;
    if let Err(e) = psql_rows(&args.pg_addr, "postgres", &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await {
        eprintln!("warning: could not drop {db}: {e:#}");
    }
    outcome
}

async fn redis_benchmark(args: &LimitsArgs) -> anyhow::Result<Value> {
    let (host, port) = args.redis_addr.rsplit_once(':').unwrap_or((&args.redis_addr, "6379"));
    let db = args.redis_db.to_string();
    let run = Command::new("redis-benchmark")
        .args(["-h", host, "-p", port, "--dbnum", &db, "-q", "-t", "set,get", "-n", &args.redis_requests.to_string()])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .context("redis-benchmark overran")?
        .context("running redis-benchmark (is redis-tools installed?)")?;
    // Its one key (`key:__rand_int__`, no -r) goes away again.
    let _ = Command::new("redis-cli")
        .args(["-h", host, "-p", port, "-n", &db, "DEL", "key:__rand_int__", "key:000000000000"])
        .output()
        .await;
    if !out.status.success() {
        bail!("redis-benchmark failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    // `-q` prints lines like "SET: 81234.56 requests per second, p50=0.311 msec" (with \r
    // progress updates before them).
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    let mut figures = serde_json::Map::new();
    for line in text.lines() {
        let Some((cmd, rest)) = line.split_once(": ") else { continue };
        if !rest.contains("requests per second") || rest.starts_with("rps=") {
            continue;
        }
        let Some(rps) = rest.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else { continue };
        let p50 =
            rest.split("p50=").nth(1).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse::<f64>().ok());
        println!("  redis {cmd}: {rps:.0} requests/s");
        figures.insert(cmd.trim().to_lowercase(), json!({ "requests_per_sec": rps.round(), "p50_ms": p50 }));
    }
    if figures.is_empty() {
        bail!("could not read redis-benchmark's output: {text}");
    }
    Ok(json!({ "commands": figures, "requests_per_command": args.redis_requests, "clients": 50, "pipeline": 1 }))
}

//! Scenario `connections`: what an idle agent connection costs the server.
//!
//! Logs in a few agents, then opens idle `/agent` Socket.IO connections (spread over those
//! agents' tokens) in steps up to each of `sizes`, waiting for each connection's `hello`, and
//! after each step lets the server settle and reads its RSS (`VmRSS`). Reports the connect rate
//! of each step and the memory per connection as the slope between the first and the last size
//! (which cancels the server's fixed footprint). Optionally holds the connections past a
//! ping interval to see that they stay up.
//!
//! Bounded: connection counts are fixed, handshakes run at most `concurrency` at a time, each
//! with a timeout, and the file-descriptor limit is checked before starting.

use std::time::Duration;

use anyhow::{bail, Context};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::api::Api;
use crate::server::{Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::sio::{self, ConnectOptions, SioClient};
use crate::{Common, Pinning};

#[derive(clap::Args, Clone, Debug)]
pub struct ConnectionsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connection counts to measure at, ascending, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [2000usize, 6000])]
    pub sizes: Vec<usize>,
    /// Distinct agents whose tokens the connections use (round-robin).
    #[arg(long, default_value_t = 20)]
    pub agents: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds to let the server settle before reading RSS at each size.
    #[arg(long, default_value_t = 3.0)]
    pub settle: f64,
    /// Seconds to hold all connections at the end (more than 25 s spans a ping round).
    #[arg(long, default_value_t = 0.0)]
    pub hold: f64,
    /// The server measured: Switchboard, or the Node.js + Socket.IO reference server of the
    /// `peer` scenario (load-tests/baselines; its `/agent` namespace, a room per connection).
    #[arg(long, value_enum, default_value = "switchboard")]
    pub target: crate::peer::Target,
    /// The reference server's directory (with `--target node`).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/baselines"))]
    pub baseline_dir: std::path::PathBuf,
    /// The Node.js binary (with `--target node`).
    #[arg(long, default_value = "node")]
    pub node_bin: String,
}

/// Runs the scenario; returns `Ok(true)` when every connection opened and stayed open.
pub async fn run(args: ConnectionsArgs, pinning: Pinning) -> anyhow::Result<bool> {
    let mut sizes = args.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let Some(&largest) = sizes.last() else { bail!("--sizes is empty") };
    if args.agents == 0 || args.concurrency == 0 {
        bail!("agents and concurrency must be positive");
    }
    // One descriptor per connection here and one in the server (which inherits our limit),
    // plus slack for the runtime, the HTTP pool and the database.
    let needed = largest as u64 + 256;
    match crate::open_files_limit() {
        Some(limit) if limit < needed => {
            bail!("open-files limit is {limit}, {largest} connections need about {needed}: raise it (`ulimit -n 20000`, as load-tests/run.sh does)")
        }
        _ => {}
    }
    let name = args.common.name.clone().unwrap_or_else(|| match args.target {
        crate::peer::Target::Switchboard => format!("connections-{}", args.common.db.as_str()),
        crate::peer::Target::Node => "connections-node".to_string(),
    });
    println!(
        "connections: {name}, sizes {sizes:?}, {} agents' tokens, {} handshakes at once",
        args.agents, args.concurrency
    );
    println!("pinning: {}", pinning.description);
    let (figures, warn_lines) = match args.target {
        crate::peer::Target::Switchboard => {
            let server = Server::start(&args.common.server_options(&pinning, &name)).await?;
            println!("server pid {} at {}", server.pid, server.base_url);
            let outcome = drive(&args, &sizes, server.pid, &server.base_url, Some(&server.base_url)).await;
            let exit = server.stop().await;
            let mut figures = outcome?;
            figures["server_log"] = json!({ "graceful_stop": exit.graceful, "warn_or_error_lines": exit.warn_lines.len(), "first": exit.warn_lines.iter().take(5).collect::<Vec<_>>() });
            (figures, exit.warn_lines)
        }
        crate::peer::Target::Node => {
            let node =
                crate::peer::start_node(&args.baseline_dir, &args.node_bin, None, &pinning, &args.common.results_dir, &name)
                    .await?;
            println!("node pid {} at {}", node.pid(), node.base_url());
            let outcome = drive(&args, &sizes, node.pid(), node.base_url(), None).await;
            node.stop(&args.common.pg_addr).await;
            (outcome?, Vec::new())
        }
    };
    let ok = figures["verdict"]["ok"].as_bool().unwrap_or(false);

    let mut result = crate::report::header("connections", &pinning.description);
    result["parameters"] = json!({
        "target": args.target.as_str(),
        "db": args.common.db.as_str(), "sizes": sizes, "agents": args.agents, "concurrency": args.concurrency,
        "settle_secs": args.settle, "hold_secs": args.hold,
    });
    result["server_binary"] = crate::report::binary_info(&args.common.server_bin);
    result["figures"] = figures;
    let path = crate::report::write(&args.common.results_dir, &name, &result)?;
    print_summary(&result);
    if let Some(first) = warn_lines.first() {
        println!("server logged {} WARN/ERROR line(s), first: {first}", warn_lines.len());
    }
    println!("results: {}", path.display());
    Ok(ok)
}

/// `switchboard_api`: Switchboard's base URL, whose agents' tokens the connections use; `None`
/// for the reference server, whose `/agent` takes `{pair}` and answers nothing on connect.
async fn drive(
    args: &ConnectionsArgs,
    sizes: &[usize],
    pid: u32,
    base_url: &str,
    switchboard_api: Option<&str>,
) -> anyhow::Result<Value> {
    let rss = || crate::server::rss_of(pid);
    let rss_at_start = rss()?;
    let tokens: Vec<String> = match switchboard_api {
        Some(url) => {
            let api = Api::new(url, 8)?;
            let admin = api.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.context("admin login")?;
            let agents: Vec<_> = futures::stream::iter(0..args.agents)
                .map(|i| {
                    let (api, admin) = (api.clone(), admin.clone());
                    async move { api.create_agent(&admin, &format!("idle-{i}"), 10).await }
                })
                .buffer_unordered(4)
                .collect()
                .await;
            agents.into_iter().map(|a| a.map(|a| a.token)).collect::<anyhow::Result<_>>()?
        }
        None => Vec::new(),
    };

    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let baseline_rss = rss()?;
    println!(
        "RSS {:.1} MiB at start, {:.1} MiB after setup (baseline)",
        rss_at_start as f64 / 1048576.0,
        baseline_rss as f64 / 1048576.0
    );

    let mut clients: Vec<SioClient> = Vec::with_capacity(sizes.last().copied().unwrap_or(0));
    let mut steps = Vec::new();
    let mut failures = 0usize;
    let mut first_errors: Vec<String> = Vec::new();
    for &size in sizes {
        let from = clients.len();
        let started = Instant::now();
        let results: Vec<_> = futures::stream::iter(from..size)
            .map(|i| {
                let base = base_url.to_string();
                let auth = match tokens.is_empty() {
                    false => json!({ "token": tokens[i % tokens.len()] }),
                    true => json!({ "pair": i }),
                };
                let wait_hello = !tokens.is_empty();
                async move { open_idle(&base, auth, wait_hello).await }
            })
            .buffer_unordered(args.concurrency)
            .collect()
            .await;
        let connect_secs = started.elapsed().as_secs_f64();
        let mut opened = 0usize;
        for r in results {
            match r {
                Ok(c) => {
                    clients.push(c);
                    opened += 1;
                }
                Err(e) => {
                    failures += 1;
                    if first_errors.len() < 10 {
                        first_errors.push(e.to_string());
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
        let rss = rss()?;
        let open_now = clients.iter().filter(|c| c.is_open()).count();
        println!(
            "  {size:>6} target: opened {opened} in {connect_secs:.2} s ({:.0}/s), {open_now} open, RSS {:.1} MiB",
            opened as f64 / connect_secs,
            rss as f64 / 1048576.0
        );
        steps.push(json!({
            "target": size,
            "open": open_now,
            "opened_in_step": opened,
            "connect_secs": (connect_secs * 1000.0).round() / 1000.0,
            "connects_per_sec": (opened as f64 / connect_secs).round(),
            "rss_bytes": rss,
            "rss_mib": (rss as f64 / 1048576.0 * 10.0).round() / 10.0,
        }));
    }
    if args.hold > 0.0 {
        println!("  holding {} connections for {} s", clients.len(), args.hold);
        tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    }
    let open_at_end = clients.iter().filter(|c| c.is_open()).count();
    let rss_at_end = rss()?;
    let total = clients.len();
    // Close in bounded batches so the server sees orderly disconnects.
    let closing: Vec<SioClient> = std::mem::take(&mut clients);
    futures::stream::iter(closing).for_each_concurrent(256, |c| c.close()).await;

    let slope = match (steps.first(), steps.last()) {
        (Some(a), Some(b)) if steps.len() > 1 => {
            let (na, nb) = (a["open"].as_u64().unwrap_or(0), b["open"].as_u64().unwrap_or(0));
            let (ra, rb) = (a["rss_bytes"].as_u64().unwrap_or(0), b["rss_bytes"].as_u64().unwrap_or(0));
            (nb > na).then(|| ((rb as f64 - ra as f64) / (nb - na) as f64).round())
        }
        _ => None,
    };
    let from_baseline = steps.last().and_then(|b| {
        let n = b["open"].as_u64().unwrap_or(0);
        (n > 0).then(|| ((b["rss_bytes"].as_u64().unwrap_or(0) as f64 - baseline_rss as f64) / n as f64).round())
    });
    let ok = failures == 0 && open_at_end == total;
    Ok(json!({
        "rss_at_start_bytes": rss_at_start,
        "baseline_rss_bytes": baseline_rss,
        "steps": steps,
        "bytes_per_connection_slope": slope,
        "bytes_per_connection_from_baseline": from_baseline,
        "failures": failures,
        "first_errors": first_errors,
        "open_at_end": open_at_end,
        "rss_at_end_bytes": rss_at_end,
        "verdict": { "ok": ok },
    }))
}

/// Opens one `/agent` connection and, with `wait_hello`, waits for its `hello` (so the server
/// finished its per-connection work), then stops listening to its events. (The reference
/// server sends nothing on connect; its namespace connect already ran its handler.)
async fn open_idle(base: &str, auth: Value, wait_hello: bool) -> Result<SioClient, sio::SioError> {
    let (tx, mut rx) = mpsc::channel(16);
    let client = sio::connect(
        base,
        ConnectOptions { namespace: "/agent".into(), auth, timeout: Duration::from_secs(30), events: Some(tx) },
    )
    .await?;
    if !wait_hello {
        return Ok(client);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) if ev.name == "hello" => return Ok(client),
            Ok(Some(_)) => continue,
            Ok(None) => return Err(sio::SioError::Closed),
            Err(_) => return Err(sio::SioError::Timeout("hello")),
        }
    }
}

fn print_summary(result: &Value) {
    let f = &result["figures"];
    println!();
    let target = match result["parameters"]["target"].as_str() {
        Some("node") => "node",
        _ => result["parameters"]["db"].as_str().unwrap_or("?"),
    };
    println!("== connections ({target}) ==");
    println!(
        "commit {}  {}  {} × {}",
        result["commit"].as_str().unwrap_or("?"),
        result["date"].as_str().unwrap_or("?"),
        result["machine"]["cpus"],
        result["machine"]["cpu_model"].as_str().unwrap_or("?")
    );
    println!("baseline RSS {:.1} MiB", f["baseline_rss_bytes"].as_f64().unwrap_or(0.0) / 1048576.0);
    if let Some(steps) = f["steps"].as_array() {
        for s in steps {
            println!("  {:>6} open: RSS {} MiB, connected at {} /s", s["open"], s["rss_mib"], s["connects_per_sec"]);
        }
    }
    let kib = |v: &Value| v.as_f64().map(|b| format!("{:.1} KiB", b / 1024.0)).unwrap_or_else(|| "n/a".into());
    println!(
        "per connection: {} (slope between sizes), {} (from baseline)",
        kib(&f["bytes_per_connection_slope"]),
        kib(&f["bytes_per_connection_from_baseline"])
    );
    println!("failures {}  open at end {}", f["failures"], f["open_at_end"]);
}

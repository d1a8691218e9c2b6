//! Switchboard's benchmark harness. `loadgen` starts the release server itself on a fresh
//! database, drives one scenario against it over loopback, writes the figures to
//! `load-tests/results/<name>.json` and prints a summary. It reports; it never asserts on timing.
//! The only verdicts are correctness ones (lost or duplicated messages, failed requests or
//! connections), which make the process exit non-zero so CI notices a rotting harness.
//!
//! Modules: [`sio`] (a minimal Socket.IO v4 client), [`server`] (the process under test),
//! [`api`] (REST setup calls), [`report`] (result files), and one module per scenario
//! ([`inbound`], [`connections`], [`routing`], [`routing_nodes`], [`limits`], [`peer`]); [`summary`] turns
//! the result files into the figures section of `docs/benchmarks.md`.

#![forbid(unsafe_code)]

pub mod api;
pub mod connections;
pub mod inbound;
pub mod limits;
pub mod peer;
pub mod report;
pub mod routing;
pub mod routing_nodes;
pub mod server;
pub mod sio;
pub mod summary;

use std::path::PathBuf;

use server::{Db, ServerOptions};

/// Options every scenario shares.
#[derive(clap::Args, Clone, Debug)]
pub struct Common {
    /// The server binary.
    #[arg(long, env = "SWITCHBOARD_BIN", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/switchboard"))]
    pub server_bin: PathBuf,
    /// Database the server runs on (a fresh one per run).
    #[arg(long, value_enum, default_value = "sqlite")]
    pub db: Db,
    /// Postgres host:port (trust auth as user `postgres`); loopback only.
    #[arg(long, default_value = "127.0.0.1:5432")]
    pub pg_addr: String,
    /// Where result files go.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    pub results_dir: PathBuf,
    /// Result file name (without `.json`); defaults to one derived from the scenario.
    #[arg(long)]
    pub name: Option<String>,
}

/// Which cores the load generator and the server run on.
#[derive(Clone, Debug)]
pub struct Pinning {
    /// Core list for the server's `taskset -c`, if pinned.
    pub server_cpus: Option<String>,
    /// Human description, also stored in result files.
    pub description: String,
}

/// Pins this process to all cores but the last and reserves the last for the server, when
/// `taskset` exists and there are at least two cores. Call before any runtime thread exists:
/// threads inherit the affinity of the thread that creates them.
pub fn pin_cores(enabled: bool) -> Pinning {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let unpinned = |why: &str| Pinning {
        server_cpus: None,
        description: format!("not pinned ({why}); server and load generator share {cpus} core(s)"),
    };
    if !enabled {
        return unpinned("--no-pin");
    }
    if cpus < 2 {
        return unpinned("fewer than 2 cores");
    }
    let have_taskset =
        std::process::Command::new("taskset").arg("-V").output().map(|o| o.status.success()).unwrap_or(false);
    if !have_taskset {
        return unpinned("taskset not found");
    }
    let last = cpus - 1;
    let mine = if last == 1 { "0".to_string() } else { format!("0-{}", last - 1) };
    let pinned_self = std::process::Command::new("taskset")
        .args(["-a", "-cp", &mine, &std::process::id().to_string()])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !pinned_self {
        return unpinned("taskset could not pin the load generator");
    }
    Pinning {
        server_cpus: Some(last.to_string()),
        description: format!("taskset: server on core {last}, load generator on core(s) {mine}"),
    }
}

impl Common {
    pub fn server_options(&self, pinning: &Pinning, name: &str) -> ServerOptions {
        ServerOptions {
            bin: self.server_bin.clone(),
            db: self.db,
            pg_addr: self.pg_addr.clone(),
            cpus: pinning.server_cpus.clone(),
            log_path: self.results_dir.join(format!("{name}.server.log")),
            shared_pg_db: None,
            redis: None,
        }
    }
}

/// Soft limit on open files of this process (from /proc/self/limits), if readable.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

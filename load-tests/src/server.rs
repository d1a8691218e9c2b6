//! Starting and stopping the server under test: the release `switchboard` binary on a fresh
//! database (a temp SQLite data dir or a new Postgres database), on 127.0.0.1 with an OS-chosen
//! port, pinned to its own core when `taskset` is there. Owns the process and everything made
//! for it, and removes them at [`Server::stop`] (the child is also killed if the value is
//! dropped on an error path).
//!
//! Must not touch anything but loopback and the resources it created itself.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The admin password set on the fresh database (`SWITCHBOARD_BOOTSTRAP__ADMIN_PASSWORD`).
pub const ADMIN_PASSWORD: &str = "loadgen-admin-password-1";
pub const ADMIN_EMAIL: &str = "admin@example.com";

/// Which database the server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    pub fn as_str(self) -> &'static str {
        match self {
            Db::Sqlite => "sqlite",
            Db::Postgres => "postgres",
        }
    }
}

/// How to start the server.
pub struct ServerOptions {
    pub bin: PathBuf,
    pub db: Db,
    /// Postgres `host:port` (trust auth, user `postgres`).
    pub pg_addr: String,
    /// Core list for `taskset -c`, when pinning.
    pub cpus: Option<String>,
    /// Where the server's stderr (its log) goes.
    pub log_path: PathBuf,
    /// Join this existing Postgres database (made by [`create_pg_database`]) instead of creating
    /// one; it is not dropped at stop. Used to run several nodes on one database.
    pub shared_pg_db: Option<String>,
    /// `(redis_url, key_prefix)`: run with the Redis bus, as one of several nodes.
    pub redis: Option<(String, String)>,
}

/// A running server.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub base_url: String,
    data_dir: PathBuf,
    pg_db: Option<String>,
    /// False when the database is shared with other nodes (the caller drops it).
    owns_db: bool,
    pg_addr: String,
    pub log_path: PathBuf,
}

/// What the server left behind when stopped.
pub struct ServerExit {
    /// Lines of its log at level WARN or ERROR.
    pub warn_lines: Vec<String>,
    /// `true` when it stopped within the grace period after SIGTERM.
    pub graceful: bool,
}

impl Server {
    /// Creates the database, spawns the binary, waits for its address line and for `/readyz`.
    pub async fn start(opts: &ServerOptions) -> anyhow::Result<Server> {
        if !opts.bin.exists() {
            bail!(
                "server binary not found at {}: run `cargo build --release -p switchboard-server --bin switchboard` (or pass --server-bin)",
                opts.bin.display()
            );
        }
        let unique = format!("{}_{}", std::process::id(), unix_nanos());
        let data_dir = std::env::temp_dir().join(format!("switchboard-loadgen-{unique}"));
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let (pg_db, owns_db) = match (opts.db, &opts.shared_pg_db) {
            (Db::Sqlite, _) => (None, false),
            (Db::Postgres, Some(shared)) => (Some(shared.clone()), false),
            (Db::Postgres, None) => (Some(create_pg_database(&opts.pg_addr).await?), true),
        };

        let mut args: Vec<String> = vec![
            "serve".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
        ];
        if let Some(name) = &pg_db {
            args.push("--database-url".into());
            args.push(format!("postgres://postgres@{}/{name}", opts.pg_addr));
        }
        if let Some((url, _)) = &opts.redis {
            args.push("--redis-url".into());
            args.push(url.clone());
        }
        let mut command = match &opts.cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpus).arg(&opts.bin);
                c
            }
            None => Command::new(&opts.bin),
        };
        if let Some(dir) = opts.log_path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let log =
            std::fs::File::create(&opts.log_path).with_context(|| format!("creating {}", opts.log_path.display()))?;
        command
            .args(&args)
            .env("SWITCHBOARD_BOOTSTRAP__ADMIN_PASSWORD", ADMIN_PASSWORD)
            // One inbox-secrets key for every node (each has its own data dir).
            .env("SWITCHBOARD_SECURITY__SECRETS_KEY", "bG9hZC10ZXN0LXNlY3JldHMta2V5LTMyLWJ5dGVzISE=")
            .env("SWITCHBOARD_LOG", std::env::var("SWITCHBOARD_LOG").unwrap_or_else(|_| "warn".into()))
            .envs(opts.redis.iter().map(|(_, prefix)| ("SWITCHBOARD_REDIS_PREFIX", prefix.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = command.spawn().with_context(|| format!("spawning {}", opts.bin.display()))?;
        // `taskset` execs the binary, so the child's pid is the server's pid.
        let pid = child.id().ok_or_else(|| anyhow!("server exited at once"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout pipe"))?;

        let mut server = Server {
            child,
            pid,
            base_url: String::new(),
            data_dir,
            pg_db,
            owns_db,
            pg_addr: opts.pg_addr.clone(),
            log_path: opts.log_path.clone(),
        };

        // Read stdout until the address line (bounded by 60 s), then keep draining it in the
        // background so the server never blocks on a full pipe; that task ends at EOF.
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let base_url = loop {
            let line = tokio::time::timeout_at(deadline, lines.next_line())
                .await
                .map_err(|_| anyhow!("server printed no address within 60 s (log: {})", opts.log_path.display()))?
                .context("reading server stdout")?;
            let Some(line) = line else {
                bail!("server exited before printing its address (log: {})", opts.log_path.display());
            };
            if let Some(rest) = line.split("Switchboard is running at ").nth(1) {
                break rest.trim().trim_end_matches('/').to_string();
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        server.base_url = base_url;
        server.wait_ready(deadline).await?;
        Ok(server)
    }

    async fn wait_ready(&self, deadline: Instant) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let url = format!("{}/readyz", self.base_url);
        while Instant::now() < deadline {
            if let Ok(r) = http.get(&url).timeout(Duration::from_secs(2)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("{url} never answered 200")
    }

    /// The server's resident set size in bytes (`VmRSS` of /proc/PID/status).
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        rss_of(self.pid)
    }

    /// Total CPU time (user + system) the server used so far, in seconds (from /proc/PID/stat,
    /// assuming the usual 100 clock ticks per second).
    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds(self.pid)
    }

    /// SIGTERM, wait up to 15 s, then SIGKILL; drops the Postgres database and the data dir.
    pub async fn stop(mut self) -> ServerExit {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status().await;
        let graceful = matches!(tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await, Ok(Ok(_)));
        if !graceful {
            let _ = self.child.kill().await;
        }
        if let Some(name) = self.pg_db.as_ref().filter(|_| self.owns_db) {
            if let Err(e) = psql(&self.pg_addr, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await {
                eprintln!("warning: could not drop database {name}: {e:#}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
        ServerExit { warn_lines: warn_lines(&self.log_path), graceful }
    }
}

/// CPU time (user + system, all threads) of process `pid` so far, in seconds, from
/// /proc/PID/stat, assuming the usual 100 clock ticks per second.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`; utime and stime are fields 14 and 15 overall.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Resident set size of process `pid` in bytes (`VmRSS` of /proc/PID/status).
pub fn rss_of(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/PID/status")?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or_else(|| anyhow!("no VmRSS line"))?;
    let kib: u64 =
        line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).ok_or_else(|| anyhow!("bad VmRSS line: {line}"))?;
    Ok(kib * 1024)
}

/// Total CPU seconds of every process whose `comm` is `name` (exited backends are not counted).
pub fn cpu_of_named(name: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(cpu_seconds)
        .sum()
}

fn warn_lines(path: &Path) -> Vec<String> {
    let Ok(log) = std::fs::read_to_string(path) else { return Vec::new() };
    log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).map(str::to_string).collect()
}

/// Creates a fresh database `sb_loadgen_<pid>_<nanos>` and returns its name.
pub async fn create_pg_database(addr: &str) -> anyhow::Result<String> {
    let name = format!("sb_loadgen_{}_{}", std::process::id(), unix_nanos());
    psql(addr, &format!("CREATE DATABASE {name}")).await?;
    Ok(name)
}

/// Drops a database made by [`create_pg_database`] (forcing its connections closed).
pub async fn drop_pg_database(addr: &str, name: &str) -> anyhow::Result<()> {
    psql(addr, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await
}

/// Runs `sql` on database `db` and returns psql's unaligned, tuples-only output (`|`-separated
/// fields, one row a line).
pub async fn psql_rows(addr: &str, db: &str, sql: &str) -> anyhow::Result<String> {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "5432"));
    let out = Command::new("psql")
        .args(["-h", host, "-p", port, "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-Atqc", sql])
        .stdin(Stdio::null())
        .output()
        .await
        .context("running psql (is the Postgres client installed?)")?;
    if !out.status.success() {
        bail!("psql `{sql}` failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

async fn psql(addr: &str, sql: &str) -> anyhow::Result<()> {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "5432"));
    let out = Command::new("psql")
        .args(["-h", host, "-p", port, "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .stdin(Stdio::null())
        .output()
        .await
        .context("running psql (is the Postgres client installed?)")?;
    if !out.status.success() {
        bail!("psql `{sql}` failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn unix_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

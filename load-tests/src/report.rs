//! Where a run's figures go: the common header of every result file (scenario, commit, date,
//! machine, pinning), latency summaries from `hdrhistogram`, and the JSON file under
//! `load-tests/results/`. Reports numbers only; it never judges them.

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// A latency histogram in microseconds, 1 µs .. 5 min, 3 significant digits.
pub fn latency_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 300_000_000, 3).context("creating a histogram")
}

/// `{count, mean_ms, p50_ms, p99_ms, p999_ms, max_ms}` of a histogram in microseconds.
pub fn summary(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| (us as f64 / 1000.0 * 100.0).round() / 100.0;
    if h.is_empty() {
        return json!({ "count": 0 });
    }
    json!({
        "count": h.len(),
        "mean_ms": (h.mean() / 10.0).round() / 100.0,
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

/// Scenario-independent facts about the run.
pub fn header(scenario: &str, pinning: &str) -> Value {
    json!({
        "scenario": scenario,
        "commit": command_output("git", &["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into()),
        "commit_dirty": command_output("git", &["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty()),
        "date": command_output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]).unwrap_or_else(|| "unknown".into()),
        "machine": machine(),
        "pinning": pinning,
        "load_average_at_end": std::fs::read_to_string("/proc/loadavg").ok().map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")),
    })
}

/// CPU model and count from /proc/cpuinfo, and total memory from /proc/meminfo.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let online = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let mem_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    });
    json!({ "cpu_model": model, "cpus": online, "cpus_for_loadgen": nproc, "mem_total_kib": mem_kib })
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The server binary's path and modification time (UTC), so a result names the build it measured
/// even when the work tree moved on.
pub fn binary_info(path: &Path) -> Value {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let when = modified
        .and_then(|d| command_output("date", &["-u", "-d", &format!("@{}", d.as_secs()), "+%Y-%m-%dT%H:%M:%SZ"]));
    json!({ "path": path.display().to_string(), "built": when })
}

/// Writes `value` to `dir/name.json` (pretty) and returns the path.
pub fn write(dir: &Path, name: &str, value: &Value) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(value).context("serializing results")?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

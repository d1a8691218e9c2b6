//! `erlang-compare`: runs the router simulator on a fixed set of scenarios and prints how far
//! its ASA, service level and abandonment are from Erlang C / Erlang A.
//!
//! ```text
//! cargo run --release -p switchboard-sim --bin erlang-compare -- \
//!     [--arrivals N] [--seed S] [--scenario I] [--json]
//! ```
//!
//! Only argument parsing and printing live here; the models are in the library.
use std::process::ExitCode;
use std::time::Instant;

use serde::Serialize;
use switchboard_sim::{erlang_a, erlang_c, servers, servers_for_service_level, simulate, ModelError, SimConfig};

const SERVICE_LEVEL_SECS: f64 = 20.0;
const DEFAULT_ARRIVALS: u64 = 20_000_000;

struct Scenario {
    name: String,
    arrival_rate: f64,
    mean_handle_secs: f64,
    agents: u32,
    slots_per_agent: u32,
    mean_patience_secs: Option<f64>,
}

#[derive(Serialize)]
struct Row {
    scenario: String,
    servers: u32,
    offered_load: f64,
    model: &'static str,
    arrivals: u64,
    sim_asa: f64,
    sim_asa_ci95: f64,
    model_asa: f64,
    sim_sl: f64,
    sim_sl_ci95: f64,
    model_sl: f64,
    sim_abandon: Option<f64>,
    sim_abandon_ci95: Option<f64>,
    model_abandon: Option<f64>,
    sim_prob_wait: f64,
    model_prob_wait: f64,
    sim_utilisation: f64,
    wall_secs: f64,
}

fn scenarios() -> Result<Vec<Scenario>, ModelError> {
    let (lambda, handle) = (2.0, 180.0);
    let staffed = servers_for_service_level(lambda, 1.0 / handle, SERVICE_LEVEL_SECS, 0.8)?;
    let pool = |name: String, agents: u32, slots: u32, arrival_rate: f64, patience: Option<f64>| Scenario {
        name,
        arrival_rate,
        mean_handle_secs: handle,
        agents,
        slots_per_agent: slots,
        mean_patience_secs: patience,
    };
    Ok(vec![
        pool("λ=2/s AHT=180s c=379 (ρ≈0.95)".into(), 379, 1, lambda, None),
        pool("λ=2/s AHT=180s c=400 (ρ=0.90)".into(), 400, 1, lambda, None),
        pool("λ=2/s AHT=180s c=424 (ρ≈0.85)".into(), 424, 1, lambda, None),
        pool(format!("λ=2/s AHT=180s c={staffed} (80/20 staffing)"), staffed, 1, lambda, None),
        pool("40 agents×3 slots λ=0.6/s (ρ=0.90)".into(), 40, 3, 0.6, None),
        pool("5 agents×2 slots λ=0.05/s (ρ=0.90)".into(), 5, 2, 0.05, None),
        pool("40×3 λ=0.65/s patience 120s".into(), 40, 3, 0.65, Some(120.0)),
        pool("λ=2/s c=360 (ρ=1.0) patience 60s".into(), 360, 1, lambda, Some(60.0)),
        pool("λ=2/s c=379 patience 300s".into(), 379, 1, lambda, Some(300.0)),
        pool("5×2 λ=0.06/s (ρ=1.08) patience 180s".into(), 5, 2, 0.06, Some(180.0)),
    ])
}

/// Relative difference and, in brackets, the simulator's 95 % half-width in the same unit.
fn delta(sim: f64, ci95: f64, model: f64) -> String {
    if model == 0.0 {
        return "—".into();
    }
    format!("{:+.2}% (±{:.2}%)", (sim - model) / model * 100.0, ci95 / model * 100.0)
}

fn run(scenario: &Scenario, arrivals: u64, seed: u64) -> Result<Row, ModelError> {
    let c = servers(scenario.agents, scenario.slots_per_agent);
    let mu = 1.0 / scenario.mean_handle_secs;
    let started = Instant::now();
    let report = simulate(&SimConfig {
        arrival_rate: scenario.arrival_rate,
        mean_handle_secs: scenario.mean_handle_secs,
        agents: scenario.agents,
        slots_per_agent: scenario.slots_per_agent,
        mean_patience_secs: scenario.mean_patience_secs,
        service_level_secs: SERVICE_LEVEL_SECS,
        // 50 handle times: long past the initial transient of an empty system.
        warmup_secs: 50.0 * scenario.mean_handle_secs,
        measured_arrivals: arrivals,
        seed,
    })?;
    let wall_secs = started.elapsed().as_secs_f64();
    let (model, model_asa, model_sl, model_abandon, model_prob_wait) = match scenario.mean_patience_secs {
        None => {
            let q = erlang_c(scenario.arrival_rate, mu, c)?;
            ("Erlang C", q.asa, q.service_level(SERVICE_LEVEL_SECS), None, q.prob_wait)
        }
        Some(patience) => {
            let q = erlang_a(scenario.arrival_rate, mu, c, 1.0 / patience)?;
            ("Erlang A", q.asa_served, q.service_level(SERVICE_LEVEL_SECS), Some(q.prob_abandon), q.prob_wait)
        }
    };
    Ok(Row {
        scenario: scenario.name.clone(),
        servers: c,
        offered_load: scenario.arrival_rate / (f64::from(c) * mu),
        model,
        arrivals: report.offered,
        sim_asa: report.asa_secs,
        sim_asa_ci95: report.asa_ci95,
        model_asa,
        sim_sl: report.service_level,
        sim_sl_ci95: report.service_level_ci95,
        model_sl,
        sim_abandon: model_abandon.map(|_| report.abandon_rate),
        sim_abandon_ci95: model_abandon.map(|_| report.abandon_rate_ci95),
        model_abandon,
        sim_prob_wait: report.prob_wait,
        model_prob_wait,
        sim_utilisation: report.utilisation,
        wall_secs,
    })
}

fn print_row(row: &Row) {
    let abandon = match (row.sim_abandon, row.model_abandon) {
        (Some(sim), Some(model)) => {
            format!("{:.4} | {:.4} | {}", sim, model, delta(sim, row.sim_abandon_ci95.unwrap_or(0.0), model))
        }
        _ => "— | — | —".into(),
    };
    println!(
        "| {} | {} | {:.3} | {:.3} | {} | {:.4} | {:.4} | {} | {} | {:.4} | {:.4} | {:.1} |",
        row.scenario,
        row.model,
        row.sim_asa,
        row.model_asa,
        delta(row.sim_asa, row.sim_asa_ci95, row.model_asa),
        row.sim_sl,
        row.model_sl,
        delta(row.sim_sl, row.sim_sl_ci95, row.model_sl),
        abandon,
        row.sim_prob_wait,
        row.model_prob_wait,
        row.wall_secs,
    );
}

struct Args {
    arrivals: u64,
    seed: u64,
    /// Run only the scenario with this 0-based index.
    scenario: Option<usize>,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { arrivals: DEFAULT_ARRIVALS, seed: 1, scenario: None, json: false };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let mut value = |name: &str| iter.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--arrivals" => args.arrivals = value("--arrivals")?.parse().map_err(|e| format!("--arrivals: {e}"))?,
            "--seed" => args.seed = value("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--scenario" => args.scenario = Some(value("--scenario")?.parse().map_err(|e| format!("--scenario: {e}"))?),
            "--json" => args.json = true,
            "-h" | "--help" => {
                return Err("usage: erlang-compare [--arrivals N] [--seed S] [--scenario I] [--json]".into());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let scenarios = match scenarios() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if !args.json {
        println!(
            "{} arrivals per scenario after warm-up, seed {}, service level = answered within {}s / offered",
            args.arrivals, args.seed, SERVICE_LEVEL_SECS
        );
        println!(
            "Δ% = (sim − model) / model; (±x%) = the simulator's 95 % batch-means half-width, relative to the model"
        );
        println!();
        println!("| scenario | model | sim ASA s | model ASA s | Δ% | sim SL | model SL | Δ% | sim abandon | model abandon | Δ% | sim P(wait) | model P(wait) | wall s |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    }
    let mut rows = Vec::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        if args.scenario.is_some_and(|only| only != index) {
            continue;
        }
        match run(scenario, args.arrivals, args.seed) {
            Ok(row) => {
                if !args.json {
                    print_row(&row);
                }
                rows.push(row);
            }
            Err(e) => {
                eprintln!("{}: {e}", scenario.name);
                return ExitCode::FAILURE;
            }
        }
    }
    if args.json {
        match serde_json::to_string_pretty(&rows) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

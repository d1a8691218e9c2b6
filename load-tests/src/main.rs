//! `loadgen`: runs one benchmark scenario against a server it starts itself. Thin: parses the
//! command line, pins cores, builds the runtime and hands over to the library.
//! Exit status: 0 when the run was clean, 1 when messages were lost or duplicated or requests
//! or connections failed (figures are still written), 2 when the run could not be done.

use clap::{Parser, Subcommand};
use switchboard_load_tests::{connections, inbound, limits, peer, pin_cores, routing, routing_nodes, summary};

#[derive(Parser)]
#[command(name = "loadgen", about = "Switchboard benchmark scenarios (numbers only, no timing assertions)")]
struct Cli {
    /// Do not pin the server and the load generator to separate cores.
    #[arg(long, global = true)]
    no_pin: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Customer messages through the API channel at a fixed rate, received by agents live.
    Inbound(inbound::InboundArgs),
    /// Idle agent Socket.IO connections: server memory per connection and connect rate.
    Connections(connections::ConnectionsArgs),
    /// Routing decisions per second in-process on the routing model (`Switch`), with invariants.
    Routing(routing::RoutingArgs),
    /// Assignments per second across two server nodes on Postgres + Redis, checked against the
    /// database's own records.
    RoutingNodes(routing_nodes::RoutingNodesArgs),
    /// Side by side with the Node.js + Socket.IO reference server (load-tests/baselines): relay
    /// or durable messages, same client, same load.
    Peer(peer::PeerArgs),
    /// The machine's ceilings: WebSocket echo frames/s, Postgres INSERT tps (pgbench), Redis ops/s.
    Limits(limits::LimitsArgs),
    /// Regenerates the figures section of docs/benchmarks.md from the result files.
    Report(summary::ReportArgs),
    /// (used by `limits`) A bare WebSocket echo server on 127.0.0.1; prints its port.
    #[command(hide = true)]
    EchoServer,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Before the runtime exists, so every worker thread inherits the affinity.
    let pinning = pin_cores(!cli.no_pin);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(async move {
        let scenario = async move {
            match cli.scenario {
            Scenario::Inbound(args) => inbound::run(args, pinning).await,
            Scenario::Connections(args) => connections::run(args, pinning).await,
            Scenario::Routing(args) => routing::run(args, pinning).await,
            Scenario::RoutingNodes(args) => routing_nodes::run(args, pinning).await,
            Scenario::Limits(args) => limits::run(args, pinning).await,
            Scenario::Peer(args) => peer::run(args, pinning).await,
            Scenario::Report(args) => summary::run(args),
            Scenario::EchoServer => limits::echo_server().await,
            }
        };
        // SIGINT / SIGTERM drop the scenario, which kills the servers it started (their
        // children are `kill_on_drop`), instead of leaving them running.
        let interrupted = async {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} },
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        };
        tokio::select! {
            outcome = scenario => outcome,
            _ = interrupted => Err(anyhow::anyhow!("interrupted; servers stopped, scratch databases may remain (sb_loadgen_*)")),
        }
    });
    match outcome {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("loadgen: FAILED (lost or duplicated messages, failed requests/connections, or a broken routing invariant; see above)");
            std::process::ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("loadgen: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

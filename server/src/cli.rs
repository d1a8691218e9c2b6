//! The command line: `serve`, `migrate`, `print-config` and `rotate-secrets`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::settings::{Overrides, Settings};

#[derive(Parser)]
#[command(name = "switchboard", version, about = "Real-time IM contact-center server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a server node.
    Serve(Common),
    /// Apply database migrations and exit.
    Migrate(Common),
    /// Print the configuration in force (secrets redacted) and exit.
    PrintConfig(Common),
    /// Reseal every inbox's secrets under `security.secrets_key` (after a key rotation, with the
    /// old key in `security.previous_secrets_keys`) and exit.
    RotateSecrets(Common),
}

#[derive(Args)]
struct Common {
    /// A TOML configuration file.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory of the embedded default (SQLite).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// postgres://, mysql:// or sqlite: URL (env SWITCHBOARD_DATABASE_URL).
    #[arg(long)]
    database_url: Option<String>,
    /// redis:// URL to run several nodes together (env SWITCHBOARD_REDIS_URL).
    #[arg(long)]
    redis_url: Option<String>,
}

impl Common {
    fn overrides(&self) -> Overrides {
        Overrides {
            config_file: self.config.clone(),
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            redis_url: self.redis_url.clone(),
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let (common, command) = match &cli.command {
        Command::Serve(c) => (c, "serve"),
        Command::Migrate(c) => (c, "migrate"),
        Command::PrintConfig(c) => (c, "print-config"),
        Command::RotateSecrets(c) => (c, "rotate-secrets"),
    };
    let settings = match Settings::load(&common.overrides()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            return ExitCode::from(2);
        }
    };
    if command == "print-config" {
        return match settings.to_redacted_toml() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("switchboard: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    init_tracing(&settings);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("switchboard: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            "migrate" => {
                let store = crate::open_store(&settings).await?;
                tracing::info!(backend = store.backend(), "migrations applied");
                Ok(())
            }
            "rotate-secrets" => {
                let store = crate::open_sql_store(&settings).await?;
                let report = store.reseal_inbox_secrets(true).await?;
                println!("inbox secrets: {} inboxes, {} resealed under the current key", report.inboxes, report.resealed);
                Ok(())
            }
            _ => serve(settings).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "switchboard failed");
            eprintln!("switchboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.listen).await.map_err(|e| anyhow::anyhow!("binding {}: {e}", settings.listen))?;
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested: draining");
        signal.cancel();
    });
    crate::launch(settings, listener, shutdown).await
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn init_tracing(settings: &Settings) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SWITCHBOARD_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if settings.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

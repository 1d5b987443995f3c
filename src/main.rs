//! The `chatter` command line: `chatter serve` runs the server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use chatter::chat::ServerInfo;
use chatter::server::sendq::DEFAULT_SENDQ_BYTES;
use chatter::server::{self, Config, Model};

#[derive(Parser)]
#[command(
    name = "chatter",
    version,
    about = "A small chat server: IRC or plain lines, three concurrency models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the chat server until SIGINT or SIGTERM.
    Serve(ServeArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum ModelArg {
    /// One thread per client blocking in recv; one locked directory.
    Iterative,
    /// A pool of event-loop threads sharing an ordered event log.
    Prethread,
    /// A supervisor and a pool of event-loop processes sharing the log in shared memory.
    Prefork,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:6667")]
    listen: String,
    /// Concurrency model.
    #[arg(long, value_enum, default_value = "iterative")]
    model: ModelArg,
    /// Workers in the pool models (default: the number of CPUs).
    #[arg(long)]
    workers: Option<usize>,
    /// Name the server uses as the source of its messages.
    #[arg(long, default_value = "chatter.local")]
    server_name: String,
    /// Network name advertised to IRC clients.
    #[arg(long, default_value = "chatter")]
    network: String,
    /// File whose lines are the message of the day (without it, MOTD answers 422).
    #[arg(long)]
    motd: Option<PathBuf>,
    /// Password clients must give with PASS before registering.
    #[arg(long, env = "CHATTER_PASSWORD")]
    password: Option<String>,
    /// Most clients connected at once; more are turned away.
    #[arg(long, default_value_t = 10_000)]
    max_clients: usize,
    /// Outbound queue per client in bytes; a client that falls this far behind is dropped.
    #[arg(long, default_value_t = DEFAULT_SENDQ_BYTES)]
    sendq: usize,
    /// Seconds of silence before a client is PINGed (and as many again before it is dropped).
    #[arg(long, default_value_t = 120)]
    ping_interval: u64,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut info = ServerInfo::new(args.server_name);
    info.network = args.network;
    info.password = args.password;
    info.created = chrono_free_now();
    if let Some(path) = &args.motd {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading MOTD file {}", path.display()))?;
        info.motd = Some(text.lines().map(str::to_string).collect());
    }
    anyhow::ensure!(args.ping_interval > 0, "--ping-interval must be at least 1 second");
    let config = Config {
        listen: args.listen,
        model: match args.model {
            ModelArg::Iterative => Model::Iterative,
            ModelArg::Prethread => Model::Prethread,
            ModelArg::Prefork => Model::Prefork,
        },
        workers: args.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        info: Arc::new(info),
        max_clients: args.max_clients,
        sendq_bytes: args.sendq,
        ping_interval: Duration::from_secs(args.ping_interval),
    };
    server::run(config).context("server failed")
}

/// Start time for RPL_CREATED, as Unix seconds (no date library needed for one line).
fn chrono_free_now() -> String {
    format!("at Unix time {}", server::unix_now())
}

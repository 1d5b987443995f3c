//! The `chatter` command line: `chatter serve` runs the server, `chatter
//! bench` measures one (see `chatter::bench`). What `serve` is told is
//! handed on as the flags given, in the config file's shape: the server
//! builds (and on SIGHUP or REHASH rebuilds) its configuration from them
//! and the file, checking the whole (`chatter::server::config`), so a bad
//! combination fails before anything starts.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use chatter::bench::results::Load;
use chatter::chat::info;
use chatter::server::config::{DEFAULT_LISTEN, DEFAULT_SERVER_NAME, check_workers, default_workers};
use chatter::server::config_file::{
    AdminSection, ClusterSection, ConfigFile, FloodSection, LimitsSection, ServerSection, TlsSection,
};
use chatter::server::reload::Reloader;
use chatter::server::sendq::DEFAULT_SENDQ_BYTES;
use chatter::server::{self, Model};

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
    /// Run the chat server until SIGINT or SIGTERM (SIGHUP rereads the configuration).
    Serve(ServeArgs),
    /// Load-test a server: simulate clients, check delivery, measure speed and resources.
    Bench(BenchArgs),
    /// Read a password on stdin and print its hash, for an operator entry in the config file.
    Passwd,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Run the whole comparison (models x client counts x loads, plus peers) and write docs/PERFORMANCE.md.
    Sweep(SweepArgs),
    /// Run the sweep's loads against networks of nodes (alone, 1, 2, 3 nodes with NATS; repeated)
    /// and write docs/bench/cluster.json and its section of docs/PERFORMANCE.md.
    Cluster(ClusterArgs),
}

#[derive(clap::Args)]
struct ClusterArgs {
    /// The chatter model every node runs.
    #[arg(long, value_enum, default_value = "prethread", hide_possible_values = true)]
    model: Model,
    /// Workers per node for the pool models.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Network sizes to measure; 0 is the model alone, without NATS.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,3")]
    nodes: Vec<usize>,
    /// Client counts (each gets the single-node sweep's flood and paced load).
    #[arg(long, value_delimiter = ',', default_value = "100,1000,5000")]
    clients: Vec<usize>,
    /// Times every run is made (interleaved), for medians and ranges.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Leave out the floods against one node plus one node without clients (the cost model's runs).
    #[arg(long)]
    no_spare_runs: bool,
    /// Clients registering at once.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// CPU every server process (each node and nats-server) is pinned to.
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    /// CPU the load generator is pinned to.
    #[arg(long, default_value_t = 1)]
    client_cpu: usize,
    /// The nats-server to run (default: the one on PATH, or /usr/sbin/nats-server).
    #[arg(long, value_name = "PATH")]
    nats_server: Option<PathBuf>,
    /// Directory for PERFORMANCE.md and bench/ (cluster.json; results.json is read).
    #[arg(long, default_value = "docs")]
    out: PathBuf,
    /// Hand-written analysis included in the section.
    #[arg(long, default_value = "docs/bench/CLUSTER-NOTES.md")]
    notes: PathBuf,
    /// Measure nothing: write the section again from OUT/bench/cluster.json and the notes file.
    #[arg(long)]
    render: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Start this chatter model on an ephemeral port and measure it (the default: iterative).
    #[arg(long, value_enum, conflicts_with = "target")]
    spawn: Option<Model>,
    /// Workers for a spawned prethread or prefork server (default: the number of CPUs, at most 64).
    #[arg(long, conflicts_with = "target")]
    workers: Option<usize>,
    /// Spawn a network instead of one server: a nats-server with JetStream on a free port (its
    /// store in a temporary directory) and N nodes of the --spawn model joined to it with
    /// --cluster; the clients are spread over the nodes round-robin.
    #[arg(long, value_name = "N", conflicts_with = "target", value_parser = clap::value_parser!(u16).range(1..=64))]
    nodes: Option<u16>,
    /// With --nodes: start N more nodes that no client connects to (they apply every event all
    /// the same: what a node pays for the network's events alone).
    #[arg(long, value_name = "N", requires = "nodes", default_value_t = 0)]
    spare_nodes: usize,
    /// With --nodes: the nats-server to run (default: the one on PATH, or /usr/sbin/nats-server).
    #[arg(long, value_name = "PATH", requires = "nodes")]
    nats_server: Option<PathBuf>,
    /// Measure servers already running (chatter or any IRC server) at HOST:PORT; several,
    /// comma-separated (the nodes of one network), spread the clients over them round-robin.
    #[arg(long, value_name = "ADDRS", value_delimiter = ',')]
    target: Vec<String>,
    /// PIDs of the --target servers, in the same order, to sample their CPU, memory, threads and
    /// fds (summed, and shown per node); PIDs beyond the addresses (e.g. nats-server's) are
    /// sampled too, summed in and shown apart.
    #[arg(long, value_name = "PIDS", value_delimiter = ',', requires = "target")]
    pid: Vec<u32>,
    #[command(flatten)]
    load: Load,
    /// Closed loop: senders wait while --window messages are in flight (sent, not yet read by
    /// the slowest client). Without it the load is an open loop: senders write as fast as TCP
    /// accepts, clients read as fast as they can.
    #[arg(long)]
    closed_loop: bool,
    /// Messages in flight allowed by --closed-loop.
    #[arg(long, requires = "closed_loop", default_value_t = chatter::bench::load::DEFAULT_WINDOW)]
    window: u64,
    /// Pin a spawned server (with --nodes: every node and nats-server) to this CPU (taskset).
    #[arg(long, conflicts_with = "target")]
    server_cpu: Option<usize>,
    /// Pin the load generator to this CPU.
    #[arg(long)]
    client_cpu: Option<usize>,
    /// Print one JSON line instead of the table.
    #[arg(long)]
    json: bool,
    /// Only connect and register (no channel, no messages): for idle memory.
    #[arg(long)]
    no_join: bool,
    /// Seconds without a delivery, after sending, before giving up on the rest.
    #[arg(long, default_value_t = 10)]
    quiet_timeout: u64,
}

#[derive(clap::Args)]
struct SweepArgs {
    /// chatter models to measure.
    // The models' descriptions would turn the whole page into long help;
    // a wrong name is still refused with the list of right ones.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "iterative,prethread,prefork",
        hide_possible_values = true
    )]
    models: Vec<Model>,
    /// Workers for the pool models (1 compares them with single-threaded peers on one core).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Client counts.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000,5000,10000")]
    clients: Vec<usize>,
    /// Idle clients for the memory-per-connection measurement.
    #[arg(long, default_value_t = 10_000)]
    idle_clients: usize,
    /// A peer server, NAME=COMMAND or NAME@N=COMMAND (N clients registering at once); the command
    /// gets {port} and {cpu} filled in and prints the server's PID last.
    #[arg(long, value_parser = parse_peer)]
    peer: Vec<chatter::bench::sweep::Peer>,
    /// Clients registering at once against peers (ngIRCd's listen backlog is 10).
    #[arg(long, default_value_t = 8)]
    peer_connect_concurrency: usize,
    /// Clients registering at once against chatter's models.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// CPU every server under test is pinned to (taskset).
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    /// CPU the load generator is pinned to.
    #[arg(long, default_value_t = 1)]
    client_cpu: usize,
    /// Directory for PERFORMANCE.md and bench/ (results.json, plots).
    #[arg(long, default_value = "docs")]
    out: PathBuf,
    /// Hand-written analysis included in the report.
    #[arg(long, default_value = "docs/bench/NOTES.md")]
    notes: PathBuf,
    /// Measure nothing: write the report again from OUT/bench/results.json and the notes file.
    #[arg(long)]
    render: bool,
}

/// An argument as a shell would need it written to get it back whole.
fn shell_quoted(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=@,:{}".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// This process's command line, as a shell would take it again: what a
/// report says produced it.
fn this_command() -> String {
    std::env::args().map(|a| shell_quoted(&a)).collect::<Vec<_>>().join(" ")
}

/// `NAME=COMMAND` or `NAME@CONCURRENCY=COMMAND`.
fn parse_peer(text: &str) -> Result<chatter::bench::sweep::Peer, String> {
    let (name, command) = text.split_once('=').ok_or("expected NAME=COMMAND or NAME@N=COMMAND")?;
    let (name, connect_concurrency) = match name.split_once('@') {
        Some((name, n)) => {
            (name, Some(n.parse::<usize>().map_err(|e| format!("bad concurrency {n:?}: {e}"))?))
        }
        None => (name, None),
    };
    Ok(chatter::bench::sweep::Peer {
        name: name.to_string(),
        command: command.to_string(),
        connect_concurrency,
    })
}

#[derive(clap::Args)]
struct ServeArgs {
    /// A TOML file of settings (see chatter.example.toml); flags given here override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on for plain TCP, IRC or plain lines (port 0 picks a free port; the chosen
    /// address is printed); `none` for no plain listener.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: String,
    /// Address to listen on for IRC over TLS (needs --tls-cert and --tls-key).
    #[arg(long, value_name = "ADDR")]
    tls_listen: Option<String>,
    /// Address to listen on for IRC over WebSocket and the web chat page (http://ADDR/).
    #[arg(long, value_name = "ADDR")]
    ws_listen: Option<String>,
    /// The same over TLS: wss:// and https://ADDR/ (needs --tls-cert and --tls-key).
    #[arg(long, value_name = "ADDR")]
    wss_listen: Option<String>,
    /// TLS certificate chain, PEM (reread on SIGHUP; `chatter cert` makes a self-signed one).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// TLS private key, PEM (reread on SIGHUP).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Concurrency model.
    #[arg(long, value_enum, default_value = "iterative")]
    model: Model,
    /// Workers in the pool models (default: the number of CPUs).
    #[arg(long)]
    workers: Option<usize>,
    /// Name the server uses as the source of its messages.
    #[arg(long, default_value = DEFAULT_SERVER_NAME)]
    server_name: String,
    /// Network name advertised to IRC clients.
    #[arg(long, default_value = info::DEFAULT_NETWORK)]
    network: String,
    /// One line about this server, as LINKS and WHOIS show it.
    #[arg(long, default_value = info::DEFAULT_DESCRIPTION)]
    server_description: String,
    /// File whose lines are the message of the day (without it, MOTD answers 422).
    #[arg(long)]
    motd: Option<PathBuf>,
    /// Password clients must give with PASS before registering.
    #[arg(long, env = "CHATTER_PASSWORD")]
    password: Option<String>,
    /// Most clients connected at once; more are turned away.
    #[arg(long, default_value_t = info::DEFAULT_MAX_CLIENTS)]
    max_clients: usize,
    /// Channels one client may be in at once (advertised as CHANLIMIT; more get 405).
    #[arg(long, default_value_t = info::DEFAULT_CHANNELS_PER_CLIENT)]
    max_channels_per_client: usize,
    /// Channels that may exist at once (creating more gets 437).
    #[arg(long, default_value_t = info::DEFAULT_MAX_CHANNELS)]
    max_channels: usize,
    /// Outbound queue per client in bytes; a client that falls this far behind is dropped.
    #[arg(long, default_value_t = DEFAULT_SENDQ_BYTES)]
    sendq: usize,
    /// Seconds without a complete line before an IRC client is PINGed (and as many again before it
    /// is dropped); plain clients are never PINGed, TCP keepalive with this period finds dead ones.
    #[arg(long, default_value_t = info::DEFAULT_PING_INTERVAL.as_secs())]
    ping_interval: u64,
    /// Seconds a new connection has to register (NICK and USER, or a name) before it is closed.
    #[arg(long, default_value_t = info::DEFAULT_REGISTRATION_TIMEOUT.as_secs())]
    registration_timeout: u64,
    /// Turn per-client flood control off (for benchmarks; never on an open server).
    #[arg(long)]
    no_flood_control: bool,
    /// Flood control: lines a client may send at once before the rate applies.
    #[arg(long, default_value_t = info::DEFAULT_BURST)]
    flood_burst: u32,
    /// Flood control: lines per second handled after the burst (the rest wait).
    #[arg(long, default_value_t = info::DEFAULT_RATE)]
    flood_rate: u32,
    /// Flood control: bytes of waiting input beyond which a client is dropped (Excess Flood).
    #[arg(long, default_value_t = info::DEFAULT_RECVQ_BYTES)]
    flood_recvq: usize,
    /// ADMIN's first line: where the server is.
    #[arg(long)]
    admin_location: Option<String>,
    /// ADMIN's second line: who runs it.
    #[arg(long)]
    admin_description: Option<String>,
    /// ADMIN's e-mail line: how to reach them.
    #[arg(long)]
    admin_email: Option<String>,
    /// Be one node of a network: the NATS servers (with JetStream) that
    /// carry its event log, e.g. nats://10.0.0.5:4222,nats://10.0.0.6:4222.
    #[arg(long, value_name = "URLS")]
    cluster: Option<String>,
    /// This node's name in the network (unique; needed with --cluster).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// With --cluster: copies JetStream keeps of the event stream (1, or 3
    /// on a three-server NATS cluster).
    #[arg(long, value_name = "N")]
    cluster_replicas: Option<usize>,
    /// With --cluster: how long the stream keeps events, e.g. 24h.
    #[arg(long, value_name = "DURATION")]
    cluster_retention: Option<String>,
    /// With --cluster: seconds without a node's heartbeat before its users
    /// are seen to quit (Node lost).
    #[arg(long, value_name = "SECS")]
    node_timeout: Option<u64>,
    /// With --cluster: events between two snapshots of the directory.
    #[arg(long, value_name = "EVENTS")]
    snapshot_every: Option<u64>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes are noise in a log file or a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Serve(args) => {
            let given = matches.subcommand_matches("serve").expect("the serve subcommand was parsed");
            serve(args, given)
        }
        Command::Bench(args) => bench(args),
        Command::Passwd => passwd(),
    }
}

fn bench(args: BenchArgs) -> anyhow::Result<()> {
    use chatter::bench::{cluster_sweep, run, summary, sweep};
    if let Some(BenchCommand::Cluster(c)) = args.command {
        if c.render {
            let cluster = cluster_sweep::render(&c.out, &c.notes)?;
            eprintln!("rewrote the section of {} runs in {}", cluster.runs.len(), c.out.display());
            return Ok(());
        }
        let plan = cluster_sweep::ClusterSweepPlan {
            model: c.model,
            workers: c.workers,
            nodes: c.nodes,
            clients: c.clients,
            repeats: c.repeats,
            spare_runs: !c.no_spare_runs,
            connect_concurrency: c.connect_concurrency,
            server_cpu: Some(c.server_cpu),
            client_cpu: Some(c.client_cpu),
            nats_server: c.nats_server,
            out: c.out,
            notes: Some(c.notes),
            command: this_command(),
        };
        let cluster = cluster_sweep::cluster_sweep(&plan)?;
        eprintln!("wrote {} runs to {}", cluster.runs.len(), plan.out.join("bench/cluster.json").display());
        return Ok(());
    }
    if let Some(BenchCommand::Sweep(s)) = args.command {
        if s.render {
            let sweep = sweep::render(&s.out, &s.notes)?;
            eprintln!("rewrote the report of {} runs in {}", sweep.runs.len(), s.out.display());
            return Ok(());
        }
        let plan = sweep::SweepPlan {
            models: s.models,
            workers: s.workers,
            clients: s.clients,
            idle_clients: s.idle_clients,
            peers: s.peer,
            peer_connect_concurrency: s.peer_connect_concurrency,
            connect_concurrency: s.connect_concurrency,
            server_cpu: Some(s.server_cpu),
            client_cpu: Some(s.client_cpu),
            out: s.out,
            notes: Some(s.notes),
            command: this_command(),
        };
        let sweep = sweep::sweep(&plan)?;
        eprintln!("wrote {} runs to {}", sweep.runs.len(), plan.out.join("PERFORMANCE.md").display());
        return Ok(());
    }
    let r = args.run;
    let (target, workers_defaulted) = if r.target.is_empty() {
        let model = r.spawn.unwrap_or(Model::Iterative);
        check_workers(model, r.workers)?;
        let pool = model != Model::Iterative;
        let workers = r.workers.or_else(|| pool.then(default_workers));
        let target = match r.nodes {
            None => run::Target::Spawn { model, workers },
            Some(nodes) => run::Target::Cluster {
                model,
                workers,
                nodes: usize::from(nodes),
                spare_nodes: r.spare_nodes,
                nats_server: r.nats_server,
            },
        };
        (target, pool && r.workers.is_none())
    } else {
        let name = r.target.join(",");
        (run::Target::Running { addrs: r.target, pids: r.pid, name }, false)
    };
    let load = Load { window: r.closed_loop.then_some(r.window), ..r.load };
    let plan = run::RunPlan {
        target,
        load,
        server_cpu: r.server_cpu,
        client_cpu: r.client_cpu,
        progress: !r.json,
        quiet_timeout: Duration::from_secs(r.quiet_timeout),
        join: !r.no_join,
    };
    let result = run::run(&plan)?;
    if r.json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        print!("{}", summary::summary(&result, workers_defaulted));
    }
    let problems = summary::problems(&result);
    anyhow::ensure!(problems.is_empty(), "the run failed: {}", problems.join("; "));
    Ok(())
}

/// What the command line said, in the config file's shape: only the flags
/// given (or their environment variables), so that the file shows through
/// where they are silent, at start and at every reload.
fn command_line(args: ServeArgs, given: &ArgMatches) -> ConfigFile {
    let said = |id: &str| {
        matches!(given.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable))
    };
    fn when<T>(flag_given: bool, value: T) -> Option<T> {
        flag_given.then_some(value)
    }
    ConfigFile {
        server: ServerSection {
            listen: when(said("listen"), args.listen),
            tls_listen: args.tls_listen,
            ws_listen: args.ws_listen,
            wss_listen: args.wss_listen,
            model: when(said("model"), args.model),
            workers: args.workers,
            name: when(said("server_name"), args.server_name),
            network: when(said("network"), args.network),
            description: when(said("server_description"), args.server_description),
            motd: args.motd,
            password: args.password,
        },
        limits: LimitsSection {
            max_clients: when(said("max_clients"), args.max_clients),
            max_channels_per_client: when(said("max_channels_per_client"), args.max_channels_per_client),
            max_channels: when(said("max_channels"), args.max_channels),
            sendq: when(said("sendq"), args.sendq),
            ping_interval: when(said("ping_interval"), args.ping_interval),
            registration_timeout: when(said("registration_timeout"), args.registration_timeout),
        },
        flood: FloodSection {
            enabled: when(said("no_flood_control"), !args.no_flood_control),
            burst: when(said("flood_burst"), args.flood_burst),
            rate: when(said("flood_rate"), args.flood_rate),
            recvq: when(said("flood_recvq"), args.flood_recvq),
        },
        admin: AdminSection {
            location: args.admin_location,
            description: args.admin_description,
            email: args.admin_email,
        },
        operators: Vec::new(),
        cluster: ClusterSection {
            urls: args.cluster,
            node: args.node,
            replicas: args.cluster_replicas,
            retention: args.cluster_retention,
            node_timeout: args.node_timeout,
            snapshot_every: args.snapshot_every,
        },
        tls: TlsSection { cert: args.tls_cert, key: args.tls_key },
    }
}

/// `chatter passwd`: the hash an `[[operators]]` entry holds, from the
/// password on stdin's first line (so it is not in the shell's history).
fn passwd() -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin().read_line(&mut password).context("reading the password")?;
    let password = password.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!password.is_empty(), "no password on stdin");
    let hash = chatter::chat::info::hash_password(password).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    println!("{hash}");
    Ok(())
}

fn serve(args: ServeArgs, given: &ArgMatches) -> anyhow::Result<()> {
    // Every client is a descriptor: take all the kernel allows this process.
    let open_files = chatter::rlimit::raise_open_files(u64::MAX);
    tracing::debug!(open_files, "open-files limit");
    let path = args.config.clone();
    let config = Reloader::new(path, command_line(args, given)).start()?;
    server::run(config).context("server failed")
}

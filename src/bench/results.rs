//! The bench's data model: what one run was asked and measured, in a form
//! that is printed as a table, written as one JSON line (`--json`), and
//! what a whole sweep collected, written as `docs/bench/results.json` and
//! read back to draw the report.
//!
//! Why it is shaped so: everything that renders (the report, its tables,
//! plots and targets) and everything that measures (a run, a sweep) meets
//! here and nowhere else, so the renderers depend on the data and never on
//! each other. The field names are the JSON's: committed results files must
//! keep loading.

use std::fmt;
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Which clients the load generator plays: the names are the command
/// line's (`--proto`) and the JSON's.
///
/// Not [`crate::chat::Protocol`], though both say IRC or plain lines: that
/// one is how chatter classifies a connection it hears, inside the chat
/// core; this one is what the bench sends to any server (a peer speaks only
/// IRC), and it names its plain variant "line", as results files already do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// IRC clients (NICK/USER, JOIN, PRIVMSG).
    Irc,
    /// Plain-line clients (a name, then lines).
    Line,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Irc => "irc",
            Proto::Line => "line",
        })
    }
}

/// The load a run puts on a server: who connects, who sends, how much and
/// how fast. One description for the command line (`chatter bench`
/// flattens it into its flags, and the field docs are their help), a run's
/// plan, the simulated clients and the results file (flattened into
/// [`RunSpec`], so the JSON keeps its flat field names, in this order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct Load {
    /// Protocol the simulated clients speak.
    #[arg(long, value_enum, default_value = "irc")]
    pub proto: Proto,
    /// Simulated clients; all join one channel.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// How many of the clients send.
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Messages each sender sends.
    #[arg(long, default_value_t = 100)]
    pub messages: usize,
    /// Total messages per second over all senders; 0 = unpaced (see --closed-loop).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Closed loop: at most this many messages in flight (sent, not yet
    /// received by the slowest receiver). `None`: open loop, senders write
    /// as fast as TCP accepts.
    // The command line says this in two flags, `--closed-loop` and
    // `--window` with a default, which the binary folds into one value.
    #[arg(skip)]
    #[serde(default)]
    pub window: Option<u64>,
    /// Clients connecting and registering at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
}

impl Load {
    /// Clients that only register and stay silent: a run for memory, with
    /// nothing to deliver.
    pub(crate) fn is_idle(&self) -> bool {
        self.senders == 0 || self.messages == 0
    }
}

/// What was asked of a run: which server, under which load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The server under test: a chatter model ("iterative", "prethread",
    /// "prefork") or a peer's name ("ngircd").
    pub server: String,
    /// Pool size for chatter's pool models.
    pub workers: Option<usize>,
    /// A network of chatter nodes whose log is carried by NATS, when the
    /// bench started one (`--nodes`); `None` for a server on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterSpec>,
    /// How the clients' connections were secured; `None`: plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    #[serde(flatten)]
    pub load: Load,
}

/// Clients that connected with TLS (`--tls`), and what they trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsSpec {
    /// Whether the clients checked the server's certificate; false only
    /// with `--tls-insecure`, and then every report says so.
    pub verified: bool,
    /// What they trusted, in words: the certificate the bench made for
    /// the server it started, a CA file, or nothing.
    pub trust: String,
}

/// The shape of a network the bench started: one nats-server with
/// JetStream, and chatter nodes of the run's model joined through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSpec {
    /// Nodes the clients are spread over, round-robin.
    pub nodes: usize,
    /// Further nodes no client connects to: they apply every event of the
    /// network all the same, which is what they are there to measure.
    #[serde(default)]
    pub spare_nodes: usize,
}

/// Delivery latency percentiles, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

/// The server's resource use, summed over its processes and threads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// User + system CPU seconds used during the run.
    pub cpu_secs: f64,
    /// Of those, the seconds used while messages flowed.
    #[serde(default)]
    pub flow_cpu_secs: f64,
    /// Largest sum of resident memory over the server's processes seen while sampling.
    pub peak_rss_bytes: u64,
    /// Resident memory when all clients were connected, before messages flowed.
    pub connected_rss_bytes: u64,
    pub processes: usize,
    /// Threads at the end of the connect phase (largest seen).
    pub threads: usize,
    /// Voluntary + involuntary context switches during the run.
    pub context_switches: u64,
    /// Open file descriptors when all clients were connected.
    pub open_fds: usize,
}

/// One node of a run spread over several addresses (or the one address of
/// a cluster node no client was sent to): what its clients got and what it
/// used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeResult {
    /// The node's name (a spawned node's `--node`), or its address.
    pub name: String,
    /// Where its clients connected; empty for a node measured only by PID.
    pub addr: String,
    /// Clients connected to it, and of those, senders.
    pub clients: usize,
    pub senders: usize,
    pub delivered: u64,
    pub lost: u64,
    pub disconnected: usize,
    /// Its clients that saw another order than the network's.
    pub order_violations: usize,
    /// Its clients whose order could not be checked.
    #[serde(default)]
    pub order_unverified: usize,
    /// Its process tree's use, when its PID was known.
    pub server: Option<Usage>,
}

/// A process measured beside the nodes (a cluster's nats-server): its
/// use is in the run's total, and shown apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessUsage {
    pub name: String,
    pub usage: Usage,
}

/// Why the server closed some clients' connections during a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisconnectReason {
    /// The server's closing line (`ERROR :Closing Link: ...`) or what the
    /// socket said ("connection reset").
    pub reason: String,
    /// Clients disconnected for this reason.
    pub clients: usize,
}

/// Everything one run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub spec: Option<RunSpec>,
    /// Clients that connected and registered.
    pub connected: usize,
    /// Seconds to connect and register them all.
    pub connect_secs: f64,
    /// Seconds for all of them to join the channel afterwards (every JOIN
    /// is sent to everyone already in, so this grows with the square of N).
    #[serde(default)]
    pub join_secs: f64,
    /// Deliveries the run should have produced: messages × receivers each.
    pub offered: u64,
    pub delivered: u64,
    /// Deliveries that never arrived, including those a disconnected client missed.
    pub lost: u64,
    pub duplicated: u64,
    /// Whether every receiver saw the messages in one order (the
    /// network's, whichever node it was on), on what it received.
    pub order_consistent: bool,
    /// The order could not be checked: the run stopped short, or every
    /// receiver it is compared against was disconnected. `order_consistent`
    /// is then false without a disagreement having been seen.
    #[serde(default)]
    pub order_unchecked: bool,
    /// Receivers that saw another order than the network's; `None` in
    /// results recorded before it was counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_violations: Option<usize>,
    /// Receivers whose order could not be compared with the network's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_unverified: Option<usize>,
    /// Clients whose connection the server closed during the run.
    #[serde(default)]
    pub disconnected: usize,
    /// The first few distinct reasons for those disconnects.
    #[serde(default)]
    pub disconnect_reasons: Vec<DisconnectReason>,
    /// Seconds from the first message sent to the last delivery received.
    pub flow_secs: f64,
    pub deliveries_per_sec: f64,
    pub latency: Latency,
    /// The server's use; `None` when its PID was not known. With several
    /// PIDs (a cluster's nodes and its nats-server), their sum.
    pub server: Option<Usage>,
    /// Per node, when the run spread its clients over several addresses or
    /// was given several PIDs: clients, loss, order and use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeResult>,
    /// Processes measured beside the nodes (nats-server), in `server` too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_processes: Vec<ProcessUsage>,
    /// CPU seconds the rest of the machine (neither the server's processes
    /// nor this generator) used while messages flowed: far from zero means
    /// someone else's work shared the cores during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub others_flow_cpu_secs: Option<f64>,
    /// The load generator's own CPU seconds (user + system) for the run.
    pub generator_cpu_secs: f64,
    /// Of those, the seconds used while messages flowed: close to
    /// `flow_secs` would mean the generator, not the server, set the pace.
    #[serde(default)]
    pub generator_flow_cpu_secs: f64,
    /// Why the run stopped short, if it did.
    pub error: Option<String>,
    /// What the TLS clients negotiated (version, cipher suite, key
    /// exchange), read from the first connection; `None` in plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_session: Option<String>,
}

/// How fast new clients get in (`chatter bench --handshakes`): every one
/// a new TCP connection, a TLS handshake with `--tls`, and an IRC
/// registration up to 001, then QUIT. Attempts follow each other as fast
/// as the server's kernel accepts the connections, at most `in_flight`
/// unfinished at once; every failure is counted with its reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HandshakeResult {
    /// The server under test, as in [`RunSpec`].
    pub server: String,
    pub workers: Option<usize>,
    /// `None`: plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// New clients attempted.
    pub attempted: usize,
    /// The most attempts left unfinished at once (the bound), and the most
    /// there were.
    pub in_flight: usize,
    pub peak_in_flight: usize,
    /// Clients that got 001.
    pub completed: usize,
    /// Clients that did not, by reason (the stage and what went wrong).
    pub failures: Vec<DisconnectReason>,
    /// From the first attempt to the last client's 001.
    pub secs: f64,
    /// Completed clients per second over `secs`.
    pub per_sec: f64,
    /// Each completed client's time from starting its TCP connect to 001.
    pub latency: Latency,
    /// Of that, the TLS handshake alone (after the TCP connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_latency: Option<Latency>,
    /// What the first TLS connection negotiated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_session: Option<String>,
    /// The server's CPU seconds (all its processes) over the measurement.
    pub server_cpu_secs: Option<f64>,
    /// The load generator's own CPU seconds over it: close to `secs` means
    /// the generator, not the server, set the rate.
    pub generator_cpu_secs: f64,
    /// CPU seconds the rest of the machine used meanwhile: far from zero
    /// means someone else's work shared the cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub others_cpu_secs: Option<f64>,
    /// Why it stopped short, if it did.
    pub error: Option<String>,
}

impl HandshakeResult {
    /// Attempts that failed.
    pub fn failed(&self) -> usize {
        self.failures.iter().map(|f| f.clients).sum()
    }
}

/// What `chatter bench tls` measured; written as `docs/bench/tls.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsSweep {
    pub command: String,
    pub generated: String,
    /// The commit measured, as in [`Sweep::commit`].
    pub commit: String,
    pub machine: Machine,
    pub pinning: String,
    /// The connection-rate measurements, plaintext and TLS.
    pub handshakes: Vec<HandshakeResult>,
    /// The delivery runs, plaintext and TLS under the same loads.
    pub runs: Vec<RunResult>,
    /// Hand-written analysis (Markdown), included verbatim.
    pub notes: String,
}

/// Writes any results file as pretty-printed JSON, with a final newline.
pub(crate) fn write_pretty<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    text.push('\n');
    fs::write(path, text)
}

/// Reads a results file written by [`write_pretty`].
pub(crate) fn read_pretty<T: serde::de::DeserializeOwned>(path: &Path) -> io::Result<T> {
    let bytes = fs::read(path)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))
}

/// The machine a sweep ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_bytes: u64,
    pub kernel: String,
    pub cpu_model: String,
}

/// A server's resident memory with no clients and with `clients` idle ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleMemory {
    /// The server's label, as made by `label`, e.g. "prethread/1".
    pub server: String,
    pub clients: usize,
    pub rss_empty_bytes: u64,
    pub rss_loaded_bytes: u64,
}

impl IdleMemory {
    /// Bytes each idle connection costs: (loaded − empty) / clients. Signed
    /// because on a server whose memory barely grows, sampling noise can make
    /// the difference negative, and hiding that would overstate precision.
    /// `None` when no clients were connected.
    pub(crate) fn bytes_per_connection(&self) -> Option<f64> {
        (self.clients > 0)
            .then(|| (self.rss_loaded_bytes as f64 - self.rss_empty_bytes as f64) / self.clients as f64)
    }
}

/// How a peer (another IRC server measured for comparison) was set up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerNote {
    pub name: String,
    /// The command line that started it.
    pub command: String,
    /// Its configuration, in prose or as the relevant configuration lines.
    pub configuration: String,
}

/// Everything one sweep produced; written as `docs/bench/results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    /// The exact command that produced it.
    pub command: String,
    /// When it was produced, as text.
    pub generated: String,
    /// The commit measured (`git rev-parse HEAD`, marked when the tree had
    /// uncommitted changes); empty if it was not recorded.
    #[serde(default)]
    pub commit: String,
    pub machine: Machine,
    /// How server and load generator were placed on CPUs, e.g. "server on CPU
    /// 0, load generator on CPU 1 (taskset)".
    pub pinning: String,
    /// Each run, with `spec` set.
    pub runs: Vec<RunResult>,
    pub idle: Vec<IdleMemory>,
    pub peers: Vec<PeerNote>,
    /// Hand-written analysis (Markdown), included verbatim.
    pub notes: String,
}

/// The name a server goes by in tables and legends: the model or peer name,
/// with the pool size when there is one ("iterative", "prethread/1",
/// "ngircd"), and the network's shape when the bench started one
/// ("prethread/1 + NATS, 3 nodes").
pub(crate) fn label(spec: &RunSpec) -> String {
    let server = match spec.workers {
        Some(workers) => format!("{}/{workers}", spec.server),
        None => spec.server.clone(),
    };
    let server = match &spec.tls {
        None => server,
        Some(tls) if tls.verified => format!("{server} + TLS"),
        Some(_) => format!("{server} + TLS (not verified)"),
    };
    match spec.cluster {
        None => server,
        Some(cluster) => {
            let nodes =
                if cluster.nodes == 1 { "1 node".to_string() } else { format!("{} nodes", cluster.nodes) };
            let spare = match cluster.spare_nodes {
                0 => String::new(),
                n => format!(" + {n} without clients"),
            };
            format!("{server} + NATS, {nodes}{spare}")
        }
    }
}

/// Writes `sweep` to `path` as pretty-printed JSON.
pub(crate) fn write_json(path: &Path, sweep: &Sweep) -> io::Result<()> {
    write_pretty(path, sweep)
}

/// Reads a sweep written by [`write_json`].
pub(crate) fn read_json(path: &Path) -> io::Result<Sweep> {
    // The error names the file: the caller usually reports only this error.
    read_pretty(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::fixtures::{spec, sweep};

    #[test]
    fn labels() {
        assert_eq!(label(&spec("iterative", None, 1, 0.0)), "iterative");
        assert_eq!(label(&spec("prethread", Some(1), 1, 0.0)), "prethread/1");
        assert_eq!(label(&spec("ngircd", None, 1, 0.0)), "ngircd");
        let mut clustered = spec("prethread", Some(1), 1, 0.0);
        clustered.cluster = Some(ClusterSpec { nodes: 1, spare_nodes: 0 });
        assert_eq!(label(&clustered), "prethread/1 + NATS, 1 node");
        clustered.cluster = Some(ClusterSpec { nodes: 3, spare_nodes: 1 });
        assert_eq!(label(&clustered), "prethread/1 + NATS, 3 nodes + 1 without clients");
    }

    #[test]
    fn idle_per_connection() {
        let idle =
            IdleMemory { server: "x".into(), clients: 4, rss_empty_bytes: 1000, rss_loaded_bytes: 900 };
        assert_eq!(idle.bytes_per_connection(), Some(-25.0));
        let none = IdleMemory { clients: 0, ..idle };
        assert_eq!(none.bytes_per_connection(), None);
    }

    #[test]
    fn json_round_trip() {
        let dir = std::env::temp_dir().join(format!("chatter-report-json-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.json");
        let sweep = sweep();
        write_json(&path, &sweep).unwrap();
        assert!(fs::read_to_string(&path).unwrap().contains("\n  \"command\": "));
        assert_eq!(read_json(&path).unwrap(), sweep);
        fs::write(&path, "{").unwrap();
        let err = read_json(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("results.json"));
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The results files committed under docs/bench load, and write back
    /// byte for byte: a renamed or reordered field would show here before
    /// it showed as a diff in a regenerated report.
    #[test]
    fn committed_results_load_and_write_back_unchanged() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/bench");
        let mut checked = 0;
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                // tls.json is the one of another shape.
                let mut text = if path.file_name().is_some_and(|n| n == "tls.json") {
                    serde_json::to_string_pretty(&read_pretty::<TlsSweep>(&path).unwrap()).unwrap()
                } else {
                    serde_json::to_string_pretty(&read_json(&path).unwrap()).unwrap()
                };
                text.push('\n');
                assert!(text == fs::read_to_string(&path).unwrap(), "{} changed", path.display());
                checked += 1;
            }
        }
        assert!(checked > 0, "no results file in {}", dir.display());
    }
}

//! What one benchmark run measured, in a form that is printed as a table,
//! written as one JSON line (`--json`), collected into
//! `docs/bench/results.json` by a sweep and read back to draw the report.

use serde::{Deserialize, Serialize};

/// What was asked of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The server under test: a chatter model ("iterative", "prethread",
    /// "prefork") or a peer's name ("ngircd").
    pub server: String,
    /// Pool size for chatter's pool models.
    pub workers: Option<usize>,
    /// "irc" or "line".
    pub proto: String,
    pub clients: usize,
    pub senders: usize,
    /// Messages per sender.
    pub messages: usize,
    /// Total send rate in messages per second; 0 = unpaced.
    pub rate: f64,
    /// Closed loop: at most this many messages in flight (sent, not yet
    /// received by the slowest receiver). `None`: open loop, senders write
    /// as fast as TCP accepts.
    #[serde(default)]
    pub window: Option<u64>,
    /// Clients connecting and registering at once.
    pub connect_concurrency: usize,
}

impl RunSpec {
    /// Clients that only register and stay silent: a run for memory, with
    /// nothing to deliver.
    pub fn is_idle(&self) -> bool {
        self.senders == 0 || self.messages == 0
    }
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
    /// Whether every receiver that stayed connected saw the messages in one
    /// consistent order.
    pub order_consistent: bool,
    /// The order could not be checked: the run stopped short, or every
    /// receiver it is compared against was disconnected. `order_consistent`
    /// is then false without a disagreement having been seen.
    #[serde(default)]
    pub order_unchecked: bool,
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
    /// The server's use; `None` when its PID was not known.
    pub server: Option<Usage>,
    /// The load generator's own CPU seconds (user + system) for the run.
    pub generator_cpu_secs: f64,
    /// Of those, the seconds used while messages flowed: close to
    /// `flow_secs` would mean the generator, not the server, set the pace.
    #[serde(default)]
    pub generator_flow_cpu_secs: f64,
    /// Why the run stopped short, if it did.
    pub error: Option<String>,
}

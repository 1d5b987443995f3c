//! What `chatter serve` was asked to do, in one value every model reads.

use std::sync::Arc;
use std::time::Duration;

use crate::chat::ServerInfo;
use crate::server::connection::Limits;
use crate::server::connection::flood::FloodPolicy;
use crate::server::connection::liveness::Timeouts;

/// Which concurrency model serves the clients. Also the command line's
/// `--model`/`--spawn` value (the variant docs are its help text) and the
/// bench's name for what it spawns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// One thread per client blocking in recv; one locked directory.
    Iterative,
    /// A pool of event-loop threads sharing an ordered event log.
    Prethread,
    /// A supervisor and a pool of event-loop processes sharing the log in shared memory.
    Prefork,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on, e.g. `127.0.0.1:6667` or `[::1]:0`.
    pub listen: String,
    pub model: Model,
    /// Pool size for prethread and prefork (1 to 64).
    pub workers: usize,
    pub info: Arc<ServerInfo>,
    /// Connections beyond this are refused with a closing line.
    pub max_clients: usize,
    /// Outbound queue limit per connection, in bytes.
    pub sendq_bytes: usize,
    /// A client silent this long is PINGed; silent as long again, dropped.
    pub ping_interval: Duration,
    /// A connection not registered this long after it opened is closed.
    pub registration_timeout: Duration,
    /// Per-client flood control; `None` turns it off (benchmarks).
    pub flood: Option<FloodPolicy>,
}

impl Config {
    /// What every connection is held to.
    pub fn limits(&self) -> Limits {
        Limits { timeouts: self.timeouts(), flood: self.flood, info: self.info.clone() }
    }

    pub fn timeouts(&self) -> Timeouts {
        Timeouts { ping_interval: self.ping_interval, registration: self.registration_timeout }
    }
}

//! One chat network on several machines: the event log carried by NATS
//! JetStream.
//!
//! Every model already applies one ordered log of events to replicas of
//! one directory. A cluster node keeps doing exactly that; what changes is
//! who orders the events. Alone, the local log's order is the order. In a
//! cluster, a node's events are published to one JetStream stream, and
//! every node applies the stream, in stream order, to its replicas: one
//! total order for the whole network, so that a nick or channel race
//! between two nodes is settled as one between two workers is, and every
//! node's replicas agree with every other's.
//!
//! - [`ClusterConfig`]: the NATS servers, this node's name, and the
//!   stream's retention, from the command line or `[cluster]`.
//! - `envelope`: what one stream message holds (a versioned event and who
//!   proposed it).
//! - `nats`: connecting, and the stream and buckets the network shares;
//!   a node's number and epoch (see `node::NodeSpace`).
//! - `bridge`: the task that carries a node's proposals to the stream and
//!   the stream back into the node (see `pool::entry`); it also beats the
//!   node's heartbeat, declares silent nodes lost (`liveness`), and writes
//!   snapshots of the directory (`snapshots`) from which nodes join.
//!
//! Why JetStream: it is an existing, replicated, persistent log with
//! exactly the guarantees needed (one order per stream, acknowledged
//! writes, deduplication of retried writes by message id, replay from any
//! sequence), so chatter writes none of that itself.

mod bridge;
mod chores;
mod envelope;
mod liveness;
mod nats;
mod snapshots;

use std::time::Duration;

pub use bridge::{Bridge, BridgeError, BridgeSide, Proposal};
pub use envelope::Envelope;
pub use nats::{Joined, Nats, connect, join};

use crate::server::config_file::ClusterSection;

/// Default `--cluster-replicas`.
pub const DEFAULT_REPLICAS: usize = 1;
/// Default `--cluster-retention`.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Default `--node-timeout`.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `--snapshot-every`.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 10_000;
/// The longest a registration refused for a nick held by another node's
/// connection from the same address waits for that holder's QUIT: the
/// hang-up must be read there and its QUIT cross the network twice, and
/// nothing here can see the other node's socket (pool: `worker::held`;
/// iterative: `iterative::client`). Two seconds: with one, a loaded
/// machine (CI running the suite) saw the QUIT arrive later about once in
/// a few hundred reconnections, and the client got 433 for its own nick.
pub const REMOTE_HOLDER_PATIENCE: Duration = Duration::from_secs(2);
/// Most nodes a network may have: node numbers must leave every node its
/// own range of worker numbers in a `ConnId`'s 16 bits.
pub const MAX_NODES: u16 = u16::MAX / crate::chat::ConnId::CELLS_PER_NODE - 1;

/// What makes a server a node of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// NATS server URLs (any of them will do; the client fails over).
    pub urls: Vec<String>,
    /// This node's name, unique in the network: it keeps its node number
    /// across restarts.
    pub node: String,
    /// Copies JetStream keeps of the stream and the buckets.
    pub replicas: usize,
    /// How long the stream keeps an event: a node that starts catches up
    /// from a snapshot and what the stream still has after it.
    pub retention: Duration,
    /// How long a node may be silent before the network declares it lost.
    pub node_timeout: Duration,
    /// Events between two snapshots this node writes.
    pub snapshot_every: u64,
}

impl ClusterConfig {
    /// The cluster settings of `section`, checked; `None` without URLs (a
    /// server on its own). Errors say which setting and why, in the flag's
    /// name.
    pub fn from_section(section: &ClusterSection) -> Result<Option<ClusterConfig>, String> {
        let Some(urls) = &section.urls else {
            if section.node.is_some() {
                return Err("--node needs --cluster".into());
            }
            return Ok(None);
        };
        let urls: Vec<String> =
            urls.split(',').map(str::trim).filter(|u| !u.is_empty()).map(String::from).collect();
        if urls.is_empty() {
            return Err("--cluster needs at least one NATS URL".into());
        }
        let node = section.node.clone().ok_or("--cluster needs --node NAME")?;
        let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
        if !(1..=32).contains(&node.len()) || !node.chars().all(name_ok) {
            return Err("--node must be 1 to 32 letters, digits, '-' or '_'".into());
        }
        let replicas = section.replicas.unwrap_or(DEFAULT_REPLICAS);
        if !(1..=5).contains(&replicas) {
            return Err("--cluster-replicas must be 1 to 5".into());
        }
        let retention = match &section.retention {
            None => DEFAULT_RETENTION,
            Some(text) => humantime::parse_duration(text)
                .map_err(|e| format!("--cluster-retention {text:?}: {e} (say e.g. 24h or 90m)"))?,
        };
        if retention < Duration::from_secs(60) {
            return Err("--cluster-retention must be at least a minute".into());
        }
        let node_timeout = section.node_timeout.map_or(DEFAULT_NODE_TIMEOUT, Duration::from_secs);
        if node_timeout < Duration::from_secs(2) {
            return Err("--node-timeout must be at least 2 seconds".into());
        }
        let snapshot_every = section.snapshot_every.unwrap_or(DEFAULT_SNAPSHOT_EVERY);
        if snapshot_every < 100 {
            return Err("--snapshot-every must be at least 100 events".into());
        }
        Ok(Some(ClusterConfig { urls, node, replicas, retention, node_timeout, snapshot_every }))
    }

    /// How often a node says it is alive: often enough that a few missed
    /// beats, not one, make it lost.
    pub fn heartbeat_every(&self) -> Duration {
        self.node_timeout / 4
    }
}

/// The names one network's stream and buckets go by, from the network's
/// name (`--network`): several networks may share one NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub stream: String,
    pub subject: String,
    /// Node names to node numbers, and each node's epoch.
    pub nodes: String,
    /// Heartbeats.
    pub alive: String,
    /// Snapshots of the directory.
    pub snapshots: String,
}

impl Names {
    pub fn for_network(network: &str) -> Names {
        // Stream and bucket names allow letters, digits, '-' and '_'.
        let safe: String =
            network.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        Names {
            stream: format!("CHATTER_{safe}"),
            subject: format!("chatter.{safe}.events"),
            nodes: format!("chatter_{safe}_nodes"),
            alive: format!("chatter_{safe}_alive"),
            snapshots: format!("chatter_{safe}_snapshots"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(urls: &str, node: &str) -> ClusterSection {
        ClusterSection { urls: Some(urls.into()), node: Some(node.into()), ..Default::default() }
    }

    #[test]
    fn alone_without_urls() {
        assert_eq!(ClusterConfig::from_section(&ClusterSection::default()), Ok(None));
        let node_only = ClusterSection { node: Some("a".into()), ..Default::default() };
        assert!(ClusterConfig::from_section(&node_only).unwrap_err().contains("--cluster"));
    }

    #[test]
    fn settings_are_checked() {
        let ok =
            ClusterConfig::from_section(&section("nats://a:4222, nats://b:4222", "node-1")).unwrap().unwrap();
        assert_eq!(ok.urls, ["nats://a:4222", "nats://b:4222"]);
        assert_eq!((ok.replicas, ok.retention), (DEFAULT_REPLICAS, DEFAULT_RETENTION));
        for (bad, says) in [
            (section(" , ", "n"), "--cluster"),
            (section("nats://a", ""), "--node"),
            (section("nats://a", "two words"), "--node"),
            (ClusterSection { replicas: Some(7), ..section("nats://a", "n") }, "--cluster-replicas"),
            (
                ClusterSection { retention: Some("soon".into()), ..section("nats://a", "n") },
                "--cluster-retention",
            ),
            (
                ClusterSection { retention: Some("5s".into()), ..section("nats://a", "n") },
                "--cluster-retention",
            ),
            (ClusterSection { node_timeout: Some(1), ..section("nats://a", "n") }, "--node-timeout"),
            (ClusterSection { snapshot_every: Some(3), ..section("nats://a", "n") }, "--snapshot-every"),
        ] {
            let error = ClusterConfig::from_section(&bad).unwrap_err();
            assert!(error.contains(says), "{error}");
        }
        let mut no_node = section("nats://a", "n");
        no_node.node = None;
        assert!(ClusterConfig::from_section(&no_node).unwrap_err().contains("--node"));
    }

    #[test]
    fn names_are_safe_for_jetstream() {
        let names = Names::for_network("my net.work");
        assert_eq!(names.stream, "CHATTER_my_net_work");
        assert_eq!(names.subject, "chatter.my_net_work.events");
    }
}

//! A chatter network the bench starts for a run (`--spawn MODEL --nodes
//! N`): one nats-server with JetStream ([`super::nats`]) and N chatter
//! nodes of the model joined to it with `--cluster`, plus any spare nodes
//! no client will be sent to; all on 127.0.0.1, all stopped by PID at the
//! end (the nodes first, then NATS, whose store is then removed).
//!
//! Why it is shaped so: every node is started as `--spawn` starts a lone
//! server (same flags: ephemeral port, no flood control), plus the cluster
//! flags, so that "one node with NATS" differs from `--spawn` by the log's
//! carrier only. Nodes start one after another, and each must register a
//! probe client before the next starts: a node registers clients only
//! once it has joined the network, and the first one makes the stream, so
//! the run begins on a network whose every node serves. The probes are
//! registered on the network, and quit, before the run's clients come.

use std::io;
use std::net::SocketAddr;
use std::path::Path;

use super::nats::SpawnedNats;
use super::{START_PATIENCE, SpawnedServer, registers};
use crate::server::Model;

/// The network the bench started.
pub(crate) struct SpawnedCluster {
    // Declared before `nats`: the nodes stop while NATS is still there, so
    // they leave the network cleanly instead of finding it gone.
    nodes: Vec<(String, SpawnedServer)>,
    nats: SpawnedNats,
}

/// What to start.
#[derive(Debug, Clone)]
pub(crate) struct ClusterPlan<'a> {
    pub model: Model,
    pub workers: Option<usize>,
    /// Nodes the clients will be spread over.
    pub nodes: usize,
    /// Further nodes without clients.
    pub spare_nodes: usize,
    /// CPU every process (nodes and NATS) is pinned to.
    pub cpu: Option<usize>,
    pub max_clients: usize,
    /// The nats-server to run, if not the one on PATH or in /usr/sbin.
    pub nats_server: Option<&'a Path>,
}

/// A node's name: `n1`, `n2`, ...
fn node_name(i: usize) -> String {
    format!("n{}", i + 1)
}

impl SpawnedCluster {
    pub(crate) fn start(plan: &ClusterPlan) -> io::Result<SpawnedCluster> {
        let nats = SpawnedNats::start(plan.nats_server, plan.cpu)?;
        let mut cluster = SpawnedCluster { nodes: Vec::new(), nats };
        for i in 0..plan.nodes + plan.spare_nodes {
            let name = node_name(i);
            let extra = [
                "--cluster".to_string(),
                cluster.nats.url(),
                "--node".to_string(),
                name.clone(),
                // Each node its own, as in a real network: the numerics'
                // source says which node a client is on.
                "--server-name".to_string(),
                format!("{name}.chatter.local"),
            ];
            let node = SpawnedServer::start(plan.model, plan.workers, plan.cpu, plan.max_clients, &extra)
                .map_err(|e| io::Error::new(e.kind(), format!("node {name}: {e}")))?;
            let addr = node.addr;
            cluster.nodes.push((name.clone(), node));
            registers(addr, &format!("probe{}", i + 1), START_PATIENCE)
                .map_err(|e| io::Error::new(e.kind(), format!("node {name} did not serve: {e}")))?;
        }
        Ok(cluster)
    }

    /// Each node's name, address and PID, in order (the spare ones last).
    pub(crate) fn nodes(&self) -> Vec<(String, SocketAddr, u32)> {
        self.nodes.iter().map(|(name, node)| (name.clone(), node.addr, node.pid())).collect()
    }

    pub(crate) fn nats_pid(&self) -> u32 {
        self.nats.pid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_named_from_one() {
        assert_eq!((node_name(0), node_name(2)), ("n1".to_string(), "n3".to_string()));
    }

    // Whether a spawned network serves, loses nothing, keeps one order and
    // is gone afterwards is a behaviour of a whole run: `run`'s tests
    // drive one.
}

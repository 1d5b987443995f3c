//! The bridge's chores: the round trips to NATS it makes besides carrying
//! events, run as tasks off its loop so that the loop never waits on them.
//!
//! Two kinds, kept apart because one must never wait for the other:
//!
//! - **The beat**, every quarter of `--node-timeout`: put this node's
//!   heartbeat, publish the losses `liveness` found, read every node's
//!   latest heartbeat and the stream's last sequence. Each request is
//!   bounded ([`NATS_TRY`]), so a round always ends, and the next one can
//!   put the next heartbeat. A heartbeat that waits behind anything else
//!   is a healthy node declared lost by the others.
//! - **A snapshot**, now and then, by one node (the one with the lowest
//!   number it hears: two nodes writing the store at once make its
//!   listing wait for changes that keep coming). Bounded as a whole
//!   ([`SNAPSHOT_TRY`]); a snapshot that fails is written again later.

use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use tokio::task::JoinHandle;

use super::envelope::Envelope;
use super::liveness::Run;
use super::nats::Nats;
use crate::chat::Event;
use crate::server::node::NodeSpace;
use crate::server::pool::entry::Origin;
use crate::server::pool::log::BRIDGE;

/// How long one request to NATS may take before it counts as failed.
pub const NATS_TRY: Duration = Duration::from_secs(2);
/// How long writing one snapshot may take, pruning the old ones included.
const SNAPSHOT_TRY: Duration = Duration::from_secs(30);

/// What one beat brings back to the loop.
#[derive(Default)]
pub struct Beat {
    /// Losses it could not publish.
    pub undeclared: Vec<Run>,
    /// Each node's latest heartbeat (number, epoch, revision), if the
    /// whole reading succeeded.
    pub reading: Option<Vec<(u16, u32, u64)>>,
    /// The stream's last sequence, if it could be asked.
    pub stream_last: Option<u64>,
}

/// One beat: this node's heartbeat, then the `lost` runs declared, then a
/// reading of the heartbeats of `nodes` and of the stream's last sequence.
pub fn beat(nats: Nats, space: NodeSpace, lost: Vec<Run>, nodes: Vec<u16>) -> JoinHandle<Beat> {
    tokio::spawn(async move {
        let put = nats.alive.put(space.node.to_string(), Bytes::from(space.epoch.to_string()));
        match tokio::time::timeout(NATS_TRY, put).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("putting this node's heartbeat: {e}"),
            Err(_) => tracing::warn!("putting this node's heartbeat: no answer"),
        }
        let mut undeclared = Vec::new();
        for run in lost {
            if !declare_lost(&nats, space, run).await {
                undeclared.push(run);
            }
        }
        let reading = read_heartbeats(&nats, &nodes).await;
        let mut stream = nats.stream.clone();
        let stream_last = match tokio::time::timeout(NATS_TRY, stream.info()).await {
            Ok(Ok(info)) => Some(info.state.last_sequence),
            _ => None,
        };
        Beat { undeclared, reading, stream_last }
    })
}

/// Publishes that node run `(node, epoch)` is lost; false if it could not.
async fn declare_lost(nats: &Nats, space: NodeSpace, (node, epoch): Run) -> bool {
    tracing::warn!(node, epoch, "declaring a silent node lost");
    let envelope = Envelope {
        node: space.node,
        epoch: space.epoch,
        origin: Origin { cell: BRIDGE.as_u16(), generation: 0 },
        event: Event::NodeLost { node, epoch, reason: "Node lost".into() },
    };
    let Ok(payload) = envelope.encode() else { return true };
    // The loss's own id: whoever declares it, the stream keeps one.
    let message = PublishMessage::build().payload(payload.into()).message_id(format!("lost.{node}.{epoch}"));
    let published = tokio::time::timeout(NATS_TRY, async {
        nats.jetstream.send_publish(nats.names.subject.clone(), message).await?.await
    })
    .await;
    match published {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            tracing::warn!(node, epoch, "declaring a node lost: {e}");
            false
        }
        Err(_) => {
            tracing::warn!(node, epoch, "declaring a node lost: no answer");
            false
        }
    }
}

/// Reads the latest heartbeat of each of `nodes`; `None` if any request
/// failed or took too long (a reading counts only whole).
async fn read_heartbeats(nats: &Nats, nodes: &[u16]) -> Option<Vec<(u16, u32, u64)>> {
    let mut reading = Vec::with_capacity(nodes.len());
    for node in nodes {
        let entry = tokio::time::timeout(NATS_TRY, nats.alive.entry(node.to_string())).await;
        match entry {
            Ok(Ok(Some(entry))) => {
                let epoch = std::str::from_utf8(&entry.value).ok().and_then(|e| e.parse::<u32>().ok());
                if let Some(epoch) = epoch {
                    reading.push((*node, epoch, entry.revision));
                }
            }
            // No heartbeat there (never, or expired): nothing heard.
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::warn!(node, "reading a heartbeat: {e}");
                return None;
            }
            Err(_) => {
                tracing::warn!(node, "reading a heartbeat: no answer");
                return None;
            }
        }
    }
    Some(reading)
}

/// Writes the directory as it stood after stream sequence `seq`; true if
/// it was written.
pub fn snapshot(nats: Nats, seq: u64, bytes: Vec<u8>) -> JoinHandle<bool> {
    tokio::spawn(async move {
        match tokio::time::timeout(SNAPSHOT_TRY, nats.snapshots.write(seq, bytes)).await {
            Ok(Ok(())) => {
                tracing::info!(seq, "wrote a snapshot");
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(seq, "writing a snapshot: {e}");
                false
            }
            Err(_) => {
                tracing::warn!(seq, "writing a snapshot: no answer");
                false
            }
        }
    })
}

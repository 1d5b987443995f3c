//! The network's shared things on NATS, and a node taking its place
//! among them.
//!
//! A network is one JetStream stream (its events, in order) and three
//! buckets: node names to node numbers and each node's epoch, heartbeats,
//! and snapshots of the directory. Whichever node starts first creates
//! them; the others find them. Joining gives the node its number (kept
//! across restarts: it is the node's name's) and a new epoch (a new run),
//! which together number its connections apart from every other node's
//! and from its own earlier runs' (see `node::NodeSpace`).

use std::io;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;

use std::sync::Arc;

use super::snapshots::Snapshots;
use super::{ClusterConfig, MAX_NODES, Names};
use crate::chat::{ServerInfo, State};
use crate::server::node::NodeSpace;

/// How long a start waits for NATS before it gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long JetStream remembers a message id: a retried publish within it
/// is stored once.
/// How many times a node tries to join, and the pause between tries.
const JOIN_ATTEMPTS: u32 = 3;
const JOIN_PAUSE: Duration = Duration::from_secs(1);
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// A node's connection to the network's NATS: the client, its JetStream
/// context and the shared buckets.
#[derive(Clone)]
pub struct Nats {
    pub client: async_nats::Client,
    pub jetstream: jetstream::Context,
    pub names: Names,
    pub stream: stream::Stream,
    /// Heartbeats: one key per node number, updated every beat.
    pub alive: kv::Store,
    pub snapshots: Snapshots,
}

/// What a node has once it has joined: its place in the numbering, and
/// where in the stream it starts applying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    pub space: NodeSpace,
    /// The first stream sequence this node applies.
    pub start_seq: u64,
}

fn failed(what: &str, error: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {error}"))
}

/// Connects to the network's NATS and makes sure its stream and buckets
/// exist, as `cluster` and `names` describe them.
pub async fn connect(cluster: &ClusterConfig, names: &Names) -> io::Result<Nats> {
    let options = async_nats::ConnectOptions::new()
        .name(format!("chatter {}", cluster.node))
        .connection_timeout(CONNECT_TIMEOUT)
        // After the first connection, a lost one is retried for ever: a
        // node waits for NATS to come back (its clients are told).
        .max_reconnects(None);
    let urls = cluster.urls.join(",");
    let servers = cluster
        .urls
        .iter()
        .map(|url| url.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(&format!("the NATS URLs {urls}"), e))?;
    let client = tokio::time::timeout(CONNECT_TIMEOUT, async_nats::connect_with_options(servers, options))
        .await
        .map_err(|_| failed(&format!("connecting to NATS at {urls}"), "no answer"))?
        .map_err(|e| failed(&format!("connecting to NATS at {urls}"), e))?;
    let jetstream = jetstream::new(client.clone());
    let stream = jetstream
        .get_or_create_stream(stream::Config {
            name: names.stream.clone(),
            subjects: vec![names.subject.clone()],
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            max_age: cluster.retention,
            storage: stream::StorageType::File,
            num_replicas: cluster.replicas,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await;
    // Two nodes starting at once both make it; NATS 2.9 may refuse the
    // second as overlapping the first, which is there then.
    let stream = match stream {
        Ok(stream) => stream,
        Err(e) => jetstream
            .get_stream(&names.stream)
            .await
            .map_err(|_| failed(&format!("the event stream {}", names.stream), e))?,
    };
    let alive = bucket(&jetstream, &names.alive, cluster, cluster.node_timeout * 4).await?;
    let snapshots = Snapshots::open(&jetstream, names, cluster).await?;
    Ok(Nats { client, jetstream, names: names.clone(), stream, alive, snapshots })
}

/// The bucket `name`, made if it does not exist yet.
///
/// Made as the stream a key-value bucket is (as the client would make
/// it), not with the client's `create_key_value`: that first reads the
/// account's information in a newer server's words, which NATS 2.9 (the
/// one Debian has) does not say.
async fn bucket(
    jetstream: &jetstream::Context,
    name: &str,
    cluster: &ClusterConfig,
    max_age: Duration,
) -> io::Result<kv::Store> {
    if let Ok(store) = jetstream.get_key_value(name).await {
        return Ok(store);
    }
    let made = jetstream
        .get_or_create_stream(stream::Config {
            name: format!("KV_{name}"),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            max_age,
            storage: stream::StorageType::File,
            num_replicas: cluster.replicas,
            discard: stream::DiscardPolicy::New,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            ..Default::default()
        })
        .await;
    // Made by another node at the same moment, if this one was refused.
    jetstream.get_key_value(name).await.map_err(|e| match made {
        Err(refused) => failed(&format!("the bucket {name}"), refused),
        Ok(_) => failed(&format!("the bucket {name}"), e),
    })
}

/// Takes this node's place in the network: its number (the one its name
/// had, or the first free one) and a new epoch.
pub async fn register(nats: &Nats, cluster: &ClusterConfig) -> io::Result<NodeSpace> {
    let nodes = bucket(&nats.jetstream, &nats.names.nodes, cluster, Duration::ZERO).await?;
    let name = &cluster.node;
    let node = node_number(&nodes, name).await?;
    // Every put is a new revision of the bucket, and only starts put here:
    // the revision is a number no earlier run of any node had.
    let revision = nodes
        .put(format!("epoch.{name}"), Bytes::new())
        .await
        .map_err(|e| failed("recording this node's start", e))?;
    // An epoch fills 16 bits of a generation; 0 is a node on its own.
    let epoch = (revision % 0xffff) as u32 + 1;
    Ok(NodeSpace { node, epoch })
}

/// The number `name` has, or the first free one, taken for it.
async fn node_number(nodes: &kv::Store, name: &str) -> io::Result<u16> {
    let key = format!("name.{name}");
    let known = nodes.get(&key).await.map_err(|e| failed("reading node numbers", e))?;
    if let Some(number) = known.and_then(|n| std::str::from_utf8(&n).ok().and_then(|n| n.parse::<u16>().ok()))
    {
        return Ok(number);
    }
    for number in 1..=MAX_NODES {
        // `create` fails if the number is taken: two nodes starting at
        // once cannot both have it.
        let claim = nodes.create(format!("number.{number}"), Bytes::from(name.to_string())).await;
        let mine = match claim {
            Ok(_) => true,
            Err(_) => nodes
                .get(format!("number.{number}"))
                .await
                .map_err(|e| failed("reading node numbers", e))?
                .is_some_and(|holder| holder.as_ref() == name.as_bytes()),
        };
        if mine {
            nodes
                .put(&key, Bytes::from(number.to_string()))
                .await
                .map_err(|e| failed("recording this node's number", e))?;
            return Ok(number);
        }
    }
    Err(io::Error::other(format!("the network has its {MAX_NODES} nodes already")))
}

/// Joins the network: connects, takes this node's place, and finds where
/// it starts: the newest snapshot it can read that the stream still
/// follows (the directory as of its sequence), or, when the stream still
/// holds its whole history, an empty directory and the first event.
/// `info` is this node's own (its name is its own; the network's settings
/// come from the snapshot).
///
/// A busy NATS may not answer one of the requests in time, so a join that
/// fails is tried again, [`JOIN_ATTEMPTS`] times in all, a pause between.
/// (One that cannot succeed, such as a stream no snapshot reaches back to,
/// fails as many times, a few seconds later.)
pub async fn join(
    cluster: &ClusterConfig,
    names: &Names,
    info: Arc<ServerInfo>,
) -> io::Result<(Nats, Joined, State)> {
    let mut attempt = 1;
    loop {
        match join_once(cluster, names, info.clone()).await {
            Err(e) if attempt < JOIN_ATTEMPTS => {
                tracing::warn!(attempt, "joining the network: {e}; trying again");
                tokio::time::sleep(JOIN_PAUSE).await;
                attempt += 1;
            }
            joined => return joined,
        }
    }
}

async fn join_once(
    cluster: &ClusterConfig,
    names: &Names,
    info: Arc<ServerInfo>,
) -> io::Result<(Nats, Joined, State)> {
    let nats = connect(cluster, names).await?;
    let space = register(&nats, cluster).await?;
    let mut own = (*info).clone();
    own.node = space.node;
    let info = Arc::new(own);
    let mut stream = nats.stream.clone();
    let stored = stream.info().await.map_err(|e| failed("reading the event stream", e))?.state.first_sequence;
    // An empty stream says first 0; one that has purged all its events
    // says the sequence after its last.
    let first = stored.max(1);
    let whole_history = stored <= 1;
    let restored = nats
        .snapshots
        .newest_readable(|seq, bytes| {
            if seq + 1 < first {
                tracing::warn!(seq, first, "a snapshot older than the stream's first event: skipped");
                return None;
            }
            match State::restore(bytes, info.clone()) {
                Ok(state) => Some((seq, state)),
                Err(e) => {
                    tracing::warn!(seq, "a snapshot that cannot be restored: {e}");
                    None
                }
            }
        })
        .await?;
    let (start_seq, directory) = match restored {
        Some((seq, directory)) => {
            tracing::info!(seq, "restored the directory from a snapshot");
            (seq + 1, directory)
        }
        None if whole_history => (1, State::new(info)),
        None => {
            return Err(io::Error::other(format!(
                "the event stream starts at sequence {first} and no snapshot reaches back to it: \
                 this node cannot know the network's directory"
            )));
        }
    };
    tracing::info!(node = space.node, epoch = space.epoch, start_seq, "joined the network");
    Ok((nats, Joined { space, start_seq }, directory))
}

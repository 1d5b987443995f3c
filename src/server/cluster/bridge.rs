//! The bridge: what carries a node's events to the network's stream and
//! the stream's order back into the node.
//!
//! It has two sides. Toward the node ([`BridgeSide`]): the proposals its
//! cells made, in the order they made them, and the place where ordered
//! events go (the pool models' log, see `pool::entry`; the iterative
//! model's directory). Toward NATS: JetStream publishes and an ordered
//! consumer of the stream. Everything between is this loop:
//!
//! - **Publish, in order, with retries that cannot duplicate.** Proposals
//!   are published pipelined, at most [`WINDOW`] unacknowledged. Each has
//!   a message id made of the node, its epoch and the proposal's id in
//!   this node run, so when an acknowledgement fails (a timeout, NATS
//!   gone), every unacknowledged proposal is published again, in order,
//!   and JetStream stores each once. A proposal is dropped only when
//!   acknowledged.
//! - **Apply the stream, in order.** Each event the consumer delivers is
//!   offered to the node; if the node has no room (its readers are
//!   behind), the bridge holds that one event and stops pulling, so the
//!   consumer's flow control carries the pressure back to JetStream, the
//!   way a full log carries it back to the node's clients.
//! - **Say when the network is out of reach.** Clients are told when the
//!   connection to NATS has been down for a moment, and when it is back;
//!   meanwhile their events wait in the node's log (bounded: a full log
//!   stops the node reading its clients).
//! - **Keep a replica** of the directory, the events applied in stream
//!   order, so that it knows where the node stands: it writes snapshots
//!   of it for nodes that join, and knows which node runs have users.
//! - **Beat and read heartbeats** (`liveness`): a silent node run with
//!   users is declared lost (`Event::NodeLost`, once in the stream); a
//!   declaration of this node run's own loss (it was cut off long enough
//!   for the network to give up on it) ends the bridge, and with it the
//!   node, after its clients are told: it must not serve a directory the
//!   network has moved past.
//!
//! The bridge runs on a tokio runtime of its own thread (prethread,
//! iterative) or process (prefork); the rest of the server stays
//! synchronous, and meets it only through its side.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::context::{PublishAckFuture, PublishError};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use tokio::task::JoinHandle;

use super::ClusterConfig;
use super::chores::{self, Beat, NATS_TRY};
use super::envelope::{Envelope, EnvelopeError};
use super::liveness::{Liveness, Readings, Run};
use super::nats::{Joined, Nats};
use crate::chat::{Event, State};
use crate::server::node::NodeSpace;
use crate::server::pool::entry::Origin;

/// Most proposals published and not yet acknowledged.
pub const WINDOW: usize = 256;
/// How long the connection may be down before clients are told.
const UNREACHABLE_AFTER: Duration = Duration::from_secs(2);
/// The longest the loop waits for anything: it also keeps time.
const TICK: Duration = Duration::from_millis(100);
/// The first pause before publishing again after a failed acknowledgement,
/// and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MOST: Duration = Duration::from_secs(2);
/// How often room is looked for while the node has none for what the
/// bridge holds (readers do not signal room, as in the log itself).
const ROOM_POLL: Duration = Duration::from_millis(1);

/// One event a cell of this node proposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Unique among this node run's proposals: part of its message id.
    pub id: u64,
    pub origin: Origin,
    pub event: Event,
}

/// The node's half of the bridge.
pub trait BridgeSide {
    /// The next proposal, in the order the node's cells made them.
    fn next_proposal(&mut self) -> Option<Proposal>;
    /// Offers the event at stream sequence `seq` (`origin` if this node
    /// run proposed it); false when the node has no room for it now.
    fn deliver(&mut self, seq: u64, origin: Option<Origin>, event: &Event) -> bool;
    /// Offers words for every client of the node; false when no room now.
    fn notice(&mut self, text: &str) -> bool;
    /// Says the bridge is alive and going round its loop.
    fn beat(&mut self) {}
    /// Waits until the node may have something new (a proposal, room),
    /// or `at_most`.
    fn wait(&mut self, at_most: Duration) -> impl Future<Output = ()>;
}

/// A proposal published and not yet acknowledged.
struct InFlight {
    msg_id: String,
    payload: Bytes,
    ack: JoinHandle<Result<PublishAck, PublishError>>,
}

pub struct Bridge<S> {
    nats: Nats,
    cluster: ClusterConfig,
    space: NodeSpace,
    side: S,
    /// The directory as the events applied so far made it.
    state: State,
    /// The next stream sequence to apply.
    next_seq: u64,
    /// An ordered event the node had no room for yet.
    held: Option<(u64, Option<Origin>, Event)>,
    /// Words for the clients the node had no room for yet.
    notice: Option<String>,
    /// Since when the connection to NATS has been down.
    down_since: Option<Instant>,
    /// Whether the clients were told the network is out of reach.
    told_unreachable: bool,
    liveness: Liveness,
    readings: Readings,
    /// The stream sequence of the last snapshot this node wrote (or
    /// started from), and when.
    snapshot_seq: u64,
    snapshot_at: Instant,
    /// Set when the stream says this node run is lost.
    declared_lost: bool,
    /// How long to wait before publishing again after a failure.
    retry_after: Duration,
    /// When the consumer last gave a message.
    last_message: Instant,
}

/// Why a bridge stopped.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The network declared this node run lost (it was cut off for longer
    /// than `--node-timeout`): its users are gone everywhere.
    #[error("the network declared this node lost (it was cut off from NATS too long)")]
    DeclaredLost,
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl<S: BridgeSide> Bridge<S> {
    /// A bridge for a node that joined as `joined`, its replica at `state`.
    pub fn new(nats: Nats, cluster: ClusterConfig, joined: Joined, state: State, side: S) -> Bridge<S> {
        let me = (joined.space.node, joined.space.epoch);
        Bridge {
            nats,
            liveness: Liveness::new(me, cluster.node_timeout),
            readings: Readings::default(),
            cluster,
            space: joined.space,
            snapshot_seq: joined.start_seq - 1,
            snapshot_at: Instant::now(),
            declared_lost: false,
            retry_after: RETRY_FIRST,
            last_message: Instant::now(),
            side,
            state,
            next_seq: joined.start_seq,
            held: None,
            notice: None,
            down_since: None,
            told_unreachable: false,
        }
    }

    /// Runs until the stream holds what this node cannot read (another
    /// build's events: going on would make this node's directory differ
    /// from the network's), or declares this node run lost.
    pub async fn run(mut self) -> Result<(), BridgeError> {
        let mut messages = self.subscribe().await;
        let mut beat = tokio::time::interval(self.cluster.heartbeat_every());
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let mut beating: Option<JoinHandle<Beat>> = None;
        let mut snapshotting = None;
        let mut connects = self.connects();
        loop {
            self.side.beat();
            self.keep_time();
            self.offer_held();
            // Connected again (to the same server, restarted, or another of
            // a NATS cluster, however briefly it was away): the consumers
            // (ephemeral) may be gone, so both are made anew, from where
            // this node stands.
            let connected = self.connected();
            if connected && self.connects() != connects {
                connects = self.connects();
                tracing::info!(from = self.next_seq, "connected again: consuming the stream anew");
                messages = self.subscribe().await;
            }
            if self.declared_lost && self.held.is_none() {
                return Err(BridgeError::DeclaredLost);
            }
            while connected && in_flight.len() < WINDOW {
                let Some(proposal) = self.side.next_proposal() else { break };
                in_flight.push_back(self.publish(&proposal)?);
            }
            // The node is waited for only when the bridge can take what
            // it has; otherwise a record already there would end every
            // wait at once. Room for what is held is looked for often.
            let taking =
                connected && in_flight.len() < WINDOW && self.held.is_none() && self.notice.is_none();
            let nap = if self.held.is_some() || self.notice.is_some() { ROOM_POLL } else { TICK };
            let front = in_flight.front_mut().map(|f| &mut f.ack);
            let pulling = self.held.is_none() && !self.declared_lost;
            tokio::select! {
                acked = async { front.expect("guarded").await }, if front.is_some() => {
                    match acked {
                        Ok(Ok(_)) => {
                            in_flight.pop_front();
                            self.retry_after = RETRY_FIRST;
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(
                                waiting = in_flight.len(),
                                after = ?self.retry_after,
                                "an event was not acknowledged ({e}); publishing again what waits"
                            );
                            self.republish(&mut in_flight).await;
                        }
                        Err(e) => {
                            return Err(io::Error::other(format!("an acknowledgement task failed: {e}")).into());
                        }
                    }
                }
                message = messages.next(), if pulling => match message {
                    Some(Ok(message)) => {
                        self.last_message = Instant::now();
                        self.take(&message)?;
                    }
                    // A consumer that failed, or ended, is made anew from
                    // where this node stands (what it had is not taken twice).
                    Some(Err(e)) => {
                        tracing::warn!("reading the event stream: {e}; consuming it again");
                        messages = self.subscribe().await;
                    }
                    None => messages = self.subscribe().await,
                },
                _ = beat.tick() => {
                    // One beat at a time: a slow NATS must not pile them
                    // up (each is bounded, so the next one comes).
                    if beating.as_ref().is_none_or(|b| b.is_finished()) {
                        if let Some(done) = beating.take() {
                            self.heard(done.await.unwrap_or_default(), &mut messages).await;
                        }
                        beating = Some(self.beat());
                    }
                    self.snapshot(&mut snapshotting);
                }
                () = async {
                    if taking { self.side.wait(TICK).await } else { tokio::time::sleep(nap).await }
                } => {}
            }
        }
    }

    /// An ordered consumer of the stream from the next sequence to apply:
    /// it recreates itself after a gap, resuming where it was. Asked for
    /// until NATS gives one (it may be electing a leader, or away), a try
    /// at a time, the node told the bridge is alive meanwhile.
    async fn subscribe(&mut self) -> pull::Ordered {
        loop {
            let config = pull::OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: self.next_seq },
                ..Default::default()
            };
            let attempt = async {
                let consumer = self.nats.stream.create_consumer(config).await.map_err(|e| e.to_string())?;
                consumer.messages().await.map_err(|e| e.to_string())
            };
            match tokio::time::timeout(NATS_TRY, attempt).await {
                Ok(Ok(messages)) => return messages,
                Ok(Err(e)) => tracing::warn!("consuming the event stream: {e}; trying again"),
                Err(_) => tracing::warn!("consuming the event stream: no answer; trying again"),
            }
            self.idle().await;
        }
    }

    /// A pause between two tries, the node's bookkeeping kept up.
    async fn idle(&mut self) {
        self.side.beat();
        self.keep_time();
        self.offer_held();
        tokio::time::sleep(TICK).await;
    }

    /// How many times the client has connected, reconnections included.
    fn connects(&self) -> u64 {
        self.nats.client.statistics().connects.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn connected(&self) -> bool {
        self.nats.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Publishes one proposal; its acknowledgement is awaited in order.
    fn publish(&self, proposal: &Proposal) -> io::Result<InFlight> {
        let envelope = Envelope {
            node: self.space.node,
            epoch: self.space.epoch,
            origin: proposal.origin,
            event: proposal.event.clone(),
        };
        let payload = Bytes::from(envelope.encode().map_err(io::Error::other)?);
        let msg_id = format!("{}.{}.{}", self.space.node, self.space.epoch, proposal.id);
        Ok(self.send(msg_id, payload))
    }

    fn send(&self, msg_id: String, payload: Bytes) -> InFlight {
        let jetstream = self.nats.jetstream.clone();
        let subject = self.nats.names.subject.clone();
        let message = PublishMessage::build().payload(payload.clone()).message_id(&msg_id);
        let ack = tokio::spawn(async move {
            let future: PublishAckFuture = jetstream.send_publish(subject, message).await?;
            future.await
        });
        InFlight { msg_id, payload, ack }
    }

    /// After a failed acknowledgement: once connected, everything not yet
    /// acknowledged is published again, in order. JetStream drops the
    /// copies of those it had stored (same message id), so each is stored
    /// once, and in the order proposed, but for the one that failed.
    ///
    /// Not at once: NATS that just refused (a stream leader being elected,
    /// a server going) would refuse again, and every retry is all of them.
    /// The pause doubles with each failure in a row, up to [`RETRY_MOST`].
    async fn republish(&mut self, in_flight: &mut VecDeque<InFlight>) {
        let resume = Instant::now() + self.retry_after;
        self.retry_after = (self.retry_after * 2).min(RETRY_MOST);
        while !self.connected() || Instant::now() < resume {
            self.idle().await;
        }
        for pending in in_flight.iter_mut() {
            pending.ack.abort();
            let again = self.send(pending.msg_id.clone(), pending.payload.clone());
            *pending = again;
        }
    }

    /// One message of the stream: applied to the replica, offered to the
    /// node, held if the node has no room.
    fn take(&mut self, message: &async_nats::jetstream::Message) -> Result<(), BridgeError> {
        let seq = message.info().map(|i| i.stream_sequence).map_err(|e| io::Error::other(e.to_string()))?;
        if seq < self.next_seq {
            return Ok(());
        }
        self.next_seq = seq + 1;
        let envelope = match Envelope::decode(&message.payload) {
            Ok(envelope) => envelope,
            Err(EnvelopeError::Version(version)) => {
                return Err(io::Error::other(format!(
                    "stream sequence {seq} holds an event of version {version}: \
                     this build cannot follow the network"
                ))
                .into());
            }
            // Bytes no build writes: every node skips them alike.
            Err(e) => {
                tracing::error!(seq, "an undecodable event in the stream: {e}");
                return Ok(());
            }
        };
        let own = envelope.node == self.space.node && envelope.epoch == self.space.epoch;
        let origin = own.then_some(envelope.origin);
        if let Event::NodeLost { node, epoch, .. } = envelope.event
            && (node, epoch) == (self.space.node, self.space.epoch)
        {
            // Delivered like any event (the workers close their clients
            // on it), then the bridge stops: see `run`.
            tracing::error!("the network declared this node lost");
            self.declared_lost = true;
        }
        self.state.apply(&envelope.event, &mut Vec::new());
        if !self.side.deliver(seq, origin, &envelope.event) {
            self.held = Some((seq, origin, envelope.event));
        }
        Ok(())
    }

    /// Offers again what the node had no room for.
    fn offer_held(&mut self) {
        if let Some(text) = self.notice.take()
            && !self.side.notice(&text)
        {
            self.notice = Some(text);
        }
        if let Some((seq, origin, event)) = self.held.take()
            && !self.side.deliver(seq, origin, &event)
        {
            self.held = Some((seq, origin, event));
        }
    }

    /// Starts the next beat (see `chores`): this node's heartbeat, the
    /// losses to declare, whose heartbeats to read.
    fn beat(&mut self) -> JoinHandle<Beat> {
        let now = Instant::now();
        let present: Vec<Run> = self.state.connections().map(|c| (c.node(), c.epoch())).collect();
        let lost = self.liveness.lost(present.iter().copied(), now);
        // Every node with users, and this one: whose heartbeats to read.
        let mut nodes: Vec<u16> = present.iter().map(|(node, _)| *node).collect();
        nodes.push(self.space.node);
        nodes.sort_unstable();
        nodes.dedup();
        chores::beat(self.nats.clone(), self.space, lost, nodes)
    }

    /// What a finished beat found: the heartbeats read, losses to declare
    /// again, and whether the consumer has stopped giving what the stream
    /// has (its server gone, say: then it is made anew).
    async fn heard(&mut self, done: Beat, messages: &mut pull::Ordered) {
        let now = Instant::now();
        let behind = done.stream_last.is_some_and(|last| last >= self.next_seq);
        let pulling = self.held.is_none() && !self.declared_lost;
        if behind && pulling && now.duration_since(self.last_message) > 2 * self.cluster.heartbeat_every() {
            tracing::warn!(from = self.next_seq, "the event stream stopped coming: consuming it anew");
            *messages = self.subscribe().await;
            self.last_message = Instant::now();
        }
        self.liveness.read(done.reading.is_some(), now);
        self.readings.take(done.reading.as_deref().unwrap_or_default(), now, &mut self.liveness);
        for run in done.undeclared {
            self.liveness.retry(run);
        }
    }

    /// Starts writing a snapshot if one is due and this node is the one to
    /// write it (the lowest-numbered node it hears). `snapshotting` holds
    /// the write under way, with where the last one stood before it.
    fn snapshot(&mut self, snapshotting: &mut Option<(JoinHandle<bool>, u64, Instant)>) {
        if let Some((write, _, _)) = snapshotting
            && !write.is_finished()
        {
            return;
        }
        if let Some((write, seq_before, at_before)) = snapshotting.take() {
            // A write that failed (or whose task failed) leaves the
            // snapshot due again.
            if !write.now_or_never().and_then(Result::ok).unwrap_or(false) {
                (self.snapshot_seq, self.snapshot_at) = (seq_before, at_before);
            }
        }
        let now = Instant::now();
        if !self.snapshot_due(now) || self.liveness.first_heard(now) != Some(self.space.node) {
            return;
        }
        let before = (self.snapshot_seq, self.snapshot_at);
        let seq = self.next_seq - 1;
        (self.snapshot_seq, self.snapshot_at) = (seq, now);
        let write = chores::snapshot(self.nats.clone(), seq, self.state.snapshot());
        *snapshotting = Some((write, before.0, before.1));
    }

    /// Whether a snapshot is due: after `--snapshot-every` events, or a
    /// quarter of the stream's retention since the last with any event
    /// since (so the stream always still holds what follows the newest).
    fn snapshot_due(&self, now: Instant) -> bool {
        let applied = self.next_seq - 1;
        let since = applied.saturating_sub(self.snapshot_seq);
        since >= self.cluster.snapshot_every
            || (since > 0 && now.duration_since(self.snapshot_at) >= self.cluster.retention / 4)
    }

    /// Notices the connection going and coming back, and tells clients.
    fn keep_time(&mut self) {
        let now = Instant::now();
        if self.connected() {
            self.down_since = None;
            if self.told_unreachable {
                self.told_unreachable = false;
                self.tell("The network is back: what you sent while it was away is going out now.");
            }
            return;
        }
        let since = *self.down_since.get_or_insert(now);
        if !self.told_unreachable && now.duration_since(since) >= UNREACHABLE_AFTER {
            self.told_unreachable = true;
            tracing::warn!("NATS is out of reach; events wait in the log");
            self.tell("This server has lost the network: what you send waits until it is back.");
        }
    }

    fn tell(&mut self, text: &str) {
        if !self.side.notice(text) {
            self.notice = Some(text.to_string());
        }
    }
}

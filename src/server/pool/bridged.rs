//! The pool models' side of a cluster node's bridge (see
//! `cluster::bridge`): the bridge is one more cell of the log.
//!
//! It reads the log like any cell, taking the proposals the workers and
//! the keeper append (`entry::Entry::Proposed`), and it is the one writer
//! of ordered entries: what the network's stream says, in stream order,
//! which every worker applies. Being a cell, it gates writers like any
//! reader (a proposal it has not read is never overwritten), beats a
//! heartbeat the keeper watches, and is woken by appends the way a
//! sleeping worker is; the ring's room is what tells it to stop pulling
//! from the stream.

use std::future::Future;
use std::time::Duration;

use crate::chat::Event;
use crate::server::cluster::{BridgeSide, Proposal};
use crate::server::pool::entry::{self, Entry, EntryRef, Origin};
use crate::server::pool::follow::Follower;
use crate::server::pool::log::{BRIDGE, Log, Wake};

/// How a sleeping bridge is woken: a thread's notification, or a signal
/// to a process.
pub trait Doorbell {
    fn rung(&mut self) -> impl Future<Output = ()>;
}

/// A `tokio::sync::Notify` the pool's waker rings (prethread).
impl Doorbell for std::sync::Arc<tokio::sync::Notify> {
    async fn rung(&mut self) {
        self.notified().await;
    }
}

/// SIGUSR1 to the bridge's process (prefork).
impl Doorbell for tokio::signal::unix::Signal {
    async fn rung(&mut self) {
        self.recv().await;
    }
}

pub struct PoolSide<'a, D> {
    log: &'a Log,
    wake: &'a dyn Wake,
    follower: Follower,
    record: Vec<u8>,
    doorbell: D,
}

impl<'a, D: Doorbell> PoolSide<'a, D> {
    /// The bridge's side of `log`, reading from `start`.
    pub fn new(log: &'a Log, wake: &'a dyn Wake, start: u64, doorbell: D) -> Self {
        PoolSide { log, wake, follower: Follower::new(BRIDGE, start), record: Vec::new(), doorbell }
    }

    fn append(&mut self, entry: &EntryRef<'_>) -> bool {
        self.record.clear();
        if let Err(e) = entry::encode(entry, &mut self.record) {
            // What the stream holds came from a log record: it fits one.
            tracing::error!("an ordered event does not fit the log: {e}");
            return true;
        }
        self.log.try_append(BRIDGE, &self.record, self.wake).is_some()
    }
}

impl<D: Doorbell> BridgeSide for PoolSide<'_, D> {
    fn next_proposal(&mut self) -> Option<Proposal> {
        loop {
            // The proposal's first sequence: never used twice in a node run.
            let id = self.follower.cursor();
            match self.follower.next_entry(self.log, true)? {
                Entry::Proposed { origin, event } => return Some(Proposal { id, origin, event }),
                Entry::Event(_) | Entry::Ordered { .. } | Entry::Notice(_) => continue,
            }
        }
    }

    fn deliver(&mut self, seq: u64, origin: Option<Origin>, event: &Event) -> bool {
        self.append(&EntryRef::Ordered { seq, origin, event })
    }

    fn notice(&mut self, text: &str) -> bool {
        self.append(&EntryRef::Notice(text))
    }

    fn beat(&mut self) {
        self.log.beat(BRIDGE);
    }

    async fn wait(&mut self, at_most: Duration) {
        self.follower.report(self.log);
        if self.log.prepare_sleep(BRIDGE, self.follower.cursor()) {
            let _ = tokio::time::timeout(at_most, self.doorbell.rung()).await;
        }
        self.log.awake(BRIDGE);
    }
}

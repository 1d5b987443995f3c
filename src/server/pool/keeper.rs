//! The pool keeper's view of the log: a replica that follows every event
//! and renders nothing, so that a new or replacement worker can start from
//! an up-to-date directory at a log position that is still in the ring,
//! and the keeper's own appends (WorkerLost after a worker dies, the new
//! settings after SIGHUP).
//!
//! The keeper is a LIVE reader like any worker (cell 0), so it must keep
//! draining: the model calls [`Keeper::tend`] whenever it wakes. It also
//! watches the workers' heartbeats and evicts one that has stopped running
//! while others' events wait for it (see `log`).

use std::io;
use std::time::Duration;

use mio::{Events, Poll};

use crate::chat::change::recycle;
use crate::chat::{Change, Event, State};
use crate::server::Config;
use crate::server::listener::poll_events;
use crate::server::node::NodeSpace;
use crate::server::pool::entry::{self, Entry, EntryRef, Origin};
use crate::server::pool::follow::Follower;
use crate::server::pool::log::{CellId, KEEPER, Log, StallWatch, Wake};

/// The longest the keeper sleeps when nothing wakes it: it also watches
/// heartbeats and child processes.
const KEEPER_NAP: Duration = Duration::from_millis(100);

pub struct Keeper {
    pub state: State,
    follower: Follower,
    watch: StallWatch,
    /// How this node numbers its workers' connections, and whether its
    /// events are proposed to the network (see `node`, `entry`).
    space: NodeSpace,
}

impl Keeper {
    /// A keeper whose replica is `state` (a new directory, or in a
    /// cluster the network's as the node joined it) at log position 0.
    pub fn new(state: State, space: NodeSpace) -> Keeper {
        Keeper { state, follower: Follower::new(KEEPER, 0), watch: StallWatch::default(), space }
    }

    /// How this node numbers its connections.
    pub fn space(&self) -> NodeSpace {
        self.space
    }

    /// Where `state` stands in the log: a new worker starts reading there.
    pub fn cursor(&self) -> u64 {
        self.follower.cursor()
    }

    /// Drains the log and evicts stalled workers; returns the cells evicted.
    pub fn tend(&mut self, log: &Log) -> Vec<CellId> {
        self.drain(log);
        log.evict_stalled(&mut self.watch, std::time::Instant::now())
    }

    /// One turn of the supervising loop both pool models run: tend the log,
    /// then sleep in `poll` until woken (a worker's append, a signal, a
    /// shutdown) or for a nap, without missing a wake-up (see `log`).
    pub fn wait(&mut self, log: &Log, poll: &mut Poll, events: &mut Events) -> io::Result<()> {
        self.tend(log);
        let timeout = if log.prepare_sleep(KEEPER, self.cursor()) { KEEPER_NAP } else { Duration::ZERO };
        let polled = poll_events(poll, events, Some(timeout));
        log.awake(KEEPER);
        polled
    }

    /// Applies everything published so far.
    pub fn drain(&mut self, log: &Log) {
        let mut spare: Vec<Change<'static>> = Vec::new();
        while let Some(entry) = self.follower.next_entry(log, false) {
            let event = match entry {
                Entry::Event(event) | Entry::Ordered { event, .. } => event,
                Entry::Proposed { .. } | Entry::Notice(_) => continue,
            };
            // What changed is no one's to hear: the workers tell their own
            // connections from their own replicas.
            let mut changes = recycle(std::mem::take(&mut spare));
            self.state.apply(&event, &mut changes);
            spare = recycle(changes);
        }
        self.follower.report(log);
    }

    /// Appends an event as the keeper.
    pub fn publish(&mut self, log: &Log, wake: &dyn Wake, event: &Event) {
        let mut record = Vec::new();
        let entry = if self.space.clustered() {
            let origin = Origin { cell: KEEPER.as_u16(), generation: log.generation(KEEPER) };
            EntryRef::Proposed { origin, event }
        } else {
            EntryRef::Event(event)
        };
        if let Err(e) = entry::encode(&entry, &mut record) {
            // The keeper's events are a worker and a short reason: never.
            tracing::error!(?event, "keeper event refused: {e}");
            return;
        }
        log.append(KEEPER, &record, wake, || {
            self.tend(log);
        });
        self.drain(log);
    }

    /// SIGHUP: rereads the configuration and publishes the new settings as
    /// the keeper; every replica installs them as it applies them, this
    /// one before a worker is next started from it.
    pub fn reload(&mut self, log: &Log, wake: &dyn Wake, config: &Config) {
        for event in crate::server::reload::on_hangup(config, self.space.worker(KEEPER)) {
            self.publish(log, wake, &event);
        }
    }

    /// After worker `cell` has stopped running: fill what it left in the
    /// log, tell everyone its users are gone, and free the cell.
    pub fn bury(&mut self, log: &Log, wake: &dyn Wake, cell: CellId, reason: &str) {
        let generation = log.generation(cell);
        if let Some(claim) = log.repair(cell, || {
            self.tend(log);
        }) {
            tracing::warn!(%cell, ?claim, "filled the log entries a dead worker had claimed");
        }
        let (worker, generation) = (self.space.worker(cell), self.space.generation(generation));
        let lost = Event::WorkerLost { worker, generation, reason: reason.to_string() };
        self.publish(log, wake, &lost);
        log.vacate(cell);
    }
}

//! The pool keeper's view of the log: a replica that follows every event
//! and renders nothing, so that a new or replacement worker can start from
//! an up-to-date directory at a log position that is still in the ring,
//! and the keeper's own appends (WorkerLost after a worker dies).
//!
//! The keeper is a LIVE reader like any worker (cell 0), so it must keep
//! draining: the model calls [`Keeper::tend`] whenever it wakes. It also
//! watches the workers' heartbeats and evicts one that has stopped running
//! while others' events wait for it (see `log`).

use crate::chat::{Event, ServerInfo, State};
use crate::server::pool::codec;
use crate::server::pool::log::{KEEPER, Log, Read, StallWatch, Wake};
use std::sync::Arc;

pub struct Keeper {
    pub state: State,
    pub cursor: u64,
    buf: Vec<u8>,
    watch: StallWatch,
}

impl Keeper {
    pub fn new(info: Arc<ServerInfo>) -> Keeper {
        Keeper { state: State::new(info), cursor: 0, buf: Vec::new(), watch: StallWatch::default() }
    }

    /// Drains the log and evicts stalled workers; returns the cells evicted.
    pub fn tend(&mut self, log: &Log) -> Vec<usize> {
        self.drain(log);
        log.evict_stalled(&mut self.watch, std::time::Instant::now())
    }

    /// Applies everything published so far.
    pub fn drain(&mut self, log: &Log) {
        let start = self.cursor;
        loop {
            match log.read(self.cursor, &mut self.buf) {
                Read::NotYet => break,
                Read::Filler => {}
                Read::Record => match codec::decode(&self.buf) {
                    Ok(event) => {
                        // What changed is no one's to hear: the workers tell
                        // their own connections from their own replicas.
                        self.state.apply(&event, &mut Vec::new());
                    }
                    Err(e) => tracing::error!(seq = self.cursor, "undecodable log record: {e}"),
                },
            }
            self.cursor += 1;
        }
        if self.cursor != start {
            log.advance(KEEPER, self.cursor);
        }
    }

    /// Appends an event as the keeper.
    pub fn publish(&mut self, log: &Log, wake: &dyn Wake, event: &Event) {
        let mut record = Vec::new();
        if let Err(e) = codec::encode(event, &mut record) {
            // The keeper's events are a worker and a short reason: never.
            tracing::error!(?event, "keeper event refused: {e}");
            return;
        }
        log.append(KEEPER, &record, wake, || {
            self.tend(log);
        });
        self.drain(log);
    }

    /// After worker `cell` has stopped running: fill what it left in the
    /// log, tell everyone its users are gone, and free the cell.
    pub fn bury(&mut self, log: &Log, wake: &dyn Wake, cell: usize, reason: &str) {
        let generation = log.generation(cell);
        if let Some(seq) = log.repair(cell, || {
            self.tend(log);
        }) {
            tracing::warn!(cell, seq, "filled the log entry a dead worker had claimed");
        }
        let lost = Event::WorkerLost { worker: cell as u16, generation, reason: reason.to_string() };
        self.publish(log, wake, &lost);
        log.vacate(cell);
    }
}

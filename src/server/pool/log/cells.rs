//! The log's participants, one cell each: who they are (status, pid,
//! generation), what they report (clients, heartbeat, flow census), and
//! the keeper's eviction of a worker that stopped running.
//!
//! None of this touches the ring's slots or the claim protocol (`mod.rs`);
//! it is the bookkeeping around them, kept apart so that the protocol reads
//! on its own.

use std::sync::atomic::Ordering;
use std::time::Instant;

use nix::unistd::Pid;

use super::{
    AWAKE, BRIDGE, CellId, EVICTED, LIVE, Log, MAX_CELLS, NONE, SLEEPING, STALL_TIMEOUT, VACANT, WOKEN, Wake,
};
use crate::server::flow::Census;

/// A cell's standing in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellStatus {
    Vacant,
    Live,
    Evicted,
    Dead,
}

/// The keeper's memory of each cell's heartbeat: its last value and when
/// it was first seen (or when the cell last had nothing to read).
pub struct StallWatch {
    /// Per cell: its heartbeat and cursor as last seen, and since when
    /// neither has moved while it had records to read.
    seen: Vec<(u64, u64, Instant)>,
}

impl Default for StallWatch {
    fn default() -> Self {
        StallWatch { seen: vec![(0, 0, Instant::now()); MAX_CELLS] }
    }
}

/// A pid as the cell stores it (0: none; pids are positive).
fn pid_word(pid: Pid) -> u32 {
    u32::try_from(pid.as_raw()).unwrap_or(0)
}

impl Log {
    /// Makes `cell` a LIVE reader starting at `start` (which must be a cursor
    /// the keeper holds, so nothing from `start` on is overwritten yet).
    /// Returns the cell's new generation.
    pub fn open_cell(&self, cell: CellId, pid: Pid, start: u64) -> u32 {
        let c = self.cell(cell);
        c.cursor.store(start, Ordering::SeqCst);
        c.pending.store(NONE, Ordering::SeqCst);
        c.sleeping.store(AWAKE, Ordering::SeqCst);
        c.pid.store(pid_word(pid), Ordering::SeqCst);
        c.clients.store(0, Ordering::SeqCst);
        c.behind.store(0, Ordering::SeqCst);
        c.receivers.store(0, Ordering::SeqCst);
        let generation = c.generation.fetch_add(1, Ordering::SeqCst) + 1;
        c.status.store(LIVE, Ordering::SeqCst);
        generation
    }

    pub fn set_pid(&self, cell: CellId, pid: Pid) {
        self.cell(cell).pid.store(pid_word(pid), Ordering::SeqCst);
    }

    /// The process serving `cell`, if one was recorded.
    pub fn pid(&self, cell: CellId) -> Option<Pid> {
        match self.cell(cell).pid.load(Ordering::SeqCst) {
            0 => None,
            word => i32::try_from(word).ok().map(Pid::from_raw),
        }
    }

    pub fn generation(&self, cell: CellId) -> u32 {
        self.cell(cell).generation.load(Ordering::SeqCst)
    }

    pub fn status(&self, cell: CellId) -> CellStatus {
        match self.cell(cell).status.load(Ordering::SeqCst) {
            VACANT => CellStatus::Vacant,
            LIVE => CellStatus::Live,
            EVICTED => CellStatus::Evicted,
            _ => CellStatus::Dead,
        }
    }

    /// Stops `cell` gating writers; it is then repaired and vacated.
    #[cfg(test)]
    pub fn mark_dead(&self, cell: CellId) {
        self.cell(cell).status.store(super::DEAD, Ordering::SeqCst);
    }

    pub fn vacate(&self, cell: CellId) {
        let c = self.cell(cell);
        c.clients.store(0, Ordering::SeqCst);
        c.behind.store(0, Ordering::SeqCst);
        c.receivers.store(0, Ordering::SeqCst);
        c.status.store(VACANT, Ordering::SeqCst);
    }

    /// Connections counted across every cell (the server-wide total).
    pub fn total_clients(&self) -> u32 {
        self.header().cells.iter().map(|c| c.clients.load(Ordering::Relaxed)).sum()
    }

    pub fn add_client(&self, cell: CellId) {
        self.cell(cell).clients.fetch_add(1, Ordering::Relaxed);
    }

    pub fn remove_client(&self, cell: CellId) {
        self.cell(cell).clients.fetch_sub(1, Ordering::Relaxed);
    }

    /// `me` is alive and going round its loop. Release, paired with
    /// [`Log::turns`]: whoever sees a beat sees the records `me` published
    /// before it (a held registration relies on it, see `worker::held`).
    pub fn beat(&self, me: CellId) {
        self.cell(me).heartbeat.fetch_add(1, Ordering::Release);
    }

    /// How many times `cell`'s worker has gone round its loop, while it is
    /// the LIVE incarnation `generation`; `None` once it is not (stopped,
    /// or replaced: its users are then the keeper's to quit).
    pub fn turns(&self, cell: CellId, generation: u32) -> Option<u64> {
        let c = self.cell(cell);
        let beat = c.heartbeat.load(Ordering::Acquire);
        let current =
            c.status.load(Ordering::SeqCst) == LIVE && c.generation.load(Ordering::SeqCst) == generation;
        current.then_some(beat)
    }

    /// Wakes `cell` if it sleeps, so that it goes round its loop though
    /// nothing was appended: for a worker that waits for another's turns
    /// (see `worker::held`). Like an append's wake-up, one sleep gets one.
    pub fn nudge(&self, cell: CellId, wake: &dyn Wake) {
        let c = self.cell(cell);
        if c.sleeping.compare_exchange(SLEEPING, WOKEN, Ordering::SeqCst, Ordering::Relaxed).is_ok() {
            wake.wake(cell);
        }
    }

    /// Publishes `me`'s part of the flow census.
    pub fn set_census(&self, me: CellId, census: Census) {
        let c = self.cell(me);
        c.behind.store(census.behind as u32, Ordering::Relaxed);
        c.receivers.store(census.receivers as u32, Ordering::Relaxed);
    }

    /// The flow census summed over every LIVE cell.
    pub fn census(&self) -> Census {
        let mut total = Census::default();
        for c in self.header().cells.iter().filter(|c| c.status.load(Ordering::Relaxed) == LIVE) {
            total.behind += c.behind.load(Ordering::Relaxed) as usize;
            total.receivers += c.receivers.load(Ordering::Relaxed) as usize;
        }
        total
    }

    /// Evicts LIVE workers that have records to read but have made no
    /// progress for [`STALL_TIMEOUT`]: not beaten, and not read a record
    /// either. A turn of a worker's loop can outlast the timeout on a busy
    /// machine (thousands of QUITs, each fanned out to thousands, on a
    /// core shared with other processes), and its cursor moves meanwhile;
    /// a stopped or hung worker moves neither. `watch` is the caller's (the
    /// keeper's) memory of when each last moved. Returns the cells evicted.
    pub fn evict_stalled(&self, watch: &mut StallWatch, now: Instant) -> Vec<CellId> {
        let head = self.head();
        let mut evicted = Vec::new();
        // Not a cluster node's bridge: evicted, it would stop gating, and
        // proposals it has not published yet could be overwritten. A stuck
        // bridge fills the ring instead, which stops the node's intake.
        for id in CellId::workers().filter(|id| *id != BRIDGE) {
            let c = self.cell(id);
            let beat = c.heartbeat.load(Ordering::Relaxed);
            let cursor = c.cursor.load(Ordering::Acquire);
            let seen = &mut watch.seen[id.index()];
            if (seen.0, seen.1) != (beat, cursor) || c.status.load(Ordering::SeqCst) != LIVE {
                *seen = (beat, cursor, now);
                continue;
            }
            let waiting = cursor < head;
            if !waiting {
                seen.2 = now;
            } else if now.saturating_duration_since(seen.2) > STALL_TIMEOUT
                && c.status.compare_exchange(LIVE, EVICTED, Ordering::SeqCst, Ordering::SeqCst).is_ok()
            {
                tracing::warn!(cell = %id, "evicting a worker that stopped reading the log");
                evicted.push(id);
            }
        }
        evicted
    }
}

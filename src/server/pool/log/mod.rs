//! The ordered event log the pool models share: a bounded ring of
//! fixed-size slots with sequence numbers, placed on the heap (prethread) or
//! in a `MAP_SHARED` anonymous mapping made before `fork` (prefork).
//!
//! The log is a `#[repr(C)]` header of *cells* (one per participant) and an
//! array of slots, all atomics, no pointers, so it means the same in every
//! process that maps it. Slot contents are stored as `AtomicU64` words and
//! copied with relaxed operations: the publish/cursor protocol below orders
//! them, and no `unsafe` is needed to touch shared bytes.
//!
//! # Participants
//!
//! Cell 0 is the *keeper* (prethread's main thread, prefork's supervisor): it
//! reads every event into a replica that renders nothing, so that it can hand
//! a new worker an up-to-date directory, and it repairs after dead workers.
//! Cells 1..=W are workers. A cell is VACANT, LIVE, EVICTED (stopped
//! advancing; no longer gates anyone) or DEAD (being repaired).
//!
//! # Protocol
//!
//! - **Claim.** A writer takes the claim lock (a word holding its cell + 1),
//!   records `pending = next`, bumps `next`, and releases the lock. The lock
//!   makes "which sequence did this writer claim" recoverable after a crash at
//!   any instruction: see *Repair*. It guards three stores, so it is never
//!   held for long.
//! - **Gate.** Slot `s % capacity` last held sequence `s - capacity`, so
//!   `s` may be claimed only once every LIVE cell's cursor is past that,
//!   i.e. `s < min(cursor) + capacity`. Workers claim with [`Log::try_append`],
//!   which checks this under the claim lock and claims nothing when the
//!   ring is full: a worker never waits inside the log, it keeps its event
//!   and stops reading its clients until there is room (that is how a full
//!   ring pushes back on senders; see `flow` and `worker`). The keeper,
//!   which serves no clients, uses [`Log::append`], which waits for room
//!   while draining. Nothing is ever overwritten unread: a full ring makes
//!   writers wait, not lose.
//! - **Stalls.** Every worker bumps a heartbeat in its cell each time round
//!   its loop, holding the flow or not. The keeper evicts a LIVE worker
//!   that has unread records but whose heartbeat has not moved for
//!   [`STALL_TIMEOUT`] (stopped with SIGSTOP, or hung): it is marked
//!   EVICTED, which stops it gating; the model then deals with it (prefork
//!   kills and replaces it; prethread lets the thread drop its clients and
//!   replaces it once it exits). A worker that holds the flow for its slow
//!   readers keeps beating, so backpressure is never mistaken for a stall.
//! - **Write, publish.** The writer copies the record into the slot, then
//!   stores `published = s + 1` with Release, then clears `pending`.
//! - **Read.** A reader with cursor `c` loads `published` of slot `c %
//!   capacity` with Acquire. Equal to `c + 1` means the record is there and
//!   complete (Release/Acquire); anything else means not yet (it can only be
//!   an older sequence: the writer of `c + capacity` is gated on this very
//!   cursor). After copying the record out the reader stores `cursor = c + 1`
//!   with Release, which is what lets a writer reuse the slot.
//! - **One total order.** Sequence numbers are handed out once each under the
//!   claim lock and every reader applies them in sequence order, so all
//!   replicas see the same events in the same order.
//! - **Sleep and wake.** A reader about to block sets its `sleeping` flag,
//!   then (SeqCst) re-checks its next slot, and sleeps only if still nothing
//!   is published. A writer publishes, then (SeqCst) looks at the flags and
//!   wakes only sleepers, flipping SLEEPING→WOKEN with a CAS so that one
//!   sleep gets one wake-up however many writers publish. Either the reader
//!   sees the record or the writer sees the flag: no lost wake-ups. The
//!   keeper, which serves no clients, drains on a short timer instead and
//!   is woken only once it lags half a ring behind.
//! - **Repair.** After a writer is known to be dead (reaped), the keeper
//!   looks at its cell: if it holds the claim lock and `pending == next` it
//!   died before bumping `next` (nothing was claimed); if `pending < next` it
//!   owns sequence `pending`; if that slot is not published, the keeper fills
//!   it with a *filler* record (readers skip it). Then the lock is released
//!   and the cell vacated. The dead writer's other records were published
//!   whole or not claimed at all, so no other writer's events are lost.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::Duration;

mod cell_id;
mod cells;
mod region;

pub use cell_id::CellId;
pub use cells::{CellStatus, StallWatch};
use region::Region;

/// Participants: the keeper (cell 0) and up to 64 workers.
pub const MAX_CELLS: usize = 65;
/// The keeper's cell.
pub const KEEPER: CellId = CellId(0);

/// Bytes a slot can carry.
pub const SLOT_DATA_BYTES: usize = WORDS * 8;
/// Slots in the ring: 1 MiB of shared memory. With flow control the ring
/// only needs to absorb how far workers drift apart between turns; every
/// slot is memory each process that maps it touches.
pub const DEFAULT_CAPACITY: usize = 1024;
/// How long a worker with unread records may go without a heartbeat
/// before the keeper evicts it.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(3);

const WORDS: usize = 126;
const MAGIC: u64 = 0x6368_6174_7465_726c; // "chatterl"
const NONE: u64 = u64::MAX;

const VACANT: u32 = 0;
const LIVE: u32 = 1;
const EVICTED: u32 = 2;
const DEAD: u32 = 3;

const AWAKE: u32 = 0;
const SLEEPING: u32 = 1;
const WOKEN: u32 = 2;

const KIND_EVENT: u64 = 0;
const KIND_FILLER: u64 = 1;

/// One participant. Aligned to a cache line so cursors do not false-share.
#[repr(C, align(64))]
#[derive(Default)]
pub struct Cell {
    status: AtomicU32,
    sleeping: AtomicU32,
    pid: AtomicU32,
    generation: AtomicU32,
    /// Next sequence this cell will read.
    cursor: AtomicU64,
    /// Sequence claimed but not yet published, or NONE.
    pending: AtomicU64,
    /// Connections this cell serves (for the server-wide client limit).
    clients: AtomicU32,
    /// Bumped by a worker every time round its loop.
    heartbeat: AtomicU64,
    /// This cell's part of the flow census: connections behind, and
    /// connections sent to lately (see `flow::Census`).
    behind: AtomicU32,
    receivers: AtomicU32,
}

#[repr(C)]
pub struct Header {
    magic: AtomicU64,
    capacity: AtomicU64,
    next: AtomicU64,
    claim_lock: AtomicU32,
    cells: [Cell; MAX_CELLS],
}

#[repr(C)]
pub struct Slot {
    /// `s + 1` once sequence `s` is complete in this slot.
    published: AtomicU64,
    /// Record length in the low 32 bits, kind above.
    meta: AtomicU64,
    words: [AtomicU64; WORDS],
}

impl Slot {
    fn new() -> Slot {
        Slot {
            published: AtomicU64::new(0),
            meta: AtomicU64::new(0),
            words: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// What a reader found at its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Nothing published there yet.
    NotYet,
    /// A record was copied into the caller's buffer.
    Record,
    /// A hole left by a dead writer, filled by the keeper: skip it.
    Filler,
}

/// Wakes a sleeping cell: a `mio::Waker` for threads, SIGUSR1 for processes.
pub trait Wake {
    fn wake(&self, cell: CellId);
}

/// The event log. Share it with `Arc` (threads) or map it before `fork`.
pub struct Log {
    region: Region,
    capacity: u64,
    /// A floor every LIVE cursor is known to be at or past. Cursors only
    /// grow (a cell opens at the keeper's cursor, which gates too), so a
    /// stale value is merely conservative; it spares [`Log::try_append`]
    /// reading every cell while the ring has room. Per process.
    floor_hint: AtomicU64,
}

impl Log {
    fn cell(&self, cell: CellId) -> &Cell {
        &self.header().cells[cell.index()]
    }

    fn slot(&self, seq: u64) -> &Slot {
        &self.slots()[(seq % self.capacity) as usize]
    }

    /// The next sequence to be claimed: every sequence below it is claimed.
    pub fn head(&self) -> u64 {
        self.header().next.load(Ordering::Acquire)
    }

    // ---- writing ----

    fn lock_claim(&self, me: CellId) {
        let lock = &self.header().claim_lock;
        let mut backoff = Backoff::default();
        while lock
            .compare_exchange_weak(0, u32::from(me.0) + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            backoff.wait();
        }
    }

    /// Appends one record as `me` if the ring has room for it, and returns
    /// its sequence number; claims nothing and returns `None` when the ring
    /// is full. Never waits: for workers, which must keep serving their
    /// sockets while the ring is full.
    pub fn try_append(&self, me: CellId, record: &[u8], wake: &dyn Wake) -> Option<u64> {
        assert!(record.len() <= SLOT_DATA_BYTES, "record of {} bytes does not fit a slot", record.len());
        let header = self.header();
        let cell = self.cell(me);
        self.lock_claim(me);
        let seq = header.next.load(Ordering::SeqCst);
        if seq >= self.floor_hint.load(Ordering::Relaxed) + self.capacity {
            let floor = self.live_floor(seq);
            self.floor_hint.fetch_max(floor, Ordering::Relaxed);
            if seq >= floor + self.capacity {
                header.claim_lock.store(0, Ordering::Release);
                return None;
            }
        }
        cell.pending.store(seq, Ordering::SeqCst);
        header.next.store(seq + 1, Ordering::SeqCst);
        header.claim_lock.store(0, Ordering::Release);

        self.write_slot(seq, KIND_EVENT, record);
        cell.pending.store(NONE, Ordering::SeqCst);
        self.wake_sleepers(me, seq, wake);
        Some(seq)
    }

    /// Whether a record could be appended now (it may not be by the time
    /// one is: other writers race for the same room).
    #[cfg(test)]
    pub fn has_room(&self) -> bool {
        let head = self.head();
        head < self.floor_hint.load(Ordering::Relaxed) + self.capacity || {
            let floor = self.live_floor(head);
            self.floor_hint.fetch_max(floor, Ordering::Relaxed);
            head < floor + self.capacity
        }
    }

    /// The lowest cursor of any LIVE cell, or `upto` if none is lower.
    fn live_floor(&self, upto: u64) -> u64 {
        self.header()
            .cells
            .iter()
            .filter(|c| c.status.load(Ordering::SeqCst) == LIVE)
            .map(|c| c.cursor.load(Ordering::Acquire))
            .fold(upto, u64::min)
    }

    /// Appends one record as `me` and returns its sequence number, waiting
    /// while the ring is full: for the keeper, which serves no clients.
    /// While it waits, `while_gated` is called repeatedly; it must advance
    /// `me`'s own cursor if it can (drain the log), or the writer could
    /// wait on itself, and it should evict stalled workers (see
    /// [`Log::evict_stalled`]), or a stopped worker would hold it forever.
    pub fn append(&self, me: CellId, record: &[u8], wake: &dyn Wake, mut while_gated: impl FnMut()) -> u64 {
        assert!(record.len() <= SLOT_DATA_BYTES, "record of {} bytes does not fit a slot", record.len());
        let header = self.header();
        let cell = self.cell(me);
        self.lock_claim(me);
        let seq = header.next.load(Ordering::SeqCst);
        cell.pending.store(seq, Ordering::SeqCst);
        header.next.store(seq + 1, Ordering::SeqCst);
        header.claim_lock.store(0, Ordering::Release);

        self.wait_for_gate(seq, &mut while_gated);
        self.write_slot(seq, KIND_EVENT, record);
        cell.pending.store(NONE, Ordering::SeqCst);
        self.wake_sleepers(me, seq, wake);
        seq
    }

    /// Waits until slot `seq` holds nothing a LIVE reader still needs.
    fn wait_for_gate(&self, seq: u64, while_gated: &mut impl FnMut()) {
        let mut backoff = Backoff::default();
        loop {
            if seq < self.live_floor(seq) + self.capacity {
                return;
            }
            while_gated();
            backoff.wait();
        }
    }

    fn write_slot(&self, seq: u64, kind: u64, record: &[u8]) {
        let slot = self.slot(seq);
        for (word, chunk) in slot.words.iter().zip(record.chunks(8)) {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            word.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
        slot.meta.store(record.len() as u64 | (kind << 32), Ordering::Relaxed);
        slot.published.store(seq + 1, Ordering::Release);
    }

    fn wake_sleepers(&self, me: CellId, seq: u64, wake: &dyn Wake) {
        // Pairs with the fence in `prepare_sleep`: either the sleeper sees
        // our record, or we see its flag.
        fence(Ordering::SeqCst);
        for (i, c) in self.header().cells.iter().enumerate() {
            let i = CellId(i as u16);
            // The keeper has no clients waiting on it: it drains on a timer
            // and is woken only when it could soon hold writers up.
            if i == KEEPER && seq < c.cursor.load(Ordering::Relaxed) + self.capacity / 2 {
                continue;
            }
            if i != me
                && c.status.load(Ordering::Relaxed) == LIVE
                && c.sleeping.load(Ordering::Relaxed) == SLEEPING
                && c.sleeping.compare_exchange(SLEEPING, WOKEN, Ordering::SeqCst, Ordering::Relaxed).is_ok()
            {
                wake.wake(i);
            }
        }
    }

    // ---- reading ----

    /// Copies the record at `seq` into `buf` if it is published.
    pub fn read(&self, seq: u64, buf: &mut Vec<u8>) -> Read {
        let slot = self.slot(seq);
        if slot.published.load(Ordering::Acquire) != seq + 1 {
            return Read::NotYet;
        }
        let meta = slot.meta.load(Ordering::Relaxed);
        if meta >> 32 == KIND_FILLER {
            return Read::Filler;
        }
        let len = ((meta & 0xffff_ffff) as usize).min(SLOT_DATA_BYTES);
        buf.clear();
        for word in slot.words.iter().take(len.div_ceil(8)) {
            buf.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        buf.truncate(len);
        Read::Record
    }

    /// Whether the record at `seq` is published.
    pub fn is_published(&self, seq: u64) -> bool {
        self.slot(seq).published.load(Ordering::Acquire) == seq + 1
    }

    /// Records that `me` has consumed everything below `cursor`.
    pub fn advance(&self, me: CellId, cursor: u64) {
        self.cell(me).cursor.store(cursor, Ordering::Release);
    }

    /// Announces that `me` is about to sleep with its next read at `cursor`.
    /// Returns false (and stays awake) if a record is already there.
    pub fn prepare_sleep(&self, me: CellId, cursor: u64) -> bool {
        let c = self.cell(me);
        c.sleeping.store(SLEEPING, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.is_published(cursor) {
            c.sleeping.store(AWAKE, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// `me` is awake again.
    pub fn awake(&self, me: CellId) {
        self.cell(me).sleeping.store(AWAKE, Ordering::SeqCst);
    }

    // ---- repair ----

    /// Cleans up after `dead`, which must no longer be running: releases the
    /// claim lock if it held it and fills the sequence it had claimed but not
    /// published. Returns the filled sequence, if any. `while_gated` is as
    /// for [`Log::append`] (the keeper drains its replica).
    pub fn repair(&self, dead: CellId, mut while_gated: impl FnMut()) -> Option<u64> {
        let header = self.header();
        let cell = self.cell(dead);
        cell.status.store(DEAD, Ordering::SeqCst);
        let pending = cell.pending.load(Ordering::SeqCst);
        let mut claimed = pending;
        if header.claim_lock.load(Ordering::SeqCst) == u32::from(dead.0) + 1 {
            // Died inside the claim: if `next` was not bumped yet, it claimed nothing.
            if pending == NONE || pending == header.next.load(Ordering::SeqCst) {
                claimed = NONE;
            }
            header.claim_lock.store(0, Ordering::Release);
        }
        cell.pending.store(NONE, Ordering::SeqCst);
        if claimed == NONE || self.is_published(claimed) {
            return None;
        }
        self.wait_for_gate(claimed, &mut while_gated);
        self.write_slot(claimed, KIND_FILLER, &[]);
        Some(claimed)
    }
}

/// Spin briefly, then yield, then sleep: waits here are short unless a
/// participant is dead or stopped.
#[derive(Default)]
struct Backoff {
    rounds: u32,
}

impl Backoff {
    fn wait(&mut self) {
        self.rounds += 1;
        if self.rounds < 64 {
            std::hint::spin_loop();
        } else if self.rounds < 256 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

#[cfg(test)]
mod tests;

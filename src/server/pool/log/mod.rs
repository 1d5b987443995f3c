//! The ordered event log the pool models share: a bounded ring of
//! fixed-size slots with sequence numbers, placed on the heap (prethread) or
//! in a `MAP_SHARED` anonymous mapping made before `fork` (prefork). A
//! record takes one slot, or up to [`MAX_RECORD_SLOTS`] consecutive ones
//! when it is longer: slots stay small for the many small events, and a
//! rare large one does not make every slot large.
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
//! - **Claim.** A writer whose record needs `k` slots takes the claim lock
//!   (a word holding its cell + 1), records the claim's extent
//!   `pending_end = next + k`, then `pending = next`, bumps `next` by `k`,
//!   and releases the lock. The lock makes "which sequences did this writer
//!   claim" recoverable after a crash at any instruction: see *Repair*. It
//!   guards four stores, so it is never held for long.
//! - **Gate.** Slot `s % capacity` last held sequence `s - capacity`, so
//!   `s` may be claimed only once every LIVE cell's cursor is past that,
//!   i.e. `s < min(cursor) + capacity`; a claim of `k` needs that of its
//!   last sequence. Workers claim with [`Log::try_append`], which checks
//!   this under the claim lock and claims nothing (not even part) when the
//!   ring has no room for all `k`: a worker never waits inside the log, it
//!   keeps its event and stops reading its clients until there is room
//!   (that is how a full ring pushes back on senders; see `flow` and
//!   `worker`). The keeper, which serves no clients, uses [`Log::append`],
//!   which waits for room while draining. Nothing is ever overwritten
//!   unread: a full ring makes writers wait, not lose.
//! - **Stalls.** Every worker bumps a heartbeat in its cell each time round
//!   its loop, holding the flow or not. The keeper evicts a LIVE worker
//!   that has unread records but whose heartbeat and cursor have both not
//!   moved for [`STALL_TIMEOUT`] (stopped with SIGSTOP, or hung; a worker
//!   in one long turn still reads, so it is not taken for one): it is marked
//!   EVICTED, which stops it gating; the model then deals with it (prefork
//!   kills and replaces it; prethread lets the thread drop its clients and
//!   replaces it once it exits). A worker that holds the flow for its slow
//!   readers keeps beating, so backpressure is never mistaken for a stall.
//! - **Write, publish.** The writer copies the record into its slots and
//!   publishes each (`published = s + 1`, Release): the continuation slots
//!   first, the head slot (the claim's first) last; then it clears
//!   `pending`. Why that order is enough is argued at `write_record`.
//! - **Read.** A reader with cursor `c` loads `published` of slot `c %
//!   capacity` with Acquire. Equal to `c + 1` means the record is there and
//!   complete, continuations included (Release/Acquire); anything else means
//!   not yet (it can only be an older sequence: the writer of `c + capacity`
//!   is gated on this very cursor). The head says the record's length, so
//!   how many slots it takes; the reader copies them all out and stores
//!   `cursor = c + k` with Release, which is what lets a writer reuse them.
//!   A reader is only ever at a record's head, a filler, or an orphan
//!   (below).
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
//!   died before bumping `next` (nothing was claimed); otherwise, with
//!   `pending` set, it owns `pending..pending_end`. Each of those slots not
//!   published is filled with a *filler* (readers skip it, one sequence at
//!   a time). If the head was published the record is whole and nothing is
//!   filled; if not, the head becomes a filler and any continuation the
//!   writer did publish is an *orphan*, which readers skip too. Then the
//!   lock is released and the cell vacated. The dead writer's other records
//!   were published whole or not claimed at all, so no other writer's
//!   events are lost. `tests.rs` kills a writer at every step of an append
//!   (between any two of its stores) and checks exactly this.

use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::Duration;

mod cell_id;
mod cells;
mod region;
mod write;

pub use cell_id::CellId;
pub use cells::{CellStatus, StallWatch};
use region::Region;
#[cfg(test)]
use write::StepsToDeath;

/// Participants: the keeper (cell 0) and up to 64 workers.
pub const MAX_CELLS: usize = 65;
/// The keeper's cell.
pub const KEEPER: CellId = CellId(0);
/// A cluster node's bridge (see `pool::bridged`): the last cell, so a
/// clustered pool has one worker fewer than it could alone.
pub const BRIDGE: CellId = CellId(MAX_CELLS as u16 - 1);

/// Bytes a slot can carry.
pub const SLOT_DATA_BYTES: usize = WORDS * 8;
/// The most consecutive slots one record may take. Small events (nearly
/// all of them) take one slot, so slots stay small for their sake and a
/// rare large one (a message with a full IRCv3 tag section) spans
/// several; 8 holds the largest event a session builds with room to
/// spare (see `chat::MAX_EVENT_BYTES`) and is under 1% of the ring.
pub const MAX_RECORD_SLOTS: u64 = 8;
/// The longest record the log takes.
pub const MAX_RECORD_BYTES: usize = MAX_RECORD_SLOTS as usize * SLOT_DATA_BYTES;
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

/// A record's first slot: `meta` holds the whole record's length.
const KIND_RECORD: u64 = 0;
/// Left by the keeper where a dead writer had claimed and not published.
const KIND_FILLER: u64 = 1;
/// A record's second slot or later.
const KIND_CONTINUATION: u64 = 2;

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
    /// First sequence claimed but not yet published, or NONE.
    pending: AtomicU64,
    /// The sequence after the claim `pending` starts (a record may take
    /// several); meaningful only while `pending` is set.
    pending_end: AtomicU64,
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
    /// Length in the low 32 bits (see `store_slot`), kind above.
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
    /// A record was copied into the caller's buffer; it took this many
    /// sequences, so the next record starts that far on.
    Record { slots: u64 },
    /// Nothing to read at this one sequence (a filler the keeper left for
    /// a dead writer, or the rest of a record it did not finish): skip it.
    Skip,
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
    #[cfg(test)]
    steps_to_death: StepsToDeath,
}

impl Log {
    /// The log in `region`, which holds `capacity` slots, none used yet.
    fn placed(region: Region, capacity: usize) -> Log {
        assert!(
            capacity as u64 >= MAX_RECORD_SLOTS,
            "a ring of {capacity} slots cannot take the longest record"
        );
        let log = Log {
            region,
            capacity: capacity as u64,
            floor_hint: AtomicU64::new(0),
            #[cfg(test)]
            steps_to_death: StepsToDeath::never(),
        };
        for cell in &log.header().cells {
            cell.pending.store(NONE, Ordering::Relaxed);
        }
        log
    }

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

    // ---- reading ----

    /// Copies the record at `seq` into `buf` if it is published (all of
    /// it: see `write_record`).
    pub fn read(&self, seq: u64, buf: &mut Vec<u8>) -> Read {
        let head = self.slot(seq);
        if head.published.load(Ordering::Acquire) != seq + 1 {
            return Read::NotYet;
        }
        let meta = head.meta.load(Ordering::Relaxed);
        if meta >> 32 != KIND_RECORD {
            // A filler, or the continuation of a record whose head was
            // filled (an orphan): a reader meets nothing else off a head.
            return Read::Skip;
        }
        let len = ((meta & 0xffff_ffff) as usize).min(MAX_RECORD_BYTES);
        let slots = slots_for(len);
        buf.clear();
        for seq in seq..seq + slots {
            let words = self.slot(seq).words.iter();
            buf.extend(words.flat_map(|word| word.load(Ordering::Relaxed).to_le_bytes()));
        }
        buf.truncate(len);
        Read::Record { slots }
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
    /// claim lock if it held it and fills every sequence of its claim that
    /// it had not published. Returns that claim, if any slot of it needed
    /// filling. `while_gated` is as for [`Log::append`] (the keeper drains
    /// its replica).
    pub fn repair(&self, dead: CellId, mut while_gated: impl FnMut()) -> Option<Range<u64>> {
        let header = self.header();
        let cell = self.cell(dead);
        cell.status.store(DEAD, Ordering::SeqCst);
        let start = cell.pending.load(Ordering::SeqCst);
        let mut claimed = start != NONE;
        if header.claim_lock.load(Ordering::SeqCst) == u32::from(dead.0) + 1 {
            // Died inside the claim: if `next` was not bumped yet, it claimed nothing.
            if start == header.next.load(Ordering::SeqCst) {
                claimed = false;
            }
            header.claim_lock.store(0, Ordering::Release);
        }
        cell.pending.store(NONE, Ordering::SeqCst);
        if !claimed {
            return None;
        }
        // The extent was stored before the start (see `claim`), so it is
        // this claim's; bounded all the same, so that no word in shared
        // memory can make the keeper fill more than one record's slots.
        let end = cell.pending_end.load(Ordering::SeqCst).clamp(start + 1, start + MAX_RECORD_SLOTS);
        let claim = start..end;
        let holes: Vec<u64> = claim.clone().filter(|&seq| !self.is_published(seq)).collect();
        if holes.is_empty() {
            return None;
        }
        self.wait_for_gate(claim.end - 1, &mut while_gated);
        for seq in holes {
            self.store_slot(seq, KIND_FILLER, &[], 0);
            self.publish(seq);
        }
        Some(claim)
    }
}

/// Slots a record of `len` bytes takes (an empty one still takes one).
fn slots_for(len: usize) -> u64 {
    len.div_ceil(SLOT_DATA_BYTES).max(1) as u64
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

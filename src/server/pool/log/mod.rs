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

use std::io;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use nix::unistd::Pid;

mod cell_id;

pub use cell_id::CellId;

use crate::server::flow::Census;

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

/// A cell's standing in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellStatus {
    Vacant,
    Live,
    Evicted,
    Dead,
}

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

/// The keeper's memory of each cell's heartbeat: its last value and when
/// it was first seen (or when the cell last had nothing to read).
pub struct StallWatch {
    seen: Vec<(u64, Instant)>,
}

impl Default for StallWatch {
    fn default() -> Self {
        StallWatch { seen: vec![(0, Instant::now()); MAX_CELLS] }
    }
}

/// Wakes a sleeping cell: a `mio::Waker` for threads, SIGUSR1 for processes.
pub trait Wake {
    fn wake(&self, cell: CellId);
}

enum Region {
    Heap { header: Box<Header>, slots: Box<[Slot]> },
    Mapped(Mapping),
}

/// A `MAP_SHARED` anonymous mapping holding a header and its slots.
struct Mapping {
    header: &'static Header,
    slots: &'static [Slot],
    base: usize,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Some(base) = std::ptr::NonNull::new(self.base as *mut std::ffi::c_void) {
            // SAFETY: `base`/`len` are exactly what mmap returned, and every
            // reference into the mapping is borrowed from the `Log` being
            // dropped, so none outlives the unmapping.
            let _ = unsafe { nix::sys::mman::munmap(base, self.len) };
        }
    }
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

/// A pid as the cell stores it (0: none; pids are positive).
fn pid_word(pid: Pid) -> u32 {
    u32::try_from(pid.as_raw()).unwrap_or(0)
}

fn header_bytes() -> usize {
    // Slots start on a cache line after the header.
    std::mem::size_of::<Header>().div_ceil(64) * 64
}

impl Log {
    /// A log on the heap, for threads of one process.
    pub fn on_heap(capacity: usize) -> Log {
        let header = Box::new(Header {
            magic: AtomicU64::new(MAGIC),
            capacity: AtomicU64::new(capacity as u64),
            next: AtomicU64::new(0),
            claim_lock: AtomicU32::new(0),
            cells: std::array::from_fn(|_| Cell::default()),
        });
        let slots: Box<[Slot]> = (0..capacity).map(|_| Slot::new()).collect();
        let log = Log {
            region: Region::Heap { header, slots },
            capacity: capacity as u64,
            floor_hint: AtomicU64::new(0),
        };
        log.init_cells();
        log
    }

    /// A log in a shared anonymous mapping: processes forked after this call
    /// share it (a private mapping would be copied on write after `fork`).
    pub fn shared(capacity: usize) -> io::Result<Log> {
        let len = header_bytes() + capacity * std::mem::size_of::<Slot>();
        let length = NonZeroUsize::new(len).ok_or_else(|| io::Error::other("empty log"))?;
        use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
        // SAFETY: a fresh anonymous mapping at an address the kernel picks
        // aliases no existing Rust object.
        let base = unsafe {
            mmap_anonymous(None, length, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_SHARED)
        }
        .map_err(io::Error::from)?;
        let base_ptr = base.as_ptr().cast::<u8>();
        // SAFETY: the mapping is page-aligned (enough for the 64-byte
        // alignment of Header and Slot), `len` bytes long and zero-filled,
        // and all-zero bytes are a valid value of every atomic in Header and
        // Slot. It stays mapped until `Mapping` is dropped, and the 'static
        // references never leave the `Log` that owns it.
        let (header, slots) = unsafe {
            let header = &*(base_ptr.cast::<Header>());
            let slots = std::slice::from_raw_parts(base_ptr.add(header_bytes()).cast::<Slot>(), capacity);
            (header, slots)
        };
        header.magic.store(MAGIC, Ordering::Relaxed);
        header.capacity.store(capacity as u64, Ordering::Relaxed);
        let log = Log {
            region: Region::Mapped(Mapping { header, slots, base: base.as_ptr() as usize, len }),
            capacity: capacity as u64,
            floor_hint: AtomicU64::new(0),
        };
        log.init_cells();
        Ok(log)
    }

    fn init_cells(&self) {
        for cell in &self.header().cells {
            cell.pending.store(NONE, Ordering::Relaxed);
        }
    }

    fn header(&self) -> &Header {
        match &self.region {
            Region::Heap { header, .. } => header,
            Region::Mapped(m) => m.header,
        }
    }

    fn slots(&self) -> &[Slot] {
        match &self.region {
            Region::Heap { slots, .. } => slots,
            Region::Mapped(m) => m.slots,
        }
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

    // ---- cells ----

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
        self.cell(cell).status.store(DEAD, Ordering::SeqCst);
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

    /// Evicts LIVE workers that have records to read but have not beaten
    /// for [`STALL_TIMEOUT`]; `watch` is the caller's (the keeper's) memory
    /// of when each heartbeat last moved. Returns the cells evicted.
    pub fn evict_stalled(&self, watch: &mut StallWatch, now: Instant) -> Vec<CellId> {
        let head = self.head();
        let mut evicted = Vec::new();
        for id in CellId::workers() {
            let c = self.cell(id);
            let beat = c.heartbeat.load(Ordering::Relaxed);
            let seen = &mut watch.seen[id.index()];
            if seen.0 != beat || c.status.load(Ordering::SeqCst) != LIVE {
                *seen = (beat, now);
                continue;
            }
            let waiting = c.cursor.load(Ordering::Acquire) < head;
            if !waiting {
                seen.1 = now;
            } else if now.saturating_duration_since(seen.1) > STALL_TIMEOUT
                && c.status.compare_exchange(LIVE, EVICTED, Ordering::SeqCst, Ordering::SeqCst).is_ok()
            {
                tracing::warn!(cell = %id, "evicting a worker that stopped reading the log");
                evicted.push(id);
            }
        }
        evicted
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

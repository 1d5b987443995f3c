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

use crate::server::flow::Census;

/// Participants: the keeper (cell 0) and up to 64 workers.
pub const MAX_CELLS: usize = 65;
/// The keeper's cell.
pub const KEEPER: CellId = CellId(0);

/// A participant in the log: the keeper (cell 0) or worker 1 to 64. A
/// worker's connection ids carry it (`ConnId::worker`), so that every
/// replica can tell whose connection a user is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellId(u16);

impl CellId {
    /// Worker `n`, counting from 1 as `--workers` does.
    pub fn worker(n: usize) -> CellId {
        assert!((1..MAX_CELLS).contains(&n), "worker {n} is not a cell");
        CellId(n as u16)
    }

    /// Every worker cell.
    pub fn workers() -> impl Iterator<Item = CellId> {
        (1..MAX_CELLS as u16).map(CellId)
    }

    /// Its place among the cells (and among a model's per-cell tables).
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// What connection ids say for this cell.
    pub fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether `conn` was accepted by this cell's worker.
    pub fn accepted(self, conn: crate::chat::ConnId) -> bool {
        conn.worker == self.0
    }
}

impl std::fmt::Display for CellId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
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

    /// `me` is alive and going round its loop.
    pub fn beat(&self, me: CellId) {
        self.cell(me).heartbeat.fetch_add(1, Ordering::Relaxed);
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
mod tests {
    /// No process: these cells are threads of the test.
    const NO_PID: Pid = Pid::from_raw(0);
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    struct CountWakes(AtomicUsize);
    impl Wake for CountWakes {
        fn wake(&self, _cell: CellId) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn no_wake() -> CountWakes {
        CountWakes(AtomicUsize::new(0))
    }

    #[test]
    fn records_come_back_in_order() {
        let log = Log::on_heap(8);
        log.open_cell(CellId(1), NO_PID, 0);
        let wake = no_wake();
        for i in 0..5u8 {
            assert_eq!(log.append(CellId(1), &[i; 13], &wake, || {}), i as u64);
        }
        let mut buf = Vec::new();
        for i in 0..5u8 {
            assert_eq!(log.read(i as u64, &mut buf), Read::Record);
            assert_eq!(buf, vec![i; 13]);
        }
        assert_eq!(log.read(5, &mut buf), Read::NotYet);
    }

    #[test]
    fn a_full_ring_makes_the_writer_drain_instead_of_overwrite() {
        let log = Log::on_heap(4);
        log.open_cell(CellId(1), NO_PID, 0);
        let wake = no_wake();
        let mut cursor = 0u64;
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        for i in 0..20u8 {
            let mut drained = Vec::new();
            log.append(CellId(1), &[i], &wake, || {
                while log.read(cursor, &mut buf) == Read::Record {
                    drained.push(buf[0]);
                    cursor += 1;
                }
                log.advance(CellId(1), cursor);
            });
            seen.extend(drained);
        }
        while log.read(cursor, &mut buf) == Read::Record {
            seen.push(buf[0]);
            cursor += 1;
        }
        assert_eq!(seen, (0..20).collect::<Vec<u8>>());
    }

    #[test]
    fn only_sleepers_are_woken_once_per_sleep() {
        let log = Log::on_heap(16);
        log.open_cell(CellId(1), NO_PID, 0);
        log.open_cell(CellId(2), NO_PID, 0);
        let wake = no_wake();
        log.append(CellId(1), b"a", &wake, || {});
        assert_eq!(wake.0.load(Ordering::Relaxed), 0, "cell 2 was awake");
        assert!(!log.prepare_sleep(CellId(2), 0), "a record is waiting, so no sleep");
        assert!(log.prepare_sleep(CellId(2), 1));
        log.append(CellId(1), b"b", &wake, || {});
        log.append(CellId(1), b"c", &wake, || {});
        assert_eq!(wake.0.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn repair_fills_a_claimed_hole_and_releases_the_lock() {
        let log = Log::on_heap(8);
        log.open_cell(KEEPER, NO_PID, 0);
        log.open_cell(CellId(1), NO_PID, 0);
        log.open_cell(CellId(2), NO_PID, 0);
        let wake = no_wake();
        // Cell 2 claims sequence 0 and dies before publishing.
        log.lock_claim(CellId(2));
        log.cell(CellId(2)).pending.store(0, Ordering::SeqCst);
        log.header().next.store(1, Ordering::SeqCst);
        log.header().claim_lock.store(0, Ordering::SeqCst);
        log.append(CellId(1), b"after", &wake, || {});
        let mut buf = Vec::new();
        assert_eq!(log.read(0, &mut buf), Read::NotYet);
        assert_eq!(log.repair(CellId(2), || {}), Some(0));
        assert_eq!(log.read(0, &mut buf), Read::Filler);
        assert_eq!(log.read(1, &mut buf), Read::Record);
        assert_eq!(buf, b"after");

        // Died holding the lock before bumping `next`: nothing to fill.
        log.open_cell(CellId(2), NO_PID, 2);
        log.lock_claim(CellId(2));
        log.cell(CellId(2)).pending.store(2, Ordering::SeqCst);
        assert_eq!(log.repair(CellId(2), || {}), None);
        assert_eq!(log.append(CellId(1), b"next", &wake, || {}), 2);
    }

    #[test]
    fn a_full_ring_refuses_a_try_and_claims_nothing() {
        let log = Log::on_heap(4);
        log.open_cell(CellId(1), NO_PID, 0);
        log.open_cell(CellId(2), NO_PID, 0);
        let wake = no_wake();
        for i in 0..4u8 {
            assert_eq!(log.try_append(CellId(1), &[i], &wake), Some(i as u64));
        }
        assert!(!log.has_room());
        assert_eq!(log.try_append(CellId(1), b"no room", &wake), None);
        assert_eq!(log.head(), 4, "nothing was claimed");
        // Both readers must move on before slot 0 is reused.
        log.advance(CellId(1), 1);
        assert_eq!(log.try_append(CellId(1), b"x", &wake), None, "cell 2 still needs slot 0");
        log.advance(CellId(2), 2);
        assert!(log.has_room());
        assert_eq!(log.try_append(CellId(2), b"x", &wake), Some(4));
        let mut buf = Vec::new();
        assert_eq!(log.read(4, &mut buf), Read::Record);
        assert_eq!(buf, b"x");
        assert_eq!(log.read(1, &mut buf), Read::Record, "slot 1 was not overwritten");
        assert_eq!(buf, [1]);
    }

    #[test]
    fn a_worker_that_stops_beating_is_evicted_one_that_beats_is_not() {
        let log = Log::on_heap(4);
        log.open_cell(KEEPER, NO_PID, 0);
        log.open_cell(CellId(1), NO_PID, 0); // beats but holds: never reads
        log.open_cell(CellId(2), NO_PID, 0); // stopped
        log.open_cell(CellId(3), NO_PID, 0); // stopped, but has nothing to read
        let wake = no_wake();
        let mut watch = StallWatch::default();
        let start = Instant::now();
        assert!(log.evict_stalled(&mut watch, start).is_empty());
        log.append(KEEPER, b"e", &wake, || {});
        log.advance(KEEPER, 1);
        log.advance(CellId(3), 1);
        log.beat(CellId(1));
        assert!(log.evict_stalled(&mut watch, start + STALL_TIMEOUT / 2).is_empty());
        log.beat(CellId(1));
        assert_eq!(log.evict_stalled(&mut watch, start + STALL_TIMEOUT * 2), vec![CellId(2)]);
        assert_eq!(log.status(CellId(1)), CellStatus::Live);
        assert_eq!(log.status(CellId(2)), CellStatus::Evicted);
        assert_eq!(log.status(CellId(3)), CellStatus::Live);
    }

    #[test]
    fn census_sums_the_live_cells() {
        let log = Log::on_heap(4);
        log.open_cell(CellId(1), NO_PID, 0);
        log.open_cell(CellId(2), NO_PID, 0);
        log.set_census(CellId(1), Census { behind: 1, receivers: 10 });
        log.set_census(CellId(2), Census { behind: 2, receivers: 5 });
        assert_eq!(log.census(), Census { behind: 3, receivers: 15 });
        log.mark_dead(CellId(2));
        assert_eq!(log.census(), Census { behind: 1, receivers: 10 });
    }

    /// Several writer threads, several readers: every reader sees every
    /// record exactly once, in one order.
    #[test]
    fn concurrent_writers_one_order() {
        const WRITERS: usize = 4;
        const PER_WRITER: usize = 2000;
        let log = Arc::new(Log::on_heap(64));
        for cell in 1..=WRITERS {
            log.open_cell(CellId::worker(cell), NO_PID, 0);
        }
        let wake = Arc::new(no_wake());
        let handles: Vec<_> = (1..=WRITERS)
            .map(|me| {
                let log = log.clone();
                let wake = wake.clone();
                std::thread::spawn(move || {
                    let mut cursor = 0u64;
                    let mut buf = Vec::new();
                    let mut order = Vec::new();
                    let mut drain = |cursor: &mut u64, order: &mut Vec<Vec<u8>>| {
                        while log.read(*cursor, &mut buf) == Read::Record {
                            order.push(buf.clone());
                            *cursor += 1;
                        }
                        log.advance(CellId::worker(me), *cursor);
                    };
                    for i in 0..PER_WRITER {
                        let record = format!("{me}:{i}");
                        log.append(CellId::worker(me), record.as_bytes(), wake.as_ref(), || {
                            drain(&mut cursor, &mut order)
                        });
                        drain(&mut cursor, &mut order);
                    }
                    while order.len() < WRITERS * PER_WRITER {
                        drain(&mut cursor, &mut order);
                        std::thread::yield_now();
                    }
                    order
                })
            })
            .collect();
        let orders: Vec<Vec<Vec<u8>>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for order in &orders {
            assert_eq!(order, &orders[0]);
        }
        let mut all = orders[0].clone();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), WRITERS * PER_WRITER);
    }

    #[test]
    fn shared_mapping_works_like_the_heap() {
        let log = Log::shared(16).unwrap();
        log.open_cell(CellId(1), NO_PID, 0);
        let wake = no_wake();
        log.append(CellId(1), b"mapped", &wake, || {});
        let mut buf = Vec::new();
        assert_eq!(log.read(0, &mut buf), Read::Record);
        assert_eq!(buf, b"mapped");
    }
}

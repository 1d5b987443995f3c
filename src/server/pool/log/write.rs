//! The writer's side of the log: claiming sequences under the claim lock,
//! waiting for or refusing when there is no room, writing a record into
//! its slots in the order that makes it safe to read, and waking sleepers.
//!
//! Every store a writer makes to shared memory is followed by a `step`,
//! the point where `kill -9` could leave it. In test builds a test can
//! stop a writer at any of them and check what repair makes of the log
//! (`tests.rs`); in other builds a step is nothing at all.

use std::ops::Range;
use std::sync::atomic::{Ordering, fence};

use super::{
    Backoff, CellId, KEEPER, KIND_CONTINUATION, KIND_RECORD, LIVE, Log, MAX_RECORD_BYTES, NONE, SLEEPING,
    SLOT_DATA_BYTES, WOKEN, Wake, slots_for,
};

impl Log {
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

    /// Appends one record as `me` if the ring has room for all of it, and
    /// returns the sequences it took; claims nothing and returns `None`
    /// when the ring is full. Never waits: for workers, which must keep
    /// serving their sockets while the ring is full.
    pub fn try_append(&self, me: CellId, record: &[u8], wake: &dyn Wake) -> Option<Range<u64>> {
        self.append_steps(me, record, wake, Gate::Refuse).ok().flatten()
    }

    /// Appends one record as `me` and returns the sequences it took,
    /// waiting while the ring is full: for the keeper, which serves no
    /// clients. While it waits, `while_gated` is called repeatedly; it must
    /// advance `me`'s own cursor if it can (drain the log), or the writer
    /// could wait on itself, and it should evict stalled workers (see
    /// [`Log::evict_stalled`]), or a stopped worker would hold it forever.
    pub fn append(
        &self,
        me: CellId,
        record: &[u8],
        wake: &dyn Wake,
        mut while_gated: impl FnMut(),
    ) -> Range<u64> {
        let appended = self.append_steps(me, record, wake, Gate::Wait(&mut while_gated));
        // Only a test build stops a writer (`step`), and none stops this one.
        appended.ok().flatten().expect("a waiting append always appends")
    }

    /// Claim, write, publish, each store a `step` at which a test may stop
    /// the writer for good (as `kill -9` may stop a worker anywhere).
    pub(super) fn append_steps(
        &self,
        me: CellId,
        record: &[u8],
        wake: &dyn Wake,
        gate: Gate<'_>,
    ) -> Result<Option<Range<u64>>, Died> {
        assert!(
            record.len() <= MAX_RECORD_BYTES,
            "a record of {} bytes is too long for the log",
            record.len()
        );
        let slots = slots_for(record.len());
        let Some(start) = self.claim(me, slots, matches!(gate, Gate::Refuse))? else {
            return Ok(None);
        };
        let claim = start..start + slots;
        if let Gate::Wait(while_gated) = gate {
            self.wait_for_gate(claim.end - 1, while_gated);
        }
        self.write_record(&claim, record)?;
        self.cell(me).pending.store(NONE, Ordering::SeqCst);
        self.wake_sleepers(me, claim.end - 1, wake);
        Ok(Some(claim))
    }

    /// Claims `slots` consecutive sequences for `me` and returns the first;
    /// with `refuse_when_full`, claims nothing (`None`) unless the ring has
    /// room for all of them now. The extent is stored before the start and
    /// both before `next` moves, so that whatever instruction a writer dies
    /// at, its cell says exactly what it owns (see [`Log::repair`]).
    fn claim(&self, me: CellId, slots: u64, refuse_when_full: bool) -> Result<Option<u64>, Died> {
        let header = self.header();
        let cell = self.cell(me);
        self.lock_claim(me);
        self.step()?;
        let start = header.next.load(Ordering::SeqCst);
        if refuse_when_full && !self.has_room_up_to(start + slots - 1) {
            header.claim_lock.store(0, Ordering::Release);
            return Ok(None);
        }
        cell.pending_end.store(start + slots, Ordering::SeqCst);
        self.step()?;
        cell.pending.store(start, Ordering::SeqCst);
        self.step()?;
        header.next.store(start + slots, Ordering::SeqCst);
        self.step()?;
        header.claim_lock.store(0, Ordering::Release);
        self.step()?;
        Ok(Some(start))
    }

    /// Whether sequence `last` (and so every one before it not yet claimed)
    /// may be written: its slot last held `last - capacity`, which every
    /// LIVE reader must have read.
    fn has_room_up_to(&self, last: u64) -> bool {
        if last < self.floor_hint.load(Ordering::Relaxed) + self.capacity {
            return true;
        }
        let floor = self.live_floor(last);
        self.floor_hint.fetch_max(floor, Ordering::Relaxed);
        last < floor + self.capacity
    }

    /// Whether a one-slot record could be appended now (it may not be by
    /// the time one is: other writers race for the same room).
    #[cfg(test)]
    pub fn has_room(&self) -> bool {
        self.has_room_up_to(self.head())
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

    /// Waits until sequence `last` may be written (see `has_room_up_to`).
    pub(super) fn wait_for_gate(&self, last: u64, while_gated: &mut dyn FnMut()) {
        let mut backoff = Backoff::default();
        while !self.has_room_up_to(last) {
            while_gated();
            backoff.wait();
        }
    }

    /// Writes `record` into the sequences of `claim` and publishes it:
    /// every continuation slot first (its words, then its `published`),
    /// the head slot's `published` last of all.
    ///
    /// Why a reader never sees a head whose continuations are incomplete:
    /// a reader looks at a record only through its head, and only once it
    /// has loaded the head's `published == start + 1` with Acquire. That
    /// load reads the value of this function's last store, made with
    /// Release after (in program order) every store to the continuation
    /// slots, so the reader's later Relaxed loads of those slots see those
    /// stores or later ones; and there are no later ones while it reads,
    /// because whoever writes those slots next is gated on this reader's
    /// cursor, which is still at `start`. A reader that finds the head
    /// unpublished goes no further (it never reads past its cursor), so a
    /// part-written record is never read at all. The continuations'
    /// own `published` are for [`Log::repair`], which must know which of a
    /// dead writer's slots are done, and for a reader that meets one whose
    /// head was filled: an orphan, which it skips.
    fn write_record(&self, claim: &Range<u64>, record: &[u8]) -> Result<(), Died> {
        let mut chunks = record.chunks(SLOT_DATA_BYTES);
        let head = chunks.next().unwrap_or_default();
        for (seq, chunk) in (claim.start + 1..claim.end).zip(chunks) {
            self.store_slot(seq, KIND_CONTINUATION, chunk, chunk.len());
            self.step()?;
            self.publish(seq);
            self.step()?;
        }
        self.store_slot(claim.start, KIND_RECORD, head, record.len());
        self.step()?;
        self.publish(claim.start);
        self.step()
    }

    /// Writes a slot's bytes and what they are; `len` is the whole
    /// record's length in a head, the slot's own share in a continuation.
    pub(super) fn store_slot(&self, seq: u64, kind: u64, bytes: &[u8], len: usize) {
        let slot = self.slot(seq);
        for (word, chunk) in slot.words.iter().zip(bytes.chunks(8)) {
            let mut word_bytes = [0u8; 8];
            word_bytes[..chunk.len()].copy_from_slice(chunk);
            word.store(u64::from_le_bytes(word_bytes), Ordering::Relaxed);
        }
        slot.meta.store(len as u64 | (kind << 32), Ordering::Relaxed);
    }

    /// Says that sequence `seq` is complete in its slot (see `write_record`).
    pub(super) fn publish(&self, seq: u64) {
        self.slot(seq).published.store(seq + 1, Ordering::Release);
    }

    /// A point between two of a writer's stores to shared memory. In test
    /// builds a test may have the writer die here, leaving the log as
    /// `kill -9` at that instant would (see `tests.rs`, which tries every
    /// point and repairs); elsewhere it is nothing.
    #[inline(always)]
    pub(super) fn step(&self) -> Result<(), Died> {
        #[cfg(test)]
        if self.steps_to_death.take_step() {
            return Err(Died);
        }
        Ok(())
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
}

/// What a writer does when the ring has no room for its record.
pub(super) enum Gate<'a> {
    /// Claims nothing and says so (workers).
    Refuse,
    /// Claims, then waits for room, calling this meanwhile (the keeper).
    Wait(&'a mut dyn FnMut()),
}

/// A writer stopped between two stores for good, as only a test makes one
/// (see [`Log::step`]).
#[derive(Debug)]
pub(super) struct Died;

/// How many more steps writers of this process take before one dies
/// (`u64::MAX`: never); only test builds have it.
#[cfg(test)]
#[derive(Debug)]
pub(super) struct StepsToDeath(pub(super) std::sync::atomic::AtomicU64);

#[cfg(test)]
impl StepsToDeath {
    pub(super) fn never() -> Self {
        StepsToDeath(std::sync::atomic::AtomicU64::new(u64::MAX))
    }

    /// Counts a step; true when there was none left to take.
    pub(super) fn take_step(&self) -> bool {
        match self.0.load(Ordering::Relaxed) {
            u64::MAX => false,
            0 => true,
            left => {
                self.0.store(left - 1, Ordering::Relaxed);
                false
            }
        }
    }
}

//! Where the log lives: a header and its slots on the heap (prethread's
//! threads) or in a `MAP_SHARED` anonymous mapping made before `fork`
//! (prefork's processes). Both hold the same `#[repr(C)]` layout of
//! atomics, so the protocol in `mod.rs` cannot tell them apart; the only
//! `unsafe` in the log is here, making and removing the mapping.

use std::io;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::{Cell, Header, Log, MAGIC, Slot};

/// The memory a log is placed in.
pub(super) enum Region {
    Heap { header: Box<Header>, slots: Box<[Slot]> },
    Mapped(Mapping),
}

/// A `MAP_SHARED` anonymous mapping holding a header and its slots.
pub(super) struct Mapping {
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
        Log::placed(Region::Heap { header, slots }, capacity)
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
        let mapping = Mapping { header, slots, base: base.as_ptr() as usize, len };
        Ok(Log::placed(Region::Mapped(mapping), capacity))
    }

    pub(super) fn header(&self) -> &Header {
        match &self.region {
            Region::Heap { header, .. } => header,
            Region::Mapped(m) => m.header,
        }
    }

    pub(super) fn slots(&self) -> &[Slot] {
        match &self.region {
            Region::Heap { slots, .. } => slots,
            Region::Mapped(m) => m.slots,
        }
    }
}

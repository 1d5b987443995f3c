//! The log's protocol under test: ordering, gating, waking, records that
//! span slots (at the ring's end too), repair after a writer dies at any
//! step of an append, and many writers agreeing on one order.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use nix::unistd::Pid;

use super::write::Gate;
use super::*;
use crate::server::flow::Census;

/// No process: these cells are threads of the test.
const NO_PID: Pid = Pid::from_raw(0);

struct CountWakes(AtomicUsize);
impl Wake for CountWakes {
    fn wake(&self, _cell: CellId) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn no_wake() -> CountWakes {
    CountWakes(AtomicUsize::new(0))
}

/// A log with these cells open at sequence 0.
fn log_with(capacity: usize, cells: &[CellId]) -> Log {
    let log = Log::on_heap(capacity);
    for &cell in cells {
        log.open_cell(cell, NO_PID, 0);
    }
    log
}

/// A record of `len` bytes that says who wrote it and cannot be mistaken
/// for another record, or for itself with a slot missing or moved.
fn record(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| tag.wrapping_mul(31).wrapping_add((i % 251) as u8).wrapping_add((i / 1008) as u8))
        .collect()
}

/// Reads every record from `cursor` up to the head as a reader does:
/// records whole, skipping what is to be skipped. Every sequence below the
/// head must be readable (no hole left); returns the records and moves
/// `cursor` to the head.
fn read_up_to_head(log: &Log, cursor: &mut u64) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut records = Vec::new();
    while *cursor < log.head() {
        match log.read(*cursor, &mut buf) {
            Read::NotYet => panic!("sequence {cursor} below the head {} is a hole", log.head()),
            Read::Record { slots } => {
                assert_eq!(slots, slots_for(buf.len()));
                records.push(buf.clone());
                *cursor += slots;
            }
            Read::Skip => *cursor += 1,
        }
    }
    records
}

#[test]
fn records_come_back_in_order() {
    let log = log_with(8, &[CellId(1)]);
    let wake = no_wake();
    for i in 0..5u8 {
        assert_eq!(log.append(CellId(1), &[i; 13], &wake, || {}), i as u64..i as u64 + 1);
    }
    let mut buf = Vec::new();
    for i in 0..5u8 {
        assert_eq!(log.read(i as u64, &mut buf), Read::Record { slots: 1 });
        assert_eq!(buf, vec![i; 13]);
    }
    assert_eq!(log.read(5, &mut buf), Read::NotYet);
}

#[test]
fn a_record_takes_as_many_slots_as_its_bytes_need() {
    let log = log_with(64, &[CellId(1)]);
    let wake = no_wake();
    let lengths = [0, 1, SLOT_DATA_BYTES, SLOT_DATA_BYTES + 1, 3000, MAX_RECORD_BYTES];
    let mut expected_start = 0;
    for (tag, &len) in lengths.iter().enumerate() {
        let sequences = log.try_append(CellId(1), &record(tag as u8, len), &wake).expect("room");
        let slots = len.div_ceil(SLOT_DATA_BYTES).max(1) as u64;
        assert_eq!(sequences, expected_start..expected_start + slots, "{len} bytes");
        expected_start += slots;
    }
    let mut cursor = 0;
    let read = read_up_to_head(&log, &mut cursor);
    let written: Vec<Vec<u8>> =
        lengths.iter().enumerate().map(|(tag, &len)| record(tag as u8, len)).collect();
    assert_eq!(read, written);
}

#[test]
#[should_panic(expected = "too long for the log")]
fn a_record_longer_than_the_log_takes_is_a_bug() {
    let log = log_with(64, &[CellId(1)]);
    log.try_append(CellId(1), &vec![0; MAX_RECORD_BYTES + 1], &no_wake());
}

#[test]
fn a_record_wraps_around_the_ring_end() {
    let log = log_with(8, &[CellId(1)]);
    let wake = no_wake();
    let mut cursor = 0;
    for i in 0..6u8 {
        log.try_append(CellId(1), &[i], &wake).expect("room");
    }
    assert_eq!(read_up_to_head(&log, &mut cursor).len(), 6);
    log.advance(CellId(1), cursor);
    // Sequences 6, 7 and 8: the last slots of the ring and its first.
    let long = record(7, 2 * SLOT_DATA_BYTES + 5);
    assert_eq!(log.try_append(CellId(1), &long, &wake), Some(6..9));
    assert_eq!(log.try_append(CellId(1), b"next", &wake), Some(9..10));
    assert_eq!(read_up_to_head(&log, &mut cursor), vec![long, b"next".to_vec()]);
}

#[test]
fn a_full_ring_makes_the_writer_drain_instead_of_overwrite() {
    let log = log_with(8, &[CellId(1)]);
    let wake = no_wake();
    let mut cursor = 0u64;
    let mut seen = Vec::new();
    for i in 0..40u8 {
        // Every third record takes three slots, so some wrap the ring.
        let len = if i % 3 == 0 { 2 * SLOT_DATA_BYTES + 1 } else { 1 };
        let mut drained = Vec::new();
        log.append(CellId(1), &record(i, len), &wake, || {
            // The head counts this very claim, so read what is published.
            let mut buf = Vec::new();
            while let Read::Record { slots } = log.read(cursor, &mut buf) {
                drained.push(buf.clone());
                cursor += slots;
            }
            log.advance(CellId(1), cursor);
        });
        seen.extend(drained);
    }
    seen.extend(read_up_to_head(&log, &mut cursor));
    let written: Vec<Vec<u8>> =
        (0..40u8).map(|i| record(i, if i % 3 == 0 { 2 * SLOT_DATA_BYTES + 1 } else { 1 })).collect();
    assert_eq!(seen, written);
}

#[test]
fn only_sleepers_are_woken_once_per_sleep() {
    let log = log_with(16, &[CellId(1), CellId(2)]);
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
fn a_full_ring_refuses_a_try_and_claims_nothing() {
    let log = log_with(8, &[CellId(1), CellId(2)]);
    let wake = no_wake();
    for i in 0..8u8 {
        assert_eq!(log.try_append(CellId(1), &[i], &wake), Some(i as u64..i as u64 + 1));
    }
    assert!(!log.has_room());
    assert_eq!(log.try_append(CellId(1), b"no room", &wake), None);
    assert_eq!(log.head(), 8, "nothing was claimed");
    // Both readers must move on before slot 0 is reused.
    log.advance(CellId(1), 1);
    assert_eq!(log.try_append(CellId(1), b"x", &wake), None, "cell 2 still needs slot 0");
    log.advance(CellId(2), 2);
    assert!(log.has_room());
    assert_eq!(log.try_append(CellId(2), b"x", &wake), Some(8..9));
    let mut buf = Vec::new();
    assert_eq!(log.read(8, &mut buf), Read::Record { slots: 1 });
    assert_eq!(buf, b"x");
    assert_eq!(log.read(1, &mut buf), Read::Record { slots: 1 }, "slot 1 was not overwritten");
    assert_eq!(buf, [1]);
}

/// A record that needs k slots is refused unless all k are free, and a
/// refusal claims none of them.
#[test]
fn a_record_is_claimed_only_when_all_its_slots_are_free() {
    let log = log_with(8, &[CellId(1), CellId(2)]);
    let wake = no_wake();
    for i in 0..6u8 {
        log.try_append(CellId(1), &[i], &wake).expect("room");
    }
    let three = record(9, 2 * SLOT_DATA_BYTES + 1);
    // Sequences 6 and 7 are free, 8 would overwrite sequence 0.
    assert_eq!(log.try_append(CellId(2), &three, &wake), None);
    assert_eq!(log.head(), 6, "nothing was claimed");
    log.advance(CellId(1), 1);
    assert_eq!(log.try_append(CellId(2), &three, &wake), None, "cell 2 has not read sequence 0");
    log.advance(CellId(2), 1);
    assert_eq!(log.try_append(CellId(2), &three, &wake), Some(6..9));
    // The ring is full again: a one-slot record waits for sequence 1.
    assert_eq!(log.try_append(CellId(1), b"x", &wake), None);
    let mut buf = Vec::new();
    assert_eq!(log.read(1, &mut buf), Read::Record { slots: 1 }, "sequence 1 is still there");
    assert_eq!(buf, [1]);
    let mut cursor = 1;
    let read = read_up_to_head(&log, &mut cursor);
    assert_eq!(read.last(), Some(&three));
}

/// A writer killed between any two of its stores, holding the claim lock
/// or not, with none, some or all of its record's slots published: the
/// keeper's repair leaves no hole and the lock free, readers get every
/// other writer's records (one that claimed after the dead writer too)
/// and the dead writer's record whole exactly when its head was published,
/// and the log goes on.
#[test]
fn a_writer_killed_at_any_step_leaves_no_hole_and_no_half_record() {
    let wake = no_wake();
    for dead_len in [5, SLOT_DATA_BYTES + 1, 3 * SLOT_DATA_BYTES] {
        let mut steps = 0;
        loop {
            let log = log_with(16, &[KEEPER, CellId(1), CellId(2)]);
            log.try_append(CellId(1), b"before", &wake).expect("room");
            let dead_record = record(2, dead_len);
            log.steps_to_death.0.store(steps, Ordering::Relaxed);
            let outcome = log.append_steps(CellId(2), &dead_record, &wake, Gate::Refuse);
            log.steps_to_death.0.store(u64::MAX, Ordering::Relaxed);
            let died = outcome.is_err();
            let claim_lock_held = log.header().claim_lock.load(Ordering::SeqCst) != 0;
            let mut expected = vec![b"before".to_vec()];
            if log.is_published(1) {
                expected.push(dead_record.clone());
            }
            if !claim_lock_held {
                // Another writer got in after the dead one's claim.
                log.try_append(CellId(1), b"between", &wake).expect("room");
                expected.push(b"between".to_vec());
            }
            let claim = log.repair(CellId(2), || {});
            assert_eq!(log.header().claim_lock.load(Ordering::SeqCst), 0, "the lock is free");
            if let Some(claim) = &claim {
                assert_eq!(claim.start, 1, "the dead writer's claim");
                assert_eq!(claim.end - claim.start, slots_for(dead_len));
            }
            log.try_append(CellId(1), b"after", &wake).expect("room");
            expected.push(b"after".to_vec());
            let mut cursor = 0;
            assert_eq!(
                read_up_to_head(&log, &mut cursor),
                expected,
                "{dead_len} bytes, dead after {steps} steps"
            );
            if !died {
                assert!(claim.is_none(), "nothing to fill after a whole append");
                break;
            }
            steps += 1;
        }
        // Lock, three stores and the unlock, then two steps a slot.
        assert_eq!(steps, 5 + 2 * slots_for(dead_len));
    }
}

#[test]
fn a_worker_that_stops_beating_is_evicted_one_that_beats_is_not() {
    let log = Log::on_heap(8);
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
fn a_worker_that_reads_without_beating_is_not_evicted() {
    let log = Log::on_heap(8);
    log.open_cell(KEEPER, NO_PID, 0);
    log.open_cell(CellId(1), NO_PID, 0); // in one long turn: reads, never beats
    let wake = no_wake();
    let mut watch = StallWatch::default();
    let start = Instant::now();
    for _ in 0..3 {
        log.append(KEEPER, b"e", &wake, || {});
    }
    log.advance(KEEPER, 3);
    assert!(log.evict_stalled(&mut watch, start).is_empty());
    log.advance(CellId(1), 1);
    assert!(log.evict_stalled(&mut watch, start + STALL_TIMEOUT * 2).is_empty(), "it read one");
    log.advance(CellId(1), 2);
    assert!(log.evict_stalled(&mut watch, start + STALL_TIMEOUT * 4).is_empty(), "and another");
    assert_eq!(
        log.evict_stalled(&mut watch, start + STALL_TIMEOUT * 6),
        vec![CellId(1)],
        "then neither read nor beat with a record to read"
    );
}

#[test]
fn census_sums_the_live_cells() {
    let log = log_with(8, &[CellId(1), CellId(2)]);
    log.set_census(CellId(1), Census { behind: 1, receivers: 10 });
    log.set_census(CellId(2), Census { behind: 2, receivers: 5 });
    assert_eq!(log.census(), Census { behind: 3, receivers: 15 });
    log.mark_dead(CellId(2));
    assert_eq!(log.census(), Census { behind: 1, receivers: 10 });
}

/// Several writer threads, each also a reader: every reader sees every
/// record exactly once, whole, in one order. Records of one to three
/// slots interleave, and each writer claims as a worker does (`try_append`,
/// reading while the ring is full), so multi-slot claims race one-slot
/// ones for the room readers leave.
#[test]
fn concurrent_writers_one_order() {
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 1500;
    let log = Arc::new(Log::on_heap(64));
    for cell in 1..=WRITERS {
        log.open_cell(CellId::worker(cell), NO_PID, 0);
    }
    // Its writer, its number and its length, then filler to that length.
    let record_of = |writer: usize, i: usize| {
        let len = [8, 30, SLOT_DATA_BYTES + 9, 2 * SLOT_DATA_BYTES + 500][(i * 7 + writer) % 4];
        let mut bytes = format!("{writer}:{i}:{len}:").into_bytes();
        bytes.resize(len, (i % 256) as u8);
        bytes
    };
    let wake = Arc::new(no_wake());
    let handles: Vec<_> = (1..=WRITERS)
        .map(|me| {
            let log = log.clone();
            let wake = wake.clone();
            std::thread::spawn(move || {
                let cell = CellId::worker(me);
                let mut cursor = 0u64;
                let mut order = Vec::new();
                let drain = |cursor: &mut u64, order: &mut Vec<Vec<u8>>| {
                    let mut buf = Vec::new();
                    loop {
                        match log.read(*cursor, &mut buf) {
                            Read::Record { slots } => {
                                order.push(buf.clone());
                                *cursor += slots;
                            }
                            Read::Skip => unreachable!("nobody died"),
                            Read::NotYet => break,
                        }
                    }
                    log.advance(cell, *cursor);
                };
                for i in 0..PER_WRITER {
                    let record = record_of(me, i);
                    while log.try_append(cell, &record, wake.as_ref()).is_none() {
                        drain(&mut cursor, &mut order);
                        std::thread::yield_now();
                    }
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
    let mut written: Vec<Vec<u8>> =
        (1..=WRITERS).flat_map(|w| (0..PER_WRITER).map(move |i| record_of(w, i))).collect();
    written.sort();
    assert_eq!(all, written, "every record once, whole");
}

#[test]
fn shared_mapping_works_like_the_heap() {
    let log = Log::shared(16).unwrap();
    log.open_cell(CellId(1), NO_PID, 0);
    let wake = no_wake();
    log.append(CellId(1), b"mapped", &wake, || {});
    let long = record(3, 2 * SLOT_DATA_BYTES + 7);
    assert_eq!(log.append(CellId(1), &long, &wake, || {}), 1..4);
    let mut cursor = 0;
    assert_eq!(read_up_to_head(&log, &mut cursor), vec![b"mapped".to_vec(), long]);
}

//! The log's protocol under test: ordering, gating, waking, repair after a
//! writer dies mid-append, and many writers agreeing on one order.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use nix::unistd::Pid;

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

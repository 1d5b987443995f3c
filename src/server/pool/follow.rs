//! Reading the event log in order, as every reader of it does: each pool
//! worker for its replica, the keeper for its own, and in a cluster the
//! bridge for the proposals it publishes (see `entry`).
//!
//! A reader takes published records in sequence order (a record may take
//! several sequences), skips what the keeper filled where a dead writer had
//! claimed, decodes the rest, and tells the log how far it has got so that
//! writers may reuse the slots behind it. Telling it after every record
//! would be a shared write per event; telling it only when done would hold
//! writers back for a whole long drain; so it is told every
//! [`ADVANCE_EVERY`] sequences and when the reader stops.

use crate::server::pool::entry::{self, Entry};
use crate::server::pool::log::{CellId, Log, Read};

/// Sequences read between two reports of a reader's position (counted
/// in slots, not records: what writers wait for is slots).
const ADVANCE_EVERY: u64 = 64;

/// One reader's position in the log.
pub(crate) struct Follower {
    cell: CellId,
    cursor: u64,
    buf: Vec<u8>,
    /// Sequences read since the log was last told the cursor.
    unreported: u64,
}

impl Follower {
    /// A reader for `cell` that starts at `start`.
    pub(crate) fn new(cell: CellId, start: u64) -> Self {
        Follower { cell, cursor: start, buf: Vec::new(), unreported: 0 }
    }

    /// The next sequence this reader will read: everything before it is read.
    pub(crate) fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The next published entry, or `None` when nothing more is published
    /// yet. Proposals (cluster mode: events not yet ordered) are skipped
    /// undecoded unless `with_proposals`: only the bridge wants them. A
    /// record that does not decode (a bug, never a client's doing: see
    /// `codec`) is logged and skipped.
    pub(crate) fn next_entry(&mut self, log: &Log, with_proposals: bool) -> Option<Entry> {
        loop {
            let read = log.read(self.cursor, &mut self.buf);
            let slots = match read {
                Read::NotYet => return None,
                Read::Record { slots } => slots,
                Read::Skip => 1,
            };
            let seq = self.cursor;
            self.cursor += slots;
            self.unreported += slots;
            if self.unreported >= ADVANCE_EVERY {
                self.report(log);
            }
            if let Read::Record { .. } = read {
                if !with_proposals && entry::is_proposal(&self.buf) {
                    continue;
                }
                match entry::decode(&self.buf) {
                    Ok(entry) => return Some(entry),
                    Err(e) => tracing::error!(seq, "undecodable log record: {e}"),
                }
            }
        }
    }

    /// Tells the log how far this reader has got.
    pub(crate) fn report(&mut self, log: &Log) {
        if self.unreported > 0 {
            log.advance(self.cell, self.cursor);
            self.unreported = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use nix::unistd::Pid;

    use super::*;
    use crate::chat::{ConnId, Event};
    use crate::server::pool::entry::EntryRef;
    use crate::server::pool::log::{KEEPER, Wake};

    struct NoWake;
    impl Wake for NoWake {
        fn wake(&self, _cell: CellId) {}
    }

    fn event(slot: u32) -> Event {
        Event::PartAll { conn: ConnId { worker: 1, slot, generation: 1 } }
    }

    #[test]
    fn reads_every_event_in_order_and_reports_its_position() {
        let log = Log::on_heap(256);
        log.open_cell(KEEPER, Pid::from_raw(0), 0);
        log.open_cell(CellId::worker(1), Pid::from_raw(0), 0);
        for slot in 0..100 {
            let mut record = Vec::new();
            entry::encode(&EntryRef::Event(&event(slot)), &mut record).unwrap();
            log.append(KEEPER, &record, &NoWake, || {});
        }
        let mut reader = Follower::new(CellId::worker(1), 0);
        let read: Vec<Entry> = std::iter::from_fn(|| reader.next_entry(&log, false)).collect();
        assert_eq!(read, (0..100).map(|slot| Entry::Event(event(slot))).collect::<Vec<_>>());
        assert_eq!(reader.cursor(), 100);
        reader.report(&log);
        assert!(reader.next_entry(&log, false).is_none(), "nothing more is published");
    }

    #[test]
    fn proposals_are_for_the_bridge_only() {
        use crate::server::pool::entry::Origin;
        let log = Log::on_heap(64);
        log.open_cell(KEEPER, Pid::from_raw(0), 0);
        let origin = Origin { cell: 1, generation: 1 };
        for slot in 0..3 {
            let mut record = Vec::new();
            let (event, entry) = (event(slot), if slot == 1 { None } else { Some(origin) });
            match entry {
                Some(origin) => entry::encode(&EntryRef::Proposed { origin, event: &event }, &mut record),
                None => {
                    entry::encode(&EntryRef::Ordered { seq: 5, origin: None, event: &event }, &mut record)
                }
            }
            .unwrap();
            log.append(KEEPER, &record, &NoWake, || {});
        }
        let mut worker = Follower::new(CellId::worker(1), 0);
        let read: Vec<Entry> = std::iter::from_fn(|| worker.next_entry(&log, false)).collect();
        assert_eq!(read, [Entry::Ordered { seq: 5, origin: None, event: event(1) }]);
        let mut bridge = Follower::new(CellId::worker(2), 0);
        let read: Vec<Entry> = std::iter::from_fn(|| bridge.next_entry(&log, true)).collect();
        assert_eq!(read.len(), 3);
        assert_eq!(read[0], Entry::Proposed { origin, event: event(0) });
    }
}

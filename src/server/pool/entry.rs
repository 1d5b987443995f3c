//! What a record of the pool's event log holds: an event to apply, or,
//! when the node is part of a cluster, an event still waiting for the
//! network's order, an event in that order, or a notice for this node's
//! clients.
//!
//! On one machine the log's own order is the order (every record is an
//! [`Entry::Event`]). In a cluster the order is the JetStream stream's
//! (see `server::cluster`): a worker's event goes into the local log as a
//! *proposal*, which no replica applies; the node's bridge publishes it,
//! and appends what comes back from the stream, in stream order, as
//! *ordered* entries, which every replica applies. An ordered entry that
//! was this node run's own proposal says so ([`Origin`]), so that its
//! proposer knows its event has been applied (read-your-writes across the
//! network). Keeping all four in the one log keeps one mechanism for
//! threads and processes alike: the ring's gating, wake-ups and crash
//! repair, and its backpressure, which now reaches across the NATS hop.
//!
//! Encoded with postcard like the events themselves (see `codec`); an
//! entry adds a few bytes to its event, within the log record's room.

use serde::{Deserialize, Serialize};

use crate::chat::Event;
use crate::server::pool::codec::{self, CodecError};
use crate::server::pool::log::MAX_RECORD_BYTES;

/// Which cell of this node run proposed an event: the cell and the
/// generation (incarnation) it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub cell: u16,
    pub generation: u32,
}

/// A log record, owned, as a reader decodes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    /// An event every replica applies, in log order (one machine).
    Event(Event),
    /// Cluster: an event `origin` asks the network to order. Applied by
    /// no one; the bridge publishes it.
    Proposed { origin: Origin, event: Event },
    /// Cluster: an event at stream sequence `seq` of the network's order;
    /// `origin` if this node run proposed it.
    Ordered { seq: u64, origin: Option<Origin>, event: Event },
    /// Cluster: words for every client of this node (the network is out
    /// of reach, or back): no part of the directory.
    Notice(String),
}

/// An entry to encode, borrowing its event (it encodes exactly as the
/// [`Entry`] it names).
#[derive(Debug, Serialize)]
pub enum EntryRef<'a> {
    Event(&'a Event),
    Proposed { origin: Origin, event: &'a Event },
    Ordered { seq: u64, origin: Option<Origin>, event: &'a Event },
    Notice(&'a str),
}

// An entry is an event and a few bytes: the log must take the largest.
const _: () = assert!(codec::MAX_EVENT_BYTES + 64 <= MAX_RECORD_BYTES);

/// Appends the encoding of `entry` to `out`, unless its event is longer
/// than `codec` allows (then `out` is left as it was).
pub fn encode(entry: &EntryRef<'_>, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let start = out.len();
    *out = postcard::to_extend(entry, std::mem::take(out))?;
    let len = out.len() - start;
    if len > codec::MAX_EVENT_BYTES + 64 {
        out.truncate(start);
        return Err(CodecError::TooLarge(len));
    }
    Ok(())
}

/// The entry `bytes` encode: all of them, or an error.
pub fn decode(bytes: &[u8]) -> Result<Entry, CodecError> {
    let (entry, rest) = postcard::take_from_bytes(bytes)?;
    if !rest.is_empty() {
        return Err(CodecError::Trailing);
    }
    Ok(entry)
}

/// Whether `bytes` hold a proposal, which a worker skips: told from the
/// variant's index (postcard's first byte) without decoding the event.
pub fn is_proposal(bytes: &[u8]) -> bool {
    bytes.first() == Some(&1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ConnId;

    fn event() -> Event {
        Event::PartAll { conn: ConnId { worker: 130, slot: 7, generation: 1 << 16 | 2 } }
    }

    #[test]
    fn every_entry_reads_back_as_written() {
        let origin = Origin { cell: 3, generation: 9 };
        let event = event();
        let cases = [
            (EntryRef::Event(&event), Entry::Event(event.clone())),
            (EntryRef::Proposed { origin, event: &event }, Entry::Proposed { origin, event: event.clone() }),
            (
                EntryRef::Ordered { seq: u64::MAX, origin: Some(origin), event: &event },
                Entry::Ordered { seq: u64::MAX, origin: Some(origin), event: event.clone() },
            ),
            (
                EntryRef::Ordered { seq: 1, origin: None, event: &event },
                Entry::Ordered { seq: 1, origin: None, event: event.clone() },
            ),
            (EntryRef::Notice("the network is back"), Entry::Notice("the network is back".into())),
        ];
        for (written, read) in cases {
            let mut bytes = Vec::new();
            encode(&written, &mut bytes).unwrap();
            assert_eq!(decode(&bytes), Ok(read.clone()));
            assert_eq!(is_proposal(&bytes), matches!(read, Entry::Proposed { .. }));
        }
    }

    #[test]
    fn broken_bytes_are_an_error() {
        let mut bytes = Vec::new();
        encode(&EntryRef::Event(&event()), &mut bytes).unwrap();
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        bytes.push(0);
        assert_eq!(decode(&bytes), Err(CodecError::Trailing));
        assert!(decode(&[9]).is_err(), "no such variant");
    }
}

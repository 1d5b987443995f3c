//! Which of a worker's own events its replica has applied: what
//! read-your-writes waits for before the worker handles another line.
//!
//! On one machine an event's place in the log says it: once the worker's
//! cursor is past the sequences its last append took, all of its events
//! are applied. In a cluster what the worker appends is a proposal, and
//! the event is applied when its ordered copy comes back from the network,
//! at a place the worker cannot know in advance; but the bridge publishes
//! a worker's proposals in the order it appended them and the stream keeps
//! that order, so counting the copies that come back marked as this
//! worker's is enough.

use std::ops::Range;

pub(super) enum OwnEvents {
    /// One past the last sequence appended.
    Local { until: u64 },
    /// Proposals appended, and their ordered copies applied.
    Cluster { proposed: u64, confirmed: u64 },
}

impl OwnEvents {
    /// Nothing pending; `start` is where the worker starts reading.
    pub(super) fn new(clustered: bool, start: u64) -> OwnEvents {
        if clustered {
            OwnEvents::Cluster { proposed: 0, confirmed: 0 }
        } else {
            OwnEvents::Local { until: start }
        }
    }

    /// An event (or proposal) of this worker's took `sequences` of the log.
    pub(super) fn appended(&mut self, sequences: Range<u64>) {
        match self {
            OwnEvents::Local { until } => *until = sequences.end,
            OwnEvents::Cluster { proposed, .. } => *proposed += 1,
        }
    }

    /// The ordered copy of one of this worker's proposals was applied.
    pub(super) fn confirmed(&mut self) {
        if let OwnEvents::Cluster { proposed, confirmed } = self {
            *confirmed = (*confirmed + 1).min(*proposed);
        }
    }

    /// Whether everything appended is applied, the reader being at `cursor`.
    pub(super) fn applied(&self, cursor: u64) -> bool {
        match *self {
            OwnEvents::Local { until } => cursor >= until,
            OwnEvents::Cluster { proposed, confirmed } => confirmed >= proposed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alone_the_cursor_says() {
        let mut own = OwnEvents::new(false, 10);
        assert!(own.applied(10));
        own.appended(12..14);
        assert!(!own.applied(13));
        assert!(own.applied(14));
    }

    #[test]
    fn in_a_cluster_the_copies_that_come_back_say() {
        let mut own = OwnEvents::new(true, 10);
        own.appended(10..11);
        own.appended(11..13);
        assert!(!own.applied(1000), "the cursor says nothing of the network");
        own.confirmed();
        assert!(!own.applied(1000));
        own.confirmed();
        assert!(own.applied(0));
        own.confirmed();
        own.appended(13..14);
        assert!(!own.applied(0), "a stray copy never counts for a later proposal");
    }
}

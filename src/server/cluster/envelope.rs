//! What one message of the network's event stream holds: an event and who
//! proposed it, behind a version byte.
//!
//! The local log never outlives one executable, so its records need no
//! version; the stream is shared by nodes that may run different builds
//! (a rolling upgrade), so its messages start with the version of their
//! encoding, and a node refuses what it cannot read rather than guess.
//! The proposer (node, epoch, cell, generation) is how a node knows an
//! event in the stream is its own (see `pool::entry::Origin`) and, for
//! the message id JetStream deduplicates retried publishes by, what makes
//! two proposals different.

use serde::{Deserialize, Serialize};

use crate::chat::Event;
use crate::server::pool::codec::{CodecError, MAX_EVENT_BYTES};
use crate::server::pool::entry::Origin;

/// The encoding this build writes and reads.
const VERSION: u8 = 1;

/// One event as the stream carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The node that proposed it, and which run of that node.
    pub node: u16,
    pub epoch: u32,
    /// The cell of that node run that proposed it.
    pub origin: Origin,
    pub event: Event,
}

/// Why stream bytes are not an envelope this node can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("a stream message of version {0}; this build reads version {VERSION}")]
    Version(u8),
    #[error("an empty stream message")]
    Empty,
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl Envelope {
    /// The message's bytes, if the event fits a log record (what a node
    /// publishes it has read from its log, so it always does).
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        let bytes = postcard::to_extend(self, vec![VERSION])?;
        if bytes.len() > MAX_EVENT_BYTES + 64 {
            return Err(CodecError::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }

    /// The envelope `bytes` hold: all of them, of this build's version.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        let (&version, rest) = bytes.split_first().ok_or(EnvelopeError::Empty)?;
        if version != VERSION {
            return Err(EnvelopeError::Version(version));
        }
        let (envelope, trailing) = postcard::take_from_bytes(rest).map_err(CodecError::from)?;
        if !trailing.is_empty() {
            return Err(CodecError::Trailing.into());
        }
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ConnId;

    fn envelope() -> Envelope {
        let conn = ConnId { worker: 129, slot: 4, generation: 3 << 16 | 1 };
        Envelope {
            node: 1,
            epoch: 3,
            origin: Origin { cell: 1, generation: 1 },
            event: Event::PartAll { conn },
        }
    }

    #[test]
    fn reads_back_what_it_wrote() {
        let bytes = envelope().encode().unwrap();
        assert_eq!(bytes[0], VERSION);
        assert_eq!(Envelope::decode(&bytes), Ok(envelope()));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let mut bytes = envelope().encode().unwrap();
        assert_eq!(Envelope::decode(&[]), Err(EnvelopeError::Empty));
        assert!(Envelope::decode(&bytes[..bytes.len() - 1]).is_err());
        bytes.push(0);
        assert_eq!(Envelope::decode(&bytes), Err(EnvelopeError::Codec(CodecError::Trailing)));
        bytes[0] = VERSION + 1;
        assert_eq!(Envelope::decode(&bytes), Err(EnvelopeError::Version(VERSION + 1)));
    }
}

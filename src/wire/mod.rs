//! The wire layer: turning received bytes into IRC lines and lines into
//! messages, and messages back into bytes.
//!
//! It is split in two because the two halves fail differently. Framing
//! ([`framing`]) works on raw bytes and must stay bounded in memory whatever a
//! client sends, so it knows nothing about IRC syntax. Parsing and
//! serialising ([`message`]) work on one already-framed line and must never
//! let a value smuggle a second line onto the wire. Neither half owns a
//! socket or any connection state beyond a byte buffer, so both can be tested
//! exhaustively without I/O and reused by any event loop.

pub mod framing;
pub mod message;
pub mod tags;

pub use framing::{Frame, LineLimits, LineReader, MAX_CLIENT_TAGS_BYTES, MAX_LINE_BYTES};
pub use message::{Message, ParseError, truncate_at_char};

//! chatter: one chat server, several concurrency models, the same chat.
//!
//! - [`wire`] turns bytes into lines and lines into IRC messages and back. No
//!   I/O, no state beyond a buffer; fuzzed with proptest.
//! - [`chat`] is the chat itself: per-connection sessions, the events they
//!   produce and the directory (`State`) that applies them, purely and
//!   deterministically. Every model shares it unchanged.
//! - [`server`] is concurrency and I/O only: the listener, signals, bounded
//!   outbound queues and one module per model.
//! - [`rlimit`] raises the open-files limit, for the server and the bench alike.

pub mod bench;
pub mod chat;
pub mod rlimit;
pub mod server;
pub mod wire;

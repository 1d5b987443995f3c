//! chatter: one chat server, several concurrency models, the same chat.
//!
//! - [`wire`] turns bytes into lines and lines into IRC messages and back. No
//!   I/O, no state beyond a buffer; fuzzed with proptest.
//! - [`chat`] is the chat itself: per-connection sessions (one handler per
//!   command), the events they produce, the directory (`State`) that
//!   applies them and lists what changed, and the IRC and plain renderers
//!   that turn changes into bytes. No I/O, no clock; every model shares it
//!   unchanged.
//! - [`server`] is concurrency and I/O only: the configuration (built from
//!   flags and a file, reread on SIGHUP or REHASH), the sans-IO
//!   `Connection` each model drives, listening, shutdown (signals or a
//!   handle), bounded outbound queues, flow control, and the models:
//!   `iterative`, and the two pools (`pool`: the event log, its workers,
//!   prethread, prefork).
//! - [`bench`](mod@bench) is the load generator and its report.
//! - [`rlimit`] raises the open-files limit, for the server and the bench alike.
//! - [`cert`] makes a self-signed certificate and key, to try TLS out with.

pub mod bench;
pub mod cert;
pub mod chat;
pub mod rlimit;
pub mod server;
pub mod wire;

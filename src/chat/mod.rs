//! The chat core: everything chatter means by "chat", with no I/O.
//!
//! A connection's [`Session`] turns the lines its client sends into either an
//! immediate reply (errors, PONG, queries) or an [`Event`] that changes the
//! shared directory. [`State::apply`] is the one place the directory changes;
//! it is pure and deterministic, so several replicas fed the same events in
//! the same order stay identical. That is what lets the concurrency models
//! differ only in how events reach `State` (a mutex or an ordered log).

pub mod event;
pub mod info;
pub mod listing;
pub mod names;
pub mod printable;
pub mod reply;
pub mod session;
pub mod state;

pub use event::{ConnId, Event, MAX_EVENT_BYTES, MessageKind, Protocol};
pub use info::ServerInfo;
pub use listing::Listing;
pub use session::{Action, Session};
pub use state::{Deliveries, Delivery, State};

#[cfg(test)]
mod tests;

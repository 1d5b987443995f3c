//! The chat core: everything chatter means by "chat", with no I/O.
//!
//! A line goes through four steps, each knowing as little as it can:
//!
//! 1. A connection's [`Session`] turns the lines its client sends into
//!    either an immediate reply (errors, PONG, queries) or an [`Event`]
//!    that changes the shared directory.
//! 2. [`State::apply`] is the one place the directory changes. It is pure
//!    and deterministic, so several replicas fed the same events in the
//!    same order stay identical; that is what lets the concurrency models
//!    differ only in how events reach `State` (a mutex or an ordered log).
//! 3. `apply` lists what happened as [`Change`]s (who joined, what was said
//!    to whom, who quit and who saw it), in no protocol's words.
//! 4. [`render()`] turns changes into [`Deliveries`], in IRC's or plain
//!    words per recipient, for the connections the calling model serves:
//!    every one (iterative), one worker's (pool), or none (the pool keeper,
//!    which only follows the directory).
//!
//! The models take it from there: they queue each delivery's bytes and
//! stream each listing (see [`listing`]).
pub mod caps;
pub mod change;
pub mod channel;
pub mod ctcp;
pub mod elist;
pub mod event;
pub mod info;
pub mod listing;
pub mod name;
pub mod names;
pub mod printable;
pub mod reload;
pub mod render;
pub mod reply;
pub mod session;
pub mod state;
pub mod who;

pub use caps::Caps;
pub use change::{Change, Departure, Refusal};
pub use event::{ConnId, Event, MAX_EVENT_BYTES, MessageKind, Protocol, Stamp, UserMode};
pub use info::ServerInfo;
pub use listing::Listing;
pub use name::{ChannelName, Nick, Target};
pub use render::{Deliveries, Delivery, render};
pub use session::{Action, Session};
pub use state::State;

#[cfg(test)]
mod tests;

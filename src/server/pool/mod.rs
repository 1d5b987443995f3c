//! The two pool models and what only they share: a fixed set of event-loop
//! workers (threads for prethread, processes for prefork) that each own
//! their connections and a replica of the directory, kept in step by one
//! ordered log of events.
//!
//! - [`log`] is the ordered log: a ring of fixed-size slots, on the heap for
//!   threads or in a shared mapping for processes, with the memory orderings
//!   written down.
//! - [`codec`] turns events into log records and back.
//! - [`follow`] reads the log in order, for each worker and the keeper.
//! - [`worker`] is the event loop each worker runs.
//! - [`keeper`] follows the log in the supervisor, so that a new worker can
//!   start from a current replica and a lost worker's users are quit.
//! - [`prethread`] and [`prefork`] start the workers and supervise them.

pub(crate) mod bridged;
pub(crate) mod codec;
pub(crate) mod entry;
pub(crate) mod follow;
pub(crate) mod keeper;
pub(crate) mod log;
pub(crate) mod prefork;
pub(crate) mod prethread;
pub(crate) mod worker;

//! `chatter bench`: a load generator that simulates many clients against a
//! chatter model or any IRC server, checks that nothing was lost, and
//! measures throughput, delivery latency and the server's resource use.
//! `chatter bench sweep` runs a matrix of such runs and writes the report.
//!
//! - [`load`]: the simulated clients (tokio, one thread); [`client`]: what
//!   one of them says and reads.
//! - [`accounting`]: loss, duplicates, order and latency from what arrived.
//! - [`procstat`]: the server's CPU, memory, threads, switches and fds.
//! - [`run`]: one run end to end; [`sweep`]: the matrix; [`report`]: the
//!   Markdown page and the JSON, made of [`tables`], [`plots`] (drawn by
//!   [`svg`]) and [`targets`] (which goals the figures meet); [`results`]:
//!   the data they share; [`format`]: how numbers are printed everywhere.

pub mod accounting;
pub mod client;
#[cfg(test)]
mod fixtures;
pub mod format;
pub mod load;
pub mod plots;
pub mod procstat;
pub mod report;
pub mod results;
pub mod run;
pub mod svg;
pub mod sweep;
pub mod tables;
pub mod targets;

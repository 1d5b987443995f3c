//! `chatter bench`: a load generator that simulates many clients against a
//! chatter model or any IRC server, checks that nothing was lost, and
//! measures throughput, delivery latency and the server's resource use.
//! `chatter bench sweep` runs a matrix of such runs and writes the report.
//!
//! - [`load`]: the simulated clients (tokio, one thread); `client`: what
//!   one of them says and reads.
//! - `accounting`: loss, duplicates, order and latency from what arrived.
//! - `procstat`: the server's CPU, memory, threads, switches and fds.
//! - `spawn`: the servers a run starts and stops (one chatter, or a
//!   network of chatter nodes and the nats-server carrying its log).
//! - [`run`]: one run end to end, and [`summary`]: what its result says in
//!   words (and whether it failed); [`sweep`]: the matrix; `report`: the
//!   Markdown page, made of `tables`, `plots` (drawn and written by
//!   `svg`) and `targets` (which goals the figures meet); [`cluster_sweep`]:
//!   the same loads against networks of nodes, and `cluster_report`: the
//!   report's section on them, with the cost model; [`results`]:
//!   the data they all share (the load, a run's figures, a sweep and its
//!   JSON file), which is the only thing they depend on in common;
//!   `format`: how numbers are printed everywhere.
//! - [`tls`]: the clients' TLS (`--tls`: what they trust, the name they
//!   check); [`tls_sweep`]: plaintext against TLS for every model, new
//!   clients per second and deliveries per second, and `tls_report`: the
//!   report's section on it.
//!
//! Only what the `chatter` binary uses is public (`run`, `summary`,
//! `sweep`, `results`, `load`'s default window); the rest is `pub(crate)`, so that
//! anything no longer called shows up as dead code.

pub(crate) mod accounting;
pub(crate) mod client;
pub(crate) mod cluster_report;
pub mod cluster_sweep;
#[cfg(test)]
mod fixtures;
pub(crate) mod format;
pub mod load;
pub(crate) mod plots;
pub(crate) mod procstat;
pub(crate) mod report;
pub mod results;
pub mod run;
pub(crate) mod spawn;
pub mod summary;
pub(crate) mod svg;
pub mod sweep;
pub(crate) mod tables;
pub(crate) mod targets;
pub mod tls;
pub(crate) mod tls_report;
pub mod tls_sweep;

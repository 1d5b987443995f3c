//! Serving clients: configuration, the listener, shutdown signals and one
//! module per concurrency model. The chat behaviour lives in `crate::chat`;
//! everything here is concurrency and I/O.

pub mod config;
pub mod iterative;
pub mod listener;
pub mod outbox;
pub mod sendq;

pub use config::{Config, Model};

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

/// Binds the listener, announces the address on stdout (tests and scripts
/// read this line to learn an ephemeral port) and runs the chosen model
/// until SIGINT or SIGTERM.
pub fn run(config: Config) -> io::Result<()> {
    let listener = listener::bind(&config.listen)?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    tracing::info!(%addr, model = ?config.model, "listening");
    match config.model {
        Model::Iterative => iterative::run(config, listener),
    }
}

/// Seconds since the Unix epoch, for events that record when (TOPIC).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

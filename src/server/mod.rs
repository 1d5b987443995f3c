//! Serving clients: configuration, the listener, shutdown signals and one
//! module per concurrency model. The chat behaviour lives in `crate::chat`;
//! everything here is concurrency and I/O.

pub mod config;
pub mod connection;
pub(crate) mod flow;
pub(crate) mod iterative;
pub mod listener;
pub(crate) mod pool;
pub(crate) mod refusal;
pub mod sendq;

pub use config::{Config, Model};

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

/// Binds the listener(s), announces the address on stdout (tests and
/// scripts read this line to learn an ephemeral port) and runs the chosen
/// model until SIGINT or SIGTERM.
pub fn run(config: Config) -> io::Result<()> {
    let listeners = match config.model {
        Model::Iterative => vec![listener::bind(&config.listen)?],
        Model::Prethread | Model::Prefork => {
            if !(1..=pool::log::MAX_CELLS - 1).contains(&config.workers) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "--workers must be between 1 and 64",
                ));
            }
            listener::bind_group(&config.listen, config.workers)?
        }
    };
    let addr = listeners[0].local_addr()?;
    println!("listening on {addr}");
    use std::io::Write;
    io::stdout().flush()?;
    tracing::info!(%addr, model = ?config.model, workers = config.workers, "listening");
    match config.model {
        Model::Iterative => iterative::run(config, listeners.into_iter().next().expect("one listener")),
        Model::Prethread => pool::prethread::run(config, listeners),
        Model::Prefork => pool::prefork::run(config, listeners),
    }
}

/// Seconds since the Unix epoch, for events that record when (TOPIC).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

//! Serving clients: concurrency and I/O. The chat behaviour lives in
//! `crate::chat`.
//!
//! The modules are laid out as the architecture is: what every model
//! shares at the top ([`connection`], the sans-IO connection each model
//! drives; `listener`, [`shutdown`], [`sendq`], `flow`, `refusal`), then
//! the models, `iterative` (a thread per client around one locked
//! directory) and `pool` (prethread and prefork: event-loop workers kept in
//! step by one ordered log). [`config`] builds what a server runs with
//! from the command line and [`config_file`], and [`reload`] builds it
//! again on SIGHUP or REHASH. [`run`] is the command line's entry point;
//! [`Bound`] and [`serve`] let a program (or a test) run a server and stop
//! it with a [`ShutdownHandle`].

pub mod cluster;
pub mod config;
pub mod config_file;
pub mod connection;
pub(crate) mod flow;
pub(crate) mod iterative;
pub(crate) mod listener;
pub mod node;
pub(crate) mod pool;
pub(crate) mod refusal;
pub mod reload;
pub mod sendq;
pub mod shutdown;
// TEMPORARY (web-page branch): lets the page module build before the transport module exists; dropped at merge.
pub mod transport {
    pub mod web {
        pub mod page;
    }
}

pub use config::{Config, Model};
pub use shutdown::{Shutdown, ShutdownHandle};

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

/// Binds the listener(s), announces the address on stdout (tests and
/// scripts read this line to learn an ephemeral port) and runs the chosen
/// model until SIGINT or SIGTERM.
pub fn run(config: Config) -> io::Result<()> {
    let bound = Bound::new(&config)?;
    // Signals are taken over before the address is announced: whoever
    // reads it may signal at once, and SIGHUP's default action would end
    // the process instead of reloading it.
    let shutdown = Shutdown::on_signals()?;
    if config.model == Model::Prefork {
        pool::prefork::block_signals()?;
    }
    let addr = bound.local_addr()?;
    println!("listening on {addr}");
    use std::io::Write;
    io::stdout().flush()?;
    tracing::info!(%addr, model = ?config.model, workers = config.workers, "listening");
    serve(config, bound, shutdown)
}

/// The listening sockets of a server not yet serving: one, or one per
/// pool worker (see `listener::bind_group`).
pub struct Bound {
    listeners: Vec<std::net::TcpListener>,
}

impl Bound {
    /// Binds what `config`'s model listens on.
    pub fn new(config: &Config) -> io::Result<Self> {
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
        Ok(Bound { listeners })
    }

    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listeners[0].local_addr()
    }
}

/// Serves clients on `bound` with `config`'s model until `shutdown` says
/// stop; every client gets its closing line first. The prefork model stops
/// on signals only (see `shutdown`).
pub fn serve(config: Config, bound: Bound, shutdown: Shutdown) -> io::Result<()> {
    let listeners = bound.listeners;
    match config.model {
        Model::Iterative => {
            iterative::run(config, listeners.into_iter().next().expect("one listener"), shutdown)
        }
        Model::Prethread => pool::prethread::run(config, listeners, shutdown),
        Model::Prefork if !shutdown.is_signals() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "prefork stops on SIGINT or SIGTERM only: its workers are processes",
        )),
        Model::Prefork => pool::prefork::run(config, listeners),
    }
}

/// Seconds since the Unix epoch, for events that record when (TOPIC).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The wall clock in Unix milliseconds: what a session is handed with each
/// line, so that messages carry their server-time.
pub fn unix_now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

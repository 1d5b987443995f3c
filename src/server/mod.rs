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
pub mod transport;

pub use config::{Config, Model};
pub use shutdown::{Shutdown, ShutdownHandle};

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

/// Binds the listener(s), announces each address on stdout (tests and
/// scripts read these lines to learn ephemeral ports: `listening on ADDR`
/// for plain TCP, then `listening on tls://ADDR`, `ws://ADDR/`,
/// `wss://ADDR/` for the others) and runs the chosen model until SIGINT
/// or SIGTERM.
pub fn run(config: Config) -> io::Result<()> {
    let bound = Bound::new(&config)?;
    // Signals are taken over before the address is announced: whoever
    // reads it may signal at once, and SIGHUP's default action would end
    // the process instead of reloading it.
    let shutdown = Shutdown::on_signals()?;
    if config.model == Model::Prefork {
        pool::prefork::block_signals()?;
    }
    for (kind, addr) in bound.local_addrs()? {
        println!("listening on {}", kind.announce(addr));
        tracing::info!(%addr, %kind, model = ?config.model, workers = config.workers, "listening");
    }
    use std::io::Write;
    io::stdout().flush()?;
    serve(config, bound, shutdown)
}

/// The listening sockets of a server not yet serving: one set for the
/// iterative model, or one set per pool worker (see
/// `listener::bind_group`); a set has a socket per endpoint.
pub struct Bound {
    sets: Vec<Vec<listener::Listening>>,
}

impl Bound {
    /// Binds what `config`'s model listens on.
    pub fn new(config: &Config) -> io::Result<Self> {
        let copies = match config.model {
            Model::Iterative => 1,
            Model::Prethread | Model::Prefork => {
                if !(1..=pool::log::MAX_CELLS - 1).contains(&config.workers) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "--workers must be between 1 and 64",
                    ));
                }
                config.workers
            }
        };
        let mut sets: Vec<Vec<listener::Listening>> = (0..copies).map(|_| Vec::new()).collect();
        for endpoint in &config.endpoints {
            let group = match config.model {
                Model::Iterative => vec![listener::bind(&endpoint.addr)?],
                Model::Prethread | Model::Prefork => listener::bind_group(&endpoint.addr, copies)?,
            };
            for (set, listener) in sets.iter_mut().zip(group) {
                set.push(listener::Listening { kind: endpoint.kind, listener });
            }
        }
        Ok(Bound { sets })
    }

    /// The first endpoint's address.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.sets[0][0].listener.local_addr()
    }

    /// Every endpoint's kind and address, in the configuration's order.
    pub fn local_addrs(&self) -> io::Result<Vec<(transport::Kind, std::net::SocketAddr)>> {
        self.sets[0].iter().map(|l| Ok((l.kind, l.listener.local_addr()?))).collect()
    }
}

/// Serves clients on `bound` with `config`'s model until `shutdown` says
/// stop; every client gets its closing line first. The prefork model stops
/// on signals only (see `shutdown`).
pub fn serve(config: Config, bound: Bound, shutdown: Shutdown) -> io::Result<()> {
    let sets = bound.sets;
    match config.model {
        Model::Iterative => iterative::run(config, sets.into_iter().next().expect("one set"), shutdown),
        Model::Prethread => pool::prethread::run(config, sets, shutdown),
        Model::Prefork if !shutdown.is_signals() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "prefork stops on SIGINT or SIGTERM only: its workers are processes",
        )),
        Model::Prefork => pool::prefork::run(config, sets),
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

//! The listening socket and what to do when accept fails.
//!
//! The listener is non-blocking and watched by the model's poll loop, so that
//! shutdown signals interrupt the wait. Running out of file descriptors
//! (EMFILE, ENFILE) leaves the pending connection in the backlog and would
//! make a naive loop spin; callers back off for [`ACCEPT_BACKOFF`] instead.

use std::io;
use std::net::{TcpListener, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::server::transport::Kind;

/// One listening socket and what its clients speak.
#[derive(Debug)]
pub struct Listening {
    pub kind: Kind,
    pub listener: TcpListener,
}

impl Listening {
    pub fn try_clone(&self) -> io::Result<Listening> {
        Ok(Listening { kind: self.kind, listener: self.listener.try_clone()? })
    }
}

/// Copies of a set of listening sockets (one per endpoint), for a worker.
pub fn clone_set(set: &[Listening]) -> io::Result<Vec<Listening>> {
    set.iter().map(Listening::try_clone).collect()
}

/// Pause before retrying accept after running out of descriptors.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Least time between two warnings about exhausted descriptors.
const EXHAUSTION_WARN_EVERY: Duration = Duration::from_secs(10);

/// Warns about exhausted descriptors at most once per
/// [`EXHAUSTION_WARN_EVERY`], counting the failed accepts in between: a
/// server retrying every [`ACCEPT_BACKOFF`] would otherwise write ten
/// warnings a second for as long as it lasts.
#[derive(Debug, Default)]
pub struct ExhaustionLog {
    last_warned: Option<Instant>,
    since: u64,
}

impl ExhaustionLog {
    pub fn note(&mut self, error: &io::Error, now: Instant) {
        self.since += 1;
        if self.last_warned.is_some_and(|at| now.duration_since(at) < EXHAUSTION_WARN_EVERY) {
            return;
        }
        tracing::warn!(
            failed_accepts = self.since,
            "accept: {error}; retrying every {ACCEPT_BACKOFF:?} (warning at most every {EXHAUSTION_WARN_EVERY:?})"
        );
        self.last_warned = Some(now);
        self.since = 0;
    }
}

/// What one accept call means for the loop making it.
pub(crate) enum AcceptStep<S> {
    /// A new connection, and its peer.
    Accepted(S, std::net::SocketAddr),
    /// Interrupted: call again.
    Again,
    /// The backlog is empty (the poll is edge-triggered: all were taken).
    Drained,
    /// Out of descriptors: the connection stays in the backlog; try again
    /// after [`ACCEPT_BACKOFF`], not in a spin.
    Pause,
}

impl ExhaustionLog {
    /// Classifies one accept's result the same way for every model, noting
    /// exhaustion (see [`note`](Self::note)).
    pub(crate) fn step<S>(
        &mut self,
        result: io::Result<(S, std::net::SocketAddr)>,
        now: Instant,
    ) -> AcceptStep<S> {
        match result {
            Ok((stream, addr)) => AcceptStep::Accepted(stream, addr),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => AcceptStep::Drained,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => AcceptStep::Again,
            Err(e) if is_fd_exhaustion(&e) => {
                self.note(&e, now);
                AcceptStep::Pause
            }
            Err(e) => {
                tracing::warn!("accept: {e}");
                AcceptStep::Drained
            }
        }
    }
}

/// Waits on `poll` like [`mio::Poll::poll`], except that a signal
/// interrupting the wait is a wake-up with no events, not an error: every
/// loop that polls wants exactly that.
pub(crate) fn poll_events(
    poll: &mut mio::Poll,
    events: &mut mio::Events,
    timeout: Option<Duration>,
) -> io::Result<()> {
    match poll.poll(events, timeout) {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            events.clear();
            Ok(())
        }
        other => other,
    }
}

/// Binds `addr` with the same listen backlog as the pools' sockets (the
/// kernel's maximum, `net.core.somaxconn`), so that many clients
/// connecting at once queue instead of overflowing the backlog and
/// retrying their SYN a second later, and makes the listener non-blocking.
pub fn bind(addr: &str) -> io::Result<TcpListener> {
    let mut last_error = io::Error::new(io::ErrorKind::InvalidInput, format!("no address in {addr:?}"));
    for candidate in addr.to_socket_addrs()? {
        match listen_on(candidate, false) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// Whether an accept error means "out of descriptors": back off and retry.
fn is_fd_exhaustion(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(code) if code == libc_emfile() || code == libc_enfile())
}

fn libc_emfile() -> i32 {
    nix::errno::Errno::EMFILE as i32
}

fn libc_enfile() -> i32 {
    nix::errno::Errno::ENFILE as i32
}

/// Binds `count` listening sockets to one address with SO_REUSEPORT, one
/// per pool worker. The kernel then spreads incoming connections across
/// them by a hash of the connection's addresses, so accepts are balanced
/// without any coordination between workers and without waking every worker
/// for every connection. A port of 0 is resolved by the first bind and
/// reused for the rest. The sockets outlive any one worker (the model keeps
/// them), so connections queued for a worker that dies wait for its
/// replacement instead of being reset.
pub fn bind_group(addr: &str, count: usize) -> io::Result<Vec<TcpListener>> {
    let target = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no address in {addr:?}")))?;
    // SO_REUSEPORT would let this server join a group another server
    // already listens with, and the two would silently share clients. A
    // plain bind first fails with "address in use" in that case (and picks
    // the port when 0 was asked for).
    let actual = TcpListener::bind(target)?.local_addr()?;
    let mut group = Vec::with_capacity(count);
    for _ in 0..count {
        group.push(listen_on(actual, true)?);
    }
    Ok(group)
}

/// A non-blocking listening socket on `addr` with SO_REUSEADDR, the
/// maximum backlog, and SO_REUSEPORT if `share_port`.
fn listen_on(addr: std::net::SocketAddr, share_port: bool) -> io::Result<TcpListener> {
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, SockaddrIn6, bind, listen, setsockopt,
        socket, sockopt,
    };
    use std::os::fd::AsRawFd;
    let family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if share_port {
        setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    match addr {
        std::net::SocketAddr::V4(v4) => bind(fd.as_raw_fd(), &SockaddrIn::from(v4))?,
        std::net::SocketAddr::V6(v6) => bind(fd.as_raw_fd(), &SockaddrIn6::from(v6))?,
    }
    listen(&fd, Backlog::MAXCONN)?;
    Ok(TcpListener::from(fd))
}

//! When a server stops, as a value the model is given rather than signals
//! it wires up itself.
//!
//! A server run from the command line stops on SIGINT or SIGTERM; a server
//! run inside a test (or embedded in another program) stops when its
//! [`ShutdownHandle`] says so. Either way the model registers the one
//! [`Shutdown`] in the poll of its accept or supervision loop and asks it,
//! after each wake-up, whether to stop, so a model does not know which it
//! was given. (The prefork model is the exception: its workers are
//! processes that inherit a blocked signal mask and read signals from a
//! signalfd, so it stops on signals only.)
//!
//! The same signals source catches SIGHUP, the one signal that asks a
//! running server for something other than stopping (a reload, see
//! `reload`): one poll registration for every signal the loop answers.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mio::{Registry, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

/// What stops a server (and what asks it to reload).
pub struct Shutdown {
    source: Source,
    /// A SIGHUP came with the signals last read and is not yet answered.
    reload: bool,
}

enum Source {
    Signals(Signals),
    Handle(Arc<Trigger>),
}

/// Stops the server it was made with, from any thread.
#[derive(Clone)]
pub struct ShutdownHandle {
    trigger: Arc<Trigger>,
}

/// A socket pair rather than a `mio::Waker`: a poll may hold only one
/// waker, and the pool's supervisor already has its own.
struct Trigger {
    requested: AtomicBool,
    /// Written to wake the poll; never read, the flag is the message.
    bell: Mutex<UnixStream>,
    /// Registered in the model's poll.
    listener: Mutex<Option<mio::net::UnixStream>>,
}

impl Shutdown {
    /// Stops on SIGINT or SIGTERM; reloads on SIGHUP.
    pub fn on_signals() -> io::Result<Self> {
        Ok(Shutdown { source: Source::Signals(Signals::new([SIGINT, SIGTERM, SIGHUP])?), reload: false })
    }

    /// Stops when the returned handle says so.
    pub fn by_handle() -> io::Result<(Self, ShutdownHandle)> {
        let (bell, listener) = UnixStream::pair()?;
        listener.set_nonblocking(true)?;
        bell.set_nonblocking(true)?;
        let trigger = Arc::new(Trigger {
            requested: AtomicBool::new(false),
            bell: Mutex::new(bell),
            listener: Mutex::new(Some(mio::net::UnixStream::from_std(listener))),
        });
        Ok((Shutdown { source: Source::Handle(trigger.clone()), reload: false }, ShutdownHandle { trigger }))
    }

    /// Whether it stops on signals (the only way prefork can stop).
    pub fn is_signals(&self) -> bool {
        matches!(self.source, Source::Signals(_))
    }

    /// Makes a poll wake up at `token` when the server must stop.
    pub(crate) fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match &mut self.source {
            Source::Signals(signals) => registry.register(signals, token, mio::Interest::READABLE),
            Source::Handle(trigger) => {
                // A request made before this is not lost: its byte is
                // already waiting, so the first poll does not sleep.
                let mut listener = trigger.listener.lock().unwrap_or_else(|p| p.into_inner());
                match listener.as_mut() {
                    Some(listener) => registry.register(listener, token, mio::Interest::READABLE),
                    None => Err(io::Error::other("a shutdown is registered in one poll only")),
                }
            }
        }
    }

    /// Whether the server must stop now. Consumes pending signals (a
    /// SIGHUP among them is kept for [`reload_requested`](Self::reload_requested)).
    pub(crate) fn requested(&mut self) -> bool {
        match &mut self.source {
            Source::Signals(signals) => {
                let mut stop = false;
                for signal in signals.pending() {
                    match signal {
                        SIGHUP => self.reload = true,
                        _ => stop = true,
                    }
                }
                stop
            }
            Source::Handle(trigger) => trigger.requested.load(Ordering::SeqCst),
        }
    }

    /// Whether a reload was asked for (SIGHUP) since the last answer, as
    /// [`requested`](Self::requested) last read the signals.
    pub(crate) fn reload_requested(&mut self) -> bool {
        std::mem::take(&mut self.reload)
    }
}

impl ShutdownHandle {
    /// Asks the server to stop: every client gets its closing line, then the
    /// server's `serve` returns.
    pub fn shut_down(&self) {
        self.trigger.requested.store(true, Ordering::SeqCst);
        // A full socket buffer means the poll has been rung already.
        let _ = (&*self.trigger.bell.lock().unwrap_or_else(|p| p.into_inner())).write(&[1]);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mio::{Events, Poll};

    use super::*;

    #[test]
    fn a_handle_wakes_the_poll_it_was_registered_in() {
        let mut poll = Poll::new().unwrap();
        let (mut shutdown, handle) = Shutdown::by_handle().unwrap();
        shutdown.register(poll.registry(), Token(7)).unwrap();
        assert!(!shutdown.requested());
        let remote = handle.clone();
        let thread = std::thread::spawn(move || remote.shut_down());
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(30))).unwrap();
        assert!(events.iter().any(|e| e.token() == Token(7)));
        assert!(shutdown.requested());
        thread.join().unwrap();
    }

    #[test]
    fn a_request_before_registering_is_not_lost() {
        let mut poll = Poll::new().unwrap();
        let (mut shutdown, handle) = Shutdown::by_handle().unwrap();
        handle.shut_down();
        shutdown.register(poll.registry(), Token(1)).unwrap();
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(30))).unwrap();
        assert!(!events.is_empty(), "the poll wakes at once");
        assert!(shutdown.requested());
    }
}

//! The listening socket and what to do when accept fails.
//!
//! The listener is non-blocking and watched by the model's poll loop, so that
//! shutdown signals interrupt the wait. Running out of file descriptors
//! (EMFILE, ENFILE) leaves the pending connection in the backlog and would
//! make a naive loop spin; callers back off for [`ACCEPT_BACKOFF`] instead.

use std::io;
use std::net::{TcpListener, ToSocketAddrs};
use std::time::Duration;

/// Pause before retrying accept after running out of descriptors.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Binds `addr` (SO_REUSEADDR is set by the standard library on Unix) and
/// makes the listener non-blocking.
pub fn bind(addr: &str) -> io::Result<TcpListener> {
    let mut last_error = io::Error::new(io::ErrorKind::InvalidInput, format!("no address in {addr:?}"));
    for candidate in addr.to_socket_addrs()? {
        match TcpListener::bind(candidate) {
            Ok(listener) => {
                listener.set_nonblocking(true)?;
                return Ok(listener);
            }
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// Whether an accept error means "out of descriptors": back off and retry.
pub fn is_fd_exhaustion(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(code) if code == libc_emfile() || code == libc_enfile())
}

fn libc_emfile() -> i32 {
    nix::errno::Errno::EMFILE as i32
}

fn libc_enfile() -> i32 {
    nix::errno::Errno::ENFILE as i32
}

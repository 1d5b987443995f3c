//! One client connection's life, apart from its socket.
//!
//! - [`liveness`]: when to PING and when to give up on a client.
//! - [`flood`]: how fast one client's lines are handled.

use std::time::Duration;

/// How long a closing client gets to read its last line (and a lingering
/// one to close its end).
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

pub mod flood;
pub(crate) mod liveness;

pub use liveness::DEFAULT_REGISTRATION_TIMEOUT;

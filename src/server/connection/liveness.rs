//! When to PING a connection and when to give up on it: one policy for
//! every model, with the clock passed in so it can be tested without
//! waiting.
//!
//! * A connection that has not registered within the registration timeout
//!   is closed (`Registration timed out`), whatever it sends: a client that
//!   trickles bytes, or lines that never complete registration, must not
//!   hold a slot for ever (slowloris). InspIRCd and ngIRCd do the same.
//! * A registered IRC client silent for the ping interval is sent a PING;
//!   silent as long again, it is closed (`Ping timeout`).
//! * Only a complete line counts as hearing from the client. A byte at a
//!   time without a newline is not a client talking, it is a client
//!   holding a connection open.
//! * Plain clients are never PINGed: a person at `nc` cannot be expected
//!   to answer one, and the PING line itself would be protocol noise on
//!   their screen. Whether their peer is still there is left to TCP
//!   keepalive, which the models switch on for every socket with the same
//!   period (see [`keepalive`]); a dead peer then shows up as a read error.

use std::time::{Duration, Instant};

use crate::chat::{Protocol, Session, State};
use crate::server::connection::DisconnectReason;

pub use crate::chat::info::DEFAULT_REGISTRATION_TIMEOUT;

/// The timeouts, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub ping_interval: Duration,
    pub registration: Duration,
}

/// How far a connection has got, as far as liveness cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Not yet a user (whatever protocol its lines suggest).
    Unregistered,
    /// A registered IRC client: PINGed when silent.
    Irc,
    /// A registered plain client: never PINGed.
    Plain,
}

/// How far `session`'s client has got, as the directory knows it.
pub fn standing(session: &Session, state: &State) -> Standing {
    match state.user(session.conn()).map(|u| u.protocol) {
        None => Standing::Unregistered,
        Some(Protocol::Irc) => Standing::Irc,
        Some(Protocol::Plain) => Standing::Plain,
    }
}

/// What the connection's owner must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    Nothing,
    /// Send a PING.
    Ping,
    /// Close the connection for this reason (closing line first).
    Close(DisconnectReason),
}

/// One connection's liveness.
#[derive(Debug, Clone)]
pub struct Liveness {
    connected_at: Instant,
    last_heard: Instant,
    pinged: bool,
}

impl Liveness {
    pub fn new(now: Instant) -> Self {
        Liveness { connected_at: now, last_heard: now, pinged: false }
    }

    /// A complete line arrived.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.pinged = false;
    }

    /// What is due at `now`. Returns [`Due::Ping`] once per silence.
    pub fn check(&mut self, now: Instant, standing: Standing, timeouts: &Timeouts) -> Due {
        let interval = timeouts.ping_interval;
        match standing {
            Standing::Unregistered => {
                if now.saturating_duration_since(self.connected_at) >= timeouts.registration {
                    Due::Close(DisconnectReason::RegistrationTimeout)
                } else {
                    Due::Nothing
                }
            }
            Standing::Plain => Due::Nothing,
            Standing::Irc => {
                let silent = now.saturating_duration_since(self.last_heard);
                if self.pinged && silent >= 2 * interval {
                    Due::Close(DisconnectReason::PingTimeout((2 * interval).as_secs()))
                } else if !self.pinged && silent >= interval {
                    self.pinged = true;
                    Due::Ping
                } else {
                    Due::Nothing
                }
            }
        }
    }

    /// The next moment [`check`](Self::check) may have something to do
    /// (`None`: nothing ever will while the standing stays the same).
    pub fn next_check(&self, standing: Standing, timeouts: &Timeouts) -> Option<Instant> {
        match standing {
            Standing::Unregistered => Some(self.connected_at + timeouts.registration),
            Standing::Plain => None,
            Standing::Irc if self.pinged => Some(self.last_heard + 2 * timeouts.ping_interval),
            Standing::Irc => Some(self.last_heard + timeouts.ping_interval),
        }
    }
}

/// The TCP keepalive every client socket gets: probes start after a ping
/// interval of silence and give up after about as long again, so a dead
/// peer is found in the time a PING would find it.
pub fn keepalive(ping_interval: Duration) -> socket2::TcpKeepalive {
    let probe_every = (ping_interval / 4).max(Duration::from_secs(1));
    socket2::TcpKeepalive::new().with_time(ping_interval).with_interval(probe_every).with_retries(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: Timeouts =
        Timeouts { ping_interval: Duration::from_secs(10), registration: Duration::from_secs(60) };

    fn at(start: Instant, secs: u64) -> Instant {
        start + Duration::from_secs(secs)
    }

    #[test]
    fn unregistered_connections_time_out_whatever_they_send() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        for s in (0..60).step_by(5) {
            l.heard(at(t0, s));
            assert_eq!(l.check(at(t0, s), Standing::Unregistered, &TIMEOUTS), Due::Nothing);
        }
        assert_eq!(l.next_check(Standing::Unregistered, &TIMEOUTS), Some(at(t0, 60)));
        assert_eq!(
            l.check(at(t0, 60), Standing::Unregistered, &TIMEOUTS),
            Due::Close(DisconnectReason::RegistrationTimeout)
        );
    }

    #[test]
    fn silent_irc_clients_are_pinged_once_then_dropped() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        assert_eq!(l.check(at(t0, 9), Standing::Irc, &TIMEOUTS), Due::Nothing);
        assert_eq!(l.check(at(t0, 10), Standing::Irc, &TIMEOUTS), Due::Ping);
        assert_eq!(l.check(at(t0, 15), Standing::Irc, &TIMEOUTS), Due::Nothing);
        assert_eq!(l.next_check(Standing::Irc, &TIMEOUTS), Some(at(t0, 20)));
        assert_eq!(
            l.check(at(t0, 20), Standing::Irc, &TIMEOUTS),
            Due::Close(DisconnectReason::PingTimeout(20))
        );
    }

    #[test]
    fn a_line_answers_the_ping() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        assert_eq!(l.check(at(t0, 10), Standing::Irc, &TIMEOUTS), Due::Ping);
        l.heard(at(t0, 12));
        assert_eq!(l.check(at(t0, 21), Standing::Irc, &TIMEOUTS), Due::Nothing);
        assert_eq!(l.check(at(t0, 22), Standing::Irc, &TIMEOUTS), Due::Ping);
    }

    #[test]
    fn plain_clients_are_never_pinged() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        assert_eq!(l.check(at(t0, 10_000), Standing::Plain, &TIMEOUTS), Due::Nothing);
        assert_eq!(l.next_check(Standing::Plain, &TIMEOUTS), None);
    }
}

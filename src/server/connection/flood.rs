//! Flood control: how fast one client's lines are handled, whatever the
//! server could do. Separate from flow control (`flow`), which slows
//! senders when *readers* fall behind; this limits what one client may ask
//! of the server at all.
//!
//! The scheme is the penalty clock of RFC 1459 §8.10, as the classic
//! servers (ircd2, Hybrid, ngIRCd) and Ergo's "fakelag" use it. Each client
//! has a clock that runs ahead of real time by what it has used: a line
//! moves it `1 / rate` seconds on. While it is less than a burst's worth
//! ahead, the next line is handled at once; beyond that, the client's lines
//! wait (and the server stops reading it, so TCP slows it down) until real
//! time catches up. A client within its allowance never notices; a burst
//! is handled at once; a paste is handled at the sustained rate.
//!
//! A client that keeps sending far beyond its allowance is not slowed, it
//! is dropped (`Excess Flood`): while it waits, the server still reads what
//! it sends, and once more than the receive queue is held unhandled, that
//! client is clearly not a person typing.
//!
//! A line is a line whatever it holds: one with a 4 KiB IRCv3 tag section,
//! or nothing but one (no command, ignored), costs the same as any other,
//! so tags buy no extra lines; its bytes count in the receive queue, which
//! is sized in the longest lines' terms so that long lines are not what
//! gets a client dropped.
//!
//! Time is passed in, so the policy is tested without waiting.

use std::time::{Duration, Instant};

pub use crate::chat::info::{DEFAULT_BURST, DEFAULT_RATE, DEFAULT_RECVQ_BYTES, FloodPolicy};
use crate::wire::{MAX_CLIENT_TAGS_BYTES, MAX_LINE_BYTES};

/// The least receive queue that makes sense: two of the longest lines
/// and some, so that a client waiting its turn with one long line and the
/// start of the next is not taken for a flooder.
pub const MIN_RECVQ_BYTES: usize = 10 * 1024;

const _: () = assert!(MIN_RECVQ_BYTES > 2 * (MAX_CLIENT_TAGS_BYTES + MAX_LINE_BYTES));

/// How far one line moves a client's clock.
fn cost(policy: &FloodPolicy) -> Duration {
    Duration::from_secs(1) / policy.rate.max(1)
}

/// How far ahead of real time a client's clock may run: a burst's worth.
fn allowance(policy: &FloodPolicy) -> Duration {
    cost(policy) * policy.burst.max(1)
}

/// One client's penalty clock; `None` policy means flood control is off.
#[derive(Debug, Clone)]
pub struct Penalty {
    clock: Option<Instant>,
}

impl Penalty {
    pub fn new() -> Self {
        Penalty { clock: None }
    }

    /// Whether a line may be handled at `now`; if so, charges it. When not,
    /// returns the moment it may (the caller stops reading until then).
    pub fn admit(&mut self, now: Instant, policy: Option<&FloodPolicy>) -> Result<(), Instant> {
        let Some(policy) = policy else { return Ok(()) };
        let clock = self.clock.map_or(now, |c| c.max(now));
        let ahead = clock - now;
        let (cost, allowance) = (cost(policy), allowance(policy));
        if ahead + cost > allowance {
            return Err(clock + cost - allowance);
        }
        self.clock = Some(clock + cost);
        Ok(())
    }

    /// Whether `held` bytes of unhandled input are more than a waiting
    /// client may have sent.
    pub fn is_excess(held: usize, policy: Option<&FloodPolicy>) -> bool {
        policy.is_some_and(|p| held > p.recvq_bytes)
    }
}

impl Default for Penalty {
    fn default() -> Self {
        Penalty::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: FloodPolicy = FloodPolicy { burst: 5, rate: 2, recvq_bytes: 100 };

    #[test]
    fn a_burst_is_handled_at_once_then_the_rate_applies() {
        let t0 = Instant::now();
        let mut p = Penalty::new();
        for _ in 0..5 {
            assert_eq!(p.admit(t0, Some(&POLICY)), Ok(()));
        }
        let wait = p.admit(t0, Some(&POLICY)).expect_err("the burst is spent");
        assert_eq!(wait, t0 + Duration::from_millis(500));
        assert!(p.admit(wait - Duration::from_millis(1), Some(&POLICY)).is_err());
        assert_eq!(p.admit(wait, Some(&POLICY)), Ok(()));
        assert_eq!(p.admit(wait, Some(&POLICY)), Err(wait + Duration::from_millis(500)));
    }

    #[test]
    fn a_client_within_the_rate_never_waits() {
        let t0 = Instant::now();
        let mut p = Penalty::new();
        for i in 0..1000 {
            assert_eq!(p.admit(t0 + Duration::from_millis(500) * i, Some(&POLICY)), Ok(()));
        }
    }

    #[test]
    fn quiet_time_earns_the_burst_back() {
        let t0 = Instant::now();
        let mut p = Penalty::new();
        while p.admit(t0, Some(&POLICY)).is_ok() {}
        let later = t0 + Duration::from_secs(10);
        for _ in 0..5 {
            assert_eq!(p.admit(later, Some(&POLICY)), Ok(()));
        }
        assert!(p.admit(later, Some(&POLICY)).is_err());
    }

    #[test]
    fn off_means_off() {
        let t0 = Instant::now();
        let mut p = Penalty::new();
        for _ in 0..10_000 {
            assert_eq!(p.admit(t0, None), Ok(()));
        }
        assert!(!Penalty::is_excess(usize::MAX, None));
        assert!(Penalty::is_excess(101, Some(&POLICY)));
        assert!(!Penalty::is_excess(100, Some(&POLICY)));
    }
}

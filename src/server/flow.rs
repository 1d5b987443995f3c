//! Flow control: when the server stops reading senders, and when it stops
//! waiting for a reader.
//!
//! Every connection's outbound queue (sendq) has two marks. Below
//! `behind_at` the reader is keeping up. Above it the reader is *behind*,
//! and a behind reader that the server still waits for *holds* the flow:
//! the model stops taking input (a pool worker stops applying the event
//! log and stops reading its clients; an iterative client thread stops
//! before its next line), so senders are slowed by TCP instead of readers
//! being dropped. A behind reader has caught up again once its queue is at
//! or below `caught_up_at` (half the mark, so the flow does not flap).
//!
//! The heart of it is telling "everyone is behind" (a burst: slow the
//! senders, for as long as it lasts) from "this one reader is behind" (a
//! slow or stopped client: stop waiting for it). The rule:
//!
//! - **Minority.** While at most half of the connections that have lately
//!   been sent to are behind ([`Census::is_minority`]), the behind ones are
//!   holding the others up. Each of them spends *patience* for the time it
//!   holds the flow then, and earns it back at the same rate while it does
//!   not. A reader out of patience is *cut loose*: the server stops waiting
//!   for it. So a reader that holds the others up more than half the time
//!   runs out (one slower than everyone else does within a second), and
//!   one that does so less (the last of many to drain after each burst)
//!   never does. With more than half behind, everyone is behind: nobody
//!   spends patience, and the senders are slowed for as long as it lasts.
//! - **Lag.** Whatever the others do, a reader whose oldest queued line has
//!   waited longer than `max_lag` is cut loose: a chat line that late is
//!   useless, and this bounds how long any reader, or any majority of
//!   readers that stopped reading, can hold the flow.
//!
//! Cutting loose is not dropping. A reader that was cut loose keeps its
//! queue, now bounded only by the hard limit (`--sendq`); if it reads as
//! fast as the channel moves it catches up and is waited for again, and if
//! it falls a whole sendq behind it is dropped with its closing line
//! (`SendQ exceeded`). So a wrong guess costs nothing but a little queue.
//!
//! This module is the policy alone, with time passed in, so that it is the
//! same code for every model and can be tested without sockets.

use std::time::{Duration, Instant};

/// Default mark past which a reader is behind.
pub const BEHIND_AT: usize = 8 * 1024;

/// One in how many lately sent-to connections may be behind for the behind
/// ones to count as a minority holding up the rest.
const MINORITY_ONE_IN: usize = 2;

/// How often a model that holds the flow re-evaluates its readers.
pub const TICK: Duration = Duration::from_millis(20);

/// How long a connection counts as "lately sent to" after a delivery.
pub const RECEIVER_WINDOW_MS: u32 = 2500;

/// The marks and clocks of the rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Queued bytes past which a reader is behind.
    pub behind_at: usize,
    /// Queued bytes at or below which a behind reader has caught up.
    pub caught_up_at: usize,
    /// How long a reader may hold the flow as one of a minority, net of
    /// what it earned back, before it is cut loose.
    pub patience: Duration,
    /// Patience earned back per second of not holding the flow.
    pub recovery: f64,
    /// Age of a reader's oldest queued line past which it is cut loose.
    pub max_lag: Duration,
}

impl Policy {
    /// The policy for a hard limit of `sendq` bytes: the behind mark is
    /// [`BEHIND_AT`], or a quarter of the limit if that is smaller, so a
    /// cut-loose reader always has room to catch up before it is dropped.
    pub fn for_sendq(sendq: usize) -> Policy {
        let behind_at = BEHIND_AT.min(sendq / 4).max(1);
        Policy {
            behind_at,
            caught_up_at: behind_at / 2,
            patience: Duration::from_millis(500),
            recovery: 1.0,
            max_lag: Duration::from_secs(10),
        }
    }
}

/// The server-wide picture the minority rule needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    /// Connections behind right now (waited for or not).
    pub behind: usize,
    /// Connections sent to lately.
    pub receivers: usize,
}

impl Census {
    /// Whether the behind readers are few next to those keeping up.
    pub fn is_minority(&self) -> bool {
        self.behind * MINORITY_ONE_IN <= self.receivers
    }
}

/// One connection's standing.
#[derive(Debug, Clone, Default)]
pub struct ConnFlow {
    behind: bool,
    cut_loose: bool,
    /// Patience spent, in seconds (net of what was earned back).
    spent: f64,
    /// When it last stopped being behind, to earn patience back lazily.
    caught_up: Option<Instant>,
}

/// How a connection's standing changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Change {
    /// +1 it became behind, -1 it caught up.
    pub behind: i8,
    /// +1 it started holding the flow, -1 it stopped.
    pub holds: i8,
}

impl Change {
    fn between(before: (bool, bool), after: (bool, bool)) -> Change {
        let delta = |b: bool, a: bool| a as i8 - b as i8;
        Change { behind: delta(before.0, after.0), holds: delta(before.1, after.1) }
    }

    pub fn is_none(&self) -> bool {
        self.behind == 0 && self.holds == 0
    }
}

impl ConnFlow {
    /// Behind: its queue is past the mark (and has not drained to the low mark since).
    pub fn is_behind(&self) -> bool {
        self.behind
    }

    /// Behind and still waited for: the flow stops for it.
    pub fn holds(&self) -> bool {
        self.behind && !self.cut_loose
    }

    #[cfg(test)]
    pub fn is_cut_loose(&self) -> bool {
        self.cut_loose
    }

    fn standing(&self) -> (bool, bool) {
        (self.behind, self.holds())
    }

    /// Call after the queue changed length (bytes queued or written).
    pub fn queued(&mut self, queued: usize, policy: &Policy, now: Instant) -> Change {
        let before = self.standing();
        if !self.behind && queued > policy.behind_at {
            self.behind = true;
            if let Some(since) = self.caught_up.take() {
                let earned = now.saturating_duration_since(since).as_secs_f64() * policy.recovery;
                self.spent = (self.spent - earned).max(0.0);
            }
        } else if self.behind && queued <= policy.caught_up_at {
            self.behind = false;
            self.cut_loose = false;
            self.caught_up = Some(now);
        }
        Change::between(before, self.standing())
    }

    /// Accounts `elapsed` of holding the flow (call only while it holds);
    /// `lag` is the age of its oldest queued line. Returns the change if it
    /// is cut loose now.
    pub fn held(&mut self, elapsed: Duration, lag: Duration, census: Census, policy: &Policy) -> Change {
        if !self.holds() {
            return Change::default();
        }
        let before = self.standing();
        if census.is_minority() {
            self.spent += elapsed.as_secs_f64();
        } else {
            self.spent = (self.spent - elapsed.as_secs_f64() * policy.recovery).max(0.0);
        }
        if self.spent >= policy.patience.as_secs_f64() || lag >= policy.max_lag {
            self.cut_loose = true;
        }
        Change::between(before, self.standing())
    }

    /// The connection is going away: what it stops counting for.
    pub fn leave(&mut self) -> Change {
        let before = self.standing();
        self.behind = false;
        self.cut_loose = false;
        Change::between(before, self.standing())
    }
}

/// Counts the connections sent to lately, in two windows of
/// [`RECEIVER_WINDOW_MS`]: the current one and the one before, so that the
/// count does not fall to zero the moment a window turns over.
#[derive(Debug, Clone, Default)]
pub struct Receivers {
    window: u32,
    current: usize,
    previous: usize,
}

impl Receivers {
    /// Notes a delivery to a connection whose last noted window is
    /// `*seen` (0 = never); `now_ms` is the coarse clock of [`millis`].
    pub fn note(&mut self, now_ms: u32, seen: &mut u32) {
        let window = now_ms / RECEIVER_WINDOW_MS + 1;
        self.turn(window);
        if *seen != window {
            *seen = window;
            self.current += 1;
        }
    }

    /// Connections sent to in the current or the previous window.
    pub fn count(&mut self, now_ms: u32) -> usize {
        self.turn(now_ms / RECEIVER_WINDOW_MS + 1);
        self.current.max(self.previous)
    }

    fn turn(&mut self, window: u32) {
        if window != self.window {
            self.previous = if window == self.window + 1 { self.current } else { 0 };
            self.current = 0;
            self.window = window;
        }
    }
}

/// Milliseconds since this process first asked: the coarse clock that
/// stamps queued lines (a u32 is enough for 49 days of lag arithmetic,
/// and wrapping differences stay right beyond that).
pub fn millis() -> u32 {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u32
}

/// The age of a line stamped `stamp` at `now_ms`.
pub fn age(stamp: u32, now_ms: u32) -> Duration {
    Duration::from_millis(u64::from(now_ms.wrapping_sub(stamp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::for_sendq(256 * 1024)
    }

    const FEW: Census = Census { behind: 1, receivers: 10 };
    const MANY: Census = Census { behind: 6, receivers: 10 };
    const STEP: Duration = Duration::from_millis(20);
    const FRESH: Duration = Duration::from_millis(1);

    fn behind(now: Instant) -> ConnFlow {
        let mut flow = ConnFlow::default();
        let change = flow.queued(policy().behind_at + 1, &policy(), now);
        assert_eq!(change, Change { behind: 1, holds: 1 });
        flow
    }

    /// Holds for `total` in steps; returns how long it took to be cut loose.
    fn hold(flow: &mut ConnFlow, total: Duration, census: Census) -> Option<Duration> {
        let mut held = Duration::ZERO;
        while held < total {
            held += STEP;
            if flow.held(STEP, FRESH, census, &policy()).holds == -1 {
                return Some(held);
            }
        }
        None
    }

    #[test]
    fn marks_have_hysteresis() {
        let p = policy();
        let now = Instant::now();
        let mut flow = ConnFlow::default();
        assert!(flow.queued(p.behind_at, &p, now).is_none());
        assert!(flow.queued(p.behind_at + 1, &p, now).behind == 1);
        assert!(flow.queued(p.behind_at - 1, &p, now).is_none(), "still behind until the low mark");
        assert_eq!(flow.queued(p.caught_up_at, &p, now), Change { behind: -1, holds: -1 });
        assert!(!flow.is_behind());
    }

    #[test]
    fn a_small_sendq_keeps_room_to_catch_up() {
        let p = Policy::for_sendq(256 * 1024);
        assert_eq!(p.behind_at, BEHIND_AT);
        let p = Policy::for_sendq(8 * 1024);
        assert_eq!(p.behind_at, 2 * 1024);
        assert!(p.caught_up_at < p.behind_at);
    }

    #[test]
    fn when_everyone_is_behind_nobody_is_cut_loose() {
        let mut flow = behind(Instant::now());
        assert_eq!(hold(&mut flow, Duration::from_secs(5), MANY), None);
        assert!(flow.holds());
    }

    #[test]
    fn a_lone_laggard_is_cut_loose_after_its_patience() {
        let mut flow = behind(Instant::now());
        let took = hold(&mut flow, Duration::from_secs(5), FEW).expect("cut loose");
        assert!(took >= policy().patience && took < policy().patience + 2 * STEP, "{took:?}");
        assert!(flow.is_behind() && !flow.holds() && flow.is_cut_loose());
    }

    #[test]
    fn holding_now_and_then_never_runs_out() {
        // Behind two fifths of the time as one of a minority, as the last
        // readers to drain after each burst are: patience comes back faster
        // than it goes.
        let p = policy();
        let mut now = Instant::now();
        let mut flow = ConnFlow::default();
        for _ in 0..500 {
            assert!(flow.queued(p.behind_at + 1, &p, now).holds == 1);
            assert_eq!(hold(&mut flow, Duration::from_millis(80), FEW), None);
            now += Duration::from_millis(80);
            assert!(flow.queued(0, &p, now).holds == -1);
            now += Duration::from_millis(120);
        }
    }

    #[test]
    fn holding_most_of_the_time_runs_out() {
        // Nine tenths of the time, as a reader at a tenth of the others' pace.
        let p = policy();
        let mut now = Instant::now();
        let mut flow = ConnFlow::default();
        let mut cycles = 0;
        loop {
            cycles += 1;
            assert!(cycles < 50, "never cut loose");
            flow.queued(p.behind_at + 1, &p, now);
            if hold(&mut flow, Duration::from_millis(90), FEW).is_some() {
                break;
            }
            now += Duration::from_millis(90);
            flow.queued(0, &p, now);
            now += Duration::from_millis(10);
        }
    }

    #[test]
    fn lag_cuts_loose_even_a_majority() {
        let p = policy();
        let mut flow = behind(Instant::now());
        assert!(flow.held(STEP, p.max_lag - STEP, MANY, &p).is_none());
        assert_eq!(flow.held(STEP, p.max_lag, MANY, &p).holds, -1);
    }

    #[test]
    fn catching_up_restores_waiting_and_leave_undoes_everything() {
        let p = policy();
        let now = Instant::now();
        let mut flow = behind(now);
        hold(&mut flow, Duration::from_secs(1), FEW).expect("cut loose");
        assert_eq!(flow.queued(p.behind_at * 4, &p, now), Change::default(), "cut loose: queue may grow");
        assert_eq!(flow.queued(0, &p, now), Change { behind: -1, holds: 0 });
        assert!(!flow.is_cut_loose());
        flow.queued(p.behind_at + 1, &p, now);
        assert!(flow.holds(), "waited for again");
        assert_eq!(flow.leave(), Change { behind: -1, holds: -1 });
    }

    #[test]
    fn a_repeat_offender_runs_out_sooner() {
        let p = policy();
        let now = Instant::now();
        let mut flow = behind(now);
        hold(&mut flow, Duration::from_secs(1), FEW).expect("cut loose");
        flow.queued(0, &p, now);
        // Back behind 100 ms later: only 100 ms of patience earned back.
        flow.queued(p.behind_at + 1, &p, now + Duration::from_millis(100));
        let took = hold(&mut flow, Duration::from_secs(1), FEW).expect("cut loose again");
        assert!(took <= Duration::from_millis(140), "{took:?}");
    }

    #[test]
    fn census_minority_is_at_most_half() {
        assert!(Census { behind: 1, receivers: 2 }.is_minority(), "one of two readers stalls the other");
        assert!(Census { behind: 2, receivers: 4 }.is_minority());
        assert!(!Census { behind: 3, receivers: 5 }.is_minority());
        assert!(!Census { behind: 2, receivers: 2 }.is_minority(), "both behind: everyone is");
        assert!(Census { behind: 0, receivers: 0 }.is_minority());
    }

    #[test]
    fn receivers_count_over_two_windows() {
        let mut r = Receivers::default();
        let (mut a, mut b) = (0, 0);
        r.note(10, &mut a);
        r.note(20, &mut a);
        r.note(30, &mut b);
        assert_eq!(r.count(40), 2);
        // Next window: only `a` again; the previous window still counts both.
        r.note(RECEIVER_WINDOW_MS + 5, &mut a);
        assert_eq!(r.count(RECEIVER_WINDOW_MS + 6), 2);
        // Two windows on, with nothing sent: nobody.
        assert_eq!(r.count(3 * RECEIVER_WINDOW_MS + 1), 0);
    }

    #[test]
    fn ages_survive_the_clock_wrapping() {
        assert_eq!(age(u32::MAX - 5, 4), Duration::from_millis(10));
        assert_eq!(age(100, 350), Duration::from_millis(250));
    }
}

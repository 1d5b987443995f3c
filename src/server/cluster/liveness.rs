//! Which nodes of the network are gone: the rule a node's bridge applies
//! to the heartbeats it hears, apart from NATS and the clock (both given),
//! so that it is tested with a made-up clock.
//!
//! Every node puts a heartbeat (its number and epoch) in a bucket every
//! quarter of `--node-timeout`; every node watches the bucket. A node run
//! that has users in the directory (so the network still counts it) and
//! has not been heard for the timeout is declared lost: its users quit
//! everywhere (`Event::NodeLost`). Several nodes may declare the same loss
//! at once; the stream keeps one (the message id is the loss's) and the
//! directory applies it once.
//!
//! Not hearing from a node says nothing while *this* node is not hearing
//! from NATS at all, or has only just started or come back: the rule
//! waits until this node has been connected for a whole timeout and
//! counts silence only from then, so that NATS going away and coming back
//! never makes every node declare every other lost. Nor while this node
//! does not hear *its own* heartbeat (it puts one every quarter timeout):
//! a watch that has quietly stopped hears no one, and must not be taken
//! for everyone else's silence.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// A node run: its number and epoch.
pub type Run = (u16, u32);

pub struct Liveness {
    timeout: Duration,
    me: Run,
    /// When each node run was last heard.
    heard: HashMap<Run, Instant>,
    /// Since when this node has been connected to NATS, if it is.
    connected_since: Option<Instant>,
    /// Losses this node has published (they stand once in the stream).
    declared: HashSet<Run>,
}

impl Liveness {
    pub fn new(me: Run, timeout: Duration) -> Liveness {
        Liveness { timeout, me, heard: HashMap::new(), connected_since: None, declared: HashSet::new() }
    }

    /// A heartbeat of `run` was heard at `now`.
    pub fn heard(&mut self, run: Run, now: Instant) {
        self.heard.insert(run, now);
    }

    /// Whether this node is connected to NATS, at `now`.
    pub fn connection(&mut self, connected: bool, now: Instant) {
        match (connected, self.connected_since) {
            (true, None) => self.connected_since = Some(now),
            (false, Some(_)) => self.connected_since = None,
            _ => {}
        }
    }

    /// The node runs among `present` (those with users in the directory)
    /// to declare lost at `now`: silent for the timeout while this node
    /// was connected, and not declared by this node before.
    pub fn lost(&mut self, present: impl IntoIterator<Item = Run>, now: Instant) -> Vec<Run> {
        let Some(since) = self.connected_since else { return Vec::new() };
        if now.saturating_duration_since(since) < self.timeout {
            return Vec::new();
        }
        if !self.hears_itself(now) {
            return Vec::new();
        }
        let mut lost: Vec<Run> = present
            .into_iter()
            .filter(|run| *run != self.me && !self.declared.contains(run))
            .filter(|run| {
                // Silence counts from when this node could have heard it.
                let last = self.heard.get(run).copied().unwrap_or(since).max(since);
                now.saturating_duration_since(last) >= self.timeout
            })
            .collect();
        lost.sort_unstable();
        lost.dedup();
        self.declared.extend(lost.iter().copied());
        lost
    }

    /// Whether this node's own heartbeat came back lately (within half a
    /// timeout: two of its beats): whether its watch works.
    pub fn hears_itself(&self, now: Instant) -> bool {
        self.heard.get(&self.me).is_some_and(|at| now.saturating_duration_since(*at) < self.timeout / 2)
    }

    /// A loss this node declared could not be published: declare it again
    /// next time.
    pub fn retry(&mut self, run: Run) {
        self.declared.remove(&run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    fn secs(start: Instant, s: u64) -> Instant {
        start + Duration::from_secs(s)
    }

    #[test]
    fn a_silent_node_with_users_is_lost_once() {
        let t0 = Instant::now();
        let mut live = Liveness::new((1, 1), T);
        live.connection(true, t0);
        live.heard((2, 4), t0);
        live.heard((3, 9), t0);
        live.heard((1, 1), secs(t0, 4));
        assert!(live.lost([(2, 4), (3, 9)], secs(t0, 4)).is_empty(), "not silent long enough");
        live.heard((3, 9), secs(t0, 4));
        live.heard((1, 1), secs(t0, 6));
        assert_eq!(live.lost([(2, 4), (3, 9)], secs(t0, 6)), [(2, 4)]);
        assert!(live.lost([(2, 4), (3, 9)], secs(t0, 7)).is_empty(), "declared already");
        live.retry((2, 4));
        live.heard((1, 1), secs(t0, 8));
        assert_eq!(live.lost([(2, 4)], secs(t0, 8)), [(2, 4)]);
    }

    #[test]
    fn only_runs_with_users_and_never_oneself() {
        let t0 = Instant::now();
        let mut live = Liveness::new((1, 1), T);
        live.connection(true, t0);
        live.heard((2, 4), t0);
        live.heard((1, 1), secs(t0, 60));
        assert!(live.lost([(1, 1)], secs(t0, 60)).is_empty(), "never oneself");
        assert!(live.lost([], secs(t0, 60)).is_empty(), "a silent node without users is nothing to tell");
        // A run never heard at all (it died before this node started) is
        // lost a timeout after this node could have heard it.
        assert_eq!(live.lost([(7, 2)], secs(t0, 60)), [(7, 2)]);
    }

    #[test]
    fn nothing_is_lost_while_this_node_cannot_hear() {
        let t0 = Instant::now();
        let mut live = Liveness::new((1, 1), T);
        live.connection(true, t0);
        live.heard((2, 4), t0);
        live.connection(false, secs(t0, 1));
        assert!(live.lost([(2, 4)], secs(t0, 30)).is_empty(), "disconnected");
        // NATS comes back after a long outage: everyone's last beat is old,
        // but silence counts only from the reconnection.
        live.connection(true, secs(t0, 30));
        live.heard((1, 1), secs(t0, 31));
        assert!(live.lost([(2, 4)], secs(t0, 32)).is_empty());
        live.heard((2, 4), secs(t0, 31));
        live.heard((1, 1), secs(t0, 35));
        assert!(live.lost([(2, 4)], secs(t0, 35)).is_empty());
        assert_eq!(live.lost([(2, 4)], secs(t0, 36)), [(2, 4)], "silent a whole timeout since it was heard");
    }

    #[test]
    fn no_one_is_lost_while_this_node_does_not_hear_itself() {
        let t0 = Instant::now();
        let mut live = Liveness::new((1, 1), T);
        live.connection(true, t0);
        live.heard((1, 1), t0);
        live.heard((2, 4), t0);
        // A watch that stopped hears no one: not even this node's own beats.
        assert!(!live.hears_itself(secs(t0, 3)));
        assert!(live.lost([(2, 4)], secs(t0, 10)).is_empty());
        live.heard((1, 1), secs(t0, 10));
        assert!(live.hears_itself(secs(t0, 11)));
        assert_eq!(live.lost([(2, 4)], secs(t0, 11)), [(2, 4)]);
    }
}

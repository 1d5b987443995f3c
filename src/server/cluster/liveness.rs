//! Which nodes of the network are gone: the rule a node's bridge applies
//! to the heartbeats it reads, apart from NATS and the clock (both given),
//! so that it is tested with a made-up clock.
//!
//! Every node puts a heartbeat (its epoch, under its number) in a bucket
//! every quarter of `--node-timeout`; every node reads the bucket as often,
//! asking for each node's latest heartbeat (a request, not a watch: a
//! watch that quietly stops under load would hear no one). A heartbeat
//! that has not changed since the last reading is silence. A node run that
//! has users in the directory (so the network still counts it) and has
//! been silent for the timeout is declared lost: its users quit everywhere
//! (`Event::NodeLost`). Several nodes may declare the same loss at once;
//! the stream keeps one (the message id is the loss's) and the directory
//! applies it once.
//!
//! A false loss costs a healthy node its clients, so silence counts only
//! while this node could have heard: since the start of its current run of
//! readings that all succeeded (NATS away, or slow to answer, resets it),
//! and only while it hears *its own* heartbeat change (its puts go through,
//! and its readings see them). So NATS going away and coming back, or a
//! starved machine, never makes every node declare every other lost.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// A node run: its number and epoch.
pub type Run = (u16, u32);

pub struct Liveness {
    timeout: Duration,
    me: Run,
    /// When each node run's heartbeat was last seen to change.
    heard: HashMap<Run, Instant>,
    /// When each node run was first among those with users: a run that
    /// has just started may have users before its first heartbeat is read.
    appeared: HashMap<Run, Instant>,
    /// Since when every reading has succeeded, if the last one did.
    hearing_since: Option<Instant>,
    /// Losses this node has published (they stand once in the stream).
    declared: HashSet<Run>,
}

impl Liveness {
    pub fn new(me: Run, timeout: Duration) -> Liveness {
        Liveness {
            timeout,
            me,
            heard: HashMap::new(),
            appeared: HashMap::new(),
            hearing_since: None,
            declared: HashSet::new(),
        }
    }

    /// `run`'s heartbeat was seen to change at `now`.
    pub fn heard(&mut self, run: Run, now: Instant) {
        self.heard.insert(run, now);
    }

    /// A reading of the heartbeats ended at `now`: whole (`ok`), or not
    /// (NATS away, a request that failed or timed out).
    pub fn read(&mut self, ok: bool, now: Instant) {
        match (ok, self.hearing_since) {
            (true, None) => self.hearing_since = Some(now),
            (false, _) => self.hearing_since = None,
            _ => {}
        }
    }

    /// Whether this node's own heartbeat was seen to change lately
    /// (within half a timeout: two of its beats).
    pub fn hears_itself(&self, now: Instant) -> bool {
        self.heard.get(&self.me).is_some_and(|at| now.saturating_duration_since(*at) < self.timeout / 2)
    }

    /// The lowest node number heard within the timeout: the node that
    /// writes snapshots (every node reads the same heartbeats, so they
    /// agree but for a moment when one comes or goes).
    pub fn first_heard(&self, now: Instant) -> Option<u16> {
        self.heard
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) < self.timeout)
            .map(|((node, _), _)| *node)
            .min()
    }

    /// The node runs among `present` (those with users in the directory)
    /// to declare lost at `now`: silent for the timeout while this node
    /// could hear, and not declared by this node before.
    pub fn lost(&mut self, present: impl IntoIterator<Item = Run>, now: Instant) -> Vec<Run> {
        let present: Vec<Run> = present.into_iter().collect();
        for run in &present {
            self.appeared.entry(*run).or_insert(now);
        }
        let Some(since) = self.hearing_since else { return Vec::new() };
        if now.saturating_duration_since(since) < self.timeout || !self.hears_itself(now) {
            return Vec::new();
        }
        let mut lost: Vec<Run> = present
            .into_iter()
            .filter(|run| *run != self.me && !self.declared.contains(run))
            .filter(|run| {
                // Silence counts from when this node could have heard it:
                // its last heartbeat, or its appearance, and this node's
                // hearing, whichever is latest.
                let last = self.heard.get(run).or(self.appeared.get(run)).copied().unwrap_or(now);
                now.saturating_duration_since(last.max(since)) >= self.timeout
            })
            .collect();
        lost.sort_unstable();
        lost.dedup();
        self.declared.extend(lost.iter().copied());
        lost
    }

    /// A loss this node declared could not be published: declare it again
    /// next time.
    pub fn retry(&mut self, run: Run) {
        self.declared.remove(&run);
    }
}

/// What a reading of the heartbeat bucket found for each node number: the
/// epoch and revision of its latest heartbeat. Turned into [`Liveness`]'s
/// "heard" by noticing which changed since the previous reading.
#[derive(Default)]
pub struct Readings {
    last: HashMap<u16, (u32, u64)>,
}

impl Readings {
    /// Takes a reading (`node` → `(epoch, revision)`) made at `now`, and
    /// tells `liveness` whose heartbeat changed.
    pub fn take(&mut self, reading: &[(u16, u32, u64)], now: Instant, liveness: &mut Liveness) {
        for &(node, epoch, revision) in reading {
            if self.last.insert(node, (epoch, revision)) != Some((epoch, revision)) {
                liveness.heard((node, epoch), now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);
    const ME: Run = (1, 1);

    fn secs(start: Instant, s: u64) -> Instant {
        start + Duration::from_secs(s)
    }

    /// A node reading from `t0`, hearing itself at every `s` given.
    fn hearing(t0: Instant, own_beats: &[u64]) -> Liveness {
        let mut live = Liveness::new(ME, T);
        live.read(true, t0);
        for s in own_beats {
            live.heard(ME, secs(t0, *s));
        }
        live
    }

    #[test]
    fn a_silent_node_with_users_is_lost_once() {
        let t0 = Instant::now();
        let mut live = hearing(t0, &[4, 6, 8]);
        live.heard((2, 4), t0);
        live.heard((3, 9), t0);
        live.heard(ME, secs(t0, 4));
        assert!(live.lost([(2, 4), (3, 9)], secs(t0, 4)).is_empty(), "not silent long enough");
        live.heard((3, 9), secs(t0, 4));
        live.heard(ME, secs(t0, 6));
        assert_eq!(live.lost([(2, 4), (3, 9)], secs(t0, 6)), [(2, 4)]);
        assert!(live.lost([(2, 4), (3, 9)], secs(t0, 6)).is_empty(), "declared already");
        live.retry((2, 4));
        live.heard(ME, secs(t0, 8));
        assert_eq!(live.lost([(2, 4)], secs(t0, 8)), [(2, 4)]);
    }

    #[test]
    fn only_runs_with_users_and_never_oneself() {
        let t0 = Instant::now();
        let mut live = hearing(t0, &[60, 66]);
        live.heard((2, 4), t0);
        assert!(live.lost([ME], secs(t0, 60)).is_empty(), "never oneself");
        assert!(live.lost([], secs(t0, 60)).is_empty(), "a silent node without users is nothing to tell");
        // A run never heard at all (it died before this node could hear
        // it, or has just started) is lost a timeout after it appeared.
        assert!(live.lost([(7, 2)], secs(t0, 60)).is_empty(), "it has just appeared");
        assert_eq!(live.lost([(7, 2)], secs(t0, 66)), [(7, 2)]);
    }

    #[test]
    fn nothing_is_lost_while_readings_fail() {
        let t0 = Instant::now();
        let mut live = hearing(t0, &[0]);
        live.heard((2, 4), t0);
        live.read(false, secs(t0, 1));
        live.heard(ME, secs(t0, 30));
        assert!(live.lost([(2, 4)], secs(t0, 30)).is_empty(), "no reading whole");
        // Readings work again after a long outage: everyone's last beat is
        // old, but silence counts only from then.
        live.read(true, secs(t0, 30));
        live.heard(ME, secs(t0, 32));
        assert!(live.lost([(2, 4)], secs(t0, 32)).is_empty());
        live.heard((2, 4), secs(t0, 31));
        live.heard(ME, secs(t0, 35));
        assert!(live.lost([(2, 4)], secs(t0, 35)).is_empty());
        assert_eq!(live.lost([(2, 4)], secs(t0, 36)), [(2, 4)], "silent a whole timeout since it was heard");
    }

    #[test]
    fn no_one_is_lost_while_this_node_does_not_hear_itself() {
        let t0 = Instant::now();
        let mut live = hearing(t0, &[0]);
        live.heard((2, 4), t0);
        // Its own puts do not go through (or its readings do not see them).
        assert!(!live.hears_itself(secs(t0, 3)));
        assert!(live.lost([(2, 4)], secs(t0, 10)).is_empty());
        live.heard(ME, secs(t0, 10));
        assert!(live.hears_itself(secs(t0, 11)));
        assert_eq!(live.lost([(2, 4)], secs(t0, 11)), [(2, 4)]);
    }

    #[test]
    fn the_first_heard_is_the_lowest_number_not_silent() {
        let t0 = Instant::now();
        let mut live = Liveness::new(ME, T);
        assert_eq!(live.first_heard(t0), None);
        live.heard((3, 1), t0);
        live.heard(ME, secs(t0, 2));
        assert_eq!(live.first_heard(secs(t0, 2)), Some(1));
        assert_eq!(live.first_heard(secs(t0, 8)), None, "silent for a timeout: no one");
        live.heard((3, 1), secs(t0, 8));
        assert_eq!(live.first_heard(secs(t0, 8)), Some(3), "node 1 is silent");
    }

    #[test]
    fn only_a_changed_heartbeat_is_heard() {
        let t0 = Instant::now();
        let mut live = Liveness::new(ME, T);
        let mut readings = Readings::default();
        readings.take(&[(2, 4, 10)], t0, &mut live);
        readings.take(&[(2, 4, 10)], secs(t0, 3), &mut live);
        assert_eq!(live.heard.get(&(2, 4)), Some(&t0), "the same heartbeat again is silence");
        readings.take(&[(2, 4, 11)], secs(t0, 4), &mut live);
        assert_eq!(live.heard.get(&(2, 4)), Some(&secs(t0, 4)));
        // A restart shows as another epoch under the same number.
        readings.take(&[(2, 5, 12)], secs(t0, 5), &mut live);
        assert_eq!(live.heard.get(&(2, 5)), Some(&secs(t0, 5)));
        assert_eq!(live.heard.get(&(2, 4)), Some(&secs(t0, 4)));
    }
}

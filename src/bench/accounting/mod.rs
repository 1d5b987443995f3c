//! Delivery accounting for `chatter bench`: what each receiving client got
//! (loss, duplicates, stray messages, per-sender order), whether all the
//! receivers saw one order (the network's, when the clients are spread over
//! the nodes of a cluster), how many did not, and the latency histogram.
//!
//! Why it is shaped so: a run has N receivers each expecting up to S × M
//! messages, so per-receiver state must stay small. Presence is one bit per
//! (sender, seq) and per-sender order one `u32`, which is enough for loss,
//! duplicates and "each sender's messages arrived in increasing order".
//! Cross-receiver order needs the actual sequences, but keeping S × M pairs
//! for every receiver would be N times the message volume; instead every
//! receiver folds its order of first deliveries into a 64-bit hash chain and
//! only the senders and a few reference receivers keep the full sequence.
//! After the run, the order one reference saw (the one most receivers agree
//! with) is taken as the network's order, and every receiver is checked
//! against it: the reference's sequence, filtered to the messages that
//! receiver got (its presence bits) and stripped of its own, must give the
//! receiver's sequence, or its fingerprint. So a receiver that lost
//! messages, or was disconnected, is still checked on what it got: loss is
//! counted as loss, never as disorder. See [`combine`] for exactly what is
//! checked and when it cannot be.
//!
//! Each tally says which node (which of the run's addresses) its client was
//! on, so the totals can say where loss, disconnects and disorder happened.
//!
//! A receiver the server disconnected keeps its tally: what it got counts,
//! what it missed counts as lost, and the reason is kept so the summary can
//! say why clients went away (a handful of distinct reasons, counted).

use hdrhistogram::Histogram;

use crate::bench::results::{DisconnectReason, Latency};

/// Distinct disconnect reasons kept in the totals; the count covers all.
pub const MAX_REASONS: usize = 3;

/// A message as (sender id, sequence number).
type Message = (u32, u32);

/// A sender receiver's id and its sequence, compared with others'.
type Witness<'a> = (Option<u32>, &'a [Message]);

/// The fingerprint of a receiver that has received nothing. Any constant
/// works; a non-zero one keeps "nothing received" distinct from a chain that
/// happened to mix down to zero.
const FINGERPRINT_SEED: u64 = 0x6368_6174_7465_7221;

/// The splitmix64 finaliser: a bijection on u64 with good avalanche, so for
/// a given chain state distinct messages always lead to distinct states and
/// nearby ids do not produce nearby hashes.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One link of the fingerprint chain. Shared by [`Tally::record`] and
/// [`combine`], which recomputes a sender's expected fingerprint from the
/// reference sequence when the sender kept no sequence of its own.
fn chain(state: u64, sender: u32, seq: u32) -> u64 {
    mix(state ^ ((u64::from(sender) << 32) | u64::from(seq)))
}

fn fingerprint_of<'a>(messages: impl IntoIterator<Item = &'a Message>) -> u64 {
    messages.into_iter().fold(FINGERPRINT_SEED, |h, &(sender, seq)| chain(h, sender, seq))
}

/// What one receiving client saw.
#[derive(Debug, Clone)]
pub struct Tally {
    senders: u32,
    messages: u32,
    /// Only ever a sender id below `senders`: see [`Tally::new`].
    me: Option<u32>,
    words_per_sender: usize,
    /// Bit `seq` of sender `s`'s slice is set once (s, seq) has arrived.
    seen: Vec<u64>,
    /// Per sender, one past the highest seq seen so far.
    next_seq: Vec<u32>,
    in_order: bool,
    delivered: u64,
    duplicated: u64,
    unexpected: u64,
    fingerprint: u64,
    sequence: Option<Vec<Message>>,
    /// Why the server closed this receiver's connection, if it did.
    disconnected: Option<String>,
    /// Which of the run's addresses (nodes) the client was connected to.
    node: usize,
}

impl Tally {
    /// `me`: this receiver's sender id if it is a sender. `keep_sequence`:
    /// store the full (sender, seq) sequence (for senders and one reference
    /// receiver), otherwise only a rolling fingerprint.
    ///
    /// A `me` that names no sender (`>= senders`) is treated as `None`: such
    /// a client sends nothing the run counts, so it receives like any other
    /// non-sender.
    pub fn new(senders: u32, messages: u32, me: Option<u32>, keep_sequence: bool) -> Tally {
        let me = me.filter(|&id| id < senders);
        let words_per_sender = (messages as usize).div_ceil(64);
        let mut tally = Tally {
            senders,
            messages,
            me,
            words_per_sender,
            seen: vec![0; senders as usize * words_per_sender],
            next_seq: vec![0; senders as usize],
            in_order: true,
            delivered: 0,
            duplicated: 0,
            unexpected: 0,
            fingerprint: FINGERPRINT_SEED,
            sequence: None,
            disconnected: None,
            node: 0,
        };
        // A healthy run fills the sequence exactly, so reserving up front
        // avoids the doubling reallocations (and their transient 2× peak).
        if keep_sequence {
            tally.sequence = Some(Vec::with_capacity(usize::try_from(tally.expected()).unwrap_or(0)));
        }
        tally
    }

    /// The same tally, for a client on node `node` (the index of the
    /// address it connected to; 0 when the run has one).
    pub fn on_node(mut self, node: usize) -> Tally {
        self.node = node;
        self
    }

    /// The node this receiver's client was on.
    #[cfg(test)]
    pub fn node(&self) -> usize {
        self.node
    }

    /// Whether (sender, seq) has arrived (out-of-range: no).
    fn has(&self, sender: u32, seq: u32) -> bool {
        if sender >= self.senders || seq >= self.messages {
            return false;
        }
        let word = sender as usize * self.words_per_sender + (seq / 64) as usize;
        self.seen[word] & (1u64 << (seq % 64)) != 0
    }

    /// One delivery. Out-of-range sender/seq counts as unexpected (not a panic).
    ///
    /// Only the first delivery of a (sender, seq) takes part in the order
    /// checks and the fingerprint; repeats are counted as duplicates and
    /// otherwise ignored, so a duplicate does not also show up as disorder.
    pub fn record(&mut self, sender: u32, seq: u32) {
        if sender >= self.senders || seq >= self.messages || Some(sender) == self.me {
            self.unexpected += 1;
            return;
        }
        let word = sender as usize * self.words_per_sender + (seq / 64) as usize;
        let bit = 1u64 << (seq % 64);
        if self.seen[word] & bit != 0 {
            self.duplicated += 1;
            return;
        }
        self.seen[word] |= bit;
        self.delivered += 1;
        // Increasing, not consecutive: a lost message is loss, not disorder.
        let next = &mut self.next_seq[sender as usize];
        if seq < *next {
            self.in_order = false;
        } else {
            *next = seq + 1;
        }
        self.fingerprint = chain(self.fingerprint, sender, seq);
        if let Some(sequence) = &mut self.sequence {
            sequence.push((sender, seq));
        }
    }

    /// This receiver's sender id, if it is a sender.
    // Read only by the tests, like `unexpected` and `fingerprint`:
    // `combine` reads the fields themselves.
    #[cfg(test)]
    pub fn me(&self) -> Option<u32> {
        self.me
    }

    /// Deliveries this receiver should get: every message of every sender
    /// but itself.
    pub fn expected(&self) -> u64 {
        let from = self.senders - u32::from(self.me.is_some());
        u64::from(from) * u64::from(self.messages)
    }

    /// Distinct expected messages received.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Repeats of a (sender, seq) already received.
    pub fn duplicated(&self) -> u64 {
        self.duplicated
    }

    /// Out-of-range messages and this receiver's own.
    #[cfg(test)]
    pub fn unexpected(&self) -> u64 {
        self.unexpected
    }

    /// Expected (all senders except me, all seqs) minus delivered.
    pub fn lost(&self) -> u64 {
        self.expected() - self.delivered
    }

    /// Every sender's messages arrived in increasing seq (gaps allowed).
    pub fn in_sender_order(&self) -> bool {
        self.in_order
    }

    /// Hash chain over the order of first deliveries.
    #[cfg(test)]
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The first deliveries in arrival order, if this tally keeps them.
    pub fn sequence(&self) -> Option<&[(u32, u32)]> {
        self.sequence.as_deref()
    }

    /// The server closed this receiver's connection. The first reason stays.
    pub fn disconnect(&mut self, reason: impl Into<String>) {
        self.disconnected.get_or_insert_with(|| reason.into());
    }

    /// Why the server closed the connection, if it did.
    pub fn disconnected(&self) -> Option<&str> {
        self.disconnected.as_deref()
    }
}

/// Totals over all receivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub offered: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Every receiver was checked, and every one agrees with the network's
    /// order: `order_violations` and `order_unverified` are both zero.
    pub order_consistent: bool,
    /// Whether the order could be checked at all (see [`combine`]); when
    /// not, `order_consistent` is false.
    pub order_checked: bool,
    /// Receivers shown to have seen another order than the network's.
    pub order_violations: usize,
    /// Receivers whose order could not be compared with the network's.
    pub order_unverified: usize,
    /// Receivers the server disconnected.
    pub disconnected: usize,
    /// The first [`MAX_REASONS`] distinct reasons, in order of first
    /// appearance, each with the receivers that gave it.
    pub disconnect_reasons: Vec<DisconnectReason>,
    /// The same counts per node, indexed by [`Tally::node`]: one entry per
    /// node up to the highest that had a client.
    pub nodes: Vec<NodeTotals>,
}

/// What the receivers on one node got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeTotals {
    pub clients: usize,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub disconnected: usize,
    pub order_violations: usize,
    pub order_unverified: usize,
}

/// What the order check says of one receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Its order is the network's (on the messages it got).
    Agrees,
    /// It saw another order: a sender's messages out of sequence, or two
    /// messages the other way round from the network's order.
    Disagrees,
    /// There was nothing to compare it with.
    Unverified,
}

/// Sums the tallies of one run and checks their orders against the
/// network's, per receiver.
///
/// **The network's order** is the sequence of one *reference*: a receiver
/// that is not a sender, kept its sequence, got every message and got each
/// sender's in increasing order. When several references saw different
/// orders, the one most receivers agree with is the network's (a
/// disagreement then shows as the receivers that saw the other orders, not
/// as everyone but one node). Every receiver, connected or not, is then
/// checked against it on what it got: the reference's sequence without the
/// receiver's own messages and without those it never received must equal
/// the receiver's sequence, or, if it kept none, the receiver's fingerprint
/// (exact up to a hash collision, since the chain is a function of the
/// sequence alone). A receiver whose own sender's messages arrived out of
/// sequence disagrees whatever else it saw.
///
/// Without a reference:
/// - if there are non-sender receivers, those that got everything are
///   compared by fingerprint: the fingerprint most of them share agrees,
///   any other disagrees; everyone else (senders, receivers with loss) is
///   unverified;
/// - if every receiver is a sender (as many senders as clients), each
///   keeps its sequence, and two senders B and C are compared with both
///   their messages removed. The comparison is made against at most three
///   "witness" senders with distinct ids (which is as good as all pairs:
///   see `senders_agree`); the witness most senders agree with decides
///   which witnesses are right, and a sender disagreeing with any of those
///   disagrees. A sender that kept no sequence is unverified.
///
/// `order_consistent` is true only when no receiver disagrees and none is
/// unverified; `order_checked` is false when some receiver is unverified
/// and none was seen to disagree. Tallies are assumed to come from one run
/// (same senders and messages).
pub fn combine(tallies: &[Tally]) -> Totals {
    let verdicts = order_verdicts(tallies);
    let count = |v: Verdict| verdicts.iter().filter(|&&x| x == v).count();
    let (violations, unverified) = (count(Verdict::Disagrees), count(Verdict::Unverified));
    let mut totals = Totals {
        offered: 0,
        delivered: 0,
        lost: 0,
        duplicated: 0,
        order_consistent: violations == 0 && unverified == 0,
        order_checked: violations > 0 || unverified == 0,
        order_violations: violations,
        order_unverified: unverified,
        disconnected: 0,
        disconnect_reasons: Vec::new(),
        nodes: Vec::new(),
    };
    for (tally, verdict) in tallies.iter().zip(&verdicts) {
        totals.offered += tally.expected();
        totals.delivered += tally.delivered();
        totals.lost += tally.lost();
        totals.duplicated += tally.duplicated();
        if totals.nodes.len() <= tally.node {
            totals.nodes.resize(tally.node + 1, NodeTotals::default());
        }
        let node = &mut totals.nodes[tally.node];
        node.clients += 1;
        node.delivered += tally.delivered();
        node.lost += tally.lost();
        node.duplicated += tally.duplicated();
        node.order_violations += usize::from(*verdict == Verdict::Disagrees);
        node.order_unverified += usize::from(*verdict == Verdict::Unverified);
        let Some(reason) = tally.disconnected() else { continue };
        totals.disconnected += 1;
        node.disconnected += 1;
        let reasons = &mut totals.disconnect_reasons;
        match reasons.iter().position(|r| r.reason == reason) {
            Some(i) => reasons[i].clients += 1,
            None if reasons.len() < MAX_REASONS => {
                reasons.push(DisconnectReason { reason: reason.to_string(), clients: 1 })
            }
            None => {}
        }
    }
    totals
}

/// One verdict per tally, in order (see [`combine`]).
fn order_verdicts(tallies: &[Tally]) -> Vec<Verdict> {
    // References with distinct orders: equal fingerprints give equal verdicts.
    let mut references: Vec<(u64, &[Message])> = Vec::new();
    for tally in tallies {
        if tally.me.is_none()
            && tally.lost() == 0
            && tally.in_sender_order()
            && let Some(sequence) = tally.sequence()
            && references.iter().all(|r| r.0 != tally.fingerprint)
        {
            references.push((tally.fingerprint, sequence));
        }
    }
    let agreeing = |verdicts: &[Verdict]| verdicts.iter().filter(|&&v| v == Verdict::Agrees).count();
    let mut best: Option<Vec<Verdict>> = None;
    for (_, reference) in references {
        let verdicts = against_reference(tallies, reference);
        if best.as_ref().is_none_or(|b| agreeing(&verdicts) > agreeing(b)) {
            best = Some(verdicts);
        }
    }
    if let Some(verdicts) = best {
        return verdicts;
    }
    if tallies.iter().any(|t| t.me.is_none()) { by_fingerprint(tallies) } else { among_senders(tallies) }
}

/// Every tally against `reference`, a whole order of every message.
fn against_reference(tallies: &[Tally], reference: &[Message]) -> Vec<Verdict> {
    // The reference without one sender's messages, as a fingerprint: what
    // a receiver that got everything must have, computed once per sender.
    let mut whole: Vec<(Option<u32>, u64)> = Vec::new();
    tallies
        .iter()
        .map(|tally| {
            if !tally.in_sender_order() {
                return Verdict::Disagrees;
            }
            let complete = tally.lost() == 0;
            let expected =
                reference.iter().filter(|m| Some(m.0) != tally.me && (complete || tally.has(m.0, m.1)));
            let agrees = match tally.sequence() {
                Some(sequence) => sequence.iter().eq(expected),
                None if complete => {
                    let fingerprint = match whole.iter().find(|w| w.0 == tally.me) {
                        Some(&(_, fingerprint)) => fingerprint,
                        None => {
                            let fingerprint = fingerprint_of(expected);
                            whole.push((tally.me, fingerprint));
                            fingerprint
                        }
                    };
                    tally.fingerprint == fingerprint
                }
                None => tally.fingerprint == fingerprint_of(expected),
            };
            if agrees { Verdict::Agrees } else { Verdict::Disagrees }
        })
        .collect()
}

/// Without a reference: non-senders that got everything, by fingerprint
/// (the most common one agrees); the rest cannot be checked.
fn by_fingerprint(tallies: &[Tally]) -> Vec<Verdict> {
    let whole = |t: &&Tally| t.me.is_none() && t.lost() == 0 && t.in_sender_order();
    let mut counts: Vec<(u64, usize)> = Vec::new();
    for tally in tallies.iter().filter(whole) {
        match counts.iter_mut().find(|c| c.0 == tally.fingerprint) {
            Some(c) => c.1 += 1,
            None => counts.push((tally.fingerprint, 1)),
        }
    }
    // The first of the most common, so that a tie is decided by position.
    let common = counts.iter().fold(None, |best: Option<(u64, usize)>, &c| match best {
        Some(b) if b.1 >= c.1 => Some(b),
        _ => Some(c),
    });
    tallies
        .iter()
        .map(|tally| {
            if !tally.in_sender_order() {
                Verdict::Disagrees
            } else if !whole(&tally) {
                Verdict::Unverified
            } else if common.is_some_and(|c| c.0 == tally.fingerprint) {
                Verdict::Agrees
            } else {
                Verdict::Disagrees
            }
        })
        .collect()
}

/// Every receiver a sender: compared with up to three witnesses (see
/// [`combine`] and `senders_agree`).
fn among_senders(tallies: &[Tally]) -> Vec<Verdict> {
    let mut witnesses: Vec<Witness> = Vec::with_capacity(3);
    for tally in tallies {
        if let Some(sequence) = tally.sequence()
            && witnesses.len() < 3
            && witnesses.iter().all(|w| w.0 != tally.me)
        {
            witnesses.push((tally.me, sequence));
        }
    }
    let agrees = |tally: &Tally, (id, witness): Witness| {
        tally.sequence().is_some_and(|sequence| equal_without(sequence, witness, [tally.me, id]))
    };
    // The witness most senders agree with, and the witnesses that agree with it.
    let support = |&w: &Witness| tallies.iter().filter(|t| agrees(t, w)).count();
    let best = witnesses.iter().fold(None, |best: Option<(Witness, usize)>, w| {
        let n = support(w);
        match best {
            Some(b) if b.1 >= n => Some(b),
            _ => Some((*w, n)),
        }
    });
    let trusted: Vec<Witness> = match best {
        Some(((id, sequence), _)) => witnesses
            .iter()
            .copied()
            .filter(|&(wid, witness)| equal_without(witness, sequence, [wid, id]))
            .collect(),
        None => Vec::new(),
    };
    tallies
        .iter()
        .map(|tally| {
            if !tally.in_sender_order() {
                Verdict::Disagrees
            } else if tally.sequence().is_none() || trusted.is_empty() {
                Verdict::Unverified
            } else if trusted.iter().all(|&w| agrees(tally, w)) {
                Verdict::Agrees
            } else {
                Verdict::Disagrees
            }
        })
        .collect()
}

/// Whether `a` and `b` are equal once messages from the senders in `drop`
/// are removed from both.
fn equal_without(a: &[Message], b: &[Message], drop: [Option<u32>; 2]) -> bool {
    let keep = |m: &&Message| !drop.contains(&Some(m.0));
    a.iter().filter(keep).eq(b.iter().filter(keep))
}

/// Whether every pair of sender receivers B, C agrees once both their
/// messages are removed, checked against at most three witnesses.
///
/// Why three witnesses suffice: two sequences without repeats are equal iff,
/// for every pair of senders X, Y (X = Y allowed), their projections onto
/// X's and Y's messages are equal (X = Y gives equal sets and per-sender
/// order; X ≠ Y gives the relative order of every cross pair). For B vs C
/// only X, Y outside {b, c} matter. Among three witnesses with distinct ids
/// at least one, W, has an id outside {X, Y}. B agreeing with W (both
/// stripped of {b, w}) keeps X's and Y's messages, so B and W project the
/// same onto X ∪ Y; likewise C and W; hence B and C do. With fewer than
/// three distinct ids every witness id is already outside {X, Y}, since X
/// and Y are neither b nor c. The property tests in tests.rs check this
/// against the all-pairs comparison, and [`among_senders`]' counts
/// against this.
#[cfg(test)]
fn senders_agree(senders: &[&Tally]) -> Option<bool> {
    if senders.len() < 2 {
        return Some(true);
    }
    let sequences = senders.iter().map(|t| t.sequence().map(|s| (t.me, s))).collect::<Option<Vec<_>>>()?;
    let mut witnesses: Vec<(Option<u32>, &[Message])> = Vec::with_capacity(3);
    for &(id, sequence) in &sequences {
        if witnesses.len() < 3 && witnesses.iter().all(|w| w.0 != id) {
            witnesses.push((id, sequence));
        }
    }
    Some(sequences.iter().all(|&(id, sequence)| {
        witnesses.iter().all(|&(wid, witness)| equal_without(sequence, witness, [id, wid]))
    }))
}

/// A latency histogram in microseconds, 1 µs .. 120 s, 3 significant digits.
///
/// Values above 120 s must be recorded with `saturating_record`; a delivery
/// that late is a failed run anyway.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("constant bounds are valid")
}

/// Percentiles of a histogram made by [`new_histogram`]; all zero when empty.
pub fn latency_summary(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    Latency {
        count: h.len(),
        p50_us: h.value_at_quantile(0.5),
        p90_us: h.value_at_quantile(0.9),
        p99_us: h.value_at_quantile(0.99),
        p999_us: h.value_at_quantile(0.999),
        max_us: h.max(),
        mean_us: h.mean(),
    }
}

#[cfg(test)]
mod tests;

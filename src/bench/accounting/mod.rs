//! Delivery accounting for `chatter bench`: what each receiving client got
//! (loss, duplicates, stray messages, per-sender order), whether all the
//! receivers saw one consistent order, and the latency histogram.
//!
//! Why it is shaped so: a run has N receivers each expecting up to S × M
//! messages, so per-receiver state must stay small. Presence is one bit per
//! (sender, seq) and per-sender order one `u32`, which is enough for loss,
//! duplicates and "each sender's messages arrived in increasing order".
//! Cross-receiver order needs the actual sequences, but keeping S × M pairs
//! for every receiver would be N times the message volume; instead every
//! receiver folds its order of first deliveries into a 64-bit hash chain and
//! only the senders and one reference receiver keep the full sequence. A
//! sender never receives its own messages, so its order cannot be compared
//! to anyone else's by fingerprint; it is compared to the reference with its
//! own messages removed. See [`combine`] for exactly what is checked.
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
        };
        // A healthy run fills the sequence exactly, so reserving up front
        // avoids the doubling reallocations (and their transient 2× peak).
        if keep_sequence {
            tally.sequence = Some(Vec::with_capacity(usize::try_from(tally.expected()).unwrap_or(0)));
        }
        tally
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
    /// Among the receivers that stayed connected: verified to agree.
    pub order_consistent: bool,
    /// Whether the order could be checked at all (see [`combine`]); when
    /// not, `order_consistent` is false.
    pub order_checked: bool,
    /// Receivers the server disconnected.
    pub disconnected: usize,
    /// The first [`MAX_REASONS`] distinct reasons, in order of first
    /// appearance, each with the receivers that gave it.
    pub disconnect_reasons: Vec<DisconnectReason>,
}

/// Sums the tallies of one run and decides whether their orders agree.
///
/// Counts include every receiver; the order is checked among the receivers
/// that stayed connected, since a disconnected one holds only a prefix and
/// its loss is already counted. `order_consistent` is true only when all of
/// these were verified for them:
///
/// 1. every tally is [`in_sender_order`](Tally::in_sender_order);
/// 2. all non-sender receivers (`me == None`) have equal fingerprints, i.e.
///    the same sequence of first deliveries;
/// 3. if some non-sender keeps its sequence, the first such is the
///    reference, and every sender receiver's sequence equals the reference
///    with that sender's own messages removed. A sender that kept no
///    sequence is checked by comparing its fingerprint with the fingerprint
///    recomputed from that filtered reference, which is exact (up to hash
///    collision) because the chain is a function of the sequence alone;
/// 4. if there are no non-sender receivers, every pair of sender receivers
///    has equal sequences once both of their messages are removed. This is
///    checked against at most three "witness" senders with distinct ids
///    rather than all pairs, which is equivalent (see `senders_agree`) and
///    keeps the cost linear in the number of senders.
///
/// What cannot be verified is not claimed consistent, since the flag claims
/// agreement; `order_checked` is then false, unless a disagreement was
/// found in what could be checked: with more than one sender receiver and
/// no non-senders, a
/// sender receiver without a sequence (there is nothing its fingerprint
/// could be recomputed from); and sender receivers alongside non-sender
/// receivers none of which kept a sequence (a non-sender's fingerprint
/// cannot have a sender's messages removed).
///
/// Agreement means equal sequences of first deliveries, so a receiver that
/// lost messages another one got does not agree with it: order consistency
/// is only meaningful, and only reported true, for runs without loss among
/// the receivers compared. Tallies are assumed to come from one run (same
/// senders and messages).
pub fn combine(tallies: &[Tally]) -> Totals {
    let connected: Vec<&Tally> = tallies.iter().filter(|t| t.disconnected.is_none()).collect();
    let order = order_consistent(&connected);
    let mut totals = Totals {
        offered: 0,
        delivered: 0,
        lost: 0,
        duplicated: 0,
        order_consistent: order == Some(true),
        order_checked: order.is_some(),
        disconnected: tallies.len() - connected.len(),
        disconnect_reasons: Vec::new(),
    };
    for tally in tallies {
        totals.offered += tally.expected();
        totals.delivered += tally.delivered();
        totals.lost += tally.lost();
        totals.duplicated += tally.duplicated();
        let Some(reason) = tally.disconnected() else { continue };
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

/// `Some(agree)`, or `None` when nothing disagrees but agreement cannot be
/// shown (see [`combine`]).
fn order_consistent(tallies: &[&Tally]) -> Option<bool> {
    if !tallies.iter().all(|t| t.in_sender_order()) {
        return Some(false);
    }
    let (listeners, senders): (Vec<&Tally>, Vec<&Tally>) = tallies.iter().partition(|t| t.me.is_none());
    if let Some(first) = listeners.first()
        && listeners.iter().any(|t| t.fingerprint != first.fingerprint)
    {
        return Some(false);
    }
    match listeners.iter().find_map(|t| t.sequence()) {
        Some(reference) => Some(senders.iter().all(|t| agrees_with_reference(t, reference))),
        None if senders.is_empty() => Some(true),
        None if !listeners.is_empty() => None,
        None => senders_agree(&senders),
    }
}

/// Whether sender receiver `tally` saw `reference` minus its own messages.
fn agrees_with_reference(tally: &Tally, reference: &[Message]) -> bool {
    let expected = reference.iter().filter(|m| Some(m.0) != tally.me);
    match tally.sequence() {
        Some(sequence) => sequence.iter().eq(expected),
        None => tally.fingerprint == fingerprint_of(expected),
    }
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
/// and Y are neither b nor c. The property test in tests.rs checks this against
/// the all-pairs comparison.
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

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
/// and Y are neither b nor c. The property test below checks this against
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A tally that received `order` (first deliveries only, as given).
    fn tally(senders: u32, messages: u32, me: Option<u32>, keep: bool, order: &[(u32, u32)]) -> Tally {
        let mut t = Tally::new(senders, messages, me, keep);
        for &(s, q) in order {
            t.record(s, q);
        }
        t
    }

    /// Every message of every sender, interleaved round-robin: the order a
    /// fair server would produce.
    fn round_robin(senders: u32, messages: u32) -> Vec<(u32, u32)> {
        (0..messages).flat_map(|q| (0..senders).map(move |s| (s, q))).collect()
    }

    fn without(order: &[(u32, u32)], sender: u32) -> Vec<(u32, u32)> {
        order.iter().copied().filter(|m| m.0 != sender).collect()
    }

    #[test]
    fn complete_run_has_no_loss_or_duplicates() {
        let order = round_robin(3, 5);
        let tallies = [
            tally(3, 5, None, true, &order),
            tally(3, 5, None, false, &order),
            tally(3, 5, Some(0), true, &without(&order, 0)),
            tally(3, 5, Some(1), true, &without(&order, 1)),
            tally(3, 5, Some(2), true, &without(&order, 2)),
        ];
        for t in &tallies {
            assert_eq!((t.lost(), t.duplicated(), t.unexpected()), (0, 0, 0));
            assert!(t.in_sender_order());
        }
        let totals = combine(&tallies);
        assert_eq!(
            totals,
            Totals {
                offered: 2 * 15 + 3 * 10,
                delivered: 60,
                lost: 0,
                duplicated: 0,
                order_consistent: true,
                order_checked: true,
                disconnected: 0,
                disconnect_reasons: Vec::new(),
            }
        );
    }

    #[test]
    fn a_gap_is_lost_but_not_disorder() {
        let mut order = round_robin(2, 4);
        order.retain(|&m| m != (1, 2));
        let t = tally(2, 4, None, false, &order);
        assert_eq!((t.delivered(), t.lost()), (7, 1));
        assert!(t.in_sender_order());
        let totals = combine(&[t]);
        assert_eq!((totals.offered, totals.lost), (8, 1));
    }

    #[test]
    fn a_repeat_is_duplicated_and_does_not_change_the_fingerprint() {
        let order = round_robin(2, 3);
        let clean = tally(2, 3, None, false, &order);
        let mut t = tally(2, 3, None, false, &order);
        t.record(0, 1);
        t.record(0, 1);
        assert_eq!((t.delivered(), t.duplicated(), t.lost()), (6, 2, 0));
        assert!(t.in_sender_order());
        assert_eq!(t.fingerprint(), clean.fingerprint());
        assert_eq!(combine(&[t, clean]).duplicated, 2);
    }

    #[test]
    fn own_and_out_of_range_messages_are_unexpected() {
        let mut t = Tally::new(2, 3, Some(1), true);
        t.record(1, 0);
        t.record(2, 0);
        t.record(0, 3);
        t.record(u32::MAX, u32::MAX);
        assert_eq!((t.unexpected(), t.delivered(), t.lost()), (4, 0, 3));
        assert_eq!(t.sequence(), Some(&[][..]));
        // A `me` naming no sender is just a receiver.
        let t = Tally::new(2, 3, Some(5), false);
        assert_eq!((t.me(), t.expected()), (None, 6));
    }

    #[test]
    fn non_senders_with_different_orders_are_inconsistent() {
        let a = round_robin(2, 2);
        let b = vec![(1, 0), (0, 0), (0, 1), (1, 1)];
        let tallies = [tally(2, 2, None, true, &a), tally(2, 2, None, false, &b)];
        assert!(tallies.iter().all(Tally::in_sender_order));
        assert!(!combine(&tallies).order_consistent);
    }

    #[test]
    fn sender_matches_reference_without_its_own_messages() {
        let order = round_robin(3, 4);
        let reference = tally(3, 4, None, true, &order);
        let with_sequence = tally(3, 4, Some(1), true, &without(&order, 1));
        let fingerprint_only = tally(3, 4, Some(2), false, &without(&order, 2));
        assert!(combine(&[reference.clone(), with_sequence, fingerprint_only]).order_consistent);

        // Sender 1 sees 0's and 2's messages in another relative order.
        let mut swapped = without(&order, 1);
        swapped.swap(0, 1);
        let bad = tally(3, 4, Some(1), true, &swapped);
        assert!(bad.in_sender_order());
        assert!(!combine(&[reference.clone(), bad]).order_consistent);
        let bad = tally(3, 4, Some(1), false, &swapped);
        assert!(!combine(&[reference, bad]).order_consistent);
    }

    #[test]
    fn reordering_inside_one_sender_is_inconsistent() {
        let order = vec![(0, 0), (0, 2), (0, 1)];
        let t = tally(1, 3, None, true, &order);
        assert!(!t.in_sender_order());
        assert_eq!(t.lost(), 0);
        assert!(!combine(&[t]).order_consistent);
    }

    #[test]
    fn all_senders_compare_pairwise() {
        let order = round_robin(4, 3);
        let all: Vec<Tally> = (0..4).map(|me| tally(4, 3, Some(me), true, &without(&order, me))).collect();
        assert!(combine(&all).order_consistent);

        // Sender 3 sees (1, 0) before (0, 0); sender 2 sees them the other
        // way round. (With only three senders every pair comparison leaves
        // a single sender's messages, so there has to be a fourth.)
        let mut bad = all.clone();
        let mut view = without(&order, 3);
        view.swap(0, 1);
        bad[3] = tally(4, 3, Some(3), true, &view);
        assert!(bad[3].in_sender_order());
        assert!(!combine(&bad).order_consistent);

        // Without a reference, a sender's fingerprint has nothing to be
        // compared to, so it cannot be shown consistent.
        let mut unverifiable = all.clone();
        unverifiable[1] = tally(4, 3, Some(1), false, &without(&order, 1));
        let totals = combine(&unverifiable);
        assert!(!totals.order_consistent && !totals.order_checked);
        assert!(combine(&bad).order_checked);
    }

    #[test]
    fn senders_without_any_reference_sequence_are_unverifiable() {
        let order = round_robin(2, 2);
        let listener = tally(2, 2, None, false, &order);
        let sender = tally(2, 2, Some(0), true, &without(&order, 0));
        assert!(combine(std::slice::from_ref(&listener)).order_consistent);
        let totals = combine(&[listener, sender]);
        assert!(!totals.order_consistent && !totals.order_checked);
        assert!(combine(&[]).order_consistent);
    }

    #[test]
    fn disconnected_receivers_are_counted_with_their_reasons_and_their_loss() {
        let order = round_robin(2, 4);
        let mut cut_short = tally(2, 4, None, false, &order[..3]);
        cut_short.disconnect("ERROR :Closing Link: 127.0.0.1 (SendQ exceeded)");
        // Only the first reason a receiver gives counts.
        cut_short.disconnect("connection reset");
        let mut reset = tally(2, 4, Some(0), false, &[]);
        reset.disconnect("connection reset");
        let mut also_reset = tally(2, 4, None, false, &[]);
        also_reset.disconnect("connection reset");
        let tallies = [tally(2, 4, None, true, &order), cut_short, reset, also_reset];
        let totals = combine(&tallies);
        assert_eq!((totals.offered, totals.delivered, totals.lost), (8 + 8 + 4 + 8, 11, 17));
        assert_eq!(totals.disconnected, 3);
        assert_eq!(
            totals.disconnect_reasons,
            [
                DisconnectReason {
                    reason: "ERROR :Closing Link: 127.0.0.1 (SendQ exceeded)".into(),
                    clients: 1
                },
                DisconnectReason { reason: "connection reset".into(), clients: 2 },
            ]
        );
        // The receivers that stayed agree; the prefixes of those that left
        // are loss, not disorder.
        assert!(totals.order_consistent);
    }

    #[test]
    fn only_the_first_few_reasons_are_kept_but_all_are_counted() {
        let tallies: Vec<Tally> = (0..MAX_REASONS + 2)
            .map(|i| {
                let mut t = tally(1, 1, None, false, &[]);
                t.disconnect(format!("reason {i}"));
                t
            })
            .collect();
        let totals = combine(&tallies);
        assert_eq!(totals.disconnected, MAX_REASONS + 2);
        let kept: Vec<&str> = totals.disconnect_reasons.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(kept, ["reason 0", "reason 1", "reason 2"]);
    }

    #[test]
    fn a_disconnected_reference_leaves_the_senders_unverified() {
        let order = round_robin(2, 2);
        let mut reference = tally(2, 2, None, true, &order[..1]);
        reference.disconnect("connection reset");
        let sender = tally(2, 2, Some(0), true, &without(&order, 0));
        let listener = tally(2, 2, None, false, &order);
        let totals = combine(&[reference.clone(), sender.clone(), listener.clone()]);
        assert!(!totals.order_consistent && !totals.order_checked);
        // With a second reference that stayed, the check goes through.
        let second = tally(2, 2, None, true, &order);
        assert!(combine(&[reference, second, sender, listener]).order_consistent);
    }

    #[test]
    fn latency_summary_of_one_to_a_thousand() {
        let mut h = new_histogram();
        for us in 1..=1000 {
            h.record(us).unwrap();
        }
        let l = latency_summary(&h);
        assert_eq!(
            l,
            Latency {
                count: 1000,
                p50_us: 500,
                p90_us: 900,
                p99_us: 990,
                p999_us: 999,
                max_us: 1000,
                mean_us: 500.5
            }
        );
        assert_eq!(latency_summary(&new_histogram()), Latency::default());
        // The top of the range is still held at 3 significant digits.
        h.record(120_000_000).unwrap();
        assert!(h.max().abs_diff(120_000_000) <= 120_000);
    }

    fn all_pairs_agree(senders: &[&Tally]) -> bool {
        senders.iter().all(|b| {
            senders
                .iter()
                .all(|c| equal_without(b.sequence().unwrap(), c.sequence().unwrap(), [b.me(), c.me()]))
        })
    }

    proptest! {
        #[test]
        fn witnesses_decide_like_all_pairs(
            (senders, messages, order, swaps) in (1u32..=5, 1u32..=3).prop_flat_map(|(s, m)| {
                let all: Vec<(u32, u32)> = (0..s).flat_map(|x| (0..m).map(move |q| (x, q))).collect();
                let swaps = proptest::collection::vec(proptest::option::weighted(0.3, 0usize..16), s as usize);
                (Just(s), Just(m), Just(all).prop_shuffle(), swaps)
            })
        ) {
            let tallies: Vec<Tally> = (0..senders)
                .zip(&swaps)
                .map(|(me, swap)| {
                    let mut view = without(&order, me);
                    if let Some(i) = swap
                        && view.len() >= 2
                    {
                        let i = i % (view.len() - 1);
                        view.swap(i, i + 1);
                    }
                    tally(senders, messages, Some(me), true, &view)
                })
                .collect();
            let refs: Vec<&Tally> = tallies.iter().collect();
            prop_assert_eq!(senders_agree(&refs), Some(all_pairs_agree(&refs)));
        }
    }
}

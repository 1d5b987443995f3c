//! Tests of the accounting on hand-made deliveries: loss, duplicates and
//! order per receiver, agreement with the network's order across receivers
//! and nodes (counted, and by property against a direct comparison and an
//! all-pairs check), disconnects, and the latency summary.

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
            order_violations: 0,
            order_unverified: 0,
            disconnected: 0,
            disconnect_reasons: Vec::new(),
            nodes: vec![NodeTotals { clients: 5, delivered: 60, ..NodeTotals::default() }],
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
    let totals = combine(&tallies);
    assert!(!totals.order_consistent && totals.order_checked);
    // One against one: the reference's order is the network's.
    assert_eq!((totals.order_violations, totals.order_unverified), (1, 0));
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
    let totals = combine(&[t]);
    assert!(!totals.order_consistent);
    assert_eq!(totals.order_violations, 1);
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
    let totals = combine(&bad);
    assert!(!totals.order_consistent);
    // The witnesses (senders 0, 1, 2) agree with one another, so the
    // network's order is theirs and sender 3 alone saw another.
    assert_eq!(totals.order_violations, 1);

    // Without a reference, a sender's fingerprint has nothing to be
    // compared to, so it cannot be shown consistent.
    let mut unverifiable = all.clone();
    unverifiable[1] = tally(4, 3, Some(1), false, &without(&order, 1));
    let totals = combine(&unverifiable);
    assert!(!totals.order_consistent && !totals.order_checked);
    assert_eq!((totals.order_violations, totals.order_unverified), (0, 1));
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
            DisconnectReason { reason: "ERROR :Closing Link: 127.0.0.1 (SendQ exceeded)".into(), clients: 1 },
            DisconnectReason { reason: "connection reset".into(), clients: 2 },
        ]
    );
    // Those that left are checked on what they got: a prefix of the
    // network's order is loss, not disorder.
    assert!(totals.order_consistent);
    assert_eq!((totals.order_violations, totals.order_unverified), (0, 0));
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

#[test]
fn violations_are_counted_against_the_order_most_receivers_saw() {
    let order = round_robin(3, 4);
    let mut other = order.clone();
    other.swap(0, 1);
    // The first reference saw another order than everyone else, so the
    // network's order is the second reference's, and the first is the
    // one violation, with the listener that saw what it saw.
    let tallies = [
        tally(3, 4, None, true, &other),
        tally(3, 4, None, true, &order),
        tally(3, 4, None, false, &order),
        tally(3, 4, None, false, &order),
        tally(3, 4, None, false, &other),
        tally(3, 4, Some(0), true, &without(&order, 0)),
        tally(3, 4, Some(1), false, &without(&order, 1)),
    ];
    let totals = combine(&tallies);
    assert!(!totals.order_consistent && totals.order_checked);
    assert_eq!((totals.order_violations, totals.order_unverified), (2, 0));
}

#[test]
fn loss_is_not_disorder_but_disorder_with_loss_is() {
    let order = round_robin(2, 5);
    let mut gaps = order.clone();
    gaps.retain(|&m| m != (0, 1) && m != (1, 3));
    let mut swapped_with_gaps = gaps.clone();
    swapped_with_gaps.swap(2, 3);
    let mut sender_gaps = without(&order, 0);
    sender_gaps.remove(2);
    let tallies = [
        tally(2, 5, None, true, &order),
        tally(2, 5, None, false, &gaps),
        tally(2, 5, None, false, &swapped_with_gaps),
        tally(2, 5, Some(0), true, &sender_gaps),
    ];
    assert!(tallies[2].in_sender_order());
    let totals = combine(&tallies);
    assert_eq!(totals.lost, 2 + 2 + 1);
    assert_eq!((totals.order_violations, totals.order_unverified), (1, 0));
}

#[test]
fn a_disconnected_receiver_is_checked_on_what_it_got() {
    let order = round_robin(2, 4);
    let mut wrong = order[..4].to_vec();
    wrong.swap(0, 1);
    let mut left_early = tally(2, 4, None, false, &wrong);
    left_early.disconnect("connection reset");
    let totals = combine(&[tally(2, 4, None, true, &order), left_early]);
    assert_eq!((totals.disconnected, totals.order_violations), (1, 1));
}

#[test]
fn totals_are_kept_per_node() {
    let order = round_robin(2, 3);
    let mut swapped = order.clone();
    swapped.swap(0, 1);
    let mut gone = tally(2, 3, None, false, &order[..2]).on_node(2);
    gone.disconnect("ERROR :Closing Link: 127.0.0.1 (Node lost)");
    let tallies = [
        tally(2, 3, Some(0), true, &without(&order, 0)).on_node(0),
        tally(2, 3, Some(1), true, &without(&order, 1)).on_node(1),
        tally(2, 3, None, true, &order).on_node(2),
        tally(2, 3, None, false, &swapped).on_node(0),
        gone,
    ];
    assert_eq!(tallies[4].node(), 2);
    let totals = combine(&tallies);
    assert_eq!(
        totals.nodes,
        [
            NodeTotals { clients: 2, delivered: 3 + 6, order_violations: 1, ..NodeTotals::default() },
            NodeTotals { clients: 1, delivered: 3, ..NodeTotals::default() },
            NodeTotals { clients: 2, delivered: 6 + 2, lost: 4, disconnected: 1, ..NodeTotals::default() },
        ]
    );
    assert_eq!((totals.order_violations, totals.disconnected), (1, 1));
}

#[test]
fn listeners_without_a_reference_are_compared_by_fingerprint() {
    let order = round_robin(2, 2);
    let mut other = order.clone();
    other.swap(0, 1);
    let mut lossy = order.clone();
    lossy.pop();
    let tallies = [
        tally(2, 2, None, false, &other),
        tally(2, 2, None, false, &order),
        tally(2, 2, None, false, &order),
        tally(2, 2, None, false, &lossy),
    ];
    let totals = combine(&tallies);
    assert!(!totals.order_consistent && totals.order_checked);
    assert_eq!((totals.order_violations, totals.order_unverified), (1, 1));
}

fn all_pairs_agree(senders: &[&Tally]) -> bool {
    senders.iter().all(|b| {
        senders.iter().all(|c| equal_without(b.sequence().unwrap(), c.sequence().unwrap(), [b.me(), c.me()]))
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
        let agree = all_pairs_agree(&refs);
        prop_assert_eq!(senders_agree(&refs), Some(agree));
        // The counts say the same: none disagrees exactly when all agree.
        let totals = combine(&tallies);
        let in_order = tallies.iter().all(Tally::in_sender_order);
        prop_assert_eq!(totals.order_violations == 0, agree && in_order);
        prop_assert_eq!(totals.order_consistent, agree && in_order);
    }

    /// Receivers spread over nodes, each losing what it likes, some seeing
    /// two neighbouring messages the other way round: exactly those are
    /// counted, wherever they are, loss or not.
    #[test]
    fn every_receiver_that_saw_another_order_is_counted(
        (senders, messages, order, receivers) in (1u32..=4, 1u32..=6).prop_flat_map(|(s, m)| {
            let all: Vec<(u32, u32)> = (0..s).flat_map(|x| (0..m).map(move |q| (x, q))).collect();
            let n = all.len();
            // Per receiver: its sender id (if any), which messages it gets,
            // whether it keeps its sequence, and a neighbour swap or none.
            let receiver = (
                proptest::option::weighted(0.4, 0..s),
                proptest::collection::vec(proptest::bool::weighted(0.8), n),
                any::<bool>(),
                proptest::option::weighted(0.3, 0usize..64),
            );
            // An interleaving of the senders: shuffled, then each sender's
            // messages renumbered in order, as any server keeps them.
            let interleaving = Just(all).prop_shuffle().prop_map(move |mut all| {
                let mut next = vec![0; s as usize];
                for m in &mut all {
                    m.1 = next[m.0 as usize];
                    next[m.0 as usize] += 1;
                }
                all
            });
            (Just(s), Just(m), interleaving, proptest::collection::vec(receiver, 1..12))
        })
    ) {
        // Two references that got everything in the network's order, and
        // more listeners that agree with them than there are receivers
        // below, so the network's order is known to be `order` (a crowd
        // of receivers that all made the same swap would otherwise outvote it).
        let mut tallies = vec![
            tally(senders, messages, None, true, &order).on_node(0),
            tally(senders, messages, None, true, &order).on_node(1),
        ];
        for _ in 0..=receivers.len() {
            tallies.push(tally(senders, messages, None, false, &order).on_node(2));
        }
        let mut expected = 0;
        for (i, (me, gets, keep, swap)) in receivers.into_iter().enumerate() {
            let mut view: Vec<(u32, u32)> =
                order.iter().zip(&gets).filter(|(m, got)| **got && Some(m.0) != me).map(|(m, _)| *m).collect();
            if let Some(at) = swap
                && view.len() >= 2
            {
                let at = at % (view.len() - 1);
                view.swap(at, at + 1);
                expected += 1;
            }
            tallies.push(tally(senders, messages, me, keep, &view).on_node(i % 3));
        }
        let totals = combine(&tallies);
        prop_assert_eq!(totals.order_violations, expected);
        prop_assert_eq!(totals.order_unverified, 0);
        prop_assert_eq!(totals.nodes.iter().map(|n| n.order_violations).sum::<usize>(), expected);
        prop_assert_eq!(totals.nodes.iter().map(|n| n.clients).sum::<usize>(), tallies.len());
    }
}

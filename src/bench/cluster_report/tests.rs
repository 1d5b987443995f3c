//! The cluster section and its cost model, on made-up runs.

use super::model::{costs, fit, model, predict};
use super::*;
use crate::bench::fixtures::{run, spec, sweep};
use crate::bench::results::{ClusterSpec, NodeResult, ProcessUsage, Usage};

fn flow(cpu: f64) -> Option<Usage> {
    Some(Usage { flow_cpu_secs: cpu, ..Usage::default() })
}

/// A flood run (10 × 1,000 messages: 10,000 events) of `nodes` nodes
/// (0: alone) with `spare` more, where each node with clients used
/// `node_cpu`, each spare `spare_cpu` and nats-server `nats_cpu`.
fn flood(
    clients: usize,
    nodes: usize,
    spare: usize,
    node_cpu: f64,
    spare_cpu: f64,
    nats_cpu: f64,
) -> RunResult {
    let mut s = spec("prethread", Some(1), clients, 0.0);
    let mut r;
    if nodes == 0 {
        r = run(s, 1_000_000.0, 5000);
        r.server = flow(node_cpu);
    } else {
        s.cluster = Some(ClusterSpec { nodes, spare_nodes: spare });
        r = run(s, 300_000.0, 90_000);
        r.order_violations = Some(0);
        r.order_unverified = Some(0);
        r.nodes = (0..nodes + spare)
            .map(|i| NodeResult {
                name: format!("n{}", i + 1),
                clients: if i < nodes { clients / nodes } else { 0 },
                server: flow(if i < nodes { node_cpu } else { spare_cpu }),
                ..NodeResult::default()
            })
            .collect();
        r.other_processes = vec![ProcessUsage { name: "nats-server".into(), usage: flow(nats_cpu).unwrap() }];
    }
    r
}

fn cluster(runs: Vec<RunResult>) -> Sweep {
    Sweep { runs, notes: "Notes by hand.".into(), ..sweep() }
}

#[test]
fn lines_are_fitted_through_the_points() {
    let line = fit(&[(1.0, 3.0), (2.0, 5.0), (3.0, 7.0)]).unwrap();
    assert!((line.at0 - 1.0).abs() < 1e-12 && (line.slope - 2.0).abs() < 1e-12);
    assert_eq!(fit(&[(1.0, 3.0)]), None);
    assert_eq!(fit(&[(1.0, 3.0), (1.0, 4.0)]), None);
    assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    assert_eq!(median(Vec::new()), None);
}

#[test]
fn costs_come_from_the_spare_node_the_busy_node_and_nats() {
    // Spare node: A(M) = 10 µs + 10 ns × M per event: 0.11 s at M = 100
    // (10,000 events), 0.2 s at M = 1,000. Busy node: A(M) + P + F × (M − 1)
    // with P = 20 µs, F = 100 ns. nats-server: 5 µs + 1 µs × k.
    let a = |m: f64| 1e-5 + 1e-8 * m;
    let busy = |m: f64| a(m) + 2e-5 + 1e-7 * (m - 1.0);
    let x = |k: f64| 5e-6 + 1e-6 * k;
    let runs = vec![
        flood(100, 1, 1, busy(100.0) * 1e4, a(100.0) * 1e4, x(2.0) * 1e4),
        flood(1000, 1, 1, busy(1000.0) * 1e4, a(1000.0) * 1e4, x(2.0) * 1e4),
        flood(1000, 1, 0, 1.0, 0.0, x(1.0) * 1e4),
        flood(1000, 3, 0, 1.0, 0.0, x(3.0) * 1e4),
        flood(100, 0, 0, 0.2, 0.0, 0.0),
        flood(1000, 0, 0, 1.1, 0.0, 0.0),
    ];
    let measured = cluster(runs);
    let costs = costs(&measured).unwrap();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b.abs().max(1e-6);
    assert!(close(costs.apply.at0, 1e-5) && close(costs.apply.slope, 1e-8), "{costs:?}");
    assert!(close(costs.own.at0, 2e-5) && close(costs.own.slope, 1e-7), "{costs:?}");
    assert!(close(costs.nats.at0, 5e-6) && close(costs.nats.slope, 1e-6), "{costs:?}");
    assert!(costs.alone.is_some());

    // Ten nodes, 1,000 members, 500 msg/s: each node applies (20 µs),
    // proposes a tenth (2 µs) and delivers to 100 (about 10 µs).
    let p = predict(&costs, 10, 1000.0, 500.0);
    assert!(close(p.node_per_event, 2e-5 + 2e-6 + 1e-7 * 999.0 / 10.0), "{p:?}");
    assert!(close(p.node_cores, 500.0 * p.node_per_event));
    assert!(close(p.nats_cores, 500.0 * 15e-6));
    assert!(close(p.apply_share, 2e-5 / p.node_per_event));
    // nats-server takes 15 µs an event, a node about 32: the node sets the pace.
    assert!(!p.limited_by_nats && close(p.max_rate, 1.0 / p.node_per_event));
    // At thirty nodes nats-server's 35 µs is more than a node's 26.
    assert!(predict(&costs, 30, 1000.0, 500.0).limited_by_nats);

    // The networks measured are set beside the model: three nodes at
    // 1,000 clients used 100 µs an event each (1 s for 10,000), where
    // the model says 10 + 10 + 20/3 + 99.9/3 µs; nats-server 8 µs.
    let md = model(&measured);
    assert!(md.contains("| 1,000 | 3 | 100.0 | 60.0 | 8.0 | 8.0 |"), "{md}");
    assert!(md.contains("| 1,000 | 1 | 100.0 | 139.9 | 6.0 | 6.0 |"), "{md}");
    assert!(md.contains("| 10,000 | 30 |"));
}

#[test]
fn the_section_has_its_tables_and_counts_every_problem() {
    let mut runs = vec![
        flood(100, 0, 0, 0.2, 0.0, 0.0),
        flood(100, 1, 0, 0.5, 0.0, 0.1),
        flood(100, 1, 0, 0.7, 0.0, 0.2),
        flood(100, 1, 1, 0.6, 0.3, 0.2),
        flood(1000, 1, 1, 1.6, 0.4, 0.2),
        flood(1000, 3, 0, 1.0, 0.0, 0.4),
    ];
    // One of the three-node runs lost deliveries and disordered a client.
    let mut bad = flood(1000, 3, 0, 1.0, 0.0, 0.4);
    (bad.lost, bad.order_violations, bad.order_consistent) = (12, Some(1), false);
    bad.nodes[2].order_violations = 1;
    runs.push(bad);
    let mut paced_alone = run(spec("prethread", Some(1), 100, 2000.0), 200_000.0, 1500);
    paced_alone.latency.p50_us = 400;
    let mut paced_one = flood(100, 1, 0, 0.5, 0.0, 0.1);
    paced_one.spec.as_mut().unwrap().load.rate = 2000.0;
    paced_one.latency.p50_us = 2400;
    paced_one.latency.p99_us = 4500;
    runs.extend([paced_alone, paced_one]);
    let measured = cluster(runs);
    let md = section(&measured, "bench");

    let order = [
        "## One network on several machines",
        "do not edit it by hand. Measured on 2025-01-02 03:04:05 UTC at commit `0123abcd` (with uncommitted changes)",
        "```sh\nchatter bench sweep --out docs --quick\n```",
        "Notes by hand.",
        "### Deliveries and latency by network size",
        "#### 100 clients, 10 senders × 1,000 messages, unpaced, open loop",
        "| prethread/1 alone, no NATS | 1 | 1,000,000 |",
        "| prethread/1, 1 node + NATS | 2 | 300,000 (300,000–300,000) |",
        "| prethread/1, 1 node + 1 without clients + NATS | 1 |",
        "n1 0.60, n2 (no clients) 0.30, nats 0.20",
        "#### 100 clients, 10 senders × 1,000 messages, paced, 2,000 msg/s",
        "#### 1,000 clients, 10 senders × 1,000 messages, unpaced, open loop",
        "| prethread/1, 3 nodes + NATS | 2 (**1 failed**) |",
        "| 12 | 0 | 1 of 2,000 |",
        "![Deliveries per second by network size (unpaced, open loop)](bench/cluster-deliveries.svg)",
        "![p99 delivery latency by network size (paced load)](bench/cluster-p99-latency.svg)",
        "### What the NATS hop adds to latency",
        "| 100 clients, 10 senders × 1,000 messages, paced, 2,000 msg/s | 0.40 | 2.40 | 2.00 | 1.50 | 4.50 | 3.00 |",
        "### What a node pays, and what that predicts",
        "### Every run",
        "12 deliveries lost; 1 clients saw another order than the network's (n3: 1)",
    ];
    let mut from = 0;
    for needle in order {
        let at =
            md[from..].find(needle).unwrap_or_else(|| panic!("{needle:?} missing or out of order:\n{md}"));
        from += at + needle.len();
    }
    // One line per configuration, through the medians of the clean runs;
    // the failed three-node run is left out of its line.
    let plots = plots(&measured);
    let flood: Vec<(&str, &[(f64, f64)])> =
        plots[0].series.iter().map(|s| (s.server.as_str(), s.points.as_slice())).collect();
    assert_eq!(
        flood,
        [
            ("prethread/1 alone, no NATS", &[(100.0, 1_000_000.0)][..]),
            ("prethread/1, 1 node + NATS", &[(100.0, 300_000.0)][..]),
            (
                "prethread/1, 1 node + 1 without clients + NATS",
                &[(100.0, 300_000.0), (1000.0, 300_000.0)][..]
            ),
            ("prethread/1, 3 nodes + NATS", &[(1000.0, 300_000.0)][..]),
        ]
    );
    assert_eq!(plots[1].series.iter().map(|s| s.points.len()).sum::<usize>(), 2);
    assert_eq!(configurations(&measured).len(), 4);
    // Without two network sizes there is no fit for nats-server, so
    // there are costs in the runs but no model: it says what it needs.
    assert!(md.contains("| members M | nodes k |") || md.contains("Not computed: it needs"));
}

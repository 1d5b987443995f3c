//! Tests of the targets on made-up sweeps: which runs each target reads,
//! and that missing runs are "not measured" and troubled runs never meet one.

use super::*;
use crate::bench::results::{IdleMemory, Latency, Load, Machine, Proto, Usage};

/// A clean run of `server` at `clients`: the flood when `rate` is 0.
fn run(server: &str, clients: usize, rate: f64, per_sec: f64, p99_us: u64) -> RunResult {
    let workers = ["prethread", "prefork"].contains(&server).then_some(1);
    let messages = if rate > 0.0 { 100 } else { FLOOD_MESSAGES };
    let offered = (FLOOD_SENDERS * messages * (clients - 1)) as u64;
    RunResult {
        spec: Some(RunSpec {
            server: server.into(),
            workers,
            cluster: None,
            tls: None,
            load: Load {
                proto: Proto::Irc,
                clients,
                senders: FLOOD_SENDERS,
                messages,
                rate,
                window: None,
                connect_concurrency: 200,
            },
        }),
        connected: clients,
        connect_secs: 0.5,
        offered,
        delivered: offered,
        order_consistent: true,
        flow_secs: 1.0,
        deliveries_per_sec: per_sec,
        latency: Latency { p99_us, ..Latency::default() },
        server: Some(Usage {
            peak_rss_bytes: 15 * 1024 * 1024,
            connected_rss_bytes: 10 * 1024 * 1024,
            ..Usage::default()
        }),
        generator_flow_cpu_secs: 0.5,
        ..RunResult::default()
    }
}

fn sweep(runs: Vec<RunResult>) -> Sweep {
    Sweep {
        command: String::new(),
        generated: String::new(),
        commit: String::new(),
        machine: Machine { cores: 2, memory_bytes: 0, kernel: String::new(), cpu_model: String::new() },
        pinning: String::new(),
        runs,
        idle: vec![IdleMemory {
            server: "prethread/1".into(),
            clients: 10_000,
            rss_empty_bytes: 1_000_000,
            rss_loaded_bytes: 1_000_000 + 10_000 * 7 * 1024,
        }],
        peers: Vec::new(),
        notes: String::new(),
    }
}

fn found<'a>(checks: &'a [Check], target: &str) -> &'a Check {
    checks.iter().find(|c| c.target.starts_with(target)).unwrap_or_else(|| panic!("no check {target}"))
}

fn verdict(checks: &[Check], target: &str) -> Option<bool> {
    found(checks, target).met
}

#[test]
fn the_flood_is_judged_on_loss_speed_and_memory() {
    let mut bloated = run("prefork", 1000, 0.0, 2_400_000.0, 0);
    bloated.server.as_mut().unwrap().peak_rss_bytes = 25 * 1024 * 1024;
    let checks = check(&sweep(vec![
        run("prethread", 1000, 0.0, 3_000_000.0, 0),
        bloated,
        run("ngircd", 1000, 0.0, 1_800_000.0, 0),
        run("inspircd", 1000, 0.0, 1_000_000.0, 0),
    ]));
    assert_eq!(verdict(&checks, "prethread/1, N=1,000: 0 lost"), Some(true));
    assert_eq!(verdict(&checks, "prethread/1, N=1,000: deliveries/s"), Some(true));
    assert_eq!(verdict(&checks, "prethread/1, N=1,000: peak RSS"), Some(true));
    // 2.4M against ngircd's 1.8M is 1.33×.
    assert_eq!(verdict(&checks, "prefork/1, N=1,000: 0 lost"), Some(true));
    assert_eq!(verdict(&checks, "prefork/1, N=1,000: deliveries/s"), Some(false));
    assert!(
        found(&checks, "prefork/1, N=1,000: deliveries/s").measured.contains("vs ngircd 1,800,000/s = 1.33×")
    );
    // 25 MiB at peak against 10 MiB connected.
    assert_eq!(verdict(&checks, "prefork/1, N=1,000: peak RSS"), Some(false));
    // iterative has no run: its rows are there, not measured.
    for target in
        ["iterative, N=1,000: 0 lost", "iterative, N=1,000: deliveries/s", "iterative, N=1,000: peak"]
    {
        assert_eq!(verdict(&checks, target), None, "{target}");
    }
    // Nor is any size without runs.
    assert_eq!(verdict(&checks, "prethread/1, N=5,000: 0 lost"), None);
    assert_eq!(found(&checks, "prethread/1, N=5,000: 0 lost").measured, "not measured");
}

#[test]
fn a_disconnect_or_a_loss_fails_the_flood_however_fast() {
    let mut dropped = run("prethread", 100, 0.0, 9_000_000.0, 0);
    dropped.disconnected = 3;
    let mut lossy = run("prefork", 100, 0.0, 9_000_000.0, 0);
    lossy.lost = 1;
    let checks = check(&sweep(vec![dropped, lossy, run("ngircd", 100, 0.0, 1_000_000.0, 0)]));
    assert_eq!(verdict(&checks, "prethread/1, N=100: 0 lost"), Some(false));
    assert_eq!(found(&checks, "prethread/1, N=100: 0 lost").measured, "3 clients disconnected");
    assert_eq!(verdict(&checks, "prethread/1, N=100: deliveries/s"), Some(false));
    assert_eq!(
        found(&checks, "prethread/1, N=100: deliveries/s").measured,
        "9,000,000/s (not clean) vs ngircd 1,000,000/s = 9.00×"
    );
    assert_eq!(verdict(&checks, "prefork/1, N=100: 0 lost"), Some(false));
    assert_eq!(verdict(&checks, "prefork/1, N=100: deliveries/s"), Some(false));
}

#[test]
fn only_the_open_loop_flood_counts_and_peers_are_compared_with_their_troubles() {
    let mut closed = run("prethread", 100, 0.0, 9_000_000.0, 0);
    closed.spec.as_mut().unwrap().load.window = Some(1000);
    let mut shedding = run("ngircd", 100, 0.0, 1_000_000.0, 0);
    shedding.disconnected = 40;
    shedding.lost = 39_600;
    let checks = check(&sweep(vec![closed, shedding, run("prefork", 100, 0.0, 2_000_000.0, 0)]));
    assert_eq!(verdict(&checks, "prethread/1, N=100: 0 lost"), None);
    let prefork = found(&checks, "prefork/1, N=100: deliveries/s");
    assert_eq!(prefork.met, Some(true));
    assert!(
        prefork
            .measured
            .contains("vs ngircd 1,000,000/s (39,600 deliveries lost, 40 clients disconnected) = 2.00×")
    );
}

#[test]
fn without_peers_the_comparisons_are_not_measured() {
    let checks =
        check(&sweep(vec![run("prethread", 1000, 0.0, 1.0, 0), run("prethread", 100, 2000.0, 1.0, 1)]));
    assert_eq!(verdict(&checks, "prethread/1, N=1,000: deliveries/s"), None);
    assert_eq!(verdict(&checks, "prethread/1, N=100, 2,000 msg/s"), None);
    // Loss and memory need no peer.
    assert_eq!(verdict(&checks, "prethread/1, N=1,000: 0 lost"), Some(true));
    assert_eq!(verdict(&checks, "prethread/1, N=1,000: peak RSS"), Some(true));
}

#[test]
fn paced_latency_is_held_against_the_better_clean_peer() {
    let mut lossy_peer = run("inspircd", 100, 2000.0, 1.0, 100);
    lossy_peer.lost = 5;
    let checks = check(&sweep(vec![
        run("prethread", 100, 2000.0, 1.0, 500),
        run("prefork", 100, 2000.0, 1.0, 700),
        run("ngircd", 100, 2000.0, 1.0, 600),
        lossy_peer,
    ]));
    // inspircd's 0.1 ms does not count: it lost messages.
    assert_eq!(verdict(&checks, "prethread/1, N=100, 2,000 msg/s"), Some(true));
    assert_eq!(verdict(&checks, "prefork/1, N=100, 2,000 msg/s"), Some(false));
    assert_eq!(verdict(&checks, "iterative, N=100, 2,000 msg/s"), None);
}

#[test]
fn prefork_is_held_within_15_percent_of_prethread_at_each_size() {
    let checks = check(&sweep(vec![
        run("prethread", 100, 0.0, 1_000_000.0, 0),
        run("prefork", 100, 0.0, 900_000.0, 0),
        run("prethread", 1000, 0.0, 1_000_000.0, 0),
        run("prefork", 1000, 0.0, 800_000.0, 0),
        run("prethread", 5000, 0.0, 1_000_000.0, 0),
    ]));
    assert_eq!(verdict(&checks, "prefork/1 within 15% of prethread/1, N=100"), Some(true));
    assert_eq!(verdict(&checks, "prefork/1 within 15% of prethread/1, N=1,000"), Some(false));
    assert_eq!(verdict(&checks, "prefork/1 within 15% of prethread/1, N=5,000"), None);
}

#[test]
fn capacity_targets() {
    let mut slow = run("iterative", 5000, 0.0, 1.0, 0);
    slow.connect_secs = 2.5;
    let checks = check(&sweep(vec![slow, run("prethread", 5000, 0.0, 1.0, 0)]));
    assert_eq!(verdict(&checks, "iterative: 5,000 clients connect"), Some(false));
    assert_eq!(verdict(&checks, "prethread/1: 5,000 clients connect"), Some(true));
    assert_eq!(verdict(&checks, "prefork/1: 5,000 clients connect"), None);
    assert_eq!(verdict(&checks, "iterative holds 5,000"), Some(true));
    // 7 KiB per idle connection against 6.
    assert_eq!(verdict(&checks, "prethread/1: at most 6 KiB"), Some(false));
    assert_eq!(verdict(&checks, "prefork/1: at most 6 KiB"), None);
    assert_eq!(verdict(&check(&sweep(Vec::new())), "iterative holds 5,000"), None);
}

#[test]
fn the_section_has_a_table_per_group() {
    let md = section(&sweep(vec![run("prethread", 1000, 0.0, 1.0, 0)]));
    let headings: Vec<&str> = md.lines().filter(|l| l.starts_with("### ")).collect();
    assert_eq!(
        headings,
        [FLOOD, PACED_GROUP, CAPACITY, PARITY]
            .map(|g| format!("### {g}"))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert!(
        md.contains(
            "| prethread/1, N=1,000: 0 lost, 0 clients disconnected | 0 lost, 0 disconnected | yes |"
        )
    );
    assert!(
        md.contains("| iterative, N=100: 0 lost, 0 clients disconnected | not measured | not measured |")
    );
}

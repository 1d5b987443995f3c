//! The performance targets the project set itself, checked against a
//! sweep's figures, so that the report says plainly which are met and which
//! are missed (with the figure) instead of leaving readers to dig through
//! the tables. Each check reads only the runs it names; a target whose runs
//! are missing is reported as not measured, never as met.

use std::fmt::Write as _;

use crate::bench::report::{Sweep, label};
use crate::bench::results::RunResult;

/// The flood the throughput, loss and memory targets name: an open loop of
/// this many senders × messages each, at each of these client counts.
pub const FLOOD_SENDERS: usize = 10;
pub const FLOOD_MESSAGES: usize = 1000;
pub const FLOOD_SIZES: [usize; 3] = [100, 1000, 5000];

/// The paced loads the latency targets name: (clients, messages/s in total).
pub const PACED: [(usize, f64); 3] = [(100, 2000.0), (1000, 500.0), (5000, 50.0)];

/// One target and what the sweep showed.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub target: String,
    pub measured: String,
    /// `None` when the runs it needs are not in the sweep.
    pub met: Option<bool>,
}

const PEERS_EXCLUDED: [&str; 3] = ["iterative", "prethread", "prefork"];

fn is_peer(run: &RunResult) -> bool {
    run.spec.as_ref().is_some_and(|s| !PEERS_EXCLUDED.contains(&s.server.as_str()))
}

fn is_model(run: &RunResult, model: &str) -> bool {
    run.spec.as_ref().is_some_and(|s| s.server == model)
}

/// The run of `server` (a label such as "prethread/1") at `clients` under
/// the load with `rate` (0 = unpaced) and messages > 0.
fn find<'a>(sweep: &'a Sweep, server: &str, clients: usize, rate: f64) -> Option<&'a RunResult> {
    sweep.runs.iter().find(|r| {
        r.spec
            .as_ref()
            .is_some_and(|s| label(s) == server && s.clients == clients && s.rate == rate && s.messages > 0)
    })
}

fn clean(run: &RunResult) -> bool {
    run.error.is_none()
        && run.lost == 0
        && run.duplicated == 0
        && run.order_consistent
        && run.delivered == run.offered
}

fn labels(sweep: &Sweep, pick: impl Fn(&RunResult) -> bool) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for run in sweep.runs.iter().filter(|r| pick(r)) {
        if let Some(spec) = &run.spec {
            let name = label(spec);
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// Checks every target against `sweep`.
pub fn check(sweep: &Sweep) -> Vec<Check> {
    let mut checks = Vec::new();
    let peers = labels(sweep, is_peer);
    let pools = labels(sweep, |r| is_model(r, "prethread") || is_model(r, "prefork"));
    let models = labels(sweep, |r| !is_peer(r));

    // 1. The unpaced ceiling at N=1000.
    let best_peer = peers
        .iter()
        .filter_map(|p| find(sweep, p, 1000, 0.0).filter(|r| clean(r)).map(|r| (p, r.deliveries_per_sec)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    for model in &pools {
        let run = find(sweep, model, 1000, 0.0);
        let (measured, met) = match (run, best_peer) {
            (Some(run), Some((peer, peer_rate))) => (
                format!(
                    "{:.0}/s vs {peer} {:.0}/s = {:.2}×; generator busy {:.0}% of the flow",
                    run.deliveries_per_sec,
                    peer_rate,
                    run.deliveries_per_sec / peer_rate,
                    100.0 * run.generator_flow_cpu_secs / run.flow_secs.max(f64::MIN_POSITIVE)
                ),
                Some(clean(run) && run.deliveries_per_sec >= 1.5 * peer_rate),
            ),
            (Some(run), None) => (format!("{:.0}/s; no peer measured", run.deliveries_per_sec), None),
            _ => ("not measured".into(), None),
        };
        checks.push(Check {
            target: format!("{model}: unpaced N=1000 (10×1000) at least 1.5× the faster peer's deliveries/s"),
            measured,
            met,
        });
    }

    // 2. Paced loads: everything arrives, p99 no higher than the better peer's.
    for (clients, rate) in PACED {
        let best_p99 = peers
            .iter()
            .filter_map(|p| find(sweep, p, clients, rate).filter(|r| clean(r)).map(|r| (p, r.latency.p99_us)))
            .min_by_key(|(_, p99)| *p99);
        for model in &models {
            let Some(run) = find(sweep, model, clients, rate) else { continue };
            let (measured, met) = match best_p99 {
                Some((peer, peer_p99)) => (
                    format!(
                        "{} of {} delivered; p99 {:.2} ms vs {peer} {:.2} ms",
                        run.delivered,
                        run.offered,
                        run.latency.p99_us as f64 / 1000.0,
                        peer_p99 as f64 / 1000.0
                    ),
                    Some(clean(run) && run.latency.p99_us <= peer_p99),
                ),
                None => (format!("{} of {} delivered; no peer measured", run.delivered, run.offered), None),
            };
            checks.push(Check {
                target: format!(
                    "{model}: paced N={clients} at {rate}/s: all delivered, p99 ≤ the better peer's"
                ),
                measured,
                met,
            });
        }
    }

    // 3. Registering 5000 clients, 200 at a time, in under 2 s.
    for model in &models {
        let run = sweep.runs.iter().find(|r| {
            r.spec
                .as_ref()
                .is_some_and(|s| label(s) == *model && s.clients == 5000 && s.connect_concurrency == 200)
        });
        if let Some(run) = run {
            checks.push(Check {
                target: format!("{model}: 5000 clients connect and register (200 at a time) in under 2 s"),
                measured: format!("{:.2} s", run.connect_secs),
                met: Some(run.connected == 5000 && run.connect_secs < 2.0),
            });
        }
    }

    // 4. Memory per idle connection in the pool models.
    for idle in sweep.idle.iter().filter(|i| pools.contains(&i.server)) {
        let per = idle.bytes_per_connection();
        checks.push(Check {
            target: format!("{}: at most 6 KiB per idle connection", idle.server),
            measured: per.map_or("not measured".into(), |b| {
                format!("{:.2} KiB ({} clients)", b / 1024.0, idle.clients)
            }),
            met: per.map(|b| b <= 6.0 * 1024.0),
        });
    }

    // 5. prefork within 15% of prethread at every size (unpaced throughput).
    let prethread = pools.iter().find(|l| l.starts_with("prethread"));
    let prefork = pools.iter().find(|l| l.starts_with("prefork"));
    if let (Some(threads), Some(procs)) = (prethread, prefork) {
        let mut sizes: Vec<usize> = sweep
            .runs
            .iter()
            .filter_map(|r| r.spec.as_ref().filter(|s| s.rate == 0.0 && s.messages > 0).map(|s| s.clients))
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        for clients in sizes {
            let (Some(a), Some(b)) = (find(sweep, threads, clients, 0.0), find(sweep, procs, clients, 0.0))
            else {
                continue;
            };
            let ratio = b.deliveries_per_sec / a.deliveries_per_sec.max(f64::MIN_POSITIVE);
            checks.push(Check {
                target: format!("{procs} within 15% of {threads}, unpaced N={clients}"),
                measured: format!(
                    "{:.0}/s vs {:.0}/s ({:+.1}%)",
                    b.deliveries_per_sec,
                    a.deliveries_per_sec,
                    100.0 * (ratio - 1.0)
                ),
                met: Some(clean(a) && clean(b) && ratio >= 0.85),
            });
        }
    }

    // 6. The iterative model holds 5000 clients.
    let held = sweep
        .runs
        .iter()
        .filter(|r| is_model(r, "iterative") && r.spec.as_ref().is_some_and(|s| s.clients == 5000))
        .find(|r| r.error.is_none() && r.connected == 5000);
    checks.push(Check {
        target: "iterative holds 5000 clients".into(),
        measured: match held {
            Some(run) => match &run.server {
                Some(u) => format!(
                    "yes: {} threads, {:.1} MiB RSS with all connected",
                    u.threads,
                    u.connected_rss_bytes as f64 / (1024.0 * 1024.0)
                ),
                None => "yes".into(),
            },
            None => "no run of 5000 finished cleanly".into(),
        },
        met: Some(held.is_some()),
    });
    checks
}

/// The checks as a Markdown section.
pub fn section(sweep: &Sweep) -> String {
    let mut md = String::from("## Targets\n\n| target | measured | met |\n|---|---|:-:|\n");
    for c in check(sweep) {
        let met = match c.met {
            Some(true) => "yes",
            Some(false) => "**NO**",
            None => "not measured",
        };
        let _ = writeln!(md, "| {} | {} | {met} |", c.target, c.measured);
    }
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::{IdleMemory, Machine};
    use crate::bench::results::{Latency, RunSpec};

    fn run(
        server: &str,
        workers: Option<usize>,
        clients: usize,
        rate: f64,
        per_sec: f64,
        p99_us: u64,
    ) -> RunResult {
        RunResult {
            spec: Some(RunSpec {
                server: server.into(),
                workers,
                proto: "irc".into(),
                clients,
                senders: 10,
                messages: 100,
                rate,
                window: None,
                connect_concurrency: 200,
            }),
            connected: clients,
            connect_secs: 0.5,
            offered: 1000,
            delivered: 1000,
            order_consistent: true,
            flow_secs: 1.0,
            deliveries_per_sec: per_sec,
            latency: Latency { p99_us, ..Latency::default() },
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

    fn verdict(checks: &[Check], starts: &str) -> Option<bool> {
        checks
            .iter()
            .find(|c| c.target.starts_with(starts))
            .unwrap_or_else(|| panic!("no check {starts}"))
            .met
    }

    #[test]
    fn ceiling_latency_memory_and_parity_are_judged_from_the_runs() {
        let checks = check(&sweep(vec![
            run("prethread", Some(1), 1000, 0.0, 3_000_000.0, 0),
            run("prefork", Some(1), 1000, 0.0, 2_400_000.0, 0),
            run("ngircd", None, 1000, 0.0, 1_800_000.0, 0),
            run("prethread", Some(1), 100, 2000.0, 1.0, 500),
            run("ngircd", None, 100, 2000.0, 1.0, 600),
            run("inspircd", None, 100, 2000.0, 1.0, 400),
        ]));
        assert_eq!(verdict(&checks, "prethread/1: unpaced N=1000"), Some(true));
        assert_eq!(verdict(&checks, "prefork/1: unpaced N=1000"), Some(false));
        // The better peer is inspircd at 0.4 ms.
        assert_eq!(verdict(&checks, "prethread/1: paced N=100"), Some(false));
        assert_eq!(verdict(&checks, "prethread/1: at most 6 KiB"), Some(false));
        assert_eq!(verdict(&checks, "prefork/1 within 15%"), Some(false));
        assert_eq!(verdict(&checks, "iterative holds 5000"), Some(false));
    }

    #[test]
    fn a_lossy_run_never_meets_a_target() {
        let mut lossy = run("prethread", Some(1), 1000, 0.0, 9_000_000.0, 0);
        lossy.lost = 1;
        let checks = check(&sweep(vec![lossy, run("ngircd", None, 1000, 0.0, 1.0, 0)]));
        assert_eq!(verdict(&checks, "prethread/1: unpaced N=1000"), Some(false));
    }

    #[test]
    fn without_peers_the_comparisons_are_not_measured() {
        let checks = check(&sweep(vec![run("prethread", Some(1), 1000, 0.0, 1.0, 0)]));
        assert_eq!(verdict(&checks, "prethread/1: unpaced N=1000"), None);
    }
}

//! The performance targets the project set itself, checked against a
//! sweep's figures, so that the report says plainly which are met and which
//! are missed (with the figure) instead of leaving readers to dig through
//! the tables.
//!
//! Each check reads only the runs it names, found by their exact load, and
//! a target whose runs are missing is reported as not measured, never as
//! met. Every chatter model a target names gets a row even when the sweep
//! did not run it, so a missing model shows as "not measured" instead of
//! vanishing from the list. Nothing here is asserted about real figures:
//! the tests feed made-up sweeps and check the verdicts.

use std::fmt::Write as _;

use crate::bench::format::{cell, decimals, group, mib, signed_group};
use crate::bench::results::{RunResult, RunSpec, Sweep, label};
use crate::bench::summary::problems;

/// The flood the throughput, loss and memory targets name: an open loop of
/// this many senders × messages each, at each of these client counts.
pub const FLOOD_SENDERS: usize = 10;
pub const FLOOD_MESSAGES: usize = 1000;
pub const FLOOD_SIZES: [usize; 3] = [100, 1000, 5000];

/// The paced loads the latency targets name: (clients, messages/s in total).
pub const PACED: [(usize, f64); 3] = [(100, 2000.0), (1000, 500.0), (5000, 50.0)];

/// Flood deliveries/s against the faster peer's.
const FLOOD_SPEEDUP: f64 = 1.5;
/// Peak RSS during the flood against the RSS with every client connected.
const FLOOD_MEMORY_FACTOR: f64 = 2.0;
/// prefork's unpaced deliveries/s may fall this far below prethread's.
const PREFORK_TOLERANCE: f64 = 0.15;
/// Memory per idle connection in the pool models.
const IDLE_BYTES_PER_CONNECTION: f64 = 6.0 * 1024.0;

/// chatter's models, each with the label it gets in a sweep of the
/// default `--workers 1` when the sweep has no run of it.
const MODELS: [(&str, &str); 3] =
    [("iterative", "iterative"), ("prethread", "prethread/1"), ("prefork", "prefork/1")];

/// One target and what the sweep showed.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The table the check is listed in.
    pub group: &'static str,
    pub target: String,
    pub measured: String,
    /// `None` when the runs it needs are not in the sweep.
    pub met: Option<bool>,
}

const FLOOD: &str = "Flood: open loop, 10 senders × 1,000 messages";
const PACED_GROUP: &str = "Steady load: paced";
const CAPACITY: &str = "Connections and memory";
const PARITY: &str = "prefork against prethread (unpaced, open loop)";

/// What a group's figures mean, said once under its heading.
fn explain(group: &str) -> &'static str {
    match group {
        FLOOD => {
            "Ten senders write 1,000 messages each as fast as TCP accepts them; every client reads as \
             fast as it can. The faster peer is the peer with more deliveries/s under the same flood. \
             Connected RSS is the server's memory with every client connected, before the first message."
        }
        PACED_GROUP => "The better peer is the one with the lower p99 among peers that delivered everything.",
        CAPACITY => "Memory per idle connection is measured with clients registered and silent.",
        _ => "Deliveries/s under the same unpaced load at each size.",
    }
}

fn is_model(spec: &RunSpec) -> bool {
    MODELS.iter().any(|(model, _)| spec.server == *model)
}

/// The first run of `server` (a label such as "prethread/1") whose spec
/// passes `load`.
fn find<'a>(sweep: &'a Sweep, server: &str, load: impl Fn(&RunSpec) -> bool) -> Option<&'a RunResult> {
    sweep.runs.iter().find(|r| r.spec.as_ref().is_some_and(|s| label(s) == server && load(s)))
}

/// The flood at `clients`.
fn flood(clients: usize) -> impl Fn(&RunSpec) -> bool {
    move |s| {
        s.load.clients == clients
            && s.load.rate == 0.0
            && s.load.window.is_none()
            && s.load.senders == FLOOD_SENDERS
            && s.load.messages == FLOOD_MESSAGES
    }
}

fn paced(clients: usize, rate: f64) -> impl Fn(&RunSpec) -> bool {
    move |s| {
        s.load.clients == clients && s.load.rate == rate && s.load.window.is_none() && s.load.messages > 0
    }
}

/// Every message reached every client exactly once, in one order, and no
/// client was disconnected.
fn clean(run: &RunResult) -> bool {
    problems(run).is_empty() && run.delivered == run.offered
}

/// What kept a run from being clean, in the words of the run summary, made
/// safe for a table cell; empty for a clean run.
fn troubles(run: &RunResult) -> String {
    cell(&problems(run).join(", "))
}

/// Labels in order of first appearance among the runs `pick` accepts.
fn labels(sweep: &Sweep, pick: impl Fn(&RunSpec) -> bool) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for spec in sweep.runs.iter().filter_map(|r| r.spec.as_ref()).filter(|s| pick(s)) {
        let name = label(spec);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The labels of `model` in the sweep, or its default label if none.
fn model_labels(sweep: &Sweep, model: &str) -> Vec<String> {
    let found = labels(sweep, |s| s.server == model);
    if !found.is_empty() {
        return found;
    }
    MODELS.iter().filter(|(m, _)| *m == model).map(|(_, default)| default.to_string()).collect()
}

fn rate(run: &RunResult) -> String {
    format!("{}/s", signed_group(run.deliveries_per_sec.round()))
}

fn not_measured(group: &'static str, target: String) -> Check {
    Check { group, target, measured: "not measured".into(), met: None }
}

/// Checks every target against `sweep`.
pub fn check(sweep: &Sweep) -> Vec<Check> {
    let peers = labels(sweep, |s| !is_model(s));
    let iterative = model_labels(sweep, "iterative");
    let pools: Vec<String> =
        model_labels(sweep, "prethread").into_iter().chain(model_labels(sweep, "prefork")).collect();
    let models: Vec<String> = iterative.iter().chain(&pools).cloned().collect();

    let mut checks = Vec::new();
    for clients in FLOOD_SIZES {
        for model in &models {
            checks.extend(flood_checks(sweep, &peers, model, clients));
        }
    }
    for (clients, rate) in PACED {
        for model in &models {
            checks.push(paced_check(sweep, &peers, model, clients, rate));
        }
    }
    for model in &models {
        checks.push(register_check(sweep, model));
    }
    for pool in &pools {
        checks.push(idle_check(sweep, pool));
    }
    checks.push(iterative_holds(sweep));
    checks.extend(parity_checks(sweep, &pools));
    checks
}

/// No loss, the throughput against the faster peer, and the memory growth,
/// of `model` under the flood at `clients`.
fn flood_checks(sweep: &Sweep, peers: &[String], model: &str, clients: usize) -> [Check; 3] {
    let subject = format!("{model}, N={}", group(clients as u64));
    let targets = [
        format!("{subject}: 0 lost, 0 clients disconnected"),
        format!("{subject}: deliveries/s ≥ {FLOOD_SPEEDUP}× the faster peer's"),
        format!("{subject}: peak RSS ≤ {FLOOD_MEMORY_FACTOR}× connected RSS"),
    ];
    let Some(run) = find(sweep, model, flood(clients)) else {
        return targets.map(|t| not_measured(FLOOD, t));
    };
    let [delivery, speed, memory] = targets;

    let problems = troubles(run);
    let delivery = Check {
        group: FLOOD,
        target: delivery,
        measured: if problems.is_empty() { "0 lost, 0 disconnected".into() } else { problems.clone() },
        met: Some(clean(run)),
    };

    // The faster peer is the one with the higher figure under the same
    // load; one that lost or dropped clients still counts, with a note.
    let fastest = peers
        .iter()
        .filter_map(|p| find(sweep, p, flood(clients)).map(|r| (p, r)))
        .filter(|(_, r)| r.connected == clients && r.delivered > 0)
        .max_by(|a, b| a.1.deliveries_per_sec.total_cmp(&b.1.deliveries_per_sec));
    // The generator's share of the flow says whether the figure is the
    // server's; it means little for a run whose deliveries stopped early.
    let busy = if run.flow_secs > 0.0 && problems.is_empty() {
        format!("; generator busy {:.0}% of the flow", 100.0 * run.generator_flow_cpu_secs / run.flow_secs)
    } else {
        String::new()
    };
    // The row above says what went wrong; here it is enough to flag it.
    let own_problems = if problems.is_empty() { "" } else { " (not clean)" };
    let speed = match fastest {
        Some((peer, peer_run)) => {
            let ratio = run.deliveries_per_sec / peer_run.deliveries_per_sec;
            let peer_problems = troubles(peer_run);
            let peer_note =
                if peer_problems.is_empty() { String::new() } else { format!(" ({peer_problems})") };
            Check {
                group: FLOOD,
                target: speed,
                measured: format!(
                    "{}{own_problems} vs {peer} {}{peer_note} = {}×{busy}",
                    rate(run),
                    rate(peer_run),
                    decimals(ratio, 2)
                ),
                met: Some(clean(run) && ratio >= FLOOD_SPEEDUP),
            }
        }
        None => Check {
            group: FLOOD,
            target: speed,
            measured: format!("{}{own_problems}; no peer measured under this load", rate(run)),
            met: None,
        },
    };

    let memory = match &run.server {
        Some(usage) if usage.connected_rss_bytes > 0 => {
            let factor = usage.peak_rss_bytes as f64 / usage.connected_rss_bytes as f64;
            Check {
                group: FLOOD,
                target: memory,
                measured: format!(
                    "peak {} MiB, {} MiB connected = {}×",
                    mib(usage.peak_rss_bytes),
                    mib(usage.connected_rss_bytes),
                    decimals(factor, 2)
                ),
                met: Some(factor <= FLOOD_MEMORY_FACTOR),
            }
        }
        _ => not_measured(FLOOD, memory),
    };
    [delivery, speed, memory]
}

/// Under a paced load everything arrives, with a p99 no higher than the
/// better peer's.
fn paced_check(sweep: &Sweep, peers: &[String], model: &str, clients: usize, rate: f64) -> Check {
    let target = format!(
        "{model}, N={}, {} msg/s: all delivered, p99 at or below the better peer's",
        group(clients as u64),
        signed_group(rate)
    );
    let Some(run) = find(sweep, model, paced(clients, rate)) else {
        return not_measured(PACED_GROUP, target);
    };
    let best = peers
        .iter()
        .filter_map(|p| {
            find(sweep, p, paced(clients, rate)).filter(|r| clean(r)).map(|r| (p, r.latency.p99_us))
        })
        .min_by_key(|(_, p99)| *p99);
    let ms = |us: u64| decimals(us as f64 / 1000.0, 2);
    let problems = troubles(run);
    let delivered = if problems.is_empty() {
        format!("{} of {} delivered", group(run.delivered), group(run.offered))
    } else {
        problems
    };
    let (measured, met) = match best {
        Some((peer, peer_p99)) => (
            format!("{delivered}; p99 {} ms vs {peer} {} ms", ms(run.latency.p99_us), ms(peer_p99)),
            Some(clean(run) && run.latency.p99_us <= peer_p99),
        ),
        None => (format!("{delivered}; no peer delivered everything under this load"), None),
    };
    Check { group: PACED_GROUP, target, measured, met }
}

/// 5000 clients connect and register, 200 at a time, in under 2 s.
fn register_check(sweep: &Sweep, model: &str) -> Check {
    let target = format!("{model}: 5,000 clients connect and register (200 at a time) in under 2 s");
    match find(sweep, model, |s| s.load.clients == 5000 && s.load.connect_concurrency == 200) {
        Some(run) => Check {
            group: CAPACITY,
            target,
            measured: format!(
                "{} of 5,000 in {} s",
                group(run.connected as u64),
                decimals(run.connect_secs, 2)
            ),
            met: Some(run.connected == 5000 && run.connect_secs < 2.0),
        },
        None => not_measured(CAPACITY, target),
    }
}

/// Memory per idle connection in a pool model.
fn idle_check(sweep: &Sweep, pool: &str) -> Check {
    let target = format!("{pool}: at most {} KiB per idle connection", IDLE_BYTES_PER_CONNECTION / 1024.0);
    let idle = sweep.idle.iter().find(|i| i.server == pool);
    match idle.and_then(|i| i.bytes_per_connection().map(|b| (i, b))) {
        Some((idle, bytes)) => Check {
            group: CAPACITY,
            target,
            measured: format!("{} KiB ({} clients)", decimals(bytes / 1024.0, 2), group(idle.clients as u64)),
            met: Some(bytes <= IDLE_BYTES_PER_CONNECTION),
        },
        None => not_measured(CAPACITY, target),
    }
}

/// The iterative model holds 5000 clients (one thread each).
fn iterative_holds(sweep: &Sweep) -> Check {
    let target = "iterative holds 5,000 clients".to_string();
    let runs: Vec<&RunResult> = sweep
        .runs
        .iter()
        .filter(|r| r.spec.as_ref().is_some_and(|s| s.server == "iterative" && s.load.clients == 5000))
        .collect();
    if runs.is_empty() {
        return not_measured(CAPACITY, target);
    }
    let held = runs.iter().find(|r| r.error.is_none() && r.connected == 5000 && r.disconnected == 0);
    let measured = match held.map(|r| &r.server) {
        Some(Some(u)) => format!(
            "yes: {} threads, {} MiB RSS with all connected",
            group(u.threads as u64),
            mib(u.connected_rss_bytes)
        ),
        Some(None) => "yes".into(),
        None => "no run of 5,000 kept every client to the end".into(),
    };
    Check { group: CAPACITY, target, measured, met: Some(held.is_some()) }
}

/// prefork within 15% of prethread at every unpaced size either was
/// measured at (and at the flood sizes, measured or not).
fn parity_checks(sweep: &Sweep, pools: &[String]) -> Vec<Check> {
    let Some(threads) = pools.iter().find(|l| l.starts_with("prethread")) else { return Vec::new() };
    let Some(procs) = pools.iter().find(|l| l.starts_with("prefork")) else { return Vec::new() };
    let unpaced = |s: &RunSpec| s.load.rate == 0.0 && s.load.window.is_none() && !s.load.is_idle();
    let mut sizes: Vec<usize> = sweep
        .runs
        .iter()
        .filter_map(|r| r.spec.as_ref())
        .filter(|s| unpaced(s) && [threads, procs].contains(&&label(s)))
        .map(|s| s.load.clients)
        .chain(FLOOD_SIZES)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
        .into_iter()
        .map(|clients| {
            let target = format!(
                "{procs} within {:.0}% of {threads}, N={}",
                100.0 * PREFORK_TOLERANCE,
                group(clients as u64)
            );
            let a = find(sweep, threads, |s| unpaced(s) && s.load.clients == clients);
            // The same load as prethread's, not merely the same size.
            let b = a.and_then(|a| a.spec.as_ref()).and_then(|theirs| {
                find(sweep, procs, |s| {
                    unpaced(s)
                        && s.load.clients == clients
                        && s.load.senders == theirs.load.senders
                        && s.load.messages == theirs.load.messages
                })
            });
            let (Some(a), Some(b)) = (a, b) else { return not_measured(PARITY, target) };
            let ratio = b.deliveries_per_sec / a.deliveries_per_sec.max(f64::MIN_POSITIVE);
            let note = |r: &RunResult| {
                let t = troubles(r);
                if t.is_empty() { t } else { format!(" ({t})") }
            };
            Check {
                group: PARITY,
                target,
                measured: format!(
                    "{}{} vs {}{} ({:+.1}%)",
                    rate(b),
                    note(b),
                    rate(a),
                    note(a),
                    100.0 * (ratio - 1.0)
                ),
                met: Some(clean(a) && clean(b) && ratio >= 1.0 - PREFORK_TOLERANCE),
            }
        })
        .collect()
}

/// The checks as a Markdown section, one table per group.
pub fn section(sweep: &Sweep) -> String {
    let checks = check(sweep);
    let mut md = String::from("## Targets\n\n");
    let _ = writeln!(
        md,
        "Computed from the runs below. A target whose runs are missing is \"not measured\"; a run that \
         lost a delivery or a client meets no target.\n"
    );
    let mut groups: Vec<&str> = Vec::new();
    for c in &checks {
        if !groups.contains(&c.group) {
            groups.push(c.group);
        }
    }
    for name in groups {
        let _ = writeln!(md, "### {name}\n\n{}\n\n| target | measured | met |\n|---|---|:-:|", explain(name));
        for c in checks.iter().filter(|c| c.group == name) {
            let met = match c.met {
                Some(true) => "yes",
                Some(false) => "**NO**",
                None => "not measured",
            };
            let _ = writeln!(md, "| {} | {} | {met} |", c.target, c.measured);
        }
        md.push('\n');
    }
    md
}

#[cfg(test)]
mod tests;

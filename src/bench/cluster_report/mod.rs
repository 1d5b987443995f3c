//! The section of `PERFORMANCE.md` on networks of nodes, written from the
//! results of `chatter bench cluster` (`bench/cluster.json`): deliveries/s
//! and latency by network size (medians and ranges over the repetitions),
//! what the NATS hop adds to latency, every loss, disconnect and order
//! violation counted, and a cost model — what a node pays per event of the
//! network and per delivery to its own clients, measured, and what that
//! predicts for bigger networks.
//!
//! Why it is shaped so: like the rest of the report it is pure (data in,
//! Markdown out), so the section is regenerated, never edited, and every
//! figure in it, the model's included, is computed from recorded runs.
//! The model's inputs come from named runs (see [`Costs`]), and the
//! section says which, so a reader can check them against the table of
//! every run at its end.

use std::fmt::Write as _;

use super::format::{DASH, cell, decimals, group, load_text, signed_group};
use super::plots::{Plot, Series};
use super::results::{RunResult, RunSpec, Sweep};
use super::summary::problems;

mod model;

use model::model;

/// A configuration of the servers, as the section groups runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Shape {
    /// 0: the model alone, without NATS.
    nodes: usize,
    spare: usize,
}

impl Shape {
    fn of(spec: &RunSpec) -> Shape {
        spec.cluster.map_or(Shape { nodes: 0, spare: 0 }, |c| Shape { nodes: c.nodes, spare: c.spare_nodes })
    }

    fn name(self, model: &str) -> String {
        match (self.nodes, self.spare) {
            (0, _) => format!("{model} alone, no NATS"),
            (1, 0) => format!("{model}, 1 node + NATS"),
            (n, 0) => format!("{model}, {n} nodes + NATS"),
            (n, s) => {
                format!("{model}, {n} node{} + {s} without clients + NATS", if n == 1 { "" } else { "s" })
            }
        }
    }
}

/// The model's label: "prethread/1".
fn model_label(spec: &RunSpec) -> String {
    match spec.workers {
        Some(w) => format!("{}/{w}", spec.server),
        None => spec.server.clone(),
    }
}

/// The messages of a run: every one is one event of the network.
fn events(spec: &RunSpec) -> f64 {
    (spec.load.senders * spec.load.messages) as f64
}

/// Whether a run delivered everything once, in one order, to everyone.
fn clean(run: &RunResult) -> bool {
    problems(run).is_empty()
}

pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 })
}

/// "1.23 (1.10–1.40)": the median and the range; the median alone for one value.
pub(crate) fn spread(values: Vec<f64>, show: impl Fn(f64) -> String) -> String {
    let Some(mid) = median(values.clone()) else { return DASH.to_string() };
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.len() < 2 { show(mid) } else { format!("{} ({}–{})", show(mid), show(low), show(high)) }
}

fn ms(us: f64) -> String {
    decimals(us / 1000.0, 2)
}

/// The load of a group of runs, in words.
fn load_words(spec: &RunSpec) -> String {
    format!(
        "{} clients, {} senders × {} messages, {}",
        group(spec.load.clients as u64),
        spec.load.senders,
        group(spec.load.messages as u64),
        load_text(&spec.load)
    )
}

/// The runs of one load, by shape.
type Group<'a> = (&'a RunSpec, Vec<(Shape, Vec<&'a RunResult>)>);

/// Runs grouped by load (clients, senders, messages, rate), fewer clients
/// first and the flood before the paced load, each group's runs by shape.
fn groups(runs: &[RunResult]) -> Vec<Group<'_>> {
    let mut out: Vec<Group> = Vec::new();
    for run in runs {
        let Some(spec) = &run.spec else { continue };
        let same = |s: &RunSpec| s.load == spec.load && s.server == spec.server && s.workers == spec.workers;
        let at = match out.iter().position(|(s, _)| same(s)) {
            Some(at) => at,
            None => {
                out.push((spec, Vec::new()));
                out.len() - 1
            }
        };
        let shapes = &mut out[at].1;
        let shape = Shape::of(spec);
        match shapes.iter_mut().find(|(s, _)| *s == shape) {
            Some((_, runs)) => runs.push(run),
            None => shapes.push((shape, vec![run])),
        }
    }
    for (_, shapes) in &mut out {
        shapes.sort_by_key(|(shape, _)| *shape);
    }
    out.sort_by(|a, b| {
        let key = |s: &RunSpec| (s.load.clients, s.load.rate > 0.0);
        key(a.0).cmp(&key(b.0))
    });
    out
}

/// Every configuration measured, by name, in the order of the tables: the
/// place of each in this list is its style in the plots.
pub(crate) fn configurations(cluster: &Sweep) -> Vec<String> {
    let mut shapes: Vec<(Shape, String)> = Vec::new();
    for spec in cluster.runs.iter().filter_map(|r| r.spec.as_ref()) {
        let shape = Shape::of(spec);
        if !shapes.iter().any(|(s, _)| *s == shape) {
            shapes.push((shape, shape.name(&model_label(spec))));
        }
    }
    shapes.sort_by_key(|(shape, _)| *shape);
    shapes.into_iter().map(|(_, name)| name).collect()
}

/// The paced loads measured, in words: "100 clients: 2,000 msg/s; ...".
fn paced_loads(cluster: &Sweep) -> String {
    let paced: Vec<String> = groups(&cluster.runs)
        .into_iter()
        .filter(|(spec, _)| spec.load.rate > 0.0)
        .map(|(spec, _)| {
            format!(
                "{} clients: {} msg/s",
                group(spec.load.clients as u64),
                signed_group(spec.load.rate.round())
            )
        })
        .collect();
    paced.join("; ")
}

/// The section's plots, against clients, one line per configuration
/// through the medians of its clean runs: deliveries/s under the flood,
/// and p99 under the paced loads.
pub(crate) fn plots(cluster: &Sweep) -> Vec<Plot> {
    let line = |paced: bool, value: fn(&RunResult) -> f64| -> Vec<Series> {
        let mut series: Vec<Series> = Vec::new();
        for (spec, shapes) in groups(&cluster.runs) {
            if (spec.load.rate > 0.0) != paced {
                continue;
            }
            for (shape, runs) in shapes {
                let values: Vec<f64> = runs.iter().filter(|r| clean(r)).map(|r| value(r)).collect();
                let Some(y) = median(values) else { continue };
                let name = shape.name(&model_label(spec));
                let point = (spec.load.clients as f64, y);
                match series.iter_mut().find(|s| s.server == name) {
                    Some(s) => s.points.push(point),
                    None => series.push(Series { server: name, variant: None, points: vec![point] }),
                }
            }
        }
        for s in &mut series {
            s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        series
    };
    vec![
        Plot {
            file: "cluster-deliveries.svg",
            title: "Deliveries per second by network size (unpaced, open loop)".into(),
            caption: "The flood (10 senders × 1,000 messages, open loop) at each client count: the median \
                      deliveries/s of the clean runs of each configuration, every server process on one core."
                .into(),
            y_desc: "deliveries per second",
            log_y: true,
            series: line(false, |r| r.deliveries_per_sec),
        },
        Plot {
            file: "cluster-p99-latency.svg",
            title: "p99 delivery latency by network size (paced load)".into(),
            caption: format!(
                "The paced loads ({}): the median p99 of the clean runs of each configuration, in milliseconds.",
                paced_loads(cluster)
            ),
            y_desc: "p99 latency (ms)",
            log_y: true,
            series: line(true, |r| r.latency.p99_us as f64 / 1000.0),
        },
    ]
}

/// The whole section: `## One network on several machines`, its plots
/// linked from `plot_dir`.
pub(crate) fn section(cluster: &Sweep, plot_dir: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## One network on several machines\n");
    let commit = if cluster.commit.is_empty() {
        "a commit that was not recorded".to_string()
    } else {
        match cluster.commit.split_once(' ') {
            Some((hash, note)) => format!("commit `{hash}` {note}"),
            None => format!("commit `{}`", cluster.commit),
        }
    };
    let _ = writeln!(
        md,
        "This section is generated from `bench/cluster.json`, like the rest of this file; do not edit it \
         by hand. Measured on {} at {commit}, on the machine above ({} cores), with:\n\n```sh\n{}\n```\n",
        cluster.generated,
        cluster.machine.cores,
        cluster.command.trim()
    );
    let _ = writeln!(md, "Pinning: {}.", cluster.pinning);
    for peer in &cluster.peers {
        let _ = writeln!(
            md,
            "{} ({}), started as `{}`.",
            peer.name,
            peer.configuration.trim(),
            peer.command.trim()
        );
    }
    md.push('\n');
    if !cluster.notes.trim().is_empty() {
        let _ = writeln!(md, "{}\n", cluster.notes.trim_end());
    }
    md.push_str(&by_size(cluster));
    let dir = plot_dir.trim_end_matches('/');
    for plot in plots(cluster) {
        let link = if dir.is_empty() { plot.file.to_string() } else { format!("{dir}/{}", plot.file) };
        let _ = writeln!(md, "![{}]({link})\n\n{}\n", plot.title, plot.caption);
    }
    md.push_str(&hop(cluster));
    md.push_str(&model(cluster));
    md.push_str(&every_run(cluster));
    md
}

/// Deliveries/s and latency per load, one row per configuration.
fn by_size(cluster: &Sweep) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "### Deliveries and latency by network size\n");
    let _ = writeln!(
        md,
        "Medians over the repetitions, with the range in brackets; runs that lost, duplicated or \
         disordered a delivery or a client are left out of the medians and counted in the run column. \
         Lost, disconnected and out of order are summed over every run; \"out of order\" counts clients \
         whose order differed from the network's, of the clients checked (every client on every node is \
         checked against one reference order). Server CPU is per process while messages flowed: each \
         node, then nats-server. Busy is the server side's CPU in the flow over the flow's duration (1.0 \
         is the one core they share). Others is the most CPU the rest of the machine used during one of \
         the runs, to show which runs shared the machine.\n"
    );
    for (spec, shapes) in groups(&cluster.runs) {
        let _ = writeln!(md, "#### {}\n", cell(&load_words(spec)));
        let _ = writeln!(
            md,
            "| configuration | runs | deliveries/s | p50 (ms) | p99 (ms) | lost | disconnected | out of order \
             | server CPU in flow (s) | busy | others (s) |"
        );
        let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|");
        for (shape, runs) in shapes {
            let ok: Vec<&RunResult> = runs.iter().copied().filter(|r| clean(r)).collect();
            let failed = runs.len() - ok.len();
            let runs_text = if failed == 0 {
                runs.len().to_string()
            } else {
                format!("{} (**{failed} failed**)", runs.len())
            };
            let lost: u64 = runs.iter().map(|r| r.lost).sum();
            let disconnected: usize = runs.iter().map(|r| r.disconnected).sum();
            let violations: usize = runs.iter().map(|r| r.order_violations.unwrap_or(0)).sum();
            let checked: usize = runs
                .iter()
                .map(|r| r.connected.saturating_sub(r.order_unverified.unwrap_or(r.connected)))
                .sum();
            let cpu = cpu_per_process(&ok);
            let busy = spread(
                ok.iter()
                    .filter_map(|r| r.server.as_ref().map(|u| u.flow_cpu_secs / r.flow_secs.max(1e-9)))
                    .collect(),
                |v| decimals(v, 2),
            );
            let others = ok
                .iter()
                .chain(runs.iter().filter(|r| !clean(r)))
                .filter_map(|r| r.others_flow_cpu_secs)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
            let _ = writeln!(
                md,
                "| {} | {runs_text} | {} | {} | {} | {} | {} | {} | {} | {busy} | {} |",
                cell(&shape.name(&model_label(spec))),
                spread(ok.iter().map(|r| r.deliveries_per_sec).collect(), |v| signed_group(v.round())),
                spread(ok.iter().map(|r| r.latency.p50_us as f64).collect(), ms),
                spread(ok.iter().map(|r| r.latency.p99_us as f64).collect(), ms),
                group(lost),
                group(disconnected as u64),
                format_args!("{} of {}", group(violations as u64), group(checked as u64)),
                cpu,
                others.map_or(DASH.to_string(), |o| decimals(o, 2)),
            );
        }
        md.push('\n');
    }
    md
}

/// "n1 1.20, n2 1.10, nats 0.30": the median flow CPU of each process
/// over `runs` (which share a shape).
fn cpu_per_process(runs: &[&RunResult]) -> String {
    let Some(first) = runs.first() else { return DASH.to_string() };
    if first.nodes.is_empty() {
        return spread(
            runs.iter().filter_map(|r| r.server.as_ref().map(|u| u.flow_cpu_secs)).collect(),
            |v| decimals(v, 2),
        );
    }
    let mut parts = Vec::new();
    for (i, node) in first.nodes.iter().enumerate() {
        let values =
            runs.iter().filter_map(|r| r.nodes.get(i)?.server.as_ref().map(|u| u.flow_cpu_secs)).collect();
        let spare = if node.clients == 0 { " (no clients)" } else { "" };
        parts.push(format!(
            "{}{spare} {}",
            node.name,
            median(values).map_or(DASH.to_string(), |v| decimals(v, 2))
        ));
    }
    for (i, process) in first.other_processes.iter().enumerate() {
        let values =
            runs.iter().filter_map(|r| r.other_processes.get(i).map(|p| p.usage.flow_cpu_secs)).collect();
        let name = if process.name == "nats-server" { "nats" } else { process.name.as_str() };
        parts.push(format!("{name} {}", median(values).map_or(DASH.to_string(), |v| decimals(v, 2))));
    }
    parts.join(", ")
}

/// What the NATS hop adds: paced latency alone and as one node.
fn hop(cluster: &Sweep) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "### What the NATS hop adds to latency\n");
    let _ = writeln!(
        md,
        "Under the paced loads, the model alone against the same model as the one node of a network: every \
         event then goes to nats-server and back before any client sees it. Medians over the clean runs \
         (range in brackets); added is the difference of the medians.\n"
    );
    let _ = writeln!(
        md,
        "| load | alone p50 (ms) | 1 node p50 (ms) | added p50 (ms) | alone p99 (ms) | 1 node p99 (ms) | added p99 (ms) |"
    );
    let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|");
    let mut rows = 0;
    for (spec, shapes) in groups(&cluster.runs) {
        if spec.load.rate <= 0.0 {
            continue;
        }
        let pick = |nodes: usize| {
            shapes
                .iter()
                .find(|(s, _)| *s == Shape { nodes, spare: 0 })
                .map(|(_, runs)| runs.iter().copied().filter(|r| clean(r)).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let (alone, one) = (pick(0), pick(1));
        if alone.is_empty() || one.is_empty() {
            continue;
        }
        let p = |runs: &[&RunResult], f: fn(&RunResult) -> u64| {
            runs.iter().map(|r| f(r) as f64).collect::<Vec<_>>()
        };
        let p50 = |r: &RunResult| r.latency.p50_us;
        let p99 = |r: &RunResult| r.latency.p99_us;
        let added = |f: fn(&RunResult) -> u64| match (median(p(&one, f)), median(p(&alone, f))) {
            (Some(a), Some(b)) => ms(a - b),
            _ => DASH.to_string(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            cell(&load_words(spec)),
            spread(p(&alone, p50), ms),
            spread(p(&one, p50), ms),
            added(p50),
            spread(p(&alone, p99), ms),
            spread(p(&one, p99), ms),
            added(p99),
        );
        rows += 1;
    }
    if rows == 0 {
        let _ = writeln!(md, "| no paced runs of both configurations | | | | | | |");
    }
    md.push('\n');
    md
}

/// Every run, one row each, for checking the tables above.
fn every_run(cluster: &Sweep) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "### Every run\n");
    let _ = writeln!(
        md,
        "In the order they were made. CPU is in the flow, per process (each node, then nats-server). A run \
         with a problem says what it was.\n"
    );
    let _ = writeln!(
        md,
        "| configuration | clients | load | deliveries/s | p50 (ms) | p99 (ms) | lost | disconnected | out of order \
         | clients per node | server CPU in flow (s) | others (s) | problem |"
    );
    let _ = writeln!(md, "|---|--:|---|--:|--:|--:|--:|--:|--:|---|---|--:|---|");
    for run in &cluster.runs {
        let Some(spec) = &run.spec else { continue };
        let per_node = if run.nodes.is_empty() {
            group(run.connected as u64)
        } else {
            run.nodes.iter().map(|n| n.clients.to_string()).collect::<Vec<_>>().join(" / ")
        };
        let _ = writeln!(
            md,
            "| {} | {} | {}×{} {} | {} | {} | {} | {} | {} | {} | {per_node} | {} | {} | {} |",
            cell(&Shape::of(spec).name(&model_label(spec))),
            group(spec.load.clients as u64),
            spec.load.senders,
            group(spec.load.messages as u64),
            load_text(&spec.load),
            signed_group(run.deliveries_per_sec.round()),
            ms(run.latency.p50_us as f64),
            ms(run.latency.p99_us as f64),
            group(run.lost),
            group(run.disconnected as u64),
            run.order_violations.map_or(DASH.to_string(), |v| group(v as u64)),
            cpu_per_process(&[run]),
            run.others_flow_cpu_secs.map_or(DASH.to_string(), |o| decimals(o, 2)),
            cell(&problems(run).join("; ")),
        );
    }
    md.push('\n');
    md
}

#[cfg(test)]
mod tests;

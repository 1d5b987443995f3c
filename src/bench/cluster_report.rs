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

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 })
}

/// "1.23 (1.10–1.40)": the median and the range; the median alone for one value.
fn spread(values: Vec<f64>, show: impl Fn(f64) -> String) -> String {
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
            caption: "The paced loads (100 clients: 2,000 msg/s; 1,000 clients: 500 msg/s): the median p99 \
                      of the clean runs of each configuration, in milliseconds."
                .into(),
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

/// `y = at0 + slope × x`, fitted by least squares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Line {
    pub at0: f64,
    pub slope: f64,
}

impl Line {
    fn at(&self, x: f64) -> f64 {
        self.at0 + self.slope * x
    }
}

/// The least-squares line through `points`; `None` without two distinct xs.
pub(crate) fn fit(points: &[(f64, f64)]) -> Option<Line> {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if points.len() < 2 || sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    Some(Line { at0: mean_y - slope * mean_x, slope })
}

/// What a node and nats-server pay, in CPU seconds, fitted to the runs:
///
/// - `apply`: per event of the network, a node with no clients (the spare
///   node of the one-node-plus-spare floods), as a line in the channel's
///   members M: applying works out who must hear a message on every
///   replica, whoever holds the members.
/// - `own`: per event proposed by its clients, beyond applying, the node
///   that has every client (same runs): reading the line and proposing it
///   (`at0`, P) plus one delivery per member but the sender (`slope`, F,
///   against M − 1).
/// - `nats`: nats-server per event, as a line in the nodes consuming the
///   stream (every flood run with NATS).
/// - `alone`: the model alone, per event, against M − 1: for comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Costs {
    pub apply: Line,
    pub own: Line,
    pub nats: Line,
    pub alone: Option<Line>,
}

/// Medians per x of `points`, so that each measured size weighs the same
/// in a fit however many repetitions it had.
fn medians_by_x(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let mut xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    xs.into_iter()
        .filter_map(|x| median(points.iter().filter(|p| p.0 == x).map(|p| p.1).collect()).map(|m| (x, m)))
        .collect()
}

/// The flood runs (unpaced) that delivered everything.
fn floods(cluster: &Sweep) -> impl Iterator<Item = (&RunResult, &RunSpec)> {
    cluster
        .runs
        .iter()
        .filter(|r| clean(r))
        .filter_map(|r| Some((r, r.spec.as_ref()?)))
        .filter(|(_, s)| s.load.rate == 0.0)
}

pub(crate) fn costs(cluster: &Sweep) -> Option<Costs> {
    let mut apply = Vec::new();
    let mut own = Vec::new();
    let mut nats = Vec::new();
    let mut alone = Vec::new();
    for (run, spec) in floods(cluster) {
        let (events, members) = (events(spec), spec.load.clients as f64);
        let flow = |u: Option<&super::results::Usage>| u.map(|u| u.flow_cpu_secs / events);
        let shape = Shape::of(spec);
        if shape == (Shape { nodes: 1, spare: 1 })
            && let (Some(with), Some(spare)) = (
                flow(run.nodes.first().and_then(|n| n.server.as_ref())),
                flow(run.nodes.get(1).and_then(|n| n.server.as_ref())),
            )
        {
            apply.push((members, spare));
            own.push((members - 1.0, with - spare));
        }
        if shape.nodes > 0
            && let Some(process) = run.other_processes.iter().find(|p| p.name == "nats-server")
        {
            nats.push(((shape.nodes + shape.spare) as f64, process.usage.flow_cpu_secs / events));
        }
        if shape.nodes == 0
            && let Some(cpu) = flow(run.server.as_ref())
        {
            alone.push((members - 1.0, cpu));
        }
    }
    Some(Costs {
        apply: fit(&medians_by_x(apply))?,
        own: fit(&medians_by_x(own))?,
        nats: fit(&medians_by_x(nats))?,
        alone: fit(&medians_by_x(alone)),
    })
}

/// What the model says of `nodes` nodes sharing `members` members of one
/// channel evenly, its senders too, at `rate` messages/s in total.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Prediction {
    /// CPU seconds one node spends per event of the network.
    pub node_per_event: f64,
    /// Of it, the part every node pays whatever its clients (applying).
    pub apply_share: f64,
    /// Cores one node and nats-server keep busy at `rate`.
    pub node_cores: f64,
    pub nats_cores: f64,
    /// The most messages/s with one core per node and one for nats-server,
    /// and which of them sets it.
    pub max_rate: f64,
    pub limited_by_nats: bool,
}

pub(crate) fn predict(costs: &Costs, nodes: usize, members: f64, rate: f64) -> Prediction {
    let k = nodes as f64;
    let apply = costs.apply.at(members).max(0.0);
    let per_event = apply + costs.own.at0.max(0.0) / k + costs.own.slope.max(0.0) * (members - 1.0) / k;
    let nats = costs.nats.at(k).max(1e-12);
    let (node_max, nats_max) = (1.0 / per_event, 1.0 / nats);
    Prediction {
        node_per_event: per_event,
        apply_share: apply / per_event,
        node_cores: rate * per_event,
        nats_cores: rate * nats,
        max_rate: node_max.min(nats_max),
        limited_by_nats: nats_max < node_max,
    }
}

/// Microseconds with two decimals, from seconds.
fn us(secs: f64) -> String {
    decimals(secs * 1e6, 2)
}

/// Nanoseconds, whole, from seconds.
fn ns(secs: f64) -> String {
    signed_group((secs * 1e9).round())
}

/// The sizes the model predicts for, the channel sizes it assumes and the
/// rate it is loaded with.
const PREDICT_NODES: [usize; 4] = [1, 3, 10, 30];
const PREDICT_MEMBERS: [f64; 2] = [1_000.0, 10_000.0];
const PREDICT_RATE: f64 = 500.0;

fn model(cluster: &Sweep) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "### What a node pays, and what that predicts\n");
    let Some(costs) = costs(cluster) else {
        let _ = writeln!(
            md,
            "Not computed: it needs clean flood runs of one node with every client plus one spare node, \
             at two client counts, and runs with NATS at two network sizes.\n"
        );
        return md;
    };
    let _ = writeln!(
        md,
        "Every node applies every event of the network and fans out only to its own clients. Measured \
         here, in CPU time per event (the flood's messages; each is one event), from the flood runs that \
         delivered everything, fitted by least squares through the medians at each size:\n"
    );
    let _ = writeln!(md, "| cost | measured as | fit |");
    let _ = writeln!(md, "|---|---|---|");
    let _ = writeln!(
        md,
        "| A(M): applying one event, on every node | the node without clients, per event, against the channel's \
         M members | {} µs + {} ns × M |",
        us(costs.apply.at0),
        ns(costs.apply.slope)
    );
    let _ = writeln!(
        md,
        "| P: taking in one of its own clients' messages and proposing it | the node with every client, per \
         event, minus A(M): the part that does not grow with M | {} µs |",
        us(costs.own.at0)
    );
    let _ = writeln!(
        md,
        "| F: one delivery to one of its own clients | the same, its growth per member (M − 1 deliveries \
         per event) | {} ns |",
        ns(costs.own.slope)
    );
    let _ = writeln!(
        md,
        "| X(k): nats-server, per event | nats-server per event, against the k nodes consuming the stream \
         | {} µs + {} µs × k |",
        us(costs.nats.at0),
        us(costs.nats.slope)
    );
    if let Some(alone) = costs.alone {
        let _ = writeln!(
            md,
            "| for comparison: the model alone, no NATS | its CPU per event against M − 1 | {} µs + {} ns × (M − 1) |",
            us(alone.at0),
            ns(alone.slope)
        );
    }
    md.push('\n');
    let _ = writeln!(
        md,
        "A network of k nodes sharing a channel of M members evenly (and its senders), at R messages/s, \
         costs each node R × (A(M) + P/k + F × M/k) CPU seconds per second, and nats-server R × X(k). The \
         first term does not shrink as nodes are added: it is what the one total order costs, since every \
         replica must apply every event to stay the same as every other. Predicted with one core per node \
         and one for nats-server, R = {} messages/s (the single-node sweep's paced load at 1,000 clients):\n",
        signed_group(PREDICT_RATE)
    );
    let _ = writeln!(
        md,
        "| members M | nodes k | per node per event (µs) | of it applying | node cores at R | nats-server cores at \
         R | most messages/s | deliveries/s then | set by |"
    );
    let _ = writeln!(md, "|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    for members in PREDICT_MEMBERS {
        for nodes in PREDICT_NODES {
            let p = predict(&costs, nodes, members, PREDICT_RATE);
            let _ = writeln!(
                md,
                "| {} | {nodes} | {} | {:.0}% | {} | {} | {} | {} | {} |",
                signed_group(members),
                decimals(p.node_per_event * 1e6, 1),
                100.0 * p.apply_share,
                decimals(p.node_cores, 3),
                decimals(p.nats_cores, 3),
                signed_group(p.max_rate.round()),
                signed_group((p.max_rate * members).round()),
                if p.limited_by_nats { "nats-server" } else { "each node" },
            );
        }
        let floor = costs.apply.at(members).max(1e-12);
        let _ = writeln!(
            md,
            "| {} | ∞ | {} | 100% | | | {} | {} | applying (the nodes alone: nats-server grows with k) |",
            signed_group(members),
            decimals(floor * 1e6, 1),
            signed_group((1.0 / floor).round()),
            signed_group((members / floor).round()),
        );
    }
    md.push('\n');
    md.push_str(&checked(cluster, &costs));
    md
}

/// The model against the networks measured: per node and for
/// nats-server, CPU per event under the flood, measured (the median over
/// the clean runs of the mean over the nodes) and predicted.
fn checked(cluster: &Sweep, costs: &Costs) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Checked against the floods of every network measured: a node's CPU per event, the mean over the \
         nodes of a run and the median over its repetitions, next to the model's A(M) + P/k + F × (M − 1)/k. \
         The nodes' costs were fitted to the one-node-plus-spare runs only, so these runs check them; \
         nats-server's were fitted to these runs, so its columns show only how well a line fits.\n"
    );
    let _ = writeln!(
        md,
        "| clients M | nodes k | per node per event, measured (µs) | predicted (µs) | nats-server per event, measured \
         (µs) | predicted (µs) |"
    );
    let _ = writeln!(md, "|--:|--:|--:|--:|--:|--:|");
    let mut keys: Vec<(usize, usize)> = Vec::new();
    for (_, spec) in floods(cluster) {
        let shape = Shape::of(spec);
        if shape.nodes > 0 && shape.spare == 0 && !keys.contains(&(spec.load.clients, shape.nodes)) {
            keys.push((spec.load.clients, shape.nodes));
        }
    }
    keys.sort_unstable();
    for (clients, nodes) in keys {
        let runs: Vec<(&RunResult, &RunSpec)> = floods(cluster)
            .filter(|(_, s)| s.load.clients == clients && Shape::of(s) == Shape { nodes, spare: 0 })
            .collect();
        let node = median(
            runs.iter()
                .filter_map(|(r, s)| {
                    let cpu: Vec<f64> =
                        r.nodes.iter().filter_map(|n| n.server.as_ref().map(|u| u.flow_cpu_secs)).collect();
                    (!cpu.is_empty()).then(|| cpu.iter().sum::<f64>() / cpu.len() as f64 / events(s))
                })
                .collect(),
        );
        let nats = median(
            runs.iter()
                .filter_map(|(r, s)| {
                    let p = r.other_processes.iter().find(|p| p.name == "nats-server")?;
                    Some(p.usage.flow_cpu_secs / events(s))
                })
                .collect(),
        );
        let predicted = predict(costs, nodes, clients as f64, 0.0);
        let shown = |v: Option<f64>| v.map_or(DASH.to_string(), |v| decimals(v * 1e6, 1));
        let _ = writeln!(
            md,
            "| {} | {nodes} | {} | {} | {} | {} |",
            group(clients as u64),
            shown(node),
            decimals(predicted.node_per_event * 1e6, 1),
            shown(nats),
            decimals(costs.nats.at(nodes as f64) * 1e6, 1),
        );
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
mod tests {
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
            r.other_processes =
                vec![ProcessUsage { name: "nats-server".into(), usage: flow(nats_cpu).unwrap() }];
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
            let at = md[from..]
                .find(needle)
                .unwrap_or_else(|| panic!("{needle:?} missing or out of order:\n{md}"));
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
}

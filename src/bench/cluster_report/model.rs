//! The cost model of the cluster section: what a node and nats-server pay
//! per event, fitted to the recorded runs, what that predicts for bigger
//! networks, and the check of the prediction against every network
//! measured.
//!
//! Apart from the tables of measurements because it is arithmetic with
//! its own vocabulary (lines, costs, predictions) that its tests check on
//! made-up runs, and because the section reads it as one argument: the
//! costs, the prediction, the check.

use std::fmt::Write as _;

use super::{Shape, clean, events, median};
use crate::bench::format::{DASH, decimals, group, signed_group};
use crate::bench::results::{RunResult, RunSpec, Sweep, Usage};

/// `y = at0 + slope × x`, fitted by least squares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Line {
    pub at0: f64,
    pub slope: f64,
}

impl Line {
    pub(super) fn at(&self, x: f64) -> f64 {
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
pub(super) fn medians_by_x(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let mut xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    xs.into_iter()
        .filter_map(|x| median(points.iter().filter(|p| p.0 == x).map(|p| p.1).collect()).map(|m| (x, m)))
        .collect()
}

/// The flood runs (unpaced) that delivered everything.
pub(super) fn floods(cluster: &Sweep) -> impl Iterator<Item = (&RunResult, &RunSpec)> {
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
        let flow = |u: Option<&Usage>| u.map(|u| u.flow_cpu_secs / events);
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

pub(super) fn model(cluster: &Sweep) -> String {
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

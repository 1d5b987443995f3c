//! What the report's plots show: which runs feed each plot, the points of
//! each line, the title and axis text, and a caption that says exactly what
//! was measured. How a plot is drawn, and written to a file, is
//! [`super::svg`]'s business, so this module is pure data.
//!
//! Why it is shaped so:
//! - Which runs feed which plot is decided in one place ([`plots`]), and the
//!   Markdown takes each plot's title and caption from it, so the plot and
//!   the text under it cannot disagree about what they show.
//! - Only clean runs are plotted (every message to every client exactly
//!   once, in order, nobody disconnected): a run that lost deliveries or
//!   clients carried a different load than its spec says, so its rate is
//!   not comparable. The caption names every run left out and why.
//! - A line is one server. Where one plot would hold several loads for a
//!   server, each load is its own line, told apart by its dash pattern.

use std::collections::BTreeMap;

use super::format::{MIB, group, load_text};
use super::results::{RunResult, RunSpec, Sweep, label};
use super::summary::problems;
use super::tables::Kind;

/// One plot: what it shows and the points of each line.
pub struct Plot {
    pub file: &'static str,
    pub title: String,
    /// What was measured, in a sentence or three, for under the plot.
    pub caption: String,
    pub y_desc: &'static str,
    /// Latencies, memory and CPU per delivery differ by orders of magnitude
    /// between servers and sizes; on a linear axis the small ones would lie
    /// flat on zero.
    pub log_y: bool,
    pub series: Vec<Series>,
}

/// One line: a server, under one load when the plot holds several.
pub struct Series {
    pub server: String,
    pub variant: Option<String>,
    /// (clients, value), sorted by clients.
    pub points: Vec<(f64, f64)>,
}

// The legend names servers and loads apart (see `svg`); the tests find
// a line by both at once.
#[cfg(test)]
impl Series {
    /// "prethread/1", or "prethread/1, unpaced, open loop" when the plot
    /// holds several loads.
    pub fn name(&self) -> String {
        match &self.variant {
            Some(variant) => format!("{}, {variant}", self.server),
            None => self.server.clone(),
        }
    }
}

/// Every server of the sweep, in order of first appearance: its place in
/// this list is its style in every plot.
pub fn servers(sweep: &Sweep) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let labels = sweep.runs.iter().filter_map(|r| r.spec.as_ref().map(label));
    for name in labels.chain(sweep.idle.iter().map(|i| i.server.clone())) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// A point of a plot before it is put in a line.
struct Point {
    server: String,
    kind: Kind,
    x: f64,
    y: f64,
}

/// The runs one plot considers: those it plots and those it leaves out.
struct Chosen<'a> {
    plotted: Vec<(&'a RunResult, &'a RunSpec)>,
    left_out: Vec<(&'a RunResult, &'a RunSpec)>,
}

/// Splits the runs `wanted` accepts into clean ones and the rest.
fn choose(sweep: &Sweep, wanted: impl Fn(&RunResult, &RunSpec) -> bool) -> Chosen<'_> {
    let (plotted, left_out) = sweep
        .runs
        .iter()
        .filter_map(|r| Some((r, r.spec.as_ref()?)))
        .filter(|(r, s)| wanted(r, s))
        .partition(|(r, _)| problems(r).is_empty());
    Chosen { plotted, left_out }
}

/// The four plots, decided from the data.
pub fn plots(sweep: &Sweep) -> Vec<Plot> {
    vec![deliveries(sweep), latency(sweep), peak_rss(sweep), cpu_per_million(sweep)]
}

fn deliveries(sweep: &Sweep) -> Plot {
    let chosen = choose(sweep, |_, s| !s.load.is_idle() && s.load.rate <= 0.0);
    let (series, load) = lines(points(&chosen, |r| Some(r.deliveries_per_sec)), false);
    Plot {
        file: "deliveries.svg",
        title: format!("Deliveries per second vs clients ({load})"),
        caption: caption(
            "Deliveries per second: messages received by all clients together, divided by the seconds \
             from the first message sent to the last one received.",
            &chosen,
            true,
        ),
        y_desc: "deliveries per second",
        log_y: false,
        series,
    }
}

fn latency(sweep: &Sweep) -> Plot {
    let chosen = choose(sweep, |r, s| !s.load.is_idle() && s.load.rate > 0.0 && r.latency.count > 0);
    // The sweep paces each size at its own rate; one line per server across
    // them reads as "latency under the sweep's steady load", with the rates
    // in the caption.
    let (series, _) = lines(points(&chosen, |r| Some(r.latency.p99_us as f64 / 1000.0)), true);
    Plot {
        file: "p99-latency.svg",
        title: "p99 delivery latency vs clients (paced load)".to_string(),
        caption: caption(
            "99th percentile of the time from a message being sent to its arrival at a client, over \
             every delivery of a run, under a steady paced load.",
            &chosen,
            true,
        ),
        y_desc: "p99 latency (ms, log scale)",
        log_y: true,
        series,
    }
}

fn peak_rss(sweep: &Sweep) -> Plot {
    let chosen = choose(sweep, |r, _| r.server.is_some());
    // Peak RSS depends mostly on the client count, so every load counts;
    // where a server has several runs at one count, the largest peak is its
    // peak.
    let mut peaks: Vec<Point> = Vec::new();
    for (run, spec) in &chosen.plotted {
        let Some(usage) = &run.server else { continue };
        let (server, x, y) = (label(spec), spec.load.clients as f64, usage.peak_rss_bytes as f64 / MIB);
        match peaks.iter_mut().find(|p| p.server == server && p.x == x) {
            Some(point) => point.y = point.y.max(y),
            None => peaks.push(Point { server, kind: Kind::Unspecified, x, y }),
        }
    }
    let (series, _) = lines(peaks, true);
    Plot {
        file: "peak-rss.svg",
        title: "Peak server RSS vs clients (largest over all loads)".to_string(),
        caption: caption(
            "The largest resident memory of the server (summed over its processes, sampled every 100 ms) \
             during any of its runs at that client count: the runs of the other plots and the idle run.",
            &chosen,
            false,
        ),
        y_desc: "peak RSS (MiB, log scale)",
        log_y: true,
        series,
    }
}

fn cpu_per_million(sweep: &Sweep) -> Plot {
    let chosen = choose(sweep, |r, s| {
        !s.load.is_idle()
            && s.load.rate <= 0.0
            && r.delivered > 0
            && r.server.as_ref().is_some_and(|u| u.flow_cpu_secs > 0.0)
    });
    let per_million = |r: &RunResult| Some(r.server.as_ref()?.flow_cpu_secs / r.delivered as f64 * 1e6);
    let (series, load) = lines(points(&chosen, per_million), false);
    Plot {
        file: "cpu-per-million.svg",
        title: format!("Server CPU per million deliveries vs clients ({load})"),
        caption: caption(
            "Server CPU seconds (user + system, all its processes and threads) spent while messages \
             flowed — from every client being in the channel to the last delivery — per million \
             deliveries. Registering and joining are not counted.",
            &chosen,
            true,
        ),
        y_desc: "server CPU s per 10⁶ deliveries (log scale)",
        log_y: true,
        series,
    }
}

/// A point per plotted run: its client count and `y` of it.
fn points(chosen: &Chosen, y: impl Fn(&RunResult) -> Option<f64>) -> Vec<Point> {
    let point = |(r, s): &(&RunResult, &RunSpec)| {
        Some(Point { server: label(s), kind: Kind::of(r), x: s.load.clients as f64, y: y(r)? })
    };
    chosen.plotted.iter().filter_map(point).collect()
}

/// Puts points into lines, one per server and load, in the order of the
/// sweep. With `merge`, a server's loads share one line as long as no two
/// fall on one client count (the sweep's paced load differs per size).
/// Returns the lines and the plot's load in words.
fn lines(points: Vec<Point>, merge: bool) -> (Vec<Series>, String) {
    let mut kinds: Vec<Kind> = Vec::new();
    for p in &points {
        if !kinds.contains(&p.kind) {
            kinds.push(p.kind);
        }
    }
    let clash = points
        .iter()
        .enumerate()
        .any(|(i, p)| points[..i].iter().any(|q| q.server == p.server && q.x == p.x));
    let one_line_per_server = kinds.len() <= 1 || (merge && !clash);
    let load = match kinds.as_slice() {
        [kind] => kind.short(),
        [] => "no runs".to_string(),
        _ => "load per line".to_string(),
    };
    let mut series: Vec<Series> = Vec::new();
    for p in points {
        // A log axis cannot place zero or less, and non-finite values are not data.
        if !(p.x > 0.0 && p.x.is_finite() && p.y.is_finite()) {
            continue;
        }
        let variant = (!one_line_per_server).then(|| p.kind.short());
        match series.iter_mut().find(|s| s.server == p.server && s.variant == variant) {
            Some(s) => s.points.push((p.x, p.y)),
            None => series.push(Series { server: p.server, variant, points: vec![(p.x, p.y)] }),
        }
    }
    for s in &mut series {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    (series, load)
}

/// `what`, then the loads of the plotted runs size by size (unless
/// `per_run` is false: a point then stands for several runs), then the runs
/// left out and why.
fn caption(what: &str, chosen: &Chosen, per_run: bool) -> String {
    let mut text = what.to_string();
    if chosen.plotted.is_empty() {
        text += " No run qualified.";
    } else if per_run {
        text += &format!(" Each point is one run{}.", loads_by_size(&chosen.plotted));
    }
    if !chosen.left_out.is_empty() {
        let gone: Vec<String> = chosen
            .left_out
            .iter()
            .map(|(r, s)| {
                format!("{} at N={} ({})", label(s), group(s.load.clients as u64), problems(r).join(", "))
            })
            .collect();
        text += &format!(" Left out, because not every message reached every client: {}.", gone.join("; "));
    }
    text
}

/// " (unpaced, open loop): N=100, 1,000 and 5,000: 10 senders × 1,000
/// messages; N=10,000: ..." — the pace once if all runs share it, client
/// counts with the same loads named together.
fn loads_by_size(runs: &[(&RunResult, &RunSpec)]) -> String {
    let pace = |s: &RunSpec| load_text(&s.load);
    let shared = runs.iter().all(|(_, s)| pace(s) == pace(runs[0].1)).then(|| pace(runs[0].1));
    let mut by_size: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (_, spec) in runs {
        let shape = format!(
            "{} senders × {} messages",
            group(spec.load.senders as u64),
            group(spec.load.messages as u64)
        );
        let load = if shared.is_some() { shape } else { format!("{shape}, {}", pace(spec)) };
        let loads = by_size.entry(spec.load.clients).or_default();
        if !loads.contains(&load) {
            loads.push(load);
        }
    }
    let mut groups: Vec<(Vec<usize>, String)> = Vec::new();
    for (clients, loads) in by_size {
        let loads = loads.join(" or ");
        match groups.iter_mut().find(|(_, l)| *l == loads) {
            Some((sizes, _)) => sizes.push(clients),
            None => groups.push((vec![clients], loads)),
        }
    }
    let parts: Vec<String> =
        groups.into_iter().map(|(sizes, loads)| format!("N={}: {loads}", and_list(&sizes))).collect();
    let pace = shared.map_or(String::new(), |p| format!(" ({p})"));
    format!("{pace}: {}", parts.join("; "))
}

/// "10", "10 and 100", "10, 100 and 1,000".
fn and_list(sizes: &[usize]) -> String {
    let names: Vec<String> = sizes.iter().map(|&n| group(n as u64)).collect();
    match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::fixtures::{idle_run, run, spec, sweep};

    fn find<'a>(plots: &'a [Plot], file: &str) -> &'a Plot {
        plots.iter().find(|p| p.file == file).unwrap()
    }

    fn series(plots: &[Plot], file: &str, name: &str) -> Vec<(f64, f64)> {
        let plot = find(plots, file);
        plot.series.iter().find(|s| s.name() == name).map(|s| s.points.clone()).unwrap_or_default()
    }

    #[test]
    fn plots_choose_their_runs() {
        let plots = plots(&sweep());
        // Unpaced only; the errored run is left out, and said to be.
        assert_eq!(
            series(&plots, "deliveries.svg", "iterative"),
            vec![(10.0, 1_234_567.0), (100.0, 234_567.0)]
        );
        let deliveries = find(&plots, "deliveries.svg");
        assert!(deliveries.caption.contains(
            "Left out, because not every message reached every client: \
             iterative at N=1,000 (stopped short: connect: Connection refused | after 517"
        ));
        // Paced for p99.
        assert_eq!(series(&plots, "p99-latency.svg", "prethread/4"), vec![(10.0, 0.3), (100.0, 0.45)]);
        // 1.0 CPU s while messages flowed over 100,000 deliveries = 10 s per million.
        assert_eq!(series(&plots, "cpu-per-million.svg", "iterative"), vec![(10.0, 10.0), (100.0, 1.0)]);
        // Largest peak of every load at each count, the idle run included.
        assert_eq!(
            series(&plots, "peak-rss.svg", "prethread/4"),
            vec![(10.0, 8.0), (100.0, 80.0), (2000.0, 1600.0)]
        );
    }

    #[test]
    fn idle_runs_are_no_throughput() {
        let mut sweep = sweep();
        sweep.runs.push(idle_run("iterative", None, 10_000));
        let plots = plots(&sweep);
        for file in ["deliveries.svg", "p99-latency.svg", "cpu-per-million.svg"] {
            assert!(!series(&plots, file, "iterative").iter().any(|p| p.0 == 10_000.0), "{file}");
        }
        assert!(series(&plots, "peak-rss.svg", "iterative").iter().any(|p| p.0 == 10_000.0));
    }

    #[test]
    fn a_run_that_lost_clients_is_left_out_and_named() {
        let mut sweep = sweep();
        sweep.runs[1].disconnected = 7;
        sweep.runs[1].lost = 700;
        let plots = plots(&sweep);
        assert_eq!(series(&plots, "deliveries.svg", "iterative"), vec![(10.0, 1_234_567.0)]);
        assert!(
            find(&plots, "deliveries.svg")
                .caption
                .contains("iterative at N=100 (700 deliveries lost, 7 clients disconnected)")
        );
    }

    #[test]
    fn the_paced_rates_of_a_sweep_make_one_line_per_server() {
        let mut sweep = sweep();
        // The sweep paces large rooms more slowly.
        for (clients, rate) in [(1000, 500.0), (5000, 50.0)] {
            sweep.runs.push(run(spec("prethread", Some(4), clients, rate), 1.0, 2000));
        }
        let plots = plots(&sweep);
        let p99 = find(&plots, "p99-latency.svg");
        let names: Vec<String> = p99.series.iter().map(Series::name).collect();
        assert_eq!(names, ["iterative", "prethread/4"]);
        assert_eq!(series(&plots, "p99-latency.svg", "prethread/4").len(), 4);
        assert!(p99.caption.contains(
            " Each point is one run: N=10 and 100: 10 senders × 1,000 messages, paced, 1,000 msg/s; N=1,000: \
             10 senders × 1,000 messages, paced, 500 msg/s; N=5,000: 10 senders × 1,000 messages, paced, 50 \
             msg/s."
        ));
    }

    #[test]
    fn two_loads_at_one_size_are_two_lines() {
        let mut sweep = sweep();
        let mut closed = spec("prethread", Some(4), 100, 0.0);
        closed.load.window = Some(1000);
        sweep.runs.push(run(closed, 5_000_000.0, 800));
        let plots = plots(&sweep);
        let deliveries = find(&plots, "deliveries.svg");
        assert!(deliveries.title.ends_with("(load per line)"));
        let names: Vec<String> = deliveries.series.iter().map(Series::name).collect();
        assert_eq!(
            names,
            [
                "iterative, unpaced, open loop",
                "prethread/4, unpaced, open loop",
                "prethread/4, unpaced, closed loop, at most 1,000 in flight"
            ]
        );
    }

    #[test]
    fn captions_name_the_loads_size_by_size() {
        let plots = plots(&sweep());
        let deliveries = find(&plots, "deliveries.svg");
        assert_eq!(deliveries.title, "Deliveries per second vs clients (unpaced, open loop)");
        assert!(deliveries.caption.contains(
            " Each point is one run (unpaced, open loop): N=10 and 100: 10 senders × 1,000 messages."
        ));
        assert_eq!(and_list(&[10, 100, 1000]), "10, 100 and 1,000");
        assert_eq!(and_list(&[5000]), "5,000");
    }

    #[test]
    fn every_server_of_the_sweep_is_listed_once_in_order() {
        let mut sweep = sweep();
        sweep.runs.push(run(spec("ngircd", None, 10, 0.0), 1.0, 1));
        assert_eq!(servers(&sweep), ["iterative", "prethread/4", "ngircd"]);
    }
}

//! The report of a benchmark sweep: the data a sweep collected ([`Sweep`]),
//! its JSON form (`docs/bench/results.json`), four SVG plots and the
//! Markdown text of `docs/PERFORMANCE.md`.
//!
//! Why it is shaped this way:
//!
//! - The sweep writes the raw results as JSON first and everything else is
//!   drawn from that file, so the report can be regenerated (or its layout
//!   changed) without rerunning hours of load, and every figure in the
//!   Markdown is derived from the data — nothing is typed in by hand except
//!   [`Sweep::notes`], which is kept verbatim.
//! - Rendering is pure: [`markdown`] returns a `String`, and the plots are
//!   drawn into a `String` before they are written, so tests need no files
//!   and a failed plot never leaves half a file behind.
//! - The plots use plotters' SVG backend without a font feature: plotters then
//!   only estimates text extents for layout and emits `<text>` elements that the
//!   viewer renders, so axis labels and legends need no font files at build or
//!   run time.
//! - Which runs feed which plot is decided in one place ([`plots`]), and the
//!   Markdown takes each plot's alt text from it, so the title of a plot and
//!   the text that links to it cannot disagree about which load they show.

use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};

use super::results::{RunResult, RunSpec};

/// The machine a sweep ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_bytes: u64,
    pub kernel: String,
    pub cpu_model: String,
}

/// A server's resident memory with no clients and with `clients` idle ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleMemory {
    /// The server's label, as made by [`label`], e.g. "prethread/1".
    pub server: String,
    pub clients: usize,
    pub rss_empty_bytes: u64,
    pub rss_loaded_bytes: u64,
}

impl IdleMemory {
    /// Bytes each idle connection costs: (loaded − empty) / clients. Signed
    /// because on a server whose memory barely grows, sampling noise can make
    /// the difference negative, and hiding that would overstate precision.
    /// `None` when no clients were connected.
    pub fn bytes_per_connection(&self) -> Option<f64> {
        (self.clients > 0)
            .then(|| (self.rss_loaded_bytes as f64 - self.rss_empty_bytes as f64) / self.clients as f64)
    }
}

/// How a peer (another IRC server measured for comparison) was set up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerNote {
    pub name: String,
    /// The command line that started it.
    pub command: String,
    /// Its configuration, in prose or as the relevant configuration lines.
    pub configuration: String,
}

/// Everything one sweep produced; written as `docs/bench/results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    /// The exact command that produced it.
    pub command: String,
    /// When it was produced, as text.
    pub generated: String,
    pub machine: Machine,
    /// How server and load generator were placed on CPUs, e.g. "server on CPU
    /// 0, load generator on CPU 1 (taskset)".
    pub pinning: String,
    /// Each run, with `spec` set.
    pub runs: Vec<RunResult>,
    pub idle: Vec<IdleMemory>,
    pub peers: Vec<PeerNote>,
    /// Hand-written analysis (Markdown), included verbatim.
    pub notes: String,
}

/// The name a server goes by in tables and legends: the model or peer name,
/// with the pool size when there is one ("iterative", "prethread/1", "ngircd").
pub fn label(spec: &RunSpec) -> String {
    match spec.workers {
        Some(workers) => format!("{}/{workers}", spec.server),
        None => spec.server.clone(),
    }
}

/// Writes `sweep` to `path` as pretty-printed JSON.
pub fn write_json(path: &Path, sweep: &Sweep) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(sweep).map_err(io::Error::other)?;
    text.push('\n');
    fs::write(path, text)
}

/// Reads a sweep written by [`write_json`].
pub fn read_json(path: &Path) -> io::Result<Sweep> {
    let bytes = fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        // Name the file: the caller usually reports only this error.
        io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
    })
}

/// Writes the four plots into `dir` and returns their file names:
/// deliveries/s vs clients, p99 latency vs clients, peak RSS vs clients, CPU
/// seconds per million deliveries vs clients (one line per server label; x
/// axis clients, log scale; unpaced runs for deliveries/s and CPU per million
/// deliveries, paced runs for p99 where present, else unpaced — each title
/// says which load it shows). Runs that stopped with an error are left out:
/// their figures describe a partial run. All four files are written even
/// without data, so the Markdown's links always resolve.
pub fn write_plots(dir: &Path, sweep: &Sweep) -> io::Result<Vec<String>> {
    let mut files = Vec::new();
    for plot in plots(sweep) {
        let svg = draw(&plot).map_err(|e| io::Error::other(format!("drawing {}: {e}", plot.file)))?;
        fs::write(dir.join(plot.file), svg)?;
        files.push(plot.file.to_string());
    }
    Ok(files)
}

/// The whole `docs/PERFORMANCE.md` text. `plot_dir` is the path of the plots
/// relative to the Markdown file (e.g. "bench").
pub fn markdown(sweep: &Sweep, plot_files: &[String], plot_dir: &str) -> String {
    let mut md = String::new();
    // `write!` into a String cannot fail; the results are ignored throughout.
    let _ = writeln!(md, "# Performance\n");
    let _ = writeln!(
        md,
        "This file is generated (last on {}); do not edit it by hand. To regenerate it, run:\n\n\
         ```sh\n{}\n```\n",
        sweep.generated,
        sweep.command.trim()
    );

    let m = &sweep.machine;
    let _ = writeln!(md, "## Machine\n");
    let _ = writeln!(md, "- Cores: {}", m.cores);
    let _ = writeln!(md, "- Memory: {:.1} GiB", m.memory_bytes as f64 / GIB);
    let _ = writeln!(md, "- Kernel: {}", m.kernel);
    let _ = writeln!(md, "- CPU: {}", m.cpu_model);
    let _ = writeln!(md, "- Pinning: {}\n", sweep.pinning);

    let _ = writeln!(md, "## What the numbers say\n");
    let _ = writeln!(md, "{}\n", sweep.notes.trim_end());
    md.push_str(&crate::bench::targets::section(sweep));

    let _ = writeln!(md, "## Plots\n");
    let plots = plots(sweep);
    let dir = plot_dir.trim_end_matches('/');
    for file in plot_files {
        let alt = plots.iter().find(|p| p.file == file).map_or(file.as_str(), |p| p.title.as_str());
        let link = if dir.is_empty() { file.clone() } else { format!("{dir}/{file}") };
        let _ = writeln!(md, "![{alt}]({link})\n");
    }

    let _ = writeln!(md, "## Runs\n");
    let _ = writeln!(
        md,
        "Latencies are from a message being sent to its delivery, in milliseconds. Server figures are \
         summed over the server's processes and threads; threads, processes and open fds are counted \
         with all clients connected. A dash means the figure was not measured.\n"
    );
    let mut kinds: Vec<Kind> = Vec::new();
    for run in &sweep.runs {
        let kind = Kind::of(run);
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds.sort_by(|a, b| a.order().total_cmp(&b.order()));
    for kind in kinds {
        let _ = writeln!(md, "### {}\n", kind.heading());
        md.push_str(RUN_HEADER);
        for run in sweep.runs.iter().filter(|r| Kind::of(r) == kind) {
            md.push_str(&run_row(run));
        }
        md.push('\n');
    }

    let _ = writeln!(md, "## Memory per idle connection\n");
    let _ = writeln!(
        md,
        "Server RSS with no clients, then with the clients connected and idle; per connection = \
         (loaded − empty) / clients.\n"
    );
    let _ = writeln!(
        md,
        "| server | clients | RSS empty (MiB) | RSS loaded (MiB) | bytes per connection | KiB per connection |"
    );
    let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|");
    for idle in &sweep.idle {
        let per = idle.bytes_per_connection();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&idle.server),
            group(idle.clients as u64),
            mib(idle.rss_empty_bytes),
            mib(idle.rss_loaded_bytes),
            per.map_or(DASH.to_string(), |b| signed_group(b.round())),
            per.map_or(DASH.to_string(), |b| format!("{:.1}", b / 1024.0)),
        );
    }
    md.push('\n');

    let _ = writeln!(md, "## Largest client count held\n");
    let _ = writeln!(
        md,
        "Per server, the most clients of any run in which all of them connected and the run finished \
         without error, next to the most any run attempted.\n"
    );
    let _ = writeln!(md, "| server | largest held | largest attempted |");
    let _ = writeln!(md, "|---|--:|--:|");
    for (server, held, attempted) in largest_held(sweep) {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            cell(&server),
            held.map_or(DASH.to_string(), |n| group(n as u64)),
            group(attempted as u64)
        );
    }
    md.push('\n');

    let _ = writeln!(md, "## Peers\n");
    if sweep.peers.is_empty() {
        let _ = writeln!(md, "No peers were measured.\n");
    }
    for peer in &sweep.peers {
        let _ = writeln!(md, "### {}\n", peer.name);
        let _ = writeln!(md, "{}\n", peer.configuration.trim_end());
        let _ = writeln!(md, "Started with:\n\n```sh\n{}\n```\n", peer.command.trim());
    }

    // One trailing newline, however the last section ended.
    let trimmed = md.trim_end().len();
    md.truncate(trimmed);
    md.push('\n');
    md
}

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;
const DASH: &str = "—";

const RUN_HEADER: &str =
    "| server | clients | senders×messages | rate | register (s) | join (s) | deliveries/s | \
p50 (ms) | p99 (ms) | p99.9 (ms) | max (ms) | lost | duplicated | order consistent | server CPU (s) | \
server CPU in flow (s) | generator CPU (s) | generator busy in flow | peak RSS (MiB) | threads | processes | \
context switches | open fds | error |
|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|
";

/// The load a run was under. Paced runs at different rates are different
/// loads: their latencies are not comparable, so they get separate tables
/// and separate lines.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Unpaced,
    /// Total messages per second.
    Paced(f64),
    /// A run recorded without its spec; shown so that nothing goes missing.
    Unspecified,
}

impl Kind {
    fn of(run: &RunResult) -> Kind {
        match &run.spec {
            Some(spec) if spec.rate > 0.0 => Kind::Paced(spec.rate),
            Some(_) => Kind::Unpaced,
            None => Kind::Unspecified,
        }
    }

    /// Table order: unpaced, then paced by rate, then runs without a spec.
    fn order(&self) -> f64 {
        match self {
            Kind::Unpaced => -1.0,
            Kind::Paced(rate) => *rate,
            Kind::Unspecified => f64::INFINITY,
        }
    }

    fn heading(&self) -> String {
        match self {
            Kind::Unpaced => "Unpaced load (senders send as fast as the server takes them)".to_string(),
            Kind::Paced(rate) => format!("Paced load ({} messages/s in total)", rate_text(*rate)),
            Kind::Unspecified => "Runs recorded without a spec".to_string(),
        }
    }

    fn short(&self) -> String {
        match self {
            Kind::Unpaced => "unpaced".to_string(),
            Kind::Paced(rate) => format!("paced, {} msg/s", rate_text(*rate)),
            Kind::Unspecified => "unknown load".to_string(),
        }
    }
}

fn run_row(run: &RunResult) -> String {
    let spec = run.spec.as_ref();
    let ms = |us: u64| {
        if run.latency.count == 0 { DASH.to_string() } else { decimals(us as f64 / 1000.0, 2) }
    };
    let usage = run.server.as_ref();
    let cols =
        [
            spec.map_or("(no spec)".to_string(), label),
            spec.map_or(DASH.to_string(), |s| group(s.clients as u64)),
            spec.map_or(DASH.to_string(), |s| {
                format!("{}×{}", group(s.senders as u64), group(s.messages as u64))
            }),
            spec.map_or(DASH.to_string(), |s| {
                if s.rate > 0.0 { rate_text(s.rate) } else { "unpaced".to_string() }
            }),
            format!("{:.2}", run.connect_secs),
            format!("{:.2}", run.join_secs),
            signed_group(run.deliveries_per_sec.round()),
            ms(run.latency.p50_us),
            ms(run.latency.p99_us),
            ms(run.latency.p999_us),
            ms(run.latency.max_us),
            group(run.lost),
            group(run.duplicated),
            if run.order_consistent { "yes" } else { "NO" }.to_string(),
            usage.map_or(DASH.to_string(), |u| format!("{:.2}", u.cpu_secs)),
            usage.map_or(DASH.to_string(), |u| format!("{:.2}", u.flow_cpu_secs)),
            format!("{:.2}", run.generator_cpu_secs),
            if run.flow_secs > 0.0 {
                format!("{:.0}%", 100.0 * run.generator_flow_cpu_secs / run.flow_secs)
            } else {
                DASH.to_string()
            },
            usage.map_or(DASH.to_string(), |u| mib(u.peak_rss_bytes)),
            usage.map_or(DASH.to_string(), |u| group(u.threads as u64)),
            usage.map_or(DASH.to_string(), |u| group(u.processes as u64)),
            usage.map_or(DASH.to_string(), |u| group(u.context_switches)),
            usage.map_or(DASH.to_string(), |u| group(u.open_fds as u64)),
            run.error.as_deref().map_or(String::new(), cell),
        ];
    format!("| {} |\n", cols.join(" | "))
}

/// Per server label, in order of first appearance: the largest `connected` of
/// its runs that connected every client and finished without error (`None`
/// if none did), and the largest client count any of its runs attempted.
fn largest_held(sweep: &Sweep) -> Vec<(String, Option<usize>, usize)> {
    let mut rows: Vec<(String, Option<usize>, usize)> = Vec::new();
    for run in &sweep.runs {
        let Some(spec) = &run.spec else { continue };
        let name = label(spec);
        let i = match rows.iter().position(|(n, _, _)| *n == name) {
            Some(i) => i,
            None => {
                rows.push((name, None, 0));
                rows.len() - 1
            }
        };
        let row = &mut rows[i];
        row.2 = row.2.max(spec.clients);
        if run.error.is_none() && run.connected == spec.clients {
            row.1 = Some(row.1.map_or(run.connected, |held| held.max(run.connected)));
        }
    }
    rows
}

/// One plot: what it shows and the points of each line.
struct Plot {
    file: &'static str,
    title: String,
    y_desc: &'static str,
    /// Latencies of different models differ by orders of magnitude; on a
    /// linear axis all but the slowest would lie flat on zero.
    log_y: bool,
    series: Vec<Series>,
}

struct Series {
    name: String,
    /// (clients, value), sorted by clients.
    points: Vec<(f64, f64)>,
}

/// Adds a point to the series called `name`, keeping series in order of first
/// appearance so colours follow the order of the sweep.
fn push_point(series: &mut Vec<Series>, name: String, x: f64, y: f64) {
    // A log axis cannot place zero clients, and non-finite values are not data.
    if !(x > 0.0 && x.is_finite() && y.is_finite()) {
        return;
    }
    match series.iter_mut().find(|s| s.name == name) {
        Some(s) => s.points.push((x, y)),
        None => series.push(Series { name, points: vec![(x, y)] }),
    }
}

fn sort_points(series: &mut [Series]) {
    for s in series {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
}

/// The four plots, decided from the data. Only runs with a spec and without
/// an error are plotted.
fn plots(sweep: &Sweep) -> Vec<Plot> {
    let clean: Vec<(&RunResult, &RunSpec)> =
        sweep.runs.iter().filter(|r| r.error.is_none()).filter_map(|r| Some((r, r.spec.as_ref()?))).collect();
    let unpaced = || clean.iter().filter(|(_, s)| s.rate <= 0.0);

    let mut deliveries = Vec::new();
    for (run, spec) in unpaced() {
        push_point(&mut deliveries, label(spec), spec.clients as f64, run.deliveries_per_sec);
    }

    let mut cpu = Vec::new();
    for (run, spec) in unpaced() {
        if let Some(usage) = &run.server
            && run.delivered > 0
        {
            let per_million = usage.cpu_secs / run.delivered as f64 * 1e6;
            push_point(&mut cpu, label(spec), spec.clients as f64, per_million);
        }
    }

    // Peak RSS depends mostly on the client count, so every load counts; where
    // a server has several runs at one count, the largest peak is its peak.
    let mut rss: Vec<Series> = Vec::new();
    for (run, spec) in &clean {
        let Some(usage) = &run.server else { continue };
        let (name, x, y) = (label(spec), spec.clients as f64, usage.peak_rss_bytes as f64 / MIB);
        match rss.iter_mut().find(|s| s.name == name).and_then(|s| s.points.iter_mut().find(|p| p.0 == x)) {
            Some(point) => point.1 = point.1.max(y),
            None => push_point(&mut rss, name, x, y),
        }
    }

    // p99: paced runs show latency at a load the server keeps up with, so they
    // are preferred; a server with no paced run falls back to its unpaced ones
    // rather than vanishing from the plot.
    let mut latency_points: Vec<(String, Kind, f64, f64)> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    for (_, spec) in &clean {
        let name = label(spec);
        if !labels.contains(&name) {
            labels.push(name);
        }
    }
    for name in &labels {
        let measured: Vec<_> =
            clean.iter().filter(|(r, s)| label(s) == *name && r.latency.count > 0).collect();
        let has_paced = measured.iter().any(|(_, s)| s.rate > 0.0);
        for (run, spec) in measured {
            // A log axis has no place for zero.
            if (spec.rate > 0.0) == has_paced && run.latency.p99_us > 0 {
                let p99_ms = run.latency.p99_us as f64 / 1000.0;
                latency_points.push((name.clone(), Kind::of(run), spec.clients as f64, p99_ms));
            }
        }
    }
    let mut latency_kinds: Vec<Kind> = Vec::new();
    for (_, kind, _, _) in &latency_points {
        if !latency_kinds.contains(kind) {
            latency_kinds.push(*kind);
        }
    }
    let one_kind = latency_kinds.len() <= 1;
    let mut latency = Vec::new();
    for (name, kind, x, y) in latency_points {
        // Several loads in one plot: each line says which it is.
        let name = if one_kind { name } else { format!("{name}, {}", kind.short()) };
        push_point(&mut latency, name, x, y);
    }
    let latency_load = match latency_kinds.first() {
        Some(kind) if one_kind => format!("{} load", kind.short()),
        Some(_) => "paced load where measured, else unpaced; load per line".to_string(),
        None => "no latency measured".to_string(),
    };

    let mut plots = vec![
        Plot {
            file: "deliveries.svg",
            title: "Deliveries per second vs clients (unpaced load)".to_string(),
            y_desc: "deliveries/s",
            log_y: false,
            series: deliveries,
        },
        Plot {
            file: "p99-latency.svg",
            title: format!("p99 delivery latency vs clients ({latency_load})"),
            y_desc: "p99 latency (ms, log scale)",
            log_y: true,
            series: latency,
        },
        Plot {
            file: "peak-rss.svg",
            title: "Peak server RSS vs clients (largest over all loads)".to_string(),
            y_desc: "peak RSS (MiB)",
            log_y: false,
            series: rss,
        },
        Plot {
            file: "cpu-per-million.svg",
            title: "Server CPU seconds per million deliveries vs clients (unpaced load)".to_string(),
            y_desc: "server CPU s / 10⁶ deliveries",
            log_y: false,
            series: cpu,
        },
    ];
    for plot in &mut plots {
        sort_points(&mut plot.series);
    }
    plots
}

/// Distinct colours that stay readable on white (Tableau 10), in series order.
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 560;
/// Room to the right of the chart for the legend, so it never covers a line.
const LEGEND_WIDTH: u32 = 260;

fn draw(plot: &Plot) -> Result<String, Box<dyn Error>> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let body = root.titled(&plot.title, ("sans-serif", 22))?;
        let (chart_area, legend_area) = body.split_horizontally(WIDTH - LEGEND_WIDTH);

        let points = || plot.series.iter().flat_map(|s| s.points.iter());
        let x_range = log_range(points().map(|p| p.0), 1.25, 1.0..10.0);
        // Ticks at the client counts measured: a sweep's counts rarely include
        // a power of ten in every gap, and plotters' own log ticks start at
        // one, leaving ranges such as 20..80 without any label.
        let x_ticks = thin_ticks(points().map(|p| p.0).collect());
        let x = x_range.log_scale().with_key_points(x_ticks);
        if plot.log_y {
            let y_range = log_range(points().map(|p| p.1), 1.6, 0.1..10.0);
            let y_ticks = log_ticks(&y_range);
            chart(&chart_area, plot, x, y_range.log_scale().with_key_points(y_ticks))?;
        } else {
            let top = points().map(|p| p.1).fold(0.0_f64, f64::max);
            let top = if top > 0.0 { top * 1.1 } else { 1.0 };
            chart(&chart_area, plot, x, 0.0..top)?;
        }
        legend(&legend_area, plot)?;
        root.present()?;
    }
    Ok(svg)
}

/// A range for a log axis covering the positive `values`, widened by `pad`
/// each way so end points do not sit on the frame; `empty` if there are none.
fn log_range(values: impl Iterator<Item = f64>, pad: f64, empty: Range<f64>) -> Range<f64> {
    let (lo, hi) = values
        .filter(|v| *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo.is_finite() { lo / pad..hi * pad } else { empty }
}

/// The distinct values, sorted, dropping any within a factor of 1.3 of the
/// last kept one so neighbouring tick labels do not print over each other.
fn thin_ticks(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    let mut ticks: Vec<f64> = Vec::new();
    for v in values {
        if ticks.last().is_none_or(|last| v >= last * 1.3) {
            ticks.push(v);
        }
    }
    ticks
}

/// Ticks for a log axis: 1, 2, 5 times each power of ten inside `range`, or
/// only the powers of ten when that would crowd the axis.
fn log_ticks(range: &Range<f64>) -> Vec<f64> {
    let decades = |steps: &[f64]| {
        let mut ticks = Vec::new();
        // Exponents rather than repeated multiplication, so ticks do not drift.
        let (first, last) = (range.start.log10().floor() as i32, range.end.log10().ceil() as i32);
        for exponent in first..=last {
            let power = 10f64.powi(exponent);
            ticks.extend(steps.iter().map(|s| s * power).filter(|t| range.contains(t)));
        }
        ticks
    };
    let fine = decades(&[1.0, 2.0, 5.0]);
    if fine.len() <= 12 { fine } else { decades(&[1.0]) }
}

/// Draws the axes and lines. Generic over the y axis so one body serves the
/// linear and the logarithmic plots.
fn chart<DB, X, Y>(area: &DrawingArea<DB, Shift>, plot: &Plot, x: X, y: Y) -> Result<(), Box<dyn Error>>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(90)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc("clients (log scale)")
        .y_desc(plot.y_desc)
        .x_label_formatter(&|v| axis_number(*v))
        .y_label_formatter(&|v| axis_number(*v))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(200, 200, 200))
        .draw()?;
    for (i, series) in plot.series.iter().enumerate() {
        let style = colour(i).stroke_width(2);
        chart.draw_series(LineSeries::new(series.points.iter().copied(), style).point_size(4))?;
    }
    if plot.series.is_empty() {
        let centre = area.dim_in_pixel();
        area.draw(&Text::new(
            "no runs to show",
            (centre.0 as i32 / 2, centre.1 as i32 / 2),
            TextStyle::from(("sans-serif", 18).into_font()).pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
    }
    Ok(())
}

/// Drawn by hand beside the chart rather than with plotters' series labels,
/// which sit inside the plotting area and can hide the lines.
fn legend<DB>(area: &DrawingArea<DB, Shift>, plot: &Plot) -> Result<(), Box<dyn Error>>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let text = TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    area.draw(&Text::new("server", (10, 24), text.clone()))?;
    for (i, series) in plot.series.iter().enumerate() {
        let y = 52 + 24 * i as i32;
        let style = colour(i).stroke_width(2);
        area.draw(&PathElement::new(vec![(10, y), (40, y)], style))?;
        // Hollow, like the markers LineSeries draws with a stroke style.
        area.draw(&Circle::new((25, y), 4, style))?;
        area.draw(&Text::new(series.name.clone(), (48, y), text.clone()))?;
    }
    Ok(())
}

/// Tick labels: whole numbers with separators from 10 up, a few significant
/// digits below (sub-millisecond latencies are common).
fn axis_number(v: f64) -> String {
    if v.abs() >= 10.0 {
        signed_group(v.round())
    } else if v == 0.0 {
        "0".to_string()
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// `n` with thousands separators: 1234567 → "1,234,567".
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A whole-valued float with thousands separators, keeping its sign.
fn signed_group(v: f64) -> String {
    if !v.is_finite() {
        return DASH.to_string();
    }
    let sign = if v < 0.0 { "-" } else { "" };
    format!("{sign}{}", group(v.abs() as u64))
}

/// `v` with `places` decimals and thousands separators in the whole part:
/// a stalled server's 9000 ms p99 reads as "9,000.00".
fn decimals(v: f64, places: usize) -> String {
    if !v.is_finite() {
        return DASH.to_string();
    }
    let text = format!("{:.*}", places, v.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let sign = if v < 0.0 && text.bytes().any(|b| matches!(b, b'1'..=b'9')) { "-" } else { "" };
    let whole = group(whole.parse().unwrap_or(0));
    if fraction.is_empty() { format!("{sign}{whole}") } else { format!("{sign}{whole}.{fraction}") }
}

/// A send rate: grouped if whole, else with one decimal.
fn rate_text(rate: f64) -> String {
    if rate.fract() == 0.0 { signed_group(rate) } else { format!("{rate:.1}") }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / MIB)
}

/// Text made safe for one Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::results::{Latency, Usage};

    fn spec(server: &str, workers: Option<usize>, clients: usize, rate: f64) -> RunSpec {
        RunSpec {
            server: server.to_string(),
            workers,
            proto: "irc".to_string(),
            clients,
            senders: 10,
            messages: 1000,
            rate,
            connect_concurrency: 64,
        }
    }

    fn run(spec: RunSpec, deliveries_per_sec: f64, p99_us: u64) -> RunResult {
        let clients = spec.clients;
        RunResult {
            spec: Some(spec),
            connected: clients,
            connect_secs: 0.5,
            join_secs: 0.25,
            offered: 10_000 * clients as u64,
            delivered: 10_000 * clients as u64,
            lost: 0,
            duplicated: 0,
            order_consistent: true,
            flow_secs: 2.0,
            deliveries_per_sec,
            latency: Latency {
                count: 1000,
                p50_us: 250,
                p90_us: 800,
                p99_us,
                p999_us: p99_us * 2,
                max_us: p99_us * 4,
                mean_us: 300.5,
            },
            server: Some(Usage {
                cpu_secs: 1.25,
                flow_cpu_secs: 1.0,
                peak_rss_bytes: 8 * 1024 * 1024 * clients as u64 / 10,
                connected_rss_bytes: 4 * 1024 * 1024,
                processes: 1,
                threads: 2,
                context_switches: 123_456,
                open_fds: clients + 4,
            }),
            generator_cpu_secs: 0.75,
            generator_flow_cpu_secs: 0.5,
            error: None,
        }
    }

    fn sweep() -> Sweep {
        let mut errored = run(spec("iterative", None, 1000, 0.0), 12.5, 9_000_000);
        errored.connected = 517;
        errored.error = Some("connect: Connection refused | after 517".to_string());
        errored.order_consistent = false;
        Sweep {
            command: "chatter bench sweep --out docs --quick".to_string(),
            generated: "2025-01-02 03:04:05 UTC".to_string(),
            machine: Machine {
                cores: 8,
                memory_bytes: 16 * 1024 * 1024 * 1024,
                kernel: "6.8.0-test".to_string(),
                cpu_model: "Test CPU @ 3.00GHz".to_string(),
            },
            pinning: "server on CPU 0, load generator on CPU 1 (taskset)".to_string(),
            runs: vec![
                run(spec("iterative", None, 10, 0.0), 1_234_567.0, 1500),
                run(spec("iterative", None, 100, 0.0), 234_567.0, 25_000),
                run(spec("prethread", Some(4), 10, 0.0), 2_345_678.0, 900),
                run(spec("prethread", Some(4), 100, 0.0), 3_456_789.0, 1200),
                run(spec("iterative", None, 10, 1000.0), 10_000.0, 700),
                run(spec("iterative", None, 100, 1000.0), 100_000.0, 4000),
                run(spec("prethread", Some(4), 10, 1000.0), 10_000.0, 300),
                run(spec("prethread", Some(4), 100, 1000.0), 100_000.0, 450),
                errored,
            ],
            idle: vec![
                IdleMemory {
                    server: "iterative".to_string(),
                    clients: 1000,
                    rss_empty_bytes: 2 * 1024 * 1024,
                    rss_loaded_bytes: 2 * 1024 * 1024 + 1000 * 3 * 1024,
                },
                IdleMemory {
                    server: "prethread/4".to_string(),
                    clients: 2000,
                    rss_empty_bytes: 3_000_000,
                    rss_loaded_bytes: 3_000_000 + 2000 * 10_752,
                },
            ],
            peers: vec![PeerNote {
                name: "ngircd".to_string(),
                command: "ngircd -n -f bench/ngircd.conf".to_string(),
                configuration: "MaxConnections = 0, no flood protection.".to_string(),
            }],
            notes: "Prethread scales; **iterative** does not.\n\n- one\n- two".to_string(),
        }
    }

    #[test]
    fn labels() {
        assert_eq!(label(&spec("iterative", None, 1, 0.0)), "iterative");
        assert_eq!(label(&spec("prethread", Some(1), 1, 0.0)), "prethread/1");
        assert_eq!(label(&spec("ngircd", None, 1, 0.0)), "ngircd");
    }

    #[test]
    fn number_formats() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(signed_group(-1234.0), "-1,234");
        assert_eq!(rate_text(1000.0), "1,000");
        assert_eq!(rate_text(2.5), "2.5");
        assert_eq!(decimals(9000.0, 2), "9,000.00");
        assert_eq!(decimals(1234567.891, 2), "1,234,567.89");
        assert_eq!(decimals(0.004, 2), "0.00");
        assert_eq!(decimals(-0.001, 2), "0.00");
        assert_eq!(decimals(-1500.5, 1), "-1,500.5");
        assert_eq!(decimals(12.0, 0), "12");
        assert_eq!(axis_number(0.05), "0.05");
        assert_eq!(axis_number(12345.0), "12,345");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
        assert_eq!(thin_ticks(vec![100.0, 10.0, 110.0, 10.0, 1000.0]), [10.0, 100.0, 1000.0]);
        assert_eq!(log_ticks(&(0.15..6.0)), [0.2, 0.5, 1.0, 2.0, 5.0]);
        assert_eq!(log_ticks(&(0.05..50_000.0)), [0.1, 1.0, 10.0, 100.0, 1000.0, 10_000.0]);
    }

    #[test]
    fn markdown_has_everything_in_order() {
        let sweep = sweep();
        let files = vec!["deliveries.svg".to_string(), "p99-latency.svg".to_string()];
        let md = markdown(&sweep, &files, "bench");

        // Sections in the required order.
        let order = [
            "# Performance",
            "generated",
            "```sh\nchatter bench sweep --out docs --quick\n```",
            "- Cores: 8",
            "- Memory: 16.0 GiB",
            "- Kernel: 6.8.0-test",
            "- CPU: Test CPU @ 3.00GHz",
            "- Pinning: server on CPU 0, load generator on CPU 1 (taskset)",
            "## What the numbers say",
            "Prethread scales; **iterative** does not.\n\n- one\n- two",
            "## Plots",
            "![Deliveries per second vs clients (unpaced load)](bench/deliveries.svg)",
            "![p99 delivery latency vs clients (paced, 1,000 msg/s load)](bench/p99-latency.svg)",
            "### Unpaced load",
            "### Paced load (1,000 messages/s in total)",
            "## Memory per idle connection",
            "## Largest client count held",
            "## Peers",
            "### ngircd",
        ];
        let mut from = 0;
        for needle in order {
            let at = md[from..].find(needle).unwrap_or_else(|| panic!("{needle:?} missing or out of order"));
            from += at + needle.len();
        }

        // A full unpaced row: label, clients, senders×messages, rate, register,
        // join, deliveries/s, latencies, lost, dup, order, CPU total and in
        // flow, generator CPU and busy share, RSS, threads, processes,
        // switches, fds, no error.
        assert!(md.contains(
            "| prethread/4 | 100 | 10×1,000 | unpaced | 0.50 | 0.25 | 3,456,789 | 0.25 | 1.20 | 2.40 | 4.80 | 0 \
             | 0 | yes | 1.25 | 1.00 | 0.75 | 25% | 80.0 | 2 | 1 | 123,456 | 104 |  |"
        ));
        // A paced row shows its rate.
        assert!(md.contains("| iterative | 10 | 10×1,000 | 1,000 | 0.50 | 0.25 | 10,000 | 0.25 | 0.70 |"));
        // The errored run still shows, with its error escaped for the table.
        assert!(md.contains("| iterative | 1,000 | 10×1,000 | unpaced |"));
        assert!(md.contains("| 0.25 | 9,000.00 | 18,000.00 | 36,000.00 | 0 | 0 | NO |"));
        assert!(md.contains("connect: Connection refused \\| after 517 |"));
        // Every run has a row: 8 + 1 errored.
        let rows = md.lines().filter(|l| l.starts_with("| iterative |") || l.starts_with("| prethread/4 |"));
        // The idle table and the largest-held table add two rows per server.
        assert_eq!(rows.count(), 9 + 2 + 2);

        // Per connection: 3 KiB exactly, and 10,752 bytes = 10.5 KiB.
        assert!(md.contains("| iterative | 1,000 | 2.0 | 4.9 | 3,072 | 3.0 |"), "{md}");
        assert!(md.contains("| prethread/4 | 2,000 | 2.9 | 23.4 | 10,752 | 10.5 |"), "{md}");

        // Largest held: iterative's 1,000-client run failed, so 100 held.
        assert!(md.contains("| iterative | 100 | 1,000 |"));
        assert!(md.contains("| prethread/4 | 100 | 100 |"));

        assert!(md.contains("MaxConnections = 0, no flood protection."));
        assert!(md.contains("```sh\nngircd -n -f bench/ngircd.conf\n```"));
        assert!(md.ends_with("```\n"));
    }

    #[test]
    fn largest_held_needs_every_client_and_no_error() {
        let mut sweep = sweep();
        // Fully connected but errored later: not held.
        sweep.runs[3].error = Some("timeout".to_string());
        // No error but short of clients: not held.
        sweep.runs[7].connected = 99;
        let rows = largest_held(&sweep);
        assert_eq!(
            rows,
            vec![("iterative".to_string(), Some(100), 1000), ("prethread/4".to_string(), Some(10), 100)]
        );
    }

    #[test]
    fn idle_per_connection() {
        let idle =
            IdleMemory { server: "x".into(), clients: 4, rss_empty_bytes: 1000, rss_loaded_bytes: 900 };
        assert_eq!(idle.bytes_per_connection(), Some(-25.0));
        let none = IdleMemory { clients: 0, ..idle };
        assert_eq!(none.bytes_per_connection(), None);
    }

    #[test]
    fn plots_choose_their_runs() {
        let plots = plots(&sweep());
        let by_file = |f: &str| plots.iter().find(|p| p.file == f).unwrap();
        let series =
            |f: &str, name: &str| by_file(f).series.iter().find(|s| s.name == name).unwrap().points.clone();
        // Unpaced only, errored run left out.
        assert_eq!(series("deliveries.svg", "iterative"), vec![(10.0, 1_234_567.0), (100.0, 234_567.0)]);
        // Paced preferred for p99.
        assert_eq!(series("p99-latency.svg", "prethread/4"), vec![(10.0, 0.3), (100.0, 0.45)]);
        // 1.25 CPU s over 100,000 deliveries = 12.5 s per million.
        assert_eq!(series("cpu-per-million.svg", "iterative"), vec![(10.0, 12.5), (100.0, 1.25)]);
        // Largest peak of the paced and unpaced runs at each count.
        assert_eq!(series("peak-rss.svg", "prethread/4"), vec![(10.0, 8.0), (100.0, 80.0)]);
    }

    #[test]
    fn p99_falls_back_to_unpaced_and_says_so() {
        let mut sweep = sweep();
        sweep.runs.push(run(spec("ngircd", None, 10, 0.0), 50_000.0, 2000));
        let plots = plots(&sweep);
        let p99 = &plots[1];
        assert!(p99.title.contains("paced load where measured, else unpaced"), "{}", p99.title);
        let names: Vec<_> = p99.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["iterative, paced, 1,000 msg/s", "prethread/4, paced, 1,000 msg/s", "ngircd, unpaced"]
        );
    }

    #[test]
    fn plots_are_svg_with_labels() {
        let dir = std::env::temp_dir().join(format!("chatter-report-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let files = write_plots(&dir, &sweep()).unwrap();
        assert_eq!(files, ["deliveries.svg", "p99-latency.svg", "peak-rss.svg", "cpu-per-million.svg"]);
        for file in &files {
            let svg = fs::read_to_string(dir.join(file)).unwrap();
            assert!(svg.contains("<svg"), "{file}");
            // The SVG backend writes each text element's content on its own line.
            assert!(svg.contains("\niterative\n</text>"), "{file}: legend");
            assert!(svg.contains("\nprethread/4\n</text>"), "{file}: legend");
            assert!(svg.contains("\nclients (log scale)\n</text>"), "{file}: x axis");
            assert!(svg.contains("\n100\n</text>"), "{file}: x tick");
            assert!(svg.contains("<polyline"), "{file}: lines");
        }
        let p99 = fs::read_to_string(dir.join("p99-latency.svg")).unwrap();
        assert!(p99.contains("paced, 1,000 msg/s load"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn plots_without_data_still_written() {
        let mut sweep = sweep();
        sweep.runs.clear();
        let dir = std::env::temp_dir().join(format!("chatter-report-empty-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let files = write_plots(&dir, &sweep).unwrap();
        assert_eq!(files.len(), 4);
        for file in &files {
            assert!(fs::read_to_string(dir.join(file)).unwrap().contains("no runs to show"));
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn json_round_trip() {
        let dir = std::env::temp_dir().join(format!("chatter-report-json-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.json");
        let sweep = sweep();
        write_json(&path, &sweep).unwrap();
        assert!(fs::read_to_string(&path).unwrap().contains("\n  \"command\": "));
        assert_eq!(read_json(&path).unwrap(), sweep);
        fs::write(&path, "{").unwrap();
        let err = read_json(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("results.json"));
        fs::remove_dir_all(&dir).unwrap();
    }
}

//! The report's SVG plots, drawn with plotters from a sweep's runs.
//!
//! - plotters' SVG backend is used without a font feature: plotters then
//!   only estimates text extents for layout and emits `<text>` elements that
//!   the viewer renders, so axis labels and legends need no font files at
//!   build or run time.
//! - Which runs feed which plot is decided in one place ([`plots`]), and the
//!   Markdown takes each plot's alt text from it, so the title of a plot and
//!   the text that links to it cannot disagree about which load they show.
//! - Each plot is drawn into a `String` before it is written, so tests need
//!   no files and a failed plot never leaves half a file behind.

use std::error::Error;
use std::fs;
use std::io;
use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::format::{MIB, signed_group};
use super::report::{Sweep, label};
use super::results::{RunResult, RunSpec};
use super::tables::Kind;

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

/// One plot: what it shows and the points of each line.
pub struct Plot {
    pub file: &'static str,
    pub title: String,
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
pub fn plots(sweep: &Sweep) -> Vec<Plot> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::fixtures::{run, spec, sweep};

    #[test]
    fn axis_labels_and_ticks() {
        assert_eq!(axis_number(0.05), "0.05");
        assert_eq!(axis_number(12345.0), "12,345");
        assert_eq!(thin_ticks(vec![100.0, 10.0, 110.0, 10.0, 1000.0]), [10.0, 100.0, 1000.0]);
        assert_eq!(log_ticks(&(0.15..6.0)), [0.2, 0.5, 1.0, 2.0, 5.0]);
        assert_eq!(log_ticks(&(0.05..50_000.0)), [0.1, 1.0, 10.0, 100.0, 1000.0, 10_000.0]);
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
        assert_eq!(series("peak-rss.svg", "prethread/4"), vec![(10.0, 8.0), (100.0, 80.0), (2000.0, 1600.0)]);
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
            [
                "iterative, paced, 1,000 msg/s",
                "prethread/4, paced, 1,000 msg/s",
                "ngircd, unpaced, open loop"
            ]
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
}

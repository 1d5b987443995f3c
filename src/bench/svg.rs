//! Drawing a [`Plot`] as SVG with plotters (axes, lines, markers, legend),
//! and writing a sweep's plots to their files.
//!
//! Why it is shaped so:
//! - Every server has one style — a colour, a marker shape and whether the
//!   marker is filled — taken from its place in the sweep's list of
//!   servers, so a server looks the same in every plot and no two servers
//!   look alike (ten colours alone would repeat). Dash patterns are kept
//!   for telling a server's loads apart when one plot holds several.
//! - plotters' SVG backend is used without a font feature: plotters then
//!   only estimates text extents for layout and emits `<text>` elements
//!   that the viewer renders, so no font files are needed at build or run
//!   time.
//! - A plot is drawn into a `String`, so tests need no files and a failed
//!   plot never leaves half a file behind; only [`write_plots`] touches the
//!   file system.

use std::error::Error;
use std::fs;
use std::io;
use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::format::signed_group;
use super::plots::{Plot, Series, plots, servers};
use super::results::Sweep;

/// Distinct colours that stay readable on white (Tableau 10).
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
}

const MARKERS: [Marker; 4] = [Marker::Circle, Marker::Square, Marker::Triangle, Marker::Diamond];

/// How one server is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Style {
    pub colour: RGBColor,
    pub marker: Marker,
    pub filled: bool,
}

impl Style {
    /// The style of the `i`-th server. Colour and shape both change from one
    /// server to the next and fill changes every four, so neighbours differ
    /// in every respect and the first forty servers are all distinct.
    pub fn of(i: usize) -> Style {
        Style {
            colour: COLOURS[i % COLOURS.len()],
            marker: MARKERS[i % MARKERS.len()],
            filled: (i / 4).is_multiple_of(2),
        }
    }

    /// The style of `server` among `servers`; a server not in the list (which
    /// a plot never has) gets the style after the last.
    pub fn for_server(servers: &[String], server: &str) -> Style {
        Style::of(servers.iter().position(|s| s == server).unwrap_or(servers.len()))
    }
}

/// Dash and gap lengths in pixels for a server's n-th load in one plot; the
/// first is a solid line.
const DASHES: [Option<(u32, u32)>; 3] = [None, Some((9, 5)), Some((2, 4))];

fn dash_of(variant: usize) -> Option<(u32, u32)> {
    DASHES[variant % DASHES.len()]
}

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 560;
/// Room to the right of the chart for the legend, so it never covers a line.
const LEGEND_WIDTH: u32 = 300;
const MARKER_SIZE: i32 = 5;

/// Writes the four plots into `dir` and returns their file names. All four
/// are written even without data, so the Markdown's links always resolve.
pub fn write_plots(dir: &Path, sweep: &Sweep) -> io::Result<Vec<String>> {
    let servers = servers(sweep);
    let mut files = Vec::new();
    for plot in plots(sweep) {
        let drawn = draw(&plot, &servers);
        let svg = drawn.map_err(|e| io::Error::other(format!("drawing {}: {e}", plot.file)))?;
        fs::write(dir.join(plot.file), svg)?;
        files.push(plot.file.to_string());
    }
    Ok(files)
}

/// Writes the plots of the section on networks of nodes into `dir`.
pub fn write_cluster_plots(dir: &Path, cluster: &Sweep) -> io::Result<()> {
    let configurations = super::cluster_report::configurations(cluster);
    for plot in super::cluster_report::plots(cluster) {
        let drawn = draw(&plot, &configurations);
        let svg = drawn.map_err(|e| io::Error::other(format!("drawing {}: {e}", plot.file)))?;
        fs::write(dir.join(plot.file), svg)?;
    }
    Ok(())
}

/// The plot as an SVG document. `servers` is every server of the sweep in
/// order, which fixes each one's style.
pub fn draw(plot: &Plot, servers: &[String]) -> Result<String, Box<dyn Error>> {
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
            chart(&chart_area, plot, servers, x, y_range.log_scale().with_key_points(y_ticks))?;
        } else {
            let top = points().map(|p| p.1).fold(0.0_f64, f64::max);
            let top = if top > 0.0 { top * 1.1 } else { 1.0 };
            chart(&chart_area, plot, servers, x, 0.0..top)?;
        }
        legend(&legend_area, plot, servers)?;
        root.present()?;
    }
    Ok(svg)
}

/// The corners of a marker shape, in pixels around its point, so that every
/// shape has the same size whatever the axes. Circles are drawn as circles.
fn outline(marker: Marker) -> Vec<(i32, i32)> {
    let r = MARKER_SIZE;
    match marker {
        Marker::Circle => Vec::new(),
        Marker::Square => vec![(-r + 1, -r + 1), (r - 1, -r + 1), (r - 1, r - 1), (-r + 1, r - 1)],
        Marker::Triangle => vec![(0, -r - 1), (r + 1, r), (-r - 1, r)],
        Marker::Diamond => vec![(0, -r - 1), (r + 1, 0), (0, r + 1), (-r - 1, 0)],
    }
}

/// The outline closed on itself, for a hollow marker.
fn closed(marker: Marker) -> Vec<(i32, i32)> {
    let mut corners = outline(marker);
    corners.extend(corners.first().copied());
    corners
}

/// Draws `style`'s marker at each of `points` with `$draw`, which sees the
/// markers as an iterator named `$elements`. Each kind of marker is its own
/// element type, hence a macro: `$draw` is expanded once per kind.
macro_rules! markers {
    ($elements:ident => $draw:expr, $points:expr, $style:expr) => {{
        let style: Style = $style;
        let (stroke, fill) = (style.colour.stroke_width(2), style.colour.filled());
        match (style.marker, style.filled) {
            (Marker::Circle, filled) => {
                let shape = if filled { fill } else { stroke };
                let $elements =
                    $points.map(|p| EmptyElement::at(p) + Circle::new((0, 0), MARKER_SIZE, shape));
                $draw
            }
            (shape, true) => {
                let $elements = $points.map(|p| EmptyElement::at(p) + Polygon::new(outline(shape), fill));
                $draw
            }
            (shape, false) => {
                let $elements =
                    $points.map(|p| EmptyElement::at(p) + PathElement::new(closed(shape), stroke));
                $draw
            }
        }
    }};
}

/// Each series' place among its server's series in this plot, which picks
/// its dash pattern.
fn variant_index(plot: &Plot, series: &Series) -> usize {
    let mut seen: Vec<&Option<String>> = Vec::new();
    for s in &plot.series {
        if !seen.contains(&&s.variant) {
            seen.push(&s.variant);
        }
    }
    seen.iter().position(|v| **v == series.variant).unwrap_or(0)
}

/// Draws the axes, lines and markers. Generic over the y axis so one body
/// serves the linear and the logarithmic plots.
fn chart<DB, X, Y>(
    area: &DrawingArea<DB, Shift>,
    plot: &Plot,
    servers: &[String],
    x: X,
    y: Y,
) -> Result<(), Box<dyn Error>>
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
    for series in &plot.series {
        let style = Style::for_server(servers, &series.server);
        let line = style.colour.stroke_width(2);
        let points = series.points.iter().copied();
        match dash_of(variant_index(plot, series)) {
            None => chart.draw_series(LineSeries::new(points, line))?,
            Some((dash, gap)) => chart.draw_series(DashedLineSeries::new(points, dash, gap, line))?,
        };
        markers!(elements => chart.draw_series(elements).map(drop), series.points.iter().copied(), style)?;
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
/// which sit inside the plotting area and can hide the lines: one entry per
/// server with its marker and colour, then, if the plot holds several loads,
/// one per load with its dash pattern.
fn legend<DB>(area: &DrawingArea<DB, Shift>, plot: &Plot, servers: &[String]) -> Result<(), Box<dyn Error>>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let text = TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let mut shown: Vec<&str> = Vec::new();
    for series in &plot.series {
        if !shown.contains(&series.server.as_str()) {
            shown.push(&series.server);
        }
    }
    // Entries are placed top down; a long name takes several lines.
    let mut y = 24;
    let label = |y: &mut i32, name: &str| -> Result<(), Box<dyn Error>> {
        for (i, line) in wrap(name, LEGEND_CHARS).into_iter().enumerate() {
            if i > 0 {
                *y += 18;
            }
            area.draw(&Text::new(line, (54, *y), text.clone()))?;
        }
        Ok(())
    };
    area.draw(&Text::new("server", (10, y), text.clone()))?;
    for server in &shown {
        y += 24;
        let style = Style::for_server(servers, server);
        area.draw(&PathElement::new(vec![(10, y), (44, y)], style.colour.stroke_width(2)))?;
        markers!(elements => elements.into_iter().try_for_each(|e| area.draw(&e)), std::iter::once((27, y)), style)?;
        label(&mut y, server)?;
    }
    let mut variants: Vec<&String> = Vec::new();
    for series in &plot.series {
        if let Some(v) = &series.variant
            && !variants.contains(&v)
        {
            variants.push(v);
        }
    }
    if !variants.is_empty() {
        y += 40;
        area.draw(&Text::new("load", (10, y), text.clone()))?;
        let grey = RGBColor(90, 90, 90).stroke_width(2);
        for (i, variant) in variants.iter().enumerate() {
            y += 24;
            let segment = vec![(10, y), (44, y)];
            match dash_of(i) {
                None => area.draw(&PathElement::new(segment, grey))?,
                Some((dash, gap)) => area.draw(&DashedPathElement::new(segment, dash, gap, grey))?,
            }
            label(&mut y, variant)?;
        }
    }
    Ok(())
}

/// Characters of legend text that fit on one line beside the key.
const LEGEND_CHARS: usize = 30;

/// `text` in lines of at most `width` characters, broken after commas or
/// spaces where it can be (a longer word stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
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
    use std::collections::HashSet;

    use super::*;
    use crate::bench::fixtures::{run, spec, sweep};

    #[test]
    fn every_server_gets_its_own_style() {
        let styles: HashSet<Style> = (0..40).map(Style::of).collect();
        assert_eq!(styles.len(), 40);
        // Neighbours differ in colour and in shape.
        for i in 0..39 {
            let (a, b) = (Style::of(i), Style::of(i + 1));
            assert!(a.colour != b.colour && a.marker != b.marker, "{i}");
        }
        // A sweep's servers, peers included, each get one.
        let mut sweep = sweep();
        for peer in ["ngircd", "inspircd", "a", "b", "c", "d", "e", "f", "g", "h", "i"] {
            sweep.runs.push(run(spec(peer, None, 10, 0.0), 1.0, 1));
        }
        let servers = servers(&sweep);
        assert_eq!(servers.len(), 13);
        let styles: HashSet<Style> = servers.iter().map(|s| Style::for_server(&servers, s)).collect();
        assert_eq!(styles.len(), servers.len());
    }

    #[test]
    fn a_server_has_the_same_style_in_every_plot() {
        let sweep = sweep();
        let servers = servers(&sweep);
        let prethread = Style::for_server(&servers, "prethread/4");
        let colour =
            format!("#{:02X}{:02X}{:02X}", prethread.colour.0, prethread.colour.1, prethread.colour.2);
        for plot in plots(&sweep) {
            let svg = draw(&plot, &servers).unwrap();
            assert!(svg.to_uppercase().contains(&colour), "{}", plot.file);
        }
    }

    #[test]
    fn long_legend_entries_wrap_at_spaces() {
        assert_eq!(wrap("prethread/1", 30), ["prethread/1"]);
        assert_eq!(
            wrap("unpaced, closed loop, at most 1,000 in flight", 30),
            ["unpaced, closed loop, at most", "1,000 in flight"]
        );
        assert_eq!(wrap("averyveryverylongword and more", 10), ["averyveryverylongword", "and more"]);
    }

    #[test]
    fn axis_labels_and_ticks() {
        assert_eq!(axis_number(0.05), "0.05");
        assert_eq!(axis_number(12345.0), "12,345");
        assert_eq!(thin_ticks(vec![100.0, 10.0, 110.0, 10.0, 1000.0]), [10.0, 100.0, 1000.0]);
        assert_eq!(log_ticks(&(0.15..6.0)), [0.2, 0.5, 1.0, 2.0, 5.0]);
        assert_eq!(log_ticks(&(0.05..50_000.0)), [0.1, 1.0, 10.0, 100.0, 1000.0, 10_000.0]);
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
        assert!(p99.contains("p99 latency (ms, log scale)"));
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

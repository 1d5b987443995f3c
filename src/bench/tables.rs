//! The Markdown tables of the report: one table of runs per load, memory
//! per idle connection, and the largest client count each server held.
//! Kept apart from the plots and from the page that assembles them, so that
//! a column can be added or moved in one place and the tests of a table do
//! not depend on the rest of the page.

use std::fmt::Write as _;

use super::format::{DASH, cell, decimals, group, mib, pace_text, rate_text, signed_group};
use super::results::{RunResult, RunSpec, Sweep, Usage, label};
use super::summary::order_text;

/// The "Runs" section: a heading and a table per load.
pub fn runs(sweep: &Sweep) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Runs\n");
    let _ = writeln!(
        md,
        "Lost counts deliveries that never arrived, those a disconnected client missed included; \
         disconnected counts clients whose connection the server closed during the run. Latencies are \
         from a message being sent to its delivery, in milliseconds. Server figures are summed over the \
         server's processes and threads; connected RSS, threads, processes and open fds are taken with \
         all clients connected, before the first message. A dash means the figure was not measured.\n"
    );
    let mut kinds: Vec<Kind> = Vec::new();
    for run in &sweep.runs {
        let kind = Kind::of(run);
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds.sort_by(|a, b| a.order().0.cmp(&b.order().0).then(a.order().1.total_cmp(&b.order().1)));
    for kind in kinds {
        let _ = writeln!(md, "### {}\n", kind.heading());
        let columns = if kind == Kind::Idle { IDLE } else { TRAFFIC };
        md.push_str(&table(columns, sweep.runs.iter().filter(|r| Kind::of(r) == kind)));
        md.push('\n');
    }
    md
}

/// The "Memory per idle connection" section.
pub fn idle_memory(sweep: &Sweep) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Memory per idle connection\n");
    let _ = writeln!(
        md,
        "Server RSS with no clients, then with the clients connected and idle; per connection = \
         (loaded − empty) / clients.\n"
    );
    let _ = writeln!(
        md,
        "| server | clients | disconnected | RSS empty (MiB) | RSS loaded (MiB) | bytes per connection | KiB \
         per connection |"
    );
    let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|");
    for idle in &sweep.idle {
        let per = idle.bytes_per_connection();
        // The idle run these figures came from, for its disconnects.
        let run = sweep.runs.iter().find(|r| {
            r.spec.as_ref().is_some_and(|s| {
                label(s) == idle.server && s.load.clients == idle.clients && s.load.senders == 0
            })
        });
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            cell(&idle.server),
            group(idle.clients as u64),
            run.map_or(DASH.to_string(), |r| group(r.disconnected as u64)),
            mib(idle.rss_empty_bytes),
            mib(idle.rss_loaded_bytes),
            per.map_or(DASH.to_string(), |b| signed_group(b.round())),
            per.map_or(DASH.to_string(), |b| format!("{:.1}", b / 1024.0)),
        );
    }
    md.push('\n');
    md
}

/// The "Largest client count held" section.
pub fn largest_held_section(sweep: &Sweep) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Largest client count held\n");
    let _ = writeln!(
        md,
        "Per server, the most clients of any run in which all of them connected, none was disconnected \
         and the run finished without error, next to the most any run attempted.\n"
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
    md
}

/// The load a run was under. Paced runs at different rates are different
/// loads, and so are the open and the closed loop: their figures are not
/// comparable, so they get separate tables and separate lines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// The closed loop's window, `None` for the open loop.
    Unpaced(Option<u64>),
    /// Total messages per second, and the window if closed.
    Paced(f64, Option<u64>),
    /// Clients registered and silent: memory, not traffic.
    Idle,
    /// A run recorded without its spec; shown so that nothing goes missing.
    Unspecified,
}

impl Kind {
    pub fn of(run: &RunResult) -> Kind {
        match &run.spec {
            Some(spec) if spec.load.is_idle() => Kind::Idle,
            Some(spec) if spec.load.rate > 0.0 => Kind::Paced(spec.load.rate, spec.load.window),
            Some(spec) => Kind::Unpaced(spec.load.window),
            None => Kind::Unspecified,
        }
    }

    /// Table order: the open loop, closed loops by window, paced loads by
    /// rate, idle clients, then runs without a spec.
    fn order(&self) -> (u8, f64) {
        match self {
            Kind::Unpaced(None) => (0, 0.0),
            Kind::Unpaced(Some(window)) => (1, *window as f64),
            Kind::Paced(rate, _) => (2, *rate),
            Kind::Idle => (3, 0.0),
            Kind::Unspecified => (4, 0.0),
        }
    }

    fn heading(&self) -> String {
        let closed = |window: u64| format!("closed loop: at most {} messages in flight", group(window));
        match self {
            Kind::Unpaced(None) => {
                "Unpaced load, open loop (senders write as fast as TCP accepts, clients read as fast as they \
                 can)"
                    .to_string()
            }
            Kind::Unpaced(Some(window)) => format!("Unpaced load, {}", closed(*window)),
            Kind::Paced(rate, None) => format!("Paced load ({} messages/s in total)", rate_text(*rate)),
            Kind::Paced(rate, Some(window)) => {
                format!("Paced load ({} messages/s in total), {}", rate_text(*rate), closed(*window))
            }
            Kind::Idle => "Idle clients (registered and silent)".to_string(),
            Kind::Unspecified => "Runs recorded without a spec".to_string(),
        }
    }

    pub fn short(&self) -> String {
        match self {
            Kind::Unpaced(window) => pace_text(0.0, *window),
            Kind::Paced(rate, window) => pace_text(*rate, *window),
            Kind::Idle => "idle".to_string(),
            Kind::Unspecified => "unknown load".to_string(),
        }
    }
}

/// One column of a runs table: its header, whether it is a number (right
/// aligned), and its cell for a run.
struct Column {
    header: &'static str,
    number: bool,
    cell: fn(&RunResult) -> String,
}

const fn text(header: &'static str, cell: fn(&RunResult) -> String) -> Column {
    Column { header, number: false, cell }
}

const fn number(header: &'static str, cell: fn(&RunResult) -> String) -> Column {
    Column { header, number: true, cell }
}

fn spec_or_dash(run: &RunResult, f: impl Fn(&RunSpec) -> String) -> String {
    run.spec.as_ref().map_or(DASH.to_string(), f)
}

fn usage_or_dash(run: &RunResult, f: impl Fn(&Usage) -> String) -> String {
    run.server.as_ref().map_or(DASH.to_string(), f)
}

fn ms(run: &RunResult, us: u64) -> String {
    if run.latency.count == 0 { DASH.to_string() } else { decimals(us as f64 / 1000.0, 2) }
}

const SERVER: Column = text("server", |r| r.spec.as_ref().map_or("(no spec)".to_string(), label));
const CLIENTS: Column = number("clients", |r| spec_or_dash(r, |s| group(s.load.clients as u64)));
const DISCONNECTED: Column = number("disconnected", |r| group(r.disconnected as u64));
const REGISTER: Column = number("register (s)", |r| format!("{:.2}", r.connect_secs));
const CONNECTED_RSS: Column =
    number("connected RSS (MiB)", |r| usage_or_dash(r, |u| mib(u.connected_rss_bytes)));
const PEAK_RSS: Column = number("peak RSS (MiB)", |r| usage_or_dash(r, |u| mib(u.peak_rss_bytes)));
const THREADS: Column = number("threads", |r| usage_or_dash(r, |u| group(u.threads as u64)));
const PROCESSES: Column = number("processes", |r| usage_or_dash(r, |u| group(u.processes as u64)));
const OPEN_FDS: Column = number("open fds", |r| usage_or_dash(r, |u| group(u.open_fds as u64)));
const ERROR: Column = text("error", |r| r.error.as_deref().map_or(String::new(), cell));

/// Runs that carried messages: whether everything arrived comes first.
const TRAFFIC: &[Column] = &[
    SERVER,
    CLIENTS,
    text("senders×messages", |r| {
        spec_or_dash(r, |s| format!("{}×{}", group(s.load.senders as u64), group(s.load.messages as u64)))
    }),
    number("lost", |r| group(r.lost)),
    DISCONNECTED,
    number("duplicated", |r| group(r.duplicated)),
    text("order consistent", |r| order_text(r).to_string()),
    number("deliveries/s", |r| signed_group(r.deliveries_per_sec.round())),
    number("p50 (ms)", |r| ms(r, r.latency.p50_us)),
    number("p99 (ms)", |r| ms(r, r.latency.p99_us)),
    number("p99.9 (ms)", |r| ms(r, r.latency.p999_us)),
    number("max (ms)", |r| ms(r, r.latency.max_us)),
    REGISTER,
    number("join (s)", |r| format!("{:.2}", r.join_secs)),
    number("server CPU (s)", |r| usage_or_dash(r, |u| format!("{:.2}", u.cpu_secs))),
    number("server CPU in flow (s)", |r| usage_or_dash(r, |u| format!("{:.2}", u.flow_cpu_secs))),
    number("generator CPU (s)", |r| format!("{:.2}", r.generator_cpu_secs)),
    number("generator busy in flow", |r| {
        if r.flow_secs > 0.0 {
            format!("{:.0}%", 100.0 * r.generator_flow_cpu_secs / r.flow_secs)
        } else {
            DASH.to_string()
        }
    }),
    CONNECTED_RSS,
    PEAK_RSS,
    THREADS,
    PROCESSES,
    number("context switches", |r| usage_or_dash(r, |u| group(u.context_switches))),
    OPEN_FDS,
    ERROR,
];

/// Runs of registered, silent clients: nothing to deliver, so no loss,
/// latency or throughput columns.
const IDLE: &[Column] = &[
    SERVER,
    CLIENTS,
    number("registered", |r| group(r.connected as u64)),
    DISCONNECTED,
    REGISTER,
    CONNECTED_RSS,
    PEAK_RSS,
    THREADS,
    PROCESSES,
    OPEN_FDS,
    ERROR,
];

/// A Markdown table of `runs` with `columns`.
fn table<'a>(columns: &[Column], runs: impl Iterator<Item = &'a RunResult>) -> String {
    let mut md = String::new();
    let headers: Vec<&str> = columns.iter().map(|c| c.header).collect();
    let rules: Vec<&str> = columns.iter().map(|c| if c.number { "--:" } else { "---" }).collect();
    let _ = writeln!(md, "| {} |\n|{}|", headers.join(" | "), rules.join("|"));
    for run in runs {
        let cells: Vec<String> = columns.iter().map(|c| (c.cell)(run)).collect();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    md
}

/// Per server label, in order of first appearance: the largest `connected` of
/// its runs that connected every client, kept them all and finished without
/// error (`None` if none did), and the largest client count any of its runs
/// attempted.
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
        row.2 = row.2.max(spec.load.clients);
        if run.error.is_none() && run.connected == spec.load.clients && run.disconnected == 0 {
            row.1 = Some(row.1.map_or(run.connected, |held| held.max(run.connected)));
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::fixtures::sweep;

    #[test]
    fn largest_held_needs_every_client_kept_and_no_error() {
        let mut sweep = sweep();
        // Fully connected but errored later: not held.
        sweep.runs[3].error = Some("timeout".to_string());
        // No error but short of clients: not held.
        sweep.runs[7].connected = 99;
        // All connected, but one was disconnected on the way: not held.
        sweep.runs[6].disconnected = 1;
        let held = |sweep: &Sweep| largest_held(sweep);
        // prethread/4's largest is its 2,000 idle clients.
        assert_eq!(
            held(&sweep),
            [("iterative".to_string(), Some(100), 1000), ("prethread/4".to_string(), Some(2000), 2000)]
        );
        sweep.runs[9].disconnected = 1;
        assert_eq!(held(&sweep)[1], ("prethread/4".to_string(), Some(10), 2000));
        sweep.runs[2].disconnected = 1;
        assert_eq!(held(&sweep)[1], ("prethread/4".to_string(), None, 2000));
    }
}

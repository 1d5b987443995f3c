//! The Markdown tables of the report: one table of runs per load, memory
//! per idle connection, and the largest client count each server held.
//! Kept apart from the plots and from the page that assembles them, so that
//! a column can be added or moved in one place and the tests of a table do
//! not depend on the rest of the page.

use std::fmt::Write as _;

use super::format::{DASH, cell, decimals, group, mib, rate_text, signed_group};
use super::report::{Sweep, label};
use super::results::RunResult;
use super::run::order_text;

/// The "Runs" section: a heading and a table per load.
pub fn runs(sweep: &Sweep) -> String {
    let mut md = String::new();
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
    kinds.sort_by(|a, b| a.order().0.cmp(&b.order().0).then(a.order().1.total_cmp(&b.order().1)));
    for kind in kinds {
        let _ = writeln!(md, "### {}\n", kind.heading());
        md.push_str(RUN_HEADER);
        for run in sweep.runs.iter().filter(|r| Kind::of(r) == kind) {
            md.push_str(&run_row(run));
        }
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
    md
}

/// The "Largest client count held" section.
pub fn largest_held_section(sweep: &Sweep) -> String {
    let mut md = String::new();
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
    md
}

const RUN_HEADER: &str =
    "| server | clients | senders×messages | rate | register (s) | join (s) | deliveries/s | \
p50 (ms) | p99 (ms) | p99.9 (ms) | max (ms) | lost | duplicated | order consistent | server CPU (s) | \
server CPU in flow (s) | generator CPU (s) | generator busy in flow | peak RSS (MiB) | threads | processes | \
context switches | open fds | error |
|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|
";

/// The load a run was under. Paced runs at different rates are different
/// loads, and so are the open and the closed loop: their figures are not
/// comparable, so they get separate tables and separate lines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// The closed loop's window, `None` for the open loop.
    Unpaced(Option<u64>),
    /// Total messages per second, and the window if closed.
    Paced(f64, Option<u64>),
    /// A run recorded without its spec; shown so that nothing goes missing.
    Unspecified,
}

impl Kind {
    pub fn of(run: &RunResult) -> Kind {
        match &run.spec {
            Some(spec) if spec.rate > 0.0 => Kind::Paced(spec.rate, spec.window),
            Some(spec) => Kind::Unpaced(spec.window),
            None => Kind::Unspecified,
        }
    }

    /// Table order: the open loop, closed loops by window, paced loads by
    /// rate, then runs without a spec.
    fn order(&self) -> (u8, f64) {
        match self {
            Kind::Unpaced(None) => (0, 0.0),
            Kind::Unpaced(Some(window)) => (1, *window as f64),
            Kind::Paced(rate, _) => (2, *rate),
            Kind::Unspecified => (3, 0.0),
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
            Kind::Unspecified => "Runs recorded without a spec".to_string(),
        }
    }

    pub fn short(&self) -> String {
        let closed = |window: u64| format!("closed loop ({})", group(window));
        match self {
            Kind::Unpaced(None) => "unpaced, open loop".to_string(),
            Kind::Unpaced(Some(window)) => format!("unpaced, {}", closed(*window)),
            Kind::Paced(rate, None) => format!("paced, {} msg/s", rate_text(*rate)),
            Kind::Paced(rate, Some(window)) => {
                format!("paced, {} msg/s, {}", rate_text(*rate), closed(*window))
            }
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
            order_text(run).to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::fixtures::sweep;

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
}

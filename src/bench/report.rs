//! The Markdown text of `docs/PERFORMANCE.md`, assembled from the tables
//! ([`super::tables`]), the plots ([`super::plots`]) and the targets
//! ([`super::targets`]) of a [`Sweep`].
//!
//! Why it is shaped this way: the sweep writes the raw results as JSON first
//! ([`super::results`]) and everything else is drawn from that file, so the
//! report can be regenerated (or its layout changed) without rerunning hours
//! of load, and every figure in the Markdown is derived from the data —
//! nothing is typed in by hand except [`Sweep::notes`], which is kept
//! verbatim. Rendering is pure: [`markdown`] returns a `String`, so tests
//! need no files. The section on networks of nodes comes from a sweep of
//! its own (`bench/cluster.json`, see [`super::cluster_report`]), with its
//! own command and commit, and so does the one on TLS (`bench/tls.json`,
//! see [`super::tls_report`]).

use std::fmt::Write as _;

use super::format::GIB;
use super::plots::plots;
use super::results::{Sweep, TlsSweep};
use super::tables;

/// `text` as Markdown code: a hash in code, the note after it in prose.
fn code_span(commit: &str) -> String {
    match commit.split_once(' ') {
        Some((hash, note)) => format!("`{hash}` {note}"),
        None => format!("`{commit}`"),
    }
}

/// The whole `docs/PERFORMANCE.md` text. `plot_dir` is the path of the plots
/// relative to the Markdown file (e.g. "bench").
pub fn markdown(
    sweep: &Sweep,
    plot_files: &[String],
    plot_dir: &str,
    cluster: Option<&Sweep>,
    tls: Option<&TlsSweep>,
) -> String {
    let mut md = String::new();
    // `write!` into a String cannot fail; the results are ignored throughout.
    let _ = writeln!(md, "# Performance\n");
    let commit = if sweep.commit.is_empty() {
        "a commit that was not recorded".to_string()
    } else {
        format!("commit {}", code_span(&sweep.commit))
    };
    let _ = writeln!(
        md,
        "This file is generated; do not edit it by hand. Measured on {} at {commit}. To regenerate \
         it, run from the repository root (after `cargo build --release`, and `apt-get install ngircd \
         inspircd` for the peers):\n\n```sh\n{}\n```\n",
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
        let plot = plots.iter().find(|p| p.file == file);
        let alt = plot.map_or(file.as_str(), |p| p.title.as_str());
        let link = if dir.is_empty() { file.clone() } else { format!("{dir}/{file}") };
        let _ = writeln!(md, "![{alt}]({link})\n");
        if let Some(plot) = plot {
            let _ = writeln!(md, "{}\n", plot.caption);
        }
    }

    md.push_str(&tables::runs(sweep));
    md.push_str(&tables::idle_memory(sweep));
    md.push_str(&tables::largest_held_section(sweep));

    if let Some(cluster) = cluster {
        md.push_str(&super::cluster_report::section(cluster, plot_dir));
    }
    if let Some(tls) = tls {
        md.push_str(&super::tls_report::section(tls));
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::fixtures::sweep;

    #[test]
    fn markdown_has_everything_in_order() {
        let sweep = sweep();
        let files = vec!["deliveries.svg".to_string(), "p99-latency.svg".to_string()];
        let md = markdown(&sweep, &files, "bench", None, None);

        // Sections in the required order.
        let order = [
            "# Performance",
            "Measured on 2025-01-02 03:04:05 UTC at commit `0123abcd` (with uncommitted changes).",
            "```sh\nchatter bench sweep --out docs --quick\n```",
            "- Cores: 8",
            "- Memory: 16.0 GiB",
            "- Kernel: 6.8.0-test",
            "- CPU: Test CPU @ 3.00GHz",
            "- Pinning: server on CPU 0, load generator on CPU 1 (taskset)",
            "## What the numbers say",
            "Prethread scales; **iterative** does not.\n\n- one\n- two",
            "## Plots",
            "![Deliveries per second vs clients (unpaced, open loop)](bench/deliveries.svg)",
            "\n\nDeliveries per second: messages received by all clients together",
            "![p99 delivery latency vs clients (paced load)](bench/p99-latency.svg)",
            "\n\n99th percentile of the time",
            "### Unpaced load, open loop",
            "### Paced load (1,000 messages/s in total)",
            "### Idle clients (registered and silent)",
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

        // A full unpaced row: label, clients, senders×messages, then lost,
        // disconnected, duplicated and order, deliveries/s, latencies,
        // register and join, CPU total and in flow, generator CPU and busy
        // share, RSS connected and peak, threads, processes, switches, fds,
        // no error.
        assert!(md.contains(
            "| prethread/4 | 100 | 10×1,000 | 0 | 0 | 0 | yes | 3,456,789 | 0.25 | 1.20 | 2.40 | 4.80 | 0.50 | 0.25 \
             | 1.25 | 1.00 | 0.75 | 25% | 4.0 | 80.0 | 2 | 1 | 123,456 | 104 |  |"
        ));
        assert!(md.contains(
            "| server | clients | senders×messages | lost | disconnected | duplicated | order consistent | \
             deliveries/s |"
        ));
        assert!(md.contains("| iterative | 10 | 10×1,000 | 0 | 0 | 0 | yes | 10,000 | 0.25 | 0.70 |"));
        // The errored run still shows, with its error escaped for the table.
        assert!(md.contains(
            "| iterative | 1,000 | 10×1,000 | 0 | 0 | 0 | NO | 13 | 0.25 | 9,000.00 | 18,000.00 |"
        ));
        assert!(md.contains("connect: Connection refused \\| after 517 |"));
        // The idle run has a table of its own, without loss or latency.
        assert!(md.contains(
            "| server | clients | registered | disconnected | register (s) | connected RSS (MiB) | peak RSS (MiB) |"
        ));
        assert!(md.contains("| prethread/4 | 2,000 | 2,000 | 0 | 0.50 | 4.0 | 1,600.0 | 2 | 1 | 2,004 |  |"));
        // Every run has a row: 8 + 1 errored + 1 idle.
        let rows = md.lines().filter(|l| l.starts_with("| iterative |") || l.starts_with("| prethread/4 |"));
        // The idle-memory and the largest-held tables add two rows per server.
        assert_eq!(rows.count(), 10 + 2 + 2);

        // Per connection: 3 KiB exactly, and 10,752 bytes = 10.5 KiB; only
        // prethread/4 has the idle run its disconnects come from.
        assert!(md.contains("| iterative | 1,000 | — | 2.0 | 4.9 | 3,072 | 3.0 |"), "{md}");
        assert!(md.contains("| prethread/4 | 2,000 | 0 | 2.9 | 23.4 | 10,752 | 10.5 |"), "{md}");

        // Largest held: iterative's 1,000-client run failed, so 100 held.
        assert!(md.contains("| iterative | 100 | 1,000 |"));
        assert!(md.contains("| prethread/4 | 2,000 | 2,000 |"));

        assert!(md.contains("MaxConnections = 0, no flood protection."));
        assert!(md.contains("```sh\nngircd -n -f bench/ngircd.conf\n```"));
        assert!(md.ends_with("```\n"));
    }

    #[test]
    fn an_unrecorded_commit_is_said_to_be_so() {
        let mut sweep = sweep();
        sweep.commit.clear();
        assert!(markdown(&sweep, &[], "bench", None, None).contains(" at a commit that was not recorded. "));
        sweep.commit = "0123abcd".into();
        assert!(markdown(&sweep, &[], "bench", None, None).contains(" at commit `0123abcd`. "));
    }
}

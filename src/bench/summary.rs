//! What a run's result says in words: the summary printed after `chatter
//! bench`, the order verdict, the disconnects, and the problems that make a
//! run count as failed.
//!
//! Kept apart from [`super::run`], which produces the result, because the
//! report (its tables, plots and targets) judges runs in the same words,
//! and should depend on the data and on this, not on the code that starts
//! servers and drives clients.

use crate::bench::format::{decimals, group, load_text, signed_group};
use crate::bench::results::{HandshakeResult, RunResult, TlsSpec, Usage};

/// "12 clients: 10 × ERROR :Closing Link: ... (SendQ exceeded); 2 ×
/// connection reset", and how many gave reasons not listed.
fn disconnects_text(result: &RunResult) -> String {
    let listed: Vec<String> = result
        .disconnect_reasons
        .iter()
        .map(|r| format!("{} × {}", group(r.clients as u64), r.reason))
        .collect();
    let unlisted =
        result.disconnected.saturating_sub(result.disconnect_reasons.iter().map(|r| r.clients).sum());
    let mut text = format!("{} clients: {}", group(result.disconnected as u64), listed.join("; "));
    if unlisted > 0 {
        text += &format!("; {} for other reasons", group(unlisted as u64));
    }
    text
}

/// The order verdict in a word or two: "yes", "NO" or "not checked".
pub(crate) fn order_text(result: &RunResult) -> &'static str {
    match (result.order_consistent, result.order_unchecked) {
        (true, _) => "yes",
        (false, false) => "NO",
        (false, true) => "not checked",
    }
}

/// Where the order violations were, by node: "n2: 12, n3: 1"; empty when
/// the run had no nodes or they had none.
fn violations_by_node(result: &RunResult) -> String {
    let nodes: Vec<String> = result
        .nodes
        .iter()
        .filter(|n| n.order_violations > 0)
        .map(|n| format!("{}: {}", n.name, group(n.order_violations as u64)))
        .collect();
    nodes.join(", ")
}

/// The order verdict in a sentence: how many clients were checked against
/// the network's order, and how many saw another one.
fn order_sentence(result: &RunResult) -> String {
    let nodes = match result.nodes.iter().filter(|n| n.clients > 0).count() {
        0 | 1 => String::new(),
        n => format!(" across {n} nodes"),
    };
    let (Some(violations), Some(unverified)) = (result.order_violations, result.order_unverified) else {
        return format!("one consistent order{nodes}: {}", order_text(result));
    };
    let clients = group(result.connected as u64);
    let mut text = if violations == 0 && unverified == 0 && result.order_consistent {
        format!("one order{nodes}: yes, all {clients} clients checked against it")
    } else if violations > 0 {
        format!("one order{nodes}: NO, {} of {clients} clients saw another", group(violations as u64))
    } else {
        format!("one order{nodes}: {}", order_text(result))
    };
    if unverified > 0 {
        text += &format!(" ({} clients could not be checked)", group(unverified as u64));
    }
    text
}

/// What makes a run count as failed, in words: empty when every client
/// stayed connected and got every message exactly once, in one order.
pub fn problems(result: &RunResult) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(error) = &result.error {
        found.push(format!("stopped short: {error}"));
    }
    if result.lost > 0 {
        found.push(format!("{} deliveries lost", group(result.lost)));
    }
    if result.duplicated > 0 {
        found.push(format!("{} duplicated", group(result.duplicated)));
    }
    if result.disconnected > 0 {
        found.push(format!("{} clients disconnected", group(result.disconnected as u64)));
    }
    match (order_text(result), result.order_violations) {
        ("yes", _) => {}
        ("NO", Some(violations)) if violations > 0 => {
            let by_node = violations_by_node(result);
            let at = if by_node.is_empty() { String::new() } else { format!(" ({by_node})") };
            found.push(format!(
                "{} clients saw another order than the network's{at}",
                group(violations as u64)
            ));
        }
        ("NO", _) => found.push("no one consistent order".to_string()),
        _ => found.push("order not checked".to_string()),
    }
    found
}

/// The line saying how the clients connected: plaintext, or TLS, what
/// they trusted and what they negotiated. Loud when nothing was verified.
fn transport_line(tls: Option<&TlsSpec>, session: Option<&str>) -> String {
    let Some(tls) = tls else { return "transport      plaintext TCP\n".to_string() };
    let negotiated = session.map_or(String::new(), |s| format!(" ({s})"));
    if tls.verified {
        format!("transport      TLS{negotiated}, trusting {}\n", tls.trust)
    } else {
        format!(
            "transport      TLS{negotiated}; CERTIFICATE NOT VERIFIED (--tls-insecure): any certificate was taken\n"
        )
    }
}

/// What makes a connection-rate measurement count as failed: a client
/// that did not get in, or one the measurement lost track of.
pub fn handshake_problems(result: &HandshakeResult) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(error) = &result.error {
        found.push(error.clone());
    }
    if result.failed() > 0 {
        found.push(format!(
            "{} of {} clients failed to get in",
            group(result.failed() as u64),
            group(result.attempted as u64)
        ));
    }
    found
}

/// The summary printed after `chatter bench --handshakes`.
pub fn handshake_summary(result: &HandshakeResult, workers_defaulted: bool) -> String {
    let ms = |us: u64| decimals(us as f64 / 1000.0, 2);
    let mut out = String::new();
    let workers = result.workers.map_or(String::new(), |w| {
        let noun = if w == 1 { "worker" } else { "workers" };
        let default = if workers_defaulted { ", the default" } else { "" };
        format!(" ({w} {noun}{default})")
    });
    out += &format!("server         {}{workers}\n", result.server);
    out += &transport_line(result.tls.as_ref(), result.tls_session.as_deref());
    out += &format!(
        "new clients    {} attempted, as fast as the server accepted them, at most {} unfinished at once (most seen: {})\n",
        group(result.attempted as u64),
        group(result.in_flight as u64),
        group(result.peak_in_flight as u64)
    );
    let stages = if result.tls.is_some() {
        "TCP connect + TLS handshake + registration to 001"
    } else {
        "TCP connect + registration to 001"
    };
    out += &format!(
        "got in         {} in {:.3} s = {}/s ({stages})\n",
        group(result.completed as u64),
        result.secs,
        signed_group(result.per_sec.round())
    );
    let failed = result.failed();
    let reasons: Vec<String> =
        result.failures.iter().map(|f| format!("{} × {}", group(f.clients as u64), f.reason)).collect();
    out += &format!(
        "failed         {}{}\n",
        group(failed as u64),
        if reasons.is_empty() { String::new() } else { format!(": {}", reasons.join("; ")) }
    );
    let l = &result.latency;
    out += &format!(
        "time to 001    p50 {} ms, p90 {}, p99 {}, max {}\n",
        ms(l.p50_us),
        ms(l.p90_us),
        ms(l.p99_us),
        ms(l.max_us)
    );
    if let Some(l) = &result.tls_latency {
        out += &format!(
            "of it TLS      p50 {} ms, p90 {}, p99 {}, max {}\n",
            ms(l.p50_us),
            ms(l.p90_us),
            ms(l.p99_us),
            ms(l.max_us)
        );
    }
    let per_client = |secs: f64| {
        if result.completed > 0 {
            format!(" ({} µs per client)", decimals(secs * 1e6 / result.completed as f64, 0))
        } else {
            String::new()
        }
    };
    match result.server_cpu_secs {
        Some(cpu) => out += &format!("server use     {cpu:.2} s CPU{}\n", per_client(cpu)),
        None => out += "server use     unknown (no --pid)\n",
    }
    out += &format!(
        "generator      {:.2} s CPU{}{}\n",
        result.generator_cpu_secs,
        per_client(result.generator_cpu_secs),
        if result.secs > 0.0 {
            format!(", busy {:.0}% of the time", 100.0 * result.generator_cpu_secs / result.secs)
        } else {
            String::new()
        }
    );
    if let Some(others) = result.others_cpu_secs {
        out += &format!("machine        other processes used {others:.2} s CPU meanwhile\n");
    }
    if let Some(error) = &result.error {
        out += &format!("error          {error}\n");
    }
    out
}

/// The human-readable summary printed after a run. `workers_defaulted`: the
/// pool size in the spec is the default, not one the user asked for.
pub fn summary(result: &RunResult, workers_defaulted: bool) -> String {
    let mut out = String::new();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let ms = |us: u64| decimals(us as f64 / 1000.0, 2);
    if let Some(spec) = &result.spec {
        let workers = spec.workers.map_or(String::new(), |w| {
            let noun = if w == 1 { "worker" } else { "workers" };
            let default = if workers_defaulted { ", the default" } else { "" };
            format!(" ({w} {noun}{default})")
        });
        out += &format!("server         {}{workers}, {} protocol\n", spec.server, spec.load.proto);
        if let Some(cluster) = spec.cluster {
            let spare = match cluster.spare_nodes {
                0 => String::new(),
                n => format!(", and {} more without clients", group(n as u64)),
            };
            out += &format!(
                "network        {} nodes joined through one nats-server{spare}; clients spread over them round-robin\n",
                group(cluster.nodes as u64)
            );
        }
        let messages = if spec.load.is_idle() {
            String::new()
        } else {
            format!(
                "; {} senders × {} messages",
                group(spec.load.senders as u64),
                group(spec.load.messages as u64)
            )
        };
        out += &format!(
            "load           {} clients{messages}, {}\n",
            group(spec.load.clients as u64),
            load_text(&spec.load)
        );
    }
    if let Some(spec) = &result.spec {
        out += &transport_line(spec.tls.as_ref(), result.tls_session.as_deref());
    }
    let joined = match &result.spec {
        Some(spec) if spec.load.is_idle() => "; idle: no channel, no messages".to_string(),
        _ => format!("; all joined the channel in {:.3} s", result.join_secs),
    };
    out += &format!(
        "registered     {} clients in {:.3} s{joined}\n",
        group(result.connected as u64),
        result.connect_secs
    );
    out += &format!(
        "deliveries     {} of {} in {:.3} s = {}/s\n",
        group(result.delivered),
        group(result.offered),
        result.flow_secs,
        signed_group(result.deliveries_per_sec.round())
    );
    out += &format!(
        "lost/dup       {} lost, {} duplicated, {} clients disconnected; {}\n",
        group(result.lost),
        group(result.duplicated),
        group(result.disconnected as u64),
        order_sentence(result)
    );
    if result.disconnected > 0 {
        out += &format!("disconnected   {}\n", disconnects_text(result));
    }
    if let Some(violations) = result.order_violations.filter(|&v| v > 0) {
        // Loud: the one thing a network of nodes must never do.
        let by_node = violations_by_node(result);
        let at = if by_node.is_empty() { String::new() } else { format!("; by node: {by_node}") };
        out += &format!(
            "ORDER VIOLATED {} clients received the messages in another order than the network's{at}\n",
            group(violations as u64)
        );
    }
    let l = &result.latency;
    out += &format!(
        "latency        p50 {} ms, p90 {}, p99 {}, p99.9 {}, max {}\n",
        ms(l.p50_us),
        ms(l.p90_us),
        ms(l.p99_us),
        ms(l.p999_us),
        ms(l.max_us)
    );
    let use_text = |u: &Usage| {
        format!(
            "{:.2} s CPU ({:.2} s while messages flowed), peak RSS {:.1} MiB ({:.1} MiB when connected), {} processes, {} threads, {} context switches, {} open fds",
            u.cpu_secs,
            u.flow_cpu_secs,
            mib(u.peak_rss_bytes),
            mib(u.connected_rss_bytes),
            group(u.processes as u64),
            group(u.threads as u64),
            group(u.context_switches),
            group(u.open_fds as u64)
        )
    };
    match &result.server {
        Some(u) if result.nodes.is_empty() => out += &format!("server use     {}\n", use_text(u)),
        Some(u) => out += &format!("server use     all together: {}\n", use_text(u)),
        None => out += "server use     unknown (no --pid)\n",
    }
    for node in &result.nodes {
        let addr = if node.addr.is_empty() || node.addr == node.name {
            String::new()
        } else {
            format!(" ({})", node.addr)
        };
        let clients = if node.clients == 0 {
            "no clients".to_string()
        } else {
            format!(
                "{} clients ({} senders), {} delivered, {} lost, {} disconnected, {} out of order",
                group(node.clients as u64),
                group(node.senders as u64),
                group(node.delivered),
                group(node.lost),
                group(node.disconnected as u64),
                group(node.order_violations as u64)
            )
        };
        out += &format!("node           {}{addr}: {clients}\n", node.name);
        if let Some(u) = &node.server {
            out += &format!("               {}\n", use_text(u));
        }
    }
    for process in &result.other_processes {
        out += &format!("{:<15}{}\n", process.name, use_text(&process.usage));
    }
    out += &format!(
        "generator      {:.2} s CPU, {:.2} s of it while messages flowed{}\n",
        result.generator_cpu_secs,
        result.generator_flow_cpu_secs,
        // Without deliveries there is no flow time to compare with.
        if result.delivered > 0 && result.flow_secs > 0.0 {
            format!(" ({:.0}% of the flow time)", 100.0 * result.generator_flow_cpu_secs / result.flow_secs)
        } else {
            String::new()
        }
    );
    if let Some(others) = result.others_flow_cpu_secs {
        out += &format!(
            "machine        other processes used {others:.2} s CPU while messages flowed{}\n",
            // A tenth of the flow's time, and more than the odd daemon's tick.
            if result.flow_secs > 0.0 && others > 0.1 * result.flow_secs && others > 0.05 {
                " (the run shared the machine: its figures may be disturbed)"
            } else {
                ""
            }
        );
    }
    if let Some(error) = &result.error {
        out += &format!("error          {error}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::results::{DisconnectReason, NodeResult, ProcessUsage};

    fn clean() -> RunResult {
        RunResult { offered: 90, delivered: 90, order_consistent: true, ..RunResult::default() }
    }

    #[test]
    fn a_clean_run_has_no_problems() {
        assert!(problems(&clean()).is_empty());
    }

    #[test]
    fn every_kind_of_trouble_is_a_problem() {
        let mut r = clean();
        r.lost = 1500;
        r.duplicated = 2;
        r.disconnected = 3;
        r.order_consistent = false;
        r.error = Some("deliveries stopped".into());
        let unchecked = RunResult { order_unchecked: true, ..r.clone() };
        assert_eq!(
            problems(&r),
            [
                "stopped short: deliveries stopped",
                "1,500 deliveries lost",
                "2 duplicated",
                "3 clients disconnected",
                "no one consistent order"
            ]
        );
        assert_eq!(problems(&unchecked).last().map(String::as_str), Some("order not checked"));
        // A disconnect alone fails the run, even with nothing lost.
        let mut r = clean();
        r.disconnected = 1;
        assert_eq!(problems(&r), ["1 clients disconnected"]);
    }

    #[test]
    fn disconnects_are_summarised_with_their_reasons() {
        let mut r = clean();
        r.disconnected = 1205;
        r.disconnect_reasons = vec![
            DisconnectReason {
                reason: "ERROR :Closing Link: 127.0.0.1 (SendQ exceeded)".into(),
                clients: 1200,
            },
            DisconnectReason { reason: "connection reset".into(), clients: 2 },
        ];
        assert_eq!(
            disconnects_text(&r),
            "1,205 clients: 1,200 × ERROR :Closing Link: 127.0.0.1 (SendQ exceeded); 2 × connection reset; \
             3 for other reasons"
        );
        let summary = summary(&r, false);
        assert!(summary.contains("1,205 clients disconnected; one consistent order: yes"));
        assert!(summary.contains("\ndisconnected   1,205 clients: 1,200 × ERROR"));
    }

    fn node(name: &str, clients: usize, order_violations: usize) -> NodeResult {
        NodeResult {
            name: name.into(),
            addr: format!("127.0.0.1:{}", 6000 + clients),
            clients,
            senders: clients.min(1),
            delivered: 10 * clients as u64,
            order_violations,
            ..NodeResult::default()
        }
    }

    #[test]
    fn a_network_is_shown_per_node_and_disorder_is_loud() {
        let mut r = clean();
        r.connected = 30;
        (r.order_violations, r.order_unverified) = (Some(0), Some(0));
        r.nodes = vec![node("n1", 10, 0), node("n2", 10, 0), node("n3", 10, 0), node("n4", 0, 0)];
        r.nodes[3].server = Some(Usage { cpu_secs: 0.5, ..Usage::default() });
        r.other_processes = vec![ProcessUsage {
            name: "nats-server".into(),
            usage: Usage { cpu_secs: 1.5, ..Usage::default() },
        }];
        let text = summary(&r, false);
        assert!(text.contains("one order across 3 nodes: yes, all 30 clients checked against it"), "{text}");
        assert!(
            text.contains(
                "\nnode           n1 (127.0.0.1:6010): 10 clients (1 senders), 100 delivered, 0 lost"
            )
        );
        assert!(text.contains("\nnode           n4 (127.0.0.1:6000): no clients\n               0.50 s CPU"));
        assert!(text.contains("\nnats-server    1.50 s CPU"));
        assert!(!text.contains("ORDER VIOLATED"));
        assert!(problems(&r).is_empty());

        r.order_consistent = false;
        r.order_violations = Some(4);
        r.nodes[1].order_violations = 3;
        r.nodes[2].order_violations = 1;
        let text = summary(&r, false);
        assert!(text.contains("one order across 3 nodes: NO, 4 of 30 clients saw another"), "{text}");
        assert!(text.contains(
            "\nORDER VIOLATED 4 clients received the messages in another order than the network's; by node: n2: 3, n3: 1\n"
        ));
        assert_eq!(problems(&r), ["4 clients saw another order than the network's (n2: 3, n3: 1)"]);

        // Unverified clients are said to be so, and the run is not passed.
        r.order_violations = Some(0);
        r.order_unverified = Some(2);
        r.order_unchecked = true;
        for n in &mut r.nodes {
            n.order_violations = 0;
        }
        let text = summary(&r, false);
        assert!(
            text.contains("one order across 3 nodes: not checked (2 clients could not be checked)"),
            "{text}"
        );
        assert_eq!(problems(&r), ["order not checked"]);
    }

    #[test]
    fn a_disturbed_run_says_so() {
        let mut r = clean();
        r.flow_secs = 2.0;
        r.others_flow_cpu_secs = Some(0.1);
        assert!(
            summary(&r, false)
                .contains("\nmachine        other processes used 0.10 s CPU while messages flowed\n")
        );
        r.others_flow_cpu_secs = Some(1.2);
        assert!(summary(&r, false).contains("1.20 s CPU while messages flowed (the run shared the machine"));
    }
}

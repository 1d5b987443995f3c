//! What a run's result says in words: the summary printed after `chatter
//! bench`, the order verdict, the disconnects, and the problems that make a
//! run count as failed.
//!
//! Kept apart from [`super::run`], which produces the result, because the
//! report (its tables, plots and targets) judges runs in the same words,
//! and should depend on the data and on this, not on the code that starts
//! servers and drives clients.

use crate::bench::format::{decimals, group, load_text, signed_group};
use crate::bench::results::RunResult;

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
    match order_text(result) {
        "yes" => {}
        "NO" => found.push("no one consistent order".to_string()),
        _ => found.push("order not checked".to_string()),
    }
    found
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
        "lost/dup       {} lost, {} duplicated, {} clients disconnected; one consistent order{}: {}\n",
        group(result.lost),
        group(result.duplicated),
        group(result.disconnected as u64),
        if result.disconnected > 0 { " among the clients that stayed" } else { "" },
        order_text(result)
    );
    if result.disconnected > 0 {
        out += &format!("disconnected   {}\n", disconnects_text(result));
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
    match &result.server {
        Some(u) => {
            out += &format!(
                "server use     {:.2} s CPU ({:.2} s while messages flowed), peak RSS {:.1} MiB ({:.1} MiB when connected), {} processes, {} threads, {} context switches, {} open fds\n",
                u.cpu_secs,
                u.flow_cpu_secs,
                mib(u.peak_rss_bytes),
                mib(u.connected_rss_bytes),
                group(u.processes as u64),
                group(u.threads as u64),
                group(u.context_switches),
                group(u.open_fds as u64)
            )
        }
        None => out += "server use     unknown (no --pid)\n",
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
    if let Some(error) = &result.error {
        out += &format!("error          {error}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::results::DisconnectReason;

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
        assert!(
            summary
                .contains("1,205 clients disconnected; one consistent order among the clients that stayed")
        );
        assert!(summary.contains("\ndisconnected   1,205 clients: 1,200 × ERROR"));
    }
}

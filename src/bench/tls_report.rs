//! The section "What TLS costs" of `PERFORMANCE.md`, written from the
//! results of `chatter bench tls` (`bench/tls.json`): new clients per
//! second and deliveries per second, plaintext beside TLS for each model,
//! with what each costs the server in CPU, and every run with its losses,
//! disconnects and failures.
//!
//! Why it is shaped so: like the rest of the report it is pure (data in,
//! Markdown out), so the section is regenerated, never edited. Medians
//! are over the runs that had no problem; a run with one is left out of
//! them, counted in the "runs" column, and shown with its problem in the
//! tables of every run at the end.

use std::fmt::Write as _;

use super::cluster_report::{median, spread};
use super::format::{DASH, cell, decimals, group, load_text, signed_group};
use super::results::{HandshakeResult, RunResult, RunSpec, TlsSpec, TlsSweep};
use super::summary::{handshake_problems, order_text, problems};

fn model_label(server: &str, workers: Option<usize>) -> String {
    match workers {
        Some(w) => format!("{server}/{w}"),
        None => server.to_string(),
    }
}

fn transport(tls: Option<&TlsSpec>) -> &'static str {
    match tls {
        None => "plaintext",
        Some(t) if t.verified => "TLS",
        Some(_) => "TLS, certificate not verified",
    }
}

fn ms(us: f64) -> String {
    decimals(us / 1000.0, 2)
}

fn commit_text(commit: &str) -> String {
    if commit.is_empty() {
        return "a commit that was not recorded".to_string();
    }
    match commit.split_once(' ') {
        Some((hash, note)) => format!("commit `{hash}` {note}"),
        None => format!("commit `{commit}`"),
    }
}

/// "3" or "3 (**1 failed**)".
fn runs_text(all: usize, clean: usize) -> String {
    if all == clean { all.to_string() } else { format!("{all} (**{} failed**)", all - clean) }
}

/// Server CPU µs per client that got in.
fn server_us_per_client(r: &HandshakeResult) -> Option<f64> {
    (r.completed > 0).then_some(r.server_cpu_secs? * 1e6 / r.completed as f64)
}

fn generator_us_per_client(r: &HandshakeResult) -> Option<f64> {
    (r.completed > 0).then(|| r.generator_cpu_secs * 1e6 / r.completed as f64)
}

/// Server CPU seconds in the flow per million deliveries.
fn cpu_per_million(r: &RunResult) -> Option<f64> {
    (r.delivered > 0).then_some(r.server.as_ref()?.flow_cpu_secs * 1e6 / r.delivered as f64)
}

/// The connection-rate runs by model (in the order first measured), each
/// with its plaintext runs and its TLS runs.
type HandshakeGroup<'a> = (String, Vec<&'a HandshakeResult>, Vec<&'a HandshakeResult>);

fn handshake_groups(tls: &TlsSweep) -> Vec<HandshakeGroup<'_>> {
    let mut out: Vec<HandshakeGroup> = Vec::new();
    for r in &tls.handshakes {
        let model = model_label(&r.server, r.workers);
        let at = match out.iter().position(|(m, ..)| *m == model) {
            Some(at) => at,
            None => {
                out.push((model, Vec::new(), Vec::new()));
                out.len() - 1
            }
        };
        if r.tls.is_some() { out[at].2.push(r) } else { out[at].1.push(r) }
    }
    out
}

/// The delivery runs by load (fewer clients first), then by model, each
/// with its plaintext runs and its TLS runs.
type RunGroup<'a> = (&'a RunSpec, Vec<(String, Vec<&'a RunResult>, Vec<&'a RunResult>)>);

fn run_groups(tls: &TlsSweep) -> Vec<RunGroup<'_>> {
    let mut out: Vec<RunGroup> = Vec::new();
    for r in &tls.runs {
        let Some(spec) = &r.spec else { continue };
        let at = match out.iter().position(|(s, _)| s.load == spec.load) {
            Some(at) => at,
            None => {
                out.push((spec, Vec::new()));
                out.len() - 1
            }
        };
        let models = &mut out[at].1;
        let model = model_label(&spec.server, spec.workers);
        let m = match models.iter().position(|(name, ..)| *name == model) {
            Some(m) => m,
            None => {
                models.push((model, Vec::new(), Vec::new()));
                models.len() - 1
            }
        };
        if spec.tls.is_some() { models[m].2.push(r) } else { models[m].1.push(r) }
    }
    out.sort_by_key(|(spec, _)| spec.load.clients);
    out
}

/// The whole section: `## What TLS costs`.
pub(crate) fn section(tls: &TlsSweep) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## What TLS costs\n");
    let _ = writeln!(
        md,
        "This section is generated from `bench/tls.json`, like the rest of this file; do not edit it by \
         hand. Measured on {} at {}, on the machine above ({} cores), with:\n\n```sh\n{}\n```\n",
        tls.generated,
        commit_text(&tls.commit),
        tls.machine.cores,
        tls.command.trim()
    );
    let negotiated = tls
        .handshakes
        .iter()
        .filter_map(|h| h.tls_session.clone())
        .chain(tls.runs.iter().filter_map(|r| r.tls_session.clone()))
        .next()
        .unwrap_or_else(|| "not recorded".into());
    let trust = tls
        .handshakes
        .iter()
        .filter_map(|h| h.tls.as_ref())
        .chain(tls.runs.iter().filter_map(|r| r.spec.as_ref()?.tls.as_ref()))
        .next()
        .map_or_else(|| "not recorded".to_string(), |t| t.trust.clone());
    let _ = writeln!(
        md,
        "Pinning: {}. Each run started a server of its own. Over TLS it served TLS only (`--listen none \
         --tls-listen 127.0.0.1:0`) with a fresh self-signed ECDSA P-256 certificate the bench made as \
         `chatter cert` does, and the clients trusted {trust}. They negotiated {negotiated}. Session \
         resumption was off in the clients, so every connection was a full handshake, as a crowd of new \
         users' are. Plaintext runs are the same server on a plain listener.\n",
        tls.pinning
    );
    if !tls.notes.trim().is_empty() {
        let _ = writeln!(md, "{}\n", tls.notes.trim_end());
    }
    md.push_str(&new_clients(tls));
    md.push_str(&deliveries(tls));
    md.push_str(&every_handshake_run(tls));
    md.push_str(&every_delivery_run(tls));
    md
}

fn new_clients(tls: &TlsSweep) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "### New clients per second\n");
    let (count, in_flight) = tls.handshakes.first().map_or((0, 0), |h| (h.attempted, h.in_flight));
    let _ = writeln!(
        md,
        "Each run: {} new clients, each a new TCP connection, the TLS handshake (over TLS), an IRC \
         registration up to 001, then QUIT. Each attempt starts as soon as the previous one's TCP \
         connect is accepted, with at most {} unfinished at once. Clients/s is those that got 001 over \
         the time from the first attempt to the last 001. Medians over the runs without a failure (range \
         in brackets); failed counts, over all runs, every client that did not get in. Server and \
         generator CPU are per client that got in; generator busy is its CPU over the run's time, and \
         near 100% means the one-threaded generator, which does the client's side of every handshake, \
         set the pace: then the server's CPU per client is the figure to compare.\n",
        group(count as u64),
        group(in_flight as u64)
    );
    let _ = writeln!(
        md,
        "| model | transport | runs | clients/s | time to 001 p50 (ms) | p99 (ms) | of it TLS p50 (ms) \
         | server CPU per client (µs) | generator CPU per client (µs) | generator busy | failed |"
    );
    let _ = writeln!(md, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let groups = handshake_groups(tls);
    for (model, plain, secure) in &groups {
        for runs in [plain, secure] {
            let Some(first) = runs.first() else { continue };
            let ok: Vec<&HandshakeResult> =
                runs.iter().copied().filter(|r| handshake_problems(r).is_empty()).collect();
            let failed: usize = runs.iter().map(|r| r.failed()).sum();
            let lat = |f: fn(&HandshakeResult) -> Option<u64>| {
                ok.iter().filter_map(|r| f(r).map(|v| v as f64)).collect()
            };
            let _ = writeln!(
                md,
                "| {model} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                transport(first.tls.as_ref()),
                runs_text(runs.len(), ok.len()),
                spread(ok.iter().map(|r| r.per_sec).collect(), |v| signed_group(v.round())),
                spread(lat(|r| Some(r.latency.p50_us)), ms),
                spread(lat(|r| Some(r.latency.p99_us)), ms),
                if first.tls.is_some() {
                    spread(lat(|r| r.tls_latency.as_ref().map(|l| l.p50_us)), ms)
                } else {
                    DASH.to_string()
                },
                spread(ok.iter().filter_map(|r| server_us_per_client(r)).collect(), |v| group(
                    v.round() as u64
                )),
                spread(ok.iter().filter_map(|r| generator_us_per_client(r)).collect(), |v| group(
                    v.round() as u64
                )),
                spread(
                    ok.iter()
                        .filter(|r| r.secs > 0.0)
                        .map(|r| 100.0 * r.generator_cpu_secs / r.secs)
                        .collect(),
                    |v| format!("{v:.0}%")
                ),
                group(failed as u64),
            );
        }
    }
    md.push('\n');
    let _ = writeln!(
        md,
        "TLS against plaintext, from the medians above: the rate, and what the server spends per new \
         client.\n"
    );
    let _ = writeln!(
        md,
        "| model | clients/s plaintext | clients/s TLS | TLS ÷ plaintext | server µs per client plaintext \
         | server µs per client TLS | TLS adds (µs per client) |"
    );
    let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|");
    for (model, plain, secure) in &groups {
        let clean = |runs: &Vec<&HandshakeResult>| -> Vec<HandshakeResult> {
            runs.iter().filter(|r| handshake_problems(r).is_empty()).map(|r| (*r).clone()).collect()
        };
        let (plain, secure) = (clean(plain), clean(secure));
        let rate = |runs: &[HandshakeResult]| median(runs.iter().map(|r| r.per_sec).collect());
        let cpu = |runs: &[HandshakeResult]| median(runs.iter().filter_map(server_us_per_client).collect());
        let (rp, rs, cp, cs) = (rate(&plain), rate(&secure), cpu(&plain), cpu(&secure));
        let show = |v: Option<f64>| v.map_or(DASH.to_string(), |v| signed_group(v.round()));
        let _ = writeln!(
            md,
            "| {model} | {} | {} | {} | {} | {} | {} |",
            show(rp),
            show(rs),
            ratio(rs, rp),
            show(cp),
            show(cs),
            match (cs, cp) {
                (Some(s), Some(p)) => signed_group((s - p).round()),
                _ => DASH.to_string(),
            }
        );
    }
    md.push('\n');
    md
}

/// "0.42×", or a dash when either side is missing.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{}×", decimals(a / b, 2)),
        _ => DASH.to_string(),
    }
}

fn deliveries(tls: &TlsSweep) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "### Deliveries per second\n");
    let _ = writeln!(
        md,
        "The same flood over plaintext and over TLS: every client in one channel, the senders writing as \
         fast as TCP accepts (open loop), every client reading as fast as it can; each delivery is one \
         line the server encrypts for one client and the generator decrypts. Medians over the runs \
         without a problem (range in brackets); lost and disconnected are summed over every run. Server \
         CPU is its CPU while messages flowed, per million deliveries.\n"
    );
    for (spec, models) in run_groups(tls) {
        let _ = writeln!(
            md,
            "#### {} clients, {} senders × {} messages, {}\n",
            group(spec.load.clients as u64),
            spec.load.senders,
            group(spec.load.messages as u64),
            load_text(&spec.load)
        );
        let _ = writeln!(
            md,
            "| model | transport | runs | deliveries/s | TLS ÷ plaintext | p50 (ms) | p99 (ms) | server CPU \
             per M deliveries (s) | generator busy in flow | register (s) | join (s) | lost | disconnected |"
        );
        let _ = writeln!(md, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for (model, plain, secure) in &models {
            let clean = |runs: &[&RunResult]| -> Vec<f64> {
                runs.iter().filter(|r| problems(r).is_empty()).map(|r| r.deliveries_per_sec).collect()
            };
            let plain_rate = median(clean(plain));
            for runs in [plain, secure] {
                let Some(first) = runs.first() else { continue };
                let ok: Vec<&RunResult> = runs.iter().copied().filter(|r| problems(r).is_empty()).collect();
                let is_tls = first.spec.as_ref().is_some_and(|s| s.tls.is_some());
                let rate = median(ok.iter().map(|r| r.deliveries_per_sec).collect());
                let _ = writeln!(
                    md,
                    "| {model} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    transport(first.spec.as_ref().and_then(|s| s.tls.as_ref())),
                    runs_text(runs.len(), ok.len()),
                    spread(ok.iter().map(|r| r.deliveries_per_sec).collect(), |v| signed_group(v.round())),
                    if is_tls { ratio(rate, plain_rate) } else { DASH.to_string() },
                    spread(ok.iter().map(|r| r.latency.p50_us as f64).collect(), ms),
                    spread(ok.iter().map(|r| r.latency.p99_us as f64).collect(), ms),
                    spread(ok.iter().filter_map(|r| cpu_per_million(r)).collect(), |v| decimals(v, 2)),
                    spread(
                        ok.iter()
                            .filter(|r| r.flow_secs > 0.0)
                            .map(|r| 100.0 * r.generator_flow_cpu_secs / r.flow_secs)
                            .collect(),
                        |v| format!("{v:.0}%")
                    ),
                    spread(ok.iter().map(|r| r.connect_secs).collect(), |v| decimals(v, 3)),
                    spread(ok.iter().map(|r| r.join_secs).collect(), |v| decimals(v, 3)),
                    group(runs.iter().map(|r| r.lost).sum()),
                    group(runs.iter().map(|r| r.disconnected as u64).sum()),
                );
            }
        }
        md.push('\n');
    }
    md
}

fn every_handshake_run(tls: &TlsSweep) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "### Every run: new clients\n");
    let _ = writeln!(md, "In the order they were made. A run with a problem says what it was.\n");
    let _ = writeln!(
        md,
        "| model | transport | attempted | got in | failed | seconds | clients/s | time to 001 p50 (ms) | p99 \
         (ms) | most in flight | server CPU (s) | generator CPU (s) | others (s) | problem |"
    );
    let _ = writeln!(md, "|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    for r in &tls.handshakes {
        let failed = if r.failures.is_empty() {
            "0".to_string()
        } else {
            r.failures
                .iter()
                .map(|f| format!("{} × {}", group(f.clients as u64), f.reason))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.3} | {} | {} | {} | {} | {} | {:.2} | {} | {} |",
            model_label(&r.server, r.workers),
            transport(r.tls.as_ref()),
            group(r.attempted as u64),
            group(r.completed as u64),
            cell(&failed),
            r.secs,
            signed_group(r.per_sec.round()),
            ms(r.latency.p50_us as f64),
            ms(r.latency.p99_us as f64),
            group(r.peak_in_flight as u64),
            r.server_cpu_secs.map_or(DASH.to_string(), |c| decimals(c, 2)),
            r.generator_cpu_secs,
            r.others_cpu_secs.map_or(DASH.to_string(), |o| decimals(o, 2)),
            cell(&handshake_problems(r).join("; ")),
        );
    }
    md.push('\n');
    md
}

fn every_delivery_run(tls: &TlsSweep) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "### Every run: deliveries\n");
    let _ = writeln!(md, "In the order they were made. A run with a problem says what it was.\n");
    let _ = writeln!(
        md,
        "| model | transport | clients | load | deliveries/s | p50 (ms) | p99 (ms) | lost | disconnected | \
         duplicated | one order | server CPU in flow (s) | generator CPU in flow (s) | others (s) | problem |"
    );
    let _ = writeln!(md, "|---|---|--:|---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|---|");
    for r in &tls.runs {
        let Some(spec) = &r.spec else { continue };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {}×{} {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {} | {} |",
            model_label(&spec.server, spec.workers),
            transport(spec.tls.as_ref()),
            group(spec.load.clients as u64),
            spec.load.senders,
            group(spec.load.messages as u64),
            load_text(&spec.load),
            signed_group(r.deliveries_per_sec.round()),
            ms(r.latency.p50_us as f64),
            ms(r.latency.p99_us as f64),
            group(r.lost),
            group(r.disconnected as u64),
            group(r.duplicated),
            order_text(r),
            r.server.as_ref().map_or(DASH.to_string(), |u| decimals(u.flow_cpu_secs, 2)),
            r.generator_flow_cpu_secs,
            r.others_flow_cpu_secs.map_or(DASH.to_string(), |o| decimals(o, 2)),
            cell(&problems(r).join("; ")),
        );
    }
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::fixtures::{run, spec, sweep};
    use crate::bench::results::{DisconnectReason, Latency};

    fn tls_spec() -> TlsSpec {
        TlsSpec { verified: true, trust: "exactly the certificate the bench made".into() }
    }

    fn handshake(server: &str, tls: bool, per_sec: f64, failures: usize) -> HandshakeResult {
        let completed = 1000 - failures;
        HandshakeResult {
            server: server.into(),
            workers: (server != "iterative").then_some(1),
            tls: tls.then(tls_spec),
            attempted: 1000,
            in_flight: 100,
            peak_in_flight: 40,
            completed,
            failures: if failures > 0 {
                vec![DisconnectReason { reason: "TLS handshake: connection reset".into(), clients: failures }]
            } else {
                Vec::new()
            },
            secs: completed as f64 / per_sec,
            per_sec,
            latency: Latency { p50_us: 2000, p99_us: 9000, ..Latency::default() },
            tls_latency: tls.then(|| Latency { p50_us: 1000, ..Latency::default() }),
            tls_session: tls.then(|| "TLSv1_3, TLS13_AES_256_GCM_SHA384, X25519".into()),
            server_cpu_secs: Some(completed as f64 * if tls { 300e-6 } else { 100e-6 }),
            generator_cpu_secs: 0.5,
            others_cpu_secs: Some(0.01),
            error: None,
        }
    }

    fn delivery(server: &str, tls: bool, per_sec: f64) -> RunResult {
        let workers = (server != "iterative").then_some(1);
        let mut s = spec(server, workers, 100, 0.0);
        s.tls = tls.then(tls_spec);
        let mut r = run(s, per_sec, 5000);
        r.order_violations = Some(0);
        r.order_unverified = Some(0);
        r
    }

    fn results() -> TlsSweep {
        let base = sweep();
        let mut lossy = delivery("prethread", true, 1_000_000.0);
        lossy.lost = 7;
        lossy.disconnected = 1;
        TlsSweep {
            command: "chatter bench tls".into(),
            generated: "2026-12-03 01:00 UTC".into(),
            commit: "abc123".into(),
            machine: base.machine,
            pinning: "server on CPU 0, load generator on CPU 1".into(),
            handshakes: vec![
                handshake("prethread", false, 9000.0, 0),
                handshake("prethread", true, 3000.0, 0),
                handshake("prethread", false, 8000.0, 0),
                handshake("prethread", true, 2000.0, 5),
            ],
            runs: vec![
                delivery("prethread", false, 4_000_000.0),
                delivery("prethread", true, 2_000_000.0),
                delivery("prethread", false, 5_000_000.0),
                lossy,
            ],
            notes: "Hand-written notes.".into(),
        }
    }

    #[test]
    fn the_section_says_how_it_was_made_and_compares_each_pair() {
        let md = section(&results());
        let order = [
            "## What TLS costs",
            "at commit `abc123`",
            "```sh\nchatter bench tls\n```",
            "TLSv1_3, TLS13_AES_256_GCM_SHA384, X25519",
            "Hand-written notes.",
            "### New clients per second",
            "| prethread/1 | plaintext | 2 | 8,500 (8,000–9,000) |",
            "| prethread/1 | TLS | 2 (**1 failed**) | 3,000 |",
            "| prethread/1 | 8,500 | 3,000 | 0.35× | 100 | 300 | 200 |",
            "### Deliveries per second",
            "#### 100 clients, 10 senders × 1,000 messages, unpaced, open loop",
            "| prethread/1 | plaintext | 2 | 4,500,000 (4,000,000–5,000,000) | — |",
            "| prethread/1 | TLS | 2 (**1 failed**) | 2,000,000 | 0.44× |",
            "### Every run: new clients",
            "5 × TLS handshake: connection reset",
            "### Every run: deliveries",
            "7 deliveries lost; 1 clients disconnected",
        ];
        let mut at = 0;
        for part in order {
            let found = md[at..].find(part).unwrap_or_else(|| panic!("{part:?} missing after {at} in\n{md}"));
            at += found + part.len();
        }
        // Lost and disconnected are summed over every run of a row.
        assert!(md.contains("| 7 | 1 |\n"), "{md}");
    }

    #[test]
    fn an_unverified_certificate_is_said_in_every_row() {
        let mut results = results();
        for h in &mut results.handshakes {
            if let Some(t) = &mut h.tls {
                t.verified = false;
            }
        }
        let md = section(&results);
        assert!(md.contains("| prethread/1 | TLS, certificate not verified |"), "{md}");
    }
}

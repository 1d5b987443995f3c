//! `chatter bench tls`: what TLS costs, in one command. For every model,
//! plaintext and TLS side by side: how many new clients per second get in
//! (TCP connect, the TLS handshake, registration up to 001: `--handshakes`),
//! and deliveries per second under the same flood. Results go to
//! `bench/tls.json`, from which `tls_report` writes the section "What TLS
//! costs" of `PERFORMANCE.md`.
//!
//! Why it is shaped so: a comparison is only as good as its pairs, so each
//! plaintext run is followed at once by the same run over TLS (same model,
//! same load, a fresh server each), and the repetitions are interleaved,
//! so a disturbance on a shared machine falls on both sides of a pair
//! rather than on one configuration. Every flood carries about a million
//! deliveries whatever the client count, which keeps the default run to a
//! few minutes on two cores while each flow still lasts long enough to
//! measure.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bench::procstat;
use crate::bench::results::{self, HandshakeResult, Load, Proto, RunResult, RunSpec, TlsSweep};
use crate::bench::run::{self, RunPlan, Target};
use crate::bench::spawn::model_name;
use crate::bench::summary::handshake_problems;
use crate::bench::sweep::{self, generated_at, measured_commit, one_line};
use crate::bench::tls::TlsPlan;
use crate::server::Model;

/// The results file, beside `results.json`.
pub(crate) const TLS_RESULTS: &str = "tls.json";

/// What to measure.
#[derive(Debug, Clone)]
pub struct TlsSweepPlan {
    pub models: Vec<Model>,
    /// Workers for the pool models.
    pub workers: usize,
    /// Client counts for the floods.
    pub clients: Vec<usize>,
    /// New clients per connection-rate measurement.
    pub handshakes: usize,
    /// The most of them unfinished at once.
    pub handshakes_in_flight: usize,
    /// Times every pair is measured (interleaved).
    pub repeats: usize,
    /// Clients registering at once before a flood.
    pub connect_concurrency: usize,
    pub server_cpu: Option<usize>,
    pub client_cpu: Option<usize>,
    pub out: PathBuf,
    pub notes: Option<PathBuf>,
    pub command: String,
}

/// One measurement of the matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Step {
    /// New clients per second.
    Handshakes { model: Model, tls: bool },
    /// The flood at this many clients.
    Flood { model: Model, clients: usize, tls: bool },
}

/// The flood at `clients`: up to 10 senders, and as many messages each as
/// make about a million deliveries (at least 10), rounded to one
/// significant digit; unpaced, open loop, IRC.
pub(crate) fn flood(clients: usize, connect_concurrency: usize) -> Load {
    let senders = clients.clamp(1, 10);
    let receivers = clients.saturating_sub(1).max(1);
    let exact = (1_000_000 / (senders * receivers)).max(10);
    let scale = 10usize.pow(exact.ilog10());
    let messages = (exact + scale / 2) / scale * scale;
    Load { proto: Proto::Irc, clients, senders, messages, rate: 0.0, window: None, connect_concurrency }
}

/// Every step, in the order they are made: per repetition, each model's
/// connection rate, then each client count's flood per model; plaintext
/// always just before TLS.
pub(crate) fn matrix(plan: &TlsSweepPlan) -> Vec<Step> {
    let mut steps = Vec::new();
    for _ in 0..plan.repeats.max(1) {
        for &model in &plan.models {
            for tls in [false, true] {
                steps.push(Step::Handshakes { model, tls });
            }
        }
        for &clients in &plan.clients {
            for &model in &plan.models {
                for tls in [false, true] {
                    steps.push(Step::Flood { model, clients, tls });
                }
            }
        }
    }
    steps
}

fn workers(plan: &TlsSweepPlan, model: Model) -> Option<usize> {
    (model != Model::Iterative).then_some(plan.workers)
}

fn run_plan(plan: &TlsSweepPlan, model: Model, load: Load, tls: bool) -> RunPlan {
    RunPlan {
        target: Target::Spawn { model, workers: workers(plan, model) },
        load,
        server_cpu: plan.server_cpu,
        client_cpu: plan.client_cpu,
        progress: false,
        quiet_timeout: Duration::from_secs(10),
        join: true,
        tls: tls.then_some(TlsPlan::Spawned),
    }
}

fn handshakes_line(r: &HandshakeResult) -> String {
    let label = match r.workers {
        Some(w) => format!("{}/{w}", r.server),
        None => r.server.clone(),
    };
    let problems = handshake_problems(r);
    format!(
        "{label} {}: {} of {} new clients in {:.3} s = {:.0}/s, server {} µs/client{}",
        if r.tls.is_some() { "TLS" } else { "plaintext" },
        r.completed,
        r.attempted,
        r.secs,
        r.per_sec,
        r.server_cpu_secs.map_or("?".into(), |s| format!("{:.0}", s * 1e6 / r.completed.max(1) as f64)),
        if problems.is_empty() { String::new() } else { format!(" — {}", problems.join("; ")) }
    )
}

/// Runs the matrix, writes `bench/tls.json` and rewrites `PERFORMANCE.md`.
pub fn tls_sweep(plan: &TlsSweepPlan) -> io::Result<TlsSweep> {
    // Read before any run pins this process to one CPU.
    let machine = procstat::machine();
    let commit = measured_commit();
    let steps = matrix(plan);
    let mut handshakes = Vec::new();
    let mut runs = Vec::new();
    for (done, step) in steps.iter().enumerate() {
        let line = match *step {
            Step::Handshakes { model, tls } => {
                let load = Load {
                    proto: Proto::Irc,
                    clients: plan.handshakes,
                    senders: 0,
                    messages: 0,
                    rate: 0.0,
                    window: None,
                    connect_concurrency: plan.handshakes_in_flight,
                };
                let result =
                    run::handshakes(&run_plan(plan, model, load, tls)).unwrap_or_else(|e| HandshakeResult {
                        server: model_name(model),
                        workers: workers(plan, model),
                        attempted: plan.handshakes,
                        in_flight: plan.handshakes_in_flight,
                        error: Some(e.to_string()),
                        ..HandshakeResult::default()
                    });
                let line = handshakes_line(&result);
                handshakes.push(result);
                line
            }
            Step::Flood { model, clients, tls } => {
                let load = flood(clients, plan.connect_concurrency);
                let result = run::run(&run_plan(plan, model, load.clone(), tls)).unwrap_or_else(|e| {
                    let spec = RunSpec {
                        server: model_name(model),
                        workers: workers(plan, model),
                        cluster: None,
                        tls: None,
                        load,
                    };
                    RunResult { spec: Some(spec), error: Some(e.to_string()), ..RunResult::default() }
                });
                let label = result.spec.as_ref().map_or_else(String::new, results::label);
                let line = one_line(&label, &result);
                runs.push(result);
                line
            }
        };
        eprintln!("[{}/{}] {line}", done + 1, steps.len());
    }
    let pinning = match (plan.server_cpu, plan.client_cpu) {
        (Some(s), Some(c)) => {
            format!("server on CPU {s}, load generator on CPU {c} (taskset / sched_setaffinity)")
        }
        _ => "not pinned".to_string(),
    };
    let tls = TlsSweep {
        command: plan.command.clone(),
        generated: generated_at(),
        commit,
        machine,
        pinning,
        handshakes,
        runs,
        notes: sweep::read_notes(plan.notes.as_deref()),
    };
    write(&tls, &plan.out)?;
    Ok(tls)
}

/// Rewrites the section from `bench/tls.json` with the notes file as it is
/// now, measuring nothing.
pub fn render(out: &Path, notes: &Path) -> io::Result<TlsSweep> {
    let mut tls: TlsSweep = results::read_pretty(&out.join("bench").join(TLS_RESULTS))?;
    tls.notes = std::fs::read_to_string(notes)?;
    write(&tls, out)?;
    Ok(tls)
}

/// Writes `bench/tls.json`, then the whole report again from it and
/// `bench/results.json`.
fn write(tls: &TlsSweep, out: &Path) -> io::Result<()> {
    let bench = out.join("bench");
    std::fs::create_dir_all(&bench)?;
    results::write_pretty(&bench.join(TLS_RESULTS), tls)?;
    let main = results::read_json(&bench.join("results.json"))?;
    sweep::write(&main, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> TlsSweepPlan {
        TlsSweepPlan {
            models: vec![Model::Iterative, Model::Prethread],
            workers: 1,
            clients: vec![100, 1000],
            handshakes: 2000,
            handshakes_in_flight: 100,
            repeats: 2,
            connect_concurrency: 200,
            server_cpu: Some(0),
            client_cpu: Some(1),
            out: PathBuf::from("docs"),
            notes: None,
            command: String::new(),
        }
    }

    #[test]
    fn every_flood_carries_about_a_million_deliveries() {
        let messages = |clients| flood(clients, 200).messages;
        assert_eq!(messages(100), 1000);
        assert_eq!(messages(1000), 100);
        assert_eq!(messages(5000), 20);
        assert_eq!(messages(10_000), 10);
        assert_eq!(messages(300), 300);
        assert_eq!(flood(5, 200).senders, 5);
        assert_eq!(messages(2), 500_000);
        for clients in [2, 10, 100, 300, 1000, 5000] {
            let load = flood(clients, 200);
            let deliveries = load.senders * load.messages * (clients - 1);
            assert!((500_000..=1_500_000).contains(&deliveries), "{clients}: {deliveries}");
            assert_eq!((load.rate, load.window, load.proto), (0.0, None, Proto::Irc));
        }
    }

    #[test]
    fn plaintext_goes_just_before_tls_and_repetitions_interleave() {
        let steps = matrix(&plan());
        // 2 repetitions × (2 models × 2 + 2 sizes × 2 models × 2).
        assert_eq!(steps.len(), 2 * (4 + 8));
        for pair in steps.chunks(2) {
            match (pair[0], pair[1]) {
                (Step::Handshakes { model: a, tls: false }, Step::Handshakes { model: b, tls: true }) => {
                    assert_eq!(a, b)
                }
                (
                    Step::Flood { model: a, clients: n, tls: false },
                    Step::Flood { model: b, clients: m, tls: true },
                ) => assert_eq!((a, n), (b, m)),
                other => panic!("not a pair: {other:?}"),
            }
        }
        assert_eq!(steps[..12], steps[12..]);
        let plan = run_plan(&plan(), Model::Prethread, flood(100, 200), true);
        assert_eq!(plan.tls, Some(TlsPlan::Spawned));
        assert!(matches!(plan.target, Target::Spawn { model: Model::Prethread, workers: Some(1) }));
    }
}

//! `chatter bench sweep`: the whole comparison in one command. Runs every
//! server (chatter's models and any `--peer`) at every client count under
//! two loads — unpaced (the ceiling) and paced (latency at a steady rate) —
//! plus an idle run for memory per connection, each on a freshly started
//! server, and writes `PERFORMANCE.md`, `bench/results.json` and the plots.
//!
//! Loads per client count are fixed here, not chosen per run, so that every
//! server meets exactly the same traffic.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::bench::format::{decimals, group, load_text, signed_group};
use crate::bench::procstat;
use crate::bench::report;
use crate::bench::results::{self, IdleMemory, Load, PeerNote, Proto, RunResult, RunSpec, Sweep};
use crate::bench::run::{self, RunPlan, Target};
use crate::bench::spawn::{self, free_port, model_name, stop_pid};
use crate::bench::summary::order_text;
use crate::bench::svg;
use crate::bench::targets;
use crate::server::Model;

/// A peer server: a command that starts it on `{port}` (pinned to `{cpu}`)
/// and prints its PID as the last line of its output.
#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    pub command: String,
    /// Clients registering at once against this peer, if not the sweep's
    /// peer default (ngIRCd's listen backlog is 10; InspIRCd registers in a
    /// once-a-second pass and wants many at once).
    pub connect_concurrency: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct SweepPlan {
    pub models: Vec<Model>,
    pub workers: usize,
    pub clients: Vec<usize>,
    pub idle_clients: usize,
    pub peers: Vec<Peer>,
    pub peer_connect_concurrency: usize,
    pub connect_concurrency: usize,
    pub server_cpu: Option<usize>,
    pub client_cpu: Option<usize>,
    pub out: PathBuf,
    pub notes: Option<PathBuf>,
    pub command: String,
}

/// The two loads every server meets at `clients`: (senders, messages per
/// sender, total rate) unpaced (an open loop), then paced. At the sizes the
/// targets name, the unpaced load is theirs: 10 senders × 1000 messages.
pub(crate) fn loads(clients: usize) -> [(usize, usize, f64); 2] {
    let senders = clients.min(10);
    let flood = (senders, targets::FLOOD_MESSAGES, 0.0);
    match clients {
        // A small room gets more messages, so that its unpaced run carries
        // millions of deliveries and lasts long enough to measure.
        0..=10 => [(senders, 50_000, 0.0), (senders, 200, 2000.0)],
        11..=100 => [flood, (senders, 200, 2000.0)],
        101..=1000 => [flood, (senders, 100, 500.0)],
        1001..=5000 => [flood, (senders, 10, 50.0)],
        // Ten times the deliveries per message again: fewer messages keep
        // the run (and the peers' quadratic join before it) within minutes.
        _ => [(senders, 100, 0.0), (senders, 10, 50.0)],
    }
}

/// One of [`loads`] at `clients`, as a run takes it: IRC clients, and
/// the open loop (what each server does when offered more than it can
/// take) when unpaced.
pub(crate) fn sweep_load(clients: usize, load: (usize, usize, f64), connect_concurrency: usize) -> Load {
    let (senders, messages, rate) = load;
    Load { proto: Proto::Irc, clients, senders, messages, rate, window: None, connect_concurrency }
}

enum Server<'a> {
    Chatter { model: Model, workers: Option<usize> },
    Peer(&'a Peer),
}

impl Server<'_> {
    fn label(&self) -> String {
        match self {
            Server::Chatter { model, workers: Some(w) } => format!("{}/{w}", model_name(*model)),
            Server::Chatter { model, workers: None } => model_name(*model),
            Server::Peer(peer) => peer.name.clone(),
        }
    }
}

/// A peer server started for one run; stopped when dropped.
struct RunningPeer {
    pid: u32,
    addr: String,
}

impl Drop for RunningPeer {
    fn drop(&mut self) {
        stop_pid(self.pid);
    }
}

fn start_peer(peer: &Peer, cpu: Option<usize>) -> io::Result<RunningPeer> {
    let port = free_port()?;
    let command = peer
        .command
        .replace("{port}", &port.to_string())
        .replace("{cpu}", &cpu.map_or(String::new(), |c| c.to_string()));
    let output =
        Command::new("sh").arg("-c").arg(&command).stdin(Stdio::null()).stderr(Stdio::inherit()).output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let pid =
        stdout.lines().filter_map(|l| l.trim().parse::<u32>().ok()).next_back().ok_or_else(|| {
            io::Error::other(format!("{command:?} printed no PID (status {})", output.status))
        })?;
    Ok(RunningPeer { pid, addr: format!("127.0.0.1:{port}") })
}

fn failed(spec: RunSpec, error: String) -> RunResult {
    RunResult { spec: Some(spec), error: Some(error), ..RunResult::default() }
}

/// Runs one load against a fresh instance of `server`.
fn run_on(server: &Server, plan: &SweepPlan, clients: usize, load: (usize, usize, f64)) -> RunResult {
    let senders = load.0;
    let concurrency = match server {
        Server::Peer(peer) => peer.connect_concurrency.unwrap_or(plan.peer_connect_concurrency),
        Server::Chatter { .. } => plan.connect_concurrency,
    };
    let load = sweep_load(clients, load, concurrency);
    let run_plan = |target| RunPlan {
        target,
        load: load.clone(),
        server_cpu: plan.server_cpu,
        client_cpu: plan.client_cpu,
        progress: false,
        quiet_timeout: Duration::from_secs(10),
        // Idle runs (no senders) measure registered, silent clients.
        join: senders > 0,
        tls: None,
    };
    let spec = |server: String, workers: Option<usize>| RunSpec {
        server,
        workers,
        cluster: None,
        tls: None,
        load: load.clone(),
    };
    match server {
        Server::Chatter { model, workers } => {
            let target = Target::Spawn { model: *model, workers: *workers };
            run::run(&run_plan(target))
                .unwrap_or_else(|e| failed(spec(model_name(*model), *workers), e.to_string()))
        }
        Server::Peer(peer) => {
            let running = match start_peer(peer, plan.server_cpu) {
                Ok(running) => running,
                Err(e) => return failed(spec(peer.name.clone(), None), e.to_string()),
            };
            let target = Target::Running {
                addrs: vec![running.addr.clone()],
                pids: vec![running.pid],
                name: peer.name.clone(),
            };
            let result = run::run(&run_plan(target))
                .unwrap_or_else(|e| failed(spec(peer.name.clone(), None), e.to_string()));
            drop(running);
            result
        }
    }
}

/// Resident memory of a fresh server with no clients, then with
/// `idle_clients` registered and silent.
fn idle_memory(server: &Server, plan: &SweepPlan) -> (Option<IdleMemory>, RunResult) {
    let result = run_on(server, plan, plan.idle_clients, (0, 0, 0.0));
    let empty = empty_rss(server, plan);
    let memory = match (&result.server, empty, result.error.is_none()) {
        (Some(usage), Some(empty), true) => Some(IdleMemory {
            server: server.label(),
            clients: result.connected,
            rss_empty_bytes: empty,
            rss_loaded_bytes: usage.connected_rss_bytes,
        }),
        _ => None,
    };
    (memory, result)
}

/// RSS of a freshly started server that has had no client yet.
fn empty_rss(server: &Server, plan: &SweepPlan) -> Option<u64> {
    let settle = || std::thread::sleep(Duration::from_millis(500));
    match server {
        Server::Chatter { model, workers } => {
            let spawned =
                spawn::SpawnedServer::start(*model, *workers, plan.server_cpu, plan.idle_clients + 1000, &[])
                    .ok()?;
            settle();
            procstat::sample_tree(spawned.pid()).ok().map(|s| s.rss_bytes)
        }
        Server::Peer(peer) => {
            let running = start_peer(peer, plan.server_cpu).ok()?;
            settle();
            procstat::sample_tree(running.pid).ok().map(|s| s.rss_bytes)
        }
    }
}

/// Runs the matrix and writes the report files under `plan.out`.
pub fn sweep(plan: &SweepPlan) -> io::Result<Sweep> {
    let mut servers: Vec<Server> = plan
        .models
        .iter()
        .map(|&model| Server::Chatter { model, workers: (model != Model::Iterative).then_some(plan.workers) })
        .collect();
    servers.extend(plan.peers.iter().map(Server::Peer));

    // Read before any run pins this process to one CPU, which would make
    // it see one core.
    let machine = procstat::machine();
    // Read before measuring: the tree may change during a long sweep.
    let commit = measured_commit();
    let total = servers.len() * (plan.clients.len() * 2 + 1);
    let mut done = 0;
    let mut runs = Vec::new();
    let mut idle = Vec::new();
    for server in &servers {
        for &clients in &plan.clients {
            for load in loads(clients) {
                done += 1;
                let result = run_on(server, plan, clients, load);
                eprintln!("[{done}/{total}] {}", one_line(&server.label(), &result));
                runs.push(result);
            }
        }
        done += 1;
        let (memory, result) = idle_memory(server, plan);
        eprintln!("[{done}/{total}] {}", one_line(&server.label(), &result));
        runs.push(result);
        idle.extend(memory);
    }

    let notes = read_notes(plan.notes.as_deref());
    let pinning = match (plan.server_cpu, plan.client_cpu) {
        (Some(s), Some(c)) => {
            format!("server on CPU {s}, load generator on CPU {c} (taskset / sched_setaffinity)")
        }
        _ => "not pinned".to_string(),
    };
    let sweep = Sweep {
        command: plan.command.clone(),
        generated: generated_at(),
        commit,
        machine,
        pinning,
        runs,
        idle,
        peers: plan
            .peers
            .iter()
            .map(|p| PeerNote {
                name: p.name.clone(),
                command: p.command.clone(),
                configuration: peer_configuration(&p.name),
            })
            .collect(),
        notes,
    };
    write(&sweep, &plan.out)?;
    Ok(sweep)
}

/// The hand-written notes a report includes, or a line saying the file
/// is missing (a report with a gap beats no report after hours of runs).
pub(crate) fn read_notes(path: Option<&Path>) -> String {
    match path {
        Some(path) => {
            std::fs::read_to_string(path).unwrap_or_else(|_| format!("(no notes file at {})", path.display()))
        }
        None => String::new(),
    }
}

/// Writes the report again from `out/bench/results.json` with the notes
/// file as it is now, without measuring anything.
pub fn render(out: &Path, notes: &Path) -> io::Result<Sweep> {
    let mut sweep = results::read_json(&out.join("bench").join("results.json"))?;
    sweep.notes = std::fs::read_to_string(notes)?;
    write(&sweep, out)?;
    Ok(sweep)
}

/// Writes `PERFORMANCE.md`, `bench/results.json` and the plots. The
/// section on networks of nodes comes from `bench/cluster.json`, written by
/// `chatter bench cluster`, and the one on TLS from `bench/tls.json`,
/// written by `chatter bench tls`, when there are.
pub(crate) fn write(sweep: &Sweep, out: &Path) -> io::Result<()> {
    let bench_dir = out.join("bench");
    std::fs::create_dir_all(&bench_dir)?;
    results::write_json(&bench_dir.join("results.json"), sweep)?;
    let plots = svg::write_plots(&bench_dir, sweep)?;
    let cluster_path = bench_dir.join(CLUSTER_RESULTS);
    let cluster = if cluster_path.exists() { Some(results::read_json(&cluster_path)?) } else { None };
    if let Some(cluster) = &cluster {
        svg::write_cluster_plots(&bench_dir, cluster)?;
    }
    let tls_path = bench_dir.join(crate::bench::tls_sweep::TLS_RESULTS);
    let tls: Option<results::TlsSweep> =
        if tls_path.exists() { Some(results::read_pretty(&tls_path)?) } else { None };
    let page = report::markdown(sweep, &plots, "bench", cluster.as_ref(), tls.as_ref());
    std::fs::write(out.join("PERFORMANCE.md"), page)
}

/// The results of `chatter bench cluster`, beside `results.json`.
pub(crate) const CLUSTER_RESULTS: &str = "cluster.json";

pub(crate) fn one_line(label: &str, r: &RunResult) -> String {
    let spec = r.spec.as_ref();
    format!(
        "{label} N={} {}×{} {}: {} deliveries/s, p99 {} ms, lost {}, disconnected {}, dup {}, order {}{}",
        spec.map_or(0, |s| s.load.clients),
        spec.map_or(0, |s| s.load.senders),
        spec.map_or(0, |s| s.load.messages),
        spec.map_or("?".into(), |s| load_text(&s.load)),
        signed_group(r.deliveries_per_sec.round()),
        decimals(r.latency.p99_us as f64 / 1000.0, 2),
        group(r.lost),
        group(r.disconnected as u64),
        group(r.duplicated),
        order_text(r),
        r.error.as_ref().map(|e| format!(" — error: {e}")).unwrap_or_default()
    )
}

/// How each known peer is configured (from `bench/peers/`), for the report.
fn peer_configuration(name: &str) -> String {
    match name {
        "ngircd" => "ngIRCd 26.1 from Debian, single-threaded poll loop, config from bench/peers/ngircd.conf.in: \
                     MaxPenaltyTime = 0 turns its per-command penalty off; compiled-in limits left: 3 commands per \
                     client per loop pass, 32 KiB write buffer per client, listen backlog 10 (so clients connect 8 \
                     at a time here)."
            .into(),
        "inspircd" => "InspIRCd 3.15 from Debian, single-threaded, config from bench/peers/inspircd.conf.in: \
                       penalty budget raised to about 4M commands/s, fakelag on, large recv/send queues; it \
                       registers clients only in a once-a-second housekeeping pass."
            .into(),
        _ => "started by the command shown".into(),
    }
}

/// The commit of the repository this binary was built in (`git rev-parse
/// HEAD` next to the executable, whatever the working directory; when the
/// executable is not in a repository, the working directory's), or ""
/// outside one.
pub(crate) fn measured_commit() -> String {
    let beside_exe = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf));
    let in_repo = |dir: &Path| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["rev-parse", "--git-dir"])
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    };
    // A target directory outside the repository (CARGO_TARGET_DIR): then
    // the repository the bench is run from.
    let dir = beside_exe.filter(|d| in_repo(d));
    let git = |args: &[&str]| {
        let mut command = Command::new("git");
        if let Some(dir) = &dir {
            command.arg("-C").arg(dir);
        }
        command
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(hash) = git(&["rev-parse", "HEAD"]) else { return String::new() };
    // Untracked files are left out: a new source file only counts once a
    // tracked one refers to it, and that one then shows as changed.
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    describe_commit(&hash, dirty)
}

fn describe_commit(hash: &str, dirty: bool) -> String {
    if dirty { format!("{hash} (with uncommitted changes)") } else { hash.to_string() }
}

pub(crate) fn generated_at() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_follow_the_targets() {
        for clients in targets::FLOOD_SIZES {
            assert_eq!(loads(clients)[0], (targets::FLOOD_SENDERS, targets::FLOOD_MESSAGES, 0.0));
        }
        for (clients, rate) in targets::PACED {
            assert_eq!(loads(clients)[1].2, rate);
        }
        assert_eq!(loads(100)[1], (10, 200, 2000.0));
        assert_eq!(loads(1000)[1], (10, 100, 500.0));
        assert_eq!(loads(5000)[1], (10, 10, 50.0));
        assert_eq!(loads(10), [(10, 50_000, 0.0), (10, 200, 2000.0)]);
        assert_eq!(loads(10_000), [(10, 100, 0.0), (10, 10, 50.0)]);
        // Fewer clients than senders: everyone sends.
        assert_eq!(loads(4)[0].0, 4);
    }

    #[test]
    fn the_commit_says_when_the_tree_was_dirty() {
        assert_eq!(describe_commit("abc123", false), "abc123");
        assert_eq!(describe_commit("abc123", true), "abc123 (with uncommitted changes)");
    }
}

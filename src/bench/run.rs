//! One benchmark run from start to end: start the server (or take a
//! running one), pin processes to cores, run the load, sample the server's
//! resources around it, and fold everything into a `RunResult`.

use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::accounting::{combine, latency_summary};
use crate::bench::format::{decimals, group, load_text, signed_group};
use crate::bench::load::{self, LoadConfig, Phases};
use crate::bench::procstat::{self, Sample, Sampler};
use crate::bench::results::{Load, RunResult, RunSpec, Usage};
use crate::server::Model;

/// Where the server under test comes from.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start `chatter serve --model MODEL` on an ephemeral port.
    Spawn { model: Model, workers: Option<usize> },
    /// A server someone else started, with its PID if known.
    Running { addr: String, pid: Option<u32>, name: String },
}

/// One run: the server under test, the load, and how to run it.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub target: Target,
    pub load: Load,
    pub server_cpu: Option<usize>,
    pub client_cpu: Option<usize>,
    pub progress: bool,
    pub quiet_timeout: Duration,
    /// Whether clients join the channel (idle-memory runs only register).
    pub join: bool,
}

/// A chatter server this process started; stopped (SIGTERM, then SIGKILL)
/// when dropped.
pub(crate) struct SpawnedServer {
    child: Child,
    pub(crate) addr: SocketAddr,
}

/// A model's name as `chatter serve --model` takes it and the report shows it.
pub(crate) fn model_name(model: Model) -> String {
    clap::ValueEnum::to_possible_value(&model).map_or_else(String::new, |v| v.get_name().to_string())
}

impl SpawnedServer {
    pub(crate) fn start(
        model: Model,
        workers: Option<usize>,
        cpu: Option<usize>,
        max_clients: usize,
    ) -> io::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut command = match cpu {
            // taskset execs the server, so the child's PID is the server's.
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        command.args(["serve", "--listen", "127.0.0.1:0", "--model", &model_name(model)]);
        if let Some(workers) = workers {
            command.args(["--workers", &workers.to_string()]);
        }
        command
            .args(["--max-clients", &max_clients.to_string()])
            // A benchmark floods on purpose: measure the server, not its limits.
            .arg("--no-flood-control")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| io::Error::other("no stdout"))?;
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first)?;
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| io::Error::other(format!("chatter did not start: {first:?}")))?;
        Ok(SpawnedServer { child, addr })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        stop_pid(self.child.id());
        let _ = self.child.wait();
    }
}

/// SIGTERM, then SIGKILL if the process is still there after 10 s.
pub(crate) fn stop_pid(pid: u32) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let pid = Pid::from_raw(pid as i32);
    if kill(pid, Signal::SIGTERM).is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !is_alive(pid.as_raw() as u32) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = kill(pid, Signal::SIGKILL);
}

/// Whether a process exists and has not exited (a zombie has).
pub(crate) fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Pins this process (the load generator) to one CPU.
pub(crate) fn pin_self(cpu: usize) -> io::Result<()> {
    use nix::sched::{CpuSet, sched_setaffinity};
    let mut set = CpuSet::new();
    set.set(cpu).map_err(io::Error::from)?;
    sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(io::Error::from)
}

/// Connects once before the run, so that a server that is not there fails
/// the run at once with a plain message instead of a table of zeros.
fn probe(addr: SocketAddr) -> io::Result<()> {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map(drop).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot connect to {addr}: {}", connect_error_text(&e)))
    })
}

/// A failed connect in a few words: the kind for the usual cases, the
/// system's message otherwise.
fn connect_error_text(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::TimedOut => "timed out".to_string(),
        _ => e.to_string(),
    }
}

/// Remembers the server's state at the moment every client is in.
/// Readings taken at the start and end of the message flow.
#[derive(Default)]
struct Snapshot {
    pid: Option<u32>,
    connected: Option<Sample>,
    flowed: Option<Sample>,
    generator_at_start: f64,
    generator_at_end: f64,
}

impl Phases for Snapshot {
    fn connected(&mut self) {
        self.connected = self.pid.and_then(|pid| procstat::sample_tree(pid).ok());
        self.generator_at_start = procstat::own_cpu_secs();
    }

    fn flowed(&mut self) {
        self.generator_at_end = procstat::own_cpu_secs();
        self.flowed = self.pid.and_then(|pid| procstat::sample_tree(pid).ok());
    }
}

/// Runs one load and returns what it measured (errors inside the run are
/// recorded in the result; only failing to start at all is an `Err`).
pub fn run(plan: &RunPlan) -> io::Result<RunResult> {
    let clients = plan.load.clients;
    let limit = crate::rlimit::raise_open_files(clients as u64 + 256);
    if (limit as usize) < clients + 64 {
        eprintln!(
            "warning: open-files limit is {limit}; {clients} clients need about {} (raise the hard limit)",
            clients + 64
        );
    }
    if let Some(cpu) = plan.client_cpu {
        pin_self(cpu)?;
    }
    let (spawned, addr, pid, server_name, workers) = match &plan.target {
        Target::Spawn { model, workers } => {
            let server = SpawnedServer::start(*model, *workers, plan.server_cpu, clients + 1000)?;
            let (addr, pid) = (server.addr, server.pid());
            (Some(server), addr, Some(pid), model_name(*model), *workers)
        }
        Target::Running { addr, pid, name } => {
            let addr = addr
                .to_socket_addrs()
                .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {addr}: {e}")))?
                .next()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("bad address {addr}")))?;
            probe(addr)?;
            (None, addr, *pid, name.clone(), None)
        }
    };
    let load = Load {
        // Clients that never join send nothing, whatever was asked.
        senders: if plan.join { plan.load.senders.min(clients) } else { 0 },
        messages: if plan.join { plan.load.messages } else { 0 },
        ..plan.load.clone()
    };
    let spec = RunSpec { server: server_name, workers, load };
    let config = LoadConfig {
        addr,
        load: spec.load.clone(),
        channel: "#bench".into(),
        join: plan.join,
        nick_prefix: "b".into(),
        progress: plan.progress,
        connect_timeout: Duration::from_secs(120),
        quiet_timeout: plan.quiet_timeout,
    };

    let before = pid.and_then(|p| procstat::sample_tree(p).ok());
    let sampler = pid.map(|p| Sampler::start(p, Duration::from_millis(100)));
    let generator_before = procstat::own_cpu_secs();
    let mut snapshot = Snapshot { pid, ..Snapshot::default() };
    let outcome = load::run(&config, &mut snapshot);
    let generator_cpu_secs = procstat::own_cpu_secs() - generator_before;
    let connected_sample = snapshot.connected.take();
    let flowed_sample = snapshot.flowed.take();
    let generator_flow_cpu_secs = (snapshot.generator_at_end - snapshot.generator_at_start).max(0.0);
    let finished = sampler.map(Sampler::stop);
    drop(spawned);

    let outcome = outcome?;
    let totals = combine(&outcome.tallies);
    let server = match (before, finished) {
        (Some(before), Some((last, peak_rss))) => {
            let at_connect = connected_sample.clone().unwrap_or_else(|| last.clone());
            let ticks = procstat::ticks_per_second() as f64;
            let flow_cpu_ticks = match (&connected_sample, &flowed_sample) {
                (Some(a), Some(b)) => b.cpu_ticks.saturating_sub(a.cpu_ticks),
                _ => 0,
            };
            Some(Usage {
                cpu_secs: last.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / ticks,
                flow_cpu_secs: flow_cpu_ticks as f64 / ticks,
                peak_rss_bytes: peak_rss.max(last.rss_bytes),
                connected_rss_bytes: at_connect.rss_bytes,
                processes: at_connect.processes,
                threads: at_connect.threads.max(last.threads),
                context_switches: last.context_switches.saturating_sub(before.context_switches),
                open_fds: at_connect.open_fds,
            })
        }
        _ => None,
    };
    let delivered = totals.delivered;
    Ok(RunResult {
        spec: Some(spec),
        connected: outcome.connected,
        connect_secs: outcome.connect_secs,
        join_secs: outcome.join_secs,
        offered: totals.offered,
        delivered,
        lost: totals.lost,
        duplicated: totals.duplicated,
        // A run that stopped short is not judged on the part it finished.
        order_consistent: totals.order_consistent && outcome.error.is_none(),
        order_unchecked: !totals.order_checked || outcome.error.is_some(),
        disconnected: totals.disconnected,
        disconnect_reasons: totals.disconnect_reasons,
        flow_secs: outcome.flow_secs,
        deliveries_per_sec: if outcome.flow_secs > 0.0 { delivered as f64 / outcome.flow_secs } else { 0.0 },
        latency: latency_summary(&outcome.latency),
        server,
        generator_cpu_secs,
        generator_flow_cpu_secs,
        error: outcome.error,
    })
}

/// "12 clients: 10 × ERROR :Closing Link: ... (SendQ exceeded); 2 ×
/// connection reset", and how many gave reasons not listed.
pub(crate) fn disconnects_text(result: &RunResult) -> String {
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
    fn nothing_listening_fails_with_a_plain_message() {
        // A port that was free a moment ago: bound, noted, released.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let err = probe(addr).unwrap_err();
        assert_eq!(err.to_string(), format!("cannot connect to {addr}: connection refused"));
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
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

//! One benchmark run from start to end: start the server (or take a
//! running one), pin processes to cores, run the load, sample the server's
//! resources around it, and fold everything into a `RunResult`.

use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::accounting::{combine, latency_summary};
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_listening_fails_with_a_plain_message() {
        // A port that was free a moment ago: bound, noted, released.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let err = probe(addr).unwrap_err();
        assert_eq!(err.to_string(), format!("cannot connect to {addr}: connection refused"));
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }
}

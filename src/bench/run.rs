//! One benchmark run from start to end: start the server (one, or a
//! network of nodes and its NATS: `spawn`) or take running ones, pin
//! processes to cores, run the load with the clients spread over the
//! servers' addresses, sample every server process's resources around it,
//! and fold everything into a `RunResult`, per node as well as in total.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use crate::bench::accounting::{Totals, combine, latency_summary};
use crate::bench::load::{self, LoadConfig, Phases};
use crate::bench::procstat::{self, Readings, Sample, Sampler};
use crate::bench::results::{
    ClusterSpec, DisconnectReason, HandshakeResult, Load, NodeResult, ProcessUsage, RunResult, RunSpec, Usage,
};
use crate::bench::spawn::cluster::{ClusterPlan, SpawnedCluster};
use crate::bench::spawn::{SpawnedServer, model_name};
use crate::bench::tls::{ClientTls, PairDir, TlsPlan, Trust, host_of};
use crate::server::Model;

/// Where the server under test comes from.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start `chatter serve --model MODEL` on an ephemeral port.
    Spawn { model: Model, workers: Option<usize> },
    /// Start a network: a nats-server with JetStream, `nodes` chatter nodes
    /// the clients are spread over and `spare_nodes` more without clients.
    Cluster {
        model: Model,
        workers: Option<usize>,
        nodes: usize,
        spare_nodes: usize,
        /// The nats-server to run, if not the one on PATH or in /usr/sbin.
        nats_server: Option<PathBuf>,
    },
    /// Servers someone else started: the clients are spread over `addrs`
    /// round-robin. `pids[i]` is the process of `addrs[i]`; PIDs beyond the
    /// addresses are other processes of the service (a nats-server), whose
    /// use is counted in and shown apart.
    Running { addrs: Vec<String>, pids: Vec<u32>, name: String },
}

/// One run: the server under test, the load, and how to run it.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub target: Target,
    pub load: Load,
    /// CPU every process the bench starts is pinned to.
    pub server_cpu: Option<usize>,
    pub client_cpu: Option<usize>,
    pub progress: bool,
    pub quiet_timeout: Duration,
    /// Whether clients join the channel (idle-memory runs only register).
    pub join: bool,
    /// Connect with TLS, trusting what this says; `None`: plaintext.
    pub tls: Option<TlsPlan>,
}

/// What the bench started, kept until the run is over: dropping it stops
/// everything by PID.
enum Started {
    Nothing,
    // Held for their `Drop` only.
    Server(#[allow(dead_code)] SpawnedServer),
    Cluster(#[allow(dead_code)] SpawnedCluster),
}

/// A node of the run: where its clients go (`None`: a node no client is
/// sent to) and which process it is.
struct Node {
    name: String,
    addr: Option<SocketAddr>,
    pid: Option<u32>,
}

/// Everything a run measures, and whether it reports per node.
struct Servers {
    started: Started,
    nodes: Vec<Node>,
    /// Processes measured beside the nodes, with their names.
    others: Vec<(String, u32)>,
    /// Show the nodes apart: a network, several addresses or several PIDs.
    per_node: bool,
    /// Per address in `addrs()` order, the TLS client side for it; empty
    /// in plaintext.
    tls: Vec<ClientTls>,
}

impl Servers {
    /// Where the clients connect, in order: client `i` goes to `addrs[i % n]`.
    fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().filter_map(|n| n.addr).collect()
    }

    /// Every PID measured: the nodes' then the others'.
    fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(|n| n.pid).chain(self.others.iter().map(|o| o.1)).collect()
    }
}

fn resolve(addr: &str) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {addr}: {e}")))?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("bad address {addr}")))
}

/// Starts what the plan says (or finds what is running), and names the
/// run's server.
fn servers(plan: &RunPlan, max_clients: usize) -> io::Result<(Servers, RunSpec)> {
    let spec = |server: String, workers, cluster| RunSpec {
        server,
        workers,
        cluster,
        tls: None,
        load: plan.load.clone(),
    };
    let (servers, mut spec) = match &plan.target {
        Target::Spawn { model, workers } => {
            let (server, tls) = match &plan.tls {
                None => {
                    (SpawnedServer::start(*model, *workers, plan.server_cpu, max_clients, &[])?, Vec::new())
                }
                Some(TlsPlan::Spawned) => {
                    let pair = PairDir::make()?;
                    let tls = ClientTls::new(&pair.trust(), "127.0.0.1")?;
                    let server =
                        SpawnedServer::start_tls(*model, *workers, plan.server_cpu, max_clients, pair)?;
                    (server, vec![tls])
                }
                Some(_) => {
                    return Err(invalid(
                        "--tls-ca and --tls-insecure are for --target; a spawned server's certificate is the bench's own",
                    ));
                }
            };
            let node = Node { name: model_name(*model), addr: Some(server.addr), pid: Some(server.pid()) };
            let servers = Servers {
                started: Started::Server(server),
                nodes: vec![node],
                others: Vec::new(),
                per_node: false,
                tls,
            };
            (servers, spec(model_name(*model), *workers, None))
        }
        Target::Cluster { model, workers, nodes, spare_nodes, nats_server } => {
            if plan.tls.is_some() {
                return Err(invalid(
                    "--tls with --nodes is not supported: a spawned network serves plaintext only",
                ));
            }
            let cluster = SpawnedCluster::start(&ClusterPlan {
                model: *model,
                workers: *workers,
                nodes: *nodes,
                spare_nodes: *spare_nodes,
                cpu: plan.server_cpu,
                max_clients,
                nats_server: nats_server.as_deref(),
            })?;
            let list = cluster
                .nodes()
                .into_iter()
                .enumerate()
                .map(|(i, (name, addr, pid))| Node {
                    name,
                    addr: (i < *nodes).then_some(addr),
                    pid: Some(pid),
                })
                .collect();
            let others = vec![("nats-server".to_string(), cluster.nats_pid())];
            let shape = ClusterSpec { nodes: *nodes, spare_nodes: *spare_nodes };
            let servers = Servers {
                started: Started::Cluster(cluster),
                nodes: list,
                others,
                per_node: true,
                tls: Vec::new(),
            };
            (servers, spec(model_name(*model), *workers, Some(shape)))
        }
        Target::Running { addrs, pids, name } => {
            let mut nodes = Vec::with_capacity(addrs.len());
            for (i, addr) in addrs.iter().enumerate() {
                let resolved = resolve(addr)?;
                probe(resolved)?;
                nodes.push(Node { name: addr.clone(), addr: Some(resolved), pid: pids.get(i).copied() });
            }
            let others = pids.iter().skip(addrs.len()).map(|&pid| (format!("pid {pid}"), pid)).collect();
            let per_node = addrs.len() > 1 || pids.len() > 1;
            let trust = match &plan.tls {
                None => None,
                Some(TlsPlan::Spawned) => {
                    return Err(invalid(
                        "--tls against --target needs --tls-ca FILE (the CA or certificate to trust) or --tls-insecure",
                    ));
                }
                Some(TlsPlan::CaFile(path)) => Some(Trust::Certificates {
                    pem: std::fs::read(path)
                        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?,
                    what: format!("the certificates in {}", path.display()),
                }),
                Some(TlsPlan::Insecure) => Some(Trust::Insecure),
            };
            let tls = match &trust {
                None => Vec::new(),
                Some(trust) => {
                    addrs.iter().map(|a| ClientTls::new(trust, host_of(a))).collect::<io::Result<_>>()?
                }
            };
            (
                Servers { started: Started::Nothing, nodes, others, per_node, tls },
                spec(name.clone(), None, None),
            )
        }
    };
    spec.tls = servers.tls.first().map(ClientTls::spec);
    Ok((servers, spec))
}

fn invalid(text: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, text.to_string())
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

/// Remembers the servers' state at the moment every client is in, and
/// again when the last delivery arrived: readings taken at the start and
/// end of the message flow.
#[derive(Default)]
struct Snapshot {
    pids: Vec<u32>,
    connected: Vec<Option<Sample>>,
    flowed: Vec<Option<Sample>>,
    generator_at_start: f64,
    generator_at_end: f64,
    machine_at_start: Option<u64>,
    machine_at_end: Option<u64>,
}

fn sample_each(pids: &[u32]) -> Vec<Option<Sample>> {
    pids.iter().map(|&pid| procstat::sample_tree(pid).ok()).collect()
}

impl Phases for Snapshot {
    fn connected(&mut self) {
        self.connected = sample_each(&self.pids);
        self.machine_at_start = procstat::machine_busy_ticks();
        self.generator_at_start = procstat::own_cpu_secs();
    }

    fn flowed(&mut self) {
        self.generator_at_end = procstat::own_cpu_secs();
        self.machine_at_end = procstat::machine_busy_ticks();
        self.flowed = sample_each(&self.pids);
    }
}

/// One process tree's use over the run, from its readings: before the run,
/// with every client in, at the end of the flow, and the sampler's last
/// reading and peak RSS. `None` if it could not be read before the run.
fn usage(
    before: Option<&Sample>,
    connected: Option<&Sample>,
    flowed: Option<&Sample>,
    last: &Sample,
    peak_rss: u64,
) -> Option<Usage> {
    let before = before?;
    let at_connect = connected.unwrap_or(last);
    let ticks = procstat::ticks_per_second() as f64;
    let flow_cpu_ticks = match (connected, flowed) {
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

/// Several trees' use as one: sums, with the largest RSS their sum reached
/// at one moment. `None` when none was measured.
fn total(usages: &[Option<Usage>], total_peak_rss: u64) -> Option<Usage> {
    let measured: Vec<&Usage> = usages.iter().flatten().collect();
    if measured.is_empty() {
        return None;
    }
    let sum = |f: fn(&Usage) -> f64| measured.iter().map(|u| f(u)).sum::<f64>();
    let count = |f: fn(&Usage) -> u64| measured.iter().map(|u| f(u)).sum::<u64>();
    let last_rss = measured.iter().map(|u| u.connected_rss_bytes).sum::<u64>();
    Some(Usage {
        cpu_secs: sum(|u| u.cpu_secs),
        flow_cpu_secs: sum(|u| u.flow_cpu_secs),
        peak_rss_bytes: if measured.len() == 1 {
            measured[0].peak_rss_bytes
        } else {
            total_peak_rss.max(last_rss)
        },
        connected_rss_bytes: last_rss,
        processes: count(|u| u.processes as u64) as usize,
        threads: count(|u| u.threads as u64) as usize,
        context_switches: count(|u| u.context_switches),
        open_fds: count(|u| u.open_fds as u64) as usize,
    })
}

/// What every measurement does before its clients start: open files for
/// `connections` sockets at once, the generator pinned where the plan
/// says, and the servers started (or named).
fn generator_side(plan: &RunPlan, connections: usize, what: &str) -> io::Result<(Servers, RunSpec)> {
    let limit = crate::rlimit::raise_open_files(connections as u64 + 256);
    if (limit as usize) < connections + 64 {
        eprintln!(
            "warning: open-files limit is {limit}; {what} need about {} (raise the hard limit)",
            connections + 64
        );
    }
    if let Some(cpu) = plan.client_cpu {
        pin_self(cpu)?;
    }
    servers(plan, connections + 1000)
}

/// Runs one load and returns what it measured (errors inside the run are
/// recorded in the result; only failing to start at all is an `Err`).
pub fn run(plan: &RunPlan) -> io::Result<RunResult> {
    let clients = plan.load.clients;
    let (servers, mut spec) = generator_side(plan, clients, &format!("{clients} clients"))?;
    spec.load = Load {
        // Clients that never join send nothing, whatever was asked.
        senders: if plan.join { plan.load.senders.min(clients) } else { 0 },
        messages: if plan.join { plan.load.messages } else { 0 },
        ..plan.load.clone()
    };
    let addrs = servers.addrs();
    let config = LoadConfig {
        addrs: addrs.clone(),
        tls: servers.tls.clone(),
        load: spec.load.clone(),
        channel: "#bench".into(),
        join: plan.join,
        nick_prefix: "b".into(),
        progress: plan.progress,
        connect_timeout: Duration::from_secs(120),
        quiet_timeout: plan.quiet_timeout,
    };

    let pids = servers.pids();
    let before = sample_each(&pids);
    let sampler = (!pids.is_empty()).then(|| Sampler::start(pids.clone(), Duration::from_millis(100)));
    let generator_before = procstat::own_cpu_secs();
    let mut snapshot = Snapshot { pids: pids.clone(), ..Snapshot::default() };
    let outcome = load::run(&config, &mut snapshot);
    let generator_cpu_secs = procstat::own_cpu_secs() - generator_before;
    let generator_flow_cpu_secs = (snapshot.generator_at_end - snapshot.generator_at_start).max(0.0);
    let readings = sampler.map(Sampler::stop).unwrap_or_default();
    let Servers { started, nodes, others, per_node, .. } = servers;
    drop(started);

    let outcome = outcome?;
    let totals = combine(&outcome.tallies);
    let usages: Vec<Option<Usage>> = (0..pids.len())
        .map(|i| {
            fn at(samples: &[Option<Sample>], i: usize) -> Option<&Sample> {
                samples.get(i).and_then(Option::as_ref)
            }
            let Readings { latest, peak_rss, .. } = &readings;
            let last = latest.get(i)?;
            usage(at(&before, i), at(&snapshot.connected, i), at(&snapshot.flowed, i), last, peak_rss[i])
        })
        .collect();
    let server = total(&usages, readings.total_peak_rss);
    // Per node: its clients' totals, and its PID's use, in the order of
    // `Servers::pids` (the nodes with a PID first, then the others).
    let mut usage_of = usages.into_iter();
    let node_results: Vec<NodeResult> = nodes
        .iter()
        .map(|node| {
            let index = node.addr.and_then(|a| addrs.iter().position(|&x| x == a));
            let node_usage = if node.pid.is_some() { usage_of.next().flatten() } else { None };
            node_result(node, index, &totals, &spec.load, addrs.len(), node_usage)
        })
        .collect();
    let other_processes: Vec<ProcessUsage> = others
        .iter()
        .zip(usage_of)
        .filter_map(|((name, _), usage)| usage.map(|usage| ProcessUsage { name: name.clone(), usage }))
        .collect();
    let others_flow_cpu_secs = match (&server, snapshot.machine_at_start, snapshot.machine_at_end) {
        (Some(server), Some(start), Some(end)) => {
            let machine = end.saturating_sub(start) as f64 / procstat::ticks_per_second() as f64;
            Some((machine - server.flow_cpu_secs - generator_flow_cpu_secs).max(0.0))
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
        order_violations: Some(totals.order_violations),
        order_unverified: Some(totals.order_unverified),
        disconnected: totals.disconnected,
        disconnect_reasons: totals.disconnect_reasons.clone(),
        flow_secs: outcome.flow_secs,
        deliveries_per_sec: if outcome.flow_secs > 0.0 { delivered as f64 / outcome.flow_secs } else { 0.0 },
        latency: latency_summary(&outcome.latency),
        server,
        nodes: if per_node { node_results } else { Vec::new() },
        other_processes,
        others_flow_cpu_secs,
        generator_cpu_secs,
        generator_flow_cpu_secs,
        error: outcome.error,
        tls_session: outcome.tls_session,
    })
}

/// Measures how fast new clients get in (see [`load::handshakes`]):
/// `plan.load.clients` of them, at most `plan.load.connect_concurrency`
/// unfinished at once, against the plan's server, with the server's and
/// the generator's CPU over the measurement. Only failing to start at all
/// is an `Err`; every client that fails is counted in the result.
pub fn handshakes(plan: &RunPlan) -> io::Result<HandshakeResult> {
    let count = plan.load.clients;
    let in_flight = plan.load.connect_concurrency.max(1);
    let (servers, spec) = generator_side(plan, in_flight, &format!("{in_flight} connections at once"))?;
    let config = load::HandshakeConfig {
        addrs: servers.addrs(),
        tls: servers.tls.clone(),
        proto: plan.load.proto,
        count,
        in_flight,
        nick_prefix: "h".into(),
        progress: plan.progress,
        timeout: Duration::from_secs(60),
    };
    let pids = servers.pids();
    let cpu_ticks = || -> Option<u64> {
        pids.iter().map(|&pid| procstat::sample_tree(pid).ok().map(|s| s.cpu_ticks)).sum()
    };
    let server_before = cpu_ticks();
    let machine_before = procstat::machine_busy_ticks();
    let generator_before = procstat::own_cpu_secs();
    let outcome = load::handshakes(&config);
    let generator_cpu_secs = procstat::own_cpu_secs() - generator_before;
    let machine_after = procstat::machine_busy_ticks();
    let server_after = cpu_ticks();
    drop(servers);
    let outcome = outcome?;
    let ticks = procstat::ticks_per_second() as f64;
    let server_cpu_secs = match (server_before, server_after) {
        (Some(a), Some(b)) if !pids.is_empty() => Some(b.saturating_sub(a) as f64 / ticks),
        _ => None,
    };
    let others_cpu_secs = match (server_cpu_secs, machine_before, machine_after) {
        (Some(server), Some(a), Some(b)) => {
            Some((b.saturating_sub(a) as f64 / ticks - server - generator_cpu_secs).max(0.0))
        }
        _ => None,
    };
    let failures: Vec<DisconnectReason> =
        outcome.failures.into_iter().map(|(reason, clients)| DisconnectReason { reason, clients }).collect();
    let failed: usize = failures.iter().map(|f| f.clients).sum();
    let error = (outcome.completed + failed < count)
        .then(|| format!("{} clients neither completed nor failed", count - outcome.completed - failed));
    Ok(HandshakeResult {
        server: spec.server,
        workers: spec.workers,
        tls: spec.tls,
        attempted: count,
        in_flight,
        peak_in_flight: outcome.peak_in_flight,
        completed: outcome.completed,
        failures,
        secs: outcome.secs,
        per_sec: if outcome.secs > 0.0 { outcome.completed as f64 / outcome.secs } else { 0.0 },
        latency: latency_summary(&outcome.latency),
        tls_latency: outcome.tls_latency.as_ref().map(latency_summary),
        tls_session: outcome.tls_session,
        server_cpu_secs,
        generator_cpu_secs,
        others_cpu_secs,
        error,
    })
}

/// One node's part of the run: the totals of the clients that went to
/// address `index` (none for a node without an address), and its use.
fn node_result(
    node: &Node,
    index: Option<usize>,
    totals: &Totals,
    load: &Load,
    addresses: usize,
    usage: Option<Usage>,
) -> NodeResult {
    let of = index.and_then(|i| totals.nodes.get(i)).cloned().unwrap_or_default();
    // Client i goes to address i % addresses, and clients 0..senders send.
    let senders =
        index.map_or(0, |i| (0..load.senders.min(load.clients)).filter(|c| c % addresses == i).count());
    let clients = index.map_or(0, |i| (0..load.clients).filter(|c| c % addresses == i).count());
    NodeResult {
        name: node.name.clone(),
        addr: node.addr.map_or_else(String::new, |a| a.to_string()),
        clients,
        senders,
        delivered: of.delivered,
        lost: of.lost,
        disconnected: of.disconnected,
        order_violations: of.order_violations,
        order_unverified: of.order_unverified,
        server: usage,
    }
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

    fn tiny_load(clients: usize) -> Load {
        Load {
            proto: crate::bench::results::Proto::Irc,
            clients,
            senders: 2,
            messages: 20,
            rate: 0.0,
            window: None,
            connect_concurrency: 4,
        }
    }

    fn against(addr: SocketAddr, tls: TlsPlan, clients: usize) -> RunPlan {
        RunPlan {
            target: Target::Running { addrs: vec![addr.to_string()], pids: Vec::new(), name: "tls".into() },
            load: tiny_load(clients),
            server_cpu: None,
            client_cpu: None,
            progress: false,
            quiet_timeout: Duration::from_secs(10),
            join: true,
            tls: Some(tls),
        }
    }

    /// A running TLS server, trusted through a CA file: every delivery
    /// arrives; trusted through another certificate, no client gets in
    /// and the run says why; unverified, they get in and the result says
    /// the certificate was not verified. Needs the chatter binary.
    #[test]
    fn a_running_tls_server_is_trusted_as_told() {
        if crate::bench::spawn::chatter_exe().is_err() {
            eprintln!("skipped: no chatter binary beside the tests (cargo build first)");
            return;
        }
        let pair = PairDir::make().unwrap();
        let cert = pair.cert.clone();
        let other = PairDir::make().unwrap();
        let server = SpawnedServer::start_tls(Model::Prethread, Some(1), None, 100, pair).unwrap();

        let result = run(&against(server.addr, TlsPlan::CaFile(cert.clone()), 4)).unwrap();
        assert!(crate::bench::summary::problems(&result).is_empty(), "{result:?}");
        assert_eq!(result.delivered, 2 * 20 * 3);
        let tls = result.spec.as_ref().and_then(|s| s.tls.clone()).unwrap();
        assert!(tls.verified);
        assert_eq!(tls.trust, format!("the certificates in {}", cert.display()));
        assert!(result.tls_session.as_deref().is_some_and(|s| s.starts_with("TLSv1_3")), "{result:?}");

        let refused = run(&against(server.addr, TlsPlan::CaFile(other.cert.clone()), 2)).unwrap();
        assert_eq!(refused.connected, 0);
        let error = refused.error.unwrap_or_default();
        assert!(error.contains("invalid peer certificate"), "{error}");

        let unverified = run(&against(server.addr, TlsPlan::Insecure, 3)).unwrap();
        assert!(crate::bench::summary::problems(&unverified).is_empty(), "{unverified:?}");
        assert_eq!(unverified.spec.as_ref().and_then(|s| s.tls.as_ref()).map(|t| t.verified), Some(false));
        assert!(crate::bench::results::label(unverified.spec.as_ref().unwrap()).ends_with("(not verified)"));

        // A spawned server's certificate is the bench's own; a --target needs to be told.
        let mut spawn_with_ca = against(server.addr, TlsPlan::Insecure, 2);
        spawn_with_ca.target = Target::Spawn { model: Model::Iterative, workers: None };
        assert_eq!(run(&spawn_with_ca).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let untold = against(server.addr, TlsPlan::Spawned, 2);
        assert!(run(&untold).unwrap_err().to_string().contains("--tls-ca"));
    }

    /// Every model serves a tiny flood and a burst of new clients over TLS
    /// when the bench starts it, trusting the certificate it made.
    #[test]
    fn every_model_is_measured_over_tls_when_spawned() {
        if crate::bench::spawn::chatter_exe().is_err() {
            eprintln!("skipped: no chatter binary beside the tests (cargo build first)");
            return;
        }
        for model in [Model::Iterative, Model::Prethread, Model::Prefork] {
            let workers = (model != Model::Iterative).then_some(2);
            let plan = RunPlan {
                target: Target::Spawn { model, workers },
                load: tiny_load(5),
                server_cpu: None,
                client_cpu: None,
                progress: false,
                quiet_timeout: Duration::from_secs(10),
                join: true,
                tls: Some(TlsPlan::Spawned),
            };
            let result = run(&plan).unwrap();
            assert!(crate::bench::summary::problems(&result).is_empty(), "{model:?}: {result:?}");
            assert_eq!(result.delivered, 2 * 20 * 4, "{model:?}");
            assert!(result.spec.as_ref().and_then(|s| s.tls.as_ref()).is_some_and(|t| t.verified));
            let burst = handshakes(&RunPlan {
                load: Load { clients: 30, connect_concurrency: 8, ..tiny_load(0) },
                ..plan
            });
            let burst = burst.unwrap();
            assert!(crate::bench::summary::handshake_problems(&burst).is_empty(), "{model:?}: {burst:?}");
            assert_eq!((burst.completed, burst.failed()), (30, 0));
            assert!(burst.peak_in_flight <= 8 && burst.per_sec > 0.0, "{burst:?}");
            assert!(burst.tls_latency.is_some_and(|l| l.count == 30), "{model:?}");
        }
    }

    /// A network of two nodes with clients and one without, started and
    /// measured: every client gets everything in the network's order,
    /// and the result says who was where and what each process used.
    /// Needs nats-server and the chatter binary (see `spawn::chatter_exe`).
    #[test]
    fn a_spawned_network_is_measured_per_node_in_one_order() {
        if !crate::bench::spawn::nats::available_for_tests() {
            return;
        }
        if crate::bench::spawn::chatter_exe().is_err() {
            eprintln!("skipped: no chatter binary beside the tests (cargo build first)");
            return;
        }
        let plan = RunPlan {
            target: Target::Cluster {
                model: Model::Prethread,
                workers: Some(1),
                nodes: 2,
                spare_nodes: 1,
                nats_server: None,
            },
            load: Load {
                proto: crate::bench::results::Proto::Irc,
                clients: 7,
                senders: 3,
                messages: 30,
                rate: 0.0,
                window: None,
                connect_concurrency: 7,
            },
            server_cpu: None,
            client_cpu: None,
            progress: false,
            quiet_timeout: Duration::from_secs(20),
            join: true,
            tls: None,
        };
        let result = run(&plan).unwrap();
        assert!(crate::bench::summary::problems(&result).is_empty(), "{result:?}");
        assert_eq!(
            (result.delivered, result.order_violations, result.order_unverified),
            (3 * 30 * 6, Some(0), Some(0))
        );
        let spec = result.spec.as_ref().unwrap();
        assert_eq!(spec.cluster, Some(ClusterSpec { nodes: 2, spare_nodes: 1 }));
        let shape: Vec<(&str, usize, usize, bool)> =
            result.nodes.iter().map(|n| (n.name.as_str(), n.clients, n.senders, n.addr.is_empty())).collect();
        assert_eq!(shape, [("n1", 4, 2, false), ("n2", 3, 1, false), ("n3", 0, 0, true)]);
        assert!(result.nodes.iter().all(|n| n.server.is_some()), "{:?}", result.nodes);
        let names: Vec<&str> = result.other_processes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["nats-server"]);
        // The total counts every process: three nodes and nats-server.
        assert_eq!(result.server.as_ref().map(|u| u.processes), Some(4));
    }
}

//! Runs and sweeps for the report's tests: a small sweep with two servers,
//! paced and unpaced loads, an errored run and idle-memory figures, shared
//! by the tests of the page, its tables and its plots.

use crate::bench::results::{
    IdleMemory, Latency, Load, Machine, PeerNote, Proto, RunResult, RunSpec, Sweep, Usage,
};

pub fn spec(server: &str, workers: Option<usize>, clients: usize, rate: f64) -> RunSpec {
    RunSpec {
        server: server.to_string(),
        workers,
        cluster: None,
        tls: None,
        load: Load {
            proto: Proto::Irc,
            clients,
            senders: 10,
            messages: 1000,
            rate,
            window: None,
            connect_concurrency: 64,
        },
    }
}

pub fn run(spec: RunSpec, deliveries_per_sec: f64, p99_us: u64) -> RunResult {
    let clients = spec.load.clients;
    RunResult {
        spec: Some(spec),
        connected: clients,
        connect_secs: 0.5,
        join_secs: 0.25,
        offered: 10_000 * clients as u64,
        delivered: 10_000 * clients as u64,
        lost: 0,
        duplicated: 0,
        order_consistent: true,
        order_unchecked: false,
        order_violations: None,
        order_unverified: None,
        disconnected: 0,
        disconnect_reasons: Vec::new(),
        flow_secs: 2.0,
        deliveries_per_sec,
        latency: Latency {
            count: 1000,
            p50_us: 250,
            p90_us: 800,
            p99_us,
            p999_us: p99_us * 2,
            max_us: p99_us * 4,
            mean_us: 300.5,
        },
        server: Some(Usage {
            cpu_secs: 1.25,
            flow_cpu_secs: 1.0,
            peak_rss_bytes: 8 * 1024 * 1024 * clients as u64 / 10,
            connected_rss_bytes: 4 * 1024 * 1024,
            processes: 1,
            threads: 2,
            context_switches: 123_456,
            open_fds: clients + 4,
        }),
        nodes: Vec::new(),
        other_processes: Vec::new(),
        others_flow_cpu_secs: None,
        generator_cpu_secs: 0.75,
        generator_flow_cpu_secs: 0.5,
        error: None,
        tls_session: None,
    }
}

/// Clients that registered and stayed silent, as a sweep's idle run.
pub fn idle_run(server: &str, workers: Option<usize>, clients: usize) -> RunResult {
    let mut spec = spec(server, workers, clients, 0.0);
    (spec.load.senders, spec.load.messages) = (0, 0);
    let mut idle = run(spec, 0.0, 0);
    (idle.offered, idle.delivered, idle.flow_secs, idle.latency) = (0, 0, 0.0, Latency::default());
    idle
}

pub fn sweep() -> Sweep {
    let mut errored = run(spec("iterative", None, 1000, 0.0), 12.5, 9_000_000);
    errored.connected = 517;
    errored.error = Some("connect: Connection refused | after 517".to_string());
    errored.order_consistent = false;
    Sweep {
        command: "chatter bench sweep --out docs --quick".to_string(),
        generated: "2025-01-02 03:04:05 UTC".to_string(),
        commit: "0123abcd (with uncommitted changes)".to_string(),
        machine: Machine {
            cores: 8,
            memory_bytes: 16 * 1024 * 1024 * 1024,
            kernel: "6.8.0-test".to_string(),
            cpu_model: "Test CPU @ 3.00GHz".to_string(),
        },
        pinning: "server on CPU 0, load generator on CPU 1 (taskset)".to_string(),
        runs: vec![
            run(spec("iterative", None, 10, 0.0), 1_234_567.0, 1500),
            run(spec("iterative", None, 100, 0.0), 234_567.0, 25_000),
            run(spec("prethread", Some(4), 10, 0.0), 2_345_678.0, 900),
            run(spec("prethread", Some(4), 100, 0.0), 3_456_789.0, 1200),
            run(spec("iterative", None, 10, 1000.0), 10_000.0, 700),
            run(spec("iterative", None, 100, 1000.0), 100_000.0, 4000),
            run(spec("prethread", Some(4), 10, 1000.0), 10_000.0, 300),
            run(spec("prethread", Some(4), 100, 1000.0), 100_000.0, 450),
            errored,
            idle_run("prethread", Some(4), 2000),
        ],
        idle: vec![
            IdleMemory {
                server: "iterative".to_string(),
                clients: 1000,
                rss_empty_bytes: 2 * 1024 * 1024,
                rss_loaded_bytes: 2 * 1024 * 1024 + 1000 * 3 * 1024,
            },
            IdleMemory {
                server: "prethread/4".to_string(),
                clients: 2000,
                rss_empty_bytes: 3_000_000,
                rss_loaded_bytes: 3_000_000 + 2000 * 10_752,
            },
        ],
        peers: vec![PeerNote {
            name: "ngircd".to_string(),
            command: "ngircd -n -f bench/ngircd.conf".to_string(),
            configuration: "MaxConnections = 0, no flood protection.".to_string(),
        }],
        notes: "Prethread scales; **iterative** does not.\n\n- one\n- two".to_string(),
    }
}

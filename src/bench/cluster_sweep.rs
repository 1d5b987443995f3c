//! `chatter bench cluster`: the single-node sweep's loads against networks
//! of chatter nodes, and the section of `PERFORMANCE.md` they feed. Every
//! load runs against the model alone (no NATS), then one, two, three ...
//! nodes joined through a nats-server, each on a freshly started network,
//! several times; and, for the cost model, the flood against one node with
//! every client plus one spare node with none, whose CPU is what a node
//! pays for the network's events alone. Results go to
//! `bench/cluster.json`, from which `report` writes the section.
//!
//! Why it is shaped so: the loads are the single-node sweep's own
//! ([`super::sweep::loads`]), so the figures compare with its tables. The
//! repetitions are interleaved (every configuration once, then every one
//! again) so that a disturbance on a shared machine spreads over the
//! configurations instead of falling on one; the report gives medians and
//! ranges, and each run records how much CPU the rest of the machine used
//! meanwhile.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bench::procstat;
use crate::bench::results::{self, PeerNote, RunResult, RunSpec, Sweep};
use crate::bench::run::{self, RunPlan, Target};
use crate::bench::spawn::model_name;
use crate::bench::sweep::{
    self, CLUSTER_RESULTS, generated_at, loads, measured_commit, one_line, sweep_load,
};
use crate::server::Model;

/// What to measure.
#[derive(Debug, Clone)]
pub struct ClusterSweepPlan {
    pub model: Model,
    pub workers: usize,
    /// Network sizes; 0 is the model alone, without NATS.
    pub nodes: Vec<usize>,
    pub clients: Vec<usize>,
    pub repeats: usize,
    /// Also run the flood against one node and one spare node (the cost model's runs).
    pub spare_runs: bool,
    pub connect_concurrency: usize,
    pub server_cpu: Option<usize>,
    pub client_cpu: Option<usize>,
    pub nats_server: Option<PathBuf>,
    pub out: PathBuf,
    pub notes: Option<PathBuf>,
    pub command: String,
}

/// One configuration of the servers: the model alone, or a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// 0: alone, without NATS.
    pub nodes: usize,
    pub spare_nodes: usize,
}

/// Every run of the matrix, in the order they are made: repetition, then
/// client count, then load, then shape, with the spare-node shape after
/// the others under the flood (the first load) only.
pub(crate) fn matrix(plan: &ClusterSweepPlan) -> Vec<(usize, (usize, usize, f64), Shape)> {
    let mut runs = Vec::new();
    for _ in 0..plan.repeats.max(1) {
        for &clients in &plan.clients {
            for (i, load) in loads(clients).into_iter().enumerate() {
                for &nodes in &plan.nodes {
                    runs.push((clients, load, Shape { nodes, spare_nodes: 0 }));
                }
                if plan.spare_runs && i == 0 {
                    runs.push((clients, load, Shape { nodes: 1, spare_nodes: 1 }));
                }
            }
        }
    }
    runs
}

fn run_one(plan: &ClusterSweepPlan, clients: usize, load: (usize, usize, f64), shape: Shape) -> RunResult {
    let load = sweep_load(clients, load, plan.connect_concurrency);
    let workers = (plan.model != Model::Iterative).then_some(plan.workers);
    let target = match shape.nodes {
        0 => Target::Spawn { model: plan.model, workers },
        nodes => Target::Cluster {
            model: plan.model,
            workers,
            nodes,
            spare_nodes: shape.spare_nodes,
            nats_server: plan.nats_server.clone(),
        },
    };
    let run_plan = RunPlan {
        target,
        load: load.clone(),
        server_cpu: plan.server_cpu,
        client_cpu: plan.client_cpu,
        progress: false,
        // The NATS hop adds its round trips; the wait is for a stall, not for them.
        quiet_timeout: Duration::from_secs(20),
        join: true,
        tls: None,
    };
    run::run(&run_plan).unwrap_or_else(|e| {
        let cluster = (shape.nodes > 0)
            .then_some(results::ClusterSpec { nodes: shape.nodes, spare_nodes: shape.spare_nodes });
        let spec = RunSpec { server: model_name(plan.model), workers, cluster, tls: None, load };
        RunResult { spec: Some(spec), error: Some(e.to_string()), ..RunResult::default() }
    })
}

/// Runs the matrix, writes `bench/cluster.json` and rewrites
/// `PERFORMANCE.md` (from `bench/results.json` and the new file).
pub fn cluster_sweep(plan: &ClusterSweepPlan) -> io::Result<Sweep> {
    // Read before any run pins this process to one CPU.
    let machine = procstat::machine();
    let commit = measured_commit();
    let matrix = matrix(plan);
    let mut runs = Vec::with_capacity(matrix.len());
    for (done, &(clients, load, shape)) in matrix.iter().enumerate() {
        let result = run_one(plan, clients, load, shape);
        let label = result.spec.as_ref().map_or_else(String::new, results::label);
        eprintln!("[{}/{}] {}", done + 1, matrix.len(), one_line(&label, &result));
        runs.push(result);
    }
    let notes = sweep::read_notes(plan.notes.as_deref());
    let pinning = match (plan.server_cpu, plan.client_cpu) {
        (Some(s), Some(c)) => format!(
            "every server process (each node, and nats-server) on CPU {s}, load generator on CPU {c} \
             (taskset / sched_setaffinity)"
        ),
        _ => "not pinned".to_string(),
    };
    let nats = PeerNote {
        name: "nats-server".into(),
        command: "nats-server -js --addr 127.0.0.1 --port {port} --server_name bench --store_dir {temporary directory}"
            .into(),
        configuration: nats_version(plan.nats_server.as_deref()),
    };
    let cluster = Sweep {
        command: plan.command.clone(),
        generated: generated_at(),
        commit,
        machine,
        pinning,
        runs,
        idle: Vec::new(),
        peers: vec![nats],
        notes,
    };
    write(&cluster, &plan.out)?;
    Ok(cluster)
}

/// Rewrites the report from `bench/cluster.json` with the notes file as it
/// is now, measuring nothing.
pub fn render(out: &Path, notes: &Path) -> io::Result<Sweep> {
    let mut cluster = results::read_json(&out.join("bench").join(CLUSTER_RESULTS))?;
    cluster.notes = std::fs::read_to_string(notes)?;
    write(&cluster, out)?;
    Ok(cluster)
}

/// Writes `bench/cluster.json`, then the whole report again from it and
/// `bench/results.json`.
fn write(cluster: &Sweep, out: &Path) -> io::Result<()> {
    let bench = out.join("bench");
    std::fs::create_dir_all(&bench)?;
    results::write_json(&bench.join(CLUSTER_RESULTS), cluster)?;
    let main = results::read_json(&bench.join("results.json"))?;
    sweep::write(&main, out)
}

/// `nats-server --version`, for the report: "nats-server: v2.9.10".
fn nats_version(binary: Option<&Path>) -> String {
    let program = binary.map_or_else(|| PathBuf::from("nats-server"), Path::to_path_buf);
    let candidates = [program, PathBuf::from("/usr/sbin/nats-server")];
    candidates
        .iter()
        .find_map(|p| std::process::Command::new(p).arg("--version").output().ok())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "version unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> ClusterSweepPlan {
        ClusterSweepPlan {
            model: Model::Prethread,
            workers: 1,
            nodes: vec![0, 1, 2],
            clients: vec![100, 1000],
            repeats: 2,
            spare_runs: true,
            connect_concurrency: 200,
            server_cpu: Some(0),
            client_cpu: Some(1),
            nats_server: None,
            out: PathBuf::from("docs"),
            notes: None,
            command: String::new(),
        }
    }

    #[test]
    fn the_matrix_interleaves_repetitions_and_adds_the_spare_node_to_floods() {
        let matrix = matrix(&plan());
        // 2 repetitions × 2 sizes × (flood: 3 shapes + spare; paced: 3).
        assert_eq!(matrix.len(), 2 * 2 * (4 + 3));
        let first: Vec<_> = matrix[..7].iter().map(|(n, l, s)| (*n, l.2, s.nodes, s.spare_nodes)).collect();
        assert_eq!(
            first,
            [
                (100, 0.0, 0, 0),
                (100, 0.0, 1, 0),
                (100, 0.0, 2, 0),
                (100, 0.0, 1, 1),
                (100, 2000.0, 0, 0),
                (100, 2000.0, 1, 0),
                (100, 2000.0, 2, 0)
            ]
        );
        // The loads are the single-node sweep's.
        assert!(matrix.iter().all(|(n, l, _)| loads(*n).contains(l)));
        // The second repetition starts again at the beginning.
        assert_eq!(matrix[14], matrix[0]);
    }
}

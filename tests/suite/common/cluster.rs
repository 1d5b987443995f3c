//! The cluster variant of the behaviour tests: what `Model::Cluster` needs
//! besides the chatter processes, namely one NATS JetStream server for the
//! whole test binary, and the flags that make a chatter process one node
//! of a network on it.
//!
//! Every test binary starts at most one nats-server, the first time a
//! cluster test asks for it ([`shared_url`]), and every cluster test runs
//! its own network on it (`--network` unique to the test's `Server`, so
//! its stream and buckets are its own: see `server::cluster::Names`). One
//! server per binary rather than per test because starting JetStream is
//! most of what a cluster costs to set up, and a network needs nothing of
//! the server but its own names.
//!
//! A server shared by the tests of a binary outlives every test, so no
//! test's drop can stop it; it must die with the test process however that
//! ends (a normal exit, a panic that aborts, SIGKILL from a timeout). So:
//!
//! - It is a [`Nats`] started from a thread of its own that never returns,
//!   with `PR_SET_PDEATHSIG=SIGKILL` set in the child before it execs: the
//!   kernel SIGKILLs it when the thread that forked it ends, which (the
//!   thread never returning) is when the test process ends.
//! - Its directory (store and log) is never dropped; a janitor removes it: a `sh`
//!   whose stdin is a pipe the test process holds open and never writes.
//!   When the process ends, for whatever reason, the pipe closes, the
//!   janitor's `read` returns, and it removes the directory (again until it
//!   is gone: the killed server may still be going for a moment).
//!
//! `tests/suite/nats_harness.rs` checks both, by running a test binary that
//! starts the shared server and exits.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use super::Model;
use super::nats::{NATS_PATIENCE, Nats};

/// The models of a cluster's nodes, one entry per node: the harness starts
/// one chatter process per entry, and `Server::connect` takes turns among
/// them. Two different models, so that what one client does reaches the
/// other through both ways a node meets the network: a pool whose bridge
/// is a process of its own (prefork; prethread runs the same worker code
/// with the bridge as a thread) and the iterative model's client threads,
/// which wait for each of their events to come back ordered.
pub const CLUSTER_NODES: [Model; 2] = [Model::Prefork, Model::Iterative];

/// The shared server, once started: its URL, and where it keeps its store
/// and log (for a test that shows them).
pub struct SharedNats {
    pub url: String,
    pub pid: u32,
    pub dir: PathBuf,
    /// The janitor, whose stdin is held open (never written) until this
    /// process ends: see the module comment. Never waited for: it outlives
    /// the process by design.
    _janitor: Child,
}

static SHARED: OnceLock<SharedNats> = OnceLock::new();

/// The shared server of this test binary, started on first use (the
/// caller has checked `nats::present()`).
pub fn shared() -> &'static SharedNats {
    SHARED.get_or_init(SharedNats::start)
}

/// `nats://127.0.0.1:PORT` of the shared server.
pub fn shared_url() -> &'static str {
    &shared().url
}

static NEXT_NETWORK: AtomicUsize = AtomicUsize::new(0);

/// A network name no other `Server` of this test binary has (they all
/// share one nats-server, which is this binary's alone).
pub fn fresh_network() -> String {
    format!("chatter-{}", NEXT_NETWORK.fetch_add(1, Ordering::Relaxed))
}

/// The name of node `i` of a network.
pub fn node_name(i: usize) -> String {
    format!("node{i}")
}

/// The flags that make a chatter process node `i` of `network` on the
/// shared server (with `--network` only when `network_flag`: a test that
/// gives its own `--network` keeps it).
pub fn node_args(i: usize, network: &str, network_flag: bool) -> Vec<String> {
    let mut args = vec!["--cluster".into(), shared_url().into(), "--node".into(), node_name(i)];
    if network_flag {
        args.extend(["--network".into(), network.into()]);
    }
    args
}

impl SharedNats {
    fn start() -> SharedNats {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("shared-nats".into())
            .spawn(move || {
                // The server is SIGKILLed when this thread ends, so it never
                // does (see the module comment); it keeps the server to
                // itself, so no one else reaps or drops it.
                let started = std::panic::catch_unwind(|| Nats::start_as("shared", true));
                let _server = match started {
                    Ok(nats) => {
                        let _ = tx.send(Ok((nats.url(), nats.pid(), nats.dir().to_path_buf())));
                        Some(nats)
                    }
                    Err(panic) => {
                        let why = panic.downcast_ref::<String>().cloned().unwrap_or_default();
                        let _ = tx.send(Err(why));
                        None
                    }
                };
                loop {
                    std::thread::park();
                }
            })
            .expect("start the shared NATS thread");
        let (url, pid, dir) = rx
            .recv_timeout(NATS_PATIENCE * 2)
            .expect("an answer from the shared NATS thread")
            .unwrap_or_else(|e| panic!("the shared nats-server did not start: {e}"));
        let janitor = janitor(&dir);
        SharedNats { url, pid, dir, _janitor: janitor }
    }
}

/// Starts the janitor that removes `dir` once this process has ended.
fn janitor(dir: &std::path::Path) -> Child {
    // `read` returns (EOF) when the last writer of its stdin is gone: this
    // process, however it ended. The pipe is close-on-exec here, so no
    // other child holds it open. Bounded: 100 tries, 100 ms apart.
    let script = r#"read -r _
for _ in $(seq 100); do rm -rf "$0" 2>/dev/null; [ -e "$0" ] || exit 0; sleep 0.1; done"#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the janitor of the shared NATS directory")
}

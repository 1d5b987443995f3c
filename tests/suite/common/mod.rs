//! Test harness: start a real chatter process on an ephemeral port and talk
//! to it over TCP like a client would.
//!
//! Every behaviour test is written once, as `fn name(model: Model)`, and
//! listed in [`all_models!`], which makes one `#[test]` per model. Adding a
//! model to the server means adding one line to that macro.
//!
//! One more "model" is a cluster: `Model::Cluster` starts one chatter
//! process per entry of [`cluster::CLUSTER_NODES`], nodes of a network of
//! their own on a nats-server the test binary shares (see `cluster`), and
//! [`Server::connect`] takes turns among them, so that a test's clients are
//! on different nodes and what they do to each other crosses the network.
//! What the harness does to "the server" (signals, its log) it does to
//! every node; [`Client::sync`] waits for the network's order as well.
//!
//! Waiting is always "until this line arrives" with a generous deadline that
//! only exists so that a broken server fails the test instead of hanging it;
//! nothing asserts how fast anything happens. To show that something did
//! *not* arrive, a client uses [`Client::sync`]: it PINGs and reads up to the
//! PONG, and the server handles a connection's lines in order.

#![allow(dead_code)]

mod client;
pub mod cluster;
pub mod nats;
mod server;
pub mod wire;

pub use client::*;
pub use server::*;

use std::process::Command;
use std::time::{Duration, Instant};

/// How long to wait for something that should come; only a broken server
/// ever waits this long.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The longest line IRC allows, CR LF included.
pub const MAX_LINE_BYTES: usize = 512;

/// The longest tag section IRCv3 allows a server to send, its `@` and
/// the space after it included.
pub const MAX_TAGS_BYTES: usize = 8191;

/// The concurrency models a test body runs against, and a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    Iterative,
    Prethread,
    Prefork,
    /// A network of chatter nodes ([`cluster::CLUSTER_NODES`]: their
    /// models) on one NATS JetStream server shared by the test binary.
    Cluster,
    /// The models again, their clients connected over TLS (the server
    /// listens on plain TCP too, for what a test does with a raw socket).
    TlsIterative,
    TlsPrethread,
    TlsPrefork,
}

/// Pool models run with two workers, so cross-worker paths are exercised.
pub const POOL_WORKERS: usize = 2;

impl Model {
    /// The flags that start a chatter process of this model. For
    /// `Cluster`, those of a first node of a network of its own (a test
    /// that starts chatter itself); a `Server` gives each node its own.
    pub fn args(self) -> Vec<String> {
        let pool =
            |name: &str| vec!["--model".into(), name.into(), "--workers".into(), POOL_WORKERS.to_string()];
        match self {
            Model::Iterative => vec!["--model".into(), "iterative".into()],
            Model::Prethread => pool("prethread"),
            Model::Prefork => pool("prefork"),
            Model::Cluster => {
                let mut args = cluster::CLUSTER_NODES[0].args();
                args.extend(cluster::node_args(0, &cluster::fresh_network(), true));
                args
            }
            Model::TlsIterative | Model::TlsPrethread | Model::TlsPrefork => {
                let mut args = self.base().args();
                args.extend(["--tls-listen".into(), "127.0.0.1:0".into()]);
                args.extend(wire::tls_args());
                args
            }
        }
    }

    /// The model a TLS variant runs (itself for the others).
    pub fn base(self) -> Model {
        match self {
            Model::TlsIterative => Model::Iterative,
            Model::TlsPrethread => Model::Prethread,
            Model::TlsPrefork => Model::Prefork,
            model => model,
        }
    }

    /// Whether its clients connect over TLS.
    pub fn is_tls(self) -> bool {
        self.base() != self
    }

    /// The processes a `Server` of this model runs, by their models.
    pub fn processes(self) -> Vec<Model> {
        match self {
            Model::Cluster => cluster::CLUSTER_NODES.to_vec(),
            model => vec![model],
        }
    }

    /// How many accept loops (a thread, or a pool worker) one process of
    /// this model has; for a cluster, all its nodes together.
    pub fn accept_loops(self) -> usize {
        match self.base() {
            Model::Iterative => 1,
            Model::Cluster => cluster::CLUSTER_NODES.iter().map(|m| m.accept_loops()).sum(),
            _ => POOL_WORKERS,
        }
    }
}

/// One `#[test]` per model for each listed test body `fn body(model: Model)`,
/// one against a cluster (skipped, as every NATS test, where nats-server
/// is missing and `CHATTER_REQUIRE_NATS` is not set), and one per model
/// with the clients connected over TLS.
#[macro_export]
macro_rules! all_models {
    ($($test:ident),* $(,)?) => {
        $crate::each_model!($($test),*);
        mod tls_iterative {
            $( #[test] fn $test() { super::$test($crate::common::Model::TlsIterative) } )*
        }
        mod tls_prethread {
            $( #[test] fn $test() { super::$test($crate::common::Model::TlsPrethread) } )*
        }
        mod tls_prefork {
            $( #[test] fn $test() { super::$test($crate::common::Model::TlsPrefork) } )*
        }
    };
}

/// One `#[test]` per model and one against a cluster, for test bodies
/// that choose the transport themselves (TLS, WebSocket): for them a TLS
/// variant would be the same test again.
#[macro_export]
macro_rules! each_model {
    ($($test:ident),* $(,)?) => {
        mod iterative {
            $( #[test] fn $test() { super::$test($crate::common::Model::Iterative) } )*
        }
        mod prethread {
            $( #[test] fn $test() { super::$test($crate::common::Model::Prethread) } )*
        }
        mod prefork {
            $( #[test] fn $test() { super::$test($crate::common::Model::Prefork) } )*
        }
        mod cluster {
            $(
                #[test]
                fn $test() {
                    if $crate::common::nats::present() {
                        super::$test($crate::common::Model::Cluster)
                    }
                }
            )*
        }
    };
}

/// Live child processes of `pid` (read from /proc).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return found };
    for entry in entries.flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        // Fields after the ")" that ends the command name: state, ppid, ...
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            found.push(child);
        }
    }
    found.sort();
    found
}

/// Whether a process exists and is not a zombie.
pub fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Sends a signal to a process by PID (only processes the test started).
pub fn signal(pid: u32, signal: &str) {
    let status =
        Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Waits (bounded) until `condition` holds; panics with `what` if it never does.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One `#[test]` per pool model (prethread, prefork) for each listed body.
#[macro_export]
macro_rules! pool_models {
    ($($test:ident),* $(,)?) => {
        mod prethread {
            $( #[test] fn $test() { super::$test($crate::common::Model::Prethread) } )*
        }
        mod prefork {
            $( #[test] fn $test() { super::$test($crate::common::Model::Prefork) } )*
        }
    };
}

/// alice (the operator: she joins first), bob and carol all in #room, each
/// having seen the others arrive.
pub fn three_in_room(server: &Server) -> (Client, Client, Client) {
    let mut alice = Client::register(server, "alice");
    let mut bob = Client::register(server, "bob");
    let mut carol = Client::register(server, "carol");
    alice.join("#room");
    bob.join("#room");
    carol.join("#room");
    alice.expect_line(":bob!bob@127.0.0.1 JOIN #room");
    alice.expect_line(":carol!carol@127.0.0.1 JOIN #room");
    bob.expect_line(":carol!carol@127.0.0.1 JOIN #room");
    (alice, bob, carol)
}

/// How many connections we try before concluding the kernel will not spread
/// clients over the workers the way a test needs.
pub const CONNECT_ATTEMPTS: usize = 60;

/// Connects until a client lands on the worker with process id `pid`.
pub fn land_on(server: &Server, pid: u32) -> Client {
    let mut seen = Vec::new();
    for _ in 0..CONNECT_ATTEMPTS {
        let (client, (_, on)) = Client::connect_to_worker(server);
        if on == pid {
            return client;
        }
        seen.push(on);
    }
    panic!("no connection landed on worker pid {pid} in {CONNECT_ATTEMPTS} tries; got {seen:?}");
}

/// The pids of a prefork server's workers once all of them exist. The server says
/// "listening" before it forks them, and a connection waits in its worker's
/// listening socket until that worker is there to accept it, so a test that
/// never talked to a worker cannot assume it exists yet.
pub fn full_pool(server: &Server) -> Vec<u32> {
    wait_until("every worker to be forked", || children_of(server.pid()).len() == POOL_WORKERS);
    children_of(server.pid())
}

/// Waits until the server again has its full pool and none of `gone` is in it.
pub fn wait_for_replacement(server: &Server, gone: u32) -> Vec<u32> {
    wait_until(&format!("a replacement for worker pid {gone}"), || {
        let children = children_of(server.pid());
        children.len() == POOL_WORKERS && !children.contains(&gone)
    });
    children_of(server.pid())
}

/// pat, a plain client and so the operator of #lobby (the first in it
/// makes it), and ircy, an IRC client in #lobby too; pat has seen ircy
/// arrive.
pub fn plain_operator_and_irc_in_lobby(server: &Server) -> (Client, Client) {
    let mut pat = Client::plain(server, "pat");
    let mut ircy = Client::register(server, "ircy");
    ircy.join("#lobby");
    pat.expect_line("*** ircy joined #lobby");
    (pat, ircy)
}

//! Starting chatter for a test: a [`Server`] is one process of a model,
//! or one per node of a cluster (see the harness's module comment), each
//! on ephemeral ports and killed on drop, with what a test does to "the
//! server" (connect, signal, kill, restart) done to every node.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Client, Model, PATIENCE, cluster, signal};

/// One chatter process of a [`Server`]; killed on drop if still running.
struct Node {
    child: Child,
    addr: String,
    /// Where it listens for TLS, WebSocket and secure WebSocket, if it does.
    tls_addr: Option<String>,
    ws_addr: Option<String>,
    wss_addr: Option<String>,
    /// Which process it is, for messages: `chatter`, or a cluster node's
    /// name and network.
    name: String,
    /// Sent a signal through [`Server::signal`]: an exit is expected.
    signalled: AtomicBool,
    /// It has a plain listener (`addr`; without one, `addr` is another's).
    plain: bool,
}

impl Node {
    /// Runs `command serve` with `flags`, on an ephemeral port unless they
    /// say where (`--listen`), and reads the addresses it announces; if it
    /// ends instead (it could not listen where it was told), what it said.
    fn spawn(mut command: Command, name: String, flags: &[String], stderr: Stdio) -> Result<Node, String> {
        command.arg("serve");
        if !flags.iter().any(|f| f == "--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        command
            .args(flags)
            // CHATTER_TEST_LOG=info shows what the server did, for debugging.
            .env("RUST_LOG", std::env::var("CHATTER_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command.spawn().expect("start chatter");
        let stdout = child.stdout.take().expect("stdout");
        // One line per listener: the plain one unless `--listen none`, and
        // one per other listener flag.
        let plain = flags.windows(2).find(|w| w[0] == "--listen").is_none_or(|w| w[1] != "none");
        let others = ["--tls-listen", "--ws-listen", "--wss-listen"]
            .iter()
            .filter(|flag| flags.iter().any(|f| f == *flag))
            .count();
        let mut reader = BufReader::new(stdout);
        let mut node = Node {
            addr: String::new(),
            tls_addr: None,
            ws_addr: None,
            wss_addr: None,
            child,
            name,
            signalled: AtomicBool::new(false),
            plain,
        };
        for _ in 0..usize::from(plain) + others {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read a listening line");
            let Some(addr) = line.trim().strip_prefix("listening on ") else {
                node.signalled.store(true, Ordering::Relaxed);
                let _ = node.child.kill();
                let _ = node.child.wait();
                return Err(format!("unexpected line from {}: {line:?}", node.name));
            };
            match addr.split_once("://") {
                None => node.addr = addr.to_string(),
                Some(("tls", a)) => node.tls_addr = Some(a.to_string()),
                Some(("ws", a)) => node.ws_addr = Some(a.trim_end_matches('/').to_string()),
                Some(("wss", a)) => node.wss_addr = Some(a.trim_end_matches('/').to_string()),
                Some(_) => panic!("unexpected listener from chatter: {line:?}"),
            }
        }
        if node.addr.is_empty() {
            node.addr = node.tls_addr.clone().or(node.ws_addr.clone()).unwrap_or_default();
        }
        Ok(node)
    }

    /// The flags, with their values, that make a process listen where
    /// this one does (a plain listener it does not have stays off:
    /// `--listen none` is among its flags already).
    fn listening_again(&self) -> Vec<(&'static str, String)> {
        let mut flags = Vec::new();
        if self.plain {
            flags.push(("--listen", self.addr.clone()));
        }
        let others = [
            ("--tls-listen", &self.tls_addr),
            ("--ws-listen", &self.ws_addr),
            ("--wss-listen", &self.wss_addr),
        ];
        for (flag, addr) in others {
            if let Some(addr) = addr {
                flags.push((flag, addr.clone()));
            }
        }
        flags
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        match self.child.try_wait() {
            Ok(None) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
            // A process that ended by itself is often why a test failed
            // (a cluster node that could not join, or was declared lost):
            // said where a failing test's output shows it.
            Ok(Some(status)) if !self.signalled.load(Ordering::Relaxed) => {
                eprintln!("{} (pid {}) had exited by itself: {status}", self.name, self.child.id());
            }
            _ => {}
        }
    }
}

/// A chatter server: one process, or for `Model::Cluster` one per node;
/// each killed on drop if the test did not stop it.
pub struct Server {
    nodes: Vec<Node>,
    /// The address of the (first) process.
    pub addr: String,
    pub model: Model,
    /// Its `--network` (005 `NETWORK`): `chatter` unless a cluster's, or
    /// given in `extra`.
    pub network: String,
    /// The node the next [`Server::connect`] goes to.
    turn: AtomicUsize,
    /// How its processes are started, for [`Server::restart`].
    how: Start,
}

/// How a [`Server`]'s processes are started.
struct Start {
    command: Box<dyn Fn() -> Command + Send + Sync>,
    extra: Vec<String>,
    /// The file every process's log (stderr) goes to, if one.
    log: Option<PathBuf>,
    /// The network was not given in `extra`: a cluster's is the harness's.
    own_network: bool,
}

impl Start {
    /// Starts process `i` of a `model` server of `network`, with the
    /// values in `again` for those flags (listening where a process did).
    fn node(
        &self,
        model: Model,
        i: usize,
        network: &str,
        again: &[(&'static str, String)],
    ) -> Result<Node, String> {
        let (args, name, log) = match model {
            Model::Cluster => {
                let mut args = cluster::CLUSTER_NODES[i].args();
                args.extend(cluster::node_args(i, network, self.own_network));
                let name = format!("{} of network {network}", cluster::node_name(i));
                (args, name, format!("{network}-{}.log", cluster::node_name(i)))
            }
            _ => (model.args(), "chatter".to_string(), "chatter.log".to_string()),
        };
        let mut flags: Vec<String> = args.into_iter().chain(self.extra.iter().cloned()).collect();
        for (flag, value) in again {
            match flags.iter().position(|f| f == flag) {
                Some(at) => flags[at + 1] = value.clone(),
                None => flags.extend([flag.to_string(), value.clone()]),
            }
        }
        Node::spawn((self.command)(), name, &flags, self.stderr(model, &log))
    }

    /// Where a process's log goes: every process appends to the log, so
    /// a cluster's lines interleave whole.
    fn stderr(&self, model: Model, name: &str) -> Stdio {
        let path = match &self.log {
            Some(path) => path.clone(),
            None => match std::env::var_os(NODE_LOGS_VAR) {
                Some(dir) if model == Model::Cluster => PathBuf::from(dir).join(name),
                _ => return Stdio::inherit(),
            },
        };
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path);
        Stdio::from(file.unwrap_or_else(|e| panic!("open the log {}: {e}", path.display())))
    }
}

impl Server {
    pub fn start(model: Model) -> Server {
        Server::start_with(model, &[])
    }

    pub fn start_with(model: Model, extra: &[&str]) -> Server {
        Server::spawn(|| Command::new(env!("CARGO_BIN_EXE_chatter")), model, extra, None)
    }

    /// Starts chatter with its log (stderr) written to `log`, for a test
    /// that waits for something only the log tells. A cluster's nodes all
    /// append to that one file.
    pub fn start_logged(model: Model, extra: &[&str], log: &std::path::Path) -> Server {
        Server::spawn(|| Command::new(env!("CARGO_BIN_EXE_chatter")), model, extra, Some(log))
    }

    /// Starts chatter with at most `open_files` descriptors (set by the
    /// shell that execs it, so the server cannot raise it) and its log
    /// written to `log` (each node of a cluster so).
    pub fn start_limited(model: Model, extra: &[&str], open_files: u64, log: &std::path::Path) -> Server {
        let command = move || {
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg(format!("ulimit -n {open_files} && exec \"$0\" \"$@\""))
                .arg(env!("CARGO_BIN_EXE_chatter"));
            command
        };
        Server::spawn(command, model, extra, Some(log))
    }

    fn spawn(
        command: impl Fn() -> Command + Send + Sync + 'static,
        model: Model,
        extra: &[&str],
        log: Option<&std::path::Path>,
    ) -> Server {
        let log = log.map(|path| {
            std::fs::File::create(path).expect("create the log file");
            path.to_path_buf()
        });
        let given_network = extra.iter().position(|a| *a == "--network").and_then(|i| extra.get(i + 1));
        let how = Start {
            command: Box::new(command),
            extra: extra.iter().map(|a| a.to_string()).collect(),
            log,
            own_network: given_network.is_none(),
        };
        let network = match (model, given_network) {
            (_, Some(network)) => network.to_string(),
            (Model::Cluster, None) => cluster::fresh_network(),
            (_, None) => "chatter".to_string(),
        };
        let nodes: Vec<Node> = (0..model.processes().len())
            .map(|i| how.node(model, i, &network, &[]).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        Server { addr: nodes[0].addr.clone(), nodes, model, network, turn: AtomicUsize::new(0), how }
    }

    /// Kills every process (SIGKILL: a crash, not a shutdown) and waits
    /// for each to end; [`restart`](Self::restart) starts them again.
    pub fn kill(&mut self) {
        for node in &mut self.nodes {
            node.signalled.store(true, Ordering::Relaxed);
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }

    /// Starts the server again where it listened, killing it first if it
    /// still runs, so that clients which reconnect by themselves find it:
    /// a new run that remembers nothing, as a single process restarted; a
    /// cluster comes back as a network of its own again (a fresh one,
    /// unless `extra` named it), each node where it was. An address the old
    /// processes held may not be free at once (a prefork server's workers
    /// follow their supervisor a moment later), so each process is tried
    /// again until it starts, for a while.
    pub fn restart(&mut self) {
        self.kill();
        let again: Vec<Vec<(&str, String)>> = self.nodes.iter().map(Node::listening_again).collect();
        self.nodes.clear();
        if self.model == Model::Cluster && self.how.own_network {
            self.network = cluster::fresh_network();
        }
        for (i, again) in again.iter().enumerate() {
            let deadline = Instant::now() + PATIENCE;
            let node = loop {
                match self.how.node(self.model, i, &self.network, again) {
                    Ok(node) => break node,
                    Err(e) if Instant::now() > deadline => panic!("restarting {:?}: {e}", self.model),
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            };
            self.nodes.push(node);
        }
        self.addr = self.nodes[0].addr.clone();
        self.turn.store(0, Ordering::Relaxed);
    }

    /// The process id of a single server. A cluster has one process per
    /// node: a test about one process's internals does not apply to it,
    /// and signals go to every node ([`Server::signal`]).
    pub fn pid(&self) -> u32 {
        assert_eq!(
            self.nodes.len(),
            1,
            "a {:?} server has {} processes: see pids()",
            self.model,
            self.nodes.len()
        );
        self.nodes[0].child.id()
    }

    /// Every process's id (one per cluster node).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.child.id()).collect()
    }

    /// Every process's address, in node order.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    /// Where the next client goes: the nodes of a cluster take turns, so
    /// that clients of one test are on different nodes.
    pub fn next_addr(&self) -> String {
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        self.nodes[turn % self.nodes.len()].addr.clone()
    }

    /// A new client of the next node (see [`next_addr`](Self::next_addr)),
    /// over TLS for a TLS model.
    pub fn connect(&self) -> Client {
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let node = &self.nodes[turn % self.nodes.len()];
        let mut client = match (&node.tls_addr, self.model.is_tls()) {
            (Some(tls), true) => Client::connect_tls(tls),
            _ => Client::connect(&node.addr),
        };
        client.across_nodes = self.nodes.len() > 1;
        client
    }

    /// The (first) process's WebSocket address, if it listens for one;
    /// `secure` for wss.
    pub fn web_addr(&self, secure: bool) -> Option<String> {
        if secure { self.nodes[0].wss_addr.clone() } else { self.nodes[0].ws_addr.clone() }
    }

    /// Every process's WebSocket (ws) address, in node order, for a
    /// server started with `--ws-listen`.
    pub fn web_addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.ws_addr.clone().expect("a WebSocket listener")).collect()
    }

    /// The (first) process's TLS address, if it listens for TLS.
    pub fn tls_addr(&self) -> Option<String> {
        self.nodes[0].tls_addr.clone()
    }

    /// Sends a signal to every process (each node of a cluster).
    pub fn signal(&self, name: &str) {
        for node in &self.nodes {
            node.signalled.store(true, Ordering::Relaxed);
            signal(node.child.id(), name);
        }
    }

    /// Sends a signal to every process and waits for all to exit; the exit
    /// status of the first that did not exit 0, or else the first's.
    pub fn signal_and_wait(&mut self, name: &str) -> ExitStatus {
        self.signal(name);
        let deadline = Instant::now() + PATIENCE;
        let mut statuses = Vec::new();
        for node in &mut self.nodes {
            loop {
                if let Some(status) = node.child.try_wait().expect("wait for chatter") {
                    statuses.push(status);
                    break;
                }
                assert!(Instant::now() < deadline, "chatter did not exit after SIG{name}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        statuses.iter().find(|s| !s.success()).copied().unwrap_or(statuses[0])
    }
}

/// Set to a directory to have each cluster node's log (stderr) written to
/// a file of its own there (`<network>-node<i>.log`), for debugging; a
/// test's own log file (`start_logged`) wins over it.
pub const NODE_LOGS_VAR: &str = "CHATTER_TEST_NODE_LOGS";

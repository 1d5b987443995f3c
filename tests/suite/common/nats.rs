//! NATS JetStream for the cluster tests: real `nats-server -js` processes,
//! one alone ([`Nats`]) or several routed into one JetStream cluster
//! ([`NatsCluster`]), on 127.0.0.1, each with its store in a temporary
//! directory.
//!
//! Cluster mode keeps chatter's event log in JetStream, so its tests need a
//! real server they can stop, kill and bring back with its data: nothing
//! less shows what a chatter node does when NATS goes away and returns.
//! The harness speaks the little NATS it needs itself, over a plain
//! `TcpStream`, so it needs no client crate: the text protocol for
//! JetStream API requests ([`request`]: CONNECT, SUB to an inbox, PUB with
//! that inbox as reply-to, read the MSG) and for publishes to a stream
//! ([`publish`]: HPUB with a `Nats-Msg-Id`, so that one may be sent again
//! until acknowledged), and HTTP/1.0 for the monitoring endpoint `/jsz`
//! ([`monitor`]).
//!
//! Readiness is asked, never assumed after a delay, and every wait is
//! bounded by [`NATS_PATIENCE`]. A lone server is ready when
//! `$JS.API.INFO` answers without an error. A cluster member is ready when
//! its own `/jsz` names a meta leader, that leader's `/jsz` lists it as a
//! current peer, and `$JS.API.INFO` through it answers. Each says what the
//! others do not. `$JS.API.INFO` answers as soon as the meta group has a
//! leader, which two of three servers suffice for (an R3 stream needs all
//! three). The leader calling a member "current" says the member's copy of
//! the meta log is caught up, so it knows every stream; but the leader goes
//! on saying it for seconds after the member was killed (nothing in a quiet
//! group says otherwise), so it cannot tell that a restarted member is
//! back. The member can: having started afresh, it knows a leader only
//! once the leader has reached it.
//!
//! Ports are picked by binding port 0 and reading it back, then handed to
//! nats-server: it has to be told them, because a cluster's routes name
//! each other's cluster ports and a restart must take the same ports again.
//! Should someone else take a port in between, nats-server exits with
//! "address already in use" and the first start tries again with new
//! ports ([`START_ATTEMPTS`] times); a restart has no such way out.
//!
//! Each process is stopped by its PID when its owner is dropped (SIGKILL:
//! nothing of it is needed any more), and then its directory is removed.
//!
//! [`present`] is the skip-or-require rule every NATS test calls first.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a NATS wait may take before the test fails. A meta leader
/// election after a kill takes seconds; on a loaded machine longer.
pub const NATS_PATIENCE: Duration = Duration::from_secs(60);

/// How long one request waits for its answer. A request sent while no
/// leader is known may get none; readiness asks again.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// How many times a first start tries fresh ports (see the module comment).
const START_ATTEMPTS: usize = 3;

/// Set (CI sets it) to make NATS tests fail rather than skip where
/// nats-server is not installed.
pub const REQUIRE_VAR: &str = "CHATTER_REQUIRE_NATS";

/// Whether nats-server is here. Where it is not, this prints why and a test
/// returns early (passing without checking anything), unless
/// `CHATTER_REQUIRE_NATS` is set, where it panics:
///
/// ```ignore
/// if !common::nats::present() {
///     return;
/// }
/// ```
pub fn present() -> bool {
    if binary().is_some() {
        return true;
    }
    assert!(
        std::env::var_os(REQUIRE_VAR).is_none(),
        "nats-server is required here ({REQUIRE_VAR} is set) but not installed (apt-get install nats-server)"
    );
    eprintln!("skipped: nats-server is not installed (apt-get install nats-server)");
    false
}

/// The nats-server executable: on PATH, or in /usr/sbin where Debian puts
/// it (and where a user's PATH may not look).
pub(super) fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nats-server"))
        .filter(|candidate| candidate.is_file())
        .find(|candidate| Command::new(candidate).arg("--version").output().is_ok_and(|o| o.status.success()))
}

/// One JetStream server alone; stopped and its store removed on drop.
pub struct Nats {
    // Declared before `dir`: the process is gone before its store is removed.
    server: Process,
    port: u16,
    dir: TempDir,
}

impl Nats {
    /// Starts one `nats-server -js` on a free port and waits until
    /// JetStream answers.
    pub fn start() -> Nats {
        Nats::start_as("single", false)
    }

    /// [`Nats::start`], its directory named after `what`; with
    /// `dies_with_thread`, the kernel SIGKILLs the server when the thread
    /// that started it ends (`PR_SET_PDEATHSIG`), however that happens.
    pub(super) fn start_as(what: &str, dies_with_thread: bool) -> Nats {
        start_with_fresh_ports(|| {
            let dir = TempDir::new(what);
            let [port] = free_ports();
            let args = server_args("solo", port, &dir.path.join("store"));
            let mut server = Process::new("solo", args, &dir);
            server.dies_with_thread = dies_with_thread;
            let mut nats = Nats { server, port, dir };
            nats.server.spawn();
            nats.wait_ready().map(|()| nats)
        })
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The running server's PID.
    pub fn pid(&self) -> u32 {
        self.server.child.as_ref().expect("the server runs").id()
    }

    /// Its directory: the store and the log.
    pub(super) fn dir(&self) -> &Path {
        &self.dir.path
    }

    /// The store directory (`--store_dir`), which outlives [`Nats::stop`].
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path.join("store")
    }

    /// SIGTERM, and waits (bounded) until the server has exited.
    pub fn stop(&mut self) {
        self.server.terminate();
    }

    /// Starts the server again on the same port with the same store, so
    /// what JetStream had is there again, and waits until it answers.
    /// Stops it first if it is running.
    pub fn restart(&mut self) {
        self.server.terminate();
        self.server.spawn();
        self.wait_ready().unwrap_or_else(|e| panic!("{e}"));
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let url = self.url();
        wait_ready(&format!("JetStream at {url}"), || {
            self.server.running()?;
            request(&url, "$JS.API.INFO", "").map(drop).map_err(NotReady::Yet)
        })
    }
}

/// Several JetStream servers routed into one cluster; all stopped and
/// their stores removed on drop.
pub struct NatsCluster {
    // Declared before `dir`: the processes are gone before their stores are removed.
    members: Vec<Member>,
    dir: TempDir,
}

/// One server of a [`NatsCluster`].
struct Member {
    name: String,
    process: Process,
    client_port: u16,
    http_port: u16,
}

impl NatsCluster {
    /// Starts `size` JetStream servers (`n0`, `n1`, ...) in one cluster,
    /// each routed to all the others, and waits until every one of them is
    /// a current member of a JetStream meta group that has a leader.
    pub fn start(size: usize) -> NatsCluster {
        assert!((1..=9).contains(&size), "a test cluster has 1 to 9 servers, not {size}");
        start_with_fresh_ports(|| {
            let dir = TempDir::new("cluster");
            // Client, cluster and monitoring port for each member.
            let ports: Vec<[u16; 3]> = (0..size).map(|_| free_ports()).collect();
            let routes: Vec<String> =
                ports.iter().map(|[_, cluster, _]| format!("nats://127.0.0.1:{cluster}")).collect();
            let routes = routes.join(",");
            let members = ports
                .iter()
                .enumerate()
                .map(|(i, &[client_port, cluster_port, http_port])| {
                    let name = format!("n{i}");
                    let mut args = server_args(&name, client_port, &dir.path.join(&name));
                    args.extend([
                        "--http_port".into(),
                        http_port.to_string(),
                        "--cluster_name".into(),
                        "chatter-test".into(),
                        "--cluster".into(),
                        format!("nats://127.0.0.1:{cluster_port}"),
                        "--routes".into(),
                        routes.clone(),
                    ]);
                    let process = Process::new(&name, args, &dir);
                    Member { name, process, client_port, http_port }
                })
                .collect();
            let mut cluster = NatsCluster { members, dir };
            for member in &mut cluster.members {
                member.process.spawn();
            }
            (0..size).try_for_each(|i| cluster.wait_member(i)).map(|()| cluster)
        })
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// `nats://127.0.0.1:PORT` of server `i`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.members[i].client_port)
    }

    /// Every server's URL, comma-joined: `nats://127.0.0.1:A,nats://127.0.0.1:B,...`
    /// (what `--cluster` takes).
    pub fn urls(&self) -> String {
        (0..self.len()).map(|i| self.url(i)).collect::<Vec<_>>().join(",")
    }

    /// Server `i`'s name in the cluster (`n0`, `n1`, ...), as JetStream
    /// reports leaders and replicas.
    pub fn name(&self, i: usize) -> &str {
        &self.members[i].name
    }

    /// Server `i`'s monitoring port, for [`monitor`].
    pub fn http_port(&self, i: usize) -> u16 {
        self.members[i].http_port
    }

    /// SIGKILLs server `i` (no goodbye to its peers) and reaps it.
    pub fn kill(&mut self, i: usize) {
        self.members[i].process.kill();
    }

    /// Starts server `i` again on the same ports with the same store (after
    /// [`NatsCluster::kill`]; a running one is stopped first) and waits
    /// until it is a current member of the meta group again.
    pub fn restart(&mut self, i: usize) {
        self.members[i].process.terminate();
        self.members[i].process.spawn();
        self.wait_member(i).unwrap_or_else(|e| panic!("{e}"));
    }

    fn wait_member(&mut self, i: usize) -> Result<(), String> {
        let what = format!("{} to join the JetStream meta group", self.members[i].name);
        wait_ready(&what, || self.member_ready(i))
    }

    /// See the module comment for why each of these is asked.
    fn member_ready(&mut self, i: usize) -> Result<(), NotReady> {
        let member = &mut self.members[i];
        member.process.running()?;
        let name = member.name.clone();
        let jsz = monitor(member.http_port, "/jsz").map_err(NotReady::Yet)?;
        let leader = jsz["meta_cluster"]["leader"]
            .as_str()
            .ok_or_else(|| NotReady::Yet(format!("{name} knows no meta leader")))?;
        if leader != name {
            let at = self
                .members
                .iter()
                .find(|m| m.name == leader)
                .ok_or_else(|| NotReady::Yet(format!("{name} names an unknown leader {leader}")))?;
            let seen = monitor(at.http_port, "/jsz").map_err(NotReady::Yet)?;
            let current = seen["meta_cluster"]["replicas"].as_array().is_some_and(|replicas| {
                replicas.iter().any(|r| r["name"] == name.as_str() && r["current"] == true)
            });
            if !current {
                return Err(NotReady::Yet(format!("leader {leader} does not list {name} as current")));
            }
        }
        request(&self.url(i), "$JS.API.INFO", "").map(drop).map_err(NotReady::Yet)
    }
}

/// Asks JetStream (or any NATS service) at `url` once: publishes `payload`
/// to `subject` with a fresh inbox as reply-to on a new connection and
/// reads the answer as JSON. Err when no answer comes in time, when it is
/// not JSON, or when it carries JetStream's `error` (its code and
/// description are in the text).
pub fn request(url: &str, subject: &str, payload: &str) -> Result<Value, String> {
    ask(url, subject, "", payload)
}

/// Publishes `body` to a stream's `subject` through `url` as message `id`,
/// and asks again until JetStream acknowledges it (a publish can go
/// unanswered while the stream's leader, or the interest in its subjects,
/// has not reached every server yet); returns the acknowledgement,
/// `{"stream":...,"seq":...}`. Asking again is safe: the id is the
/// message's `Nats-Msg-Id`, and the stream stores a repeat within its
/// duplicate window (two minutes unless configured) once, acknowledging it
/// with the first one's sequence. Panics after [`NATS_PATIENCE`].
pub fn publish(url: &str, subject: &str, id: &str, body: &str) -> Value {
    let headers = format!("NATS/1.0\r\nNats-Msg-Id: {id}\r\n\r\n");
    let mut ack = None;
    wait_for(&format!("JetStream to acknowledge {id} on {subject} at {url}"), || {
        ack = Some(ask(url, subject, &headers, body)?);
        Ok(())
    });
    ack.expect("an acknowledgement")
}

/// [`request`], with NATS `headers` (a whole header block) when not empty.
fn ask(url: &str, subject: &str, headers: &str, payload: &str) -> Result<Value, String> {
    let addr = url.strip_prefix("nats://").unwrap_or(url);
    let answer = Connection::open(addr)
        .and_then(|mut connection| connection.request(subject, headers, payload))
        .map_err(|e| format!("{subject} at {url}: {e}"))?;
    let value: Value = serde_json::from_slice(&answer)
        .map_err(|e| format!("{subject} at {url}: not JSON ({e}): {}", String::from_utf8_lossy(&answer)))?;
    match value.get("error") {
        Some(error) => Err(format!("{subject} at {url}: {error}")),
        None => Ok(value),
    }
}

/// [`request`] again and again until it succeeds: for what JetStream
/// answers once it has (again) a leader, such as `$JS.API.INFO`,
/// `STREAM.INFO` or `STREAM.CREATE` of the same configuration (a publish
/// asked this way might be stored twice: see [`publish`]). Panics with the
/// last error after [`NATS_PATIENCE`].
pub fn request_until_ok(url: &str, subject: &str, payload: &str) -> Value {
    let mut answer = None;
    wait_for(&format!("an answer to {subject} at {url}"), || {
        answer = Some(request(url, subject, payload)?);
        Ok(())
    });
    answer.expect("an answer")
}

/// Waits until `condition` is Ok, at most [`NATS_PATIENCE`]; panics with
/// `what` and the last Err otherwise.
pub fn wait_for(what: &str, mut condition: impl FnMut() -> Result<(), String>) {
    wait_ready(what, || condition().map_err(NotReady::Yet)).unwrap_or_else(|e| panic!("{e}"));
}

/// GETs `path` (e.g. `/jsz?streams=true`) from the monitoring port `port`
/// on 127.0.0.1 and parses the body as JSON.
pub fn monitor(port: u16, path: &str) -> Result<Value, String> {
    let fail = |e: std::io::Error| format!("GET {path} on port {port}: {e}");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(fail)?;
    stream.set_read_timeout(Some(ANSWER_WAIT)).map_err(fail)?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).map_err(fail)?;
    // HTTP/1.0: the server closes the connection after its answer.
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(fail)?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").ok_or(format!("GET {path}: no end of headers"))?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(format!("GET {path}: {}", head.lines().next().unwrap_or_default()));
    }
    serde_json::from_str(body).map_err(|e| format!("GET {path}: not JSON ({e})"))
}

/// A NATS client connection that makes one request: just the text protocol
/// that takes.
struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    deadline: Instant,
}

static NEXT_INBOX: AtomicUsize = AtomicUsize::new(0);

impl Connection {
    fn open(addr: &str) -> std::io::Result<Connection> {
        let writer = TcpStream::connect(addr)?;
        let mut connection = Connection {
            reader: BufReader::new(writer.try_clone()?),
            writer,
            deadline: Instant::now() + ANSWER_WAIT,
        };
        let info = connection.line()?;
        if !info.starts_with("INFO ") {
            return Err(std::io::Error::other(format!("expected INFO, got {info:?}")));
        }
        // Headers on, for HPUB; no_responders off, so a request nobody
        // takes goes unanswered rather than getting a status message.
        connection
            .writer
            .write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\n")?;
        Ok(connection)
    }

    /// Reads one protocol line (without CR LF); fails past the deadline.
    fn line(&mut self) -> std::io::Result<String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in time"));
        }
        self.reader.get_ref().set_read_timeout(Some(left))?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    /// Sends one request (with a header block if `headers` is not empty)
    /// and returns the answer's payload.
    fn request(&mut self, subject: &str, headers: &str, payload: &str) -> std::io::Result<Vec<u8>> {
        let inbox = format!(
            "_INBOX.chatter_test.{}.{}",
            std::process::id(),
            NEXT_INBOX.fetch_add(1, Ordering::Relaxed)
        );
        // The server handles a connection's lines in order: the SUB is in
        // place before the request goes out.
        let publish = match headers {
            "" => format!("PUB {subject} {inbox} {}", payload.len()),
            _ => format!("HPUB {subject} {inbox} {} {}", headers.len(), headers.len() + payload.len()),
        };
        self.writer.write_all(format!("SUB {inbox} 1\r\n{publish}\r\n{headers}{payload}\r\n").as_bytes())?;
        loop {
            let line = self.line()?;
            // `MSG <subject> <sid> [reply-to] <size>` or `HMSG <subject>
            // <sid> [reply-to] <header size> <size>`. JetStream's
            // acknowledgements have an empty reply-to (two spaces).
            let words: Vec<&str> = line.split_whitespace().collect();
            let (skip, size) = match words.as_slice() {
                ["MSG", to, _sid, .., size] if *to == inbox => ("0", *size),
                ["HMSG", to, _sid, .., skip, size] if *to == inbox => (*skip, *size),
                ["PING"] => {
                    self.writer.write_all(b"PONG\r\n")?;
                    continue;
                }
                ["-ERR", ..] => return Err(std::io::Error::other(line)),
                _ => continue,
            };
            let number = |word: &str| word.parse::<usize>().map_err(std::io::Error::other);
            let (skip, size) = (number(skip)?, number(size)?);
            let mut message = vec![0; size + 2];
            self.reader.read_exact(&mut message)?;
            message.truncate(size);
            // The payload, after the header block if there is one.
            return Ok(message.split_off(skip.min(size)));
        }
    }
}

/// Why a server is not ready (yet).
enum NotReady {
    /// Still on its way; the text says what was missing, for the message
    /// should it never come.
    Yet(String),
    /// The process exited: waiting longer will not help.
    Exited(String),
}

/// Asks `ready` until it is Ok, at most [`NATS_PATIENCE`]; Err at once if a
/// process exited, or with the last reason once time is up.
fn wait_ready(what: &str, mut ready: impl FnMut() -> Result<(), NotReady>) -> Result<(), String> {
    let deadline = Instant::now() + NATS_PATIENCE;
    loop {
        match ready() {
            Ok(()) => return Ok(()),
            Err(NotReady::Exited(log)) => {
                return Err(format!("waiting for {what}: nats-server exited\n{log}"));
            }
            Err(NotReady::Yet(reason)) if Instant::now() > deadline => {
                return Err(format!("gave up waiting for {what}; last: {reason}"));
            }
            Err(NotReady::Yet(_)) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Runs a first start (`attempt`) until it does not fail for a port taken
/// by someone else; panics with the failure otherwise. A failed attempt is
/// dropped, which stops its processes and removes its directory.
fn start_with_fresh_ports<T>(mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let mut failure = String::new();
    for _ in 0..START_ATTEMPTS {
        match attempt() {
            Ok(started) => return started,
            Err(e) if e.contains("address already in use") => failure = e,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{START_ATTEMPTS} starts found their ports taken; the last:\n{failure}")
}

/// What every server here is started with: JetStream on, clients on
/// 127.0.0.1:`port`, its own name and store.
pub(super) fn server_args(name: &str, port: u16, store: &Path) -> Vec<String> {
    let store = store.to_str().expect("a UTF-8 temporary path");
    ["-js", "--addr", "127.0.0.1", "--port", &port.to_string(), "--server_name", name, "--store_dir", store]
        .map(String::from)
        .into()
}

/// `N` distinct ports free on 127.0.0.1 just now: bound together at port 0,
/// read back, let go.
pub(super) fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> =
        (0..N).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port")).collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("a bound address").port())
}

/// One nats-server: how it is started, and the process while it runs. Its
/// output goes to a log file next to its store, kept across restarts.
struct Process {
    name: String,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    /// Killed by the kernel when the thread that spawned it ends.
    dies_with_thread: bool,
}

impl Process {
    fn new(name: &str, args: Vec<String>, dir: &TempDir) -> Process {
        let log = dir.path.join(format!("{name}.log"));
        Process { name: name.to_string(), args, log, child: None, dies_with_thread: false }
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log =
            OpenOptions::new().create(true).append(true).open(&self.log).expect("open the nats-server log");
        let binary = binary().expect("nats-server is not installed (tests call nats::present() first)");
        let mut command = Command::new(binary);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log);
        if self.dies_with_thread {
            // SAFETY: the closure runs in the forked child before exec and
            // makes only a prctl system call, which is async-signal-safe;
            // it allocates nothing and takes no lock.
            unsafe {
                command.pre_exec(|| {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
                    Ok(())
                });
            }
        }
        let child = command.spawn().expect("start nats-server");
        self.child = Some(child);
    }

    /// Ok while the process runs; Exited with the end of its log otherwise.
    fn running(&mut self) -> Result<(), NotReady> {
        let exited = match &mut self.child {
            None => "was not started".to_string(),
            Some(child) => match child.try_wait().expect("wait for nats-server") {
                None => return Ok(()),
                Some(status) => format!("exited ({status})"),
            },
        };
        Err(NotReady::Exited(format!("{} {exited}; the end of its log:\n{}", self.name, self.log_tail())))
    }

    /// SIGTERM (a clean shutdown: JetStream writes out what it holds) and
    /// waits, bounded, until the process has exited.
    fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if child.try_wait().expect("wait for nats-server").is_none() {
            // Not reaped yet, so the PID is still this process's.
            super::signal(child.id(), "TERM");
            super::wait_until(&format!("{} to exit after SIGTERM", self.name), || {
                child.try_wait().expect("wait for nats-server").is_some()
            });
        }
    }

    /// SIGKILL, and reaps it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir {
    path: PathBuf,
}

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("chatter-nats-{what}-{}-{n}", std::process::id()));
        // A leftover of an earlier run whose process had this PID.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

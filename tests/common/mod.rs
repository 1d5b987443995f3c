//! Test harness: start a real chatter process on an ephemeral port and talk
//! to it over TCP like a client would.
//!
//! Every behaviour test is written once, as `fn name(model: Model)`, and
//! listed in [`all_models!`], which makes one `#[test]` per model. Adding a
//! model to the server means adding one line to that macro.
//!
//! Waiting is always "until this line arrives" with a generous deadline that
//! only exists so that a broken server fails the test instead of hanging it;
//! nothing asserts how fast anything happens. To show that something did
//! *not* arrive, a client uses [`Client::sync`]: it PINGs and reads up to the
//! PONG, and the server handles a connection's lines in order.

#![allow(dead_code)]

pub mod nats;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long to wait for something that should come; only a broken server
/// ever waits this long.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The longest line IRC allows, CR LF included.
pub const MAX_LINE_BYTES: usize = 512;

/// The longest tag section IRCv3 allows a server to send, its `@` and
/// the space after it included.
pub const MAX_TAGS_BYTES: usize = 8191;

/// The concurrency models a test body runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    Iterative,
    Prethread,
    Prefork,
}

/// Pool models run with two workers, so cross-worker paths are exercised.
pub const POOL_WORKERS: usize = 2;

impl Model {
    pub fn args(self) -> Vec<String> {
        let pool =
            |name: &str| vec!["--model".into(), name.into(), "--workers".into(), POOL_WORKERS.to_string()];
        match self {
            Model::Iterative => vec!["--model".into(), "iterative".into()],
            Model::Prethread => pool("prethread"),
            Model::Prefork => pool("prefork"),
        }
    }
}

/// One `#[test]` per model for each listed test body `fn body(model: Model)`.
#[macro_export]
macro_rules! all_models {
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
    };
}

/// A chatter process; killed on drop if the test did not stop it.
pub struct Server {
    child: Child,
    pub addr: String,
    pub model: Model,
}

impl Server {
    pub fn start(model: Model) -> Server {
        Server::start_with(model, &[])
    }

    pub fn start_with(model: Model, extra: &[&str]) -> Server {
        Server::spawn(Command::new(env!("CARGO_BIN_EXE_chatter")), model, extra, Stdio::inherit())
    }

    /// Starts chatter with its log (stderr) written to `log`, for a test
    /// that waits for something only the log tells.
    pub fn start_logged(model: Model, extra: &[&str], log: &std::path::Path) -> Server {
        let file = std::fs::File::create(log).expect("create the log file");
        Server::spawn(Command::new(env!("CARGO_BIN_EXE_chatter")), model, extra, Stdio::from(file))
    }

    /// Starts chatter with at most `open_files` descriptors (set by the
    /// shell that execs it, so the server cannot raise it) and its log
    /// written to `log`.
    pub fn start_limited(model: Model, extra: &[&str], open_files: u64, log: &std::path::Path) -> Server {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {open_files} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_chatter"));
        let file = std::fs::File::create(log).expect("create the log file");
        Server::spawn(command, model, extra, Stdio::from(file))
    }

    fn spawn(mut command: Command, model: Model, extra: &[&str], stderr: Stdio) -> Server {
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(model.args())
            .args(extra)
            // CHATTER_TEST_LOG=info shows what the server did, for debugging.
            .env("RUST_LOG", std::env::var("CHATTER_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command.spawn().expect("start chatter");
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first).expect("read the listening line");
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from chatter: {first:?}"))
            .to_string();
        Server { child, addr, model }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn connect(&self) -> Client {
        Client::connect(&self.addr)
    }

    /// Sends a signal and waits for the process to exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill failed");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for chatter") {
                return status;
            }
            assert!(Instant::now() < deadline, "chatter did not exit after SIG{signal}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(0);

/// A line-oriented TCP client with everything it received kept for asserts.
pub struct Client {
    stream: TcpStream,
    pending: Vec<u8>,
    /// Every line received so far, in order.
    pub seen: Vec<String>,
    /// Lines not yet consumed by an `expect`.
    unread: std::collections::VecDeque<String>,
    pub nick: String,
}

impl Client {
    pub fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to chatter");
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        Client {
            stream,
            pending: Vec::new(),
            seen: Vec::new(),
            unread: Default::default(),
            nick: String::new(),
        }
    }

    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send to chatter");
    }

    /// Reads what is available; false when the server closed the connection.
    fn fill(&mut self) -> bool {
        let mut buf = [0u8; 65536];
        match self.stream.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                    let raw: Vec<u8> = self.pending.drain(..=end).collect();
                    // Every test checks this of every line it receives: no
                    // line chatter writes is longer than IRC allows (the
                    // IRCv3 tags before it have a limit of their own).
                    let tags = if raw.first() == Some(&b'@') {
                        raw.iter().position(|b| *b == b' ').map_or(0, |space| space + 1)
                    } else {
                        0
                    };
                    assert!(tags <= MAX_TAGS_BYTES, "{}: {tags} bytes of tags", self.nick);
                    assert!(
                        raw.len() - tags <= MAX_LINE_BYTES,
                        "{}: a {}-byte line: {:?}",
                        self.nick,
                        raw.len(),
                        String::from_utf8_lossy(&raw)
                    );
                    let line = String::from_utf8_lossy(&raw).trim_end_matches(['\r', '\n']).to_string();
                    self.seen.push(line.clone());
                    self.unread.push_back(line);
                }
                true
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                true
            }
            Err(_) => false,
        }
    }

    /// The next unread line that satisfies `matches`; lines before it are
    /// consumed. Panics (showing what came) if it does not arrive.
    pub fn expect(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        self.expect_within(PATIENCE, what, matches)
    }

    /// [`expect`](Self::expect) with more patience, for what waits on
    /// something slow to recover (a NATS cluster electing leaders).
    pub fn expect_within(
        &mut self,
        patience: Duration,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + patience;
        loop {
            while let Some(line) = self.unread.pop_front() {
                if matches(&line) {
                    return line;
                }
            }
            let open = self.fill();
            if self.unread.is_empty() && (!open || Instant::now() > deadline) {
                panic!(
                    "{}: expected {what}, {}; received:\n  {}",
                    self.nick,
                    if open { "timed out" } else { "connection closed" },
                    self.seen.join("\n  ")
                );
            }
        }
    }

    /// The next line containing `needle`.
    pub fn expect_line(&mut self, needle: &str) -> String {
        self.expect(&format!("a line containing {needle:?}"), |l| l.contains(needle))
    }

    /// The next numeric reply `code` (e.g. "433").
    pub fn expect_numeric(&mut self, code: &str) -> String {
        self.expect(&format!("numeric {code}"), |l| numeric_of(l) == Some(code))
    }

    /// Round-trips a PING and returns the lines that came before its PONG.
    /// Everything the server had queued for us before it read the PING is
    /// among them.
    pub fn sync(&mut self) -> Vec<String> {
        let token = format!("sync{}", NEXT_TOKEN.fetch_add(1, Ordering::Relaxed));
        self.send(&format!("PING {token}"));
        let mut before = Vec::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            while let Some(line) = self.unread.pop_front() {
                if line.contains("PONG") && line.ends_with(&token) {
                    return before;
                }
                before.push(line);
            }
            let open = self.fill();
            assert!(
                open && Instant::now() < deadline,
                "{}: no PONG for {token}; received:\n  {}",
                self.nick,
                self.seen.join("\n  ")
            );
        }
    }

    /// Asserts that nothing the server had queued for us (see [`sync`])
    /// contains `needle`.
    ///
    /// [`sync`]: Client::sync
    pub fn expect_no_line(&mut self, needle: &str) {
        let seen = self.sync();
        assert!(!seen.iter().any(|l| l.contains(needle)), "{}: unexpected {needle:?} in {seen:?}", self.nick);
    }

    /// Reads until the server closes the connection; returns the unread lines.
    pub fn read_to_close(&mut self) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        while self.fill() {
            assert!(
                Instant::now() < deadline,
                "{}: connection not closed; received:\n  {}",
                self.nick,
                self.seen.join("\n  ")
            );
        }
        self.unread.drain(..).collect()
    }

    /// The socket, for tests that read and write it themselves from here on
    /// (lines already received but not consumed are dropped).
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Registers as an IRC client and waits for the end of the welcome burst.
    pub fn register(server: &Server, nick: &str) -> Client {
        let mut client = server.connect();
        client.nick = nick.to_string();
        client.send(&format!("NICK {nick}"));
        client.send(&format!("USER {nick} 0 * :{nick} Test"));
        client.expect_numeric("001");
        client.expect("end of MOTD", |l| matches!(numeric_of(l), Some("376" | "422")));
        client
    }

    /// Registers having negotiated the IRCv3 capabilities `caps`
    /// (space-separated; none if empty) with `CAP LS 302`.
    pub fn register_with_caps(server: &Server, nick: &str, caps: &str) -> Client {
        let mut c = server.connect();
        c.nick = nick.to_string();
        c.send("CAP LS 302");
        c.expect_line("CAP * LS");
        c.send(&format!("NICK {nick}"));
        c.send(&format!("USER {nick} 0 * :{nick} Test"));
        if !caps.is_empty() {
            c.send(&format!("CAP REQ :{caps}"));
            c.expect_line(&format!("CAP {nick} ACK :{caps}"));
        }
        c.send("CAP END");
        c.expect_numeric("001");
        c.expect("end of MOTD", |l| matches!(numeric_of(l), Some("376" | "422")));
        c
    }

    /// Connects as a plain (nc-style) client named `name`.
    pub fn plain(server: &Server, name: &str) -> Client {
        let mut client = server.connect();
        client.nick = name.to_string();
        // A person would wait for the hint to type a name; a test need not.
        client.expect_line("Welcome to chatter");
        client.send(name);
        client.expect_line(&format!("*** {name} joined #lobby"));
        client.expect_line("*** In #lobby:");
        client
    }

    /// JOINs and waits for the end of NAMES.
    pub fn join(&mut self, channel: &str) {
        self.send(&format!("JOIN {channel}"));
        self.expect("end of NAMES", |l| numeric_of(l) == Some("366") && l.contains(channel));
    }
}

/// The numeric code of a server reply line, if it is one.
pub fn numeric_of(line: &str) -> Option<&str> {
    let line = if line.starts_with('@') { line.split_once(' ')?.1 } else { line };
    let mut parts = line.split(' ');
    let first = parts.next()?;
    let code = if first.starts_with(':') { parts.next()? } else { first };
    (code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// Which pool worker (number, pid) a client landed on, from its greeting
/// ("*** Welcome to chatter (worker 2, pid 1234)! ...").
pub fn worker_of(greeting: &str) -> Option<(u32, u32)> {
    let rest = greeting.split_once("(worker ")?.1;
    let (worker, rest) = rest.split_once(", pid ")?;
    let pid = rest.split_once(')')?.0;
    Some((worker.parse().ok()?, pid.parse().ok()?))
}

impl Client {
    /// Connects and reads the greeting; returns the pool worker it names.
    pub fn connect_to_worker(server: &Server) -> (Client, (u32, u32)) {
        let mut client = server.connect();
        let greeting = client.expect_line("Welcome to chatter");
        let worker = worker_of(&greeting).unwrap_or_else(|| panic!("greeting names no worker: {greeting}"));
        (client, worker)
    }

    /// Registers an already connected client as an IRC user.
    pub fn register_as(&mut self, nick: &str) {
        self.nick = nick.to_string();
        self.send(&format!("NICK {nick}"));
        self.send(&format!("USER {nick} 0 * :{nick} Test"));
        self.expect_numeric("001");
        self.expect("end of MOTD", |l| matches!(numeric_of(l), Some("376" | "422")));
    }
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

//! The test client: a line-oriented connection (TCP, TLS or WebSocket, see
//! `wire`) that keeps everything it received, and waits for lines with a
//! deadline only a broken server reaches (see the harness's module
//! comment). Apart from `Server` because a test talks to the server only
//! through it, and it is most of what the tests call.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

use super::wire::{ClientStream, Frames, Secure};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{MAX_LINE_BYTES, MAX_TAGS_BYTES, PATIENCE, Server};

static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(0);

/// A line-oriented TCP client with everything it received kept for asserts.
pub struct Client {
    stream: ClientStream,
    pending: Vec<u8>,
    /// Every line received so far, in order.
    pub seen: Vec<String>,
    /// Lines not yet consumed by an `expect`.
    unread: std::collections::VecDeque<String>,
    pub nick: String,
    /// Connected to one node of a cluster by [`Server::connect`]: what
    /// other nodes' clients do reaches it later than its own answers (see
    /// [`Client::sync`]).
    pub(super) across_nodes: bool,
    /// Has received 001: an IRC client with a user in the directory.
    registered: bool,
}

impl Client {
    pub fn connect(addr: &str) -> Client {
        Client::over(ClientStream::Direct(Secure::Plain(
            TcpStream::connect(addr).expect("connect to chatter"),
        )))
    }

    /// Connects over TLS, trusting the tests' certificate.
    pub fn connect_tls(addr: &str) -> Client {
        let socket = TcpStream::connect(addr).expect("connect to chatter");
        Client::over(ClientStream::Direct(Secure::tls(socket)))
    }

    /// Connects over a WebSocket (inside TLS if `tls`), offering
    /// `subprotocols` and sending lines as `frames`.
    pub fn connect_web(addr: &str, tls: bool, subprotocols: &[&str], frames: Frames) -> Client {
        let socket = TcpStream::connect(addr).expect("connect to chatter");
        // The handshake blocks: bounded, as every wait here.
        socket.set_read_timeout(Some(PATIENCE)).unwrap();
        let secure = if tls { Secure::tls(socket) } else { Secure::Plain(socket) };
        Client::over(ClientStream::web(secure, addr, subprotocols, frames))
    }

    fn over(stream: ClientStream) -> Client {
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        Client {
            stream,
            pending: Vec::new(),
            seen: Vec::new(),
            unread: Default::default(),
            nick: String::new(),
            across_nodes: false,
            registered: false,
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
                    self.registered |= numeric_of(&line) == Some("001");
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
    ///
    /// On a cluster that is not yet everything other clients made happen
    /// before: their nodes put their events in the network's order, and
    /// this client's node applies that order at its own pace. So a
    /// registered IRC client on a cluster first sends `MONITOR -` of a
    /// nick no one has, which changes nothing and answers nothing but is
    /// an event: it goes through the network's order, and the node reads
    /// the PING only once that event has come back, by which time it has
    /// applied everything ordered before it. Every event another client
    /// had seen the effect of (an answer, or its own `sync`) is among
    /// those, so what follows from it has been queued for us before the
    /// PONG, as on a single server.
    pub fn sync(&mut self) -> Vec<String> {
        let token = format!("sync{}", NEXT_TOKEN.fetch_add(1, Ordering::Relaxed));
        if self.across_nodes && self.registered {
            self.send("MONITOR - harness-sync");
        }
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

    /// Sends a query (`TOPIC #c`, `NAMES`, `WHOIS`) and returns what came
    /// back before [`sync`]'s PONG. On a cluster the query is answered
    /// from this client's node as it is when the node reads it, so the
    /// barrier [`sync`] puts before its PING goes before the query too:
    /// the node then answers with everything other clients had seen the
    /// effect of already applied.
    ///
    /// [`sync`]: Client::sync
    pub fn ask(&mut self, query: &str) -> Vec<String> {
        if self.across_nodes && self.registered {
            self.send("MONITOR - harness-sync");
        }
        self.send(query);
        self.sync()
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
    pub fn into_stream(self) -> ClientStream {
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

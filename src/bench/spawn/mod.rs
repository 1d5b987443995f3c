//! The servers `chatter bench` starts for a run, and stops again: one
//! chatter server (`--spawn`), or a network of chatter nodes with the
//! nats-server that carries their log ([`cluster`], `--spawn --nodes`).
//!
//! Why it is shaped so: the load code (`load`, `run`) measures any server
//! at any addresses with any PIDs, and must not care who started it; what
//! starting one takes (ports, temporary stores, waiting until it answers,
//! pinning, stopping everything by PID in the right order) lives here. Each
//! started process is owned by a value that stops it when dropped, so a
//! run that fails half-way leaves nothing behind, and every wait is
//! bounded: a server that never says it is listening, or never answers, is
//! stopped and reported rather than waited for.

pub(crate) mod cluster;
pub(crate) mod nats;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::bench::tls::PairDir;
use crate::server::Model;

/// How long a started process may take to say where it listens, and a
/// node to register a first client.
const START_PATIENCE: Duration = Duration::from_secs(60);

/// A model's name as `chatter serve --model` takes it and the report shows it.
pub(crate) fn model_name(model: Model) -> String {
    clap::ValueEnum::to_possible_value(&model).map_or_else(String::new, |v| v.get_name().to_string())
}

/// A port free on 127.0.0.1 just now (bound at port 0, read back, let go).
pub(crate) fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `program`, under `taskset -c CPU` when pinned. taskset execs the
/// program, so the child's PID is the program's.
pub(crate) fn pinned_command(program: &Path, cpu: Option<usize>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// The chatter executable to start: this one. Under `cargo test` this
/// process is a test harness, so the tests start the `chatter` cargo built
/// beside it (`target/PROFILE/chatter`, from `target/PROFILE/deps/`), and
/// fail with `NotFound` where there is none (`cargo test --lib` alone
/// may not build it).
pub(crate) fn chatter_exe() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    if !cfg!(test) {
        return Ok(exe);
    }
    exe.parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("chatter"))
        .filter(|bin| bin.is_file())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no chatter binary beside the tests"))
}

/// A chatter server this process started; stopped (SIGTERM, then SIGKILL)
/// when dropped, and then the pair it served TLS with (if it did) removed.
pub(crate) struct SpawnedServer {
    child: Child,
    pub(crate) addr: SocketAddr,
    // Held for its `Drop`, after the server's: the files go when it has stopped.
    #[allow(dead_code)]
    pair: Option<PairDir>,
}

impl SpawnedServer {
    /// `chatter serve --model MODEL` on an ephemeral port of 127.0.0.1,
    /// without flood control (a benchmark floods on purpose: measure the
    /// server, not its limits), with `extra` arguments after the rest.
    pub(crate) fn start(
        model: Model,
        workers: Option<usize>,
        cpu: Option<usize>,
        max_clients: usize,
        extra: &[String],
    ) -> io::Result<Self> {
        let listen = ["--listen", "127.0.0.1:0"].map(String::from);
        Self::launch(model, workers, cpu, max_clients, &listen, extra, "", None)
    }

    /// The same, serving TLS only (`--listen none --tls-listen
    /// 127.0.0.1:0`) with a pair made for it; `addr` is the TLS listener's.
    pub(crate) fn start_tls(
        model: Model,
        workers: Option<usize>,
        cpu: Option<usize>,
        max_clients: usize,
        pair: PairDir,
    ) -> io::Result<Self> {
        let listen = tls_listen_args(&pair);
        Self::launch(model, workers, cpu, max_clients, &listen, &[], "tls://", Some(pair))
    }

    #[allow(clippy::too_many_arguments)]
    fn launch(
        model: Model,
        workers: Option<usize>,
        cpu: Option<usize>,
        max_clients: usize,
        listen: &[String],
        extra: &[String],
        scheme: &str,
        pair: Option<PairDir>,
    ) -> io::Result<Self> {
        let exe = chatter_exe()?;
        let mut command = pinned_command(&exe, cpu);
        command.arg("serve").args(listen).args(["--model", &model_name(model)]);
        if let Some(workers) = workers {
            command.args(["--workers", &workers.to_string()]);
        }
        command
            .args(["--max-clients", &max_clients.to_string()])
            .arg("--no-flood-control")
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| io::Error::other("no stdout"))?;
        let first = match first_line(stdout, START_PATIENCE) {
            Ok(line) => line,
            Err(e) => {
                stop_child(&mut child);
                return Err(e);
            }
        };
        let Some(addr) = announced(&first, scheme) else {
            stop_child(&mut child);
            return Err(io::Error::other(format!("chatter did not start: {first:?}")));
        };
        Ok(SpawnedServer { child, addr, pair })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The flags that make a server listen for TLS only, on a free port, with `pair`.
fn tls_listen_args(pair: &PairDir) -> Vec<String> {
    let path = |p: &Path| p.display().to_string();
    vec![
        "--listen".into(),
        "none".into(),
        "--tls-listen".into(),
        "127.0.0.1:0".into(),
        "--tls-cert".into(),
        path(&pair.cert),
        "--tls-key".into(),
        path(&pair.key),
    ]
}

/// The address in a server's `listening on SCHEME ADDR` line, e.g.
/// `listening on tls://127.0.0.1:6697` with scheme `tls://`.
fn announced(line: &str, scheme: &str) -> Option<SocketAddr> {
    let rest = line.trim().strip_prefix("listening on ")?.strip_prefix(scheme)?;
    rest.trim_end_matches('/').parse().ok()
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// Stops a child by its PID and reaps it.
fn stop_child(child: &mut Child) {
    stop_pid(child.id());
    let _ = child.wait();
}

/// The first line `output` gives within `patience`. A thread reads it, and
/// goes on reading (and dropping) whatever follows until the end, so the
/// process never writes into a closed pipe.
fn first_line(output: impl Read + Send + 'static, patience: Duration) -> io::Result<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new().name("first-line".into()).spawn(move || {
        let mut reader = BufReader::new(output);
        let mut line = String::new();
        let read = reader.read_line(&mut line).map(|_| line);
        let _ = tx.send(read);
        let _ = io::copy(&mut reader, &mut io::sink());
    })?;
    match rx.recv_timeout(patience) {
        Ok(read) => read,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("said nothing on stdout within {} s", patience.as_secs()),
        )),
    }
}

/// Registers one IRC client as `nick` at `addr` and quits again: a chatter
/// node that has done that has joined its network and serves. Bounded by
/// `patience`.
pub(crate) fn registers(addr: SocketAddr, nick: &str, patience: Duration) -> io::Result<()> {
    let deadline = Instant::now() + patience;
    let mut stream = TcpStream::connect_timeout(&addr, patience)?;
    stream.write_all(format!("NICK {nick}\r\nUSER {nick} 0 * :chatter bench probe\r\n").as_bytes())?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("{addr} did not register {nick}")));
        }
        stream.set_read_timeout(Some(left))?;
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{addr} closed: {nick}")));
        }
        if line.split(' ').nth(1) == Some("001") {
            let _ = stream.write_all(b"QUIT :probe done\r\n");
            return Ok(());
        }
        if let Some(token) = line.trim_end().strip_prefix("PING ") {
            stream.write_all(format!("PONG {token}\r\n").as_bytes())?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_is_read_within_the_patience_or_not_at_all() {
        let line = first_line(&b"listening on 127.0.0.1:1\nmore\n"[..], Duration::from_secs(1)).unwrap();
        assert_eq!(line, "listening on 127.0.0.1:1\n");
        // A pipe nobody writes to: the wait ends, with a plain error.
        let (reader, _writer) = std::io::pipe().unwrap();
        let err = first_line(reader, Duration::from_millis(50)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn the_announced_address_is_the_listener_asked_for() {
        let tls = "listening on tls://127.0.0.1:6697\n";
        assert_eq!(announced(tls, "tls://"), Some("127.0.0.1:6697".parse().unwrap()));
        assert_eq!(announced(tls, ""), None);
        assert_eq!(announced("listening on 127.0.0.1:6667\n", ""), Some("127.0.0.1:6667".parse().unwrap()));
        assert_eq!(announced("listening on 127.0.0.1:6667\n", "tls://"), None);
        assert_eq!(
            announced("listening on ws://127.0.0.1:8080/", "ws://"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(announced("error: bad flag", "tls://"), None);
        let pair = PairDir::make().unwrap();
        let args = tls_listen_args(&pair);
        assert_eq!(args[..4], ["--listen", "none", "--tls-listen", "127.0.0.1:0"]);
        assert_eq!(args[5], pair.cert.display().to_string());
    }

    #[test]
    fn a_process_that_exits_is_no_longer_alive() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(is_alive(pid));
        stop_pid(pid);
        let _ = child.wait();
        assert!(!is_alive(pid));
    }
}

//! A nats-server with JetStream that the bench starts for a run: on a free
//! port of 127.0.0.1, its store in a temporary directory of its own, so
//! every run's network starts from an empty stream and nothing of a run is
//! left behind; stopped by its PID and its directory removed when dropped.
//!
//! Why it is shaped so: a benchmark must never join a log someone else is
//! using (another engineer's test server on a well-known port, a previous
//! run's stream), so the port is always one just found free and the store
//! always fresh. Readiness is asked, not assumed after a delay: the server
//! is ready when a client connecting to it is greeted with an `INFO` that
//! says JetStream is on. It speaks just that much NATS itself, so it needs
//! no client library.

use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{free_port, pinned_command, stop_pid};

/// How long a nats-server may take to answer with JetStream on.
const READY_PATIENCE: Duration = Duration::from_secs(30);

/// Tries at a fresh port when another process took the one found free.
const START_ATTEMPTS: usize = 3;

/// Where Debian installs nats-server (`/usr/sbin`, which a user's PATH may
/// not hold), after the PATH.
fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

/// Whether tests that need a real nats-server can run here. Where it is
/// not installed they are skipped (saying so), unless
/// `CHATTER_REQUIRE_NATS` is set, as CI sets it for the cluster tests:
/// there a missing nats-server fails them.
#[cfg(test)]
pub(crate) fn available_for_tests() -> bool {
    if find_binary().is_some() {
        return true;
    }
    assert!(std::env::var_os("CHATTER_REQUIRE_NATS").is_none(), "nats-server is required here");
    eprintln!("skipped: nats-server is not installed (apt-get install nats-server)");
    false
}

/// A running nats-server and its temporary directory.
pub(crate) struct SpawnedNats {
    child: Child,
    port: u16,
    dir: PathBuf,
}

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

impl SpawnedNats {
    /// Starts `binary` (or the nats-server on PATH or in /usr/sbin) with
    /// JetStream, pinned to `cpu` if given, and waits until it is ready.
    pub(crate) fn start(binary: Option<&Path>, cpu: Option<usize>) -> io::Result<SpawnedNats> {
        let binary = match binary {
            Some(binary) => binary.to_path_buf(),
            None => find_binary().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "nats-server is not installed (apt-get install nats-server), or give --nats-server PATH",
                )
            })?,
        };
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&binary, cpu) {
                Ok(nats) => return Ok(nats),
                // Another process may have taken the port: try a new one.
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("nats-server did not start")))
    }

    fn start_once(binary: &Path, cpu: Option<usize>) -> io::Result<SpawnedNats> {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("chatter-bench-nats-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(dir.join("nats-server.log"))?;
        let port = free_port()?;
        let store = dir.join("store");
        let child = pinned_command(binary, cpu)
            .args(["-js", "--addr", "127.0.0.1", "--port", &port.to_string(), "--server_name", "bench"])
            .arg("--store_dir")
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(io::Error::new(e.kind(), format!("cannot run {}: {e}", binary.display())));
            }
        };
        // Owned from here on: an error below stops it and removes the store.
        let mut nats = SpawnedNats { child, port, dir };
        nats.wait_ready()?;
        Ok(nats)
    }

    /// `nats://127.0.0.1:PORT`, as `--cluster` takes it.
    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + READY_PATIENCE;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "nats-server exited ({status}); its log: {}",
                    self.log_tail()
                )));
            }
            match jetstream_info(addr) {
                Ok(true) => return Ok(()),
                Ok(false) => return Err(io::Error::other("nats-server answers without JetStream")),
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "nats-server on port {} not ready in {} s: {e}",
                            self.port,
                            READY_PATIENCE.as_secs()
                        ),
                    ));
                }
            }
        }
    }

    /// The last lines of the server's log, for an error message.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("nats-server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(3)..].join(" | ")
    }
}

impl Drop for SpawnedNats {
    fn drop(&mut self) {
        stop_pid(self.child.id());
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Connects to a NATS server and reads its greeting: `Ok(true)` when its
/// `INFO` says JetStream is on.
fn jetstream_info(addr: SocketAddr) -> io::Result<bool> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    info_has_jetstream(&line)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("not a NATS greeting: {line:?}")))
}

/// Whether an `INFO {...}` greeting says `"jetstream":true`; `None` if the
/// line is no `INFO` with a JSON object.
fn info_has_jetstream(line: &str) -> Option<bool> {
    let json = line.trim_end().strip_prefix("INFO ")?;
    let info: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(info.get("jetstream").and_then(serde_json::Value::as_bool).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_greeting_says_whether_jetstream_is_on() {
        let on = "INFO {\"server_id\":\"N\",\"version\":\"2.9.10\",\"jetstream\":true,\"port\":4222} \r\n";
        assert_eq!(info_has_jetstream(on), Some(true));
        assert_eq!(info_has_jetstream("INFO {\"version\":\"2.9.10\"}\r\n"), Some(false));
        assert_eq!(info_has_jetstream("-ERR 'Authorization Violation'\r\n"), None);
        assert_eq!(info_has_jetstream("INFO {not json"), None);
    }

    /// Where nats-server is installed: it starts, answers, and is gone
    /// with its directory when dropped.
    #[test]
    fn a_spawned_server_is_ready_and_leaves_nothing_behind() {
        if !available_for_tests() {
            return;
        }
        let nats = SpawnedNats::start(None, None).unwrap();
        let (pid, dir) = (nats.pid(), nats.dir.clone());
        assert!(nats.url().starts_with("nats://127.0.0.1:"));
        assert!(super::super::is_alive(pid) && dir.is_dir());
        drop(nats);
        assert!(!super::super::is_alive(pid));
        assert!(!dir.exists());
    }
}

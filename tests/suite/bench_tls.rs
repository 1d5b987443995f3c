//! The TLS bench end to end, as a user runs it: `chatter cert` makes a
//! pair, `chatter serve` serves TLS with it, and `chatter bench --tls`
//! measures it trusting that certificate (`--tls-ca`); and `chatter bench
//! --spawn --tls`, which makes its own pair, for deliveries and for the
//! rate of new clients.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

fn chatter() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chatter"));
    command.env("RUST_LOG", "warn");
    command
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chatter-bench-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A server this test started, killed (by its PID) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bench_json(args: &[&str]) -> serde_json::Value {
    let out = chatter().arg("bench").args(args).arg("--json").stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{args:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap()
}

#[test]
fn a_server_serving_chatter_certs_pair_is_measured_trusting_it() {
    let dir = temp_dir("target");
    let made = chatter().arg("cert").current_dir(&dir).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let mut child = chatter()
        .args(["serve", "--listen", "none", "--tls-listen", "127.0.0.1:0", "--model", "prethread"])
        .args([
            "--workers",
            "1",
            "--tls-cert",
            "chatter.crt",
            "--tls-key",
            "chatter.key",
            "--no-flood-control",
        ])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let _server = Server(child);
    let addr = first.trim().strip_prefix("listening on tls://").unwrap_or_else(|| panic!("{first:?}"));
    let ca = dir.join("chatter.crt");
    let ca = ca.to_str().unwrap();

    let result = bench_json(&[
        "--target",
        addr,
        "--tls",
        "--tls-ca",
        ca,
        "--clients",
        "4",
        "--senders",
        "2",
        "--messages",
        "10",
    ]);
    assert_eq!(result["delivered"], 2 * 10 * 3);
    assert_eq!(result["lost"], 0);
    assert_eq!(result["spec"]["tls"]["verified"], true);
    assert!(result["tls_session"].as_str().unwrap().starts_with("TLSv1_3"), "{result}");

    // Without saying what to trust, a --target over TLS is refused.
    let untold = chatter().args(["bench", "--target", addr, "--tls", "--clients", "2"]).output().unwrap();
    assert!(!untold.status.success());
    assert!(String::from_utf8_lossy(&untold.stderr).contains("--tls-ca"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_spawned_server_is_measured_over_tls() {
    let result = bench_json(&[
        "--spawn",
        "prefork",
        "--workers",
        "1",
        "--tls",
        "--clients",
        "5",
        "--senders",
        "2",
        "--messages",
        "10",
    ]);
    assert_eq!(result["delivered"], 2 * 10 * 4);
    assert_eq!(result["disconnected"], 0);
    let trust = result["spec"]["tls"]["trust"].as_str().unwrap();
    assert!(trust.contains("the certificate the bench made"), "{trust}");

    let burst = bench_json(&[
        "--spawn",
        "iterative",
        "--tls",
        "--handshakes",
        "--clients",
        "40",
        "--connect-concurrency",
        "10",
    ]);
    assert_eq!(burst["completed"], 40);
    assert_eq!(burst["failures"].as_array().map(Vec::len), Some(0));
    assert!(burst["per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(burst["tls_latency"]["count"], 40);

    let plain = bench_json(&["--spawn", "iterative", "--handshakes", "--clients", "40"]);
    assert_eq!(plain["completed"], 40);
    assert!(plain.get("tls").is_none() && plain.get("tls_latency").is_none(), "{plain}");
}

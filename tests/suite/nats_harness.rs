//! Tests of the NATS harness itself (tests/suite/common/nats.rs), so that a
//! cluster test that fails points at chatter, not at its scaffolding: a
//! lone JetStream server keeps a stream across stop and restart; a
//! three-server cluster elects a meta leader, holds an R3 stream, keeps
//! taking writes with one server killed, and takes that server back, which
//! catches up; dropping either leaves no server and no store behind; and
//! the server a test binary shares among its cluster tests (see
//! tests/suite/common/cluster.rs) goes, with its store, when the binary exits or
//! is killed.
//!
//! They need nats-server (Debian `nats-server`); without it they skip, as
//! the cluster tests do, unless `CHATTER_REQUIRE_NATS` is set (CI).

use std::net::TcpStream;

use crate::common::nats::{self, Nats, NatsCluster, monitor, request, request_until_ok, wait_for};
use serde_json::Value;

/// Publishes message `id` to `subject` through `url` (asking again until
/// it is acknowledged; see [`nats::publish`]); returns the stream sequence
/// JetStream gave it.
fn publish(url: &str, subject: &str, id: &str) -> u64 {
    let ack = nats::publish(url, subject, id, id);
    ack["seq"].as_u64().unwrap_or_else(|| panic!("not a JetStream acknowledgement: {ack}"))
}

/// Whether nothing listens on `url` any more.
fn refused(url: &str) -> bool {
    TcpStream::connect(url.strip_prefix("nats://").expect("a nats:// URL")).is_err()
}

#[test]
fn a_lone_server_keeps_its_stream_across_stop_and_restart() {
    if !nats::present() {
        return;
    }
    let mut server = Nats::start();
    let url = server.url();
    assert_eq!(url, format!("nats://127.0.0.1:{}", server.port()));

    let created = request(
        &url,
        "$JS.API.STREAM.CREATE.harness",
        r#"{"name":"harness","subjects":["harness.>"],"storage":"file","num_replicas":1}"#,
    )
    .unwrap_or_else(|e| panic!("create the stream: {e}"));
    assert_eq!(created["config"]["name"], "harness", "{created}");
    assert_eq!(publish(&url, "harness.one", "kept"), 1);
    // What makes nats::publish safe to ask again: a repeated id is not stored twice.
    let again = nats::publish(&url, "harness.one", "kept", "kept");
    assert_eq!((&again["seq"], &again["duplicate"]), (&1.into(), &true.into()), "{again}");

    server.stop();
    assert!(request(&url, "$JS.API.INFO", "").is_err(), "a stopped server answered");

    server.restart();
    assert_eq!(server.url(), url, "the same port after a restart");
    let info =
        request(&url, "$JS.API.STREAM.INFO.harness", "").unwrap_or_else(|e| panic!("stream info: {e}"));
    assert_eq!(info["config"]["subjects"][0], "harness.>", "{info}");
    assert_eq!(info["state"]["messages"], 1, "the message is still stored: {info}");

    let store = server.store_dir();
    assert!(store.is_dir());
    drop(server);
    assert!(refused(&url), "the server still listens after drop");
    assert!(!store.exists(), "the store {} is still there after drop", store.display());
}

/// How many messages server `i` itself holds of `stream` (its own replica,
/// from its monitoring endpoint: a JetStream request would be answered by
/// the stream's leader).
fn local_messages(cluster: &NatsCluster, i: usize, stream: &str) -> Result<u64, String> {
    let jsz = monitor(cluster.http_port(i), "/jsz?streams=true")?;
    let streams = jsz["account_details"].as_array().into_iter().flatten().flat_map(|account| {
        account["stream_detail"].as_array().into_iter().flatten().collect::<Vec<&Value>>()
    });
    streams
        .filter(|s| s["name"] == stream)
        .find_map(|s| s["state"]["messages"].as_u64())
        .ok_or_else(|| format!("{} holds no {stream} stream yet", cluster.name(i)))
}

#[test]
fn a_cluster_keeps_answering_with_a_server_killed_and_takes_it_back() {
    if !nats::present() {
        return;
    }
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    assert_eq!(urls.split(',').count(), 3, "{urls}");
    assert!(urls.split(',').all(|u| u.starts_with("nats://127.0.0.1:")), "{urls}");
    for i in 0..3 {
        request(&cluster.url(i), "$JS.API.INFO", "")
            .unwrap_or_else(|e| panic!("JetStream through n{i}: {e}"));
    }

    // Asked again if unanswered: creating it again as it is changes nothing.
    let created = request_until_ok(
        &cluster.url(1),
        "$JS.API.STREAM.CREATE.log",
        r#"{"name":"log","subjects":["log.>"],"storage":"file","num_replicas":3}"#,
    );
    assert_eq!(created["config"]["num_replicas"], 3, "{created}");
    assert_eq!(created["cluster"]["replicas"].as_array().map(Vec::len), Some(2), "three copies: {created}");
    assert_eq!(publish(&cluster.url(2), "log.before", "before-the-kill"), 1);

    cluster.kill(0);
    // Whichever leaders n0 held, the other two elect new ones.
    request_until_ok(&cluster.url(1), "$JS.API.INFO", "");
    let info = request_until_ok(&cluster.url(1), "$JS.API.STREAM.INFO.log", "");
    assert_ne!(info["cluster"]["leader"], "n0", "a killed server answered: {info}");
    assert_eq!(publish(&cluster.url(2), "log.during", "during-the-kill"), 2);

    cluster.restart(0);
    request(&cluster.url(0), "$JS.API.INFO", "").unwrap_or_else(|e| panic!("JetStream through n0: {e}"));
    wait_for("n0 to catch up on the stream", || match local_messages(&cluster, 0, "log")? {
        2 => Ok(()),
        n => Err(format!("n0 holds {n} of the 2 messages")),
    });

    let all: Vec<String> = (0..3).map(|i| cluster.url(i)).collect();
    drop(cluster);
    for url in &all {
        assert!(refused(url), "{url} still listens after drop");
    }
}

/// Run only as a child process of
/// [`the_shared_server_dies_with_the_test_process`] (which sets
/// `CHILD_VAR`): starts this binary's shared nats-server, says its PID and
/// directory, then ends as the variable says: `exit` (the test returns and
/// the binary exits normally) or `wait` (it sleeps until it is killed).
#[test]
#[ignore = "a helper: run by the_shared_server_dies_with_the_test_process"]
fn shared_server_helper() {
    let Ok(how) = std::env::var(CHILD_VAR) else { return };
    let shared = crate::common::cluster::shared();
    // On the line libtest starts with the test's name.
    println!("{MARK}{} {}", shared.pid, shared.dir.display());
    if how == "wait" {
        std::thread::sleep(crate::common::PATIENCE);
    }
}

const CHILD_VAR: &str = "CHATTER_SHARED_NATS_HELPER";
const MARK: &str = "shared-nats: ";

/// The nats-server a test binary shares among its cluster tests outlives
/// every test, so nothing but the process's end can stop it: it must go,
/// and its store with it, when the binary exits and when it is killed.
#[test]
fn the_shared_server_dies_with_the_test_process() {
    if !nats::present() {
        return;
    }
    for how in ["exit", "wait"] {
        let mut child = std::process::Command::new(std::env::current_exe().expect("this test binary"))
            .args([
                "--exact",
                "nats_harness::shared_server_helper",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_VAR, how)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run the helper");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("its stdout"));
        let mut lines = std::io::BufRead::lines(stdout).map_while(Result::ok);
        let line = lines
            .by_ref()
            .find_map(|l| Some(l.split_once(MARK)?.1.to_string()))
            .expect("the helper names its shared server");
        let mut words = line.split(' ');
        let pid: u32 = words.next().and_then(|p| p.parse().ok()).expect("a PID");
        let dir = std::path::PathBuf::from(words.next().expect("a directory"));
        assert!(crate::common::is_running(pid), "{how}: the shared server is not running");
        assert!(dir.is_dir(), "{how}: no {}", dir.display());
        if how == "wait" {
            let _ = child.kill();
        }
        // Read to the end: a helper that cannot write fails.
        lines.for_each(drop);
        let status = child.wait().expect("wait for the helper");
        assert_eq!(status.success(), how == "exit", "{how}: the helper ended {status}");
        crate::common::wait_until(&format!("{how}: the shared server {pid} to be gone"), || {
            !crate::common::is_running(pid)
        });
        crate::common::wait_until(&format!("{how}: {} to be removed", dir.display()), || !dir.exists());
    }
}

//! Tests of the NATS harness itself (tests/common/nats.rs), so that a
//! cluster test that fails points at chatter, not at its scaffolding: a
//! lone JetStream server keeps a stream across stop and restart; a
//! three-server cluster elects a meta leader, holds an R3 stream, keeps
//! taking writes with one server killed, and takes that server back, which
//! catches up; dropping either leaves no server and no store behind.
//!
//! They need nats-server (Debian `nats-server`); without it they skip, as
//! the cluster tests do, unless `CHATTER_REQUIRE_NATS` is set (CI).

mod common;

use std::net::TcpStream;

use common::nats::{self, Nats, NatsCluster, monitor, request, request_until_ok, wait_for};
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

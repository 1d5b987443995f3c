//! The iterative and prethread models run inside the test process, stopped
//! by a `ShutdownHandle` instead of a signal: the server is a library call
//! with an injectable way to stop, so a test needs no process of its own
//! (prefork's workers are processes, so it stops on signals only: see
//! `tests/suite/prefork.rs` for its shutdown).

use std::sync::Arc;
use std::thread::JoinHandle;

use crate::common::Client;
use chatter::chat::ServerInfo;
use chatter::server::sendq::DEFAULT_SENDQ_BYTES;
use chatter::server::transport::{Endpoint, Kind};
use chatter::server::{self, Bound, Config, Model, Shutdown, ShutdownHandle};

struct InProcess {
    addr: String,
    handle: ShutdownHandle,
    thread: JoinHandle<std::io::Result<()>>,
}

/// A server's settings made in code: no file to reread, no flood control.
fn config(model: Model, workers: usize, max_clients: usize) -> Config {
    let mut info = ServerInfo::new("irc.test");
    info.connections.max_clients = max_clients;
    info.connections.flood = None;
    Config {
        listen: "127.0.0.1:0".into(),
        endpoints: vec![Endpoint { kind: Kind::Plain, addr: "127.0.0.1:0".into() }],
        tls: None,
        model,
        workers,
        info: Arc::new(info),
        sendq_bytes: DEFAULT_SENDQ_BYTES,
        reloader: None,
        cluster: None,
    }
}

fn start(model: Model) -> InProcess {
    let config = config(model, 2, 100);
    let bound = Bound::new(&config).expect("bind");
    let addr = bound.local_addr().expect("address").to_string();
    let (shutdown, handle) = Shutdown::by_handle().expect("a shutdown handle");
    let thread = std::thread::spawn(move || server::serve(config, bound, shutdown));
    InProcess { addr, handle, thread }
}

fn register(addr: &str, nick: &str) -> Client {
    let mut client = Client::connect(addr);
    client.send(&format!("NICK {nick}"));
    client.send(&format!("USER {nick} 0 * :{nick}"));
    client.expect_numeric("001");
    client
}

fn chat_then_shut_down(model: Model) {
    let server = start(model);
    let mut alice = register(&server.addr, "alice");
    let mut bob = register(&server.addr, "bob");
    alice.join("#room");
    bob.join("#room");
    alice.send("PRIVMSG #room :hello from inside the test process");
    bob.expect_line(":alice!alice@127.0.0.1 PRIVMSG #room :hello from inside the test process");

    server.handle.shut_down();
    for client in [&mut alice, &mut bob] {
        client.expect_line("ERROR :Closing Link: 127.0.0.1 (Server shutting down)");
    }
    server.thread.join().expect("the server thread ends").expect("serve returns Ok");
}

#[test]
fn iterative_serves_in_process_until_its_handle_stops_it() {
    chat_then_shut_down(Model::Iterative);
}

#[test]
fn prethread_serves_in_process_until_its_handle_stops_it() {
    chat_then_shut_down(Model::Prethread);
}

#[test]
fn prefork_refuses_a_handle_it_could_not_honour() {
    let config = config(Model::Prefork, 1, 10);
    let bound = Bound::new(&config).expect("bind");
    let (shutdown, _handle) = Shutdown::by_handle().expect("a shutdown handle");
    let err = server::serve(config, bound, shutdown).expect_err("prefork stops on signals only");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

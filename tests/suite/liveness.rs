//! Connections that hold a place without talking: the registration
//! timeout, PINGs for silent IRC clients (a byte is not a line), and plain
//! clients, who are never PINGed.

use crate::common::*;

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

/// Writes one byte every 100 ms (never a newline) until the server closes
/// the connection; returns everything the server sent.
fn trickle_until_closed(mut stream: wire::ClientStream) -> String {
    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        assert!(Instant::now() < deadline, "still open; received: {:?}", String::from_utf8_lossy(&received));
        // A write may fail once the server has closed: that is the end too.
        let _ = stream.write_all(b"x");
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

fn a_connection_that_never_registers_is_closed(model: Model) {
    let server = Server::start_with(model, &["--registration-timeout", "1"]);
    // Slowloris: bytes, never a line.
    let slow = server.connect();
    let got = trickle_until_closed(slow.into_stream());
    assert!(got.contains("*** Disconnected: Registration timed out\r\n"), "{got:?}");

    // An IRC client that starts registering and stops gets its ERROR line.
    let mut half = server.connect();
    half.send("NICK halfway");
    let closing = half.expect_line("ERROR");
    assert_eq!(closing, "ERROR :Closing Link: 127.0.0.1 (Registration timed out)");
    half.read_to_close();

    // Registered clients are not affected.
    let mut done = Client::register(&server, "done");
    std::thread::sleep(Duration::from_millis(1500));
    done.sync();
}

fn a_registered_client_trickling_bytes_is_pinged_and_dropped(model: Model) {
    let server = Server::start_with(model, &["--ping-interval", "1"]);
    // The watcher is a plain client: never PINGed, so it can sit silent.
    let mut watcher = Client::plain(&server, "watcher");
    let mut slow = Client::register(&server, "slow");
    slow.join("#lobby");
    let got = trickle_until_closed(slow.into_stream());
    assert!(got.contains("PING :chatter.local\r\n"), "{got:?}");
    assert!(got.ends_with("ERROR :Closing Link: 127.0.0.1 (Ping timeout: 2 seconds)\r\n"), "{got:?}");
    watcher.expect_line("*** slow left #lobby (Ping timeout: 2 seconds)");
}

fn plain_clients_are_never_pinged(model: Model) {
    let server = Server::start_with(model, &["--ping-interval", "1"]);
    let mut reader = Client::plain(&server, "reader");
    let mut irc = Client::register(&server, "ircy");
    irc.join("#lobby");
    // The IRC client is PINGed within the interval; answering keeps it.
    for _ in 0..2 {
        let ping = irc.expect_line("PING ");
        irc.send(&ping.replacen("PING", "PONG", 1));
    }
    irc.sync();
    // Meanwhile the plain client, silent for several intervals, was sent
    // no PING and is still there.
    reader.send("/names");
    let names = reader.expect_line("*** In #lobby: ");
    assert!(names.contains("reader") && names.contains("ircy"), "{names}");
    assert!(!reader.seen.iter().any(|l| l.contains("PING")), "{:?}", reader.seen);
    irc.send("PRIVMSG #lobby :still there?");
    reader.expect_line("ircy: still there?");
}

all_models!(
    a_connection_that_never_registers_is_closed,
    a_registered_client_trickling_bytes_is_pinged_and_dropped,
    plain_clients_are_never_pinged,
);

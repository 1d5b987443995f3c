//! Bad input, slow readers, idle clients, limits and shutdown: the server
//! answers clearly, keeps serving everyone else and stops cleanly.

use crate::common::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn too_long_line_is_refused_and_connection_survives(model: Model) {
    let server = Server::start(model);
    let mut alice = Client::register(&server, "alice");
    let mut bob = Client::register(&server, "bob");
    alice.join("#room");
    bob.join("#room");
    let long = format!("PRIVMSG #room :{}", "x".repeat(600));
    alice.send(&long);
    assert!(alice.expect_numeric("417").contains("Input line was too long"));
    // A line of exactly 512 bytes with CRLF is fine.
    let exact = format!("PRIVMSG #room :{}", "y".repeat(510 - "PRIVMSG #room :".len()));
    assert_eq!(exact.len(), 510);
    alice.send(&exact);
    alice.send("PRIVMSG #room :after the long one");
    let got = bob.expect_line("PRIVMSG #room :");
    assert!(got.ends_with(&"y".repeat(100)), "{got}");
    bob.expect_line("PRIVMSG #room :after the long one");
    assert!(!bob.seen.iter().any(|l| l.contains("xxxx")));
    // A huge line without a newline at all, then a normal one.
    alice.send_raw(&vec![b'z'; 100_000]);
    alice.send_raw(b"\r\nPRIVMSG #room :survived\r\n");
    alice.expect_numeric("417");
    bob.expect_line("PRIVMSG #room :survived");
}

fn garbage_does_not_disturb_others(model: Model) {
    let server = Server::start(model);
    let mut alice = Client::register(&server, "alice");
    let mut bob = Client::register(&server, "bob");
    let mut junk = server.connect();
    let mut noise = Vec::new();
    let mut seed: u32 = 12345;
    for _ in 0..20_000 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        noise.push((seed >> 16) as u8);
    }
    junk.send_raw(&noise);
    junk.send_raw(b"\r\n:only.a.prefix\r\n@tags=only\r\n \r\n\r\n:x PRIVMSG\r\n");
    alice.send("PRIVMSG bob :through the noise");
    bob.expect_line(":alice!alice@127.0.0.1 PRIVMSG bob :through the noise");
    drop(junk);
    alice.send("PRIVMSG bob :and after");
    bob.expect_line("and after");
}

fn slow_reader_is_dropped_while_others_keep_chatting(model: Model) {
    let server = Server::start_with(model, &["--sendq", "65536", "--no-flood-control"]);
    let mut slow = Client::register(&server, "slow");
    slow.join("#flood");
    let mut sender = Client::register(&server, "sender");
    sender.join("#flood");
    let mut reader = Client::register(&server, "reader");
    reader.join("#flood");
    sender.expect_line(":reader!reader@127.0.0.1 JOIN #flood");

    let dropped = Arc::new(AtomicBool::new(false));
    let seen_drop = dropped.clone();
    let reader_thread = std::thread::spawn(move || {
        let quit = reader.expect_line(":slow!slow@127.0.0.1 QUIT :SendQ exceeded");
        seen_drop.store(true, Ordering::SeqCst);
        let last = reader.expect_line("PRIVMSG #flood :done");
        let _ = (quit, last);
        let count = reader.seen.iter().filter(|l| l.contains("PRIVMSG #flood :msg ")).count();
        (reader, count)
    });

    let filler = "f".repeat(400);
    let mut sent = 0usize;
    // Bounded: 50 000 lines of 400 bytes is 20 MB, far more than any
    // loopback socket buffers before the 64 KiB sendq overflows.
    while !dropped.load(Ordering::SeqCst) && sent < 50_000 {
        for _ in 0..100 {
            sender.send(&format!("PRIVMSG #flood :msg {sent} {filler}"));
            sent += 1;
        }
        sender.sync();
    }
    assert!(dropped.load(Ordering::SeqCst), "slow reader never dropped after {sent} messages");
    sender.send("PRIVMSG #flood :done");
    let (_reader, received) = reader_thread.join().expect("reader thread");
    assert_eq!(received, sent, "the reading client missed messages");

    // The slow client finally reads: its backlog, then the reason it was dropped.
    let rest = slow.read_to_close();
    assert!(
        rest.iter().any(|l| l == "ERROR :Closing Link: 127.0.0.1 (SendQ exceeded)"),
        "last lines: {:?}",
        &rest[rest.len().saturating_sub(3)..]
    );
    // The server still serves newcomers.
    let mut late = Client::register(&server, "late");
    late.join("#flood");
}

fn shutdown_signal_closes_every_client(model: Model, signal: &str) {
    let mut server = Server::start(model);
    let mut alice = Client::register(&server, "alice");
    alice.join("#room");
    let mut plain = Client::plain(&server, "pete");
    let mut unregistered = server.connect();
    unregistered.expect_line("Type a name");
    // Half-registered: it said it speaks IRC.
    let mut halfway = server.connect();
    halfway.send("NICK halfway");
    halfway.sync();
    let status = server.signal_and_wait(signal);
    assert_eq!(status.code(), Some(0), "exit status after SIG{signal}: {status:?}");
    alice.expect_line("ERROR :Closing Link: 127.0.0.1 (Server shutting down)");
    plain.expect_line("*** Disconnected: Server shutting down");
    // Silent since it connected, most likely a person at nc: told in words.
    unregistered.expect_line("*** Disconnected: Server shutting down");
    halfway.expect_line("ERROR :Closing Link: 127.0.0.1 (Server shutting down)");
    for c in [&mut alice, &mut plain, &mut unregistered, &mut halfway] {
        c.read_to_close();
    }
}

fn sigterm_closes_every_client(model: Model) {
    shutdown_signal_closes_every_client(model, "TERM");
}

fn sigint_closes_every_client(model: Model) {
    shutdown_signal_closes_every_client(model, "INT");
}

fn clients_beyond_the_limit_are_turned_away(model: Model) {
    let server = Server::start_with(model, &["--max-clients", "2"]);
    // The limit is each process's own (each node of a cluster has it): all
    // of this test's clients go to the first.
    let connect = || Client::connect(&server.addr);
    let mut a = connect();
    a.register_as("one");
    let mut b = connect();
    b.register_as("two");
    // Refused in the client's own terms: an IRC client (it speaks first)
    // gets an ERROR line, a silent one (a person at nc) a sentence.
    let mut third = connect();
    third.send("NICK three");
    third.expect_line("ERROR :Closing Link: 127.0.0.1 (Server is full, try again later)");
    third.read_to_close();
    let mut person = connect();
    person.expect_line("*** Disconnected: Server is full, try again later");
    person.read_to_close();
    assert!(person.seen.iter().all(|l| !l.starts_with(':') && !l.starts_with("ERROR")), "{:?}", person.seen);
    b.send("QUIT");
    b.read_to_close();
    // A slot freed up: the next one gets in. The count drops once the
    // server has finished with the old connection, so retry a few times.
    let mut admitted = false;
    for _ in 0..50 {
        let mut c = connect();
        let first = c.expect("any line", |_| true);
        if first.contains("Welcome to chatter") {
            admitted = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(admitted, "no client admitted after one left");
}

fn silent_clients_are_pinged_then_dropped(model: Model) {
    let server = Server::start_with(model, &["--ping-interval", "1"]);
    let mut alice = Client::register(&server, "alice");
    let mut quiet = Client::register(&server, "quiet");
    alice.join("#room");
    quiet.join("#room");
    // Never answering loses the connection...
    let quiet_thread = std::thread::spawn(move || {
        quiet.expect_line("PING :chatter.local");
        quiet.expect_line("ERROR :Closing Link: 127.0.0.1 (Ping timeout");
    });
    // ...answering keeps it: alice answers every PING until she sees quiet go.
    let mut pings = 0;
    loop {
        let line = alice.expect("PING or quiet's QUIT", |l| l.starts_with("PING ") || l.contains("QUIT"));
        if line == "PING :chatter.local" {
            pings += 1;
            alice.send("PONG :chatter.local");
        } else {
            assert!(line.starts_with(":quiet!quiet@127.0.0.1 QUIT :Ping timeout"), "{line}");
            break;
        }
    }
    quiet_thread.join().expect("quiet was pinged and dropped");
    assert!(pings >= 1, "alice was never pinged");
    alice.send("PRIVMSG #room :still connected");
    alice.sync();
}

fn descriptor_exhaustion_neither_spins_nor_floods_the_log(model: Model) {
    let log = std::env::temp_dir().join(format!("chatter-emfile-{}-{model:?}.log", std::process::id()));
    let server = Server::start_limited(model, &[], 64, &log);
    let mut alice = Client::register(&server, "alice");
    alice.join("#c");
    // Far more connections than descriptors: the kernel completes them,
    // the server cannot accept them all.
    // Each pool worker has its own 64, so more than twice that.
    let crowd: Vec<std::net::TcpStream> =
        (0..200).filter_map(|_| std::net::TcpStream::connect(&server.addr).ok()).collect();
    assert!(crowd.len() > 2 * 64, "only {} connections", crowd.len());
    std::thread::sleep(std::time::Duration::from_secs(2));
    // Still serving the clients it has...
    alice.send("PRIVMSG #c :still here");
    alice.sync();
    // ...and it said so in a few lines, not ten a second per worker.
    let text = std::fs::read_to_string(&log).expect("read the log");
    let warnings = text.lines().filter(|l| l.contains("accept:")).count();
    // The crowd went to the first process (a cluster's first node).
    let accept_loops = model.processes()[0].accept_loops();
    assert!((1..=2 * accept_loops).contains(&warnings), "{warnings} warnings:\n{text}");
    // Once descriptors are free again, new clients get in.
    drop(crowd);
    let mut later = None;
    wait_until("a client admitted after the crowd left", || {
        let mut c = server.connect();
        let first = c.expect("any line", |_| true);
        let admitted = first.contains("Welcome to chatter");
        if admitted {
            later = Some(c);
        }
        admitted
    });
    let _ = std::fs::remove_file(&log);
}

all_models!(
    descriptor_exhaustion_neither_spins_nor_floods_the_log,
    too_long_line_is_refused_and_connection_survives,
    garbage_does_not_disturb_others,
    slow_reader_is_dropped_while_others_keep_chatting,
    sigterm_closes_every_client,
    sigint_closes_every_client,
    clients_beyond_the_limit_are_turned_away,
    silent_clients_are_pinged_then_dropped,
);

//! TLS of its own: what the rest of the suite cannot show by running over
//! TLS (every behaviour test does, in its `tls_*` variants). Start-up
//! refuses a certificate it cannot serve and says why; SIGHUP serves a
//! renewed certificate to new clients and drops no one; a client that
//! stalls in the handshake, or does not speak TLS at all, is closed like
//! any unregistered connection and holds no one up. Under every model.

use crate::common::wire;
use crate::common::*;

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A directory of the test's own under the temporary directory.
fn scratch(test: &str, model: Model) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chatter-tls-{test}-{model:?}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// A new self-signed pair for localhost in `dir`, as `name.crt` and
/// `name.key`; its certificate, to trust.
fn make_pair(dir: &Path, name: &str) -> rustls::pki_types::CertificateDer<'static> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("a certificate");
    std::fs::write(dir.join(format!("{name}.crt")), made.cert.pem()).expect("write the certificate");
    std::fs::write(dir.join(format!("{name}.key")), made.signing_key.serialize_pem()).expect("write the key");
    made.cert.der().clone()
}

/// A server with a TLS listener serving `cert` and `key`, and `extra` flags.
fn tls_server(model: Model, cert: &Path, key: &Path, extra: &[&str]) -> Server {
    let mut flags = vec!["--tls-listen", "127.0.0.1:0", "--tls-cert", cert.to_str().unwrap()];
    flags.extend(["--tls-key", key.to_str().unwrap()]);
    flags.extend(extra);
    Server::start_with(model, &flags)
}

/// What `chatter serve` with `flags` says on stderr when it refuses to start.
fn refused_start(model: Model, flags: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_chatter"))
        .arg("serve")
        .args(model.base().args())
        .args(["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"])
        .args(flags)
        .stdin(Stdio::null())
        .output()
        .expect("run chatter");
    assert!(!output.status.success(), "chatter started: {}", String::from_utf8_lossy(&output.stdout));
    assert!(output.stdout.is_empty(), "announced a listener: {}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn a_certificate_that_cannot_be_served_stops_the_start_and_says_why(model: Model) {
    let dir = scratch("refused", model);
    make_pair(&dir, "a");
    make_pair(&dir, "b");
    let path = |name: &str| dir.join(name).display().to_string();

    let missing = refused_start(model, &["--tls-cert", &path("none.crt"), "--tls-key", &path("a.key")]);
    assert!(missing.contains("none.crt") && missing.contains("No such file"), "{missing}");

    let crossed = refused_start(model, &["--tls-cert", &path("a.crt"), "--tls-key", &path("b.key")]);
    assert!(crossed.contains("does not belong to certificate"), "{crossed}");

    let swapped = refused_start(model, &["--tls-cert", &path("a.key"), "--tls-key", &path("a.key")]);
    assert!(swapped.contains("a.key"), "{swapped}");

    let without = refused_start(model, &[]);
    assert!(without.contains("--tls-cert and --tls-key"), "{without}");
}

/// Connects over TLS to `addr` trusting only `trusted`; the handshake's
/// outcome.
fn handshake(addr: &str, trusted: &rustls::pki_types::CertificateDer<'static>) -> Result<(), String> {
    let socket = TcpStream::connect(addr).expect("connect");
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(wire::client_config(trusted), name).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, socket);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// TLS set up in the config file alone (`tls_listen`, and `[tls]` with
/// paths relative to the file) serves the file's pair.
fn the_config_file_alone_sets_up_tls(model: Model) {
    let dir = scratch("config", model);
    let trusted = make_pair(&dir, "live");
    let config = dir.join("chatter.toml");
    let text = "[server]\ntls_listen = \"127.0.0.1:0\"\n\n[tls]\ncert = \"live.crt\"\nkey = \"live.key\"\n";
    std::fs::write(&config, text).expect("write the config");
    // Started by hand: the harness learns of listeners from the flags.
    let mut chatter = Command::new(env!("CARGO_BIN_EXE_chatter"))
        .arg("serve")
        .args(model.base().args())
        .args(["--listen", "127.0.0.1:0", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run chatter");
    let mut announced = std::io::BufReader::new(chatter.stdout.take().unwrap()).lines();
    let tls = announced
        .by_ref()
        .take(2)
        .map(|line| line.expect("a listening line"))
        .find_map(|line| line.strip_prefix("listening on tls://").map(str::to_string));
    let shaken = tls.as_deref().map(|addr| handshake(addr, &trusted));
    signal(chatter.id(), "TERM");
    chatter.wait().expect("chatter exits");
    assert_eq!(shaken, Some(Ok(())), "the TLS listener from the file");
    std::fs::remove_dir_all(&dir).ok();
}

fn sighup_serves_a_renewed_certificate_and_drops_no_one(model: Model) {
    let dir = scratch("renewed", model);
    let first = make_pair(&dir, "live");
    let (cert, key) = (dir.join("live.crt"), dir.join("live.key"));
    let server = tls_server(model, &cert, &key, &[]);
    let tls = server.tls_addr().expect("a TLS listener");
    // Two clients over TLS under the first certificate, in a channel.
    let connect = |nick: &str| {
        let socket = TcpStream::connect(&tls).unwrap();
        socket.set_read_timeout(Some(PATIENCE)).unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(wire::client_config(&first), name).unwrap();
        let mut stream = rustls::StreamOwned::new(conn, socket);
        write!(stream, "NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN #renew\r\n").unwrap();
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while !seen.contains(" 366 ") {
            let n = stream.read(&mut buf).expect("read the welcome");
            assert!(n > 0, "{nick} closed: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        stream
    };
    let mut alice = connect("alice");
    let mut bob = connect("bob");
    assert_eq!(handshake(&tls, &first), Ok(()));

    // Renewed in place, as certbot does, then SIGHUP.
    let second = make_pair(&dir, "live");
    server.signal("HUP");
    // New clients get the new certificate once the reload is in (every
    // worker rereads the files at its first connection after it).
    // Twenty in a row, spread over the workers by the kernel.
    let deadline = Instant::now() + PATIENCE;
    let mut in_a_row = 0;
    while in_a_row < 20 {
        if handshake(&tls, &second).is_ok() {
            in_a_row += 1;
        } else {
            in_a_row = 0;
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(Instant::now() < deadline, "the renewed certificate was never served");
    }
    let refused = handshake(&tls, &first).expect_err("the old certificate is no longer served");
    assert!(refused.contains("certificate"), "{refused}");

    // The clients from before the reload are still there and talking.
    alice.write_all(b"PRIVMSG #renew :still here\r\n").unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("PRIVMSG #renew :still here") {
        let n = bob.read(&mut buf).expect("bob reads");
        assert!(n > 0, "bob was dropped: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

fn a_reload_that_finds_a_broken_certificate_keeps_the_old_one(model: Model) {
    let dir = scratch("broken", model);
    let first = make_pair(&dir, "live");
    let (cert, key) = (dir.join("live.crt"), dir.join("live.key"));
    let server = tls_server(model, &cert, &key, &[]);
    let tls = server.tls_addr().expect("a TLS listener");
    std::fs::write(&cert, "not a certificate\n").unwrap();
    server.signal("HUP");
    // Whatever moment the reload is in, every worker still serves the
    // first certificate.
    let mut client = Client::register(&server, "watcher");
    client.sync();
    for _ in 0..2 * model.accept_loops() {
        assert_eq!(handshake(&tls, &first), Ok(()));
    }
}

fn a_client_stalled_in_the_handshake_is_closed_like_an_unregistered_one(model: Model) {
    let test_pair = wire::certificate();
    let server = tls_server(model, &test_pair.cert, &test_pair.key, &["--registration-timeout", "1"]);
    let tls = server.tls_addr().expect("a TLS listener");
    // Half a ClientHello (a record header promising more), then nothing.
    let mut stalled = TcpStream::connect(&tls).unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
    let mut silent = TcpStream::connect(&tls).unwrap();
    // Others are served meanwhile, over TLS and plain TCP.
    let mut alice = Client::connect_tls(&tls);
    alice.register_as("alice");
    let mut bob = Client::register(&server, "bob");
    bob.send("PRIVMSG alice :hi");
    alice.expect_line(":bob!bob@127.0.0.1 PRIVMSG alice :hi");
    for socket in [&mut stalled, &mut silent] {
        socket.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut sink = [0u8; 1024];
        let started = Instant::now();
        // Closed: end of stream (or a reset), never the patience.
        loop {
            match socket.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => assert!(started.elapsed() < PATIENCE, "not closed"),
            }
        }
        assert!(started.elapsed() < PATIENCE, "the stalled handshake was never closed");
    }
}

fn a_client_that_does_not_speak_tls_is_closed_and_others_go_on(model: Model) {
    let test_pair = wire::certificate();
    let server = tls_server(model, &test_pair.cert, &test_pair.key, &[]);
    let tls = server.tls_addr().expect("a TLS listener");
    let mut confused = TcpStream::connect(&tls).unwrap();
    confused.set_read_timeout(Some(PATIENCE)).unwrap();
    confused.write_all(b"NICK plain\r\nUSER plain 0 * :Plain\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = confused.read_to_end(&mut answer);
    // A TLS alert (content type 21) at most; never an IRC line.
    assert!(answer.is_empty() || answer[0] == 0x15, "{answer:?}");
    assert!(!String::from_utf8_lossy(&answer).contains("plain"), "{answer:?}");
    let mut alice = Client::connect_tls(&tls);
    alice.register_as("alice");
    let mut bob = Client::connect(&server.addr);
    bob.register_as("bob");
    bob.send("PRIVMSG alice :after the confused one");
    alice.expect_line("PRIVMSG alice :after the confused one");
}

each_model!(
    a_certificate_that_cannot_be_served_stops_the_start_and_says_why,
    the_config_file_alone_sets_up_tls,
    sighup_serves_a_renewed_certificate_and_drops_no_one,
    a_reload_that_finds_a_broken_certificate_keeps_the_old_one,
    a_client_stalled_in_the_handshake_is_closed_like_an_unregistered_one,
    a_client_that_does_not_speak_tls_is_closed_and_others_go_on,
);

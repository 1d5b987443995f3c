//! `chatter cert`, run as a user would: it writes a self-signed pair into
//! the directory it is run in, says how to serve with it, keeps the key
//! private, and does not overwrite files unless told to.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chatter-cert-cli-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn chatter_cert(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chatter"))
        .arg("cert")
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn cert_writes_a_pair_and_says_how_to_serve_with_it() {
    let dir = temp_dir("defaults");
    let out = chatter_cert(&dir, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("wrote chatter.crt: a self-signed certificate for localhost, 127.0.0.1, ::1"));
    assert!(stdout.contains("wrote chatter.key"));
    assert!(
        stdout
            .contains("chatter serve --tls-listen 0.0.0.0:6697 --tls-cert chatter.crt --tls-key chatter.key")
    );
    assert!(stdout.contains("self-signed"));
    let cert = fs::read_to_string(dir.join("chatter.crt")).unwrap();
    let key = fs::read_to_string(dir.join("chatter.key")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    let mode = fs::metadata(dir.join("chatter.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Again: refused, and the files are the ones from before.
    let again = chatter_cert(&dir, &[]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already exists (--force replaces it)"), "{}", text(&again.stderr));
    assert_eq!(fs::read_to_string(dir.join("chatter.crt")).unwrap(), cert);
    assert_eq!(fs::read_to_string(dir.join("chatter.key")).unwrap(), key);

    // Forced: a new pair.
    let forced = chatter_cert(&dir, &["--force"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert_ne!(fs::read_to_string(dir.join("chatter.key")).unwrap(), key);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cert_takes_names_and_paths() {
    let dir = temp_dir("named");
    let out = chatter_cert(
        &dir,
        &["--cert", "irc.pem", "--key", "irc-key.pem", "--name", "irc.example.org", "--name", "192.0.2.7"],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("for irc.example.org, 192.0.2.7"), "{stdout}");
    assert!(stdout.contains("--tls-cert irc.pem --tls-key irc-key.pem"), "{stdout}");
    assert!(dir.join("irc.pem").is_file() && dir.join("irc-key.pem").is_file());
    assert!(!dir.join("chatter.crt").exists());

    let bad = chatter_cert(&dir, &["--cert", "x.crt", "--key", "x.key", "--name", "not a name"]);
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("neither an IP address nor a DNS name"), "{}", text(&bad.stderr));
    assert!(!dir.join("x.crt").exists() && !dir.join("x.key").exists());
    fs::remove_dir_all(&dir).unwrap();
}

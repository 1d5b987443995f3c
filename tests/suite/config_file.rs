//! `chatter serve --config FILE`: the file's settings take effect, a flag
//! given on the command line overrides the file, and a bad file stops the
//! server at start with a message that names the problem.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{Client, Model, Server};

/// A config file (and a MOTD beside it) in a directory of its own.
fn config_dir(test: &str, model: Model, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chatter-{test}-{model:?}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the config directory");
    std::fs::write(dir.join("motd.txt"), "Hello from the file's MOTD\n").expect("write the MOTD");
    std::fs::write(dir.join("chatter.toml"), text).expect("write the config");
    dir
}

const FILE: &str = r#"
[server]
name = "irc.from.file"
network = "FileNet"
motd = "motd.txt"

[limits]
max_channels_per_client = 7
"#;

fn the_file_sets_what_the_flags_do_not(model: Model) {
    let dir = config_dir("file", model, FILE);
    let path = dir.join("chatter.toml");
    let server = Server::start_with(model, &["--config", path.to_str().unwrap(), "--network", "FlagNet"]);
    let mut c = Client::connect(&server.addr);
    c.send("NICK ann");
    c.send("USER ann 0 * :Ann");
    let welcome = c.expect_numeric("001");
    assert!(welcome.starts_with(":irc.from.file 001 ann "), "{welcome}");
    // The flag wins over the file; the file wins over the default.
    c.expect_line("Hello from the file's MOTD");
    let isupport: Vec<&String> = c.seen.iter().filter(|l| l.contains(" 005 ")).collect();
    assert!(isupport.iter().any(|l| l.contains(" NETWORK=FlagNet ")), "{isupport:?}");
    assert!(isupport.iter().any(|l| l.contains(" CHANLIMIT=#:7 ")), "{isupport:?}");
    std::fs::remove_dir_all(&dir).ok();
}

fn a_bad_file_stops_the_server_at_start(model: Model) {
    let dir = config_dir("bad", model, "[limits]\nmax_client = 5\n");
    let output = Command::new(env!("CARGO_BIN_EXE_chatter"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.join("chatter.toml"))
        .args(model.args())
        .output()
        .expect("run chatter");
    assert!(!output.status.success(), "a misspelt setting must not start a server");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max_client"), "the error names the setting: {stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

all_models!(the_file_sets_what_the_flags_do_not, a_bad_file_stops_the_server_at_start);

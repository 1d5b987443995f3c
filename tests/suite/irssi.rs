//! A real IRC client against every model: irssi, run headless in tmux,
//! connects, joins, talks, changes its nick, kicks as the channel's
//! operator and quits, while a scripted client on the other side checks
//! what the server relayed and the test reads what irssi shows.
//!
//! irssi and tmux come from Debian (`.ci/run` installs them and sets
//! `CHATTER_REQUIRE_IRSSI=1`, so CI cannot skip this). Where they are not
//! installed the test says so and passes without checking anything, so
//! that `cargo test` still works on a machine with only Rust.
//!
//! Each test runs its own tmux server on a socket of its own and kills
//! only that server when done.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{Client, Model, PATIENCE, Server};

/// Whether the real-client tools are here; panics if CI requires them.
fn tools_present() -> bool {
    let present = |tool: &str| Command::new(tool).arg("-V").output().is_ok_and(|o| o.status.success());
    let have = present("tmux") && Command::new("irssi").arg("--version").output().is_ok();
    if !have {
        assert!(
            std::env::var_os("CHATTER_REQUIRE_IRSSI").is_none(),
            "irssi and tmux are required here (CHATTER_REQUIRE_IRSSI is set) but not installed"
        );
        eprintln!("skipped: irssi or tmux is not installed (apt-get install irssi tmux)");
    }
    have
}

/// A terminal program running in a detached tmux session.
struct Terminal {
    socket: String,
    home: PathBuf,
}

impl Terminal {
    fn start(name: &str, command: &str) -> Terminal {
        let socket = format!("chatter-{name}-{}", std::process::id());
        let home = std::env::temp_dir().join(&socket);
        std::fs::create_dir_all(&home).expect("create irssi's home");
        let command = command.replace("{home}", home.to_str().expect("a UTF-8 temp path"));
        let status = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-s", "t", "-x", "220", "-y", "50", &command])
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux did not start {command}");
        Terminal { socket, home }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let output = Command::new("tmux").args(["-L", &self.socket]).args(args).output().expect("run tmux");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Types `text` and presses Enter.
    fn type_line(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
        self.tmux(&["send-keys", "-t", "t", "Enter"]);
    }

    /// What the window shows now, with its scrollback.
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-t", "t", "-S", "-500"])
    }

    /// Waits until the screen shows `needle`; returns the screen.
    fn expect(&self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(Instant::now() < deadline, "irssi never showed {needle:?}; its screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // Our own tmux server only (its socket is ours), and irssi in it.
        self.tmux(&["kill-server"]);
        std::fs::remove_dir_all(&self.home).ok();
    }
}

fn irssi_connects_talks_kicks_and_quits(model: Model) {
    if !tools_present() {
        return;
    }
    let server = Server::start(model);
    let addr = server.next_addr();
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let irssi = Terminal::start(
        &format!("{model:?}"),
        &format!("irssi --home={{home}} --nick=alice --connect={host} --port={port}"),
    );
    irssi.expect(&format!("Welcome to the {} Network, alice", server.network));

    irssi.type_line("/join #room");
    irssi.expect("has joined #room");
    let mut bob = Client::register(&server, "bob");
    bob.join("#room");
    assert!(
        bob.seen.iter().any(|l| l.contains(" 353 ") && l.contains("@alice")),
        "alice is #room's operator"
    );
    irssi.expect("bob [bob@127.0.0.1] has joined #room");

    bob.send("PRIVMSG #room :hello from the other side");
    irssi.expect("hello from the other side");
    irssi.type_line("hi bob, irssi here");
    bob.expect_line("PRIVMSG #room :hi bob, irssi here");

    irssi.type_line("/nick alicia");
    bob.expect_line(":alice!");
    assert!(bob.seen.last().is_some_and(|l| l.ends_with("NICK :alicia") || l.ends_with("NICK alicia")));
    irssi.expect("You're now known as alicia");

    irssi.type_line("/kick bob out you go");
    bob.expect_line("KICK #room bob :out you go");
    irssi.expect("bob was kicked from #room by alicia [out you go]");

    bob.join("#room");
    irssi.type_line("/quit see you");
    let quit = bob.expect_line("QUIT");
    assert!(quit.starts_with(":alicia!") && quit.contains("see you"), "{quit}");
}

all_models!(irssi_connects_talks_kicks_and_quits);

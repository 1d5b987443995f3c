//! Rereading the configuration while serving, under every model: SIGHUP
//! and an operator's REHASH reread the config file, and new clients on
//! every worker get the new MOTD and the new operator credentials (the old
//! ones stop working); a file that does not parse or validate changes
//! nothing; what only a restart changes is kept; a flag given on the
//! command line still wins over the file. Under prefork a reload reaches
//! a worker forked after it (a crash's replacement) and, through the log,
//! a worker forked before it.
//!
//! A signal is answered when the server gets to it, so after SIGHUP a test
//! registers new clients until one has the new MOTD (bounded by the
//! harness's patience), or waits for the server's log to say the reload
//! failed. Nothing asserts how long a reload takes.

use crate::common::*;

use std::path::PathBuf;

/// A test's own config directory: `chatter.toml` and the MOTD beside it.
struct ConfigDir {
    dir: PathBuf,
}

impl ConfigDir {
    fn new(test: &str, model: Model) -> ConfigDir {
        let dir =
            std::env::temp_dir().join(format!("chatter-rehash-{test}-{model:?}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the config directory");
        ConfigDir { dir }
    }

    fn path(&self) -> String {
        self.dir.join("chatter.toml").to_str().expect("a UTF-8 path").to_string()
    }

    /// Version `n` of the settings: the MOTD says "MOTD version n", the
    /// operator `boss` has the password "secret-n", a client may be in
    /// 10 + n channels, ADMIN's location is "Room n" and its e-mail
    /// "file-n@example.org"; `more` is added to `[server]`.
    fn write(&self, n: u32, more: &str) {
        std::fs::write(self.dir.join("motd.txt"), format!("MOTD version {n}\n")).expect("write the MOTD");
        self.write_toml(&format!("motd = \"motd.txt\"\n{more}"), n);
    }

    fn write_toml(&self, server: &str, n: u32) {
        let hash = chatter::chat::info::hash_password(&format!("secret-{n}")).expect("hash the password");
        let text = format!(
            "[server]\n{server}\n[limits]\nmax_channels_per_client = {}\n\
             [admin]\nlocation = \"Room {n}\"\nemail = \"file-{n}@example.org\"\n\n\
             [[operators]]\nname = \"boss\"\npassword_hash = \"{hash}\"\n",
            10 + n
        );
        std::fs::write(self.dir.join("chatter.toml"), text).expect("write the config");
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn shows(client: &Client, text: &str) -> bool {
    client.seen.iter().any(|line| line.contains(text))
}

/// Registers new clients (`{prefix}0`, `{prefix}1`, ...) until one's
/// welcome has MOTD version `n`; returns that client.
fn until_motd(server: &Server, prefix: &str, n: u32) -> Client {
    let motd = format!("MOTD version {n}");
    let mut tries = 0;
    let mut found = None;
    wait_until(&format!("a new client to get {motd:?}"), || {
        let client = Client::register(server, &format!("{prefix}{tries}"));
        tries += 1;
        found = shows(&client, &motd).then_some(client);
        found.is_some()
    });
    found.expect("found")
}

/// A client registered on each worker of the pool (one for iterative; on
/// each worker of every node for a cluster), each having had its welcome.
fn one_per_worker(server: &Server, prefix: &str) -> Vec<Client> {
    let wanted = server.model.accept_loops();
    // Worker numbers are per process: (worker, pid) tells them apart.
    let mut clients: Vec<(Option<(u32, u32)>, Client)> = Vec::new();
    for n in 0..CONNECT_ATTEMPTS {
        if clients.len() == wanted {
            break;
        }
        let mut client = server.connect();
        let worker = worker_of(&client.expect_line("Welcome to chatter"));
        if clients.iter().all(|(on, _)| *on != worker) {
            client.register_as(&format!("{prefix}{n}"));
            clients.push((worker, client));
        }
    }
    assert_eq!(clients.len(), wanted, "no client on every worker in {CONNECT_ATTEMPTS} connections");
    clients.into_iter().map(|(_, client)| client).collect()
}

/// `client` was welcomed with version `n` of the settings, and its
/// operator credentials are version `n`'s.
fn has_version(client: &mut Client, n: u32) {
    assert!(shows(client, &format!("MOTD version {n}")), "{}: {:?}", client.nick, client.seen);
    assert!(shows(client, &format!(" CHANLIMIT=#:{} ", 10 + n)), "{}: {:?}", client.nick, client.seen);
    operator_is(client, n);
}

/// The operator credentials are version `n`'s (those of `n - 1` fail).
fn operator_is(client: &mut Client, n: u32) {
    if n > 1 {
        client.send(&format!("OPER boss secret-{}", n - 1));
        client.expect_numeric("464");
    }
    client.send(&format!("OPER boss secret-{n}"));
    client.expect_numeric("381");
}

fn sighup_rereads_the_file(model: Model) {
    let config = ConfigDir::new("hup", model);
    config.write(1, "");
    let server = Server::start_with(model, &["--config", &config.path(), "--admin-email", "cli@example.org"]);
    let mut early = Client::register(&server, "early");
    assert!(shows(&early, "MOTD version 1"));

    config.write(2, "");
    server.signal("HUP");
    let first = until_motd(&server, "late", 2);
    for mut client in std::iter::once(first).chain(one_per_worker(&server, "w")) {
        has_version(&mut client, 2);
        // The file's ADMIN location is reread; the e-mail given on the
        // command line still wins over the file's.
        client.send("ADMIN");
        client.expect_line(":Room 2");
        assert!(client.expect_numeric("259").ends_with(":cli@example.org"));
    }
    // A client connected before the reload goes on, under the new settings
    // (its welcome, 005 included, was version 1's).
    early.send("MOTD");
    early.expect_line("MOTD version 2");
    operator_is(&mut early, 2);
}

fn a_file_that_does_not_parse_changes_nothing(model: Model) {
    let config = ConfigDir::new("broken", model);
    config.write(1, "");
    let log = config.dir.join("server.log");
    let server = Server::start_logged(model, &["--config", &config.path()], &log);
    std::fs::write(config.dir.join("chatter.toml"), "[limits]\nmax_client = 5\n").expect("break the config");
    server.signal("HUP");
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until("the server to log that the reload failed", || logged().contains("reload failed"));
    assert!(logged().contains("max_client"), "the log names the problem: {}", logged());
    for mut client in one_per_worker(&server, "w") {
        has_version(&mut client, 1);
    }
}

fn rehash_is_for_operators_and_rereads_the_file(model: Model) {
    let config = ConfigDir::new("rehash", model);
    config.write(1, "");
    let server = Server::start_with(model, &["--config", &config.path()]);
    let mut op = Client::register(&server, "op");
    op.send("OPER boss secret-1");
    op.expect_numeric("381");
    let mut user = Client::register(&server, "user");
    user.send("REHASH");
    user.expect_numeric("481");

    // A file that parses but names a MOTD that is not there: refused whole.
    config.write_toml("motd = \"missing.txt\"", 2);
    op.send("REHASH");
    let rehashing = op.expect_numeric("382");
    assert!(rehashing.ends_with(&format!(" 382 op {} :Rehashing", config.path())), "{rehashing}");
    op.expect_line("REHASH failed");
    op.expect_line("missing.txt");
    for mut client in one_per_worker(&server, "a") {
        has_version(&mut client, 1);
    }

    // A good file, with a change only a restart applies.
    config.write(3, "name = \"renamed.example\"");
    op.send("REHASH");
    op.expect_numeric("382");
    op.expect_line("Configuration reloaded");
    op.expect_line("name = renamed.example takes a restart; still chatter.local");
    let first = until_motd(&server, "late", 3);
    for mut client in std::iter::once(first).chain(one_per_worker(&server, "b")) {
        has_version(&mut client, 3);
        let welcome = format!(":chatter.local 001 {} ", client.nick);
        assert!(client.seen.iter().any(|l| l.starts_with(&welcome)), "the name is kept: {:?}", client.seen);
    }
}

all_models!(
    sighup_rereads_the_file,
    a_file_that_does_not_parse_changes_nothing,
    rehash_is_for_operators_and_rereads_the_file,
);

/// A worker forked after a reload (here, the replacement of one that was
/// killed) starts with the reloaded settings; one forked before a reload
/// gets it through the log like every other.
#[test]
fn prefork_a_reload_reaches_workers_forked_before_and_after_it() {
    let model = Model::Prefork;
    let config = ConfigDir::new("crash", model);
    config.write(1, "");
    let server = Server::start_with(model, &["--config", &config.path()]);
    let workers = full_pool(&server);

    config.write(2, "");
    signal(server.pid(), "HUP");
    until_motd(&server, "late", 2);
    let victim = workers[0];
    signal(victim, "KILL");
    let replacement = *wait_for_replacement(&server, victim)
        .iter()
        .find(|pid| !workers.contains(pid))
        .expect("a new worker");
    let mut fresh = land_on(&server, replacement);
    fresh.register_as("fresh");
    has_version(&mut fresh, 2);

    config.write(3, "");
    signal(server.pid(), "HUP");
    until_motd(&server, "later", 3);
    let mut again = land_on(&server, replacement);
    again.register_as("again");
    has_version(&mut again, 3);
}

//! What a network of chatter nodes does when something fails: a node
//! killed while messages flow, a node restarted, one of three NATS servers
//! killed, NATS gone and back, and a node the network gave up on that was
//! only paused. Real processes throughout: `nats-server -js` (see
//! `crate::common::nats`) and chatter nodes of every model, on 127.0.0.1.
//!
//! Each test says what must hold (nothing lost, who quits, who is told),
//! never how fast; waits are bounded by the harness's patience.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::nats::{self, Nats, NatsCluster};
use crate::common::{Client, signal, wait_until};

static NETWORKS: AtomicUsize = AtomicUsize::new(0);

/// A network name no other test uses, so tests may share nothing.
fn network() -> String {
    format!("faults{}x{}", std::process::id(), NETWORKS.fetch_add(1, Ordering::Relaxed))
}

/// One chatter node; killed on drop if the test did not stop it.
struct Node {
    child: Child,
    addr: String,
    /// What the node wrote to stderr (its log).
    log: PathBuf,
    args: Vec<String>,
}

impl Node {
    /// Starts node `name` of `network` under `model`, with `extra` flags.
    fn start(model: &str, name: &str, network: &str, cluster: &str, extra: &[&str]) -> Node {
        let mut args: Vec<String> = vec!["serve".into(), "--listen".into(), "127.0.0.1:0".into()];
        args.extend(["--model".into(), model.into()]);
        if model != "iterative" {
            args.extend(["--workers".into(), "2".into()]);
        }
        args.extend(["--cluster".into(), cluster.into(), "--node".into(), name.into()]);
        args.extend(["--network".into(), network.into(), "--no-flood-control".into()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        Node::spawn(args, &format!("{network}-{name}"))
    }

    fn spawn(args: Vec<String>, label: &str) -> Node {
        let log = std::env::temp_dir().join(format!("chatter-{label}-{}.log", std::process::id()));
        let stderr = std::fs::File::create(&log).expect("create the node's log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatter"))
            .args(&args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start chatter");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("read");
        let addr =
            first.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{first:?}")).to_string();
        let node = Node { child, addr, log, args };
        node.wait_joined();
        node
    }

    /// Waits until the node has joined the network (it listens before).
    fn wait_joined(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.log_text().contains("joined the network") {
            assert!(
                Instant::now() < deadline,
                "the node did not join the network; its log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn connect(&self, nick: &str) -> Client {
        let mut c = Client::connect(&self.addr);
        c.nick = nick.to_string();
        c.send(&format!("NICK {nick}"));
        c.send(&format!("USER {nick} 0 * :{nick}"));
        c.expect_numeric("001");
        c.expect("end of MOTD", |l| matches!(crate::common::numeric_of(l), Some("376" | "422")));
        c
    }

    /// `kill -9`: a prefork node's workers follow their supervisor.
    fn kill(&mut self) {
        signal(self.pid(), "KILL");
        let _ = self.child.wait();
    }

    /// Waits (bounded) for the node to exit on its own; its exit status.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the node did not stop; its log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The same node started again (a new run of it).
    fn restart(&mut self) {
        let again = Node::spawn(self.args.clone(), &format!("{}-again", self.pid()));
        let old = std::mem::replace(self, again);
        drop(old);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // A failing test shows what each node said.
        if std::thread::panicking() {
            eprintln!("--- the log of the node at {} ---\n{}", self.addr, self.log_text());
        }
        if self.child.try_wait().ok().flatten().is_none() {
            signal(self.pid(), "KILL");
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// `who` on `node` joins #room and every `others` sees it arrive.
fn join_room(node: &Node, nick: &str, others: &mut [&mut Client]) -> Client {
    let mut c = node.connect(nick);
    c.join("#room");
    for other in others.iter_mut() {
        other.expect_line(&format!(":{nick}!{nick}@127.0.0.1 JOIN #room"));
    }
    c
}

/// Waits until `c` has received every line of `texts` to #room from
/// `from`, in order; panics with what came if one is missing. Each line
/// is waited for as long as NATS's own tests wait: after a fault, NATS
/// elects leaders and a node makes its consumer anew (a beat or two of
/// `--node-timeout` later), which takes seconds, more on a loaded machine.
fn expect_all(c: &mut Client, from: &str, texts: &[String]) {
    for text in texts {
        let line = format!(":{from}!{from}@127.0.0.1 PRIVMSG #room :{text}");
        c.expect_within(nats::NATS_PATIENCE, &line, |l| l.contains(&line));
    }
}

fn say(c: &mut Client, tag: &str, range: std::ops::Range<usize>) -> Vec<String> {
    let texts: Vec<String> = range.map(|i| format!("{tag} {i}")).collect();
    for text in &texts {
        c.send(&format!("PRIVMSG #room :{text}"));
    }
    texts
}

#[test]
fn a_node_killed_while_messages_flow_costs_only_its_own_clients_and_comes_back() {
    if !nats::present() {
        return;
    }
    let nats = Nats::start();
    let net = network();
    let timeout = ["--node-timeout", "2"];
    let a = Node::start("prethread", "a", &net, &nats.url(), &timeout);
    let mut b = Node::start("prefork", "b", &net, &nats.url(), &timeout);
    let c = Node::start("iterative", "c", &net, &nats.url(), &timeout);
    let mut ann = join_room(&a, "ann", &mut []);
    let mut bob = join_room(&b, "bob", &mut [&mut ann]);
    let mut cat = join_room(&c, "cat", &mut [&mut ann, &mut bob]);

    let mut from_ann = say(&mut ann, "ann", 0..50);
    let mut from_cat = say(&mut cat, "cat", 0..50);
    b.kill();
    from_ann.extend(say(&mut ann, "ann", 50..100));
    from_cat.extend(say(&mut cat, "cat", 50..100));
    // Nothing the survivors said is lost, before or after the kill...
    expect_all(&mut ann, "cat", &from_cat);
    expect_all(&mut cat, "ann", &from_ann);
    // ...and bob is seen to quit, once the network has noticed.
    for c in [&mut ann, &mut cat] {
        c.expect_line(":bob!bob@127.0.0.1 QUIT :Node lost");
    }

    // b again: a new run, which catches up and serves.
    b.restart();
    let mut bea = b.connect("bea");
    bea.send("NAMES #room");
    let names = bea.expect_numeric("353");
    assert!(names.contains("ann") && names.contains("cat") && !names.contains("bob"), "{names}");
    bea.join("#room");
    ann.expect_line(":bea!bea@127.0.0.1 JOIN #room");
    let hello = say(&mut bea, "bea", 0..5);
    expect_all(&mut ann, "bea", &hello);
    expect_all(&mut cat, "bea", &hello);
    // bob's nick is free again.
    let bob_again = b.connect("bob");
    drop(bob_again);
}

#[test]
fn a_node_joins_from_a_snapshot_when_the_stream_no_longer_holds_the_start() {
    if !nats::present() {
        return;
    }
    let nats = Nats::start();
    let net = network();
    let a = Node::start("prethread", "a", &net, &nats.url(), &["--snapshot-every", "100"]);
    let mut ann = join_room(&a, "ann", &mut []);
    ann.send("TOPIC #room :kept in the snapshot");
    ann.expect_line("TOPIC #room :kept in the snapshot");
    let said = say(&mut ann, "before", 0..150);
    ann.sync();
    // After 100 events a's next beat writes a snapshot of where it stands.
    let snapshot_seq = |log: &str| -> Option<u64> {
        let line = log.lines().rev().find(|l| l.contains("wrote a snapshot"))?;
        line.rsplit("seq=").next()?.trim().parse().ok()
    };
    let deadline = Instant::now() + nats::NATS_PATIENCE;
    let seq = loop {
        if let Some(seq) = snapshot_seq(&a.log_text()) {
            break seq;
        }
        assert!(Instant::now() < deadline, "no snapshot written; a's log:\n{}", a.log_text());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(seq > said.len() as u64, "the snapshot stands after the messages: {seq}");
    // Retention's doing, made at once: the stream forgets everything the
    // snapshot holds, so a node can only join from the snapshot.
    let purge = format!("{{\"seq\":{}}}", seq + 1);
    nats::request(&nats.url(), &format!("$JS.API.STREAM.PURGE.CHATTER_{net}"), &purge)
        .unwrap_or_else(|e| panic!("purge the stream: {e}"));

    let b = Node::start("iterative", "b", &net, &nats.url(), &[]);
    assert!(
        b.log_text().contains(&format!("restored the directory from a snapshot seq={seq}")),
        "b did not join from the snapshot; its log:\n{}",
        b.log_text()
    );
    let mut bob = b.connect("bob");
    bob.join("#room");
    let reply = |code: &str| {
        let found = bob.seen.iter().find(|l| crate::common::numeric_of(l) == Some(code));
        found.cloned().unwrap_or_else(|| panic!("no {code} in {:?}", bob.seen))
    };
    assert!(reply("332").ends_with(":kept in the snapshot"), "{}", reply("332"));
    assert!(reply("353").ends_with(":@ann bob"), "{}", reply("353"));
    ann.expect_line(":bob!bob@127.0.0.1 JOIN #room");
    let after = say(&mut ann, "after", 0..5);
    expect_all(&mut bob, "ann", &after);
}

#[test]
fn one_of_three_nats_servers_lost_loses_nothing() {
    if !nats::present() {
        return;
    }
    let mut cluster = NatsCluster::start(3);
    let net = network();
    let urls = cluster.urls();
    let extra = ["--cluster-replicas", "3", "--node-timeout", "30"];
    let a = Node::start("prethread", "a", &net, &urls, &extra);
    let b = Node::start("iterative", "b", &net, &urls, &extra);
    let mut ann = join_room(&a, "ann", &mut []);
    let mut bob = join_room(&b, "bob", &mut [&mut ann]);
    let mut said = say(&mut ann, "before", 0..20);
    cluster.kill(0);
    said.extend(say(&mut ann, "during", 0..20));
    // The servers left elect new leaders for the stream and the buckets
    // that had theirs on the one killed.
    expect_all(&mut bob, "ann", &said);
    cluster.restart(0);
    let after = say(&mut bob, "after", 0..20);
    expect_all(&mut ann, "bob", &after);
    // Neither node was ever declared lost.
    for c in [&mut ann, &mut bob] {
        c.expect_no_line("Node lost");
    }
}

#[test]
fn nats_gone_and_back_tells_clients_and_loses_nothing() {
    if !nats::present() {
        return;
    }
    let mut nats = Nats::start();
    let net = network();
    let extra = ["--node-timeout", "60"];
    let a = Node::start("prefork", "a", &net, &nats.url(), &extra);
    let b = Node::start("prethread", "b", &net, &nats.url(), &extra);
    let mut ann = join_room(&a, "ann", &mut []);
    let mut bob = join_room(&b, "bob", &mut [&mut ann]);

    nats.stop();
    for c in [&mut ann, &mut bob] {
        c.expect_line("This server has lost the network");
    }
    // What ann says now waits in her node.
    let waiting = say(&mut ann, "meanwhile", 0..10);
    nats.restart();
    for c in [&mut ann, &mut bob] {
        c.expect_line("The network is back");
    }
    expect_all(&mut bob, "ann", &waiting);
    let after = say(&mut bob, "after", 0..5);
    expect_all(&mut ann, "bob", &after);
}

#[test]
fn a_paused_node_the_network_gave_up_on_drops_its_clients_and_stops() {
    if !nats::present() {
        return;
    }
    let nats = Nats::start();
    let net = network();
    let timeout = ["--node-timeout", "2"];
    let a = Node::start("iterative", "a", &net, &nats.url(), &timeout);
    let mut b = Node::start("prethread", "b", &net, &nats.url(), &timeout);
    let mut ann = join_room(&a, "ann", &mut []);
    let mut bob = join_room(&b, "bob", &mut [&mut ann]);
    // A pause (a stopped VM, a long GC, a partition) longer than the
    // timeout: the network moves on without b.
    signal(b.pid(), "STOP");
    ann.expect_line(":bob!bob@127.0.0.1 QUIT :Node lost");
    signal(b.pid(), "CONT");
    // b finds out, tells its client plainly, and stops.
    let closing = bob.expect_line("ERROR :Closing Link");
    assert!(closing.contains("Node lost") && closing.contains("not delivered"), "{closing}");
    assert!(!b.wait_exit().success(), "a node the network gave up on ends with an error");
    // The network goes on without it.
    let mut cat = a.connect("cat");
    cat.send("PRIVMSG ann :still here");
    ann.expect_line("PRIVMSG ann :still here");
    wait_until("b's log to say why", || b.log_text().contains("declared this node lost"));
}

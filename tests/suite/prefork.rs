//! Prefork faults: what happens to everyone else when a worker process is
//! killed, stopped, or told to stop.
//!
//! - A SIGKILLed worker is replaced, and the clients of the surviving worker
//!   lose nothing: every message they sent while it died arrives, in order,
//!   exactly once; they see the dead worker's users QUIT (`Worker lost`); the
//!   replacement takes new clients that chat with the survivors.
//! - Killing a worker again and again (including while it serves registered
//!   users) never wedges the shared log for the worker that keeps running.
//! - SIGINT stops every child process, each client gets its closing line, and
//!   the supervisor exits 0.
//! - A SIGSTOPped worker cannot hold the log hostage: its heartbeat stops,
//!   the keeper evicts it once others' events wait for it, the supervisor
//!   kills and replaces it, and the clients that kept talking lose nothing.
//!
//! Only the server this test started and its own children are signalled.
//! Nothing here asserts how long anything takes; every wait is bounded by
//! the harness's patience.

use crate::common::*;

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

/// Connects until every worker serves at least `per_worker` of the returned
/// clients; extra connections are dropped. Returns each client with the pid
/// of the worker that greeted it.
fn spread(server: &Server, per_worker: usize) -> Vec<(Client, u32)> {
    let mut by_pid: HashMap<u32, Vec<Client>> = HashMap::new();
    let mut order = Vec::new();
    for _ in 0..CONNECT_ATTEMPTS {
        let done = by_pid.len() == POOL_WORKERS && by_pid.values().all(|c| c.len() >= per_worker);
        if done {
            break;
        }
        let (client, (_, pid)) = Client::connect_to_worker(server);
        let on_pid = by_pid.entry(pid).or_default();
        if on_pid.len() < per_worker {
            on_pid.push(client);
            order.push(pid);
        }
    }
    assert!(
        by_pid.len() == POOL_WORKERS && by_pid.values().all(|c| c.len() >= per_worker),
        "could not get {per_worker} clients on each of {POOL_WORKERS} workers in {CONNECT_ATTEMPTS} \
         connections: {:?}",
        by_pid.iter().map(|(pid, c)| (*pid, c.len())).collect::<Vec<_>>()
    );
    // Hand them back in connection order.
    let mut queues: HashMap<u32, std::collections::VecDeque<Client>> =
        by_pid.into_iter().map(|(pid, c)| (pid, c.into())).collect();
    order.into_iter().map(|pid| (queues.get_mut(&pid).unwrap().pop_front().unwrap(), pid)).collect()
}

/// Syncs `client` until `done(seen)` holds (bounded by the harness patience).
fn read_until(client: &mut Client, what: &str, mut done: impl FnMut(&[String]) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done(&client.seen) {
        assert!(
            Instant::now() < deadline,
            "{}: gave up waiting for {what}; received:\n  {}",
            client.nick,
            client.seen.join("\n  ")
        );
        client.sync();
    }
}

/// The (source nick, text) of every PRIVMSG to `channel` among `lines`.
fn channel_messages<'a>(lines: &'a [String], channel: &str) -> Vec<(&'a str, &'a str)> {
    let marker = format!(" PRIVMSG {channel} :");
    lines
        .iter()
        .filter_map(|line| {
            let (prefix, text) = line.split_once(&marker)?;
            let nick = prefix.strip_prefix(':')?.split_once('!')?.0;
            Some((nick, text))
        })
        .collect()
}

/// The numbers `from` sent as `"{tag} {from} {n}"` messages to `channel`, in
/// the order they arrived.
fn numbered_from(lines: &[String], channel: &str, tag: &str, from: &str) -> Vec<usize> {
    let head = format!("{tag} {from} ");
    channel_messages(lines, channel)
        .into_iter()
        .filter_map(|(nick, text)| {
            let n = text.strip_prefix(&head)?.parse().ok()?;
            assert_eq!(nick, from, "a message naming {from} came from {nick}");
            Some(n)
        })
        .collect()
}

/// Whether `nick` was seen quitting with "Worker lost".
fn saw_worker_lost(lines: &[String], nick: &str) -> bool {
    let source = format!(":{nick}!");
    lines.iter().any(|l| l.starts_with(&source) && l.ends_with(" QUIT :Worker lost"))
}

#[test]
fn killed_worker_is_replaced_and_survivors_lose_nothing() {
    const PER_WORKER: usize = 3;
    const MESSAGES: usize = 300;
    let server = Server::start_with(Model::Prefork, &["--no-flood-control"]);
    let mut clients = spread(&server, PER_WORKER);
    for (i, (client, _)) in clients.iter_mut().enumerate() {
        client.register_as(&format!("u{i}"));
        client.join("#room");
    }
    // Everyone has seen the last JOIN, so every JOIN before it too.
    let last = clients.last().unwrap().0.nick.clone();
    for (client, _) in clients.iter_mut().rev().skip(1) {
        client.expect(&format!("{last}'s JOIN"), |l| {
            l.starts_with(&format!(":{last}!")) && l.contains(" JOIN ")
        });
    }

    let victim_pid = clients[0].1;
    assert!(
        children_of(server.pid()).contains(&victim_pid),
        "worker pid {victim_pid} is not a child of the server {}",
        server.pid()
    );
    let (mut victims, survivors): (Vec<_>, Vec<_>) =
        clients.into_iter().partition(|(_, pid)| *pid == victim_pid);
    let survivor_pid = survivors[0].1;
    let victim_nicks: Vec<String> = victims.iter().map(|(c, _)| c.nick.clone()).collect();
    let survivor_nicks: Vec<String> = survivors.iter().map(|(c, _)| c.nick.clone()).collect();

    let survivors: Vec<Client> = std::thread::scope(|s| {
        let (started_tx, started_rx) = mpsc::channel();
        let handles: Vec<_> = survivors
            .into_iter()
            .map(|(mut client, _)| {
                let started = started_tx.clone();
                let others: Vec<String> =
                    survivor_nicks.iter().filter(|n| **n != client.nick).cloned().collect();
                let victim_nicks = &victim_nicks;
                s.spawn(move || {
                    let nick = client.nick.clone();
                    for i in 0..MESSAGES {
                        client.send(&format!("PRIVMSG #room :m {nick} {i}"));
                        if i % 25 == 24 {
                            client.sync();
                        }
                        if i == 49 {
                            started.send(()).unwrap();
                        }
                    }
                    read_until(&mut client, "every other survivor's messages", |seen| {
                        others
                            .iter()
                            .all(|o| numbered_from(seen, "#room", "m", o).last() == Some(&(MESSAGES - 1)))
                    });
                    for other in &others {
                        let got = numbered_from(&client.seen, "#room", "m", other);
                        assert_eq!(
                            got,
                            (0..MESSAGES).collect::<Vec<_>>(),
                            "{nick}: messages from {other} lost, doubled or out of order"
                        );
                    }
                    read_until(&mut client, "the victims' QUITs", |seen| {
                        victim_nicks.iter().all(|v| saw_worker_lost(seen, v))
                    });
                    client
                })
            })
            .collect();
        drop(started_tx);
        for _ in 0..handles.len() {
            started_rx.recv_timeout(PATIENCE).expect("every survivor started sending");
        }
        signal(victim_pid, "KILL");
        handles.into_iter().map(|h| h.join().expect("survivor thread")).collect()
    });

    for (victim, _) in &mut victims {
        victim.read_to_close();
    }

    let children = wait_for_replacement(&server, victim_pid);
    assert!(children.contains(&survivor_pid), "the surviving worker {survivor_pid} is gone: {children:?}");
    let replacement = *children.iter().find(|p| **p != survivor_pid).unwrap();

    let mut fresh = land_on(&server, replacement);
    fresh.register_as("fresh");
    fresh.join("#room");
    let mut survivor = survivors.into_iter().next().unwrap();
    survivor.expect_line(":fresh!");
    fresh.send("PRIVMSG #room :hello from the replacement");
    survivor.expect("fresh's message", |l| {
        l.starts_with(":fresh!") && l.ends_with("PRIVMSG #room :hello from the replacement")
    });
    survivor.send("PRIVMSG #room :welcome back");
    let source = format!(":{}!", survivor.nick);
    fresh.expect("the survivor's message", |l| {
        l.starts_with(&source) && l.ends_with("PRIVMSG #room :welcome back")
    });
}

#[test]
fn repeated_kills_do_not_wedge_the_log() {
    const KILLS: usize = 3;
    let server = Server::start_with(Model::Prefork, &["--no-flood-control"]);

    // Two clients on the same worker.
    let mut first_on: HashMap<u32, Client> = HashMap::new();
    let mut pair = None;
    for _ in 0..CONNECT_ATTEMPTS {
        let (client, (_, pid)) = Client::connect_to_worker(&server);
        if let Some(other) = first_on.remove(&pid) {
            pair = Some((other, client, pid));
            break;
        }
        first_on.insert(pid, client);
    }
    drop(first_on);
    let (mut a, mut b, pair_pid) = pair.expect("two connections on one worker");
    a.register_as("pa");
    b.register_as("pb");
    a.join("#room");
    b.join("#room");
    a.expect_line(":pb!");

    let children = full_pool(&server);
    assert!(children.contains(&pair_pid), "{pair_pid} not among {children:?}");
    let mut other_pid = *children.iter().find(|p| **p != pair_pid).unwrap();

    let stop = AtomicBool::new(false);
    let rounds = AtomicUsize::new(0);
    let mut doomed_nicks = Vec::new();
    let (mut a, mut b) = std::thread::scope(|s| {
        let (stop, rounds) = (&stop, &rounds);
        let chat = s.spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                a.send(&format!("PRIVMSG #room :a {i}"));
                b.expect(&format!("a {i}"), |l| l.starts_with(":pa!") && l.ends_with(&format!(" :a {i}")));
                b.send(&format!("PRIVMSG #room :b {i}"));
                a.expect(&format!("b {i}"), |l| l.starts_with(":pb!") && l.ends_with(&format!(" :b {i}")));
                i += 1;
                rounds.store(i, Ordering::Relaxed);
            }
            (a, b)
        });
        // Stop the chat thread even if a kill step panics.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop_guard = StopOnDrop(stop);
        for k in 0..KILLS {
            // A registered user on the worker about to die.
            let mut doomed = land_on(&server, other_pid);
            doomed.register_as(&format!("doomed{k}"));
            doomed.join("#room");
            doomed_nicks.push(doomed.nick.clone());
            // Kill while the pair is in the middle of talking.
            let at = rounds.load(Ordering::Relaxed);
            wait_until("the pair to keep chatting", || {
                chat.is_finished() || rounds.load(Ordering::Relaxed) >= at + 20
            });
            assert!(!chat.is_finished(), "the pair stopped chatting");
            signal(other_pid, "KILL");
            doomed.read_to_close();
            let children = wait_for_replacement(&server, other_pid);
            assert!(children.contains(&pair_pid), "the pair's worker {pair_pid} is gone: {children:?}");
            other_pid = *children.iter().find(|p| **p != pair_pid).unwrap();
        }
        let at = rounds.load(Ordering::Relaxed);
        wait_until("the pair to chat after the last kill", || {
            chat.is_finished() || rounds.load(Ordering::Relaxed) >= at + 20
        });
        stop.store(true, Ordering::Relaxed);
        chat.join().expect("chat thread")
    });

    // 100 more each way, sent in one go, none lost.
    hundred(&mut a, &mut b);
    hundred(&mut b, &mut a);
    for client in [&mut a, &mut b] {
        read_until(client, "every doomed user's QUIT", |seen| {
            doomed_nicks.iter().all(|d| saw_worker_lost(seen, d))
        });
    }

    let mut late = Client::register(&server, "late");
    late.join("#room");
    a.expect_line(":late!");
    late.send("PRIVMSG #room :hi all");
    b.expect("late's message", |l| l.starts_with(":late!") && l.ends_with(" :hi all"));
}

/// `from` sends 100 numbered messages to #room in one go; `to` gets them
/// all, in order, once each.
fn hundred(from: &mut Client, to: &mut Client) {
    let nick = from.nick.clone();
    let already = to.seen.len();
    for i in 0..100 {
        from.send(&format!("PRIVMSG #room :x {nick} {i}"));
    }
    from.sync();
    read_until(to, &format!("{nick}'s 100 messages"), |seen| {
        numbered_from(&seen[already..], "#room", "x", &nick).last() == Some(&99)
    });
    to.sync();
    assert_eq!(numbered_from(&to.seen[already..], "#room", "x", &nick), (0..100).collect::<Vec<_>>());
}

#[test]
fn sigint_stops_every_child_and_exits_zero() {
    let mut server = Server::start_with(Model::Prefork, &["--no-flood-control"]);
    let clients = spread(&server, 2);
    let mut registered = Vec::new();
    let mut unregistered = None;
    for (i, (mut client, _)) in clients.into_iter().enumerate() {
        if i == 0 {
            client.nick = "unregistered".into();
            unregistered = Some(client);
        } else {
            client.register_as(&format!("r{i}"));
            client.join("#room");
            registered.push(client);
        }
    }
    let mut unregistered = unregistered.unwrap();
    let mut plain = Client::plain(&server, "nelly");

    let children = full_pool(&server);

    let status = server.signal_and_wait("INT");
    assert_eq!(status.code(), Some(0), "{status:?}");

    for client in registered.iter_mut() {
        client.expect("the closing line", |l| {
            l.starts_with("ERROR :Closing Link") && l.contains("Server shutting down")
        });
    }
    // Silent since it connected, it is most likely a person at nc: it is
    // told in words.
    unregistered.expect_line("*** Disconnected: Server shutting down");
    plain.expect_line("*** Disconnected: Server shutting down");
    for client in registered.iter_mut().chain([&mut unregistered, &mut plain]) {
        client.read_to_close();
    }
    // The supervisor reaps every worker before it exits, so these are gone
    // rather than left as zombies; `is_running` counts a zombie as not
    // running, so this holds whoever did the reaping.
    wait_until("every worker to be gone", || children.iter().all(|pid| !is_running(*pid)));
}

/// SIGKILLs a stopped worker if the test ends (or fails) before the
/// supervisor did, so no stopped process outlives the test.
struct KillIfLeft {
    pid: u32,
    server_pid: u32,
}

impl Drop for KillIfLeft {
    fn drop(&mut self) {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else { return };
        let Some((_, rest)) = stat.rsplit_once(')') else { return };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Still our stopped worker (not some other process that reused the
        // pid): stopped, or still the server's child.
        let ours =
            fields.first() == Some(&"T") || fields.get(1) == Some(&self.server_pid.to_string().as_str());
        if ours && is_running(self.pid) {
            let _ = Command::new("kill").args(["-KILL", &self.pid.to_string()]).status();
        }
    }
}

#[test]
fn stopped_worker_is_evicted_and_replaced() {
    const MESSAGES: usize = 6000;
    const BURST: usize = 200;
    let server = Server::start_with(Model::Prefork, &["--no-flood-control"]);
    let clients = spread(&server, 2);
    let victim_pid = clients[0].1;
    let (victims, chatters): (Vec<_>, Vec<_>) = clients.into_iter().partition(|(_, pid)| *pid == victim_pid);
    let chatter_pid = chatters[0].1;
    let mut victim = victims.into_iter().next().unwrap().0;
    let mut chatters = chatters.into_iter().map(|(c, _)| c);
    let (mut talker, mut listener) = (chatters.next().unwrap(), chatters.next().unwrap());

    talker.register_as("talker");
    listener.register_as("listener");
    victim.register_as("victim");
    talker.join("#room");
    listener.join("#room");
    victim.join("#room");
    talker.expect_line(":victim!");
    listener.expect_line(":victim!");

    assert!(children_of(server.pid()).contains(&victim_pid));
    let _cleanup = KillIfLeft { pid: victim_pid, server_pid: server.pid() };
    signal(victim_pid, "STOP");

    let already = listener.seen.len();
    for burst in 0..MESSAGES / BURST {
        for i in burst * BURST..(burst + 1) * BURST {
            talker.send(&format!("PRIVMSG #room :c talker {i}"));
        }
        // The talker's PONG means the server has taken the whole burst; the
        // listener's means it has been handed everything of it.
        talker.sync();
        listener.sync();
    }
    read_until(&mut listener, "all of the talker's messages", |seen| {
        numbered_from(&seen[already..], "#room", "c", "talker").last() == Some(&(MESSAGES - 1))
    });
    assert_eq!(
        numbered_from(&listener.seen[already..], "#room", "c", "talker"),
        (0..MESSAGES).collect::<Vec<_>>(),
        "messages lost, doubled or out of order"
    );

    for client in [&mut talker, &mut listener] {
        read_until(client, "the victim's QUIT", |seen| saw_worker_lost(seen, "victim"));
    }
    victim.read_to_close();

    let children = wait_for_replacement(&server, victim_pid);
    assert!(children.contains(&chatter_pid), "the chatters' worker {chatter_pid} is gone: {children:?}");
    let replacement = *children.iter().find(|p| **p != chatter_pid).unwrap();
    let mut fresh = land_on(&server, replacement);
    fresh.register_as("fresh");
    fresh.join("#room");
    listener.expect_line(":fresh!");
    fresh.send("PRIVMSG #room :back");
    talker.expect("fresh's message", |l| l.starts_with(":fresh!") && l.ends_with(" :back"));
}

#[test]
fn workers_exit_when_the_supervisor_dies() {
    let server = Server::start_with(Model::Prefork, &["--no-flood-control"]);
    let workers = full_pool(&server);
    let mut clients: Vec<Client> = (0..4).map(|i| Client::register(&server, &format!("orphan{i}"))).collect();
    signal(server.pid(), "KILL");
    // Each worker is told (PR_SET_PDEATHSIG) and shuts down as on SIGTERM:
    // its clients get the closing line and the connection ends.
    for client in &mut clients {
        client.expect_line("Server shutting down");
        client.read_to_close();
    }
    wait_until("every orphaned worker to exit", || workers.iter().all(|pid| !is_running(*pid)));
}

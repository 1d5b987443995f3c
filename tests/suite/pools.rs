//! What is particular to the pool models: clients spread over the workers,
//! clients on different workers chat as if on one server, and a nick
//! claimed at the same moment on two workers goes to exactly one of them.

use crate::common::*;

use std::collections::BTreeMap;

/// Connects clients until there are `per_worker` on each of the pool's
/// workers; returns them grouped by worker number.
fn clients_on_each_worker(server: &Server, per_worker: usize) -> BTreeMap<u32, Vec<Client>> {
    let mut by_worker: BTreeMap<u32, Vec<Client>> = BTreeMap::new();
    for _ in 0..200 {
        let (client, (worker, _pid)) = Client::connect_to_worker(server);
        let group = by_worker.entry(worker).or_default();
        if group.len() < per_worker {
            group.push(client);
        }
        if by_worker.len() == POOL_WORKERS && by_worker.values().all(|g| g.len() == per_worker) {
            return by_worker;
        }
    }
    panic!("200 connections did not reach every worker: {:?}", by_worker.keys());
}

fn clients_spread_over_workers(model: Model) {
    let server = Server::start(model);
    let mut workers = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..20 {
        let (client, (worker, _)) = Client::connect_to_worker(&server);
        workers.push(worker);
        clients.push(client);
    }
    workers.sort();
    workers.dedup();
    // 20 connections hashed over 2 sockets all landing on one: 2 in a million.
    assert_eq!(workers.len(), POOL_WORKERS, "all 20 clients landed on worker {workers:?}");
}

fn clients_on_different_workers_chat(model: Model) {
    let server = Server::start(model);
    let mut groups = clients_on_each_worker(&server, 1).into_values();
    let mut ann = groups.next().unwrap().pop().unwrap();
    let mut ben = groups.next().unwrap().pop().unwrap();
    ann.register_as("ann");
    ben.register_as("ben");
    ann.join("#across");
    ben.join("#across");
    ann.expect_line(":ben!ben@127.0.0.1 JOIN #across");
    ann.send("PRIVMSG #across :hello from the other worker");
    ben.expect_line(":ann!ann@127.0.0.1 PRIVMSG #across :hello from the other worker");
    ben.send("PRIVMSG ann :and a private reply");
    ann.expect_line(":ben!ben@127.0.0.1 PRIVMSG ann :and a private reply");
    ben.send("NICK benjamin");
    ann.expect_line(":ben!ben@127.0.0.1 NICK :benjamin");
    ann.send("TOPIC #across :crossing");
    ben.expect_line(":ann!ann@127.0.0.1 TOPIC #across :crossing");
    ben.send("NAMES #across");
    let names = ben.expect_numeric("353");
    assert!(names.contains("@ann") && names.contains("benjamin"), "{names}");
    ann.send("QUIT :done");
    ben.expect_line(":ann!ann@127.0.0.1 QUIT :Quit: done");
}

fn racing_for_one_nick_one_wins(model: Model) {
    let server = Server::start(model);
    let mut groups = clients_on_each_worker(&server, 1).into_values();
    let mut left = groups.next().unwrap().pop().unwrap();
    let mut right = groups.next().unwrap().pop().unwrap();
    // Registration races: both send NICK+USER in one write, back to back.
    for round in 0..10 {
        let nick = format!("racer{round}");
        let claim = format!("NICK {nick}\r\nUSER r 0 * :R\r\n");
        left.send_raw(claim.as_bytes());
        right.send_raw(claim.as_bytes());
        let is_outcome = |l: &str| matches!(numeric_of(l), Some("001" | "433"));
        let a = left.expect("001 or 433", is_outcome);
        let b = right.expect("001 or 433", is_outcome);
        let winners = [&a, &b].iter().filter(|l| numeric_of(l) == Some("001")).count();
        assert_eq!(winners, 1, "round {round}: {a} / {b}");
        // The winner quits so both can race again as fresh connections.
        let (winner, loser) =
            if numeric_of(&a) == Some("001") { (&mut left, &mut right) } else { (&mut right, &mut left) };
        winner.send("QUIT");
        winner.read_to_close();
        let _ = loser;
        let mut fresh = clients_on_each_worker(&server, 1).into_values();
        left = fresh.next().unwrap().pop().unwrap();
        right = fresh.next().unwrap().pop().unwrap();
    }
    // Nick-change races between registered users.
    left.register_as("lefty");
    right.register_as("righty");
    for round in 0..10 {
        let nick = format!("wanted{round}");
        left.send(&format!("NICK {nick}"));
        right.send(&format!("NICK {nick}"));
        let is_outcome = |l: &str| numeric_of(l) == Some("433") || l.ends_with(&format!(" NICK :{nick}"));
        let a = left.expect("NICK or 433", is_outcome);
        let b = right.expect("NICK or 433", is_outcome);
        let changed = [&a, &b].iter().filter(|l| numeric_of(l) != Some("433")).count();
        assert_eq!(changed, 1, "round {round}: {a} / {b}");
        // The winner takes its old name back for the next round.
        let winner = if numeric_of(&a) == Some("433") { &mut right } else { &mut left };
        let old = winner.nick.clone();
        winner.send(&format!("NICK {old}"));
        winner.expect_line(&format!("NICK :{old}"));
    }
}

pool_models!(clients_spread_over_workers, clients_on_different_workers_chat, racing_for_one_nick_one_wins);

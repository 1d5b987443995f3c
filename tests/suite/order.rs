//! One total order: many clients flood one channel at once; every client
//! receives every other client's messages exactly once, each sender's in the
//! order sent, and all receivers see the messages in the same order.

use crate::common::*;

use std::collections::HashMap;
use std::sync::{Arc, Barrier};

const CLIENTS: usize = 8;
const MESSAGES: usize = 250;

fn everyone_sees_one_order(model: Model) {
    let server = Server::start_with(model, &["--no-flood-control"]);
    let mut clients: Vec<Client> =
        (0..CLIENTS).map(|i| Client::register(&server, &format!("c{i}"))).collect();
    for client in &mut clients {
        client.join("#order");
    }
    let last = format!(":c{}!", CLIENTS - 1);
    // The last to join saw its own JOIN while joining; the others wait for it.
    for client in &mut clients[..CLIENTS - 1] {
        client.expect(&format!("{last} JOIN"), |l| l.starts_with(&last) && l.ends_with("JOIN #order"));
    }

    let start = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(me, mut client)| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let mut burst = String::new();
                for i in 0..MESSAGES {
                    burst.push_str(&format!("PRIVMSG #order :m {me} {i}\r\n"));
                }
                client.send_raw(burst.as_bytes());
                let mut received = Vec::new();
                while received.len() < (CLIENTS - 1) * MESSAGES {
                    let line = client.expect("a message", |l| l.contains(" PRIVMSG #order :m "));
                    let (_, body) = line.split_once(" :m ").unwrap();
                    let (sender, seq) = body.split_once(' ').unwrap();
                    received.push((sender.parse::<usize>().unwrap(), seq.parse::<usize>().unwrap()));
                }
                let extra = client.sync();
                assert!(!extra.iter().any(|l| l.contains(" PRIVMSG #order ")), "c{me} got more: {extra:?}");
                (me, received)
            })
        })
        .collect();
    let results: HashMap<usize, Vec<(usize, usize)>> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();

    for (me, received) in &results {
        let mut next = [0usize; CLIENTS];
        for (sender, seq) in received {
            assert_ne!(sender, me, "c{me} received its own message");
            assert_eq!(*seq, next[*sender], "c{me}: from c{sender}, expected #{} got #{seq}", next[*sender]);
            next[*sender] += 1;
        }
        for (sender, count) in next.iter().enumerate() {
            if sender != *me {
                assert_eq!(*count, MESSAGES, "c{me} got {count} of c{sender}'s messages");
            }
        }
    }
    // Any two receivers saw the messages neither of them sent in one order.
    for a in 0..CLIENTS {
        for b in a + 1..CLIENTS {
            let common = |r: &Vec<(usize, usize)>| -> Vec<(usize, usize)> {
                r.iter().copied().filter(|(s, _)| *s != a && *s != b).collect()
            };
            assert!(common(&results[&a]) == common(&results[&b]), "c{a} and c{b} disagree on the order");
        }
    }
}

all_models!(everyone_sees_one_order);

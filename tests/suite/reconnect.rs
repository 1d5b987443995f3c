//! A client that closes its socket and at once reconnects with the same
//! nick gets that nick back, every time, under every model (issue 11).
//!
//! Under the pool models the old connection and the new one may live on
//! different workers, and the new one's registration can reach the log
//! before the old one's QUIT does; the server must not answer 433 for a
//! nick whose holder has already hung up. The race is a matter of timing,
//! so the test tries many times (bounded in time, not to hang a slow run)
//! and counts every refusal before failing, so a failure says how often.

use std::time::{Duration, Instant};

use crate::common::*;

/// Reconnections tried per model.
const TRIES: usize = 300;
/// Stop trying early past this, on a very slow machine.
const TIME_BUDGET: Duration = Duration::from_secs(60);

fn reconnect_with_the_same_nick_gets_it_back(model: Model) {
    let server = Server::start(model);
    let mut old = Client::register(&server, "phoenix");
    let started = Instant::now();
    let mut refused = Vec::new();
    let mut tried = 0;
    while tried < TRIES && started.elapsed() < TIME_BUDGET {
        tried += 1;
        // A plain close, as a client that dies or quits without QUIT does.
        drop(old);
        let mut new = server.connect();
        new.nick = "phoenix".into();
        new.send("NICK phoenix");
        new.send("USER phoenix 0 * :Phoenix Test");
        let answer = new.expect("001 or 433", |l| matches!(numeric_of(l), Some("001" | "433")));
        if numeric_of(&answer) == Some("433") {
            refused.push(tried);
            // Not ours this time: wait for the holder to go, as a client
            // would retry, so the next try starts from the same place.
            loop {
                std::thread::sleep(Duration::from_millis(10));
                new.send("NICK phoenix");
                let again = new.expect("001 or 433", |l| matches!(numeric_of(l), Some("001" | "433")));
                if numeric_of(&again) == Some("001") {
                    break;
                }
            }
        }
        new.expect("end of MOTD", |l| matches!(numeric_of(l), Some("376" | "422")));
        old = new;
    }
    assert!(
        refused.is_empty(),
        "{model:?}: 433 in {} of {tried} reconnections (tries {refused:?})",
        refused.len()
    );
}

/// A nick that is really taken is still refused, and promptly: the
/// server may wait a moment for a holder that is leaving, not for one
/// that stays.
fn a_nick_really_taken_is_refused(model: Model) {
    let server = Server::start(model);
    let mut holder = Client::register(&server, "keeper");
    for _ in 0..20 {
        let mut other = server.connect();
        other.nick = "keeper2".into();
        other.send("NICK keeper");
        other.send("USER keeper 0 * :Keeper Test");
        other.expect_numeric("433");
        other.send("NICK keeper2");
        other.expect_numeric("001");
    }
    holder.sync();
}

all_models!(reconnect_with_the_same_nick_gets_it_back, a_nick_really_taken_is_refused);

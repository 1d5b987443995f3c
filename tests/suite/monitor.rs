//! MONITOR (IRCv3): a user is told when the nicks it monitors come on and
//! go off (quit, rename), whichever worker or process serves whom; lists
//! are bounded and hold nicks, not masks. One body per behaviour, every
//! model.

use crate::common::{Client, Model, Server, numeric_of};

fn watchers_are_told_who_comes_and_goes(model: Model) {
    let server = Server::start(model);
    let mut watcher = Client::register(&server, "watcher");
    assert!(watcher.seen.iter().any(|l| l.contains(" MONITOR=100 ")), "ISUPPORT advertises MONITOR");
    watcher.send("MONITOR + bar");
    assert!(watcher.expect_numeric("731").ends_with(" 731 watcher :bar"));
    let mut bar = Client::register(&server, "bar");
    assert!(watcher.expect_numeric("730").ends_with(" 730 watcher :bar!bar@127.0.0.1"));
    bar.send("NICK baz");
    assert!(watcher.expect_numeric("731").ends_with(" 731 watcher :bar"), "a rename is going off");
    bar.send("NICK bar");
    watcher.expect_numeric("730");
    // A change of case is the same nick: nothing to tell.
    watcher.sync();
    let before = watcher.seen.len();
    bar.send("NICK BAR");
    bar.expect_line("NICK :BAR");
    watcher.sync();
    assert!(!watcher.seen[before..].iter().any(|l| matches!(numeric_of(l), Some("730" | "731"))));
    bar.send("QUIT :bye");
    bar.read_to_close();
    assert!(watcher.expect_numeric("731").ends_with(" 731 watcher :BAR"));
}

fn list_status_remove_and_clear(model: Model) {
    let server = Server::start(model);
    let mut watcher = Client::register(&server, "watcher");
    let _bar = Client::register(&server, "bar");
    watcher.send("MONITOR + bar,baz");
    watcher.expect_numeric("730");
    watcher.expect_numeric("731");
    watcher.send("MONITOR L");
    let listed = watcher.expect_numeric("732");
    let listed = listed.rsplit(':').next().unwrap_or("");
    let mut nicks: Vec<&str> = listed.split(',').collect();
    nicks.sort();
    assert_eq!(nicks, ["bar", "baz"]);
    watcher.expect_numeric("733");
    watcher.send("MONITOR S");
    assert!(watcher.expect_numeric("730").ends_with(":bar!bar@127.0.0.1"));
    assert!(watcher.expect_numeric("731").ends_with(":baz"));
    watcher.send("MONITOR - bar");
    watcher.send("MONITOR L");
    assert!(watcher.expect_numeric("732").ends_with(":baz"));
    watcher.expect_numeric("733");
    watcher.send("MONITOR C");
    let before = watcher.seen.len();
    watcher.send("MONITOR L");
    watcher.expect_numeric("733");
    assert!(!watcher.seen[before..].iter().any(|l| numeric_of(l) == Some("732")), "the list is empty");
}

fn masks_are_refused_and_the_list_is_bounded(model: Model) {
    let server = Server::start(model);
    let mut watcher = Client::register(&server, "watcher");
    watcher.send("MONITOR + *!username@127.0.0.1");
    watcher.expect_numeric("432");
    let mut nicks: Vec<String> = (0..100).map(|i| format!("n{i}")).collect();
    for chunk in nicks.chunks(25) {
        watcher.send(&format!("MONITOR + {}", chunk.join(",")));
    }
    watcher.send("MONITOR + one_more");
    let full = watcher.expect_numeric("734");
    assert!(full.contains(" 734 watcher 100 one_more :"), "{full}");
    // Someone matching the refused mask comes on: nothing is said.
    let _someone = Client::register(&server, "someone");
    watcher.sync();
    assert!(!watcher.seen.iter().any(|l| l.contains("someone!")));
    nicks.clear();
}

all_models!(
    watchers_are_told_who_comes_and_goes,
    list_status_remove_and_clear,
    masks_are_refused_and_the_list_is_bounded,
);

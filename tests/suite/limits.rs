//! Bounds on what one client can make the server do or hold: targets per
//! message, channels per client, channels overall.

use crate::common::*;

fn count(lines: &[String], code: &str) -> usize {
    lines.iter().filter(|l| numeric_of(l) == Some(code)).count()
}

fn a_message_reaches_each_target_once_and_at_most_twenty(model: Model) {
    let server = Server::start(model);
    let mut alice = Client::register(&server, "alice");
    alice.join("#c");
    let mut bob = Client::register(&server, "bob");
    bob.join("#c");

    let hundred = vec!["#c"; 100].join(",");
    alice.send(&format!("PRIVMSG {hundred} :once"));
    alice.send("PRIVMSG #c,#C,bob,BOB :twice");
    alice.sync();
    let got = bob.sync();
    let copies = |text: &str| got.iter().filter(|l| l.ends_with(text)).count();
    assert_eq!(copies(":once"), 1, "{got:?}");
    assert_eq!(copies(":twice"), 2, "one in #c, one private: {got:?}");

    let ghosts: Vec<String> = (0..25).map(|i| format!("ghost{i}")).collect();
    alice.send(&format!("PRIVMSG {} :anyone?", ghosts.join(",")));
    let replies = alice.sync();
    assert_eq!(count(&replies, "401"), 20, "{replies:?}");
    assert_eq!(count(&replies, "407"), 1, "{replies:?}");
    assert!(replies.iter().any(|l| numeric_of(l) == Some("407") && l.contains(" ghost20 ")), "{replies:?}");
    // NOTICE never answers, not even that there were too many.
    alice.send(&format!("NOTICE {} :anyone?", ghosts.join(",")));
    assert_eq!(alice.sync(), Vec::<String>::new());
}

fn a_client_may_join_only_as_many_channels_as_advertised(model: Model) {
    let server = Server::start(model);
    let mut c = server.connect();
    c.nick = "joiner".into();
    c.send("NICK joiner");
    c.send("USER joiner 0 * :Joiner");
    let isupport: Vec<String> = c.sync().into_iter().filter(|l| numeric_of(l) == Some("005")).collect();
    let limit: usize = isupport
        .iter()
        .flat_map(|l| l.split(' '))
        .find_map(|t| t.strip_prefix("CHANLIMIT=#:"))
        .unwrap_or_else(|| panic!("no CHANLIMIT in {isupport:?}"))
        .parse()
        .expect("a number");
    assert_eq!(limit, 50);

    let channels: Vec<String> = (0..=limit).map(|i| format!("#c{i}")).collect();
    c.send(&format!("JOIN {}", channels.join(",")));
    let replies = c.sync();
    assert_eq!(count(&replies, "366"), limit, "{replies:?}");
    let refused: Vec<&String> = replies.iter().filter(|l| numeric_of(l) == Some("405")).collect();
    assert_eq!(refused.len(), 1, "{replies:?}");
    assert!(refused[0].contains(&format!(" #c{limit} ")), "{refused:?}");

    // Leaving one makes room for another.
    c.send("PART #c0");
    c.join(&format!("#c{limit}"));
}

fn the_server_holds_a_bounded_number_of_channels(model: Model) {
    let server = Server::start_with(model, &["--max-channels", "3"]);
    let mut alice = Client::register(&server, "alice");
    alice.send("JOIN #a,#b,#c,#d");
    let replies = alice.sync();
    assert_eq!(count(&replies, "366"), 3, "{replies:?}");
    assert!(replies.iter().any(|l| numeric_of(l) == Some("437") && l.contains(" #d ")), "{replies:?}");

    // Existing channels can still be joined; a freed one can be made again.
    let mut bob = Client::register(&server, "bob");
    bob.join("#a");
    bob.send("JOIN #e");
    bob.expect_numeric("437");
    alice.send("PART #c");
    alice.sync();
    bob.join("#e");
}

fn long_replies_reach_the_asker_whole(model: Model) {
    // A small sendq: each of these replies is several times its size.
    let server = Server::start_with(
        model,
        &["--sendq", "4096", "--max-channels-per-client", "400", "--no-flood-control"],
    );
    let mut creator = Client::register(&server, "creator");
    let channels: Vec<String> = (0..300).map(|i| format!("#room{i:03}")).collect();
    for chunk in channels.chunks(40) {
        creator.send(&format!("JOIN {}", chunk.join(",")));
    }
    creator.sync();
    let nick = |i: usize| format!("member{i:03}_{}", "x".repeat(20));
    let mut members: Vec<Client> = Vec::new();
    for i in 0..150 {
        let mut member = Client::register(&server, &nick(i));
        member.send("JOIN #big");
        member.sync();
        members.push(member);
    }

    let mut asker = Client::register(&server, "asker");
    asker.send("LIST");
    asker.expect_numeric("321");
    asker.expect_numeric("323");
    let listed = asker.seen.iter().filter(|l| numeric_of(l) == Some("322")).count();
    assert_eq!(listed, 301);

    asker.send("NAMES #big");
    asker.expect("end of NAMES", |l| numeric_of(l) == Some("366"));
    let names: Vec<String> = asker
        .seen
        .iter()
        .filter(|l| numeric_of(l) == Some("353"))
        .flat_map(|l| l.split_once(" :").unwrap().1.split(' ').map(str::to_string).collect::<Vec<_>>())
        .collect();
    assert_eq!(names.len(), 150);

    asker.send("WHO #big");
    asker.expect_numeric("315");
    assert_eq!(asker.seen.iter().filter(|l| numeric_of(l) == Some("352")).count(), 150);

    // Joining gets the same list, with the joiner; everyone stays
    // connected throughout.
    let before = asker.seen.len();
    asker.join("#big");
    let joined_names = asker.seen[before..]
        .iter()
        .filter(|l| numeric_of(l) == Some("353"))
        .flat_map(|l| l.split_once(" :").unwrap().1.split(' ').map(str::to_string).collect::<Vec<_>>())
        .count();
    assert_eq!(joined_names, 151);
    asker.sync();
    for member in &mut members {
        member.sync();
    }
}

all_models!(
    long_replies_reach_the_asker_whole,
    a_message_reaches_each_target_once_and_at_most_twenty,
    a_client_may_join_only_as_many_channels_as_advertised,
    the_server_holds_a_bounded_number_of_channels,
);

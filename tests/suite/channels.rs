//! Channel and private chat between several IRC clients: who sees joins,
//! parts, quits, nick changes, messages and topics, and the error numerics
//! each command can meet.

use crate::common::*;

/// The nicks of a 353 reply, sorted (member order is not specified).
fn names_in(reply: &str) -> Vec<String> {
    let list = reply.rsplit_once(" :").map_or("", |(_, names)| names);
    let mut names: Vec<String> = list.split(' ').map(str::to_string).collect();
    names.sort();
    names
}

fn join_part_quit_are_seen_by_members(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob, mut carol) = three_in_room(&server);
    let mut outsider = Client::register(&server, "dave");

    let names = carol.seen.iter().find(|l| numeric_of(l) == Some("353")).cloned().unwrap();
    assert_eq!(names_in(&names), ["@alice", "bob", "carol"], "{names}");

    bob.send("PART #room :see you");
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect_line(":bob!bob@127.0.0.1 PART #room :see you");
    }
    carol.send("QUIT :gone fishing");
    carol.expect_line("ERROR :Closing Link: 127.0.0.1 (Quit: gone fishing)");
    carol.read_to_close();
    alice.expect_line(":carol!carol@127.0.0.1 QUIT :Quit: gone fishing");
    // bob left #room before carol quit, so shares no channel with her.
    let bob_saw = bob.sync();
    assert!(!bob_saw.iter().any(|l| l.contains("QUIT")), "{bob_saw:?}");
    let outsider_saw = outsider.sync();
    assert!(outsider_saw.is_empty(), "{outsider_saw:?}");
}

fn channel_and_private_messages_between_three(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob, mut carol) = three_in_room(&server);
    alice.send("PRIVMSG #room :hello everyone");
    bob.expect_line(":alice!alice@127.0.0.1 PRIVMSG #room :hello everyone");
    carol.expect_line(":alice!alice@127.0.0.1 PRIVMSG #room :hello everyone");
    let own = alice.sync();
    assert!(!own.iter().any(|l| l.contains("hello everyone")), "sender got its own message: {own:?}");

    bob.send("PRIVMSG alice :just for you");
    alice.expect_line(":bob!bob@127.0.0.1 PRIVMSG alice :just for you");
    let carol_saw = carol.sync();
    assert!(!carol_saw.iter().any(|l| l.contains("just for you")), "{carol_saw:?}");

    carol.send("NOTICE #room :a notice");
    alice.expect_line(":carol!carol@127.0.0.1 NOTICE #room :a notice");
    bob.expect_line(":carol!carol@127.0.0.1 NOTICE #room :a notice");
    carol.send("PRIVMSG alice,bob :both of you");
    alice.expect_line("PRIVMSG alice :both of you");
    bob.expect_line("PRIVMSG bob :both of you");
    // Nicks are case-insensitive.
    carol.send("PRIVMSG ALICE :shouting");
    alice.expect_line(":carol!carol@127.0.0.1 PRIVMSG alice :shouting");
}

fn nick_change_is_seen_by_channel_members(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob, mut carol) = three_in_room(&server);
    let mut stranger = Client::register(&server, "stranger");
    bob.send("NICK robert");
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect_line(":bob!bob@127.0.0.1 NICK :robert");
    }
    assert!(stranger.sync().is_empty());
    alice.send("PRIVMSG robert :new name?");
    bob.expect_line(":alice!alice@127.0.0.1 PRIVMSG robert :new name?");
    alice.send("PRIVMSG bob :old name?");
    alice.expect_numeric("401");
    carol.send("NICK ALICE");
    carol.expect_numeric("433");
    // A case-only change of one's own nick is allowed.
    alice.send("NICK Alice");
    bob.expect_line(":alice!alice@127.0.0.1 NICK :Alice");
    let bob_new = Client::register(&server, "bob");
    drop(bob_new);
}

fn topic_get_and_set(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob, _carol) = three_in_room(&server);
    alice.send("TOPIC #room");
    assert!(alice.expect_numeric("331").contains("#room :No topic is set"));
    bob.send("TOPIC #room :Rust and tea");
    alice.expect_line(":bob!bob@127.0.0.1 TOPIC #room :Rust and tea");
    bob.expect_line(":bob!bob@127.0.0.1 TOPIC #room :Rust and tea");
    alice.send("TOPIC #room");
    assert!(alice.expect_numeric("332").ends_with("#room :Rust and tea"));
    assert!(alice.expect_numeric("333").contains("#room bob!bob@127.0.0.1 "));
    let mut late = Client::register(&server, "late");
    // Not in #room, but #room is public (LIST shows its topic to anyone):
    // the topic is answered, as InspIRCd, Solanum and Ergo do; the spec
    // makes 442 here a MAY.
    late.send("TOPIC #room");
    assert!(late.expect_numeric("332").ends_with("#room :Rust and tea"));
    late.send("JOIN #room");
    assert!(late.expect_numeric("332").ends_with(":Rust and tea"));
    late.expect_numeric("353");
    bob.send("TOPIC #room :");
    alice.expect_line(":bob!bob@127.0.0.1 TOPIC #room :");
    alice.send("TOPIC #room");
    alice.expect_numeric("331");
    alice.send("TOPIC #nowhere");
    alice.expect_numeric("403");
    alice.send("TOPIC #nowhere :x");
    alice.expect_numeric("403");
    alice.send("TOPIC");
    alice.expect_numeric("461");
}

fn names_lists_members(model: Model) {
    let server = Server::start(model);
    let (mut alice, _bob, _carol) = three_in_room(&server);
    alice.send("NAMES #room");
    let names = alice.expect_numeric("353");
    assert!(names.contains(" = #room :"), "{names}");
    assert_eq!(names_in(&names), ["@alice", "bob", "carol"], "{names}");
    alice.expect_numeric("366");
    alice.send("NAMES #empty");
    assert!(alice.expect_numeric("366").contains("#empty"));
    alice.send("NAMES");
    alice.expect_numeric("353");
    alice.expect_numeric("366");
}

fn join_several_and_join_zero(model: Model) {
    let server = Server::start(model);
    let mut alice = Client::register(&server, "alice");
    let mut bob = Client::register(&server, "bob");
    bob.join("#b");
    alice.send("JOIN #a,#b,#c key1,key2");
    for channel in ["#a", "#b", "#c"] {
        alice.expect_line(&format!(":alice!alice@127.0.0.1 JOIN {channel}"));
        alice.expect(&format!("366 for {channel}"), |l| numeric_of(l) == Some("366") && l.contains(channel));
    }
    bob.expect_line(":alice!alice@127.0.0.1 JOIN #b");
    alice.send("JOIN 0");
    for channel in ["#a", "#b", "#c"] {
        alice.expect_line(&format!(":alice!alice@127.0.0.1 PART {channel}"));
    }
    bob.expect_line(":alice!alice@127.0.0.1 PART #b");
    alice.send("PRIVMSG #b :still here?");
    alice.expect_numeric("404");
}

fn error_numerics(model: Model) {
    let server = Server::start(model);
    let mut alice = Client::register(&server, "alice");
    let mut bob = Client::register(&server, "bob");
    bob.join("#bobs");

    alice.send("PRIVMSG nobody :hi");
    assert!(alice.expect_numeric("401").contains("nobody :No such nick"));
    alice.send("PRIVMSG #nothing :hi");
    alice.expect_numeric("403");
    alice.send("PART #nothing");
    alice.expect_numeric("403");
    alice.send("JOIN nochan");
    alice.expect_numeric("403");
    alice.send("PRIVMSG #bobs :let me in");
    assert!(alice.expect_numeric("404").contains("#bobs"));
    alice.send("PRIVMSG");
    alice.expect_numeric("411");
    alice.send("PRIVMSG bob");
    alice.expect_numeric("412");
    alice.send("PRIVMSG bob :");
    alice.expect_numeric("412");
    alice.send("WHATEVER");
    alice.expect_numeric("421");
    alice.send("NICK");
    alice.expect_numeric("431");
    alice.send("NICK #bad");
    alice.expect_numeric("432");
    alice.send("NICK bob");
    alice.expect_numeric("433");
    alice.send("PART #bobs");
    alice.expect_numeric("442");
    alice.send("JOIN");
    alice.expect_numeric("461");
    alice.send("PART");
    alice.expect_numeric("461");
    alice.send("USER a b c d");
    alice.expect_numeric("462");
    // NOTICE never draws an automatic reply, errors included.
    alice.send("NOTICE nobody :hi");
    alice.send("NOTICE #bobs :hi");
    let after_notices = alice.sync();
    assert!(after_notices.is_empty(), "{after_notices:?}");
    // bob saw none of it.
    let bob_saw = bob.sync();
    assert!(bob_saw.is_empty(), "{bob_saw:?}");
}

fn queries_real_clients_send(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob, _carol) = three_in_room(&server);
    alice.send("MODE #room");
    assert!(alice.expect_numeric("324").contains("#room +n"));
    alice.send("MODE #room b");
    alice.expect_numeric("368");
    alice.send("MODE alice +i");
    alice.expect_line(":alice MODE alice :+i");
    alice.send("MODE alice");
    assert!(alice.expect_numeric("221").ends_with(" +i"));
    alice.send("LUSERS");
    assert!(alice.expect_numeric("251").contains("There are 2 users and 1 invisible"));
    bob.send("AWAY :lunch");
    bob.expect_numeric("306");
    alice.send("PRIVMSG bob :are you there?");
    assert!(alice.expect_numeric("301").ends_with("bob :lunch"));
    alice.send("USERHOST bob carol nobody");
    assert!(alice.expect_numeric("302").ends_with(":bob=-bob@127.0.0.1 carol=+carol@127.0.0.1"));
    alice.send("ISON bob nobody carol");
    assert!(alice.expect_numeric("303").ends_with(":bob carol"));
    alice.send("WHO #room");
    let who: Vec<String> = (0..3).map(|_| alice.expect_numeric("352")).collect();
    alice.expect_numeric("315");
    assert!(who.iter().any(|l| l.contains(" alice H@ :0 ")), "{who:?}");
    assert!(who.iter().any(|l| l.contains(" bob G :0 ")), "{who:?}");
    assert!(who.iter().any(|l| l.contains(" carol H :0 ")), "{who:?}");
    bob.send("AWAY");
    bob.expect_numeric("305");
    alice.send("PRIVMSG bob :back?");
    bob.expect_line("PRIVMSG bob :back?");
    assert!(!alice.sync().iter().any(|l| numeric_of(l) == Some("301")));
    alice.send("MODE bob");
    alice.expect_numeric("502");
    alice.send("WHO #room");
    for _ in 0..3 {
        alice.expect_numeric("352");
    }
    alice.expect_numeric("315");
    alice.send("WHOIS bob");
    assert!(alice.expect_numeric("311").contains("bob bob 127.0.0.1"));
    assert!(alice.expect_numeric("319").ends_with(":#room"));
    alice.expect_numeric("318");
    alice.send("WHOIS ghost");
    alice.expect_numeric("401");
    alice.send("LIST");
    alice.expect_numeric("321");
    assert!(alice.expect_numeric("322").contains("#room 3"));
    alice.expect_numeric("323");
}

all_models!(
    join_part_quit_are_seen_by_members,
    channel_and_private_messages_between_three,
    nick_change_is_seen_by_channel_members,
    topic_get_and_set,
    names_lists_members,
    join_several_and_join_zero,
    error_numerics,
    queries_real_clients_send,
);
